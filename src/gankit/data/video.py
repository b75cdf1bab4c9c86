"""Short clips of Fashion-MNIST garments moving on a canvas, for next-frame prediction.

``moving_fashion``
------------------
Each sample is a clip of grey frames of ``image_size`` x ``image_size`` pixels (black
ground) in which garments (Fashion-MNIST pictures, enlarged or shrunk to ``sprite_size``)
move. The fields are

* ``input``: the ``frames`` past frames stacked along the channels (``frames``, H, W), the
  oldest first: what a predictor is given;
* ``x``: the next frame (1, H, W): what it must predict;
* ``future``: the ``future`` frames after that (``future``, H, W), for judging rollouts
  (absent with ``future: 0``);
* ``y``: the class of the (first) garment;
* ``direction`` (mode ``ambiguous`` only): 0 when the garment turns left, 1 right.

Two modes:

* ``ambiguous`` (the lectures' point about video prediction: a car that may turn left or
  right): in the past frames the garment travels straight down or up the canvas's middle
  column toward its centre, or stands still (a vertical speed drawn from ``-step .. step``,
  bounded so the past stays on the canvas), and it ends a pixel or two from the centre.
  In the next frame it turns and moves ``step`` pixels to the left or to the right, with
  probability 1/2 each, and keeps going that way in the ``future`` frames (leaving the
  canvas as it reaches the edge). The past frames hold nothing that tells the two apart, so
  a predictor that regresses the next frame can only average the two futures.
* ``bounce``: ``sprites`` garments (1 or 2) start anywhere on the canvas with velocities
  of at most ``step`` pixels a frame along each axis and bounce off its edges; overlapping
  garments show the brighter pixel. The future is a function of the past (from two past
  frames on).

Sample ``i`` is a function of ``seed``, the split and ``i`` alone: each quantity (the
garments, starting points, speeds, turns) is drawn for the samples in order from a generator
of its own seeded by (``seed``, split), so sample i is the same clip whatever ``n_samples``
is, and a subset (a batch, a half) holds exactly the samples the whole data set has at those
indices. The training split's garments are Fashion-MNIST's
training pictures, the test split's its test pictures: the held-out clips move garments
no training clip showed. Only the few numbers that place the garments are held per sample;
the frames are drawn when a batch is taken (:class:`ClipFrames`, lazy image fields), so
100,000 clips cost no more memory than 1,000.

The garments are read by the ``fashion_mnist`` loader (``root`` as there: the Debian
package's folder, ``$GANKIT_DATA`` or ``data.root``).
"""
from __future__ import annotations

from typing import Literal, Optional, Sequence

import torch

from ..errors import ConfigError, DataError
from ..registries import DATASETS
from .base import Dataset, LazyImages
from .images import fashion_mnist

__all__ = ["moving_fashion", "Clips", "ClipFrames", "MODES", "LEFT", "RIGHT"]

Split = Literal["train", "test"]
#: the modes of moving_fashion
MODES = ("ambiguous", "bounce")
#: the values of the ``direction`` field
LEFT, RIGHT = 0, 1


class Clips:
    """Where every garment of every clip stands in every frame, and the garment pictures:
    enough to draw any frame of any clip.

    ``sprites``: uint8 (P, s, s) garment pictures; ``which``: int64 (N, G), the picture of
    each of a clip's G garments; ``top``, ``left``: int64 (N, T, G), each garment's top-left
    corner in each of the T frames (it may lie partly or wholly off the canvas)."""

    def __init__(self, sprites: torch.Tensor, which: torch.Tensor, top: torch.Tensor, left: torch.Tensor,
                 size: int):
        self.sprites, self.which, self.top, self.left, self.size = sprites, which, top, left, int(size)

    def __len__(self) -> int:
        return len(self.which)

    @property
    def n_frames(self) -> int:
        return self.top.shape[1]

    def draw(self, idx: torch.Tensor, frames: Sequence[int]) -> torch.Tensor:
        """Frames ``frames`` of the clips ``idx`` as uint8 (len(idx), len(frames), H, W)."""
        S, s = self.size, self.sprites.shape[-1]
        out = torch.zeros(len(idx), len(frames), S, S, dtype=torch.uint8)
        tops, lefts, which = self.top[idx], self.left[idx], self.which[idx]
        for i in range(len(idx)):
            for j, t in enumerate(frames):
                canvas = out[i, j]
                for g in range(which.shape[1]):
                    top, left = int(tops[i, t, g]), int(lefts[i, t, g])
                    r0, r1 = max(top, 0), min(top + s, S)
                    c0, c1 = max(left, 0), min(left + s, S)
                    if r0 >= r1 or c0 >= c1:
                        continue                      # wholly off the canvas
                    patch = self.sprites[which[i, g], r0 - top:r1 - top, c0 - left:c1 - left]
                    torch.maximum(canvas[r0:r1, c0:c1], patch, out=canvas[r0:r1, c0:c1])
        return out


class ClipFrames(LazyImages):
    """A lazy image field of :class:`Clips`: the frames ``frames`` of each clip stacked along
    the channels, drawn when indexed."""

    def __init__(self, clips: Clips, frames: Sequence[int]):
        self.clips, self.frames = clips, tuple(int(t) for t in frames)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.clips), len(self.frames), self.clips.size, self.clips.size))

    def _take(self, idx: torch.Tensor) -> torch.Tensor:
        return self.clips.draw(idx, self.frames)


