"""Toy 1D and 2D data generated in code, carrying their true density and modes.

The mixtures follow the mode-collapse protocols of VEEGAN and PacGAN:

* ``ring8``: 8 means evenly spaced on a circle of radius 1 (angles 2*pi*k/8), std 0.01;
* ``grid25``: means at {-4, -2, 0, 2, 4}^2, std 0.05;
* ``swissroll``: the WGAN-GP toy roll (noise 0.25, scaled down by 7.5), which has no modes;
* ``gaussian1d``: the one-dimensional data of Goodfellow et al.'s Figure 1;
* ``mixture``: any Gaussian mixture given in the config.

A data set is a fixed sample of ``n_samples`` points drawn with ``seed``; the held-out
``test`` split is drawn with a different stream of the same seed.
"""
from __future__ import annotations

import math
from typing import List, Literal, Optional

import torch

from ..errors import ConfigError
from ..registries import DATASETS
from .base import Dataset

__all__ = ["GaussianMixture", "gaussian1d", "ring8", "grid25", "swissroll", "mixture"]

Split = Literal["train", "test"]


class GaussianMixture:
    """A mixture of axis-aligned Gaussians: ``means`` (K, D), ``stds`` (K, D), ``weights`` (K,)."""

    def __init__(self, means, stds, weights=None):
        self.means = torch.as_tensor(means, dtype=torch.float64)
        if self.means.dim() == 1:
            self.means = self.means[:, None]
        k, d = self.means.shape
        stds = torch.as_tensor(stds, dtype=torch.float64)
        if stds.dim() == 0:
            stds = stds.expand(k, d)
        elif stds.dim() == 1 and stds.numel() == k:
            stds = stds[:, None].expand(k, d)
        self.stds = stds.clone()
        if self.stds.shape != (k, d) or (self.stds <= 0).any():
            raise ConfigError(f"mixture stds must be positive and broadcast to ({k}, {d}), got {tuple(stds.shape)}")
        w = torch.full((k,), 1.0 / k, dtype=torch.float64) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        if w.shape != (k,) or (w < 0).any() or w.sum() <= 0:
            raise ConfigError(f"mixture weights must be {k} non-negative numbers, got {weights!r}")
        self.weights = w / w.sum()

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.sample_with_modes(n, generator)[0]

    def sample_with_modes(self, n: int, generator: torch.Generator):
        """``n`` samples (N, D) float32 and the index of the component each came from (N,)."""
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.means.shape[1], generator=generator, dtype=torch.float64)
        return (self.means[comp] + noise * self.stds[comp]).float(), comp

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log density, float64, one value per row of ``x`` (N, D)."""
        x = torch.as_tensor(x, dtype=torch.float64)
        if x.dim() == 1:
            x = x[:, None]
        z = (x[:, None, :] - self.means[None]) / self.stds[None]
        log_comp = (-0.5 * z.pow(2) - torch.log(self.stds)[None] - 0.5 * math.log(2 * math.pi)).sum(-1)
        return torch.logsumexp(log_comp + torch.log(self.weights)[None], dim=1)

    def dataset(self, name: str, n_samples: int, seed: int, split: str) -> Dataset:
        x, comp = self.sample_with_modes(n_samples, _generator(seed, split))
        # the mode each sample came from is its label, so toy data can train conditional methods
        return Dataset(x=x, kind="vector", name=name, y=comp, classes=[f"mode {k}" for k in range(len(self.means))],
                       modes=self.means.float(), mode_stds=self.stds.float(),
                       mode_weights=self.weights.float(), log_prob=self.log_prob)


def _generator(seed: int, split: str) -> torch.Generator:
    return torch.Generator().manual_seed(2 * seed + (1 if split == "test" else 0))


def _check_n(n_samples: int) -> None:
    if n_samples < 1:
        raise ConfigError(f"data.n_samples must be positive, got {n_samples}")


@DATASETS.register("gaussian1d")
def gaussian1d(mean: float = 4.0, std: float = 0.5, n_samples: int = 100_000, seed: int = 0,
               split: Split = "train") -> Dataset:
    """A one-dimensional Gaussian (Goodfellow et al. 2014, Figure 1)."""
    _check_n(n_samples)
    if std <= 0:
        raise ConfigError(f"data.std must be positive, got {std}")
    return GaussianMixture([[mean]], [[std]]).dataset("gaussian1d", n_samples, seed, split)


@DATASETS.register("ring8")
def ring8(n_modes: int = 8, radius: float = 1.0, std: float = 0.01, n_samples: int = 100_000, seed: int = 0,
          split: Split = "train") -> Dataset:
    """Gaussians evenly spaced on a circle (PacGAN protocol: 8 modes, radius 1, std 0.01)."""
    _check_n(n_samples)
    angles = 2 * math.pi * torch.arange(n_modes, dtype=torch.float64) / n_modes
    means = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    return GaussianMixture(means, std).dataset("ring8", n_samples, seed, split)


@DATASETS.register("grid25")
def grid25(side: int = 5, spacing: float = 2.0, std: float = 0.05, n_samples: int = 100_000, seed: int = 0,
           split: Split = "train") -> Dataset:
    """Gaussians on a square grid (PacGAN protocol: means at {-4, -2, 0, 2, 4}^2, std 0.05)."""
    _check_n(n_samples)
    axis = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    means = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    return GaussianMixture(means, std).dataset("grid25", n_samples, seed, split)


@DATASETS.register("swissroll")
def swissroll(noise: float = 0.25, scale: float = 7.5, n_samples: int = 100_000, seed: int = 0,
              split: Split = "train") -> Dataset:
    """The 2D swiss roll of the WGAN-GP toy experiments (no modes, no closed-form density)."""
    _check_n(n_samples)
    g = _generator(seed, split)
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n_samples, generator=g, dtype=torch.float64))
    xy = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1)
    xy = xy + noise * torch.randn(n_samples, 2, generator=g, dtype=torch.float64)
    return Dataset(x=(xy / scale).float(), kind="vector", name="swissroll")


@DATASETS.register("mixture")
def mixture(means: List[List[float]] = ((0.0, 0.0),), stds: List[float] = (0.1,),
            weights: Optional[List[float]] = None, n_samples: int = 100_000, seed: int = 0,
            split: Split = "train") -> Dataset:
    """A custom Gaussian mixture: ``means`` (K x D), ``stds`` (one per mode or one for all), ``weights``."""
    _check_n(n_samples)
    means = [list(m) for m in means]
    if not means or len({len(m) for m in means}) != 1:
        raise ConfigError(f"data.means must be a non-empty list of equally long points, got {means!r}")
    stds = list(stds)
    if len(stds) not in (1, len(means)):
        raise ConfigError(f"data.stds must hold 1 or {len(means)} values, got {len(stds)}")
    std_t = torch.tensor(stds if len(stds) == len(means) else stds * len(means), dtype=torch.float64)
    return GaussianMixture(means, std_t, weights).dataset(
        "mixture", n_samples, seed, split)
