"""Sample pictures: an image grid for image data, a scatter plot or histogram for vectors."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import torch

from .plots import pyplot, save_figure

__all__ = ["save_samples"]


def save_samples(x: torch.Tensor, kind: str, path, real: Optional[torch.Tensor] = None,
                 title: str = "") -> Path:
    """Save samples ``x`` (model space: images in [-1, 1]) as a PNG at ``path``.

    Images become a square-ish grid; 1D data a histogram and 2D (or the first two
    coordinates of higher-dimensional) data a scatter plot, with ``real`` samples
    drawn beneath for comparison.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "image":
        from torchvision.utils import save_image

        save_image(x.float().add(1).div(2).clamp(0, 1), path, nrow=max(1, int(math.ceil(math.sqrt(len(x))))),
                   padding=2)
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
        ax.scatter(x[:, 0], x[:, 1], s=2, c="tab:red", alpha=0.6, label="generated")
        ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="upper right", markerscale=4)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)
