"""Image data sets: IDX files (Fashion-MNIST, MNIST), folders of pictures, NumPy arrays."""
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gankit.data import images
from gankit.data.images import array, fashion_mnist, folder, mnist, read_idx
from gankit.errors import ConfigError, DataError
from gankit.registries import DATASETS

FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


# --------------------------------------------------------------------------- helpers

def idx_bytes(arr: np.ndarray, type_code: int = 0x08) -> bytes:
    dtype = {0x08: ">u1", 0x0C: ">i4"}[type_code]
    header = bytes([0, 0, type_code, arr.ndim]) + np.array(arr.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(arr, dtype=dtype).tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool = False, type_code: int = 0x08) -> Path:
    data = idx_bytes(arr, type_code)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def make_idx_set(folder_: Path, gz: bool = True, n: dict = None, seed: int = 0, size: int = 28) -> dict:
    """Random IDX train and test files in ``folder_``; returns {split: (images, labels)}."""
    folder_.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for split, count in (n or {"train": 12, "test": 5}).items():
        x = rng.integers(0, 256, size=(count, size, size), dtype=np.uint8)
        y = rng.integers(0, 10, size=count).astype(np.uint8)
        write_idx(folder_ / FILES[split][0], x, gz)
        write_idx(folder_ / FILES[split][1], y, gz)
        out[split] = (x, y)
    return out


@pytest.fixture(autouse=True)
def no_network(tmp_path, monkeypatch):
    """Never download; keep the user's cache and $GANKIT_DATA out of every test."""
    calls = []

    def refuse(name, dest):
        calls.append((name, Path(dest)))
        raise RuntimeError("no network in tests")

    monkeypatch.setattr(images, "download_torchvision", refuse)
    monkeypatch.setattr(images, "CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GANKIT_DATA", raising=False)
    return calls


@pytest.fixture
def no_debian(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "FASHION_MNIST_DEBIAN_DIR", str(tmp_path / "debian" / "fashion-mnist"))
    monkeypatch.setattr(images, "MNIST_DEBIAN_DIR", str(tmp_path / "debian" / "mnist"))
    return tmp_path / "debian"


def save(path: Path, arr: np.ndarray, mode: str = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(arr) if mode is None else Image.fromarray(arr).convert(mode)
    img.save(path, **kw)
    return path


def flat_rgb(value, h=8, w=8):
    return np.full((h, w, 3), value, dtype=np.uint8)


# --------------------------------------------------------------------------- IDX parser

@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_returns_what_was_written(tmp_path, gz):
    x = np.random.default_rng(1).integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    got = read_idx(write_idx(tmp_path / "a-idx3-ubyte", x, gz))
    assert got.dtype == np.uint8 and got.shape == (7, 5, 3)
    np.testing.assert_array_equal(got, x)
    got[0, 0, 0] = 1                                    # writable, so torch can use it without a warning


def test_read_idx_big_endian_int32(tmp_path):
    v = np.array([0, 1, -5, 70000], dtype=np.int32)
    got = read_idx(write_idx(tmp_path / "v", v, type_code=0x0C))
    assert got.dtype == np.dtype(np.int32) and got.dtype.isnative
    np.testing.assert_array_equal(got, v)


def test_read_idx_truncated_plain_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(np.zeros((10, 4, 4), np.uint8))[:-30])
    with pytest.raises(DataError) as err:
        read_idx(path)
    msg = str(err.value)
    assert "train-images-idx3-ubyte" in msg and "truncated" in msg
    assert "160" in msg and "130" in msg               # expected and actual payload sizes
    assert "again" in msg


def test_read_idx_truncated_gzip_stream(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    x = np.random.default_rng(2).integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    packed = gzip.compress(idx_bytes(x))
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises((EOFError, gzip.BadGzipFile)):     # what the gzip module itself would say
        gzip.decompress(path.read_bytes())
    with pytest.raises(DataError) as err:
        read_idx(path)
    msg = str(err.value)
    assert str(path) in msg and "truncated" in msg and "gzip stream ends early" in msg
    assert str(50 * 28 * 28) in msg and "download it again" in msg


def test_read_idx_complete_gzip_of_a_truncated_file(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8))[:-1]))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz is truncated.*needs 100 bytes.*found 99"):
        read_idx(path)


