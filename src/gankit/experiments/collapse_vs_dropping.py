"""Mode collapse vs mode dropping on ring-8, and the metrics that tell them apart.

The lecture names two failures of diversity: *mode collapse* (the generated samples pile
up on a few points: they look alike) and *mode dropping* (part of the distribution is never
produced, while what is produced is varied and looks fine). Planted generators on ring-8
(8 Gaussians on the unit circle, std 0.01) make each one exactly:

* ``healthy``: the data distribution itself;
* ``collapse``: every sample on 2 of the 8 modes, each drawn with a tenth of the mode's
  spread (std 0.001): the samples pile onto two points;
* ``dropping``: 6 of the 8 modes, evenly, each with the data's own spread;
* and, unless ``--gan-steps 0``, a GAN trained with PacGAN's optimiser (the ``modes``
  experiment's ``gan_pacgan_opt`` setting, which drops modes on ring-8) and one trained with
  gankit's protocol (``gan``).

Metrics, each on 2,500 samples against 2,500 held-out data points: the per-mode histogram
of high-quality samples (``metrics.modes.toy_mode_stats``) with its largest share, modes
captured and reverse KL(histogram || uniform); precision and recall (k = 3) and density and
coverage (k = 5) on the raw 2-D points (``metrics.prdc``); and the birthday-paradox support
estimate (``metrics.birthday``, threshold calibrated on real batches of the largest size).
What the lecture predicts: precision stays high for both failures; recall and coverage fall
with dropping (about 6/8) and further with collapse; the histogram's largest share and the
reverse KL rise most with collapse (log 4 = 1.39 against log 8/6 = 0.29); density rises
above 1 with collapse (samples piled where the data is densest); the birthday estimate of the
support falls by orders of magnitude with collapse and only by about 6/8 with dropping.

    gankit experiment collapse-vs-dropping --out DIR
    gankit experiment collapse-vs-dropping --gan-steps 0 --out DIR      # planted generators only
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from ..errors import ConfigError
from ..viz.plots import pyplot, save_figure
from . import write_json

__all__ = ["planted", "score", "run", "table", "main", "NAME", "BATCH_SIZES"]

NAME = "collapse_vs_dropping"
N_SAMPLES = 2500
#: batch sizes of the birthday test (2-D points: collisions of real batches are rare below ~100)
BATCH_SIZES = (4, 8, 16, 32, 64, 128, 256)


def _ring(seed: int, split: str = "train", n: int = N_SAMPLES):
    from ..data.toy import ring8

    return ring8(n_samples=n, seed=seed, split=split)


def planted(kind: str, n: int = N_SAMPLES, seed: int = 0) -> np.ndarray:
    """``n`` samples (float64, (n, 2)) of a planted generator: healthy, collapse or dropping."""
    data = _ring(0)
    means, std = data.modes.double().numpy(), float(data.mode_stds[0, 0])
    rng = np.random.default_rng(seed)
    if kind == "healthy":
        modes, spread = np.arange(8), std
    elif kind == "collapse":
        modes, spread = np.array([0, 3]), std / 10
    elif kind == "dropping":
        modes, spread = np.arange(6), std
    else:
        raise ConfigError(f"unknown planted generator '{kind}'; choose healthy, collapse or dropping")
    pick = modes[rng.integers(0, len(modes), n)]
    return means[pick] + spread * rng.standard_normal((n, 2))


def score(x: np.ndarray, real: np.ndarray, seed: int = 0) -> Dict[str, object]:
    """Every metric of the module docstring for samples ``x`` against held-out ``real`` (both (N, 2))."""
    from ..metrics import birthday_test, density_coverage, precision_recall, toy_mode_stats

    data = _ring(0, n=8)
    stats = toy_mode_stats(x, data.modes, data.mode_stds)
    counts = np.asarray(stats["counts"], dtype=np.float64)
    pr = precision_recall(real, x, k=3)
    dc = density_coverage(real, x, k=5)
    bd = birthday_test(x, real, BATCH_SIZES, trials=200, seed=seed)
    return {"histogram": stats["counts"], "largest_share": float(counts.max() / max(counts.sum(), 1.0)),
            "modes": int(stats["modes_captured"]), "high_quality": float(stats["high_quality"]),
            "reverse_kl": float(stats["reverse_kl"]), "precision": pr.precision, "recall": pr.recall,
            "density": dc.density, "coverage": dc.coverage, "support": float(bd["support_estimate"]),
            "collision_prob": bd["collision_prob"]}


def _trained(setting: str, steps: int, seed: int) -> np.ndarray:
    from .modes import one_run

    with tempfile.TemporaryDirectory() as tmp:
        res = one_run("ring8", setting, seed, steps, str(Path(tmp) / setting))
    return np.asarray(res["samples"], dtype=np.float64)


def run(gan_steps: int = 3000, seed: int = 0, out: Optional[str] = None) -> Dict[str, object]:
    if gan_steps < 0:
        raise ConfigError(f"--gan-steps must be 0 (no trained GAN) or more, got {gan_steps}")
    t0 = time.perf_counter()
    real = _ring(seed, "test").x.double().numpy()
    samples = {k: planted(k, seed=seed + 1) for k in ("healthy", "collapse", "dropping")}
    if gan_steps:
        samples["gan_pacgan_opt"] = _trained("gan_pacgan_opt", gan_steps, seed)
        samples["gan"] = _trained("gan", gan_steps, seed)
    rows = {k: score(x, real, seed) for k, x in samples.items()}
    res = {"n_samples": N_SAMPLES, "gan_steps": gan_steps, "seed": seed, "batch_sizes": list(BATCH_SIZES),
           "rows": rows, "seconds": round(time.perf_counter() - t0, 1)}
    if out is not None:
        _figure(samples, rows, write_json(out, NAME, res) / f"{NAME}.png")
    return res


def table(res: Dict[str, object]) -> str:
    lines = ["| generator | histogram (8 modes) | largest share | reverse KL | precision | recall | density "
             "| coverage | birthday support |", "|---|---|---|---|---|---|---|---|---|"]
    for k, r in res["rows"].items():
        sup = "inf" if math.isinf(r["support"]) else f"{r['support']:.3g}"
        lines.append(f"| {k} | {' '.join(str(c) for c in r['histogram'])} | {r['largest_share']:.3f} "
                     f"| {r['reverse_kl']:.3f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['density']:.3f} "
                     f"| {r['coverage']:.3f} | {sup} |")
    return "\n".join(lines)


def _figure(samples: Dict[str, np.ndarray], rows, path) -> Path:
    plt = pyplot()
    n = len(samples)
    fig, axes = plt.subplots(2, n, figsize=(3 * n, 5.6), squeeze=False)
    modes = _ring(0, n=8).modes.numpy()
    for j, (k, x) in enumerate(samples.items()):
        ax = axes[0, j]
        ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.4)
        ax.scatter(modes[:, 0], modes[:, 1], s=12, c="k", marker="x")
        r = rows[k]
        ax.set_title(f"{k}\nP {r['precision']:.2f} R {r['recall']:.2f} C {r['coverage']:.2f}", fontsize=8)
        ax.set_xlim(-1.4, 1.4)
        ax.set_ylim(-1.4, 1.4)
        ax.set_aspect("equal")
        axes[1, j].bar(range(8), r["histogram"])
        axes[1, j].set_title(f"reverse KL {r['reverse_kl']:.2f}, support {r['support']:.3g}", fontsize=8)
        axes[1, j].set_xlabel("mode")
    fig.suptitle("ring-8: collapse (piled on 2 modes) vs dropping (6 of 8 modes)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="gankit experiment collapse-vs-dropping", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help=f"folder for {NAME}.json and {NAME}.png")
    p.add_argument("--gan-steps", type=int, default=3000,
                   help="generator steps of each trained GAN (0: planted generators only)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    res = run(a.gan_steps, a.seed, a.out)
    print(table(res))
    print(f"wrote {a.out}/{NAME}.json and .png ({res['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
