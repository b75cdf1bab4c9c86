"""Sample pictures: an image grid for image data, a scatter plot or histogram for vectors."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, Optional

import torch

from .plots import pyplot, save_figure

__all__ = ["save_samples"]


def _fits_beside(v: torch.Tensor, x: torch.Tensor) -> bool:
    """Whether image output ``v`` can stand beside samples ``x``: as many images, the same
    channels (or grey beside colour) and x's size or x's size divided by a whole factor."""
    if not (v.is_floating_point() and v.dim() == 4 and x.dim() == 4 and len(v) == len(x)):
        return False
    (c, h, w), (cx, hx, wx) = v.shape[1:], x.shape[1:]
    return (c == cx or {c, cx} == {1, 3}) and hx % h == 0 and wx % w == 0 and hx // h == wx // w


def _beside(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``v`` at x's size (nearest-neighbour enlargement, so a low-resolution input shows its
    pixels) and channels (grey repeated into colour)."""
    if v.shape[-2:] != x.shape[-2:]:
        v = torch.nn.functional.interpolate(v, size=tuple(x.shape[-2:]), mode="nearest")
    if v.shape[1] != x.shape[1]:
        v = v.expand(-1, x.shape[1], -1, -1) if v.shape[1] == 1 else v.mean(1, keepdim=True)
    return v


def _frames_apart(out: Dict[str, torch.Tensor], x: torch.Tensor, fields):
    """``out`` with each image output that is a data field stacking m >= 2 frames (its
    ``Field.frames``: video's past frames) replaced by its m frames, oldest first, each one
    output (``NAME_1`` ... ``NAME_m``) that counts as a field; and the names of the fields."""
    names = set(fields)
    split: Dict[str, torch.Tensor] = {}
    for k, v in out.items():
        m = getattr(fields.get(k), "frames", 1) if hasattr(fields, "get") else 1
        if k != "x" and m > 1 and v.dim() == 4 and v.shape[1] % m == 0 and len(v) == len(x):
            for i, frame in enumerate(v.split(v.shape[1] // m, 1), 1):
                split[f"{k}_{i}"] = frame
                names.add(f"{k}_{i}")
        else:
            split[k] = v
    return split, names


def save_samples(samples, info, path, real: Optional[torch.Tensor] = None, title: str = "",
                 nrow: Optional[int] = None) -> Path:
    """Save samples (model space: images in [-1, 1]) as a PNG at ``path``.

    ``samples`` is a tensor or a method's named outputs (``x`` plus what it shows); ``info``
    the data's :class:`~gankit.methods.base.DataInfo` (or its kind, ``"image"``/``"vector"``).
    Images become a grid, ``nrow`` per row (default square-ish); further image outputs of
    the same size (inputs, reconstructions, translations; grey beside colour, and smaller
    ones such as low-resolution inputs, enlarged) stand beside each sample: those that are
    fields of the data (the inputs a sample was made from) before it, the others
    (reconstructions) after it, each group in the order of ``samples`` (without a
    ``DataInfo``, all before it); a field that stacks several frames of x's channels (the past
    frames of a clip, ``Field.frames``) stands as its frames, oldest first. 1D data becomes a histogram and 2D
    (or the first two coordinates of higher-dimensional) data a scatter plot, coloured by label where the samples carry
    one (``y``), with ``real`` samples drawn beneath for comparison.
    """
    out: Dict[str, torch.Tensor] = samples if isinstance(samples, dict) else {"x": samples}
    kind = info if isinstance(info, str) else info.kind
    x = out["x"]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "image":
        from torchvision.utils import save_image

        fields = getattr(info, "fields", None)
        if fields is not None:     # stacked frames (a clip's past) stand as frames, oldest first
            out, fields = _frames_apart(out, x, fields)
        shown = [k for k, v in out.items() if _fits_beside(v, x) and k != "x"]
        if fields is None:       # no description: every further output before the sample
            shown = shown + ["x"]
        else:                    # the conditions (fields of the data: inputs) first, the sample, what it makes
            shown = [k for k in shown if k in fields] + ["x"] + [k for k in shown if k not in fields]
        per_row = nrow or max(1, int(math.ceil(math.sqrt(len(x)))))
        tiles = torch.stack([_beside(out[k].float(), x) for k in shown], 1).flatten(0, 1)   # side by side per sample
        save_image(tiles.add(1).div(2).clamp(0, 1), path, nrow=per_row * len(shown), padding=2)
        return path
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    x = x.float().cpu()
    if x.shape[1] == 1:
        data = [v[:, 0].numpy() for v in (real, x) if v is not None]
        lo = min(d.min() for d in data)
        hi = max(d.max() for d in data)
        bins = torch.linspace(float(lo), float(hi), 60).numpy()
        if real is not None:
            ax.hist(real[:, 0].numpy(), bins=bins, density=True, alpha=0.5, color="0.4", label="data")
        ax.hist(x[:, 0].numpy(), bins=bins, density=True, alpha=0.6, color="tab:red", label="generated")
    else:
        if real is not None:
            ax.scatter(real[:, 0], real[:, 1], s=2, c="0.6", alpha=0.5, label="data")
        y = out.get("y")
        if y is not None and y.dim() == 1 and not y.is_floating_point():
            ax.scatter(x[:, 0], x[:, 1], s=2, c=y.numpy() % 10, cmap="tab10", vmin=0, vmax=9, alpha=0.7,
                       label="generated (colour: condition)")
        else:
            ax.scatter(x[:, 0], x[:, 1], s=2, c="tab:red", alpha=0.6, label="generated")
        ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="upper right", markerscale=4)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)
