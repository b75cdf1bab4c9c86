"""Does the fast path train as well as fp32? And what does the generator average buy?

Protocol: the default run (DCGAN, non-saturating GAN, Fashion-MNIST 28x28, batch 64) for
``--steps`` steps with each seed, once with the fast path (bf16 autocast + channels_last,
the default on a CPU with bf16) and once in plain fp32 with contiguous tensors, the same
seeds and data order. Each run also keeps a moving average of the generator (decay 0.999,
with warm-up), which does not change training. FID (gankit's Fashion-MNIST classifier
features, 10,000 samples against the 10,000 test images) is computed for the trained
generator and for its average; the wall-clock time of each run is reported beside it.

    python benchmarks/precision_quality.py --steps 1500 --seeds 2
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import tempfile
import time

import torch

import gankit
from gankit.metrics.evaluate import evaluate_run

PATHS = {"bf16 + channels_last": ["runtime.precision=bf16", "runtime.channels_last=on"],
         "fp32": ["runtime.precision=fp32", "runtime.channels_last=off"]}


def fids(run, n: int, seed: int) -> dict:
    ema = run.method.ema
    out = {"fid_ema": evaluate_run(run, ["fid"], n=n, seed=seed)["fid"]}
    run.method.ema = None                      # the trained generator itself
    out["fid"] = evaluate_run(run, ["fid"], n=n, seed=seed)["fid"]
    run.method.ema = ema
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--n", type=int, default=10000)
    args = p.parse_args()
    rows = {name: [] for name in PATHS}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for name, overrides in PATHS.items():
                t = time.perf_counter()
                run = gankit.train(None, [f"train.steps={args.steps}", f"train.seed={seed}", "train.ema_decay=0.999",
                                          "train.sample_every=0", "train.checkpoint_every=0", "train.progress=none",
                                          *overrides], out=os.path.join(tmp, f"{seed}-{name[:4]}"))
                seconds = time.perf_counter() - t
                res = {"seed": seed, "seconds": seconds, **fids(run, args.n, seed)}
                rows[name].append(res)
                print(f"{name} seed {seed}: {seconds:.0f} s, FID {res['fid']:.2f}, with the average "
                      f"{res['fid_ema']:.2f}", flush=True)
    print(f"date: {datetime.date.today()}  machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}; {time.perf_counter() - t0:.0f} s in all")
    print(f"command: python benchmarks/precision_quality.py --steps {args.steps} --seeds {args.seeds}")
    print("| path | seconds per run | FID (trained G), per seed | mean | FID (average of G), per seed | mean |")
    print("|---|---:|---|---:|---|---:|")
    for name, rs in rows.items():
        f = [r["fid"] for r in rs]
        e = [r["fid_ema"] for r in rs]
        print(f"| {name} | {statistics.mean(r['seconds'] for r in rs):.0f} | {', '.join(f'{v:.2f}' for v in f)} "
              f"| {statistics.mean(f):.2f} | {', '.join(f'{v:.2f}' for v in e)} | {statistics.mean(e):.2f} |")


if __name__ == "__main__":
    main()
