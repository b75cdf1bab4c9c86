"""Next-frame prediction on moving_fashion's ambiguous clips: the regressor against the GAN.

Each run is `configs/video_moving_fashion.yaml` with `--steps` steps on one thread, trained
in a process of its own (all side by side): the L2 regressor (`method.adv_weight=0
method.reconstruction=l2`), the L1 regressor (`method.adv_weight=0`) and the conditional GAN
(the config). Each is then evaluated with the metric `next_frame` on the first `--n` held-out
clips (the test split: garments no training clip moved), and a picture is written: for
`--clips` held-out clips, the three past frames, the L2 regressor's prediction, three GAN
predictions with different noise and the true next frame. Last, the share of 500 held-out
clips for which five GAN draws (five noise seeds) include both a left and a right turn: does
the generator use its noise to choose?

    python benchmarks/video_prediction.py --steps 800 --n 2000 --out /tmp/video_bench \\
        --picture docs/images/video_next_frame.png
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "video_moving_fashion.yaml"
RUNS = {"regressor_l2": ["method.adv_weight=0", "method.reconstruction=l2"],
        "regressor_l1": ["method.adv_weight=0"],
        "gan": []}
KEYS = ["next_left", "next_right", "next_neither", "next_frame", "next_side_mass_real", "next_agree",
        "next_sharpness", "next_laplacian", "next_l1", "next_mse"]


def train_one(name: str, steps: int, out: Path) -> None:
    """Train one run in this process (called in a child process) and write its evaluation."""
    import torch

    import gankit
    from gankit.metrics.evaluate import evaluate_run

    torch.set_num_threads(1)
    overrides = [f"train.steps={steps}", "train.sample_every=0", "train.checkpoint_every=0", "train.progress=none",
                 "runtime.threads=1", "runtime.precision=fp32", f"out={out / name}", *RUNS[name]]
    cfg = gankit.api.make_config(str(CONFIG), overrides)
    start, cpu = time.time(), time.process_time()
    run = gankit.train(cfg)
    wall, cpu = time.time() - start, time.process_time() - cpu
    result = evaluate_run(run, metrics=["next_frame"], n=int(os.environ["VIDEO_BENCH_N"]))
    (out / f"{name}.json").write_text(json.dumps({"wall_s": wall, "cpu_s": cpu, **result}, indent=1))


def picture(out: Path, path: Path, clips: int) -> None:
    """Past frames | L2 regressor | three GAN draws | true next frame, for held-out clips."""
    import torch
    from torchvision.utils import save_image

    import gankit
    from gankit.data.base import build_data

    reg, gan = gankit.load_run(out / "regressor_l2"), gankit.load_run(out / "gan")
    test = build_data(gan.config, split="test")
    idx = torch.arange(clips)
    past = test.tensors()["input"][idx].float() / 127.5 - 1
    true = test.x[idx].float() / 255
    cols = [past.add(1).div(2).split(1, 1), [reg.generate(clips, seed=0, given={"input": past})["x"]],
            [gan.generate(clips, seed=s, given={"input": past})["x"] for s in range(3)], [true]]
    tiles = torch.stack([t for group in cols for t in group], 1).flatten(0, 1)
    tiles = torch.nn.functional.interpolate(tiles, scale_factor=3, mode="nearest")     # 32 pixels are small
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(tiles, path, nrow=tiles.shape[0] // clips, padding=4, pad_value=0.5)


def both_sides(out: Path, n: int, draws: int = 5) -> float:
    """The share of ``n`` held-out clips for which ``draws`` GAN draws (noise seeds 0..) include
    a frame choosing the left and one choosing the right side."""
    import numpy as np

    import gankit
    from gankit.data.base import build_data
    from gankit.metrics import video as vm

    gan = gankit.load_run(out / "gan")
    past = build_data(gan.config, split="test").tensors()["input"][:n].float() / 127.5 - 1
    centre = vm.last_centre((past + 1) / 2)
    chose = np.stack([vm.choices(vm.left_share(gan.generate(n, seed=s, given={"input": past})["x"], centre))
                      for s in range(draws)], 1)
    return float(((chose == -1).any(1) & (chose == 1).any(1)).mean())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--n", type=int, default=2000, help="held-out clips evaluated")
    p.add_argument("--out", type=Path, default=Path("/tmp/video_bench"))
    p.add_argument("--picture", type=Path, help="write the picture of held-out clips here")
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--reuse", action="store_true", help="take the runs already trained in --out (the table, the "
                   "picture)")
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        train_one(args.one, args.steps, args.out)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "VIDEO_BENCH_N": str(args.n), "OMP_NUM_THREADS": "1"}
    procs = {} if args.reuse else {
        name: subprocess.Popen([sys.executable, __file__, "--one", name, "--steps", str(args.steps),
                                "--out", str(args.out)], env=env) for name in RUNS}
    for name, proc in procs.items():
        if proc.wait() != 0:
            print(f"{name} failed with status {proc.returncode}", file=sys.stderr)
            return 1
    print(f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{args.steps} steps of batch 32 on one thread each, {args.n} held-out clips")
    print("| run | training (s) | " + " | ".join(KEYS) + " |")
    print("|---|---:|" + "---:|" * len(KEYS))
    for name in RUNS:
        r = json.loads((args.out / f"{name}.json").read_text())
        print(f"| {name} | {r['wall_s']:.0f} | " + " | ".join(f"{r[k]:.3f}" for k in KEYS) + " |")
    print(f"held-out clips whose 5 GAN draws include both sides: {both_sides(args.out, min(args.n, 500)):.3f} "
          f"(of {min(args.n, 500)})")
    if args.picture:
        picture(args.out, args.picture, args.clips)
        print(f"picture -> {args.picture}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