def test_read_idx_header_cut_short(tmp_path):
    path = tmp_path / "x-idx3"
    path.write_bytes(idx_bytes(np.zeros((2, 2, 2), np.uint8))[:9])
    with pytest.raises(DataError, match=r"x-idx3 is truncated: the header of 3 dimensions needs 16 bytes, "
                                        r"the file has 9"):
        read_idx(path)


def test_read_idx_too_long_and_not_idx(tmp_path):
    long = tmp_path / "long"
    long.write_bytes(idx_bytes(np.zeros(4, np.uint8)) + b"\0\0")
    with pytest.raises(DataError, match="2 bytes too long"):
        read_idx(long)
    png = save(tmp_path / "not-idx", flat_rgb(3), format="PNG")
    with pytest.raises(DataError, match=r"not-idx is not an IDX file: magic number 0x89504e47"):
        read_idx(png)
    bad_gz = tmp_path / "bad.gz"
    bad_gz.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(DataError, match=r"bad\.gz is not a valid gzip file"):
        read_idx(bad_gz)


# --------------------------------------------------------------------------- MNIST / Fashion-MNIST

@pytest.mark.parametrize("gz", [False, True])
def test_mnist_loads_the_files_as_written(tmp_path, gz):
    data = make_idx_set(tmp_path / "m", gz=gz)
    for split in ("train", "test"):
        d = mnist(root=str(tmp_path / "m"), split=split)
        x, y = data[split]
        assert d.kind == "image" and d.name == "mnist"
        assert d.x.dtype == torch.uint8 and d.x.shape == (len(x), 1, 28, 28)
        np.testing.assert_array_equal(d.x[:, 0].numpy(), x)
        assert d.y.dtype == torch.int64
        np.testing.assert_array_equal(d.y.numpy(), y)
        assert d.classes == [str(i) for i in range(10)]


def test_fashion_mnist_classes_and_plain_files_preferred(tmp_path):
    root = tmp_path / "f"
    data = make_idx_set(root, gz=False)
    make_idx_set(root, gz=True, seed=9)                 # different .gz copies beside the plain files
    d = fashion_mnist(root=str(root))
    np.testing.assert_array_equal(d.x[:, 0].numpy(), data["train"][0])
    assert d.classes == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot"]


def test_resize_and_three_channels(tmp_path):
    root = tmp_path / "f"
    data = make_idx_set(root)
    d = fashion_mnist(root=str(root), image_size=32, channels=3)
    assert d.x.shape == (12, 3, 32, 32) and d.x.dtype == torch.uint8
    assert torch.equal(d.x[:, 0], d.x[:, 1]) and torch.equal(d.x[:, 0], d.x[:, 2])
    ref = F.interpolate(torch.from_numpy(data["train"][0]).float()[:, None], size=(32, 32), mode="bilinear",
                        antialias=True, align_corners=False).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(d.x[:, :1], ref)
    flat = tmp_path / "flat"
    flat.mkdir()
    write_idx(flat / FILES["train"][0], np.full((3, 28, 28), 77, np.uint8))
    write_idx(flat / FILES["train"][1], np.zeros(3, np.uint8))
    small = mnist(root=str(flat), image_size=14)
    assert small.x.shape == (3, 1, 14, 14) and bool((small.x == 77).all())


