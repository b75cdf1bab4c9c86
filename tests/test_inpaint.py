"""inpaint (image completion): the three mask shapes depend on the sample index only and stay
inside the picture, the completion keeps every known pixel, training fills the hole better
than at its start and better than the trivial fill, the supervised baseline leaves the
discriminators alone, sampling given pictures and masks or from the pool, evaluation on the
held-out split, the local crop, and `gankit sample --input --mask`."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import gankit
from gankit.cli import main
from gankit.data.base import Dataset, LazyImages
from gankit.data.pairs import MASK_FILL, apply_pairs, centre_box, free_masks, mask_images, pair_images
from gankit.errors import ConfigError
from gankit.methods.inpaint import composite, crop, hole_boxes
from gankit.metrics import paired

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


def rectangles(path, n=400, size=16, seed=0):
    """``n`` grey size x size pictures of a bright rectangle (random place, size and brightness)
    on a dark ground, as an .npz: a hole in one is filled well only by continuing its edges."""
    rng = np.random.default_rng(seed)
    x = np.full((n, size, size), 10, np.uint8)
    for img in x:
        top, left = rng.integers(0, size // 2, size=2)
        h, w = rng.integers(size // 4, size // 2 + 1, size=2)
        img[top:top + h, left:left + w] = rng.integers(160, 256)
    np.savez(path, x=x)
    return path


def config(tmp_path, name="run", steps=80, pairs="mask", **method):
    return {
        "method": {"name": "inpaint", **method},
        "data": {"name": "array", "path": str(rectangles(tmp_path / "rect.npz")), "test_fraction": 0.25,
                 "pairs": pairs},
        "generator": {"name": "auto", "width": 8},
        "discriminator": {"name": "auto", "width": 8},
        "local_discriminator": {"name": "auto", "width": 8},
        "train": {"steps": steps, "batch_size": 32, "log_every": 20, "sample_every": 0, "checkpoint_every": 0,
                  "progress": "none", "seed": 1},
        "optim": {"lr_g": 2e-3, "lr_d": 2e-4},
        "runtime": {"threads": 1, "precision": "fp32"},
        "out": str(tmp_path / name),
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A completion run of 80 steps and the same run at its first step."""
    tmp = tmp_path_factory.mktemp("inpaint")
    return gankit.train(config(tmp, "start", steps=1)), gankit.train(config(tmp, "run")), tmp


# ----------------------------------------------------------------------------------- masks

