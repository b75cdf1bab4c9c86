"""Mode collapse on 2-D mixtures: every objective and remedy on ring-8 and grid-25.

Data (PacGAN protocol): ring8, 8 Gaussians evenly spaced on the unit circle with std 0.01;
grid25, 25 Gaussians on {-4, -2, 0, 2, 4}^2 with std 0.05; 100,000 training samples.
Metric (VEEGAN / PacGAN): 2,500 samples from the trained generator; a sample is high
quality when its distance to the nearest mode, in units of that mode's standard deviation,
is under 3; a mode is captured when it is the nearest mode of at least one high-quality
sample; reverse KL is KL(histogram of high-quality samples over the modes || uniform).
Reported: mean and standard deviation over seeds 0 .. seeds-1 of each number.

Training budget (NOT PacGAN's 400 epochs of 100,000 samples with 4 x 400 batch-norm
generators and maxout discriminators, which would take days on 2 CPU cores): gankit's MLPs
(3 hidden layers of 256; 2-d noise, as in PacGAN), batch 256, ``--steps`` generator steps, Adam(1e-3,
beta1 0) decayed linearly to 0, samples drawn from a moving average of the generator
(decay 0.999). Every setting gets the same budget in generator steps; the ones that do more
work per step (d_steps, unrolling) say so in the table. The ``*_pacgan_opt`` settings
train with PacGAN's optimiser and batch instead (Adam(1e-4, beta1 0.8), batch 100, constant
learning rate, no moving average): under it the vanilla GAN drops modes as PacGAN reports.

    gankit experiment modes --data ring8 --seeds 5 --steps 5000 --out DIR
    gankit experiment modes --data grid25 --settings gan,pacgan2 --seeds 5 --out DIR
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..errors import ConfigError
from ..registry import closest
from ..viz.plots import pyplot, save_figure
from . import overlay_config, write_json

__all__ = ["SETTINGS", "PUBLISHED", "run", "one_run", "run_settings", "summarise", "table", "main", "NAME"]

NAME = "modes"

_PACGAN_OPT = {"optim": {"lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.8, "schedule": "constant"},
               "train": {"batch_size": 100, "ema_decay": 0.0}}

#: setting -> (what it is, config overlay over the shared protocol)
SETTINGS: Dict[str, tuple] = {
    "gan": ("GAN, non-saturating", {}),
    "minimax": ("GAN, minimax", {"method": {"objective": "minimax"}}),
    "lsgan": ("LSGAN (least squares)", {"method": {"objective": "least_squares"}}),
    "hinge": ("hinge loss", {"method": {"objective": "hinge"}}),
    "wgan_gp": ("WGAN-GP (5 critic steps)", {"method": {"objective": "wasserstein", "penalty": "gradient",
                                                         "d_steps": 5},
                                              "optim": {"beta2": 0.9}}),
    # R1 (Mescheder et al. 2018): a zero-centred gradient penalty on real samples, 0.5 * 0.1 * |grad D|^2
    "gan_r1": ("GAN + R1 penalty (weight 0.1)", {"method": {"penalty": "r1", "penalty_weight": 0.1}}),
    "sngan": ("spectral norm + hinge", {"method": {"objective": "hinge", "spectral_norm": True}}),
    "fgan_kl": ("f-GAN, KL", {"method": {"objective": "fgan_kl"}}),
    "pacgan2": ("PacGAN2", {"method": {"pack": 2}}),
    "pacgan4": ("PacGAN4", {"method": {"pack": 4}}),
    "minibatch": ("minibatch discrimination", {"discriminator": {"minibatch_kernels": 8}}),
    "feature_matching": ("feature matching", {"method": {"generator_loss": "feature_matching"}}),
    "unrolled5": ("unrolled GAN (5 steps)", {"method": {"unroll": 5}}),
    "ebgan": ("EBGAN", {"method": {"name": "ebgan"}, "discriminator": {"name": "autoencoder"}}),
    "loss_sensitive": ("loss-sensitive GAN", {"method": {"name": "loss_sensitive"}}),
    # PacGAN's optimiser and batch instead of gankit's protocol: Adam(1e-4, beta1 0.8), batch
    # 100, constant learning rate, samples from the generator itself (no moving average)
    "gan_pacgan_opt": ("GAN, PacGAN's optimiser (Adam 1e-4, beta1 0.8, batch 100, no averaging)",
                       _PACGAN_OPT),
    "pacgan2_pacgan_opt": ("PacGAN2, PacGAN's optimiser", {**_PACGAN_OPT, "method": {"pack": 2}}),
    "pacgan4_pacgan_opt": ("PacGAN4, PacGAN's optimiser", {**_PACGAN_OPT, "method": {"pack": 4}}),
}

#: published rows (BENCHMARKS.md): (source, method) -> {data: (modes, high quality %, reverse KL or None)}
PUBLISHED = [
    ("VEEGAN Table 1", "GAN", {"ring8": (1, 99.3, None), "grid25": (3.3, 0.5, None)}),
    ("VEEGAN Table 1", "ALI (BiGAN)", {"ring8": (2.8, 0.13, None), "grid25": (15.8, 1.6, None)}),
    ("VEEGAN Table 1", "Unrolled GAN (5 steps)", {"ring8": (7.6, 35.6, None), "grid25": (23.6, 16, None)}),
    ("VEEGAN Table 1", "VEEGAN", {"ring8": (8, 52.9, None), "grid25": (24.6, 40, None)}),
    ("PacGAN Table 1", "GAN", {"ring8": (6.3, 98.2, 0.45), "grid25": (17.3, 94.8, 0.70)}),
    ("PacGAN Table 1", "ALI", {"ring8": (6.6, 97.6, None), "grid25": (24.1, 95.7, None)}),
    ("PacGAN Table 1", "PacGAN2", {"ring8": (7.9, 95.6, 0.07), "grid25": (23.8, 91.3, None)}),
    ("PacGAN Table 1", "PacGAN4", {"ring8": (7.8, 95.9, None), "grid25": (24.8, 93.6, 0.04)}),
]


def config_for(data: str, setting: str, seed: int, steps: int, out: str) -> dict:
    """The full training config of one (setting, seed) run."""
    base = {
        "method": {"name": "gan"}, "data": {"name": data},
        "generator": {"name": "mlp", "z_dim": 2, "hidden": 256, "layers": 3},
        "discriminator": {"name": "mlp", "hidden": 256, "layers": 3},
        "train": {"steps": steps, "batch_size": 256, "seed": seed, "ema_decay": 0.999, "log_every": 500,
                  "sample_every": 0, "checkpoint_every": 0, "progress": "none"},
        "optim": {"lr_g": 1e-3, "lr_d": 1e-3, "beta1": 0.0, "schedule": "linear"},
        "runtime": {"precision": "fp32"},
        "out": out,
    }
    return overlay_config(base, SETTINGS[setting][1])


def one_run(data: str, setting: str, seed: int, steps: int, out: str, threads: int = 0) -> Dict[str, object]:
    """Train one setting with one seed; returns its mode statistics and 2,500 samples."""
    import gankit
    from ..metrics import toy_mode_stats

    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    run = gankit.train(config_for(data, setting, seed, steps, out))
    x = run.sample(2500, seed=10_000 + seed)
    stats = toy_mode_stats(x, run.data.modes, run.data.mode_stds)
    return {"setting": setting, "seed": seed, "modes": float(stats["modes_captured"]),
            "high_quality": float(stats["high_quality"]), "reverse_kl": float(stats["reverse_kl"]),
            "seconds": round(time.perf_counter() - t0, 1), "samples": x.numpy().tolist()}


def run(data: str = "ring8", settings: Sequence[str] = ("gan", "pacgan2"), seeds: int = 5, steps: int = 5000,
        out: Optional[str] = None, workers: int = 1) -> Dict[str, object]:
    t0 = time.perf_counter()
    runs = run_settings(one_run, (data,), settings, SETTINGS, seeds, steps, workers)
    rows = summarise(runs, settings, SETTINGS, ("modes", "high_quality", "reverse_kl"))
    samples = {s: np.asarray(next(r for r in runs if r["setting"] == s)["samples"]) for s in settings}
    res = {"data": data, "steps": steps, "seeds": seeds, "rows": rows,
           "published": [{"source": src, "method": m, "modes": v[data][0], "high_quality_pct": v[data][1],
                          "reverse_kl": v[data][2]} for src, m, v in PUBLISHED],
           "seconds": round(time.perf_counter() - t0, 1)}
    if out is not None:
        _figure(data, samples, rows, write_json(out, f"{NAME}_{data}", res) / f"{NAME}_{data}.png")
    return res


def summarise(runs: List[dict], settings: Sequence[str], described: Dict[str, tuple],
              keys: Sequence[str]) -> Dict[str, dict]:
    """Per setting: its description, [mean, std] over seeds of each key, and the runs' numbers."""
    rows = {}
    for s in settings:
        mine = [r for r in runs if r["setting"] == s]
        rows[s] = {"what": described[s][0]}
        for key in keys:
            vals = np.array([r[key] for r in mine], dtype=np.float64)
            rows[s][key] = [float(np.nanmean(vals)), float(np.nanstd(vals))]
        rows[s]["runs"] = [{k: r[k] for k in ("seed", *keys, "seconds")} for r in mine]
    return rows


