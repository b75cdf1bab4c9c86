"""A discriminator that sees only x lets the generator ignore its condition.

"Conditional Generation by GAN" in the lectures: if the discriminator judges x alone, any
realistic x passes, so G(c, z) is free to produce the same kind of output whatever c says.
The discriminator must see the pair (x, c) and also learn that a good x with the wrong c is
bad: the mismatched pairs. The experiment trains the conditional GAN three ways from the
same seed, with the same networks and budget:

* ``image_only``: the discriminator of an unconditional GAN (never sees c);
* ``joint, w=0``: the discriminator sees (x, c), but is never shown mismatched pairs;
* ``joint, w=1``: the lecture's discriminator, with the mismatched pairs (weight 1);

and measures conditional accuracy: the share of samples generated for class c that land in
class c (the nearest mode on ring-8, the shipped classifier on Fashion-MNIST). Chance is one
in the number of classes.

Run ``gankit experiment condition-ignored --out DIR [--data ring8|fashion_mnist]
[--steps N] [--seeds S]``; writes ``DIR/condition_ignored.json`` and ``.png`` (samples of
each setting, coloured or arranged by the condition they were generated for).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch

from . import write_json

__all__ = ["SETTINGS", "run", "main"]

NAME = "condition_ignored"

#: setting -> method overlay
SETTINGS = {
    "image_only": {"design": "image_only", "mismatch_weight": 0.0},
    "joint, w=0": {"design": "joint", "mismatch_weight": 0.0},
    "joint, w=1": {"design": "joint", "mismatch_weight": 1.0},
}

_BASE = {
    "ring8": {"data": {"name": "ring8", "n_samples": 4000},
              "generator": {"name": "mlp", "hidden": 64, "layers": 2, "z_dim": 4},
              "discriminator": {"name": "mlp", "hidden": 64, "layers": 2},
              "optim": {"lr_g": 1e-3, "lr_d": 1e-3},
              "train": {"batch_size": 64}, "steps": 1500, "n_eval": 4000},
    "fashion_mnist": {"data": {"name": "fashion_mnist"}, "train": {"batch_size": 64}, "steps": 3000,
                      "n_eval": 5000},
}


def run(out: Path, data: str = "ring8", steps: Optional[int] = None, seeds: int = 1) -> Dict[str, object]:
    import gankit
    from ..metrics.evaluate import evaluate_run

    base = dict(_BASE[data])
    steps = steps or base.pop("steps")
    base.pop("steps", None)
    n_eval = base.pop("n_eval")
    rows: List[Dict[str, object]] = []
    pictures = {}
    for label, overlay in SETTINGS.items():
        accs = []
        for seed in range(seeds):
            cfg = {k: dict(v) for k, v in base.items()}
            cfg["method"] = {"name": "cgan", **overlay}
            cfg["train"] = {**cfg.get("train", {}), "steps": steps, "seed": seed, "progress": "none",
                            "sample_every": 0, "checkpoint_every": 0, "log_every": 100}
            t0 = time.time()
            r = gankit.train(cfg, out=out / "runs" / f"{overlay['design']}_w{overlay['mismatch_weight']:g}_s{seed}")
            acc = evaluate_run(r, metrics=["conditional_accuracy"], n=n_eval)["conditional_accuracy"]
            accs.append(acc)
            print(f"{label:12s} seed {seed}: conditional accuracy {acc:.3f} ({time.time() - t0:.0f} s)", flush=True)
            if seed == 0:
                pictures[label] = r
        k = r.info.n_classes
        rows.append({"setting": label, **overlay, "conditional_accuracy": accs,
                     "mean": float(sum(accs) / len(accs)), "chance": 1.0 / k})
    res = {"data": data, "steps": steps, "seeds": seeds, "n_eval": n_eval, "rows": rows}
    write_json(out, NAME, res)
    save_figure(pictures, out / f"{NAME}.png")
    return res


def save_figure(runs: Dict[str, object], path: Path) -> Path:
    from ..viz.plots import pyplot, save_figure as write

    plt = pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(4 * len(runs), 4.2), dpi=100)
    for ax, (label, r) in zip(axes, runs.items()):
        k = r.info.n_classes
        if r.info.kind == "vector":
            y = torch.arange(k).repeat_interleave(250)
            x = r.sample(len(y), seed=0, given={"y": y})
            ax.scatter(x[:, 0], x[:, 1], s=2, c=y.numpy(), cmap="tab10", vmin=0, vmax=9)
            ax.scatter(r.data.modes[:, 0], r.data.modes[:, 1], s=60, c=range(k), cmap="tab10", vmin=0, vmax=9,
                       marker="x")
            ax.set_aspect("equal", adjustable="datalim")
        else:
            from torchvision.utils import make_grid

            y = torch.arange(k).repeat_interleave(8)
            x = r.sample(len(y), seed=0, given={"y": y})
            ax.imshow(make_grid(x, nrow=8, padding=1).permute(1, 2, 0).numpy())
            ax.axis("off")
        ax.set_title(f"{label}\n(colour / row: the class asked for)", fontsize=9)
    fig.tight_layout()
    return write(fig, path)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="gankit experiment condition-ignored", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--data", choices=sorted(_BASE), default="ring8")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: 1500 ring8, 3000 fashion_mnist)")
    p.add_argument("--seeds", type=int, default=1)
    a = p.parse_args(argv)
    res = run(Path(a.out), a.data, a.steps, a.seeds)
    for row in res["rows"]:
        print(f"{row['setting']:12s} conditional accuracy {row['mean']:.3f} (chance {row['chance']:.3f})")
    return 0
