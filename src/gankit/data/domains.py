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

``fashion_mnist_styles``
------------------------
StarGAN's setting on garments: one data set of several *domains* (styles) of the same kind of
picture, every sample in exactly one of them, so that no garment is seen in two styles (the
domains are unpaired). A field ``domain`` (a label whose classes are the style names) says
which; ``y`` keeps the garment's class. All styles have 3 channels:

* ``original``: the grey garment on black, in all three channels;
* ``photo``: the garment blended with a crop of a photograph, as ``fashion_mnist_m`` (``blend:
  difference``);
* ``inverted``: the negative, a dark garment on white;
* ``edges``: the binary Sobel edge map of the garment (as ``data.pairs=edges``);
* ``thick``: the garment thickened, a 3x3 grey-scale dilation (the maximum over each pixel's
  neighbourhood).

``styles`` picks the domains and their order (their label values); sample i's style is drawn
uniformly for i from a generator seeded by (``seed``, split), so it depends on i alone.

``unpaired``
------------
Two folders of the user's pictures as two domains: ``a`` and ``b`` are folders (every
picture under each, as the ``folder`` data set reads them, at one ``image_size`` and
``channels``). ``domain: all`` gives both, with a label field ``domain`` (0 for ``a``, 1 for
``b``, named after the folders): what StarGAN trains on. ``domain: a`` or ``b`` gives one of
them; a method that takes the second domain as a further source (CycleGAN's ``data_b``)
needs no second section: ``--data unpaired --set data.a=DIR data.b=DIR`` becomes ``data``
with ``domain: a`` and ``data_b`` with ``domain: b`` (:func:`gankit.config.build_config`).

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
from typing import List, Literal, Optional, Tuple

import torch

from ..errors import ConfigError, DataError
from ..registries import DATASETS
from .base import Dataset
from .images import fashion_mnist

__all__ = ["fashion_mnist_m", "fashion_mnist_styles", "unpaired", "STYLES", "render_style", "blend_images", "take_half", "half_option", "HALVES", "background_photos"]

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
                   extra_kinds=dict(data.extra_kinds), extra_classes=dict(data.extra_classes),
                   vocabulary=data.vocabulary, extra_frames=dict(data.extra_frames))


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



# ----------------------------------------------------------------------------------- styles

#: the styles fashion_mnist_styles can render, in their default order
STYLES = ("original", "photo", "inverted", "edges", "thick")


def render_style(garments: torch.Tensor, style: str, crops: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Grey garments uint8 (N, 1, H, W) in ``style`` (one of :data:`STYLES`) -> uint8 (N, 3, H, W);
    ``photo`` needs colour ``crops`` uint8 (N, 3, H, W)."""
    if style == "original":
        out = garments
    elif style == "inverted":
        out = 255 - garments
    elif style == "edges":
        from .pairs import pair_images

        out = pair_images(garments, "edges", None)["input"]
    elif style == "thick":
        out = torch.nn.functional.max_pool2d(garments.float(), 3, stride=1, padding=1).to(torch.uint8)
    elif style == "photo":
        if crops is None or len(crops) != len(garments):
            raise ValueError("the photo style needs one colour crop per garment")
        return blend_images(garments, crops)
    else:
        raise ConfigError(f"unknown style {style!r}; the styles are {', '.join(STYLES)}")
    return out.expand(-1, 3, -1, -1).contiguous()


@DATASETS.register("fashion_mnist_styles")
def fashion_mnist_styles(root: Optional[str] = None, split: Split = "train", image_size: int = 28,
                         styles: List[str] = STYLES,
                         backgrounds: Literal["auto", "photos", "scikit-learn"] = "auto", max_side: int = 256,
                         seed: int = 0) -> Dataset:
    """Fashion-MNIST in several styles (StarGAN's domains): each garment in one style drawn for
    it (original, photo, inverted, edges, thick; ``styles`` picks them), 3 channels, a field
    ``domain`` naming the style and the garments' labels ``y``; deterministic per sample (seed)."""
    styles = tuple(styles) if not isinstance(styles, str) else tuple(s.strip() for s in styles.split(","))
    unknown = [s for s in styles if s not in STYLES]
    if unknown:
        raise ConfigError(f"data.styles: unknown style {unknown[0]!r}; choose among {', '.join(STYLES)}")
    if len(styles) < 2 or len(set(styles)) != len(styles):
        raise ConfigError(f"data.styles needs at least two different styles, got {list(styles)}")
    base = fashion_mnist(root=root, split=split, image_size=image_size)
    n = len(base)
    g = torch.Generator().manual_seed(2 * seed + (1 if split == "test" else 0) + 7919)
    domain = torch.randint(len(styles), (n,), generator=g)
    x = torch.empty(n, 3, image_size, image_size, dtype=torch.uint8)
    for d, style in enumerate(styles):
        idx = (domain == d).nonzero().flatten()
        crops = None
        if style == "photo":
            if max_side < image_size:
                raise ConfigError(f"data.max_side={max_side} is smaller than data.image_size={image_size}")
            files = background_photos(backgrounds, split)
            if not files:
                raise DataError(f"fashion_mnist_styles found no {split} photographs for data.backgrounds="
                                f"{backgrounds}")
            # crop i of the whole split, so a sample's crop does not depend on the other styles
            crops = crops_for(_decoded(files, max_side), n, image_size, 2 * seed + (1 if split == "test" else 0))[idx]
        x[idx] = render_style(base.x[idx], style, crops)
    return Dataset(x=x, kind="image", name="fashion_mnist_styles", y=base.y, classes=base.classes,
                   extra={"domain": domain}, extra_kinds={"domain": "label"},
                   extra_classes={"domain": list(styles)})


# ----------------------------------------------------------------------------------- two folders

@DATASETS.register("unpaired")
def unpaired(a: str = "", b: str = "", domain: Literal["all", "a", "b"] = "all", image_size: int = 64,
             channels: Literal[1, 3] = 3, split: Split = "train", test_fraction: float = 0.0) -> Dataset:
    """Two folders of pictures as two unpaired domains (a, b): both with a field 'domain' (all),
    or one of them (a, b); every picture resized and centre-cropped to image_size, with
    channels channels; test_fraction of each folder held out."""
    from .images import folder

    for key, path in (("a", a), ("b", b)):
        if not path:
            raise DataError(f"data.{key} is not set: point data.a and data.b at two folders of pictures, e.g. --data "
                            f"unpaired --set data.a=DIR_A data.b=DIR_B")
    load = lambda root: folder(root=root, image_size=image_size, channels=channels, split=split,  # noqa: E731
                               test_fraction=test_fraction)
    if domain != "all":
        part = load(a if domain == "a" else b)
        return Dataset(x=part.x, kind="image", name="unpaired", y=part.y, classes=part.classes)
    first, second = load(a), load(b)
    names = [Path(a).expanduser().resolve().name or "a", Path(b).expanduser().resolve().name or "b"]
    if names[0] == names[1]:
        names = [f"a:{names[0]}", f"b:{names[1]}"]
    d = torch.cat([torch.zeros(len(first), dtype=torch.long), torch.ones(len(second), dtype=torch.long)])
    return Dataset(x=torch.cat([first.x, second.x]), kind="image", name="unpaired", extra={"domain": d},
                   extra_kinds={"domain": "label"}, extra_classes={"domain": names})
