"""Loss curves from a run's ``metrics.jsonl``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

__all__ = ["read_metrics", "plot_losses", "save_figure", "pyplot"]


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, dpi: int = 100) -> Path:
    """Write a matplotlib figure as a PNG (creating the folder) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def read_metrics(path) -> List[Dict[str, float]]:
    rows = []
    path = Path(path)
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a crash: skip it
    return rows


def plot_losses(metrics_path, out_path) -> Path:
    plt = pyplot()

    rows = [r for r in read_metrics(metrics_path) if "step" in r]
    keys = sorted({k for r in rows for k in r
                   if k not in ("step", "time", "steps_per_s") and not k.startswith(("lr_", "eval_"))})
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for key in keys:
        pts = [(r["step"], r[key]) for r in rows if key in r]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=key)
    ax.set_xlabel("step")
    ax.set_title("training curves")
    if keys:
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out_path)
