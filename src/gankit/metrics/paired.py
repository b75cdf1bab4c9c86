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

Completion (a masked region filled, method ``inpaint``) is judged inside the region only;
these take a mask (N, 1, H, W), true (or 1) inside:

* :func:`masked_l1_error`: mean absolute difference over the masked pixels and channels;
* :func:`masked_psnr`: PSNR of the mean squared difference over the masked pixels;
* :func:`mean_fill`: the trivial completion, each masked pixel given the mean of its
  picture's known pixels (per channel); the baseline a learnt completion must beat. The
  metrics ``masked_l1`` and ``masked_psnr`` apply them to a completion run's outputs for
  the held-out pictures and masks.

The metrics ``l1``, ``psnr``, ``ssim`` and ``sharpness`` (:mod:`gankit.metrics.evaluate`)
apply them to the outputs for a run's held-out inputs and their targets; the metric
``bicubic`` applies them to :func:`bicubic_upsample` of the same (low-resolution) inputs,
the baseline of super-resolution.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


__all__ = ["l1_error", "psnr", "ssim", "gradient_energy", "bicubic_upsample", "PSNR_CAP", "masked_l1_error",
           "masked_psnr", "mean_fill"]

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
    """The normalised 1-D Gaussian; SSIM's 2-D window is its outer product with itself."""
    d = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(d / sigma) ** 2 / 2)
    return g / g.sum()


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5, k1: float = 0.01,
         k2: float = 0.03) -> np.ndarray:
    a, b = _pair(a, b)
    n, c, h, w = a.shape
    pad = window // 2
    if min(h, w) <= pad:
        raise ValueError(f"SSIM's {window}x{window} window needs images larger than {pad} pixels, got {h}x{w}")
    g = _gaussian_window(window, sigma)
    rows, cols = g.view(1, 1, window, 1).expand(c, 1, window, 1), g.view(1, 1, 1, window).expand(c, 1, 1, window)
    c1, c2 = k1 ** 2, k2 ** 2
    out = []
    # the window is separable: two 1-D passes; chunks keep each pass's unfolded input near 256 MB
    chunk = max(1, min(_CHUNK, 2 ** 25 // (5 * window * c * (h + 2 * pad) * (w + 2 * pad))))
    for start in range(0, n, chunk):
        x, y = a[start:start + chunk], b[start:start + chunk]
        stack = torch.cat([x, y, x * x, y * y, x * y])
        stack = F.pad(stack, (pad, pad, pad, pad), mode="reflect")
        stack = F.conv2d(F.conv2d(stack, rows, groups=c), cols, groups=c)
        mx, my, xx, yy, xy = stack.split(len(x))
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


def bicubic_upsample(x: torch.Tensor, size) -> torch.Tensor:
    """Images (N, C, h, w) in [0, 1] enlarged to ``size`` (H, W) by bicubic interpolation
    (half-pixel centres, as ``data.pairs=lowres*`` shrinks them), clamped to [0, 1], float64."""
    return F.interpolate(x.double(), size=tuple(size), mode="bicubic", align_corners=False).clamp_(0.0, 1.0)


def _masked(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor):
    a, b = _pair(a, b)
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != a.shape[0] or mask.shape[2:] != a.shape[2:]:
        raise ValueError(f"expected one mask (N, 1, H, W) per image of shape {tuple(a.shape)}, got "
                         f"{tuple(mask.shape)}")
    w = (mask > 0.5).double() if mask.is_floating_point() else (mask != 0).double()
    return a, b, w, (w.flatten(1).sum(1) * a.shape[1]).clamp_min(1.0)


def masked_l1_error(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Mean |a - b| over each image's masked pixels (all channels); 0 for an empty mask."""
    a, b, w, count = _masked(a, b, mask)
    return (((a - b).abs() * w).flatten(1).sum(1) / count).numpy()


def masked_psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """10 log10(1 / MSE) with the MSE over each image's masked pixels (capped at :data:`PSNR_CAP`)."""
    a, b, w, count = _masked(a, b, mask)
    mse = (((a - b).pow(2) * w).flatten(1).sum(1) / count).clamp_min(10 ** (-PSNR_CAP / 10))
    return (-10.0 * torch.log10(mse)).numpy()


def mean_fill(picture: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``picture`` (N, C, H, W) with every masked pixel set to the mean of the picture's known
    pixels, per channel (0.5 where nothing is known)."""
    x = picture.double()
    _, _, w, _ = _masked(x, x, mask)
    known = 1.0 - w
    n = known.flatten(1).sum((1,)).view(-1, 1, 1, 1)
    mean = torch.where(n > 0, (x * known).sum((2, 3), keepdim=True) / n.clamp_min(1.0), torch.full_like(n, 0.5))
    return torch.where(w > 0, mean.expand_as(x), x).to(picture.dtype)