@pytest.mark.parametrize("pairs", ["mask", "mask_centre", "mask_free"])
def test_masks_depend_on_the_index_only_and_lie_inside_the_picture(pairs):
    x = torch.randint(0, 256, (60, 3, 20, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    full = pair_images(x, pairs, np.arange(60))
    part = pair_images(x[25:40], pairs, np.arange(25, 40))          # another chunking: the same masks
    assert torch.equal(full["mask"][25:40], part["mask"]) and torch.equal(full["input"][25:40], part["input"])
    mask = full["mask"]
    assert mask.shape == (60, 1, 20, 28) and mask.dtype == torch.uint8 and set(mask.unique().tolist()) <= {0, 255}
    inside = (mask == 255).expand(-1, 3, -1, -1)
    assert bool((full["input"][inside] == MASK_FILL).all()) and torch.equal(full["input"][~inside], x[~inside])
    assert bool((mask == 255).flatten(1).any(1).all())             # no picture without a hole
    assert bool((mask == 0).flatten(1).any(1).all())               # nor one that is all hole


def test_the_centre_mask_is_exactly_centred_and_a_quarter_of_the_area():
    for h, w in ((28, 28), (64, 64), (30, 30), (15, 20)):
        m = mask_images(np.arange(3), h, w, "centre")[:, 0]
        assert bool((m == m[0]).all())                                 # the same hole for every sample
        rows, cols = m[0].any(1).nonzero().flatten(), m[0].any(0).nonzero().flatten()
        top, bottom = int(rows.min()), h - 1 - int(rows.max())
        left, right = int(cols.min()), w - 1 - int(cols.max())
        assert (top, left) == (bottom, right)                          # equal margins
        assert int(m[0].sum()) == len(rows) * len(cols)                # a full rectangle
        assert h // 2 - 1 <= len(rows) <= h // 2 and w // 2 - 1 <= len(cols) <= w // 2
    assert centre_box(28, 28) == (7, 7, 14, 14) and centre_box(64, 64) == (16, 16, 32, 32)


def test_free_form_masks_are_strokes_that_vary_and_are_never_empty():
    for size in (28, 64):
        m = free_masks(np.arange(1000), size, size)
        area = m.flatten(1).double().mean(1)
        assert bool((area > 0).all()) and float(area.max()) < 0.6      # never empty, never most of it
        assert 0.05 < float(area.mean()) < 0.3                         # about a rectangle's share (14 %)
        assert len({bytes(r.numpy()) for r in m[:200].flatten(1)}) == 200   # every one different
        assert torch.equal(free_masks(np.arange(10, 20), size, size), m[10:20])
    # strokes, not boxes: a free mask covers far less than the box around it
    m = free_masks(np.arange(300), 64, 64)
    rows, cols = m.any(2), m.any(1)
    box = rows.sum(1) * cols.sum(1)
    assert float((m.flatten(1).sum(1) / box).median()) < 0.8


def test_a_lazy_data_set_pairs_free_masks_as_an_eager_one():
    class Lazy(LazyImages):
        def __init__(self, x):
            self.x = x

        @property
        def shape(self):
            return self.x.shape

        def _take(self, idx):
            return self.x[idx]

    x = torch.randint(0, 256, (30, 1, 16, 16), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    eager = apply_pairs(Dataset(x=x, kind="image", name="eager"), "mask_free")
    lazy = apply_pairs(Dataset(x=Lazy(x), kind="image", name="lazy"), "mask_free")
    idx = torch.tensor([3, 17, 29])
    for k in ("input", "mask"):
        assert torch.equal(lazy.extra[k][idx], eager.extra[k][idx])


# ----------------------------------------------------------------------------------- pieces

def test_the_composite_keeps_the_known_pixels_and_the_local_crop_covers_the_hole():
    g = torch.Generator().manual_seed(0)
    picture, generated = torch.rand(4, 3, 16, 16, generator=g), torch.rand(4, 3, 16, 16, generator=g)
    inside = mask_images(np.arange(4), 16, 16, "rect")
    out = composite(generated, picture, inside)
    assert torch.equal(out[~inside.expand(-1, 3, -1, -1)], picture[~inside.expand(-1, 3, -1, -1)])
    assert torch.equal(out[inside.expand(-1, 3, -1, -1)], generated[inside.expand(-1, 3, -1, -1)])
    top, left = hole_boxes(inside, (8, 8))
    for i in range(4):
        rows, cols = inside[i, 0].any(1).nonzero().flatten(), inside[i, 0].any(0).nonzero().flatten()
        t, l_ = int(top[i]), int(left[i])
        assert 0 <= t <= 8 and 0 <= l_ <= 8                                   # inside the picture
        assert t <= int(rows.min()) and int(rows.max()) < t + 8                # the hole (at most half a side) in it
        assert l_ <= int(cols.min()) and int(cols.max()) < l_ + 8
        centred = (int(rows.min() + rows.max()) + 1 - 8) // 2                  # the crop's centre on the hole's
        assert t == min(max(centred, 0), 8)                                    # unless the border pushes it
        assert torch.equal(crop(picture, top, left, (8, 8))[i], picture[i, :, t:t + 8, l_:l_ + 8])
    corner = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    corner[..., 14:, 15:] = True
    assert [int(v) for v in hole_boxes(corner, (8, 8))] == [8, 8]             # shifted back inside


# ----------------------------------------------------------------------------------- the method

def _scores(run, n=100):
    from gankit.metrics.evaluate import evaluate_run

    return evaluate_run(run, metrics=["masked_l1", "masked_psnr"], n=n)


def test_inpaint_learns_to_fill_the_hole(trained):
    start, run, _ = trained
    before, after = _scores(start), _scores(run)
    assert before["masked_l1_fill"] == after["masked_l1_fill"]                # the baseline: the same holes
    # measured: about 0.47 at the start, 0.24 for the mean of the known pixels, 0.16 after 80 steps
    assert after["masked_l1"] < 0.6 * before["masked_l1"], (before, after)
    assert after["masked_l1"] < 0.85 * after["masked_l1_fill"], after
    assert after["masked_psnr"] > after["masked_psnr_fill"] + 1
    logs = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert {"masked_l1", "g_loss", "g_loss_local", "d_loss", "d_loss_local", "d_real_local"} <= set(logs[-1])
    assert logs[-1]["masked_l1"] < logs[0]["masked_l1"]


def test_adv_weight_zero_is_the_supervised_baseline_and_the_weights_are_checked(tmp_path):
    plain = gankit.train(config(tmp_path, "plain", steps=3, adv_weight=0.0))
    start = gankit.train(config(tmp_path, "start", steps=1, adv_weight=0.0))
    for role in ("discriminator", "local_discriminator"):          # never trained: their initial weights
        for a, b in zip(plain.method.modules[role].parameters(), start.method.modules[role].parameters()):
            assert torch.equal(a, b)
    logs = (plain.path / "metrics.jsonl").read_text()
    assert "masked_l1" in logs and "d_loss" not in logs and "g_loss" not in logs
    with pytest.raises(ConfigError, match="both 0: nothing would tell the generator"):
        gankit.train(config(tmp_path, "none", steps=1, rec_weight=0.0, adv_weight=0.0))
    with pytest.raises(ConfigError, match="method.outside_weight must not be negative"):
        gankit.train(config(tmp_path, "neg", steps=1, outside_weight=-1.0))
    with pytest.raises(ConfigError, match="method.local_size must be between 1 and the shorter side \\(16\\)"):
        gankit.train(config(tmp_path, "big", steps=1, local_size=20))
    l2 = gankit.train(config(tmp_path, "l2", steps=2, rec_loss="l2", outside_weight=0.1, local_size=6,
                             pairs="mask_free", objective="hinge"))
    assert {"masked_l2", "outside"} <= set(json.loads((l2.path / "metrics.jsonl").read_text().splitlines()[-1]))


def test_data_without_masks_is_refused_with_what_to_set(tmp_path):
    with pytest.raises(ConfigError, match="trains on a field 'mask'.*data.pairs=mask"):
        gankit.train(config(tmp_path, "none", steps=1, pairs="none"))
    with pytest.raises(ConfigError, match="trains on a field 'mask'.*data.pairs=mask"):
        gankit.train(config(tmp_path, "edges", steps=1, pairs="edges"))
    bad = {**config(tmp_path, "dcgan"), "generator": {"name": "dcgan", "width": 8}}
    with pytest.raises(ConfigError, match="maps noise to images; method inpaint needs an image-to-image generator"):
        gankit.train(bad)
    unet = gankit.train({**config(tmp_path, "unet", steps=2), "generator": {"name": "unet", "width": 8}})
    assert unet.method.generator.in_channels == 2                      # the picture and its mask


def test_sampling_given_pictures_and_masks_and_from_the_pool(trained):
    _, run, _ = trained
    pool = run.method.pool
    assert pool.shape == (256, 2, 16, 16) and pool.dtype == torch.uint8
    assert set(pool[:, 1].unique().tolist()) <= {0, 255}              # the masks beside the inputs
    loaded = gankit.load_run(run.path)
    assert torch.equal(loaded.method.pool, pool)                      # kept in the checkpoint
    test = gankit.api.build_data(run.config, split="test").tensors()
    pictures, masks = test["x"][:6], test["mask"][:6]
    inside = masks == 255
    # a whole picture and its mask: the hole is filled, the rest kept exactly
    out = loaded.generate(6, seed=0, given={"input": pictures.float() / 127.5 - 1, "mask": masks.float() / 127.5 - 1})
    assert set(out) == {"x", "input", "mask"} and out["x"].shape == (6, 1, 16, 16)
    assert torch.equal(out["x"][~inside], (pictures.float() / 127.5 - 1).add(1).div(2)[~inside])
    assert not torch.equal(out["x"][inside], out["input"][inside])
    torch.testing.assert_close(out["mask"], masks.float() / 255)
    # the data's holed input gives the same completion (the hole is filled with mid-grey either way)
    holed = loaded.generate(6, seed=3, given={"input": test["input"][:6].float() / 127.5 - 1,
                                               "mask": masks.float() / 127.5 - 1})
    torch.testing.assert_close(holed["x"][inside], out["x"][inside])
    drawn = loaded.generate(12, seed=1)                               # no conditions: pairs from the pool
    pairs_drawn = torch.cat([drawn["input"], drawn["mask"]], 1).mul(255).round().to(torch.uint8)
    assert all(any(torch.equal(d, p) for p in pool) for d in pairs_drawn)
    with pytest.raises(ConfigError, match="'mask' must have samples of shape \\(1, 16, 16\\)"):
        loaded.generate(2, given={"input": torch.zeros(2, 1, 16, 16), "mask": torch.zeros(2, 2, 16, 16)})
    untrained = gankit.train(config(run.path.parent, "zero", steps=1, pool=8))
    untrained.method.pool = untrained.method.pool[:0]
    with pytest.raises(ConfigError, match="no pictures to complete: give them with their masks"):
        untrained.generate(2, seed=0)


def test_evaluation_completes_the_held_out_pictures(trained):
    from gankit.metrics.evaluate import evaluate_run

    _, run, _ = trained
    test = gankit.api.build_data(run.config, split="test")
    t = test.tensors()
    result = evaluate_run(run, metrics=["masked_l1", "masked_psnr"], n=len(test))
    out = run.generate(len(test), given={"input": t["input"].float() / 127.5 - 1,
                                         "mask": t["mask"].float() / 127.5 - 1})["x"]
    target, inside = test.x.float() / 255, (t["mask"] == 255)
    expect = np.mean([((out[i] - target[i]).abs()[inside[i]]).mean().item() for i in range(len(test))])
    assert result["masked_l1"] == pytest.approx(expect, rel=1e-5)
    fill = []
    for i in range(len(test)):
        known = t["input"][i][~inside[i]].float() / 255
        fill.append((target[i][inside[i]] - known.mean()).abs().mean().item())
    assert result["masked_l1_fill"] == pytest.approx(np.mean(fill), rel=1e-5)
    mse = [((out[i] - target[i])[inside[i]] ** 2).mean().item() for i in range(len(test))]
    assert result["masked_psnr"] == pytest.approx(np.mean([-10 * np.log10(m) for m in mse]), rel=1e-4)
    np.testing.assert_allclose(paired.masked_l1_error(out, out, inside), 0.0)
    with pytest.raises(ConfigError, match="masked_l1 measures completions inside their masks"):
        from conftest import toy_config

        evaluate_run(gankit.train(toy_config(run.path.parent / "toy", steps=1)), metrics=["masked_l1"], n=10)


# ----------------------------------------------------------------------------------- the command line

def _write_pngs(folder, images):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i:02d}.png")
    return folder


def test_gankit_sample_completes_the_users_pictures(trained, capsys):
    from PIL import Image

    _, run, tmp = trained
    pictures = gankit.api.build_data(run.config, split="test").x[:4, 0].numpy()
    folder = _write_pngs(tmp / "mine", pictures)
    npz = tmp / "completed.npz"
    assert main(["sample", str(run.path), "--input", str(folder), "--mask", "3,5,6,4", "--out", str(npz)]) == 0
    with np.load(npz) as f:
        x, shown, mask = f["x"], f["input"], f["mask"]
    assert x.shape == (4, 1, 16, 16) and mask.shape == (4, 1, 16, 16)
    hole = np.zeros((16, 16), bool)
    hole[5:9, 3:9] = True                                               # rows y..y+h, columns x..x+w
    assert (mask[:, 0] == 255).tolist() == [hole.tolist()] * 4
    assert (shown[:, 0][:, hole] == MASK_FILL).all()                    # the input shown with its hole filled
    assert np.array_equal(x[:, 0][:, ~hole], pictures[:, ~hole])       # the known pixels, untouched
    # a mask file (white: fill), one picture, a folder of PNGs as the output
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp / "hole.png")
    Image.fromarray(pictures[0]).save(tmp / "one.png")
    out_dir = tmp / "filled"
    assert main(["sample", str(run.path), "--input", str(tmp / "one.png"), "--mask", str(tmp / "hole.png"),
                 "--out", str(out_dir)]) == 0
    files = sorted(out_dir.iterdir())
    assert [p.name for p in files] == ["0000.png"]
    again = np.asarray(Image.open(files[0]))
    assert again.shape == (16, 16) and np.array_equal(again, x[0, 0])  # the same completion as with the rectangle
    png = tmp / "grid.png"
    assert main(["sample", str(run.path), "--input", str(folder), "--mask", "3,5,6,4", "--out", str(png)]) == 0
    assert Image.open(png).size == (2 + 2 * 3 * 18, 2 + 2 * 18)         # input | mask | completion, 2 a row
    capsys.readouterr()

    def refused(*args, match):
        out = tmp / "refused.npz"
        assert main(["sample", str(run.path), *args, "--out", str(out)]) == 2
        assert not out.exists()                                         # nothing written
        err = capsys.readouterr().err
        assert match in err, err

    refused("--input", str(folder), "--mask", "12,5,6,4", match="does not lie inside the 16x16 pictures")
    refused("--input", str(folder), "--mask", "3,5,0,4", match="does not lie inside")
    refused("--input", str(folder), "--mask", "3,5,6", match="give a rectangle as four whole numbers X,Y,W,H")
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp / "big.png")
    refused("--input", str(folder), "--mask", str(tmp / "big.png"), match="a mask of 20x20 pixels, but the pictures "
            "are 16x16")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp / "black.png")
    refused("--input", str(folder), "--mask", str(tmp / "black.png"), match="black everywhere")
    refused("--input", str(folder), match="mark it with --mask X,Y,W,H")
    refused("--mask", "3,5,6,4", match="give --input FILE_OR_FOLDER too")


