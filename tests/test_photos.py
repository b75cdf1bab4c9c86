"""The ``photos`` data set: patches cut on the fly from photographs held in memory.

The loader is tested on small generated "photographs" (``data.root``, and a fake tree laid
out like the Debian and Python packages); the last tests read the packaged photographs and
skip where they are not installed."""
import time

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.data import photos as P
from gankit.data.base import Dataset
from gankit.data.stream import BatchStream
from gankit.errors import ConfigError, DataError
from gankit.registries import DATASETS, load_all

SIZES = [(96, 64), (80, 80), (120, 70), (64, 100), (90, 60), (110, 90)]   # (width, height)


def _picture(k, w, h):
    """Photograph k: red channel k's own value (tells the photographs apart), green and blue
    ramps along x and y (tell positions and mirroring apart)."""
    a = np.empty((h, w, 3), dtype=np.uint8)
    a[..., 0] = 30 * k + 5
    a[..., 1] = (np.arange(w) * 255 // max(w - 1, 1))[None, :]
    a[..., 2] = (np.arange(h) * 255 // max(h - 1, 1))[:, None]
    return a


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "pics"
    (root / "sub").mkdir(parents=True)
    for k, (w, h) in enumerate(SIZES):
        name = f"sub/p{k}.png" if k == 5 else f"p{k}.png"
        Image.fromarray(_picture(k, w, h)).save(root / name)
    return root


def load(root, **kw):
    kw = {"image_size": 16, "max_side": 200, "patches_per_photo": 30, **kw}
    return P.photos(root=str(root), **kw)


def test_counts_shape_dtype_and_indexing(folder):
    train, test = load(folder), load(folder, split="test")
    assert isinstance(train, Dataset) and train.kind == "image" and train.name == "photos"
    assert len(train.x.names) == 5 and len(test.x.names) == 1          # round(6 * 0.2) = 1 held out
    assert len(train) == 150 and len(test) == 30
    assert train.shape == (3, 16, 16) and train.x.shape == (150, 3, 16, 16)
    assert train.x.dtype == torch.uint8 and train.x.dim() == 4
    assert train.fields()["x"].shape == (3, 16, 16)
    x = train.x
    whole = x[:]
    assert isinstance(whole, torch.Tensor) and whole.shape == (150, 3, 16, 16) and whole.dtype == torch.uint8
    assert torch.equal(x[7], whole[7]) and torch.equal(x[-1], whole[149])
    assert torch.equal(x[torch.tensor([3, 0, 3])], whole[[3, 0, 3]])
    assert torch.equal(x[[5, 6]], whole[[5, 6]]) and torch.equal(x[np.array([9, 2])], whole[[9, 2]])
    assert torch.equal(x[10:40:3], whole[10:40:3]) and torch.equal(x[torch.tensor(4)], whole[4])
    assert torch.equal(x[20:5:-4], whole[[20, 16, 12, 8]]) and torch.equal(x[::-1][0], whole[149])
    mask = torch.zeros(150, dtype=torch.bool)
    mask[[1, 8]] = True
    assert torch.equal(x[mask], whole[mask])
    assert torch.equal(x[torch.tensor([[1, 2], [3, 4]])], whole[torch.tensor([[1, 2], [3, 4]])])
    assert torch.equal(x[2:4, 1], whole[2:4, 1])
    assert x[torch.tensor([], dtype=torch.long)].shape == (0, 3, 16, 16)
    for bad in (150, -151):
        with pytest.raises(IndexError):
            x[bad]
    with pytest.raises(IndexError):
        x[torch.tensor([0, 150])]
    with pytest.raises(IndexError):
        x[torch.tensor([0.5])]
    # what evaluation does with a data set's x: a prefix as floats, and the whole as floats
    assert torch.equal(x[:10].float(), whole[:10].float()) and torch.equal(x.float(), whole.float())
    assert np.array_equal(x.numpy(), whole.numpy()) and np.array_equal(np.asarray(x), whole.numpy())


def test_each_sample_is_the_crop_it_names(folder):
    data = load(folder)
    x, s = data.x, 16
    assert 0 < int(x.flipped.sum()) < len(x)                     # about half are mirrored
    for i in range(0, len(x), 7):
        p = int(x.photo[i])
        t, left = int(x.top[i]), int(x.left[i])
        crop = x.photos[p][:, t:t + s, left:left + s]
        assert torch.equal(x[i], crop.flip(-1) if x.flipped[i] else crop)
        assert x.locate(i) == (x.names[p], t, left, bool(x.flipped[i]))
    plain = load(folder, flip=False).x
    assert not plain.flipped.any()
    assert torch.equal(plain.top, x.top) and torch.equal(plain.left, x.left)   # mirroring moves no crop


def test_downscaled_to_max_side_never_enlarged(folder):
    x = load(folder, max_side=60, image_size=16, test_fraction=0.0).x
    sizes = {n: tuple(p.shape[1:]) for n, p in zip(x.names, x.photos)}
    assert sizes["p0.png"] == (40, 60)        # 96x64 -> 60x40 (h, w) = (40, 60)
    assert sizes["p3.png"] == (60, 38)        # 64x100 -> 38x60
    assert sizes["sub/p5.png"] == (49, 60)    # 110x90 -> 60x49
    big = load(folder, max_side=500, test_fraction=0.0).x
    assert {tuple(p.shape[1:]) for p in big.photos} == {(h, w) for w, h in SIZES}
    # the red channel survives the resizing: it still tells the photographs apart
    assert [int(p[0].float().mean().round()) for p in x.photos] == [30 * k + 5 for k in range(6)]


def test_deterministic_and_spread_over_the_photographs(folder):
    a, b = load(folder), load(folder)
    assert torch.equal(a.x[:], b.x[:])
    n_photos = len(a.x.names)
    assert torch.equal(a.x.photo, torch.arange(len(a)) % n_photos)   # sample i from photograph i mod P
    # a photograph's crops depend on its name only, not on which other photographs there are
    whole = load(folder, test_fraction=0.0).x
    for p, name in enumerate(a.x.names):
        q = whole.names.index(name)
        assert torch.equal(a.x.top[a.x.photo == p], whole.top[whole.photo == q])


def test_no_test_patch_comes_from_a_training_photograph(folder):
    train, test = load(folder, test_fraction=0.34), load(folder, split="test", test_fraction=0.34)
    assert not set(train.x.names) & set(test.x.names)
    assert sorted(train.x.names + test.x.names) == sorted([f"p{k}.png" for k in range(5)] + ["sub/p5.png"])
    assert len(test.x.names) == 2
    red = {name: 30 * int(name[-5]) + 5 for name in train.x.names + test.x.names}   # pK.png
    train_red = {red[n] for n in train.x.names}
    test_red = set(test.x[:][:, 0].flatten().tolist())      # every pixel of every test patch
    assert test_red == {red[n] for n in test.x.names} and not test_red & train_red
    with pytest.raises(DataError, match="no test split"):
        load(folder, split="test", test_fraction=0.0)
    assert len(load(folder, test_fraction=0.0).x.names) == 6


def test_batch_stream_resumes_exactly(folder):
    data = load(folder)                        # 150 samples: 9 batches of 16 an epoch
    full = BatchStream(data.tensors(), 16, seed=5)
    reference = [full.next()["x"] for _ in range(14)]      # crosses an epoch
    first = BatchStream(data.tensors(), 16, seed=5)
    for _ in range(6):
        first.next()
    state = first.state_dict()
    again = BatchStream(load(folder).tensors(), 16, seed=5)   # a fresh load, as `gankit resume` does
    again.load_state_dict(state)
    for k in range(6, 14):
        assert torch.equal(again.next()["x"], reference[k])
    # one epoch is every sample once
    stream = BatchStream(data.x, 15, seed=1)
    seen = torch.cat([stream.next() for _ in range(10)])
    assert sorted(map(bytes, seen.numpy())) == sorted(map(bytes, data.x[:].numpy()))


def test_settings_are_checked(folder, tmp_path):
    with pytest.raises(ConfigError, match="image_size"):
        load(folder, image_size=0)
    with pytest.raises(ConfigError, match="patches_per_photo"):
        load(folder, patches_per_photo=0)
    with pytest.raises(ConfigError, match="max_side=8 is smaller than data.image_size=16"):
        load(folder, max_side=8)
    with pytest.raises(ConfigError, match="sources"):
        load(folder, sources=["scikit-learn"])
    with pytest.raises(ConfigError, match="test_fraction"):
        load(folder, test_fraction=1.0)
    with pytest.raises(ConfigError, match="test_fraction applies to a folder of your own"):
        P.photos(test_fraction=0.1)
    with pytest.raises(ConfigError, match="did you mean 'scikit-image'"):
        P.photos(sources=["scikit-imag"])
    with pytest.raises(ConfigError, match="empty"):
        P.photos(sources=[])
    with pytest.raises(ConfigError, match="twice"):
        P.photos(sources=["scikit-learn", "scikit-learn"])
    with pytest.raises(DataError, match="shorter than data.image_size=70"):
        load(folder, image_size=70, max_side=100, test_fraction=0.0)
    with pytest.raises(DataError, match="no such folder"):
        P.photos(root=str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no photographs under"):
        P.photos(root=str(tmp_path / "empty"))
    load_all()
    assert set(DATASETS.entry("photos").params) == {"split", "image_size", "patches_per_photo", "max_side", "flip",
                                                   "sources", "root", "test_fraction", "labels"}
    with pytest.raises(ConfigError, match="data.labels"):
        DATASETS.resolve_params("photos", {"labels": "hue"}, "data")
    with pytest.raises(ConfigError, match="data.split"):
        DATASETS.resolve_params("photos", {"split": "val"}, "data")


# ------------------------------------------------------------------ colour classes
def test_colour_labels_are_the_nearest_anchor_to_each_cut_patchs_mean_colour(folder):
    d = load(folder, labels="colour")
    whole = d.x[:]
    mean = whole.double().mean((2, 3))                      # cut every patch and average it directly
    assert torch.allclose(P.patch_means(d.x), mean, atol=1e-9)
    anchors = torch.tensor(list(P.COLOURS.values()), dtype=torch.float64)
    nearest = torch.cdist(mean, anchors).argmin(1)
    assert torch.equal(d.y, nearest)
    assert d.classes == list(P.COLOURS) and d.fields()["y"].n_classes == len(P.COLOURS)
    assert len(set(d.y.tolist())) >= 3                      # the ramps and red levels span several classes
    # the rule also labels images in [0, 1], as generated samples arrive
    assert torch.equal(P.colour_scores(whole.float() / 255).argmax(1), d.y)
    with pytest.raises(ConfigError, match=r"colour images \(N, 3, H, W\)"):
        P.colour_scores(torch.zeros(2, 1, 8, 8))
    assert load(folder).y is None


def test_conditional_accuracy_judges_photos_by_their_colour_rule(folder, tmp_path):
    from gankit.metrics.evaluate import EvalSet, evaluate

    d = load(folder, labels="colour")
    x = d.x[:].float() / 255
    right = EvalSet(x, x, "image", label_scores=P.colour_scores, fake_labels=d.y)
    assert evaluate(right, ["conditional_accuracy"])["conditional_accuracy"] == 1.0
    shifted = (d.y + 1) % len(P.COLOURS)
    wrong = EvalSet(x, x, "image", label_scores=P.colour_scores, fake_labels=shifted)
    assert evaluate(wrong, ["conditional_accuracy"])["conditional_accuracy"] == 0.0


def test_a_conditional_gan_trains_on_colour_classes(folder, tmp_path):
    run = gankit.train({"method": {"name": "cgan"},
                        "data": {"name": "photos", "root": str(folder), "image_size": 16, "max_side": 200,
                                 "patches_per_photo": 30, "labels": "colour"},
                        "generator": {"name": "dcgan", "width": 8, "z_dim": 8},
                        "discriminator": {"name": "dcgan", "width": 8},
                        "train": {"steps": 2, "batch_size": 16, "progress": "none", "sample_every": 0,
                                  "checkpoint_every": 0}, "runtime": {"threads": 1}, "out": str(tmp_path / "run")})
    out = run.generate(8, given={"y": torch.full((8,), 5)})
    assert out["x"].shape == (8, 3, 16, 16) and torch.equal(out["y"], torch.full((8,), 5))


def _fake_packages(tmp_path, monkeypatch, missing=()):
    """A tree laid out like the four sources, holding small generated pictures."""
    folders = {}
    for k, source in enumerate(P.CATALOGUE):
        if source in missing:
            continue
        base = folders[source] = tmp_path / "sources" / source
        for j, photo in enumerate(P.CATALOGUE[source]):
            picture = Image.fromarray(_picture((k * 3 + j) % 8, 80 + j, 60))
            if source == "plasma-workspace-wallpapers":
                images = base / photo / "contents" / "images"
                images.mkdir(parents=True)
                picture.resize((40, 30)).save(images / "40x30.png")
                picture.save(images / "80x60.jpg")
                (images / "9999x9999.jpg").symlink_to(images / "80x60.jpg")   # Plasma's links count once
            else:
                (base / photo).parent.mkdir(parents=True, exist_ok=True)
                picture.save(base / photo)
    monkeypatch.setattr(P, "source_folder", lambda source: folders.get(source))
    return folders


def test_the_catalogue_and_its_held_out_photographs(tmp_path, monkeypatch):
    _fake_packages(tmp_path, monkeypatch)
    listed = P.packaged_photos()
    assert len(listed) == 29 and sum(held for _, _, held in listed) == 6
    assert {name for name, _, held in listed if held} == P.HELD_OUT
    plasma = [path for name, path, _ in listed if name.startswith("plasma")]
    assert all(path.name == "80x60.jpg" for path in plasma)      # the largest picture of the wallpaper
    train, test = P.photos(patches_per_photo=3, image_size=16), P.photos(split="test", patches_per_photo=3,
                                                                         image_size=16)
    assert len(train.x.names) == 23 and len(test.x.names) == 6 and set(test.x.names) == P.HELD_OUT
    assert len(train) == 69 and len(test) == 18
    few = P.photos(sources=["scikit-image", "scikit-learn"], patches_per_photo=2, image_size=16)
    assert few.x.names == ["scikit-learn:china.jpg", "scikit-image:astronaut.png", "scikit-image:coffee.png",
                           "scikit-image:motorcycle_left.png", "scikit-image:rocket.jpg"]


def test_missing_photographs_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(P, "source_folder", lambda source: None)
    with pytest.raises(DataError) as err:
        P.photos()
    msg = str(err.value)
    assert "no photographs found" in msg and "apt-get install mate-backgrounds plasma-workspace-wallpapers" in msg
    assert "pip install scikit-learn scikit-image" in msg and "data.root" in msg

    _fake_packages(tmp_path, monkeypatch, missing=("scikit-learn", "scikit-image"))
    with pytest.raises(DataError) as err:
        P.photos()
    msg = str(err.value)
    assert "pip install scikit-learn scikit-image" in msg and "apt-get" not in msg
    assert "data.sources=[mate-backgrounds,plasma-workspace-wallpapers]" in msg
    assert len(P.photos(sources=["mate-backgrounds", "plasma-workspace-wallpapers"], patches_per_photo=1,
                        image_size=8)) == 18

    folders = _fake_packages(tmp_path / "again", monkeypatch)
    (folders["mate-backgrounds"] / "nature" / "Storm.jpg").unlink()
    with pytest.raises(DataError, match="cannot find mate-backgrounds:nature/Storm.jpg"):
        P.photos()


def test_a_run_on_photos_resumes_bit_identical(folder, tmp_path):
    cfg = {"data": {"name": "photos", "root": str(folder), "image_size": 16, "patches_per_photo": 8},
           "generator": {"name": "dcgan", "width": 4, "z_dim": 8},
           "discriminator": {"name": "dcgan", "width": 4},
           "train": {"steps": 6, "batch_size": 8, "log_every": 3, "sample_every": 0, "checkpoint_every": 3,
                     "progress": "none", "seed": 2}}
    whole = gankit.train({**cfg, "out": str(tmp_path / "a")})
    gankit.train({**cfg, "train": {**cfg["train"], "steps": 3}, "out": str(tmp_path / "b")})
    resumed = gankit.resume(tmp_path / "b", steps=6)
    assert resumed.step == 6
    for name, module in whole.method.modules.items():
        for key, value in module.state_dict().items():
            assert torch.equal(value, resumed.method.modules[name].state_dict()[key]), f"{name}.{key}"


def _packaged():
    missing = [s for s in P.CATALOGUE if P.source_folder(s) is None]
    return pytest.mark.skipif(bool(missing), reason="the packaged photographs are not installed (missing "
                              + ", ".join(missing) + "; make setup installs them)")


@_packaged()
def test_the_packaged_photographs():
    start = time.perf_counter()
    train = P.photos(patches_per_photo=4)
    test = P.photos(split="test", patches_per_photo=4)
    seconds = time.perf_counter() - start
    assert len(train.x.names) == 23 and len(test.x.names) == 6 and set(test.x.names) == P.HELD_OUT
    assert len(train) == 92 and train.shape == (3, 64, 64)
    for pic in train.x.photos + test.x.photos:
        assert max(pic.shape[1:]) <= 512 and min(pic.shape[1:]) >= 64 and pic.dtype == torch.uint8
    assert train.x[:].float().std() > 20            # real pictures, not blank
    assert seconds < 15, f"loading took {seconds:.1f} s"
    assert len(P.photos(patches_per_photo=2048)) == 23 * 2048    # the default: tens of thousands
