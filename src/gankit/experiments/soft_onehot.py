"""A discriminator that reads the generator's distributions tells them from one-hot words at once.

"Improving Sequence Generation by GAN", continuous input for the discriminator: feed D the
generator's softmax outputs instead of sampled words, and everything is differentiable. The
lecture's warning: a real sentence is a sequence of one-hot vectors and a generated one never
is, so D can tell them apart by that alone; the generator is then pushed only to make its
distributions peaked, whatever they say. A Wasserstein critic with a gradient penalty is the
usual answer.

The experiment: SeqGAN's synthetic oracle at a small size (``oracle`` data: an LSTM with N(0,
1) weights whose exact log-probability measures the samples, ``nll_oracle``); one generator
pre-trained by maximum likelihood (``mle``, ``--mle-steps``); from that same start, ``soft_d``
for ``--steps`` steps with each critic (``bce``: a standard discriminator; ``wgan_gp``), all
else equal (seeds, ``d_steps``, learning rates). Per critic, from the runs' metrics (logged
every step): D's accuracy real vs generated (the step it first reaches 99 %, its mean over the
last tenth of the steps), the softness of G's outputs (mean largest probability and entropy,
first step and last), the norm of G's gradient (first and last), and the oracle's NLL of G's
samples and the held-out NLL of G (``nll_test``), at the start and after the run.

Run ``gankit experiment soft-onehot --out DIR``; writes ``DIR/soft_onehot.json`` and ``.png``
(the runs themselves under ``DIR/runs``).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from ..viz.plots import pyplot, save_figure as write_figure
from . import write_json

__all__ = ["run", "main", "CRITICS"]

NAME = "soft_onehot"
CRITICS = ("bce", "wgan_gp")


def _config(out: Path, data: dict, steps: int, method: dict, seed: int, lr_g: float, lr_d: float,
            nets: Optional[dict] = None) -> dict:
    return {"method": method, "data": data, "generator": {"name": "auto"}, **(nets or {}),
            "train": {"steps": steps, "batch_size": 64, "log_every": 1, "sample_every": 0, "checkpoint_every": 0,
                      "progress": "none", "seed": seed},
            "optim": {"lr_g": lr_g, "lr_d": lr_d}, "runtime": {"threads": 1}, "out": str(out)}


def _rows(path: Path) -> List[dict]:
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines() if line.strip()]


def _quality(run, n: int) -> Dict[str, float]:
    from ..metrics.evaluate import evaluate_run

    res = evaluate_run(run, ["nll_oracle", "nll_test"], n=n)
    return {"nll_oracle": float(res["nll_oracle"]), "nll_test": float(res["nll_test"])}


def run(out=None, steps: int = 150, mle_steps: int = 300, seed: int = 0, vocab: int = 30, length: int = 10,
        n_samples: int = 2000, n_eval: int = 1000, d_steps: int = 3, lr_g: float = 1e-3, lr_d: float = 1e-3,
        critics: Sequence[str] = CRITICS) -> Dict[str, object]:
    """Train the MLE start and one soft_d run per critic under ``out`` (a temporary folder when
    None); returns the numbers."""
    import tempfile

    import gankit

    t0 = time.perf_counter()
    tmp = None
    if out is None:
        tmp = tempfile.mkdtemp(prefix="soft_onehot_")
        runs = Path(tmp)
    else:
        runs = Path(out) / "runs"
        if runs.exists():
            shutil.rmtree(runs)
        runs.mkdir(parents=True)
    try:
        data = {"name": "oracle", "n_samples": n_samples, "n_test": n_eval, "vocab": vocab, "length": length}
        mle = gankit.train(_config(runs / "mle", data, mle_steps, {"name": "mle"}, seed, 1e-2, lr_d))
        start = _quality(mle, n_eval)
        res: Dict[str, object] = {"start": start, "critics": {}}
        for critic in critics:
            method = {"name": "soft_d", "critic": critic, "d_steps": d_steps, "init": str(mle.path)}
            r = gankit.train(_config(runs / critic, data, steps, method, seed, lr_g, lr_d,
                                     {"discriminator": {"name": "auto"}}))
            rows = [row for row in _rows(r.path) if "d_acc" in row]
            acc = [row["d_acc"] for row in rows]
            tail = acc[-max(1, len(acc) // 10):]
            reached = next((row["step"] for row in rows if row["d_acc"] >= 0.99), None)
            res["critics"][critic] = {
                "d_acc": acc, "d_loss": [row["d_loss"] for row in rows],
                "max_prob": [row["max_prob"] for row in rows], "entropy": [row["entropy"] for row in rows],
                "g_grad": [row["g_grad"] for row in rows],
                "steps_to_99": reached, "d_acc_last_tenth": sum(tail) / len(tail),
                "max_prob_first": rows[0]["max_prob"], "max_prob_last": rows[-1]["max_prob"],
                "entropy_first": rows[0]["entropy"], "entropy_last": rows[-1]["entropy"],
                "g_grad_first": rows[0]["g_grad"], "g_grad_last": rows[-1]["g_grad"],
                **{f"{k}_after": v for k, v in _quality(r, n_eval).items()},
            }
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    res["settings"] = {"steps": steps, "mle_steps": mle_steps, "seed": seed, "vocab": vocab, "length": length,
                       "n_samples": n_samples, "n_eval": n_eval, "d_steps": d_steps, "lr_g": lr_g, "lr_d": lr_d,
                       "batch_size": 64, "generator": "lstm (embed 32, hidden 32)",
                       "discriminator": "seq_cnn (defaults)"}
    res["seconds"] = time.perf_counter() - t0
    if out is not None:
        folder = write_json(out, NAME, res)
        save_figure(res, folder / f"{NAME}.png")
    return res


def table(res: Dict[str, object]) -> str:
    """The result as a Markdown table."""
    s = res["start"]
    lines = ["| critic | D accuracy: step reaching 99 % | D accuracy, last tenth | G max-probability first -> last "
             "| G entropy (nats) first -> last | G gradient norm first -> last | NLL_oracle start -> after "
             "| nll_test start -> after |",
             "|---|---|---|---|---|---|---|---|"]
    for name, c in res["critics"].items():
        lines.append(f"| {name} | {c['steps_to_99'] if c['steps_to_99'] is not None else 'never'} "
                     f"| {c['d_acc_last_tenth']:.3f} | {c['max_prob_first']:.3f} -> {c['max_prob_last']:.3f} "
                     f"| {c['entropy_first']:.3f} -> {c['entropy_last']:.3f} "
                     f"| {c['g_grad_first']:.3g} -> {c['g_grad_last']:.3g} "
                     f"| {s['nll_oracle']:.3f} -> {c['nll_oracle_after']:.3f} "
                     f"| {s['nll_test']:.3f} -> {c['nll_test_after']:.3f} |")
    return "\n".join(lines)


def save_figure(res: Dict[str, object], path) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for name, c in res["critics"].items():
        steps = range(1, len(c["d_acc"]) + 1)
        axes[0].plot(steps, c["d_acc"], label=name)
        axes[1].plot(steps, c["max_prob"], label=name)
        axes[2].plot(steps, c["g_grad"], label=name)
    for ax, title in zip(axes, ("D accuracy (real one-hot vs soft)", "G's mean max-probability",
                                "norm of G's gradient")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    axes[2].set_yscale("log")
    fig.tight_layout()
    return write_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=f"python -m gankit.experiments.{NAME}",
                                description="A discriminator over G's softmax outputs against one-hot real "
                                "sequences: bce vs wgan_gp from one MLE start on a small oracle.")
    p.add_argument("--out", required=True, help=f"folder for {NAME}.json, .png and the runs")
    p.add_argument("--steps", type=int, default=150, help="soft_d steps per critic")
    p.add_argument("--mle-steps", type=int, default=300, help="maximum-likelihood steps of the shared start")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vocab", type=int, default=30)
    p.add_argument("--length", type=int, default=10)
    p.add_argument("--d-steps", type=int, default=3)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    res = run(out=a.out, steps=a.steps, mle_steps=a.mle_steps, seed=a.seed, vocab=a.vocab, length=a.length,
              d_steps=a.d_steps)
    print(table(res))
    print(f"wrote {Path(a.out) / (NAME + '.json')} and .png ({res['seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