def _drawer(seed: int, split: str, n: int):
    """``draw(q, low, high, shape)``: integers in [low, high] for ``n`` samples, of quantity ``q``
    from a generator of its own seeded by (``seed``, split, q); each draw gives sample i the same
    numbers whatever ``n`` is (a longer draw only adds samples behind), so sample i is a
    function of (seed, split, i)."""
    base = 2 * seed + (1 if split == "test" else 0)

    def draw(q: int, low: int, high: int, *shape: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(base * 1_000_003 + 7919 * q + 104_729)
        return torch.randint(low, high + 1, (n, *shape), generator=g)

    return draw


def _ambiguous(draw, n: int, frames: int, future: int, size: int, sprite: int, step: int):
    """(top, left, direction) of single-garment clips that turn left or right (see the module)."""
    centre = (size - sprite) // 2
    jitter = 2
    # the past must stay on the canvas: |speed| (frames - 1) <= centre - jitter
    reach = (centre - jitter) // max(frames - 1, 1)
    vmax = max(0, min(step, reach))
    speed = draw(1, -vmax, vmax)
    end_top = centre + draw(2, -jitter, jitter)
    end_left = centre + draw(3, -jitter, jitter)
    direction = draw(4, 0, 1)
    t = torch.arange(frames + 1 + future)
    past = (t < frames)
    # past frames: straight down (speed > 0) or up toward the end point; then the turn
    top = torch.where(past, end_top[:, None] - speed[:, None] * (frames - 1 - t), end_top[:, None])
    sign = direction * 2 - 1
    left = end_left[:, None] + torch.where(past, 0, sign[:, None] * step * (t - frames + 1))
    return top[..., None], left[..., None], direction


def _bounce(draw, n: int, frames: int, sprites: int, size: int, sprite: int, step: int):
    """(top, left) of ``sprites`` garments bouncing off the canvas's edges (see the module)."""
    room = size - sprite
    pos = draw(1, 0, room, 2, sprites)                   # (top, left) per garment
    vel = draw(2, -step, step, 2, sprites)
    still = (vel == 0).all(1)                            # a garment that would stand still moves sideways
    push = (draw(3, 0, 1, sprites) * 2 - 1) * max(1, step // 2)
    vel[:, 1] = torch.where(still, push, vel[:, 1])
    out = torch.empty(n, frames, 2, sprites, dtype=torch.long)
    for t in range(frames):
        out[:, t] = pos
        pos = pos + vel
        low, high = pos < 0, pos > room
        pos = torch.where(low, -pos, torch.where(high, 2 * room - pos, pos))
        vel = torch.where(low | high, -vel, vel)
    return out[:, :, 0], out[:, :, 1]


@DATASETS.register("moving_fashion")
def moving_fashion(root: Optional[str] = None, split: Split = "train",
                   mode: Literal["ambiguous", "bounce"] = "ambiguous",
                   n_samples: int = 10000, frames: int = 3, future: int = 2, image_size: int = 48,
                   sprite_size: int = 28, step: int = 8, sprites: int = 1, seed: int = 0) -> Dataset:
    """Clips of Fashion-MNIST garments moving on a black canvas: input = the frames past frames
    (stacked channels), x = the next frame, future = the frames after it; mode ambiguous (the
    garment turns left or right at random: a field direction) or bounce (1 or 2 garments
    bouncing off the edges); sample i a function of (seed, split, i); test split: test garments."""
    if mode not in MODES:
        raise ConfigError(f"data.mode must be one of {', '.join(MODES)}, got {mode!r}")
    for key, value, low in (("n_samples", n_samples, 1), ("frames", frames, 1), ("future", future, 0),
                            ("sprite_size", sprite_size, 4), ("step", step, 1)):
        if value < low:
            raise ConfigError(f"data.{key} must be at least {low}, got {value}")
    if image_size < sprite_size + 4:
        raise ConfigError(f"data.image_size={image_size} leaves no room for garments of data.sprite_size="
                          f"{sprite_size} to move: make the canvas at least {sprite_size + 4} pixels")
    if mode == "bounce" and sprites not in (1, 2):
        raise ConfigError(f"data.sprites must be 1 or 2 (garments bouncing in each clip), got {sprites}")
    if mode == "ambiguous" and sprites != 1:
        raise ConfigError("data.sprites: mode ambiguous moves one garment; use mode bounce for two")
    base = fashion_mnist(root=root, split=split, image_size=sprite_size)
    if len(base) == 0:
        raise DataError(f"moving_fashion found no Fashion-MNIST {split} pictures to move")
    pictures = base.x[:, 0].contiguous()
    draw = _drawer(seed, split, n_samples)
    which = draw(0, 0, len(pictures) - 1, sprites)
    total = frames + 1 + future
    extra, kinds, classes = {}, {}, {}
    if mode == "ambiguous":
        top, left, direction = _ambiguous(draw, n_samples, frames, future, image_size, sprite_size, step)
        extra["direction"], kinds["direction"], classes["direction"] = direction, "label", ["left", "right"]
    else:
        top, left = _bounce(draw, n_samples, total, sprites, image_size, sprite_size, step)
    clips = Clips(pictures, which, top, left, image_size)
    extra["input"] = ClipFrames(clips, range(frames))
    kinds["input"] = "image"
    if future:
        extra["future"] = ClipFrames(clips, range(frames + 1, total))
        kinds["future"] = "image"
    return Dataset(x=ClipFrames(clips, [frames]), kind="image", name="moving_fashion", y=base.y[which[:, 0]],
                   classes=base.classes, extra=extra, extra_kinds=kinds, extra_classes=classes,
                   extra_frames={"input": frames, **({"future": future} if future else {})})

