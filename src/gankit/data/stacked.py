"""Stacked data with 1,000 modes (VEEGAN / PacGAN's stacked MNIST, here on Fashion-MNIST).

Each image's three channels are three independently drawn one-channel images, so its mode
is the triple of their classes: 10 x 10 x 10 = 1,000 equally likely modes. A generator is
scored by how many distinct triples its samples cover (``gankit.metrics.stacked_modes``).
"""
from __future__ import annotations

from typing import Literal, Optional, Union

import numpy as np

import torch

from ..errors import ConfigError
from ..registries import DATASETS
from .base import Dataset
from .images import fashion_mnist, mnist

__all__ = ["stacked", "stack_images"]


@DATASETS.register("stacked")
def stacked(source: Literal["fashion_mnist", "mnist"] = "fashion_mnist", root: Optional[str] = None,
            n_samples: int = 100_000, seed: int = 0, split: Literal["train", "test"] = "train",
            image_size: int = 28) -> Dataset:
    """Three independent images of ``source`` as the channels of one; label = class triple (0..999)."""
    if n_samples < 1:
        raise ConfigError(f"data.n_samples must be positive, got {n_samples}")
    base = (fashion_mnist if source == "fashion_mnist" else mnist)(root=root, split=split, image_size=image_size)
    rng_seed = 2 * seed + (1 if split == "test" else 0)
    x, idx = stack_images(base.x, rng=rng_seed, n=n_samples, return_indices=True)
    labels = base.y[torch.from_numpy(idx)]                     # (n, 3) classes of the channels
    y = labels[:, 0] * 100 + labels[:, 1] * 10 + labels[:, 2]
    return Dataset(x=x.contiguous(), kind="image", name=f"stacked_{source}", y=y,
                   classes=[f"{a}{b}{c}" for a in range(10) for b in range(10) for c in range(10)])


def stack_images(images, rng: Union[np.random.Generator, int, None] = None, n: Optional[int] = None,
                 channels: int = 3, return_indices: bool = False):
    """Stacked data: each output image's channels are ``channels`` independently drawn images.

    ``images`` (N, 1, H, W) (numpy or torch, any dtype: the output has the same type and
    dtype); ``rng`` a numpy Generator or a seed; ``n`` outputs (default N).  Each channel
    index is drawn uniformly from 0..N-1 with replacement, independently of the others, so
    with 10 balanced classes the class triples are uniform over 1,000 modes.  Returns (n, channels,
    H, W), and with ``return_indices=True`` also the (n, channels) indices used.
    """
    shape = tuple(images.shape) if hasattr(images, "shape") else np.shape(images)
    if len(shape) != 4 or shape[1] != 1:
        raise ValueError(f"images must be one-channel (N, 1, H, W), got shape {shape}")
    if shape[0] == 0:
        raise ValueError("images is empty: nothing to stack")
    for name, value in (("n", n), ("channels", channels)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    n = shape[0] if n is None else int(n)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    idx = gen.integers(0, shape[0], size=(n, channels))
    if type(images).__module__.startswith("torch"):
        import torch

        out = images[torch.from_numpy(idx.reshape(-1)).to(images.device)].reshape(n, channels, *shape[2:])
    else:
        arr = np.asarray(images)
        out = arr[idx.reshape(-1)].reshape(n, channels, *shape[2:])
    return (out, idx) if return_indices else out
