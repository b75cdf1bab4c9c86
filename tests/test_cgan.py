"""The conditional GAN: the lecture's discriminator that sees (x, c), its mismatched pairs,
the discriminator designs, sampling given a label, and the errors for bad conditions."""
import json

import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.cli import main
from gankit.errors import ConfigError
from gankit.methods.cgan import CGAN
from gankit.objectives.adversarial import gan_d_loss

from conftest import toy_config


def cgan_config(out, steps=1500, **method):
    cfg = toy_config(out, steps=steps)
    cfg["method"] = {"name": "cgan", **method}
    cfg["generator"] = {"name": "mlp", "hidden": 64, "layers": 2, "z_dim": 4}
    cfg["discriminator"] = {"name": "mlp", "hidden": 64, "layers": 2}
    cfg["train"].update(checkpoint_every=0, log_every=50)
    cfg["runtime"] = {"threads": 1}          # tiny networks: a second thread only waits
    return cfg


def conditional_accuracy(run, n_per_class=200):
    """The share of samples given mode c whose nearest mode is c, and the share of all samples
    within 0.1 of some mode."""
    k = len(run.data.modes)
    y = torch.arange(k).repeat_interleave(n_per_class)
    x = run.sample(len(y), seed=0, given={"y": y}).double()
    d = torch.cdist(x, run.data.modes.double())
    return (d.argmin(1) == y).double().mean().item(), (d.min(1).values < 0.1).double().mean().item()


@pytest.mark.parametrize("design", ["joint", "projection", "two_branch", "acgan", "acgan_paper"])
def test_each_design_learns_to_obey_its_condition(tmp_path, design):
    method = {"design": "acgan", "ac_generated": True} if design == "acgan_paper" else {"design": design}
    start = gankit.train(cgan_config(tmp_path / "start", steps=1, **method))
    run = gankit.train(cgan_config(tmp_path / "run", **method))
    acc0, _ = conditional_accuracy(start)
    acc, near = conditional_accuracy(run)
    assert acc0 < 0.35                       # untrained: about 1 in 8
    assert acc > 0.9, (design, acc)          # trained: the sample lies at the mode it was asked for
    assert near > 0.5, (design, near)        # ... and close to it


def _distance_to_ring(run):
    x = run.sample(1600, seed=0).double()
    return (x.norm(dim=1) - 1).abs().mean().item()


def test_a_discriminator_that_sees_only_x_lets_the_generator_ignore_the_condition(tmp_path):
    start = gankit.train(cgan_config(tmp_path / "start", steps=1, design="image_only"))
    run = gankit.train(cgan_config(tmp_path / "run", design="image_only"))
    acc, _ = conditional_accuracy(run)
    assert _distance_to_ring(run) < 0.5 * _distance_to_ring(start)   # it does learn the data ...
    assert acc < 0.3, acc                    # ... but not which mode it was asked for (chance: 1 in 8)


def test_mismatched_pairs_enter_the_loss_with_their_weight(tmp_path):
    """L_D = [L(real, fake) + w L(real, mismatched)] / (1 + w) for the joint design, computed
    here from the discriminator's own outputs on the same batch."""
    run = gankit.train(cgan_config(tmp_path / "run", steps=2, design="joint", mismatch_weight=0.5))
    m: CGAN = run.method
    torch.manual_seed(0)
    x, y = run.data.x[:16], run.data.y[:16]
    wrong = m.wrong_labels(y)
    assert bool((wrong != y).all()) and int(wrong.max()) < 8
    fake = torch.randn(16, 2)
    D = m.discriminator
    s_real, s_fake, s_wrong = (D(a, b)["score"] for a, b in ((x, y), (fake, y), (x, wrong)))
    expected = (gan_d_loss(s_real, s_fake) + 0.5 * gan_d_loss(s_real, s_wrong)) / 1.5
    by_hand = (F.softplus(-s_real).mean() + (F.softplus(s_fake).mean() + 0.5 * F.softplus(s_wrong).mean()) / 1.5)
    torch.testing.assert_close(expected, by_hand)


@pytest.mark.parametrize("ac_generated", [False, True])
def test_the_auxiliary_classifier_learns_from_real_and_optionally_generated_samples(tmp_path, ac_generated):
    """acgan: L_D = L(real, fake) + w [CE(real logits, y) (+ CE(fake logits, y) with
    ac_generated, the AC-GAN paper's rule)], from the discriminator's own outputs."""
    import copy

    run = gankit.train(cgan_config(tmp_path / "run", steps=2, design="acgan", ac_weight=0.7,
                                   ac_generated=ac_generated))
    m: CGAN = run.method
    D = copy.deepcopy(m.discriminator)                    # as it is before the update below
    x, y = run.data.x[:16], run.data.y[:16]
    torch.manual_seed(5)
    fake = m.generated(16, y)
    torch.manual_seed(5)
    m.discriminator.requires_grad_(True)                  # as the training step does before this update
    logged = m.discriminator_step({"x": x, "y": y})["d_loss"]
    with torch.no_grad():
        out_real, out_fake = D(x, y), D(fake, y)
    ce = F.cross_entropy(out_real["logits"], y)
    if ac_generated:
        ce = ce + F.cross_entropy(out_fake["logits"], y)
    torch.testing.assert_close(logged, gan_d_loss(out_real["real"], out_fake["real"]) + 0.7 * ce)


