"""Training-step speed of the default image GAN and of WGAN-GP, against a plain fp32 loop
and the machine's measured matrix-product peaks; how the cost grows with batch size, image
size and the number of processes. A thin wrapper over ``gankit bench`` (see its --help).

    python benchmarks/step_speed.py                 # everything below, about 10 minutes on 2 cores
    python benchmarks/step_speed.py --only default  # or: wgan_gp, sweeps, processes

Rows: ``gankit`` is the method's own train_step with its runtime (bf16 autocast and
channels_last for images on a CPU with bf16); ``plain`` the same networks and algorithm in
plain fp32 PyTorch. Each case runs in a fresh process; the median of 3 blocks of 30 steps
after 10 warm-up steps.
"""
from __future__ import annotations

import argparse
import os

from gankit.bench import main as bench

RUNS = {
    "default": [],
    "wgan_gp": ["--config", os.path.join(os.path.dirname(__file__), "..", "configs", "wgan_gp_fashion_mnist.yaml")],
    "sweeps": ["--cases", "gankit", "--sweep", "train.batch_size=16,32,128,256", "--sweep", "data.image_size=32,64"],
    "processes": ["--cases", "gankit", "--set", "runtime.threads=1", "--nprocs", "2"],
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=list(RUNS), default=None)
    p.add_argument("--json-dir", default=None, help="write NAME.json for each run here")
    args = p.parse_args()
    for name, argv in RUNS.items():
        if args.only and name != args.only:
            continue
        print(f"\n## {name}: gankit bench {' '.join(argv)}")
        extra = ["--json", os.path.join(args.json_dir, f"{name}.json")] if args.json_dir else []
        bench(argv + extra)


if __name__ == "__main__":
    main()
