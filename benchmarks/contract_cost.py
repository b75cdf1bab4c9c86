"""What the method contract costs the default run: training steps per second of today's code
against an older commit, alternating the two in one benchmark run.

Each round trains the default run (`gankit train`, DCGAN on Fashion-MNIST, batch 64) for
``--steps`` steps once with each code, in a fresh process each, in alternating order (old,
new; then new, old; ...), so that load which comes and goes on a shared machine reaches both
alike. The rate of a run is read from its own ``metrics.jsonl`` (training time only): steps
from the first log line to the last over the time between them, so start-up and the first
steps' warm-up are left out. Sample grids and checkpoints are switched off, and the precision
is fixed (``--precision``) because older code chose bf16 on processors where it is emulated.
Both codes are unpacked with ``git archive`` and run with ``PYTHONPATH`` pointing at them.

    python benchmarks/contract_cost.py --old 70ff5c4 --rounds 4 --steps 600
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def unpack(commit: str, dest: Path) -> Path:
    archive = dest.with_suffix(".tar")
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), commit, "src"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest / "src"


def rate(src: Path, steps: int, precision: str, out: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-m", "gankit", "train", "--out", str(out), "--steps", str(steps), "--set",
           "train.sample_every=0", "train.checkpoint_every=0", "train.log_every=50", "train.progress=none",
           f"runtime.precision={precision}"]
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "time" in r]
    first, last = rows[0], rows[-1]
    return (last["step"] - first["step"]) / (last["time"] - first["time"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--old", default="70ff5c4", help="the commit to compare with")
    p.add_argument("--new", default="HEAD", help="the commit to measure (committed code, not the working tree)")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        codes = {"old": unpack(args.old, tmp / "old"), "new": unpack(args.new, tmp / "new")}
        rates = {"old": [], "new": []}
        for r in range(args.rounds):
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            for name in order:
                rates[name].append(rate(codes[name], args.steps, args.precision, tmp / f"{name}{r}"))
            print(f"round {r + 1}: old {rates['old'][-1]:.2f}  new {rates['new'][-1]:.2f} steps/s", flush=True)
    old, new = statistics.median(rates["old"]), statistics.median(rates["new"])
    print(f"date: {datetime.date.today()}; {args.rounds} rounds of {args.steps} steps, {args.precision}")
    print(f"median steps/s: old ({args.old}) {old:.2f}, new ({args.new}) {new:.2f}: new/old = {new / old:.3f}")
    print("per round (old, new): " + ", ".join(f"({a:.2f}, {b:.2f})" for a, b in zip(rates["old"], rates["new"])))


if __name__ == "__main__":
    main()