def test_image_and_label_counts_must_match(tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    write_idx(root / FILES["train"][0], np.zeros((5, 28, 28), np.uint8))
    write_idx(root / FILES["train"][1], np.zeros(4, np.uint8))
    with pytest.raises(DataError) as err:
        mnist(root=str(root))
    msg = str(err.value)
    assert "train-images-idx3-ubyte" in msg and "train-labels-idx1-ubyte" in msg
    assert "5 images" in msg and "4 labels" in msg


def test_truncated_file_in_a_data_set_says_how_to_reinstall(tmp_path):
    root = tmp_path / "f"
    make_idx_set(root, gz=False)
    img = root / FILES["train"][0]
    img.write_bytes(img.read_bytes()[:-100])
    with pytest.raises(DataError) as err:
        fashion_mnist(root=str(root))
    msg = str(err.value)
    assert str(img) in msg and "truncated" in msg and "apt-get install --reinstall dataset-fashion-mnist" in msg


def test_explicit_root_wins_and_never_falls_back(tmp_path, monkeypatch, no_network, no_debian):
    env, explicit = tmp_path / "env", tmp_path / "explicit"
    make_idx_set(env, seed=1)
    make_idx_set(no_debian / "fashion-mnist", seed=2)
    data = make_idx_set(explicit, seed=3)
    monkeypatch.setenv("GANKIT_DATA", str(env))
    d = fashion_mnist(root=str(explicit))
    np.testing.assert_array_equal(d.x[:, 0].numpy(), data["train"][0])

    empty = tmp_path / "empty"
    empty.mkdir()
    write_idx(empty / FILES["train"][0], np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError) as err:
        fashion_mnist(root=str(empty))
    msg = str(err.value)
    assert "missing train-labels-idx1-ubyte[.gz]" in msg and "train-images-idx3-ubyte[.gz]" not in msg
    with pytest.raises(DataError, match="no such folder"):
        fashion_mnist(root=str(tmp_path / "nowhere"))
    assert no_network == []                              # an explicit root never downloads


@pytest.mark.parametrize("sub", ["", "fashion-mnist", "fashion_mnist", "FashionMNIST/raw"])
def test_gankit_data_beats_debian(tmp_path, monkeypatch, no_debian, sub):
    env = tmp_path / "env"
    data = make_idx_set(env / sub, seed=1)
    make_idx_set(no_debian / "fashion-mnist", seed=2)
    monkeypatch.setenv("GANKIT_DATA", str(env))
    d = fashion_mnist(split="test")
    np.testing.assert_array_equal(d.x[:, 0].numpy(), data["test"][0])


def test_gankit_data_subfolder_named_for_the_data_set_comes_first(tmp_path, monkeypatch, no_debian):
    env = tmp_path / "env"
    digits = make_idx_set(env, seed=1)                    # MNIST directly in $GANKIT_DATA
    clothes = make_idx_set(env / "fashion-mnist", seed=2)
    monkeypatch.setenv("GANKIT_DATA", str(env))
    np.testing.assert_array_equal(fashion_mnist().x[:, 0].numpy(), clothes["train"][0])
    np.testing.assert_array_equal(mnist().x[:, 0].numpy(), digits["train"][0])


def test_debian_folder_beats_download_and_empty_gankit_data_falls_through(tmp_path, monkeypatch, no_network,
                                                                          no_debian):
    data = make_idx_set(no_debian / "mnist", seed=4)
    monkeypatch.setenv("GANKIT_DATA", str(tmp_path / "env-without-files"))
    d = mnist()
    np.testing.assert_array_equal(d.y.numpy(), data["train"][1])
    assert no_network == []


def test_download_is_the_last_resort(tmp_path, monkeypatch, no_debian):
    calls = []
    cache = Path(images.CACHE_DIR)

    def fake_download(name, dest):
        calls.append((name, Path(dest)))
        raw = Path(dest) / "FashionMNIST" / "raw"
        fake_download.data = make_idx_set(raw, gz=False, seed=5)
        return raw

    monkeypatch.setattr(images, "download_torchvision", fake_download)
    d = fashion_mnist()
    assert calls == [("fashion_mnist", cache / "fashion_mnist")]
    np.testing.assert_array_equal(d.x[:, 0].numpy(), fake_download.data["train"][0])
    fashion_mnist(split="test")                          # found in the cache: no second download
    assert len(calls) == 1


def test_nothing_found_says_what_to_do(no_network, no_debian):
    with pytest.raises(DataError) as err:
        fashion_mnist()
    msg = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in msg
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        assert name in msg
    assert "--set data.root=DIR" in msg and "GANKIT_DATA" in msg and "no network in tests" in msg
    assert [c[0] for c in no_network] == ["fashion_mnist"]
    with pytest.raises(DataError) as err:
        mnist()
    assert "apt-get" not in str(err.value) and "--set data.root=DIR" in str(err.value)


def test_registered_schema():
    params = DATASETS.entry("fashion_mnist").params
    assert list(params) == ["root", "split", "image_size", "channels"]
    assert DATASETS.resolve_params("mnist", {"image_size": 32}, "data") == {
        "image_size": 32, "root": None, "split": "train", "channels": 1}
    with pytest.raises(ConfigError):
        DATASETS.resolve_params("mnist", {"channels": 2}, "data")
    assert set(DATASETS.entry("folder").params) == {"root", "image_size", "channels", "crop", "recursive", "split",
                                                    "test_fraction"}
    assert set(DATASETS.entry("array").params) == {"path", "key", "labels_key", "split", "test_fraction", "fields"}


# --------------------------------------------------------------------------- folder

def test_folder_loads_exact_pixels_in_sorted_order(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {n: rng.integers(0, 256, size=(6, 10, 3), dtype=np.uint8) for n in ("b.png", "a.png", "c.bmp")}
    for name, a in arrays.items():
        save(tmp_path / name, a)
    (tmp_path / "notes.txt").write_text("not a picture")
    d = folder(root=str(tmp_path), image_size=None)
    assert d.kind == "image" and d.x.shape == (3, 3, 6, 10) and d.x.dtype == torch.uint8
    for i, name in enumerate(["a.png", "b.png", "c.bmp"]):
        np.testing.assert_array_equal(d.x[i].permute(1, 2, 0).numpy(), arrays[name])
    assert d.y is None and d.classes is None


def test_folder_infers_grey(tmp_path):
    a = np.arange(64, dtype=np.uint8).reshape(8, 8)
    save(tmp_path / "g1.png", a)
    save(tmp_path / "g2.PNG", 255 - a)
    d = folder(root=str(tmp_path), image_size=None)
    assert d.x.shape == (2, 1, 8, 8)
    np.testing.assert_array_equal(d.x[0, 0].numpy(), a)
    assert folder(root=str(tmp_path), image_size=None, channels=3).x.shape == (2, 3, 8, 8)


def test_folder_subfolders_are_classes(tmp_path):
    save(tmp_path / "dogs" / "1.png", flat_rgb(10))
    save(tmp_path / "cats" / "1.png", flat_rgb(20))
    save(tmp_path / "cats" / "2.png", flat_rgb(30))
    save(tmp_path / "dogs" / "deep" / "x.png", flat_rgb(40))
    save(tmp_path / ".hidden" / "h.png", flat_rgb(50))
    save(tmp_path / "dogs" / "._1.png", flat_rgb(60))   # a macOS resource fork, skipped
    (tmp_path / "empty").mkdir()
    d = folder(root=str(tmp_path), image_size=8)
    assert d.classes == ["cats", "dogs"]
    assert d.y.tolist() == [0, 0, 1, 1]
    assert d.x[:, 0, 0, 0].tolist() == [20, 30, 10, 40]
    with pytest.raises(DataError, match="no image files directly in"):
        folder(root=str(tmp_path), recursive=False)
    save(tmp_path / "top.png", flat_rgb(70))
    d = folder(root=str(tmp_path), image_size=8)
    assert d.y is None and len(d) == 5                     # not every image sits in a class folder


def test_folder_extensions_case_insensitive(tmp_path):
    save(tmp_path / "a.JPG", flat_rgb(100), quality=100)
    save(tmp_path / "b.Jpeg", flat_rgb(100), quality=100)
    save(tmp_path / "c.webp", flat_rgb(100), lossless=True)
    save(tmp_path / "d.BMP", flat_rgb(100))
    d = folder(root=str(tmp_path), image_size=8)
    assert len(d) == 4
    assert (d.x.int() - 100).abs().max() <= 2


def test_folder_resize_center_crop_and_stretch(tmp_path):
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :10] = (255, 0, 0)
    a[:, 10:30] = (0, 255, 0)
    a[:, 30:] = (0, 0, 255)
    save(tmp_path / "wide.png", a)
    save(tmp_path / "tall.png", np.ascontiguousarray(a.transpose(1, 0, 2)))
    d = folder(root=str(tmp_path), image_size=16)
    assert d.x.shape == (2, 3, 16, 16)
    wide = d.x[1].permute(1, 2, 0).numpy().astype(int)
    assert np.abs(wide[:, 2:14] - [0, 255, 0]).max() <= 2   # only the green middle is left
    tall = d.x[0].permute(1, 2, 0).numpy().astype(int)
    assert np.abs(tall[2:14, :] - [0, 255, 0]).max() <= 2
    s = folder(root=str(tmp_path), image_size=16, crop="none").x[1].permute(1, 2, 0).numpy().astype(int)
    assert np.abs(s[:, :2] - [255, 0, 0]).max() <= 2 and np.abs(s[:, -2:] - [0, 0, 255]).max() <= 2
    assert np.abs(s[:, 6:10] - [0, 255, 0]).max() <= 2


def test_folder_converts_unusual_modes(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:4, :, 3] = 255                                  # top half opaque red, bottom half transparent
    save(tmp_path / "rgba.png", rgba)
    colour = np.zeros((8, 8, 3), np.uint8) + np.array([90, 30, 200], np.uint8)
    Image.fromarray(colour).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png")
    save(tmp_path / "cmyk.jpg", flat_rgb(128), mode="CMYK", quality=100)
    la = np.stack([np.full((8, 8), 60, np.uint8), np.full((8, 8), 255, np.uint8)], -1)
    save(tmp_path / "la.png", la)
    wide = np.full((8, 8), 257 * 100, np.uint16)
    wide[0, 0] = 65535
    Image.fromarray(wide).save(tmp_path / "w16.png")
    assert Image.open(tmp_path / "w16.png").mode.startswith("I")
    d = folder(root=str(tmp_path), image_size=None, channels=3)
    assert d.x.shape == (5, 3, 8, 8)
    by_name = dict(zip(["cmyk", "la", "p", "rgba", "w16"], d.x.permute(0, 2, 3, 1).numpy().astype(int)))
    assert (by_name["rgba"][:4] == [200, 0, 0]).all() and (by_name["rgba"][4:] == 255).all()   # over white
    assert (by_name["p"] == [90, 30, 200]).all() and (by_name["la"] == 60).all()
    assert np.abs(by_name["cmyk"] - 128).max() <= 3
    assert by_name["w16"][0, 0].tolist() == [255] * 3 and (by_name["w16"][1:] == 100).all()   # scaled, not clipped
    grey = folder(root=str(tmp_path), image_size=None, channels=1)
    assert grey.x.shape == (5, 1, 8, 8) and int(grey.x[4, 0, 1, 1]) == 100


def test_folder_infers_channels_of_palette_and_16_bit_files(tmp_path):
    save(tmp_path / "p.png", np.full((8, 8), 30, np.uint8), mode="P")     # grey palette
    Image.fromarray(np.full((8, 8), 1000, np.uint16)).save(tmp_path / "w.png")
    save(tmp_path / "la.png", np.stack([np.full((8, 8), 9, np.uint8)] * 2, -1))
    assert folder(root=str(tmp_path), image_size=None).x.shape == (3, 1, 8, 8)
    save(tmp_path / "rgb.png", flat_rgb(1))
    with pytest.raises(DataError) as err:
        folder(root=str(tmp_path), image_size=None)
    msg = str(err.value)
    assert "rgb.png" in msg and ("la.png" in msg or "p.png" in msg) and "--set data.channels=3" in msg


def test_folder_sizes_must_agree_without_image_size(tmp_path):
    save(tmp_path / "a.png", flat_rgb(1, 8, 8))
    save(tmp_path / "b.png", flat_rgb(1, 8, 9))
    with pytest.raises(DataError) as err:
        folder(root=str(tmp_path), image_size=None)
    msg = str(err.value)
    assert "a.png is 8x8" in msg and "b.png is 9x8" in msg and "--set data.image_size=64" in msg
    assert folder(root=str(tmp_path), image_size=4).x.shape == (2, 3, 4, 4)


def test_folder_bad_roots_and_files(tmp_path):
    with pytest.raises(DataError, match=r"data.root is not set.*--set data.root=DIR"):
        folder()
    with pytest.raises(DataError, match="no such folder"):
        folder(root=str(tmp_path / "missing"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        folder(root=str(tmp_path / "file.txt"))
    with pytest.raises(DataError) as err:
        folder(root=str(tmp_path))
    assert all(ext in str(err.value) for ext in (".png", ".jpg", ".jpeg", ".bmp", ".webp"))
    with pytest.raises(ConfigError, match="image_size"):
        folder(root=str(tmp_path), image_size=0)

    save(tmp_path / "good.png", flat_rgb(5))
    (tmp_path / "junk.png").write_bytes(b"definitely not a png")
    with pytest.raises(DataError, match=r"cannot read image .*junk\.png"):
        folder(root=str(tmp_path), image_size=8)
    (tmp_path / "junk.png").unlink()
    full = save(tmp_path / "cut.png", np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    full.write_bytes(full.read_bytes()[:200])               # the header survives, the pixels do not
    with pytest.raises(DataError, match=r"cannot read image .*cut\.png.*Remove or replace"):
        folder(root=str(tmp_path), image_size=8, channels=3)


def test_folder_split(tmp_path):
    for i in range(8):
        save(tmp_path / f"{i}.png", flat_rgb(i * 10))
    train = folder(root=str(tmp_path), image_size=8, test_fraction=0.25)
    test = folder(root=str(tmp_path), image_size=8, split="test", test_fraction=0.25)
    seen_train = set(train.x[:, 0, 0, 0].tolist())
    seen_test = set(test.x[:, 0, 0, 0].tolist())
    assert len(train) == 6 and len(test) == 2
    assert seen_train.isdisjoint(seen_test) and seen_train | seen_test == {i * 10 for i in range(8)}
    again = folder(root=str(tmp_path), image_size=8, split="test", test_fraction=0.25)
    assert torch.equal(again.x, test.x)
    with pytest.raises(DataError, match=r"no test split.*data.test_fraction"):
        folder(root=str(tmp_path), image_size=8, split="test")
    with pytest.raises(ConfigError, match="test_fraction"):
        folder(root=str(tmp_path), image_size=8, test_fraction=1.0)


# --------------------------------------------------------------------------- array

def test_array_uint8_layouts(tmp_path, image_npz):
    d = array(path=str(image_npz))                           # (N, H, W, 3) from conftest
    x = np.load(image_npz)["x"]
    assert d.kind == "image" and d.x.shape == (200, 3, 16, 16) and d.x.dtype == torch.uint8
    np.testing.assert_array_equal(d.x.permute(0, 2, 3, 1).numpy(), x)
    nchw = np.random.default_rng(0).integers(0, 256, (4, 3, 5, 3), dtype=np.uint8)   # ambiguous: (N, C, H, W)
    np.save(tmp_path / "a.npy", nchw)
    np.testing.assert_array_equal(array(path=str(tmp_path / "a.npy")).x.numpy(), nchw)
    grey = nchw[:, 0]
    np.savez(tmp_path / "g.npz", images=grey)
    d = array(path=str(tmp_path / "g.npz"))
    assert d.x.shape == (4, 1, 5, 3)
    np.testing.assert_array_equal(d.x[:, 0].numpy(), grey)


def test_array_float_ranges(tmp_path):
    unit = np.array([0.0, 0.5, 1.0, 0.2], np.float32).reshape(1, 1, 2, 2)
    np.save(tmp_path / "u.npy", unit)
    assert array(path=str(tmp_path / "u.npy")).x.flatten().tolist() == [0, 128, 255, 51]
    signed = np.array([-1.0, 0.0, 1.0, -0.5], np.float64).reshape(1, 2, 2)
    np.save(tmp_path / "s.npy", signed)
    assert array(path=str(tmp_path / "s.npy")).x.flatten().tolist() == [0, 128, 255, 64]
    np.save(tmp_path / "big.npy", np.array([0.0, 2.5, 255.0, 3.0]).reshape(1, 1, 2, 2))
    with pytest.raises(DataError) as err:
        array(path=str(tmp_path / "big.npy"))
    msg = str(err.value)
    assert "big.npy" in msg and "from 0 to 255" in msg and "[0, 1]" in msg and "[-1, 1]" in msg
    nan = unit.copy()
    nan[0, 0, 0, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(DataError, match=r"nan\.npy: 1 values are NaN or infinite"):
        array(path=str(tmp_path / "nan.npy"))
    np.save(tmp_path / "i16.npy", np.array([0, 300], np.int16).reshape(1, 1, 1, 2))
    with pytest.raises(DataError, match="from 0 to 300"):
        array(path=str(tmp_path / "i16.npy"))


def test_array_vectors(tmp_path):
    v = np.random.default_rng(0).normal(size=(30, 2))
    np.savez(tmp_path / "v.npz", data=v, labels=np.arange(30) % 3)
    d = array(path=str(tmp_path / "v.npz"))
    assert d.kind == "vector" and d.x.dtype == torch.float32 and d.x.shape == (30, 2)
    np.testing.assert_allclose(d.x.numpy(), v.astype(np.float32))
    assert d.y.tolist() == (np.arange(30) % 3).tolist()
    np.save(tmp_path / "inf.npy", np.array([[0.0, np.inf]]))
    with pytest.raises(DataError, match="NaN or infinite"):
        array(path=str(tmp_path / "inf.npy"))


def test_array_keys_and_labels(tmp_path):
    x = np.zeros((6, 4, 4), np.uint8)
    np.savez(tmp_path / "k.npz", pics=x, cls=np.arange(6), y=np.arange(5))
    with pytest.raises(DataError) as err:
        array(path=str(tmp_path / "k.npz"))
    msg = str(err.value)
    assert "pics" in msg and "cls" in msg and "--set data.key=NAME" in msg
    d = array(path=str(tmp_path / "k.npz"), key="pics")
    assert d.x.shape == (6, 1, 4, 4) and d.y is None           # 'y' has the wrong length: ignored
    d = array(path=str(tmp_path / "k.npz"), key="pics", labels_key="cls")
    assert d.y.dtype == torch.int64 and d.y.tolist() == list(range(6))
    with pytest.raises(DataError, match=r"labels 'y' must be non-negative integers of shape \(6,\)"):
        array(path=str(tmp_path / "k.npz"), key="pics", labels_key="y")
    with pytest.raises(DataError, match=r"no array 'nope'.*--set data.labels_key=NAME"):
        array(path=str(tmp_path / "k.npz"), key="pics", labels_key="nope")
    with pytest.raises(DataError, match=r"no array 'other'; it holds: pics, cls, y"):
        array(path=str(tmp_path / "k.npz"), key="other")
    np.savez(tmp_path / "first.npz", arr_0=np.ones((2, 4, 4), np.uint8), images=x)   # 'images' before 'arr_0'
    assert len(array(path=str(tmp_path / "first.npz"))) == 6


def test_array_bad_files_and_shapes(tmp_path):
    with pytest.raises(DataError, match=r"data.path is not set.*--set data.path="):
        array()
    with pytest.raises(DataError, match=r"missing\.npz: no such file"):
        array(path=str(tmp_path / "missing.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not numpy at all")
    with pytest.raises(DataError, match=r"cannot read .*junk\.npz"):
        array(path=str(tmp_path / "junk.npz"))
    np.save(tmp_path / "cut.npy", np.zeros((100, 3, 8, 8), np.uint8))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "cut.npy").read_bytes()[:500])
    with pytest.raises(DataError, match=r"cut\.npy"):
        array(path=str(tmp_path / "cut.npy"))
    np.savez_compressed(tmp_path / "cut.npz", x=np.random.default_rng(0).integers(0, 256, (50, 8, 8), np.uint8))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "cut.npz").read_bytes()[:-40])
    with pytest.raises(DataError, match=r"cut\.npz"):
        array(path=str(tmp_path / "cut.npz"))
    for shape in [(5,), (2, 3, 4, 5, 6)]:
        np.save(tmp_path / "s.npy", np.zeros(shape, np.uint8))
        with pytest.raises(DataError) as err:
            array(path=str(tmp_path / "s.npy"))
        assert str(shape) in str(err.value) and "(N, C, H, W)" in str(err.value) and "(N, D)" in str(err.value)
    np.save(tmp_path / "rgba.npy", np.zeros((2, 8, 8, 4), np.uint8))
    with pytest.raises(DataError, match="no channel axis of 1 or 3"):
        array(path=str(tmp_path / "rgba.npy"))


def test_array_split(tmp_path):
    np.save(tmp_path / "v.npy", np.arange(20, dtype=np.float32)[:, None])
    train = array(path=str(tmp_path / "v.npy"), test_fraction=0.2)
    test = array(path=str(tmp_path / "v.npy"), split="test", test_fraction=0.2)
    assert len(train) == 16 and len(test) == 4
    assert sorted(train.x[:, 0].tolist() + test.x[:, 0].tolist()) == list(range(20))
    with pytest.raises(DataError, match="data.test_fraction"):
        array(path=str(tmp_path / "v.npy"), split="test")


# --------------------------------------------------------------------------- the real data

def test_real_fashion_mnist():
    if not REAL_FASHION.is_dir():
        pytest.skip("Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist")
    for split, n in (("train", 60000), ("test", 10000)):
        d = fashion_mnist(split=split)                      # found through the Debian folder
        assert d.x.shape == (n, 1, 28, 28) and d.x.dtype == torch.uint8
        assert d.y.shape == (n,) and int(d.y.min()) == 0 and int(d.y.max()) == 9
        assert d.y.bincount().tolist() == [n // 10] * 10
        assert 0 < d.x.float().mean() < 255
