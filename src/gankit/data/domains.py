"""Unpaired image domains: Fashion-MNIST-M, and disjoint halves of any data set.

``fashion_mnist_m``
-------------------
Fashion-MNIST's garments on real photographs, made the way Ganin et al. (2016) made MNIST-M
from MNIST: each 28x28 grey garment g (0..255) is blended with a random 28x28 crop c of a
colour photograph, per channel,

* ``blend: difference`` (MNIST-M's rule, the default): ``|c - g|``: where the garment is
  black (the background of every Fashion-MNIST picture) the photograph shows unchanged,
  where it is bright the photograph's colours are inverted in proportion;
* ``blend: mask``: the garment as a mask that mixes the crop with its colour negative,
  ``(1 - a) c + a (255 - c)`` with ``a = g / 255``: the same shapes, smoother at the edges.

The result has 3 channels; the labels ``y`` are the garments' classes. Sample ``i`` is a
function of ``seed``, the split and ``i`` alone: the photograph, the crop's position and
nothing else is drawn from a generator seeded by (``seed``, split), for every sample of the
split at once, so any subset (a half, a batch) holds exactly the samples the whole data set
has at those indices. The test split blends the test garments with the *test* photographs.

The photographs (``backgrounds``):

* ``photos``: the packaged photographs of the ``photos`` data set
  (:mod:`gankit.data.photos`: Debian's wallpapers, scikit-learn's and scikit-image's sample
  photographs; its 23 training photographs for ``split: train``, its 6 held-out ones for
  ``split: test``); an error saying what to install when one is missing;
* ``scikit-learn``: scikit-learn's two sample images only (``china.jpg`` for training,
  ``flower.jpg`` for testing, as in ``photos``);
* ``auto`` (default): ``photos`` where every source of it is installed, else
  ``scikit-learn``. Note that the data set then depends on what is installed: pin
  ``photos`` or ``scikit-learn`` for a data set that is the same on every machine.

They are decoded once per process (the ``photos`` data set's decoder) with their longest
side at most ``max_side`` pixels (default 256: a 28x28 crop then shows some structure of the
photograph rather than a flat patch of it).

``half`` (every data set)
-------------------------
Unpaired translation must not see pairs: its two domains are drawn from disjoint halves of a
training set. ``data.half`` (an option of every data set, like ``data.pairs``; taken out of
the section by :mod:`gankit.config` and applied by :func:`~gankit.data.base.build_data`
right after the loader) keeps ``first`` (samples ``0 .. N//2 - 1``) or ``second`` (samples
``N//2 .. N - 1``) of whichever split is loaded, every field alike; ``all`` (default) keeps
everything. So ``data: {name: fashion_mnist, half: first}`` and ``data_b: {name:
fashion_mnist_m, half: second}`` share no garment, in training and in testing. A lazy
``photos`` field stays lazy (its crop list is halved).
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Literal, Optional, Tuple

import torch

from ..errors import ConfigError, DataError
from ..registries import DATASETS
from .base import Dataset
from .images import fashion_mnist

__all__ = ["fashion_mnist_m", "blend_images", "take_half", "half_option", "HALVES", "background_photos"]

Split = Literal["train", "test"]
Half = Literal["all", "first", "second"]
#: the values of ``data.half``
HALVES = ("all", "first", "second")


# ----------------------------------------------------------------------------------- halves

def half_option(value, section: str = "data") -> str:
    """A validated ``half``: all, first or second."""
    if value not in HALVES:
        raise ConfigError(f"{section}.half must be one of {', '.join(HALVES)} (the disjoint halves of the data set, "
                          f"for unpaired domains), got {value!r}")
    return str(value)


def half_bounds(n: int, half: str) -> Tuple[int, int]:
    """The [start, stop) indices ``half`` keeps of ``n`` samples."""
    return {"all": (0, n), "first": (0, n // 2), "second": (n // 2, n)}[half]


def take_half(data: Dataset, half: str, section: str = "data") -> Dataset:
    """``data`` with only the samples of ``half`` (every field alike); ``all`` returns it as it is."""
    half = half_option(half, section)
    if half == "all":
        return data
    lo, hi = half_bounds(len(data), half)
    if hi <= lo:
        raise DataError(f"{section}.half={half}: data set '{data.name}' holds {len(data)} samples, too few to halve")

    def cut(t):
        from .photos import Patches

        if isinstance(t, Patches):     # stays lazy: the same crops, fewer of them
            return Patches(t.photos, t.names, t.photo[lo:hi], t.top[lo:hi], t.left[lo:hi], t.flipped[lo:hi], t.size_)
        return t[lo:hi].clone()

    return Dataset(x=cut(data.x), kind=data.kind, name=data.name, y=None if data.y is None else cut(data.y),
                   classes=data.classes, modes=data.modes, mode_stds=data.mode_stds, mode_weights=data.mode_weights,
                   log_prob=data.log_prob, extra={k: cut(v) for k, v in data.extra.items()},
                   extra_kinds=dict(data.extra_kinds))


# ----------------------------------------------------------------------------------- Fashion-MNIST-M

def blend_images(garments: torch.Tensor, crops: torch.Tensor, how: str = "difference") -> torch.Tensor:
    """Grey garments uint8 (N, 1, H, W) on colour crops uint8 (N, 3, H, W) -> uint8 (N, 3, H, W)."""
    g, c = garments.to(torch.int16), crops.to(torch.int16)
    if how == "difference":
        return (c - g).abs().to(torch.uint8)
    if how == "mask":
        a = garments.float().div(255.0)
        cf = crops.float()
        return ((1 - a) * cf + a * (255.0 - cf)).round_().clamp_(0, 255).to(torch.uint8)
    raise ConfigError(f"data.blend must be difference or mask, got {how!r}")


def _all_photo_sources_installed() -> bool:
    from .photos import CATALOGUE, source_folder

    return all(source_folder(s) is not None for s in CATALOGUE)


def background_photos(backgrounds: str, split: str) -> Tuple[str, ...]:
    """The files of the photographs ``backgrounds`` names for ``split`` (see the module)."""
    from .photos import packaged_photos

    if backgrounds == "auto":
        backgrounds = "photos" if _all_photo_sources_installed() else "scikit-learn"
    if backgrounds == "scikit-learn" and importlib.util.find_spec("sklearn") is None:
        raise DataError("fashion_mnist_m needs photographs: install scikit-learn (pip install scikit-learn) for its "
                        "two sample images, or the photos data set's sources (make setup) with data.backgrounds=photos")
    chosen = packaged_photos(None if backgrounds == "photos" else ["scikit-learn"])
    return tuple(str(path) for _, path, held in chosen if held == (split == "test"))


@functools.lru_cache(maxsize=4)
def _decoded(files: Tuple[str, ...], max_side: int) -> Tuple[torch.Tensor, ...]:
    """The photographs as uint8 (3, H, W), decoded once per process."""
    from .photos import _decode

    return tuple(_decode(Path(f), max_side) for f in files)


def crops_for(pictures, n: int, size: int, seed: int) -> torch.Tensor:
    """``n`` crops of ``size`` x ``size``, crop i from a photograph and position drawn for i
    from a generator seeded by ``seed`` (all n draws at once: crop i depends on i alone)."""
    g = torch.Generator().manual_seed(seed)
    which = torch.randint(len(pictures), (n,), generator=g)
    u, v = torch.rand(n, generator=g, dtype=torch.float64), torch.rand(n, generator=g, dtype=torch.float64)
    out = torch.empty(n, 3, size, size, dtype=torch.uint8)
    ar = torch.arange(size)
    for p, pic in enumerate(pictures):
        idx = (which == p).nonzero().flatten()
        if not len(idx):
            continue
        h, w = pic.shape[1:]
        top = (u[idx] * (h - size + 1)).long().clamp_max(h - size)
        left = (v[idx] * (w - size + 1)).long().clamp_max(w - size)
        for start in range(0, len(idx), 4096):
            t, l_ = top[start:start + 4096], left[start:start + 4096]
            rows = (t[:, None] + ar)[:, :, None]          # (k, size, 1)
            cols = (l_[:, None] + ar)[:, None, :]         # (k, 1, size)
            out[idx[start:start + 4096]] = pic[:, rows, cols].permute(1, 0, 2, 3)
    return out


@DATASETS.register("fashion_mnist_m")
def fashion_mnist_m(root: Optional[str] = None, split: Split = "train", image_size: int = 28,
                    backgrounds: Literal["auto", "photos", "scikit-learn"] = "auto",
                    blend: Literal["difference", "mask"] = "difference", max_side: int = 256,
                    seed: int = 0) -> Dataset:
    """Fashion-MNIST-M: each garment blended with a random crop of a colour photograph, as MNIST-M
    is made from MNIST (blend difference: |crop - garment| per channel; mask: the garment
    mixes the crop with its negative); 3 channels, the garments' labels; deterministic per
    sample (seed); test split on held-out photographs."""
    if max_side < image_size:
        raise ConfigError(f"data.max_side={max_side} is smaller than data.image_size={image_size}: the photographs "
                          f"must hold an {image_size}x{image_size} crop")
    base = fashion_mnist(root=root, split=split, image_size=image_size)
    files = background_photos(backgrounds, split)
    if not files:
        raise DataError(f"fashion_mnist_m found no {split} photographs for data.backgrounds={backgrounds}")
    pictures = _decoded(files, max_side)
    small = [f for f, p in zip(files, pictures) if min(p.shape[1:]) < image_size]
    if small:
        raise DataError(f"photograph {small[0]} is smaller than {image_size} pixels at data.max_side={max_side}; "
                        f"raise data.max_side")
    crops = crops_for(pictures, len(base), image_size, 2 * seed + (1 if split == "test" else 0))
    x = blend_images(base.x, crops, blend)
    return Dataset(x=x, kind="image", name="fashion_mnist_m", y=base.y, classes=base.classes)

