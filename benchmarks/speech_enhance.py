"""Speech enhancement on held-out utterances: noisy input, spectral subtraction, the L1
regressor and the conditional GAN (SEGAN's comparison, on spectrograms, at a small CPU budget).

Two runs of ``configs/speech_enhance.yaml`` that differ only in ``method.adv_weight`` (0: the
supervised regressor, the U-Net on the L1 term alone; 1: the GAN + L1), each `gankit train`
for ``--steps`` steps in a process of its own (both at once, ``--threads`` each), then
`gankit eval RUN --metrics speech_quality:utterances=N`: the first ``--utterances`` held-out
utterances (sentences, voices and noise types training never heard: brown and babble noise
at 2.5/7.5/12.5/17.5 dB) enhanced whole and resynthesised with the noisy phase, scored against
the clean recording. The noisy and spectral-subtraction rows are the same evaluation's
``*_noisy`` and ``*_subtraction`` entries (they do not depend on the run). ``--outputs``
trains each row once per meaning of G's output (``method.output``: direct, mask, residual),
all at once; ``--rows`` keeps some of the rows.

    python benchmarks/speech_enhance.py --out /tmp/speech --steps 300
    python benchmarks/speech_enhance.py --out /tmp/outputs --rows regressor --outputs direct mask residual
"""
from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

from gankit.hardware import cpu_name

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "speech_enhance.yaml"
ROWS = {"regressor": 0.0, "gan": 1.0}
KEYS = ("segsnr", "snr", "stoi", "pesq")


def jobs(args):
    """(run name, row, output) of every run: the row's name alone when one output is compared."""
    outputs = args.outputs or [None]
    return [(row if len(outputs) == 1 else f"{row}_{out}", row, out) for out in outputs for row in args.rows]


def train_and_eval(args, job) -> dict:
    name, row, output = job
    run_dir = Path(args.out) / name
    start = time.time()
    cmd = [sys.executable, "-m", "gankit", "train", str(CONFIG), "--out", str(run_dir), "--steps", str(args.steps),
           "--set", f"method.adv_weight={ROWS[row]}", f"runtime.threads={args.threads}",
           f"train.batch_size={args.batch}", f"train.seed={args.seed}", f"train.checkpoint_every={args.steps}",
           f"train.sample_every={args.steps}", "train.progress=none"] + (
              [f"method.output={output}"] if output else [])
    log = subprocess.run(cmd, capture_output=True, text=True)
    if log.returncode != 0:
        raise SystemExit(f"{name}: training failed\n{log.stdout[-2000:]}\n{log.stderr[-2000:]}")
    train_s = time.time() - start
    result = run_dir / "eval.json"
    ev = subprocess.run([sys.executable, "-m", "gankit", "eval", str(run_dir), "--metrics",
                         f"l1,speech_quality:utterances={args.utterances}", "--n", "256", "--json", str(result)],
                        capture_output=True, text=True)
    if ev.returncode != 0:
        raise SystemExit(f"{name}: evaluation failed\n{ev.stdout[-2000:]}\n{ev.stderr[-2000:]}")
    return {"name": name, "row": row, "output": output, "train_s": round(train_s, 1),
            **json.loads(result.read_text())["metrics"]}


def noisy_l1(run_dir: Path) -> float:
    """The held-out segments' spectrogram L1 between the noisy input and the clean target (the
    ``l1`` an enhancer that changed nothing would score), pictures in [0, 1] as the ``l1`` metric's."""
    import gankit
    from gankit.data.base import build_data

    test = build_data(gankit.load_run(run_dir).config, split="test")
    return float((test.extra["input"].float() - test.x.float()).abs().mean() / 255.0)


def table(results) -> str:
    first = results[0]
    lines = ["| enhancer | segSNR dB | SNR dB | STOI | PESQ (wb) | spectrogram L1 | train s (wall, shared) |",
             "|---|---:|---:|---:|---:|---:|---:|"]

    def cells(r, suffix):
        return " | ".join(f"{r.get(k + suffix, float('nan')):.3f}" for k in KEYS)

    lines.append(f"| noisy input | {cells(first, '_noisy')} | {first['l1_noisy']:.4f} | |")
    lines.append(f"| spectral subtraction | {cells(first, '_subtraction')} | | |")
    for r in results:
        label = "regressor (L1 only)" if r["row"] == "regressor" else "GAN + L1 (SEGAN-style)"
        if r["output"]:
            label += f", output {r['output']}"
        lines.append(f"| {label} | {cells(r, '')} | {r['l1']:.4f} | {r['train_s']} |")
    return "\n".join(lines)


def by_snr(args) -> str:
    """Segmental SNR per test SNR (and noise) of the same held-out utterances: where learning helps."""
    import numpy as np
    import torch

    import gankit
    from gankit import audio
    from gankit.data.speech import spectrogram_settings, speech_utterances
    from gankit.methods.speech_enhance import enhance

    runs = {name: gankit.load_run(Path(args.out) / name) for name, _, _ in jobs(args)}
    section = {k: v for k, v in next(iter(runs.values())).config.data.items() if k not in ("name", "split")}
    settings = spectrogram_settings(section)
    groups = {}
    for u in speech_utterances("test", **section)[:args.utterances]:
        row = {"noisy": u.noisy, "spectral subtraction": audio.spectral_subtraction(u.noisy)}
        for name, run in runs.items():
            row[name] = enhance(run.method, u.noisy, settings, torch.Generator().manual_seed(0))
        for name, wave in row.items():
            groups.setdefault((u.snr, u.noise), {}).setdefault(name, []).append(audio.segmental_snr(u.clean, wave))
    names = list(next(iter(groups.values())))
    lines = ["| test SNR, noise | utterances | " + " | ".join(names) + " |", "|---|---:|" + "---:|" * len(names)]
    for (snr, noise), cols in sorted(groups.items()):
        lines.append(f"| {snr:g} dB, {noise} | {len(cols['noisy'])} | "
                     + " | ".join(f"{np.mean(cols[n]):.2f}" for n in names) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--utterances", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS), help="regressor, gan or both")
    p.add_argument("--outputs", nargs="+", choices=["direct", "mask", "residual"],
                   help="method.output of the runs (default: the method's); several: one run each per row")
    p.add_argument("--by-snr-only", action="store_true", help="only the segmental SNR per test SNR of runs "
                   "trained by an earlier call (in --out)")
    args = p.parse_args()
    if args.by_snr_only:
        print(by_snr(args))
        return
    with concurrent.futures.ThreadPoolExecutor(len(jobs(args))) as pool:
        results = list(pool.map(lambda job: train_and_eval(args, job), jobs(args)))
    results[0]["l1_noisy"] = noisy_l1(Path(args.out) / results[0]["name"])
    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu_name()}, steps {args.steps}, "
          f"batch {args.batch}, {args.threads} thread(s) per run, {args.utterances} held-out utterances")
    print(table(results))
    print(by_snr(args))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
