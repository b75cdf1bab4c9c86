"""Photo editing with a trained generator: the inverter learns to invert G, the refinement brings
the picture closer, a direction moves its attribute the asked way while the picture stays itself,
the editor is kept in the run folder, and bad requests get clear errors."""
import json

import numpy as np
import pytest
import torch

import gankit
from gankit.cli import main
from gankit.editing import EDITOR_FILE, Editor, attribute_names, edit_run

SETTINGS = {"encoder_steps": 100, "n_directions": 600}


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    """A small DCGAN briefly trained on Fashion-MNIST, and four held-out pictures in [0, 1]."""
    out = tmp_path_factory.mktemp("edit") / "gan"
    try:
        run = gankit.train({"data": {"name": "fashion_mnist"}, "generator": {"name": "dcgan", "width": 8},
                            "discriminator": {"name": "dcgan", "width": 8},
                            "train": {"steps": 60, "batch_size": 32, "progress": "none", "sample_every": 0,
                                      "checkpoint_every": 1000, "seed": 0},
                            "runtime": {"threads": 1}, "out": str(out)})
    except gankit.errors.GankitError as exc:       # no Fashion-MNIST on this machine
        pytest.skip(f"Fashion-MNIST is needed: {exc}")
    test = gankit.api.build_data(gankit.api.make_config({"data": {"name": "fashion_mnist", "split": "test"}}))
    return gankit.load_run(run.path), test.x[:4].float() / 255


def test_the_inverter_learns_to_invert_the_generator(gan_run):
    run, _ = gan_run
    editor = Editor(run, **SETTINGS)
    losses = editor.train_inverter(steps=80)
    assert np.mean(losses[-20:]) < 0.7 * np.mean(losses[:5])