def test_mask_is_refused_for_a_run_that_takes_no_mask(tmp_path, capsys):
    p2p = {**config(tmp_path, "p2p", steps=1, pairs="edges"), "method": {"name": "pix2pix"},
           "generator": {"name": "unet", "width": 8}, "discriminator": {"name": "patchgan", "width": 8,
                                                                        "receptive_field": 16}}
    del p2p["local_discriminator"]
    run = gankit.train(p2p)
    folder = _write_pngs(tmp_path / "edges", run.data.tensors()["input"][:2, 0].numpy())
    out = tmp_path / "out.npz"
    assert main(["sample", str(run.path), "--input", str(folder), "--mask", "1,1,4,4", "--out", str(out)]) == 2
    assert "--mask: the pix2pix method of this run takes input (image)" in capsys.readouterr().err
    assert not out.exists()
    assert main(["sample", str(run.path), "--input", str(folder), "--out", str(out)]) == 0   # as before


# ----------------------------------------------------------------------------------- the shipped config

@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason="Fashion-MNIST is not installed at /usr/share/datasets/"
                    "fashion-mnist (apt-get install dataset-fashion-mnist)")
def test_the_fashion_mnist_config_builds_on_the_real_data(tmp_path):
    cfg = gankit.api.make_config(str(Path(__file__).parent.parent / "configs" / "inpaint_fashion_mnist.yaml"),
                                 ["train.steps=2", "train.batch_size=8", f"out={tmp_path / 'run'}",
                                  "train.progress=none", "runtime.threads=1", "generator.width=4",
                                  "discriminator.width=4", "local_discriminator.width=4", "train.sample_every=0"])
    run = gankit.train(cfg)
    assert run.info.fields["mask"].shape == (1, 28, 28) and run.method.local == (14, 14)
    assert run.generate(4, seed=0)["x"].shape == (4, 1, 28, 28)
