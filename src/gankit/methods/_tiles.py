"""Translating pictures of any size with a fully convolutional generator: cut into
overlapping tiles, translate each, stitch them back with a smooth blend.

A generator trained on H x W pictures (pix2pix's ``unet``, srgan's ``srresnet``, cyclegan's
and stargan's ``resnet``, inpaint's ``context_encoder``) is made of convolutions only, so it
runs on pictures of any size, but it has only ever seen its training size: a picture much
larger than that is a different input (more context than the network learnt to use, and its
memory grows with the picture). :meth:`Method.sample <gankit.methods.base.Method.sample>`
therefore translates a picture whose size differs from the training size tile by tile:

* **The tiles** are ``tile`` pixels on a side (default: the training size of the condition),
  placed every ``stride = tile - overlap`` pixels (default ``overlap``: a quarter of the tile),
  the stride rounded down to a multiple of the generator's own (``multiple``: a U-Net that
  halves 3 times sees a 13-pixel shift differently from an 8-pixel one, so tiles start where
  the whole picture's grid of halvings would). The picture is padded at its right and bottom
  edges (mirrored where it is large enough, else its border replicated) to the size the tiles
  cover exactly, ``tile + k * stride``, so a picture smaller than a tile is one padded tile;
  the padding is cropped from the result.
* **The blend.** Each tile's output is weighted by a separable ramp ``w(i) = min(1, (i + 1/2)
  / o, (T - i - 1/2) / o)`` along each axis (``o`` the overlap, ``T`` the tile, both in output
  pixels: srgan's tiles come back 2 or 4 times larger), without the ramp on a side that lies
  on the picture's border; the stitched picture is the weighted sum divided by the sum of the
  weights. In an overlap of two tiles the weights are ``(o - j - 1/2) / o`` and ``(j + 1/2) / o``,
  which add up to one, so the result passes linearly from one tile's output to the other's:
  where two tiles disagree by ``d`` the picture changes by at most ``d / o`` per pixel instead
  of jumping by ``d`` at a seam, and a generator that maps every pixel on its own (the
  identity, any pointwise function) is reproduced exactly. Where a tile's output holds full
  weight and its receptive field lies inside the tile, it is the untiled output itself.
* **Methods.** Every image condition given (``input``, inpaint's ``mask``) is cut the same way;
  label conditions (stargan's target domain) go with each tile of their picture; conditions
  not given are drawn once per picture, so all of a picture's tiles share them. Every output
  that is a picture (``x``, the ``input`` used, cyclegan's ``reconstruction``) is stitched at
  its own scale; other outputs are per picture. Generators that are not fully convolutional
  (a dense layer, anything holding parameters outside convolutions and normalisations) work
  at their training size only, and a picture of another size is refused with a
  :class:`~gankit.errors.ConfigError`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

__all__ = ["Axis", "TilePlan", "ramp", "cut", "stitch", "tiled", "dense_part", "wants_tiles", "sample_tiled"]

Tensor = torch.Tensor
TileSize = Union[int, Tuple[int, int], None]

#: leaf modules that act on each position of a map with a fixed neighbourhood (or per
#: picture, as instance normalisation does), and so run on maps of any size
_LOCAL = (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm,
          nn.GroupNorm, nn.modules.dropout._DropoutNd, nn.modules.padding._ReflectionPadNd,
          nn.modules.padding._ReplicationPadNd, nn.modules.padding._ConstantPadNd, nn.PixelShuffle,
          nn.PixelUnshuffle, nn.Upsample, nn.Identity, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU,
          nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid,
          nn.Softplus, nn.Softsign, nn.Tanhshrink)
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


# ----------------------------------------------------------------------------------- the plan

@dataclass(frozen=True)
class Axis:
    """Where the tiles lie along one side: ``size`` pixels covered by tiles of ``tile`` starting
    at ``starts`` (every ``stride``), after padding to ``padded``."""
    size: int
    tile: int
    overlap: int
    starts: Tuple[int, ...]

    @property
    def padded(self) -> int:
        return self.starts[-1] + self.tile

    @classmethod
    def plan(cls, size: int, tile: int, overlap: int, multiple: int = 1) -> "Axis":
        if tile < 1:
            raise ConfigError(f"the tile size must be at least 1 pixel, got {tile}")
        if not 0 <= overlap < tile:
            raise ConfigError(f"the tile overlap must be at least 0 and below the tile size ({tile}), got {overlap}")
        stride = tile - overlap
        if multiple > 1:
            stride = min(tile, max(multiple, stride // multiple * multiple))
        count = 1 if size <= tile else 1 + math.ceil((size - tile) / stride)
        return cls(size, tile, tile - stride, tuple(i * stride for i in range(count)))

    def scaled(self, factor: int) -> "Axis":
        """The same tiles measured in the pixels of an output ``factor`` times larger."""
        return Axis(self.size * factor, self.tile * factor, self.overlap * factor,
                    tuple(s * factor for s in self.starts))


@dataclass(frozen=True)
class TilePlan:
    """The tiles of a picture: rows and columns; tile ``t`` is (row ``t // len(cols)``,
    column ``t % len(cols)``)."""
    rows: Axis
    cols: Axis

    @classmethod
    def plan(cls, size: Tuple[int, int], tile: Tuple[int, int], overlap: Tuple[int, int],
             multiple: int = 1) -> "TilePlan":
        return cls(Axis.plan(size[0], tile[0], overlap[0], multiple), Axis.plan(size[1], tile[1], overlap[1], multiple))

    def __len__(self) -> int:
        return len(self.rows.starts) * len(self.cols.starts)

    def corners(self) -> List[Tuple[int, int]]:
        return [(top, left) for top in self.rows.starts for left in self.cols.starts]

    def scaled(self, factor: int) -> "TilePlan":
        return TilePlan(self.rows.scaled(factor), self.cols.scaled(factor))


def ramp(axis: Axis, index: int, dtype=torch.float32) -> Tensor:
    """The blend weights (tile,) of the ``index``-th tile of ``axis``: rising over the overlap
    on a side with a neighbour, 1 elsewhere (see the module)."""
    i = torch.arange(axis.tile, dtype=torch.float64) + 0.5
    w = torch.ones(axis.tile, dtype=torch.float64)
    if axis.overlap:
        if index > 0:
            w = torch.minimum(w, i / axis.overlap)
        if index < len(axis.starts) - 1:
            w = torch.minimum(w, (axis.tile - i) / axis.overlap)
    return w.to(dtype)


# ----------------------------------------------------------------------------------- cut and stitch

def _pad_to(images: Tensor, h: int, w: int) -> Tensor:
    ph, pw = h - images.shape[-2], w - images.shape[-1]
    if not (ph or pw):
        return images
    mirror = ph < images.shape[-2] and pw < images.shape[-1]
    x = images if images.is_floating_point() else images.float()
    return F.pad(x, (0, pw, 0, ph), mode="reflect" if mirror else "replicate").to(images.dtype)


def cut(images: Tensor, plan: TilePlan) -> Tensor:
    """The tiles of pictures (N, C, H, W) as one batch (len(plan) * N, C, tile_h, tile_w),
    tile-major: tile ``t`` of picture ``i`` is row ``t * N + i``."""
    if tuple(images.shape[-2:]) != (plan.rows.size, plan.cols.size):
        raise ValueError(f"pictures of {tuple(images.shape[-2:])} for a plan of {(plan.rows.size, plan.cols.size)}")
    padded = _pad_to(images, plan.rows.padded, plan.cols.padded)
    th, tw = plan.rows.tile, plan.cols.tile
    return torch.cat([padded[..., top:top + th, left:left + tw] for top, left in plan.corners()])


def stitch(tiles: Tensor, plan: TilePlan) -> Tensor:
    """The pictures (N, C, H, W) whose tiles (as :func:`cut` orders them) are ``tiles``, each
    weighted by its ramps and normalised by the weights' sum (see the module). The plan is in
    the tiles' own pixels (:meth:`TilePlan.scaled` for outputs larger than their inputs)."""
    rows, cols = plan.rows, plan.cols
    if tuple(tiles.shape[-2:]) != (rows.tile, cols.tile) or len(tiles) % len(plan):
        raise ValueError(f"{tuple(tiles.shape)} tiles for a plan of {len(plan)} tiles of {(rows.tile, cols.tile)}")
    n = len(tiles) // len(plan)
    dtype = torch.float64 if tiles.dtype == torch.float64 else torch.float32
    canvas = torch.zeros(n, tiles.shape[1], rows.padded, cols.padded, dtype=dtype, device=tiles.device)
    weight = torch.zeros(rows.padded, cols.padded, dtype=dtype, device=tiles.device)
    wy = [ramp(rows, k, dtype).to(tiles.device) for k in range(len(rows.starts))]
    wx = [ramp(cols, k, dtype).to(tiles.device) for k in range(len(cols.starts))]
    t = 0
    for r, top in enumerate(rows.starts):
        for c, left in enumerate(cols.starts):
            w = wy[r][:, None] * wx[c][None, :]
            canvas[..., top:top + rows.tile, left:left + cols.tile] += tiles[t * n:(t + 1) * n].to(dtype) * w
            weight[top:top + rows.tile, left:left + cols.tile] += w
            t += 1
    return (canvas / weight)[..., :rows.size, :cols.size]


