"""Paired image data made from any image data set: the option ``data.pairs``.

Image-to-image translation ("Conditional Generation by GAN" in the lectures, pix2pix)
learns x from a picture c of it. ``data.pairs`` turns every image data set (Fashion-MNIST,
MNIST, a folder, an array, ...) into pairs without a line in its loader: the target stays
``x`` and the condition is a new image field ``input`` (uint8, like ``x``):

* ``edges``: a binary edge map (255 on an edge, 0 elsewhere) of the image's luma, where
  the Sobel gradient magnitude exceeds :data:`EDGE_THRESHOLD` (a full black-to-white step
  gives 4; an edge 1/8 of the range high is kept); one channel;
* ``grey``: the luma (ITU-R BT.601 weights) of a colour image, one channel; refused on
  one-channel data, which has no colour to restore;
* ``mask``: the image with a rectangle (each side between a quarter and a half of the
  image's, anywhere inside it) filled with mid-grey (128), plus a field ``mask``
  (uint8 (N, 1, H, W), 255 inside the rectangle, 0 outside);
* ``mask_centre``: the same with the centred rectangle of half the image's sides (a
  quarter of its area: the context encoder's hole), placed exactly in the middle (the side
  is rounded down to one that leaves equal margins);
* ``mask_free``: the same with a free-form mask: one to three brush strokes, each a chain of
  one to three thick straight segments turning by up to 90 degrees (a segment between an
  eighth and a third of the shorter side long, the brush between a ninth and a fifth of it
  wide); never empty;
* ``lowres2``, ``lowres4``: the image downsampled by 2 or 4 with antialiased bicubic
  interpolation (rounded to uint8), so ``input`` is (C, H/f, W/f); the sides must be
  divisible by f.

Everything is a function of the image and its index in the data set (the rectangle of
``mask`` and the strokes of ``mask_free`` come from a counter-based hash of the index; see
:func:`mask_images`), so a data set pairs the same way
in every process, after a resume and at evaluation. :func:`pair_images` pairs one batch of
uint8 images with their sample indices, for a data set that makes its samples on the fly;
:func:`apply_pairs` pairs a loaded :class:`~gankit.data.base.Dataset` (what
:func:`~gankit.data.base.build_data` does when the config asks for pairs): in memory for an
in-memory ``x``, and as a lazy :class:`PairedField` computed when a batch is taken for a
data set whose ``x`` is made when indexed (``photos``' crops).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Literal, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import Dataset, Field, LazyImages

__all__ = ["PAIRS", "Pairs", "MASKS", "EDGE_THRESHOLD", "MASK_FILL", "pair_images", "apply_pairs", "pairs_option",
           "split_data_options", "paired_fields", "PairedField",
           "luma", "sobel_magnitude", "mask_boxes", "centre_box", "free_masks", "mask_images"]

#: the values of ``data.pairs``
PAIRS = ("none", "edges", "grey", "mask", "lowres2", "lowres4", "mask_centre", "mask_free")
Pairs = Literal["none", "edges", "grey", "mask", "lowres2", "lowres4", "mask_centre", "mask_free"]
#: the pairings that mask a region (input and mask fields) -> the shape of their masks
MASKS = {"mask": "rect", "mask_centre": "centre", "mask_free": "free"}

#: Sobel magnitude (images in [0, 1]) above which a pixel is an edge
EDGE_THRESHOLD = 0.5
#: the value a masked region is filled with
MASK_FILL = 128
#: images paired per chunk (bounds the float32 working memory)
_CHUNK = 4096
#: salt of the hash that places the masks
_MASK_SALT = 0x5EED_0F_3A5C


def pairs_option(value, section: str = "data") -> str:
    """Validate a ``data.pairs`` value: one of :data:`PAIRS`, else an error naming them."""
    from ..registry import coerce

    return coerce(value, Pairs, f"{section}.pairs")


def luma(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) luma of float images (N, C, H, W): BT.601 weights for colour, the channel for grey."""
    if x.shape[1] == 3:
        w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    return x[:, :1]


