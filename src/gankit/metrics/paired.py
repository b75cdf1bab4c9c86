"""Metrics of outputs against their targets: image-to-image translation, super-resolution,
completion. Every function takes float images (N, C, H, W) in [0, 1] (``data_range`` 1)
and returns one float64 value per image.

* :func:`l1_error`: mean absolute difference;
* :func:`psnr`: peak signal-to-noise ratio 10 log10(1 / MSE) in dB (an exact copy is
  capped at :data:`PSNR_CAP`); averaged over images (the super-resolution papers' way);
* :func:`ssim`: the structural similarity of Wang et al. (2004) with an 11x11 Gaussian
  window (sigma 1.5), K1 = 0.01, K2 = 0.03, per channel, borders reflected so every pixel
  has its window (what torchmetrics computes), averaged over pixels and channels;
* :func:`gradient_energy`: the mean squared difference of neighbouring pixels (both
  directions): how much fine detail an image has. The lectures' point is that a regressor
  trained to the target averages the plausible outputs into a blur, whose gradient
  energy is lower than the data's: the metric ``sharpness`` is the ratio of the outputs' to
  the targets' (1 for as much detail as the data, below 1 for blur).

The metrics ``l1``, ``psnr``, ``ssim`` and ``sharpness`` (:mod:`gankit.metrics.evaluate`)
apply them to the outputs for a run's held-out inputs and their targets.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


__all__ = ["l1_error", "psnr", "ssim", "gradient_energy", "PSNR_CAP"]

#: PSNR of an exact copy (dB): 10 log10(1 / 1e-10)
PSNR_CAP = 100.0
_CHUNK = 512


def _pair(a: torch.Tensor, b: torch.Tensor):
    if a.shape != b.shape:
        raise ValueError(f"outputs of shape {tuple(a.shape)} and targets of shape {tuple(b.shape)} differ")
    if a.dim() != 4:
        raise ValueError(f"expected images (N, C, H, W), got shape {tuple(a.shape)}")
    return a.double(), b.double()


def l1_error(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    a, b = _pair(a, b)
    return (a - b).abs().flatten(1).mean(1).numpy()


def psnr(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    a, b = _pair(a, b)
    mse = (a - b).pow(2).flatten(1).mean(1).clamp_min(10 ** (-PSNR_CAP / 10))
    return (-10.0 * torch.log10(mse)).numpy()


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    d = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(d / sigma) ** 2 / 2)
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5, k1: float = 0.01,
         k2: float = 0.03) -> np.ndarray:
    a, b = _pair(a, b)
    n, c, h, w = a.shape
    pad = window // 2
    if min(h, w) <= pad:
        raise ValueError(f"SSIM's {window}x{window} window needs images larger than {pad} pixels, got {h}x{w}")
    kernel = _gaussian_window(window, sigma).expand(c, 1, window, window)
    c1, c2 = k1 ** 2, k2 ** 2
    out = []
    for start in range(0, n, _CHUNK):
        x, y = a[start:start + _CHUNK], b[start:start + _CHUNK]
        stack = torch.cat([x, y, x * x, y * y, x * y])
        stack = F.pad(stack, (pad, pad, pad, pad), mode="reflect")
        mx, my, xx, yy, xy = F.conv2d(stack, kernel, groups=c).split(len(x))
        vx, vy, cov = (xx - mx * mx).clamp_min(0), (yy - my * my).clamp_min(0), xy - mx * my
        s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        out.append(s.flatten(1).mean(1))
    return torch.cat(out).numpy() if out else np.zeros(0)


def gradient_energy(x: torch.Tensor) -> np.ndarray:
    """Mean squared difference of horizontally and vertically neighbouring pixels, per image."""
    x = x.double()
    dx = (x[..., :, 1:] - x[..., :, :-1]).pow(2).flatten(1)
    dy = (x[..., 1:, :] - x[..., :-1, :]).pow(2).flatten(1)
    return ((dx.sum(1) + dy.sum(1)) / (dx.shape[1] + dy.shape[1])).numpy()
