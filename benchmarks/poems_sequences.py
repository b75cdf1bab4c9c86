"""MLE, SeqGAN, Gumbel-softmax and soft-D on Tang poem lines at one equal CPU budget.

One generator is pre-trained by maximum likelihood (`gankit train --method mle --data poems
--steps P`); then four runs start from it side by side, each the command a user types in a
fresh process with one thread, and each is stopped with SIGTERM (the trainer finishes its step
and writes a checkpoint) once its process has used ``--budget`` CPU-seconds (user + system,
start-up included), so a machine shared with other jobs gives each the same computation:

* ``mle``: the pre-training run itself continued (`gankit resume`, a copy of it),
* ``seqgan``, ``gumbel``, ``soft_d``: `gankit train --method NAME --data poems --set
  method.init=START` at their defaults.

Each is then evaluated on the held-out split (``--n`` samples, seed 0): BLEU-2..4 against the
held-out lines, self-BLEU-2..4 among the samples, and the held-out NLL (``nll_test``); and a
few samples of each are printed.

    python benchmarks/poems_sequences.py --pretrain 1500 --budget 120 --out /tmp/poems_seq
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMON = ["train.sample_every=0", "train.checkpoint_every=100000", "train.log_every=50", "train.progress=none",
          "runtime.threads=1"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gankit(*args: str) -> list:
    return [sys.executable, "-m", "gankit", *args]


def run_side_by_side(cmds: dict, out: Path, budget: float, wall_limit: float) -> dict:
    procs, used, started = {}, {}, time.time()
    for name, cmd in cmds.items():
        procs[name] = subprocess.Popen(cmd, cwd=ROOT, stdout=open(out / f"{name}.log", "w"), stderr=subprocess.STDOUT)
    stopped = set()
    while len(stopped) < len(procs):
        time.sleep(1)
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
    return used


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pretrain", type=int, default=1500, help="MLE steps of the shared start")
    ap.add_argument("--budget", type=float, default=120.0, help="CPU-seconds per method after the start")
    ap.add_argument("--n", type=int, default=1000, help="samples evaluated per method")
    ap.add_argument("--wall-limit", type=float, default=3600.0)
    a = ap.parse_args(argv)
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    start = out / "mle_start"
    if not (start / "checkpoints").is_dir():
        subprocess.run(gankit("train", "--method", "mle", "--data", "poems", "--steps", str(a.pretrain), "--out",
                              str(start), "--set", *COMMON), cwd=ROOT, check=True)
    runs = {name: out / name for name in ("mle", "seqgan", "gumbel", "soft_d")}
    for path in runs.values():
        if path.exists():
            shutil.rmtree(path)
    shutil.copytree(start, runs["mle"])
    cmds = {"mle": gankit("resume", str(runs["mle"]), "--steps", "1000000")}
    for name in ("seqgan", "gumbel", "soft_d"):
        cmds[name] = gankit("train", "--method", name, "--data", "poems", "--steps", "1000000", "--out",
                            str(runs[name]), "--set", f"method.init={start}", *COMMON)
    t0 = time.time()
    used = run_side_by_side(cmds, out, a.budget, a.wall_limit)

    import torch

    import gankit as gk
    from gankit.data.sequences import decode_all
    from gankit.metrics.evaluate import evaluate_run

    torch.set_num_threads(1)
    rows = {}
    for name, path in [("start", start), *runs.items()]:
        run = gk.load_run(path)
        res = evaluate_run(run, ["bleu", "self_bleu", "nll_test"], n=a.n)
        samples = decode_all(run.generate(6, seed=0)["x"], run.info.fields["x"].classes)
        logged = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines() if line.strip()]
        rows[name] = {"steps": max((r["step"] for r in logged), default=0), "cpu_seconds": used.get(name),
                      **{k: float(v) for k, v in res.items()}, "samples": samples}
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "pretrain": a.pretrain, "budget": a.budget, "n": a.n, "wall_seconds": time.time() - t0, "rows": rows}
    (out / "poems_sequences.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    keys = [k for k in ("bleu2", "bleu3", "bleu4", "self_bleu2", "self_bleu3", "self_bleu4", "nll_test")
            if k in rows["start"]]
    print("| run | steps | " + " | ".join(keys) + " | samples |")
    print("|---|---|" + "---|" * (len(keys) + 1))
    for name, r in rows.items():
        print(f"| {name} | {r['steps']} | " + " | ".join(f"{r[k]:.3f}" for k in keys) + " | "
              + " / ".join(r["samples"][:4]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
