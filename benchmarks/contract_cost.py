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

``--interleave`` measures differently, so that neither load from elsewhere nor what differs
between two processes (memory placement, thread start-up) can favour one code: both codes are
imported into one process (each under a package name of its own, ``gankit_old`` and
``gankit_new``, so that neither sees the other's modules), each builds its default run through
its own API (its ``Trainer`` is taken before it trains), and the two are then driven step by
step with each code's own loop body (stream, batch conversion, ``train_step``, the log step's
stack-and-sync every ``--log-every`` steps), in chunks of ``--chunk`` steps, alternating
old/new/new/old. After ``--warmup`` steps each, every chunk is timed; the summary is the median
chunk time of each code, the median ratio of paired chunks and its bootstrap 95 % interval.

    python benchmarks/contract_cost.py --old 70ff5c4 --interleave --chunks 80

    python benchmarks/contract_cost.py --old 70ff5c4 --rounds 12 --steps 400 --log-every 20
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import inspect
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import List, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def unpack(commit: str, dest: Path) -> Path:
    archive = dest.with_suffix(".tar")
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), commit, "src"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest / "src"


def rate(src: Path, steps: int, precision: str, out: Path, log_every: int) -> Tuple[float, float]:
    """(steps/s from the first log line to the last, steps/s of the median interval)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-m", "gankit", "train", "--out", str(out), "--steps", str(steps), "--set",
           "train.sample_every=0", "train.checkpoint_every=0", f"train.log_every={log_every}",
           "train.progress=none", f"runtime.precision={precision}"]
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "time" in r]
    first, last = rows[0], rows[-1]
    whole = (last["step"] - first["step"]) / (last["time"] - first["time"])
    intervals = [(b["time"] - a["time"]) / (b["step"] - a["step"]) for a, b in zip(rows, rows[1:])]
    return whole, 1.0 / statistics.median(intervals)


def load_code(src: Path, name: str):
    """Import the package ``src/gankit`` under the name ``name`` (its relative imports stay inside it)."""
    dest = src.parent / f"pkg_{name}"
    shutil.copytree(src / "gankit", dest / name)
    sys.path.insert(0, str(dest))
    try:
        return importlib.import_module(name), importlib.import_module(f"{name}.api")
    finally:
        sys.path.pop(0)


def interleaved(codes: dict, out: Path, args) -> None:
    """Both codes in this process, driven in alternating chunks of steps (see the module)."""
    import torch
    drivers = {}
    for name, src in codes.items():
        pkg, api = load_code(src, f"gankit_{name}")
        trainer_module = importlib.import_module(f"gankit_{name}.train.trainer")
        logging_module = importlib.import_module(f"gankit_{name}.train.logging")
        caught = {}

        def catch(run, trainer, caught=caught):
            caught["trainer"] = trainer
            return run
        api._fit = catch
        torch.manual_seed(0)
        api.train(None, ["train.sample_every=0", "train.checkpoint_every=0", "train.progress=none",
                         f"runtime.precision={args.precision}", "train.steps=1000000"], out / name)
        t = caught["trainer"]
        converts = "data.to_model(self.stream.next())" in inspect.getsource(trainer_module.Trainer.fit)
        drivers[name] = (t, converts, logging_module)

    def chunk(name: str, steps: int) -> float:
        t, converts, logging_module = drivers[name]
        run, method = t.run, t.run.method
        rt, k = run.runtime, method.real_batches_per_step
        start = time.perf_counter()
        for _ in range(steps):
            if converts:     # the code before the contract converted the batch in the loop
                batches = [rt.tensor(run.data.to_model(t.stream.next())) for _ in range(k)]
            else:
                batches = [rt.tensor(t.stream.next()) for _ in range(k)]
            t._pending.append(method.train_step(batches, t.step))
            t.step += 1
            if t.step % args.log_every == 0:
                t._flush(logging_module.NullLog(), logging_module.Progress("none", 10 ** 6, t.step))
        return time.perf_counter() - start

    for name in drivers:
        chunk(name, args.warmup)
    times = {"old": [], "new": []}
    for c in range(args.chunks):
        for name in (("old", "new") if c % 2 == 0 else ("new", "old")):
            times[name].append(chunk(name, args.chunk))
    old, new = times["old"], times["new"]
    mid, lo, hi = median_interval([b / a for a, b in zip(old, new)])
    print(f"date: {datetime.date.today()}; one process, {args.chunks} chunks of {args.chunk} steps per code after "
          f"{args.warmup} warm-up steps, {args.precision}, log every {args.log_every}, torch threads "
          f"{torch.get_num_threads()}")
    print(f"median steps/s: old ({args.old}) {args.chunk / statistics.median(old):.2f}, new ({args.new}) "
          f"{args.chunk / statistics.median(new):.2f}; total steps/s old {args.chunk * len(old) / sum(old):.2f}, "
          f"new {args.chunk * len(new) / sum(new):.2f}")
    print(f"median ratio of paired chunk times new/old {mid:.3f} (95 % bootstrap {lo:.3f}-{hi:.3f}); "
          f"steps/s new/old = {1 / mid:.3f}")


def median_interval(ratios: List[float], draws: int = 10000, seed: int = 0) -> Tuple[float, float, float]:
    """The median of ``ratios`` and a percentile-bootstrap 95 % interval for it."""
    rng = np.random.default_rng(seed)
    r = np.asarray(ratios, dtype=np.float64)
    medians = np.median(rng.choice(r, size=(draws, len(r)), replace=True), axis=1)
    return float(np.median(r)), float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--old", default="70ff5c4", help="the commit to compare with")
    p.add_argument("--new", default="HEAD", help="the commit to measure (committed code, not the working tree)")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    p.add_argument("--log-every", type=int, default=50, help="steps between log lines (the intervals timed)")
    p.add_argument("--interleave", action="store_true", help="both codes in one process, alternating chunks")
    p.add_argument("--chunks", type=int, default=80, help="--interleave: timed chunks per code")
    p.add_argument("--chunk", type=int, default=20, help="--interleave: steps per chunk")
    p.add_argument("--warmup", type=int, default=100, help="--interleave: untimed steps per code first")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        codes = {"old": unpack(args.old, tmp / "old"), "new": unpack(args.new, tmp / "new")}
        if args.interleave:
            interleaved(codes, tmp, args)
            return
        rates = {"old": [], "new": []}
        for r in range(args.rounds):
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            for name in order:
                rates[name].append(rate(codes[name], args.steps, args.precision, tmp / f"{name}{r}", args.log_every))
            (o, om), (n, nm) = rates["old"][-1], rates["new"][-1]
            print(f"round {r + 1}: whole run old {o:.2f} new {n:.2f}; median interval old {om:.2f} new {nm:.2f} "
                  "steps/s", flush=True)
    print(f"date: {datetime.date.today()}; {args.rounds} rounds of {args.steps} steps, {args.precision}, "
          f"log every {args.log_every}")
    for i, what in enumerate(("whole run", "median interval")):
        old = [x[i] for x in rates["old"]]
        new = [x[i] for x in rates["new"]]
        mid, lo, hi = median_interval([b / a for a, b in zip(old, new)])
        print(f"{what}: median steps/s old ({args.old}) {statistics.median(old):.2f}, new ({args.new}) "
              f"{statistics.median(new):.2f}; median per-round ratio new/old {mid:.3f} (95 % bootstrap {lo:.3f}-{hi:.3f})")
        print("  per round (old, new): " + ", ".join(f"({a:.2f}, {b:.2f})" for a, b in zip(old, new)))


if __name__ == "__main__":
    main()
