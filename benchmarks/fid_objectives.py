"""FID of each objective on Fashion-MNIST at the same compute budget, beside Lucic et al.'s ranking.

Protocol: the DCGAN networks of the default run on Fashion-MNIST 28x28, batch 64. Every
setting gets the same budget of floating-point work: ``--budget`` generator steps of the
non-saturating GAN, converted into steps of each setting by the FLOPs of one of its steps
(``gankit.bench.count_flops``: matrix products and convolutions, forward and backward), so
settings that take 5 critic steps per generator step (WGAN, WGAN-GP) get about a fifth of
the generator steps. A FLOP budget, unlike a wall-clock one, does not depend on what else
runs on the machine; the wall-clock time of each run is reported beside it. FID is computed
between 10,000 samples of the final generator and the 10,000 Fashion-MNIST test images with
gankit's Fashion-MNIST classifier features (NOT Inception features, so the numbers are not
comparable with Lucic et al.'s; the table ranks the objectives).

Each setting uses its paper's optimiser: GAN/LSGAN/hinge Adam(2e-4, 0.5); WGAN RMSprop
(5e-5), clipping 0.01, 5 critic steps; WGAN-GP Adam(1e-4, 0, 0.9), penalty 10, 5 critic
steps, layer norm in the critic; SNGAN hinge + spectral norm, Adam(2e-4, 0.5).

    python benchmarks/fid_objectives.py --budget 1000 --json fid_objectives.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import time

import torch

import gankit
from gankit.bench import count_flops, gankit_case
from gankit.metrics.evaluate import evaluate_run

SETTINGS = {
    "mm": ("MM GAN (minimax)", {"method": {"objective": "minimax"}}),
    "ns": ("NS GAN (non-saturating)", {}),
    "lsgan": ("LSGAN", {"method": {"objective": "least_squares"}}),
    "wgan": ("WGAN (clipping)", {"method": {"objective": "wasserstein", "clip": 0.01, "d_steps": 5},
                                 "optim": {"optimizer": "rmsprop", "lr_g": 5e-5, "lr_d": 5e-5}}),
    "wgan_gp": ("WGAN-GP", {"method": {"objective": "wasserstein", "penalty": "gradient", "d_steps": 5},
                            "discriminator": {"norm": "layer"},
                            "optim": {"lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.0, "beta2": 0.9}}),
    "hinge": ("hinge", {"method": {"objective": "hinge"}}),
    "sngan": ("SNGAN (hinge + spectral norm)", {"method": {"objective": "hinge", "spectral_norm": True}}),
}

#: Lucic et al. 2018, best Inception FID on Fashion-MNIST (BENCHMARKS.md)
LUCIC = {"mm": "29.6 ± 1.6", "ns": "26.5 ± 1.6", "lsgan": "30.7 ± 2.2", "wgan": "21.5 ± 1.6",
         "wgan_gp": "24.5 ± 2.1", "hinge": "-", "sngan": "-"}


def overrides_of(setting: str, steps: int, seed: int) -> dict:
    overlay = SETTINGS[setting][1]
    cfg = {"method": {"name": "gan"}, "generator": {"name": "dcgan"}, "discriminator": {"name": "dcgan"},
           "train": {"steps": steps, "batch_size": 64, "seed": seed, "sample_every": 0, "checkpoint_every": 0,
                     "log_every": 100, "progress": "none"}}
    for k, v in overlay.items():
        cfg[k] = {**cfg.get(k, {}), **v}
    return cfg


def dotted(cfg: dict) -> list:
    return [f"{section}.{k}={v}" for section, values in cfg.items() for k, v in values.items()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", type=int, default=1000, help="non-saturating GAN steps' worth of FLOPs per setting")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    p.add_argument("--settings", default=",".join(SETTINGS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, default=10000, help="samples for FID")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = {}
    t0 = time.perf_counter()

    def flops(setting: str) -> int:
        step = gankit_case(None, dotted(overrides_of(setting, 1, args.seed)))[0]
        step()                                  # the first step may do one-off work
        return count_flops(step)

    budget = args.budget * flops("ns")
    with tempfile.TemporaryDirectory() as tmp:
        for setting in args.settings.split(","):
            per_step = flops(setting)
            steps = max(1, round(budget / per_step))
            t = time.perf_counter()
            run = gankit.train(overrides_of(setting, steps, args.seed), out=os.path.join(tmp, setting))
            seconds = time.perf_counter() - t
            fid = evaluate_run(run, ["fid"], n=args.n, split="test", seed=args.seed)["fid"]
            rows[setting] = {"what": SETTINGS[setting][0], "gflop_per_step": per_step / 1e9, "steps": steps,
                             "train_seconds": seconds, "fid": fid, "lucic": LUCIC[setting]}
            print(f"{setting}: {steps} steps ({per_step / 1e9:.2f} GFLOP each) in {seconds:.0f} s, FID {fid:.2f}",
                  flush=True)
    print(f"date: {datetime.date.today()}  machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}; {time.perf_counter() - t0:.0f} s in all")
    print(f"command: python benchmarks/fid_objectives.py --budget {args.budget} --seed {args.seed}")
    print(f"| objective | generator steps ({budget / 1e12:.1f} TFLOP each) | train seconds | FID (gankit features) "
          "| rank | Lucic et al. FID (Inception, best of a large search) |")
    print("|---|---:|---:|---:|---:|---|")
    order = sorted(rows, key=lambda s: rows[s]["fid"])
    for s in rows:
        r = rows[s]
        print(f"| {r['what']} | {r['steps']} | {r['train_seconds']:.0f} | {r['fid']:.2f} | {order.index(s) + 1} "
              f"| {r['lucic']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