def test_the_defaults_are_the_measured_best(tmp_path):
    """The defaults that reached 90 % conditional accuracy on Fashion-MNIST in five minutes
    (benchmarks/README.md): acgan learning the classes from real samples, at 4e-4."""
    from gankit.config import build_config

    cfg = build_config({"method": {"name": "cgan"}})
    assert cfg.method["design"] == "acgan" and cfg.method["ac_generated"] is False
    assert (cfg.optim.lr_g, cfg.optim.lr_d) == (4e-4, 4e-4)


def test_wrong_labels_are_uniform_over_the_other_classes(tmp_path):
    run = gankit.train(cgan_config(tmp_path / "run", steps=1))
    y = torch.full((40_000,), 3)
    counts = torch.bincount(run.method.wrong_labels(y), minlength=8).double() / 40_000
    assert counts[3] == 0
    torch.testing.assert_close(counts[torch.arange(8) != 3], torch.full((7,), 1 / 7, dtype=torch.float64),
                               atol=0.01, rtol=0)


def test_sampling_given_labels_and_drawn_from_the_data(tmp_path):
    run = gankit.train(cgan_config(tmp_path / "run", steps=5))
    out = run.generate(16, seed=1, given={"y": 5})
    assert out["x"].shape == (16, 2) and bool((out["y"] == 5).all())
    drawn = run.generate(4000, seed=2)["y"]
    freq = torch.bincount(drawn, minlength=8).double() / 4000
    assert float((freq - 1 / 8).abs().max()) < 0.03       # ring8's modes are equally likely
    torch.testing.assert_close(run.sample(8, seed=3, given={"y": [0, 1, 2, 3, 4, 5, 6, 7]}),
                               run.sample(8, seed=3, given={"y": torch.arange(8)}))


def test_bad_conditions_are_clear_errors(tmp_path, capsys):
    run = gankit.train(cgan_config(tmp_path / "run", steps=5))
    with pytest.raises(ConfigError, match="label 12 is out of range.*8 classes"):
        run.sample(4, given={"y": 12})
    assert main(["sample", str(run.path), "--label", "12", "--out", str(tmp_path / "s.png")]) == 2
    assert "8 classes" in capsys.readouterr().err and not (tmp_path / "s.png").exists()

    plain = gankit.train(toy_config(tmp_path / "plain", steps=5))
    assert main(["sample", str(plain.path), "--label", "1", "--out", str(tmp_path / "p.png")]) == 2
    assert "takes no conditions" in capsys.readouterr().err and not (tmp_path / "p.png").exists()

    assert main(["train", "--method", "cgan", "--data", "swissroll", "--steps", "5", "--out", str(tmp_path / "roll"),
                 "--set", "train.progress=none"]) == 2
    assert "class labels" in capsys.readouterr().err and not (tmp_path / "roll").exists()


def test_sample_command_draws_one_row_per_label(tmp_path):
    run = gankit.train(cgan_config(tmp_path / "run", steps=5))
    assert main(["sample", str(run.path), "--label", "1,4", "--n", "6", "--out", str(tmp_path / "s.npz")]) == 0
    import numpy as np

    with np.load(tmp_path / "s.npz") as f:
        assert f["x"].shape == (12, 2)
        assert f["y"].tolist() == [1] * 6 + [4] * 6


def test_an_image_cgan_trains_and_draws_a_grid_per_class(tmp_path, image_npz):
    import numpy as np

    with np.load(image_npz) as f:
        x = f["x"]
    labelled = tmp_path / "labelled.npz"
    np.savez(labelled, x=x, y=np.arange(len(x)) % 4)
    out = tmp_path / "run"
    assert main(["train", "--method", "cgan", "--data", "array", "--steps", "3", "--out", str(out),
                 "--set", f"data.path={labelled}", "train.batch_size=8", "train.progress=none",
                 "generator.width=8", "discriminator.width=8", "train.n_samples=16"]) == 0
    from PIL import Image

    grid = Image.open(out / "samples" / "step_00000003.png")
    # 4 classes x 4 samples per row: 4 rows of 4 tiles of 16 + 2 pixels of padding
    assert grid.size == (4 * 18 + 2, 4 * 18 + 2)
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(metrics[-1])
