"""Stacked data with 1,000 modes (VEEGAN / PacGAN's stacked MNIST, here on Fashion-MNIST).

Each image's three channels are three independently drawn one-channel images, so its mode
is the triple of their classes: 10 x 10 x 10 = 1,000 equally likely modes. A generator is
scored by how many distinct triples its samples cover (``gankit.metrics.stacked_modes``).
"""
from __future__ import annotations

from typing import Literal, Optional

import torch

from ..errors import ConfigError
from ..registries import DATASETS
from .base import Dataset
from .images import fashion_mnist, mnist

__all__ = ["stacked"]


@DATASETS.register("stacked")
def stacked(source: Literal["fashion_mnist", "mnist"] = "fashion_mnist", root: Optional[str] = None,
            n_samples: int = 100_000, seed: int = 0, split: Literal["train", "test"] = "train",
            image_size: int = 28) -> Dataset:
    """Three independent images of ``source`` as the channels of one; label = class triple (0..999)."""
    from ..metrics.modes import stack_images

    if n_samples < 1:
        raise ConfigError(f"data.n_samples must be positive, got {n_samples}")
    base = (fashion_mnist if source == "fashion_mnist" else mnist)(root=root, split=split, image_size=image_size)
    rng_seed = 2 * seed + (1 if split == "test" else 0)
    x, idx = stack_images(base.x, rng=rng_seed, n=n_samples, return_indices=True)
    labels = base.y[torch.from_numpy(idx)]                     # (n, 3) classes of the channels
    y = labels[:, 0] * 100 + labels[:, 1] * 10 + labels[:, 2]
    return Dataset(x=x.contiguous(), kind="image", name=f"stacked_{source}", y=y,
                   classes=[f"{a}{b}{c}" for a in range(10) for b in range(10) for c in range(10)])
