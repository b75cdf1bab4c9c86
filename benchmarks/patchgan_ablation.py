"""pix2pix's PatchGAN ablation (Isola et al. 2017, Table 3): the discriminator's receptive field.

Four rows that differ only in ``discriminator.receptive_field``: 1 (PixelGAN: every pixel
judged on its own), 16, 70 (the paper's choice) and ``image`` (ImageGAN: one logit per
picture). Everything else is the paper's setting where the CPU allows it: L1 weight 100
(``method.l1_weight``, the default), the non-saturating objective with the discriminator's
loss halved, Adam with lr 2e-4 and betas (0.5, 0.999) for both networks, the U-Net with
dropout 0.5 and batch normalisation. What differs from the paper, for the CPU: narrower
networks (``--width``, the paper's is 64), a small batch instead of 1 (``--batch``) and a
fixed, small number of steps per row (``--steps``), the same for every row, so that the rows
cost the same whatever else the machine runs.

The task is edges -> photograph on patches of real photographs (``--data photos --set
data.pairs=edges``, ``data.image_size`` = ``--size``, 128 by default so that a 70x70 patch is
smaller than the picture). Each row is `gankit train` in a fresh process, then `gankit eval`
on ``--n`` held-out patches (the test split: photographs no training patch comes from): the
paired metrics pix2pix declares (L1, PSNR, SSIM against the target, and sharpness: the
outputs' mean gradient energy over the targets', 1 for outputs as sharp as the photographs)
and FID against the held-out photographs' patches on the features of ``--features`` (the
shipped Fashion-MNIST classifier by default, since the Inception weights cannot be fetched
offline; it sees the patches grey and at 28x28).

    python benchmarks/patchgan_ablation.py --out /tmp/patchgan --json patchgan.json
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

ROWS = {"1": "PixelGAN (1x1)", "16": "PatchGAN 16x16", "70": "PatchGAN 70x70", "image": "ImageGAN (whole picture)"}




def train_args(args, field: str, run_dir: Path) -> list:
    return [sys.executable, "-m", "gankit", "train", "--method", "pix2pix", "--data", "photos", "--out", str(run_dir),
            "--set", "data.pairs=edges", f"data.image_size={args.size}",
            f"discriminator.receptive_field={field}", f"generator.width={args.width}",
            f"discriminator.width={args.width}", "method.l1_weight=100", "method.adv_weight=1",
            "optim.lr_g=2e-4", "optim.lr_d=2e-4", "optim.beta1=0.5", "optim.beta2=0.999",
            f"train.batch_size={args.batch}", f"train.steps={args.steps}", f"train.seed={args.seed}",
            f"train.log_every={max(1, args.steps // 10)}", "train.sample_every=0",
            f"train.checkpoint_every={args.steps}", "train.progress=none", f"runtime.threads={args.threads}",
            "runtime.precision=fp32"]


def row(args, field: str) -> dict:
    run_dir = Path(args.out) / f"rf_{field}"
    done = run_dir / "checkpoints" / f"step_{args.steps:08d}.pt"
    if args.reuse and done.is_file():   # trained by an earlier call that stopped before its evaluation
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
        train_s = float(rows[-1]["time"]) if rows else float("nan")   # its training time as it logged it
    else:
        start = time.time()
        log = subprocess.run(train_args(args, field, run_dir), capture_output=True, text=True)
        if log.returncode != 0:
            raise SystemExit(f"receptive field {field}: training failed\n{log.stdout[-2000:]}\n{log.stderr[-2000:]}")
        train_s = time.time() - start
    result = run_dir / "eval.json"
    ev = subprocess.run([sys.executable, "-m", "gankit", "eval", str(run_dir), "--metrics",
                         "l1,psnr,ssim,sharpness,fid", "--features", args.features, "--n", str(args.n),
                         "--json", str(result)], capture_output=True, text=True)
    if ev.returncode != 0:
        raise SystemExit(f"receptive field {field}: evaluation failed\n{ev.stdout[-2000:]}\n{ev.stderr[-2000:]}")
    values = json.loads(result.read_text())["metrics"]
    return {"receptive_field": field, "name": ROWS[field], "steps": args.steps, "train_s": round(train_s, 1),
            **values}


def table(rows) -> str:
    keys = [k for k in rows[0] if k not in ("receptive_field", "name", "steps", "train_s")]
    head = "| discriminator | " + " | ".join(keys) + " | train s (wall, shared) |"
    lines = [head, "|---|" + "---:|" * (len(keys) + 1)]
    for r in rows:
        cells = [f"{r[k]:.4f}" if isinstance(r[k], float) else str(r[k]) for k in keys]
        lines.append(f"| {r['name']} | " + " | ".join(cells) + f" | {r['train_s']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", default=",".join(ROWS), help="receptive fields, comma-separated, of: " + ", ".join(ROWS))
    p.add_argument("--steps", type=int, default=400, help="training steps per row (the same for every row)")
    p.add_argument("--size", type=int, default=128, help="patch side in pixels (data.image_size)")
    p.add_argument("--width", type=int, default=16, help="first-layer channels of both networks (paper: 64)")
    p.add_argument("--batch", type=int, default=4, help="batch size (paper: 1)")
    p.add_argument("--n", type=int, default=1000, help="held-out patches per evaluation")
    p.add_argument("--features", default="fashion_mnist", help="feature extractor for FID (gankit eval --features)")
    p.add_argument("--threads", type=int, default=2, help="runtime.threads of each training run")
    p.add_argument("--workers", type=int, default=1, help="rows trained at once, each in its own process")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="patchgan_ablation_runs", help="where the runs are written")
    p.add_argument("--json", help="also write the rows as JSON")
    p.add_argument("--reuse", action="store_true", help="evaluate rows whose run in --out already reached --steps "
                   "instead of training them again")
    args = p.parse_args()
    fields = [f.strip() for f in args.rows.split(",") if f.strip()]
    unknown = [f for f in fields if f not in ROWS]
    if unknown:
        p.error(f"--rows: unknown {', '.join(unknown)}; choose from {', '.join(ROWS)}")
    with concurrent.futures.ThreadPoolExecutor(max(1, args.workers)) as pool:
        rows = list(pool.map(lambda field: row(args, field), fields))
    for r in rows:
        print(json.dumps(r), flush=True)
    print(f"\n{datetime.date.today()}, {cpu_name()}, {args.steps} steps of batch {args.batch} per row, "
          f"{args.size}x{args.size} patches, width {args.width}, FID features {args.features}, "
          f"{args.n} held-out patches\n")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
