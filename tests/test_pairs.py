"""Paired image data (``data.pairs``): the input of each pairing is what it says (edges of a
known picture, its luma, a masked copy, a bicubic reduction), pairing is deterministic and
depends on the sample index only, it applies to any image data set through the config, and
bad requests are refused with what to do."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.data.pairs import MASK_FILL, PAIRS, apply_pairs, mask_boxes, pair_images, paired_fields
from gankit.errors import ConfigError

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


def _square(size=24, lo=8, hi=16, value=255, channels=1):
    x = torch.zeros(1, channels, size, size, dtype=torch.uint8)
    x[..., lo:hi, lo:hi] = value
    return x


def _config(data):
    return gankit.api.make_config({"data": data})


@pytest.fixture
def grey_npz(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(40, 16, 16), dtype=np.uint8)
    path = tmp_path / "grey.npz"
    np.savez(path, x=x)
    return path


def test_edges_of_a_square_are_the_pixels_beside_its_border():
    x = _square()
    edges = pair_images(x, "edges", [0])["input"]
    assert edges.dtype == torch.uint8 and edges.shape == (1, 1, 24, 24)
    assert set(edges.unique().tolist()) == {0, 255}
    # the pixels whose 3x3 neighbourhood holds both values: dilation minus erosion of the square
    inside = (x > 0).float()
    dilated = F.max_pool2d(inside, 3, 1, 1)
    eroded = -F.max_pool2d(-inside, 3, 1, 1)
    ring = (dilated - eroded) > 0
    assert torch.equal(edges > 0, ring) and int(ring.sum()) == 100 - 36
    # a colour picture is judged by its luma: the same square in green, yellow or white has the same edges
    for rgb in ((0, 255, 0), (255, 255, 0), (255, 255, 255)):
        colour = torch.zeros(1, 3, 24, 24, dtype=torch.uint8)
        colour[0, :, 8:16, 8:16] = torch.tensor(rgb, dtype=torch.uint8).view(3, 1, 1)
        assert torch.equal(pair_images(colour, "edges", [0])["input"] > 0, ring)
    # a flat picture and a faint step (below 1/8 of the range) have none
    assert pair_images(torch.full((1, 1, 8, 8), 77, dtype=torch.uint8), "edges", [0])["input"].max() == 0
    assert pair_images(_square(value=20), "edges", [0])["input"].max() == 0


def test_grey_is_the_luma_and_is_refused_on_one_channel():
    x = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    x[0, 0], x[0, 1], x[0, 2] = 200, 100, 50
    x[1] = 255
    grey = pair_images(x, "grey", [0, 1])["input"]
    assert grey.shape == (2, 1, 4, 4)
    assert int(grey[0, 0, 0, 0]) == round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)
    assert int(grey[1].min()) == 255
    with pytest.raises(ConfigError, match="grey learns colour.*1 channel.*use colour images"):
        pair_images(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), "grey", [0])


def test_lowres_is_a_bicubic_reduction_and_needs_divisible_sides():
    x = torch.arange(16, dtype=torch.float64).repeat(16, 1).mul(10).to(torch.uint8)[None, None].repeat(2, 3, 1, 1)
    for f in (2, 4):
        small = pair_images(x, f"lowres{f}", [0, 1])["input"]
        assert small.shape == (2, 3, 16 // f, 16 // f) and small.dtype == torch.uint8
        ref = F.interpolate(x.float(), size=(16 // f, 16 // f), mode="bicubic", antialias=True, align_corners=False)
        assert torch.equal(small, ref.round().clamp(0, 255).to(torch.uint8))
    flat = torch.full((1, 1, 8, 8), 90, dtype=torch.uint8)
    assert torch.equal(pair_images(flat, "lowres4", [0])["input"], torch.full((1, 1, 2, 2), 90, dtype=torch.uint8))
    with pytest.raises(ConfigError, match="lowres4 downsamples by 4.*30x30.*multiple of 4"):
        pair_images(torch.zeros(1, 1, 30, 30, dtype=torch.uint8), "lowres4", [0])


def test_masks_depend_on_the_sample_index_only():
    x = torch.randint(0, 256, (50, 3, 20, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    full = pair_images(x, "mask", np.arange(50))
    part = pair_images(x[10:20], "mask", np.arange(10, 20))    # another chunking: the same masks
    assert torch.equal(full["input"][10:20], part["input"]) and torch.equal(full["mask"][10:20], part["mask"])
    assert torch.equal(pair_images(x, "mask", np.arange(50))["input"], full["input"])   # and again
    inside = full["mask"] == 255
    assert full["mask"].shape == (50, 1, 20, 28) and set(full["mask"].unique().tolist()) <= {0, 255}
    assert bool((full["input"][inside.expand(-1, 3, -1, -1)] == MASK_FILL).all())
    assert torch.equal(full["input"][~inside.expand(-1, 3, -1, -1)], x[~inside.expand(-1, 3, -1, -1)])
    boxes = mask_boxes(np.arange(1000), 20, 28)
    top, left, h, w = boxes.T
    assert h.min() >= 5 and h.max() <= 10 and w.min() >= 7 and w.max() <= 14   # a quarter to a half per side
    assert (top >= 0).all() and (top + h <= 20).all() and (left >= 0).all() and (left + w <= 28).all()
    assert len({tuple(b) for b in boxes}) > 500                                   # they vary
    assert len(np.unique(top)) > 8 and len(np.unique(left)) > 8                   # and move about
    counts = torch.from_numpy(h * w).double()
    torch.testing.assert_close(inside.flatten(1).sum(1).double(), counts[:50])


def test_pairs_is_an_option_of_every_image_data_set(grey_npz):
    plain = gankit.api.build_data(_config({"name": "array", "path": str(grey_npz)}))
    data = gankit.api.build_data(_config({"name": "array", "path": str(grey_npz), "pairs": "edges"}))
    assert torch.equal(data.x, plain.x) and "input" not in plain.tensors()
    assert torch.equal(data.tensors()["input"], pair_images(plain.x, "edges", np.arange(40))["input"])
    fields = data.fields()
    assert fields["input"].kind == "image" and fields["input"].shape == (1, 16, 16)
    batch = data.to_model({k: v[:3] for k, v in data.tensors().items()})
    assert batch["input"].dtype == torch.float32 and float(batch["input"].min()) >= -1.0

    masked = gankit.api.build_data(_config({"name": "array", "path": str(grey_npz), "pairs": "mask"}))
    assert {"input", "mask"} <= set(masked.tensors())
    for pairs in PAIRS[1:]:
        if pairs == "grey":
            continue
        built = gankit.api.build_data(_config({"name": "array", "path": str(grey_npz), "pairs": pairs}))
        described = paired_fields((1, 16, 16), pairs)     # what is known without loading matches the loaded data
        assert {k: built.fields()[k] for k in described} == described

    # the test split pairs its own samples by their index within the split
    test = gankit.api.build_data(_config({"name": "array", "path": str(grey_npz), "pairs": "mask",
                                          "test_fraction": 0.25, "split": "test"}))
    assert len(test) == 10 and torch.equal(test.tensors()["mask"], pair_images(test.x, "mask", np.arange(10))["mask"])


def test_the_config_validates_pairs_and_keeps_older_configs_as_they_were(tmp_path, grey_npz):
    with pytest.raises(ConfigError, match="data.pairs: 'edge' is not allowed; choose one of 'none', 'edges', 'grey', "
                                          "'mask', 'lowres2', 'lowres4', 'mask_centre', 'mask_free' "
                                          "\\(did you mean 'edges'\\?\\)"):
        _config({"name": "fashion_mnist", "pairs": "edge"})
    with pytest.raises(ConfigError, match="data.pairs"):
        gankit.api.make_config(None, ["data.pairs=3"])
    assert "pairs" not in _config({"name": "fashion_mnist"}).data
    assert "pairs" not in _config({"name": "fashion_mnist", "pairs": "none"}).data     # the default is left out
    cfg = gankit.api.make_config(None, ["data.pairs=lowres2"])
    assert cfg.data["pairs"] == "lowres2"
    again = gankit.api.make_config(gankit.config.to_dict(cfg))                         # as config.yaml holds it
    assert again.data == cfg.data

    with pytest.raises(ConfigError, match="data.pairs=edges pairs images, but data set 'ring8' holds vectors"):
        gankit.api.build_data(_config({"name": "ring8", "pairs": "edges"}))
    with pytest.raises(ConfigError, match="grey learns colour.*'array' has 1 channel"):
        gankit.api.build_data(_config({"name": "array", "path": str(grey_npz), "pairs": "grey"}))
    odd = tmp_path / "odd.npz"
    np.savez(odd, x=np.zeros((8, 18, 18), np.uint8))
    with pytest.raises(ConfigError, match="lowres4.*18x18.*data.image_size"):
        gankit.api.build_data(_config({"name": "array", "path": str(odd), "pairs": "lowres4"}))
    own = tmp_path / "own.npz"
    np.savez(own, x=np.zeros((8, 16, 16), np.uint8), input=np.zeros((8, 1, 16, 16), np.uint8))
    with pytest.raises(ConfigError, match="adds the field\\(s\\) input, which data set 'array' already has"):
        gankit.api.build_data(_config({"name": "array", "path": str(own), "fields": ["input"], "pairs": "edges"}))


def test_a_method_that_needs_an_input_says_how_to_get_one(grey_npz, tmp_path):
    cfg = {"method": "pix2pix", "data": {"name": "array", "path": str(grey_npz)}, "out": str(tmp_path / "run"),
           "train": {"steps": 1, "batch_size": 8, "progress": "none"}}
    with pytest.raises(ConfigError, match="field 'input'.*--set data.pairs=edges"):
        gankit.train(cfg)
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_apply_pairs_none_is_the_data_set_itself(grey_npz):
    data = gankit.api.build_data(_config({"name": "array", "path": str(grey_npz)}))
    assert apply_pairs(data, "none") is data


@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason="Fashion-MNIST is not installed at /usr/share/datasets/"
                    "fashion-mnist (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_pairs_its_test_split_like_any_other_images():
    data = gankit.api.build_data(_config({"name": "fashion_mnist", "split": "test", "pairs": "edges"}))
    assert len(data) == 10_000 and data.fields()["input"].shape == (1, 28, 28)
    some = torch.tensor([0, 17, 9999])
    assert torch.equal(data.tensors()["input"][some], pair_images(data.x[some], "edges", some.numpy())["input"])
    share = (data.tensors()["input"] > 0).double().mean().item()
    assert 0.05 < share < 0.5          # outlines, neither empty nor everywhere


class _Lazy:
    """An image field made when indexed (as ``photos``' crops are), over a tensor."""
    dtype = torch.uint8

    def __init__(self, t):
        self.t, self.taken = t, 0

    def __len__(self):
        return len(self.t)

    @property
    def shape(self):
        return self.t.shape

    def dim(self):
        return 4

    def __getitem__(self, index):
        out = self.t[index]
        self.taken += len(out) if out.dim() == 4 else 1
        return out


def test_a_lazy_data_set_gets_lazy_pairs_that_equal_the_eager_ones():
    from gankit.data.base import Dataset
    from gankit.data.stream import BatchStream

    x = torch.randint(0, 256, (30, 3, 16, 16), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    eager = apply_pairs(Dataset(x=x, kind="image", name="eager"), "mask")
    lazy_x = _Lazy(x)
    lazy = apply_pairs(Dataset(x=lazy_x, kind="image", name="lazy"), "mask")
    assert lazy_x.taken == 0                                   # nothing computed up front
    assert lazy.fields() == eager.fields()
    for k in ("input", "mask"):
        field = lazy.tensors()[k]
        assert torch.equal(field[:], eager.tensors()[k])
        assert torch.equal(field[torch.tensor([[4, 2], [7, 29]])], eager.tensors()[k][torch.tensor([[4, 2], [7, 29]])])
        assert torch.equal(field[3], eager.tensors()[k][3]) and torch.equal(field[5:9], eager.tensors()[k][5:9])
    stream = BatchStream(lazy.tensors(), 8, seed=1)
    batch = stream.next()
    reference = BatchStream(eager.tensors(), 8, seed=1).next()
    assert all(torch.equal(batch[k], reference[k]) for k in reference)