def test_a_direction_predicts_how_the_score_moves(gan_run):
    """The regression's slope is the score's mean change per unit step along the direction, as
    measured afresh on other samples of G."""
    run, _ = gan_run
    editor = Editor(run, **SETTINGS)
    editor.fit_directions(["brightness"], n=800)
    d, slope = editor.directions["brightness"], editor.slopes["brightness"]
    assert float(d.norm()) == pytest.approx(1.0, abs=1e-5) and slope > 0
    z = torch.randn(400, editor.z_dim, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        change = (editor.scorers["brightness"](editor.generate(z + 0.5 * d))
                  - editor.scorers["brightness"](editor.generate(z))).mean()
    assert float(change) == pytest.approx(0.5 * slope, rel=0.35)


def test_an_edit_moves_the_attribute_and_keeps_the_picture(gan_run, tmp_path):
    run, x = gan_run
    up = edit_run(run, x, "brightness", 2.0, steps=30, **SETTINGS)
    assert not up["cached"] and (run.path / EDITOR_FILE).is_file()
    assert not list((run.path / EDITOR_FILE).parent.glob(".*tmp*"))          # written atomically
    # brighter on average, by a part of what the fit predicts on G's samples (2 standard deviations)
    change = np.mean(up["score_edited"]) - np.mean(up["score_inverted"])
    assert change > 0.1 * up["expected_change"] > 0
    # identity kept: the edit lies nearer the inverted picture than G's random samples do
    for near, far in zip(up["feature_distance_edited_inverted"], up["feature_distance_random_inverted"]):
        assert near < 0.8 * far
    # the refinement beats the encoder's pass alone
    alone = edit_run(run, x, "brightness", 2.0, steps=0, **SETTINGS)
    assert alone["cached"]                                               # the second edit loads the editor
    assert np.mean(up["pixel_error_inverted"]) < np.mean(alone["pixel_error_inverted"])

    down = edit_run(run, x, "trouser", -2.0, steps=30, **SETTINGS)      # a class logit, the other way
    assert np.mean(down["score_edited"]) < np.mean(down["score_inverted"])
    assert down["walk"].shape == (4, 5, 1, 28, 28) and down["amounts"] == [0.0, -0.5, -1.0, -1.5, -2.0]


def test_the_command_writes_pictures_and_numbers(gan_run, tmp_path, capsys):
    from PIL import Image

    run, x = gan_run
    big = (x[0, 0].numpy() * 255).astype(np.uint8).repeat(2, 0).repeat(2, 1)      # 56x56: resized
    Image.fromarray(np.stack([big] * 3, -1)).save(tmp_path / "coat.png")          # colour: made grey
    assert main(["edit", str(run.path), "--input", str(tmp_path / "coat.png"), "--attr", "ink", "--amount", "1.5",
                 "--out", str(tmp_path / "out"), "--steps", "20", "--encoder-steps", str(SETTINGS["encoder_steps"]),
                 "--samples", str(SETTINGS["n_directions"])]) == 0
    err = capsys.readouterr().err
    assert "resized to the run's 28x28" in err and "converted to grey" in err
    for name in ("input", "inverted", "edited"):
        assert Image.open(tmp_path / "out" / f"{name}.png").size == (28, 28)
    assert Image.open(tmp_path / "out" / "edit.png").size[0] > 6 * 28       # the input, then five amounts
    numbers = json.loads((tmp_path / "out" / "edit.json").read_text())
    assert numbers["attr"] == "ink" and numbers["amount"] == 1.5 and len(numbers["score_edited"]) == 1


def test_clear_errors(gan_run, tmp_path, capsys):
    run, _ = gan_run
    np.save(tmp_path / "pic.npy", np.zeros((1, 28, 28), np.uint8))

    def fails(*argv):
        assert main(["edit", *argv]) == 2
        return capsys.readouterr().err

    err = fails(str(run.path), "--input", str(tmp_path / "pic.npy"), "--attr", "brightnes", "--out", str(tmp_path / "o"))
    assert "unknown attribute 'brightnes'" in err and "brightness" in err and "ankle_boot" in err
    err = fails(str(run.path), "--input", str(tmp_path / "missing.png"), "--attr", "ink", "--out", str(tmp_path / "o"))
    assert "no such file" in err
    np.save(tmp_path / "vectors.npy", np.zeros((5, 2), np.float32))
    err = fails(str(run.path), "--input", str(tmp_path / "vectors.npy"), "--attr", "ink", "--out", str(tmp_path / "o"))
    assert "expected pictures" in err
    err = fails(str(run.path), "--input", str(tmp_path / "pic.npy"), "--attr", "ink", "--label", "3",
                "--out", str(tmp_path / "o"))
    assert "takes no class" in err
    assert set(attribute_names()) >= {"brightness", "ink", "contrast", "trouser", "ankle_boot"}


def test_a_run_without_a_noise_to_image_generator_is_refused(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "tiny.npz", x=rng.integers(0, 255, size=(64, 8, 8)).astype(np.uint8))
    pixel = gankit.train({"method": {"name": "pixelcnn"}, "data": {"name": "array", "path": str(tmp_path / "tiny.npz")},
                          "generator": {"name": "auto", "width": 4, "layers": 2},
                          "train": {"steps": 1, "batch_size": 8, "progress": "none", "sample_every": 0},
                          "out": str(tmp_path / "pixelcnn")})
    np.save(tmp_path / "pic.npy", np.zeros((1, 8, 8), np.uint8))
    assert main(["edit", str(pixel.path), "--input", str(tmp_path / "pic.npy"), "--attr", "ink",
                 "--out", str(tmp_path / "o")]) == 2
    assert "no latent space" in capsys.readouterr().err
    toy = gankit.train({"data": {"name": "ring8", "n_samples": 200}, "train": {"steps": 1, "batch_size": 8,
                        "progress": "none", "sample_every": 0}, "out": str(tmp_path / "toy")})
    assert main(["edit", str(toy.path), "--input", str(tmp_path / "pic.npy"), "--attr", "ink",
                 "--out", str(tmp_path / "o")]) == 2
    assert "edits pictures" in capsys.readouterr().err
