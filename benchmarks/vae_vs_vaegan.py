"""VAE against VAE-GAN on Fashion-MNIST at one CPU budget: is the VAE blurry and VAE-GAN sharp?

Each method is the command a user types, `gankit train configs/{vae,vaegan}_fashion_mnist.yaml
--set runtime.threads=1 ...`, in a fresh process; both run side by side, and each is stopped
with SIGTERM (the trainer finishes its step and writes a checkpoint) once its process has used
``--budget`` CPU-seconds (user + system time of the whole process, start-up and data loading
included), so a machine shared with other jobs gives both the same amount of computation
however the wall clock runs. One thread each: on a crowded machine a second thread's waiting
would be counted as work. Then each run is evaluated on the held-out split (``--n`` pictures,
the Fashion-MNIST classifier's features): ``fid`` of reconstructions, ``sample_fid`` of prior
samples, ``reconstruction_error`` and ``reconstruction_sharpness``, ``sample_sharpness`` and
the VAE's ``elbo``; and a picture of both (input | reconstruction | prior sample) is written.

    python benchmarks/vae_vs_vaegan.py --budget 100 --n 2000 --out /tmp/vae_vs_vaegan \\
        --picture docs/images/vae_vs_vaegan.png
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = {"vae": "configs/vae_fashion_mnist.yaml", "vaegan": "configs/vaegan_fashion_mnist.yaml"}
METRICS = {"vae": ["fid", "sample_fid", "reconstruction_error", "sample_sharpness", "elbo"],
           "vaegan": ["fid", "sample_fid", "reconstruction_error", "sample_sharpness"]}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def train_side_by_side(out: Path, budget: float, wall_limit: float) -> dict:
    procs, used, started = {}, {}, time.time()
    for name, config in RUNS.items():
        cmd = [sys.executable, "-m", "gankit", "train", config, "--out", str(out / name), "--set",
               "train.steps=1000000", "train.sample_every=0", "train.checkpoint_every=5000", "train.log_every=50",
               "train.progress=none", "runtime.threads=1"]
        procs[name] = subprocess.Popen(cmd, cwd=ROOT, stdout=open(out / f"{name}.log", "w"), stderr=subprocess.STDOUT)
    stopped = set()
    while len(stopped) < len(procs):
        time.sleep(2)
        for name, p in procs.items():
            if name in stopped:
                continue
            if p.poll() is not None:
                stopped.add(name)
                continue
            used[name] = cpu_seconds(p.pid)
            if used[name] >= budget or time.time() - started > wall_limit:
                p.send_signal(signal.SIGTERM)
                p.wait()
                stopped.add(name)
    return {name: {"cpu_s": round(used.get(name, 0.0), 1), "exit": procs[name].returncode} for name in procs}


def evaluate(out: Path, n: int) -> dict:
    import gankit
    from gankit.metrics.evaluate import evaluate_run

    results = {}
    for name in RUNS:
        run = gankit.load_run(out / name)
        results[name] = {"steps": run.step, **evaluate_run(run, metrics=METRICS[name], n=n)}
    return results


def picture(out: Path, path: Path, k: int = 8) -> None:
    """input | reconstruction | prior sample for k held-out pictures, VAE above VAE-GAN."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from torchvision.utils import make_grid

    import gankit
    from gankit.data.base import build_data

    fig, axes = plt.subplots(2, 1, figsize=(7, 7.4), dpi=120)
    for ax, name, title in zip(axes, RUNS, ("VAE", "VAE-GAN")):
        run = gankit.load_run(out / name)
        held_out = build_data(run.config, split="test").tensors()["x"][:k]
        got = run.generate(k, seed=0, given={"input": held_out.float() / 127.5 - 1})
        tiles = torch.stack([got["input"], got["x"], got["sample"]], 1).flatten(0, 1)
        grid = make_grid(tiles, nrow=6, padding=2, pad_value=1.0)
        ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{title} (step {run.step}): input | reconstruction | prior sample, twice a row", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=300.0, help="CPU-seconds per method")
    ap.add_argument("--wall-limit", type=float, default=3600.0, help="stop both after this many wall seconds anyway")
    ap.add_argument("--n", type=int, default=5000, help="held-out pictures per evaluation")
    ap.add_argument("--out", type=Path, default=Path("/tmp/vae_vs_vaegan"))
    ap.add_argument("--picture", type=Path, default=None, help="write the comparison picture here")
    ap.add_argument("--skip-training", action="store_true", help="evaluate the runs already in --out")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "budget_cpu_s": args.budget}
    if not args.skip_training:
        report["training"] = train_side_by_side(args.out, args.budget, args.wall_limit)
    report["eval"] = evaluate(args.out, args.n)
    if args.picture is not None:
        picture(args.out, args.picture)
    print(json.dumps(report, indent=1))
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
