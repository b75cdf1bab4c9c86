"""Metrics of next-frame prediction (method ``video``): is a predicted frame a blend of the
possible futures or one of them?

Every function takes float frames in [0, 1] (ink bright on a dark ground, as
``moving_fashion``'s garments) and returns one float64 value per frame (or clip).

* :func:`last_centre`: the column of the centre of mass of the newest past frame, the place
  the moving thing was last seen;
* :func:`left_share`: the share of a frame's mass that lies left of a column (a pixel that
  the column cuts counts in proportion: pixel j spans [j - 1/2, j + 1/2)); 1/2 for an empty
  frame. A garment that moved left has most of its mass there, one that moved right little;
  the average of the two futures has half of it on each side;
* :func:`choices`: -1 (left), +1 (right) or 0 (neither) for each frame: a frame *chooses* a
  side when at least ``threshold`` of its mass lies there;
* :func:`laplacian_variance`: the variance of the 4-neighbour Laplacian over a frame's inner
  pixels, a second measure of fine detail beside :func:`~gankit.metrics.paired.gradient_energy`
  (a blur of two half-bright garments has less of both than one garment);
* :func:`rollout_error`: the mean absolute error of each predicted frame of a rollout against
  the true one, per step.

The metric ``next_frame`` applies them to a run's predictions for the held-out clips (the
run's ``input`` outputs and the true next frames, :mod:`gankit.metrics.evaluate`):

``next_left`` / ``next_right`` / ``next_neither``: the shares of predictions that choose the
left side, the right side, neither (at ``threshold``, default 0.75); ``next_frame`` itself: the
mean share of a prediction's mass on its heavier side (1/2: a symmetric blend, 1: all on one
side) beside ``next_side_mass_real``, the same of the true frames; ``next_agree``: the share
of choosing predictions that chose the true frame's side (1/2 is all a predictor can reach
where the past does not tell); ``next_sharpness`` and ``next_laplacian``: the predictions'
gradient energy and Laplacian variance over the true frames' (1: as sharp as real frames,
below 1: blur); ``next_l1`` and ``next_mse``: the error to the true next frame.
"""
from __future__ import annotations

from typing import Dict

import numpy as np
import torch

from ..errors import ConfigError
from ..registries import METRICS
from .evaluate import EvalSet
from .paired import gradient_energy

__all__ = ["last_centre", "left_share", "choices", "laplacian_variance", "rollout_error", "next_frame_report"]


def _frames(x: torch.Tensor, what: str) -> torch.Tensor:
    if x.dim() != 4:
        raise ValueError(f"expected {what} (N, C, H, W), got shape {tuple(x.shape)}")
    return x.double()


def last_centre(past: torch.Tensor, channels: int = 1) -> np.ndarray:
    """The column (pixel units, 0 = the first column's centre) of the centre of mass of the
    newest past frame (the last ``channels`` channels of ``past``); the middle for an empty one."""
    past = _frames(past, "past frames")
    last = past[:, -channels:].sum(1)                    # (N, H, W)
    profile = last.sum(1)                                # mass per column (N, W)
    cols = torch.arange(profile.shape[1], dtype=torch.float64)
    total = profile.sum(1)
    middle = (profile.shape[1] - 1) / 2
    centre = torch.where(total > 0, (profile * cols).sum(1) / total.clamp_min(1e-300), torch.full_like(total, middle))
    return centre.numpy()


def left_share(frames: torch.Tensor, column) -> np.ndarray:
    """The share of each frame's mass left of ``column`` (one per frame, or one for all)."""
    frames = _frames(frames, "frames")
    profile = frames.sum((1, 2))                         # (N, W)
    cols = torch.arange(profile.shape[1], dtype=torch.float64)
    c = torch.as_tensor(column, dtype=torch.float64).reshape(-1, 1)
    left_part = (c - cols + 0.5).clamp(0.0, 1.0)         # the part of pixel j left of the column
    left = (profile * left_part).sum(1)
    total = profile.sum(1)
    return torch.where(total > 0, left / total.clamp_min(1e-300), torch.full_like(total, 0.5)).numpy()