def run_settings(fn, lead: tuple, settings: Sequence[str], table: Dict[str, tuple], seeds: int, steps: int,
                 workers: int) -> List[dict]:
    """``fn(*lead, setting, seed, steps, out_dir, threads)`` for every setting and seed (seeds
    0 .. seeds-1), in ``workers`` spawned processes of one thread each when more than one;
    run directories live in a temporary folder."""
    unknown = [s for s in settings if s not in table]
    if unknown:
        raise ConfigError(f"unknown setting '{unknown[0]}'{closest(unknown[0], table)}; "
                          f"available: {', '.join(table)}")
    if seeds < 1 or steps < 1 or workers < 1:
        raise ConfigError("--seeds, --steps and --workers must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        threads = 1 if workers > 1 else 0
        jobs = [(*lead, s, seed, steps, os.path.join(tmp, f"{s}-{seed}"), threads)
                for s in settings for seed in range(seeds)]
        if workers > 1:
            with mp.get_context("spawn").Pool(workers) as pool:
                return pool.starmap(fn, jobs, chunksize=1)
        return [fn(*j) for j in jobs]


def table(res: Dict[str, object]) -> str:
    """The result as a Markdown table, published rows below ours."""
    data, steps, seeds = res["data"], res["steps"], res["seeds"]
    lines = [f"| setting ({data}, {steps} steps, {seeds} seeds) | modes | high quality % | reverse KL |",
             "|---|---|---|---|"]
    for r in res["rows"].values():
        m, hq, kl = r["modes"], r["high_quality"], r["reverse_kl"]
        lines.append(f"| gankit: {r['what']} | {m[0]:.2f} ± {m[1]:.2f} | {100 * hq[0]:.1f} ± {100 * hq[1]:.1f} "
                     f"| {kl[0]:.3f} ± {kl[1]:.3f} |")
    for p in res["published"]:
        kl = "" if p["reverse_kl"] is None else f"{p['reverse_kl']:.2f}"
        lines.append(f"| {p['source']}: {p['method']} | {p['modes']} | {p['high_quality_pct']} | {kl} |")
    return "\n".join(lines)


def _figure(data: str, samples: Dict[str, np.ndarray], rows, path) -> Path:
    from ..data import toy

    plt = pyplot()
    real = getattr(toy, data)(n_samples=2500, seed=0)
    n = len(samples) + 1
    cols = min(n, 5)
    rws = (n + cols - 1) // cols
    fig, axes = plt.subplots(rws, cols, figsize=(3 * cols, 3 * rws), squeeze=False)
    lim = 1.4 if data == "ring8" else 5.5
    panels = [("data", real.x.numpy(), None)] + [(s, x, rows[s]) for s, x in samples.items()]
    for ax, (name, x, r) in zip(axes.flat, panels):
        ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.4, c="tab:green" if r is None else "tab:blue")
        ax.scatter(real.modes[:, 0], real.modes[:, 1], s=12, c="k", marker="x")
        title = name if r is None else (f"{name}: {r['runs'][0]['modes']:.0f} modes, "
                                        f"{100 * r['runs'][0]['high_quality']:.0f}% HQ")
        ax.set_title(title, fontsize=8)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"{data}: 2,500 samples of seed 0 per setting (x: the modes)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="gankit experiment modes", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help=f"folder for {NAME}_DATA.json and {NAME}_DATA.png")
    p.add_argument("--data", default="ring8", choices=["ring8", "grid25"])
    p.add_argument("--settings", default="gan,pacgan2",
                   help=f"comma-separated, or 'all' ({', '.join(SETTINGS)})")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=5000, help="generator steps per run")
    p.add_argument("--workers", type=int, default=1, help="runs in parallel (each on one thread)")
    a = p.parse_args(argv)
    settings = list(SETTINGS) if a.settings == "all" else [s.strip() for s in a.settings.split(",") if s.strip()]
    res = run(a.data, settings, a.seeds, a.steps, a.out, a.workers)
    print(table(res))
    print(f"wrote {a.out}/{NAME}_{a.data}.json and .png ({res['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
