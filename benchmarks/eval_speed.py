"""How long `gankit eval` takes on a trained image run once the reference features are cached.

Protocol: 10,000 generated samples of the run; FID, KID (100 subsets of 1,000), the
classifier score (10 splits) and precision/recall (k = 3) against the first 10,000 images of
the held-out split, with the run's data-set classifier as feature extractor. The first call
fills the on-disk reference cache and is not timed; the next `--repeats` calls are.

    python benchmarks/eval_speed.py RUN_DIR [--n 10000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

import torch

import gankit
from gankit.metrics.evaluate import evaluate_run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--metrics", default="fid,kid,is,pr")
    args = p.parse_args()
    metrics = args.metrics.split(",")
    run = gankit.load_run(args.run_dir)
    evaluate_run(run, metrics, n=args.n)  # fills the reference cache
    times, result = [], None
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        result = evaluate_run(run, metrics, n=args.n)
        times.append(time.perf_counter() - t0)
    print(f"date: {datetime.date.today()}  machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    print(f"command: python benchmarks/eval_speed.py {args.run_dir} --n {args.n} --repeats {args.repeats}")
    print(f"| metrics | samples | seconds (best of {args.repeats}) | mean |")
    print("|---|---|---|---|")
    print(f"| {args.metrics} | {args.n} | {min(times):.2f} | {sum(times) / len(times):.2f} |")
    print("results:", {k: round(v, 5) for k, v in result.items()})


if __name__ == "__main__":
    main()