def tiled(fn, images: Tensor, tile: Tuple[int, int], overlap: Tuple[int, int], multiple: int = 1) -> Tensor:
    """``fn`` (a batch of tiles -> a batch of outputs, each the same whole number of times
    larger than its tile) applied to ``images`` (N, C, H, W) tile by tile and stitched."""
    plan = TilePlan.plan(tuple(images.shape[-2:]), tile, overlap, multiple)
    out = fn(cut(images, plan))
    return stitch(out, plan.scaled(_scale(out, plan, "the output")))


def _scale(out: Tensor, plan: TilePlan, what: str) -> int:
    h, w = out.shape[-2:]
    th, tw = plan.rows.tile, plan.cols.tile
    if h % th or w % tw or h // th != w // tw:
        raise ConfigError(f"{what} of a {th}x{tw} tile is {h}x{w}, not a whole multiple of it; such outputs cannot "
                          "be stitched: give pictures of the training size")
    return h // th


# ----------------------------------------------------------------------------------- methods

def dense_part(net: nn.Module) -> Optional[str]:
    """Why ``net`` works at one size only (its first part that is not a convolution,
    normalisation, activation, padding, resampling or dropout: ``"head.0 (Linear)"``), or
    None for a fully convolutional network. A network may say itself with a class attribute
    ``fully_convolutional``."""
    stated = getattr(net, "fully_convolutional", None)
    if stated is not None:
        return None if stated else type(net).__name__
    for name, m in net.named_modules():
        if isinstance(m, _LOCAL) or isinstance(m, _CONTAINERS):
            continue
        has_children = any(True for _ in m.children())
        if not has_children or any(True for _ in m.parameters(recurse=False)):
            return f"{name or 'the network'} ({type(m).__name__})"
    return None


