"""Mode collapse on 2D mixtures: modes captured, % high-quality samples and reverse KL.

Metric (VEEGAN / PacGAN protocol): 2,500 generated samples; a sample is high quality when
its per-axis normalised distance to the nearest mode is under 3 standard deviations; a
mode is captured when it is the nearest mode of at least one high-quality sample; reverse
KL is KL(histogram of high-quality samples over the modes || uniform). Data: ring8 (radius
1, std 0.01) and grid25 ({-4,...,4}^2, std 0.05), 100,000 training samples.

The training budget is NOT PacGAN's (4x400 generator with batch norm, maxout
discriminator, 400 epochs of batch 100 = 400,000 steps): this script trains gankit's MLP
networks for `--steps` steps of batch 256 on 2 CPU cores, so its rows compare settings
with each other at that budget, not with the published table.

    python benchmarks/modes.py --data ring8 --seeds 3 --steps 3000
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import time

import numpy as np
import torch

import gankit
from gankit.metrics import toy_mode_stats

SETTINGS = {
    "gan": ({}, {}),
    "pacgan2": ({"pack": 2}, {}),
    "pacgan4": ({"pack": 4}, {}),
    "minibatch": ({}, {"minibatch_kernels": 8}),
    "feature_matching": ({"generator_loss": "feature_matching"}, {}),
}


def one_run(data: str, setting: str, seed: int, steps: int, out: str) -> dict:
    method, disc = SETTINGS[setting]
    run = gankit.train({
        "method": {"name": "gan", **method}, "data": {"name": data},
        "generator": {"name": "mlp", "z_dim": 8, "hidden": 256, "layers": 3},
        "discriminator": {"name": "mlp", "hidden": 256, "layers": 3, **disc},
        "train": {"steps": steps, "batch_size": 256, "seed": seed, "log_every": 500, "sample_every": 0,
                  "checkpoint_every": 0, "progress": "none"},
        "optim": {"lr_g": 1e-3, "lr_d": 1e-3, "beta1": 0.0},
        "out": out})
    x = run.sample(2500, seed=seed)
    stats = toy_mode_stats(x, run.data.modes, run.data.mode_stds)
    return {"modes": float(stats["modes_captured"]), "high_quality": float(stats["high_quality"]),
            "reverse_kl": float(stats["reverse_kl"])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="ring8", choices=["ring8", "grid25"])
    p.add_argument("--settings", default=",".join(SETTINGS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    rows = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for setting in args.settings.split(","):
            runs = [one_run(args.data, setting, seed, args.steps, os.path.join(tmp, f"{setting}-{seed}"))
                    for seed in range(args.seeds)]
            rows[setting] = {k: (float(np.mean([r[k] for r in runs])), float(np.std([r[k] for r in runs])))
                             for k in runs[0]}
            rows[setting]["runs"] = runs
    print(f"date: {datetime.date.today()}  machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}; {time.perf_counter() - t0:.0f} s in all")
    print(f"command: python benchmarks/modes.py --data {args.data} --seeds {args.seeds} --steps {args.steps}")
    print(f"| setting ({args.data}, {args.steps} steps, {args.seeds} seeds) | modes | high quality % | reverse KL |")
    print("|---|---|---|---|")
    for setting, r in rows.items():
        m, hq, kl = r["modes"], r["high_quality"], r["reverse_kl"]
        print(f"| {setting} | {m[0]:.2f} ± {m[1]:.2f} | {100 * hq[0]:.1f} ± {100 * hq[1]:.1f} | "
              f"{kl[0]:.3f} ± {kl[1]:.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
