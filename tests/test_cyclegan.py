"""cyclegan: on tiny unpaired domains (B = the negatives of other pictures of A's kind) a short
run lowers the cycle error well below its start and translates towards B (its outputs take
B's statistics and approach the known transform, far closer than the identity mapping);
the history pools and resume are exact; evaluation compares translations with domain B and
its metrics equal direct computations; the data sets' disjoint halves; Fashion-MNIST-M;
`gankit sample --input` shows input | translation | reconstruction; clear errors."""
from pathlib import Path

import numpy as np
import pytest
import torch

import gankit
from gankit.api import build_data
from gankit.cli import main
from gankit.data.domains import blend_images, crops_for, take_half
from gankit.errors import ConfigError
from gankit.methods._pools import HistoryPool, InputPool

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(not REAL_FASHION.is_dir(), reason=f"Fashion-MNIST is not installed at {REAL_FASHION}")


def domains(folder, n=400, size=16, seed=0):
    """Two unpaired .npz domains of n/2 colour pictures each: A, a bright rectangle on a dark
    ground (label: its height's parity); B, the negatives of *other* such pictures."""
    path_a, path_b = folder / "a.npz", folder / "b.npz"
    if not path_b.exists():
        rng = np.random.default_rng(seed)
        x = np.full((n, size, size, 3), 20, np.uint8)
        y = np.zeros(n, np.int64)
        for i, img in enumerate(x):
            top, left = rng.integers(0, size // 2, size=2)
            h, w = rng.integers(size // 4, size // 2 + 1, size=2)
            img[top:top + h, left:left + w] = rng.integers(160, 256)
            y[i] = h % 2
        np.savez(path_a, x=x[:n // 2], y=y[:n // 2])
        np.savez(path_b, x=255 - x[n // 2:], y=y[n // 2:])
    return path_a, path_b


def cg_config(tmp_path, name="run", steps=150, **method):
    a, b = domains(tmp_path)
    g = {"name": "resnet", "width": 8, "blocks": 2}
    d = {"name": "patchgan", "width": 8, "receptive_field": 16, "norm": "instance"}
    return {"method": {"name": "cyclegan", **method},
            "data": {"name": "array", "path": str(a), "test_fraction": 0.25},
            "data_b": {"name": "array", "path": str(b), "test_fraction": 0.25},
            "generator": g, "generator_ba": g, "discriminator": d, "discriminator_a": d,
            "train": {"steps": steps, "batch_size": 16, "log_every": 10, "sample_every": 0,
                      "checkpoint_every": 1000, "progress": "none", "seed": 1},
            "optim": {"lr_g": 2e-3, "lr_d": 2e-3, "beta1": 0.5},
            "runtime": {"threads": 1}, "out": str(tmp_path / name)}


def test_a_short_run_learns_to_translate_and_to_come_back(tmp_path):
    start = gankit.train(cg_config(tmp_path, "start", steps=1))
    run = gankit.train(cg_config(tmp_path, "run", steps=150))
    a = build_data(run.config, split="test").x.float() / 255        # held-out pictures of A
    b = build_data(run.config, split="test", source="b").x.float() / 255

    def measure(r):
        out = r.generate(len(a), seed=0, given={"input": a * 2 - 1})
        torch.testing.assert_close(out["input"], a)
        return ((out["reconstruction"] - a).abs().mean().item(),          # cycle error
                abs(out["x"].mean().item() - b.mean().item()),            # distance to B's mean brightness
                (out["x"] - (1 - a)).abs().mean().item())                 # L1 to the known transform
    cycle0, _, _ = measure(start)
    cycle, mean_gap, to_negative = measure(run)
    assert cycle < 0.4 * cycle0, (cycle0, cycle)                          # measured: 0.33 -> 0.06
    identity_gap = abs(a.mean().item() - b.mean().item())                 # the identity mapping: 0.63
    assert mean_gap < 0.2 * identity_gap, (mean_gap, identity_gap)        # measured: 0.02
    identity_to_negative = (a - (1 - a)).abs().mean().item()              # 0.82
    assert to_negative < 0.5 * identity_to_negative, (to_negative, identity_to_negative)   # measured: 0.24


def test_the_history_pool():
    torch.manual_seed(0)
    pool = HistoryPool(4)
    first = torch.arange(3.0).view(3, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and len(pool) == 3      # filling: shown and kept
    second = torch.arange(10.0, 16.0).view(6, 1, 1, 1)
    shown = pool.query(second)
    assert len(pool) == 4
    assert torch.equal(shown[0], second[0])                                # the fourth still fills the pool
    given = first.flatten().tolist() + second.flatten().tolist()
    for i, (old, new) in enumerate(zip(shown.flatten().tolist(), second.flatten().tolist())):
        assert old == new or old in given[:3 + i]                          # the new one, or an earlier one
    assert any(s != n for s, n in zip(shown.flatten().tolist(), second.flatten().tolist()))
    assert set(pool.images.flatten().tolist()) <= set(given)
    again = HistoryPool(4)
    again.load(pool.state())
    assert torch.equal(again.images, pool.images)
    assert torch.equal(HistoryPool(0).query(second), second)               # no history: the new ones

    inputs = InputPool(5, (1, 1, 1))
    inputs.add(torch.full((3, 1, 1, 1), -1.0))
    inputs.add(torch.ones(4, 1, 1, 1))
    assert inputs.images.flatten().tolist() == [0, 0, 0, 255, 255]
    assert InputPool(2, (1, 1, 1)).draw(3) is None


def test_resume_is_bit_identical_with_the_pools(tmp_path):
    straight = gankit.train(cg_config(tmp_path, "straight", steps=6, pool=4))
    stopped = gankit.train({**cg_config(tmp_path, "resumed", steps=3, pool=4),
                            "train": {**cg_config(tmp_path)["train"], "steps": 3, "checkpoint_every": 3}})
    resumed = gankit.resume(stopped.path, steps=6)
    sa, sb = straight.method.state_dict(), resumed.method.state_dict()
    for role in ("discriminator", "discriminator_a"):
        assert sa["extra"][f"history_{role}"].shape[0] == 4               # full, and swapping
        assert torch.equal(sa["extra"][f"history_{role}"], sb["extra"][f"history_{role}"])
    assert torch.equal(sa["extra"]["inputs"], sb["extra"]["inputs"])
    for role in ("generator", "generator_ba", "discriminator", "discriminator_a"):
        for k, v in sa["modules"][role].items():
            assert torch.equal(v, sb["modules"][role][k]), f"{role}.{k}"


def test_evaluation_compares_translations_with_domain_b_and_its_metrics_are_direct(tmp_path):
    from gankit.metrics.evaluate import evaluate_run, get_extractor as extractor_of
    from gankit.metrics.features import get_extractor
    from gankit.metrics.fid import fid

    run = gankit.train(cg_config(tmp_path, "run", steps=4))
    n, pixels = 60, "pixels:image_size=4"
    result = evaluate_run(run, metrics=["fid", "cycle_error", "translation_accuracy"], n=n, features=pixels)
    a_test = build_data(run.config, split="test")
    b_test = build_data(run.config, split="test", source="b")
    idx = torch.arange(n) % len(a_test)                                    # held-out A, cycled
    inputs = a_test.x[idx].float() / 255
    out = run.generate(n, seed=0, given={"input": inputs * 2 - 1})
    flat = extractor_of(pixels).features
    real_b = b_test.x[:n].float() / 255
    assert result["fid"] == pytest.approx(fid(flat(real_b), flat(out["x"])), rel=1e-9)
    real_a = a_test.x[:n].float() / 255
    assert result["fid"] != pytest.approx(fid(flat(real_a), flat(out["x"])), rel=1e-3)   # not A's
    assert result["cycle_error"] == pytest.approx((out["reconstruction"] - inputs).abs().mean().item(), rel=1e-6)
    ext = get_extractor("fashion_mnist")
    want = a_test.y[idx].numpy()
    assert result["translation_accuracy"] == pytest.approx(float((ext.classify(out["x"]) == want).mean()))
    assert result["translation_accuracy_input"] == pytest.approx(float((ext.classify(inputs) == want).mean()))
    assert result["translation_accuracy_real"] == pytest.approx(
        float((ext.classify(real_b) == b_test.y[:len(real_b)].numpy()).mean()))


def test_sample_shows_input_translation_and_reconstruction(tmp_path):
    from PIL import Image

    run = gankit.train(cg_config(tmp_path, "run", steps=2))
    folder = tmp_path / "inputs"
    folder.mkdir()
    pictures = build_data(run.config, split="test").x[:4]
    for i, p in enumerate(pictures):
        Image.fromarray(p.permute(1, 2, 0).numpy()).save(folder / f"{i}.png")
    out = tmp_path / "grid.png"
    assert main(["sample", str(run.path), "--input", str(folder), "--out", str(out)]) == 0
    grid = torch.from_numpy(np.array(Image.open(out))).permute(2, 0, 1).float() / 255
    assert grid.shape == (3, 2 + 2 * 18, 2 + 6 * 18)                       # 2 rows of 2 samples x 3 tiles
    loaded = gankit.load_run(run.path)
    g = loaded.generate(4, seed=0, given={"input": pictures.float() / 127.5 - 1})
    tile = lambda r, c: grid[:, 2 + 18 * r:18 * r + 18, 2 + 18 * c:18 * c + 18]   # noqa: E731
    for k, name in enumerate(("input", "x", "reconstruction")):         # sample 0: input | translation | back
        assert (tile(0, k) - g[name][0]).abs().max() <= 1 / 255 + 1e-6, name
    assert main(["sample", str(run.path), "--out", str(tmp_path / "pool.png")]) == 0   # inputs from its pool


def test_sample_to_a_translates_pictures_of_b_back(tmp_path, capsys):
    from PIL import Image

    run = gankit.train(cg_config(tmp_path, "run", steps=2))
    folder = tmp_path / "b_pictures"
    folder.mkdir()
    pictures = build_data(run.config, split="test", source="b").x[:3]
    for i, p in enumerate(pictures):
        Image.fromarray(p.permute(1, 2, 0).numpy()).save(folder / f"{i}.png")
    out = tmp_path / "back.npz"
    assert main(["sample", str(run.path), "--input", str(folder), "--to", "A", "--out", str(out)]) == 0
    loaded = gankit.load_run(run.path)
    b = pictures.float() / 127.5 - 1
    with torch.no_grad():
        back = loaded.method.for_sampling("generator_ba").eval()(b)
    with np.load(out) as f:
        assert set(f.files) == {"x", "input_b", "reconstruction"}
        assert np.array_equal(f["input_b"], pictures.numpy())
        assert np.abs(f["x"] / 255.0 - (back.numpy() + 1) / 2).max() <= 1 / 255 + 1e-6
    assert main(["sample", str(run.path), "--input", str(folder), "--to", "B", "--out", str(out)]) == 0
    with np.load(out) as f:
        assert "input" in f.files                                         # the usual way, A to B
    assert main(["sample", str(run.path), "--to", "A", "--out", str(out)]) == 2
    assert "give them with --input" in capsys.readouterr().err
    assert main(["sample", str(run.path), "--to", "C", "--out", str(out)]) == 2
    assert "to B (its data_b) or back to A" in capsys.readouterr().err


def test_clear_errors(tmp_path, capsys):
    no_b = cg_config(tmp_path)
    del no_b["data_b"]
    with pytest.raises(ConfigError, match="data_b"):
        gankit.train(no_b)
    grey = tmp_path / "grey.npz"
    np.savez(grey, x=np.zeros((40, 16, 16), np.uint8))
    mismatch = cg_config(tmp_path)
    mismatch["data_b"] = {"name": "array", "path": str(grey), "test_fraction": 0.25}
    with pytest.raises(ConfigError, match="1 channels? .*identity_weight=0|channels.*identity_weight=0"):
        gankit.train(mismatch)
    gankit.train({**mismatch, "method": {"name": "cyclegan", "identity_weight": 0.0},
                  "train": {**mismatch["train"], "steps": 1}, "out": str(tmp_path / "no_identity")})
    small = tmp_path / "small.npz"
    np.savez(small, x=np.zeros((40, 8, 8, 3), np.uint8))
    with pytest.raises(ConfigError, match="one size"):
        gankit.train({**cg_config(tmp_path), "data_b": {"name": "array", "path": str(small)}})
    with pytest.raises(ConfigError, match="image-to-image"):
        gankit.train({**cg_config(tmp_path), "generator_ba": {"name": "dcgan"}})
    with pytest.raises(ConfigError, match="optim.lr.generator"):
        gankit.train({**cg_config(tmp_path), "optim": {"lr": {"generator_ba": 1e-4}}})
    with pytest.raises(ConfigError, match="cycle_weight must not be negative"):
        gankit.train(cg_config(tmp_path, cycle_weight=-1.0))
    with pytest.raises(ConfigError, match="half must be one of all, first, second"):
        gankit.api.make_config({**cg_config(tmp_path), "data_b": {"name": "array", "path": "x.npz", "half": "third"}})
    a, b = domains(tmp_path)
    code = main(["train", "--out", str(tmp_path / "cli"), "--set", "method.name=cyclegan", "data.name=array",
                 f"data.path={a}", "generator.name=auto"])
    assert code == 2 and "data_b" in capsys.readouterr().err


# ------------------------------------------------------------------------ data sets

def test_disjoint_halves_of_any_data_set(tmp_path):
    x = np.arange(11 * 4, dtype=np.uint8).reshape(11, 2, 2)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(11))
    whole = build_data(gankit.api.make_config({"data": {"name": "array", "path": str(tmp_path / "d.npz")}}))
    halves = [build_data(gankit.api.make_config({"data": {"name": "array", "path": str(tmp_path / "d.npz"),
                                                          "half": h}})) for h in ("first", "second")]
    assert halves[0].y.tolist() == list(range(5)) and halves[1].y.tolist() == list(range(5, 11))
    assert torch.equal(torch.cat([h.x for h in halves]), whole.x)         # disjoint, and together the whole
    assert take_half(whole, "all") is whole


def test_halves_of_photos_stay_lazy(tmp_path):
    from PIL import Image

    from gankit.data.photos import Patches, photos

    for i in range(3):
        Image.fromarray(np.full((40, 40, 3), 60 * i, np.uint8)).save(tmp_path / f"{i}.png")
    data = photos(root=str(tmp_path), image_size=16, patches_per_photo=5, test_fraction=0.0)
    second = take_half(data, "second")
    assert isinstance(second.x, Patches) and torch.equal(second.x[:], data.x[len(data) // 2:])


def test_blend_and_crops():
    g = torch.tensor([0, 100, 255], dtype=torch.uint8).view(3, 1, 1, 1).expand(3, 1, 2, 2)
    c = torch.tensor([10, 200, 30], dtype=torch.uint8).view(1, 3, 1, 1).expand(3, 3, 2, 2)
    d = blend_images(g, c, "difference")
    assert torch.equal(d[0], c[0])                                         # no garment: the photograph
    assert d[1, :, 0, 0].tolist() == [90, 100, 70] and d[2, :, 0, 0].tolist() == [245, 55, 225]
    m = blend_images(g, c, "mask")
    assert torch.equal(m[0], c[0]) and torch.equal(m[2], 255 - c[2])       # full garment: the negative
    pics = [torch.arange(3 * 30 * 40, dtype=torch.int64).remainder(251).to(torch.uint8).view(3, 30, 40),
            torch.zeros(3, 20, 20, dtype=torch.uint8)]
    crops = crops_for(pics, 50, 8, seed=3)
    assert torch.equal(crops, crops_for(pics, 50, 8, seed=3)) and not torch.equal(crops, crops_for(pics, 50, 8, 4))
    big = pics[0].unfold(1, 8, 1).unfold(2, 8, 1)                           # every 8x8 crop of picture 0
    for crop in crops:
        if crop.any():                                                     # from picture 0: one of its crops
            assert (big == crop[:, None, None]).flatten(3).all(3).all(0).any()


@needs_fashion
def test_fashion_mnist_m():
    cfg = lambda **kw: gankit.api.make_config({"data": {"name": "fashion_mnist_m", "backgrounds": "scikit-learn",  # noqa: E731
                                                        **kw}})
    test = build_data(cfg(split="test"))
    plain = build_data(gankit.api.make_config({"data": {"name": "fashion_mnist", "split": "test"}}))
    assert test.x.shape == (10_000, 3, 28, 28) and torch.equal(test.y, plain.y)
    assert torch.equal(build_data(cfg(split="test", half="second")).x, test.x[5000:])   # per sample index
    black = plain.x[:, 0] == 0                                             # no garment: an untouched photograph,
    spread = test.x.float().std(1)                                         # which is in colour
    assert spread[black].mean() > 3 and (test.x[:, :, :, :].float().mean() > 30)
    again = build_data(cfg(split="test"))
    assert torch.equal(again.x, test.x)
