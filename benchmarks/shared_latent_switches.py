"""Unpaired translation Fashion-MNIST -> Fashion-MNIST-M at one CPU-time budget: the shared
latent space (shared_latent) with each of its switches, beside cyclegan.

Each setting is the command a user types, `gankit train configs/CONFIG.yaml --set ...` with one
thread (``runtime.threads=1``), in a fresh process that is stopped by SIGINT (which finishes
the step and checkpoints) once its training has used ``--budget`` seconds of CPU time (user +
system, read from /proc from the moment the run directory's config.yaml appears, i.e. after
the data are loaded). A CPU-time budget means the same on a machine busy with other jobs,
where a wall-clock budget (``train.time_limit``) would not; ``--parallel`` runs the settings
at once. Then `gankit eval RUN --metrics fid,translation_accuracy,domain_accuracy,cycle_error
--n N`: held-out Fashion-MNIST (domain A) translated into B and judged against held-out
Fashion-MNIST-M (FID in the Fashion-MNIST classifier's features), the classifier's accuracy on
the translations' garments, a classifier of the two domains trained on real training
pictures of both (domain_accuracy: the share of translations it puts in B) and the mean
|a - back(translate(a))|.

    python benchmarks/shared_latent_switches.py --budget 150 --parallel --out /tmp/shared_latent_runs
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from gankit.hardware import cpu_name

SL = "configs/shared_latent_fashion_mnist_m.yaml"
SETTINGS = {
    "unit": ("shared_latent, UNIT-like (tied layer, VAE terms, image discriminators)", SL, []),
    "latent": ("+ latent domain discriminator (latent_weight 1)", SL, ["method.latent_weight=1.0"]),
    "cycle": ("+ cycle through the latent space (cycle_weight 10)", SL, ["method.cycle_weight=10.0"]),
    "semantic": ("+ semantic consistency (semantic_weight 1)", SL, ["method.semantic_weight=1.0"]),
    "cyclegan": ("cyclegan (its config)", "configs/cyclegan_fashion_mnist_m.yaml", []),
}
METRICS = "fid,translation_accuracy,domain_accuracy,cycle_error"




def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(setting: str, budget: float, out: Path, n: int) -> dict:
    _, config, sets = SETTINGS[setting]
    run_dir = out / setting
    cmd = [sys.executable, "-m", "gankit", "train", config, "--out", str(run_dir), "--set", "train.steps=1000000",
           "train.progress=lines", "train.sample_every=0", "runtime.threads=1", *sets]
    logs = out / f"{setting}.log"
    with open(logs, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        start = None
        while proc.poll() is None:
            time.sleep(0.5)
            try:
                if start is None and (run_dir / "config.yaml").exists():
                    start = cpu_seconds(proc.pid)
                elif start is not None and cpu_seconds(proc.pid) - start >= budget:
                    proc.send_signal(signal.SIGINT)     # finishes the step, checkpoints, exits 130
                    proc.wait()
            except OSError:
                pass
    text = logs.read_text()
    if proc.returncode not in (0, 130):
        raise SystemExit(f"{setting}: training failed\n{text[-3000:]}")
    steps = int(re.findall(r"stopped at step (\d+)", text)[-1])
    result = run_dir / "eval.json"
    ev = subprocess.run([sys.executable, "-m", "gankit", "eval", str(run_dir), "--metrics", METRICS, "--n", str(n),
                         "--json", str(result)], capture_output=True, text=True)
    if ev.returncode != 0:
        raise SystemExit(f"{setting}: evaluation failed\n{ev.stdout[-2000:]}\n{ev.stderr[-2000:]}")
    return {"setting": setting, "steps": steps, **json.loads(result.read_text())["metrics"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budget", type=float, default=150.0, help="CPU seconds of training per setting")
    p.add_argument("--parallel", action="store_true", help="run the settings at once")
    p.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated, of: " + ", ".join(SETTINGS))
    p.add_argument("--n", type=int, default=2000, help="held-out pictures translated per evaluation")
    p.add_argument("--out", default="shared_latent_runs", help="where the runs are written")
    p.add_argument("--json", help="also write the rows as JSON")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    print(f"date: {datetime.date.today()}  machine: {cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__}; "
          f"budget {args.budget:g} CPU seconds of training per setting, one thread; n = {args.n}")
    print("| setting | steps | translation accuracy | domain accuracy | FID to B | cycle error |")
    print("|---|---:|---:|---:|---:|---:|")
    settings = args.settings.split(",")
    with ThreadPoolExecutor(len(settings) if args.parallel else 1) as pool:
        rows = list(pool.map(lambda s: run(s, args.budget, out, args.n), settings))
    for setting, row in zip(settings, rows):
        print(f"| {SETTINGS[setting][0]} | {row['steps']:,} | {row['translation_accuracy']:.3f} | "
              f"{row['domain_accuracy']:.3f} | {row['fid']:.2f} | {row['cycle_error']:.4f} |", flush=True)
    last = rows[-1]
    print(f"identity mapping: translation accuracy {last['translation_accuracy_input']:.3f}, domain accuracy "
          f"{last['domain_accuracy_input']:.3f}; real B: translation accuracy "
          f"{last.get('translation_accuracy_real', float('nan')):.3f}, domain classifier on held-out real pictures "
          f"{last['domain_accuracy_real']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"date": str(datetime.date.today()), "machine": cpu_name(),
                                               "budget": args.budget, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