def sobel_magnitude(grey: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude of (N, 1, H, W) float images, borders replicated."""
    k = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=grey.dtype, device=grey.device)
    kernels = torch.stack([k, k.t()]).unsqueeze(1)                 # (2, 1, 3, 3): d/dx, d/dy
    g = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kernels)
    return g.pow(2).sum(1, keepdim=True).sqrt()


def _hash_uniform(index: np.ndarray, stream: int) -> np.ndarray:
    """Uniform [0, 1) numbers, one per index, from splitmix64 of (index, stream): the same on
    every machine and in every process, whatever order samples are paired in."""
    with np.errstate(over="ignore"):
        z = index.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64((_MASK_SALT + stream) & (2**64 - 1))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def mask_boxes(index, height: int, width: int) -> np.ndarray:
    """The masked rectangle of each sample index: (N, 4) int64 rows (top, left, height, width),
    each side between a quarter and a half of the image's (at least 1 pixel)."""
    index = np.asarray(index, dtype=np.int64).reshape(-1)
    out = np.empty((len(index), 4), dtype=np.int64)
    for col, (side, stream) in enumerate(((height, 0), (width, 1))):
        lo, hi = max(1, side // 4), max(1, side // 2)
        size = lo + np.floor(_hash_uniform(index, stream) * (hi - lo + 1)).astype(np.int64)
        start = np.floor(_hash_uniform(index, stream + 2) * (side - size + 1)).astype(np.int64)
        out[:, col], out[:, 2 + col] = start, size
    return out


def centre_box(height: int, width: int) -> Tuple[int, int, int, int]:
    """The centred rectangle (top, left, height, width) of ``mask_centre``: each side half the
    image's, rounded down to the nearest length that leaves equal margins on both sides (at
    least 1 pixel)."""
    def side(n: int) -> Tuple[int, int]:
        s = n // 2
        if (n - s) % 2:
            s -= 1
        s = max(1, s)
        return (n - s) // 2, s

    (top, h), (left, w) = side(height), side(width)
    return top, left, h, w


#: free-form masks: at most this many strokes, each of at most this many segments
_STROKES, _SEGMENTS = 3, 3
#: splitmix streams of the free-form masks (the rectangles use 0..3)
_FREE_STREAM = 64
#: samples rendered per chunk (bounds the float32 working memory: chunk * 9 * H * W)
_FREE_CHUNK = 256


def free_masks(index, height: int, width: int) -> torch.Tensor:
    """The free-form masks of ``mask_free`` for the sample indices ``index``: bool (N, H, W).

    Sample i has 1 + floor(3 u) strokes; stroke k starts at a uniform point of the image with
    a uniform direction and has 1 + floor(3 u) segments, each turning by a uniform angle in
    [-90, 90] degrees from the one before, of length (1/8 + u 5/24) s, clipped to the image,
    where s is the shorter side; its brush is (1/9 + u 4/45) s wide (at least 2 pixels). A
    pixel is masked when its centre lies within half a brush width of a segment. Every u is
    its own stream of the counter-based hash of i, so a mask depends on i alone. The first
    segment's start is within 0.71 pixels of a pixel centre and the brush is at least 2 wide,
    so no mask is empty."""
    index = np.asarray(index, dtype=np.int64).reshape(-1)
    n, s = len(index), min(height, width)
    u = lambda stream: _hash_uniform(index, _FREE_STREAM + stream)   # noqa: E731
    strokes = 1 + np.floor(u(0) * _STROKES).astype(np.int64)
    seg_a, seg_b, radius, active = [], [], [], []
    for k in range(_STROKES):
        base = 1 + k * 16
        n_seg = 1 + np.floor(u(base) * _SEGMENTS).astype(np.int64)
        r = np.maximum(1.0, s * (1 / 9 + u(base + 1) * 4 / 45) / 2)
        point = np.stack([u(base + 2) * height, u(base + 3) * width], 1)       # (row, col)
        angle = u(base + 4) * 2 * np.pi
        for j in range(_SEGMENTS):
            if j:
                angle = angle + (u(base + 5 + 2 * j) - 0.5) * np.pi
            length = s * (1 / 8 + u(base + 6 + 2 * j) * 5 / 24)
            end = point + length[:, None] * np.stack([np.sin(angle), np.cos(angle)], 1)
            end = np.clip(end, 0.0, [float(height), float(width)])
            seg_a.append(point)
            seg_b.append(end)
            radius.append(r)
            active.append((k < strokes) & (j < n_seg))
            point = end
    a = torch.from_numpy(np.stack(seg_a, 1)).float()          # (N, S, 2): (row, col) of each segment's ends
    ab = torch.from_numpy(np.stack(seg_b, 1)).float() - a
    r2 = torch.from_numpy(np.stack(radius, 1)).float().pow(2)
    r2 = torch.where(torch.from_numpy(np.stack(active, 1)), r2, torch.tensor(-1.0))  # unused segments: no pixel
    length2 = ab.pow(2).sum(-1).clamp_min(1e-12)
    rows = torch.arange(height, dtype=torch.float32).add_(0.5).view(1, 1, height, 1)
    cols = torch.arange(width, dtype=torch.float32).add_(0.5).view(1, 1, 1, width)
    out = torch.empty(n, height, width, dtype=torch.bool)
    for start in range(0, n, _FREE_CHUNK):
        sl = slice(start, start + _FREE_CHUNK)
        col = lambda t: t[sl].unsqueeze(-1).unsqueeze(-1)   # noqa: E731  (n, S) -> (n, S, 1, 1)
        ar, ac, abr, abc = col(a[..., 0]), col(a[..., 1]), col(ab[..., 0]), col(ab[..., 1])
        dr, dc = rows - ar, cols - ac                        # (n, S, H, 1), (n, S, 1, W): separable
        t = (dr * abr + dc * abc).div_(col(length2)).clamp_(0, 1)   # the nearest point of the segment
        dist2 = (dr - t * abr).pow_(2).add_((dc - t * abc).pow_(2))
        out[sl] = (dist2 <= col(r2)).any(1)
    return out.view(n, height, width)


def mask_images(index, height: int, width: int, shape: str = "rect") -> torch.Tensor:
    """The masks of the sample indices ``index``: bool (N, 1, H, W), True inside. ``shape``:
    ``rect`` (:func:`mask_boxes`, ``data.pairs=mask``), ``centre`` (:func:`centre_box`,
    ``mask_centre``) or ``free`` (:func:`free_masks`, ``mask_free``)."""
    index = np.asarray(index, dtype=np.int64).reshape(-1)
    if shape == "free":
        return free_masks(index, height, width).unsqueeze(1)
    if shape == "rect":
        boxes = torch.from_numpy(mask_boxes(index, height, width))
    elif shape == "centre":
        boxes = torch.tensor([centre_box(height, width)], dtype=torch.int64).expand(len(index), 4)
    else:
        raise ConfigError(f"mask shape must be one of rect, centre, free, got {shape!r}")
    rows, cols = torch.arange(height).view(1, height, 1), torch.arange(width).view(1, 1, width)
    top, left, bh, bw = (boxes[:, i].view(-1, 1, 1) for i in range(4))
    inside = (rows >= top) & (rows < top + bh) & (cols >= left) & (cols < left + bw)   # (N, H, W)
    return inside.unsqueeze(1)


def _check(pairs: str, shape: Tuple[int, ...], name: str, section: str) -> None:
    c, h, w = shape
    if pairs == "grey" and c != 3:
        raise ConfigError(f"{section}.pairs=grey learns colour from a grey picture, but data set '{name}' has "
                          f"{c} channel(s): use colour images (a folder of photographs, photos) or another "
                          "pairing (edges, mask, lowres2, lowres4)")
    if pairs.startswith("lowres"):
        f = int(pairs[len("lowres"):])
        if h % f or w % f:
            raise ConfigError(f"{section}.pairs={pairs} downsamples by {f}, but the images of '{name}' are {h}x{w}, "
                              f"not divisible by {f}: set {section}.image_size to a multiple of {f} or use lowres2")


def paired_fields(shape: Tuple[int, ...], pairs: str) -> Dict[str, Field]:
    """The fields ``pairs`` adds to images of ``shape`` (C, H, W), described without any image
    (what a method is built from when the data is not loaded)."""
    if pairs == "none":
        return {}
    c, h, w = shape
    if pairs in MASKS:
        return {"input": Field("image", (c, h, w)), "mask": Field("image", (1, h, w))}
    if pairs in ("edges", "grey"):
        return {"input": Field("image", (1, h, w))}
    f = int(pairs[len("lowres"):])
    return {"input": Field("image", (c, h // f, w // f))}


def pair_images(x: torch.Tensor, pairs: str, index) -> Dict[str, torch.Tensor]:
    """The paired fields of uint8 images ``x`` (N, C, H, W) whose sample indices are ``index``
    (only the masks use them): ``{"input": ...}`` (plus ``"mask"`` for ``mask``, ``mask_centre``
    and ``mask_free``), uint8."""
    if pairs == "none":
        return {}
    _check(pairs, tuple(x.shape[1:]), "the images", "data")
    if pairs in MASKS:
        n, _, h, w = x.shape
        inside = mask_images(index, h, w, MASKS[pairs])
        return {"input": torch.where(inside, torch.tensor(MASK_FILL, dtype=torch.uint8), x),
                "mask": inside.to(torch.uint8) * 255}
    f = x.float()
    if pairs == "edges":
        out = (sobel_magnitude(luma(f / 255.0)) > EDGE_THRESHOLD).to(torch.uint8) * 255
    elif pairs == "grey":
        out = luma(f).round_().clamp_(0, 255).to(torch.uint8)
    else:   # lowres2, lowres4
        k = int(pairs[len("lowres"):])
        small = F.interpolate(f, size=(x.shape[2] // k, x.shape[3] // k), mode="bicubic", antialias=True,
                              align_corners=False)
        out = small.round_().clamp_(0, 255).to(torch.uint8)
    return {"input": out.contiguous()}


class PairedField(LazyImages):
    """A paired field of a data set whose ``x`` is itself lazy (``photos``' crops): computed
    from the indexed samples of ``x`` when indexed, never held whole
    (:class:`~gankit.data.base.LazyImages`)."""

    def __init__(self, source, pairs: str, name: str, shape: Tuple[int, ...]):
        self.source, self.pairs, self.name = source, pairs, name
        self._shape = torch.Size((len(source),) + tuple(shape))

    @property
    def shape(self) -> torch.Size:
        return self._shape

    def _take(self, idx: torch.Tensor) -> torch.Tensor:
        return pair_images(self.source[idx], self.pairs, idx.numpy())[self.name]

    def __repr__(self) -> str:
        return f"PairedField({self.name} of data.pairs={self.pairs}, {len(self)} samples)"


def apply_pairs(data: Dataset, pairs: str, section: str = "data") -> Dataset:
    """``data`` with the paired fields of ``pairs`` (see the module's description); the data
    set itself for ``none``. Refused, with what to do, for vector data, for a data set that
    already has a field of the same name, and where the pairing cannot apply (grey on one
    channel, lowres on sides it does not divide)."""
    if pairs == "none":
        return data
    if data.kind != "image":
        raise ConfigError(f"{section}.pairs={pairs} pairs images, but data set '{data.name}' holds {data.kind}s; "
                          f"unset {section}.pairs or use an image data set")
    _check(pairs, data.shape, data.name, section)
    names = ("input", "mask") if pairs in MASKS else ("input",)
    clash = [k for k in names if k in data.extra]
    if clash:
        raise ConfigError(f"{section}.pairs={pairs} adds the field(s) {', '.join(clash)}, which data set "
                          f"'{data.name}' already has; unset {section}.pairs to train on its own pairs")
    extra = dict(data.extra)
    kinds = dict(data.extra_kinds)
    if not isinstance(data.x, torch.Tensor):     # x is made when indexed: so are its pairs
        for k, f in paired_fields(data.shape, pairs).items():
            extra[k], kinds[k] = PairedField(data.x, pairs, k, f.shape), "image"
        return dataclasses.replace(data, extra=extra, extra_kinds=kinds)
    parts: Dict[str, list] = {k: [] for k in names}
    for start in range(0, max(len(data), 1), _CHUNK):   # an empty data set: one empty chunk
        stop = min(start + _CHUNK, len(data))
        for k, v in pair_images(data.x[start:stop], pairs, np.arange(start, stop)).items():
            parts[k].append(v)
    for k, chunks in parts.items():
        extra[k] = torch.cat(chunks)
        kinds[k] = "image"
    return dataclasses.replace(data, extra=extra, extra_kinds=kinds)


def split_data_options(spec: Dict, section: str = "data") -> Tuple[Dict, Optional[str]]:
    """A data section's parameters without the options every image data set takes
    (``pairs``), and the validated ``pairs`` (None when not given)."""
    spec = dict(spec)
    if "pairs" not in spec:
        return spec, None
    pairs = pairs_option(spec.pop("pairs"), section)
    return spec, pairs
