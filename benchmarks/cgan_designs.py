"""The conditional GAN on Fashion-MNIST at a wall-clock budget: each discriminator design
beside the unconditional default run.

Each setting is the command a user types, `gankit train --method cgan --set
method.design=DESIGN` (or the default `gankit train` for the unconditional row), run in a
fresh process for ``--budget`` seconds of training (``train.time_limit``; ``train.steps`` set
out of reach so that the budget stops it), then `gankit eval RUN --metrics ...` on 10,000
samples against the 10,000 test images with gankit's Fashion-MNIST classifier: FID, and for
the conditional runs the conditional accuracy (the classifier's accuracy on samples generated
for each class, classes drawn by their training frequencies) and intra-FID (FID per class,
averaged). The settings run one after the other, so the machine must be otherwise idle for
the budgets to mean the same thing.

    python benchmarks/cgan_designs.py --budget 300 --out /tmp/cgan_designs --json cgan_designs.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from gankit.hardware import cpu_name

SETTINGS = {
    "gan": ("unconditional default run (`gankit train`)", []),
    "default": ("cgan, the defaults (acgan, classifier learns from real samples only, lr 4e-4)",
                ["--method", "cgan"]),
    "acgan_paper": ("cgan, acgan with the paper's rule (classifier also learns from generated samples)",
                    ["--method", "cgan", "--set", "method.design=acgan", "method.ac_generated=true"]),
    "joint": ("cgan, joint (one D on (x, c), the lecture's)", ["--method", "cgan", "--set", "method.design=joint"]),
    "two_branch": ("cgan, two_branch (realism from x + match from (phi(x), c))",
                   ["--method", "cgan", "--set", "method.design=two_branch"]),
    "projection": ("cgan, projection (Miyato & Koyama)", ["--method", "cgan", "--set", "method.design=projection"]),
    "lr2e-4": ("cgan, the defaults at lr 2e-4 (the unconditional run's)",
               ["--method", "cgan", "--set", "optim.lr_g=2e-4", "optim.lr_d=2e-4"]),
    "image_only": ("cgan, image_only (D never sees c)", ["--method", "cgan", "--set", "method.design=image_only"]),
}




def run(setting: str, budget: float, out: Path, n: int) -> dict:
    run_dir = out / setting
    cmd = [sys.executable, "-m", "gankit", "train", *SETTINGS[setting][1], "--out", str(run_dir),
           "--set", f"train.time_limit={budget}", "train.steps=1000000", "train.progress=lines"]
    log = subprocess.run(cmd, capture_output=True, text=True)
    if log.returncode != 0:
        raise SystemExit(f"{setting}: training failed\n{log.stdout[-2000:]}\n{log.stderr[-2000:]}")
    steps = int(re.findall(r"stopped at step (\d+)", log.stdout + log.stderr)[-1])
    metrics = "fid" if setting == "gan" else "fid,conditional_accuracy,intra_fid"
    result = run_dir / "eval.json"
    ev = subprocess.run([sys.executable, "-m", "gankit", "eval", str(run_dir), "--metrics", metrics, "--n", str(n),
                         "--json", str(result)], capture_output=True, text=True)
    if ev.returncode != 0:
        raise SystemExit(f"{setting}: evaluation failed\n{ev.stdout[-2000:]}\n{ev.stderr[-2000:]}")
    values = json.loads(result.read_text())["metrics"]
    return {"setting": setting, "steps": steps, "steps_per_s": steps / budget, **values}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budget", type=float, default=300.0, help="seconds of training per setting")
    p.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated, of: " + ", ".join(SETTINGS))
    p.add_argument("--n", type=int, default=10000, help="samples per evaluation")
    p.add_argument("--out", default="cgan_designs_runs", help="where the runs are written")
    p.add_argument("--json", help="also write the rows as JSON")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    print(f"date: {datetime.date.today()}  machine: {cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__}; "
          f"budget {args.budget:g} s of training per setting")
    print("| setting | steps in budget | steps/s | FID | conditional accuracy | intra-FID |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = []
    for setting in args.settings.split(","):
        row = run(setting, args.budget, out, args.n)
        rows.append(row)
        acc = row.get("conditional_accuracy")
        intra = row.get("intra_fid")
        print(f"| {SETTINGS[setting][0]} | {row['steps']:,} | {row['steps_per_s']:.2f} | {row['fid']:.2f} | "
              f"{'-' if acc is None else f'{acc:.3f}'} | {'-' if intra is None else f'{intra:.2f}'} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"date": str(datetime.date.today()), "machine": cpu_name(),
                                               "budget": args.budget, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