def choices(share: np.ndarray, threshold: float = 0.75) -> np.ndarray:
    """-1 where at least ``threshold`` of the mass lies left, +1 where it lies right, else 0."""
    if not 0.5 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0.5, 1], got {threshold}")
    share = np.asarray(share, dtype=np.float64)
    return np.where(share >= threshold, -1, np.where(share <= 1.0 - threshold, 1, 0))


def laplacian_variance(x: torch.Tensor) -> np.ndarray:
    """The variance of the 4-neighbour Laplacian over the inner pixels of each frame (all channels)."""
    x = _frames(x, "frames")
    if min(x.shape[-2:]) < 3:
        raise ValueError(f"the Laplacian needs frames of at least 3x3 pixels, got {tuple(x.shape[-2:])}")
    lap = (x[..., :-2, 1:-1] + x[..., 2:, 1:-1] + x[..., 1:-1, :-2] + x[..., 1:-1, 2:] - 4 * x[..., 1:-1, 1:-1])
    return lap.flatten(1).var(1, unbiased=False).numpy()


def rollout_error(predicted: torch.Tensor, true: torch.Tensor, channels: int = 1) -> np.ndarray:
    """Mean absolute error of each step of rollouts (N, T * channels, H, W) against the true
    frames, averaged over the clips: one value per step (T,)."""
    a, b = _frames(predicted, "predicted frames"), _frames(true, "true frames")
    if a.shape != b.shape:
        raise ValueError(f"predicted frames of shape {tuple(a.shape)} and true frames of shape {tuple(b.shape)} differ")
    if a.shape[1] % channels:
        raise ValueError(f"{a.shape[1]} channels are not whole frames of {channels} channel(s)")
    err = (a - b).abs().reshape(a.shape[0], a.shape[1] // channels, -1).mean(2)
    return err.mean(0).numpy()


def next_frame_report(predicted: torch.Tensor, true: torch.Tensor, past: torch.Tensor,
                      threshold: float = 0.75) -> Dict[str, float]:
    """The ``next_frame`` numbers (see the module) of predictions for clips with past frames
    ``past`` whose true next frames are ``true``."""
    a, b = _frames(predicted, "predicted frames"), _frames(true, "true frames")
    if a.shape != b.shape:
        raise ValueError(f"predicted frames of shape {tuple(a.shape)} and true frames of shape {tuple(b.shape)} differ")
    centre = last_centre(past, a.shape[1])
    share, share_real = left_share(a, centre), left_share(b, centre)
    chose, truth = choices(share, threshold), np.where(share_real >= 0.5, -1, 1)
    decided = chose != 0
    ratio = lambda f: float(np.mean(f(a)) / max(float(np.mean(f(b))), 1e-12))   # noqa: E731
    return {"next_left": float(np.mean(chose == -1)), "next_right": float(np.mean(chose == 1)),
            "next_neither": float(np.mean(~decided)),
            "next_frame": float(np.mean(np.maximum(share, 1 - share))),
            "next_side_mass_real": float(np.mean(np.maximum(share_real, 1 - share_real))),
            "next_agree": float(np.mean(chose[decided] == truth[decided])) if decided.any() else 0.5,
            "next_sharpness": ratio(gradient_energy), "next_laplacian": ratio(laplacian_variance),
            "next_l1": float((a - b).abs().flatten(1).mean(1).mean()),
            "next_mse": float((a - b).pow(2).flatten(1).mean(1).mean())}


@METRICS.register("next_frame")
def _next_frame(s: EvalSet, /, threshold: float = 0.75) -> Dict[str, float]:
    """Next-frame prediction (method video on moving_fashion): the shares of predictions that
    put at least `threshold` of their mass left / right of the garment's last place or neither,
    the mean mass on the heavier side (0.5: a blend) against the true frames', sharpness
    (gradient energy, Laplacian variance) over the true frames' and the error to them."""
    if s.fake_targets is None or "input" not in s.outputs_local:
        raise ConfigError("next_frame compares predicted next frames with the true ones: evaluate a run of method "
                          "video (which predicts the held-out clips' next frames from their past frames)")
    return next_frame_report(s.fake, s.fake_targets, s.output("input"), threshold)
