"""What a run keeps at each sample step for its report, beside the sample picture.

For 2-D data the report animates the generator's samples over the data with the
discriminator's surface beneath, as the lectures draw it: at every sample step the trainer
writes ``samples/step_NNNNNNNN.npz`` holding the generated points (``x``, and their labels
``y`` where the method draws them), the real points they are drawn over (``real``) and, when
the method has a discriminator that judges points on their own, its score on a square grid
(``grid_x``, ``grid_y``, ``surface``: higher means judged more real). The file is written
through a temporary name and renamed, so a report never reads half of one.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch

__all__ = ["save_points", "load_points", "GRID"]

GRID = 48  # surface resolution per side


def _bounds(points: np.ndarray) -> tuple:
    lo, hi = points.min(0), points.max(0)
    pad = 0.15 * np.maximum(hi - lo, 1e-6)
    lo, hi = lo - pad, hi + pad
    centre, half = (lo + hi) / 2, float((hi - lo).max()) / 2   # a square, so the picture keeps its aspect
    return centre - half, centre + half


def save_points(method, samples: dict, real: torch.Tensor, path) -> Optional[Path]:
    """Write the 2-D snapshot of one sample step (see the module's docstring) at ``path``;
    returns None (and writes nothing) for data that is not 2-D."""
    x = samples["x"]
    if x.dim() != 2 or x.shape[1] != 2:
        return None
    real_np = real.detach().float().cpu().numpy()
    payload = {"x": x.detach().float().cpu().numpy(), "real": real_np}
    y = samples.get("y")
    if y is not None and y.dim() == 1:
        payload["y"] = y.detach().cpu().numpy()
    lo, hi = _bounds(np.concatenate([real_np, payload["x"]]))
    gx, gy = np.linspace(lo[0], hi[0], GRID), np.linspace(lo[1], hi[1], GRID)
    mesh = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2).astype(np.float32)
    device = next((p.device for m in method.modules.values() for p in m.parameters()), torch.device("cpu"))
    score = method.critic(torch.from_numpy(mesh).to(device))
    if score is not None:
        payload.update(grid_x=gx, grid_y=gy, surface=score.detach().double().cpu().numpy().reshape(GRID, GRID))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **payload)
    os.replace(tmp, path)
    return path


def load_points(path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}