def _generator_roles(method) -> List[str]:
    return [role for role, registry in method.contract.roles.items() if registry == "generator"]


def _image_conditions(method, given: Mapping[str, Any]) -> Dict[str, Tensor]:
    out = {}
    for name, value in given.items():
        f = method.info.fields.get(name)
        if f is not None and f.kind == "image" and name in method.contract.conditions:
            out[name] = torch.as_tensor(value)
    return out


def wants_tiles(method, given: Mapping[str, Any], tile: TileSize) -> bool:
    """Whether sampling with ``given`` goes tile by tile: a tile size is set, or an image
    condition is given at a size other than its training size."""
    images = _image_conditions(method, given)
    if not images:
        if tile is not None:
            raise ConfigError(f"tiles cut pictures given to translate; this {type(method).__name__} run is given "
                              "none (it takes no picture, or none was given)")
        return False
    if tile is not None:
        return True
    return any(t.dim() == 4 and tuple(t.shape[-2:]) != tuple(method.info.fields[name].shape[-2:])
               for name, t in images.items())


def _pair(value, key: str) -> Tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise ConfigError(f"{key} takes a whole number of pixels or (height, width), got {value!r}")


def sample_tiled(method, n: int, given: Mapping[str, Any], generator: Optional[torch.Generator],
                 tile: TileSize, overlap: TileSize, batch_size: int, dropout: bool) -> Dict[str, Tensor]:
    """:meth:`Method.sample` for image conditions of any size: tile by tile (see the module)."""
    images = _image_conditions(method, given)
    first = next(iter(images))
    fields = {name: method.info.fields[name] for name in images}
    for name, t in images.items():
        f = fields[name]
        if t.dim() != 4 or t.shape[1] != f.shape[0]:
            raise ConfigError(f"'{name}' must have samples of shape {tuple(f.shape)} (another height and width is "
                              f"translated in tiles), got {tuple(t.shape[1:])}")
        if len(t) != n:
            raise ConfigError(f"{len(t)} values of '{name}' given for {n} samples")
    train_size = tuple(fields[first].shape[-2:])
    size = tuple(images[first].shape[-2:])
    for name, t in images.items():       # every picture condition at the same multiple of its training size
        want = tuple(fields[name].shape[-2:])
        if tuple(t.shape[-2:]) != size or want != train_size:
            raise ConfigError(f"'{name}' is {tuple(t.shape[-2:])} but '{first}' is {size}; give the conditions of "
                              "one picture at one size")
    for role in _generator_roles(method):
        why = dense_part(method.for_sampling(role))
        if why is not None:
            f = fields[first]
            raise ConfigError(
                f"'{first}' must have samples of shape {tuple(f.shape)}, got {tuple(images[first].shape[1:])}: the "
                f"{role} ({method.network_name(role)}) is not fully convolutional ({why}), so it translates pictures "
                f"of its training size only; resize them to {train_size[0]}x{train_size[1]}")
    tile_hw = _pair(tile, "tile") if tile is not None else train_size
    overlap_hw = _pair(overlap, "overlap") if overlap is not None else (tile_hw[0] // 4, tile_hw[1] // 4)
    multiple = _alignment(method, fields[first])
    plan = TilePlan.plan(size, tile_hw, overlap_hw, multiple)
    k = len(plan)

    labels = method.check_given({name: v for name, v in given.items() if name not in images}, n)
    missing = [c for c in method.contract.conditions if c not in images and c not in labels]
    if missing:      # drawn once per picture: all its tiles share them
        drawn = method.draw_conditions(n, generator)
        labels.update({c: drawn[c] for c in missing if c in drawn and c not in _image_conditions(method, drawn)})
    tiles = {name: cut(t, plan) for name, t in images.items()}
    repeated = {name: v.repeat(k, *([1] * (v.dim() - 1))) for name, v in labels.items()}
    out = method.sample(n * k, given={**tiles, **repeated}, generator=generator, batch_size=batch_size,
                        dropout=dropout, tile=False)
    result = {}
    for name, v in out.items():
        if v.dim() == 4 and v.is_floating_point():
            result[name] = stitch(v, plan.scaled(_scale(v, plan, f"output '{name}'"))).float()
        else:
            result[name] = v[:n]
    return result


def _alignment(method, f) -> int:
    """The shift (in the condition's pixels) that every generator role sees alike: its
    ``multiple`` (2^halvings), less a whole upscaling of the condition before it (pix2pix's
    low-resolution inputs)."""
    multiple = 1
    for role in _generator_roles(method):
        m = int(getattr(method.for_sampling(role), "multiple", 1) or 1)
        multiple = multiple * m // math.gcd(multiple, m)
    x = method.info.fields.get("x")
    if x is not None and x.kind == "image" and tuple(x.shape[-2:]) != tuple(f.shape[-2:]):
        if x.shape[-1] % f.shape[-1] == 0:
            multiple = max(1, multiple // (x.shape[-1] // f.shape[-1]))
    return multiple
