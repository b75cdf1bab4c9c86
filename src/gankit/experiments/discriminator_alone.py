"""Can a discriminator generate by itself? Yes, by x = argmax D(x), if it saw good negatives.

The lecture ("GAN as structured learning"): a discriminator D(x) that scores how real x is
can generate, by searching for the x it likes best, but to learn where to score low it needs
negative examples, and random ones are not enough: the space is large, and D stays high
wherever no negative ever went. The fix is to iterate: generate x = argmax D(x) with the
current D, take those as negatives, train D again, and repeat: D's own favourite mistakes
are the hard negatives. (With a generator doing the argmax this becomes a GAN.)

Here on ring-8 (8 Gaussians on the unit circle, std 0.05: five times the ``modes`` protocol's,
so that a small MLP can resolve a mode), with one MLP discriminator
(2 -> 128 -> 128 -> 1, softplus units so its score has a smooth gradient) trained with the
logistic loss, real ring-8 points against negatives:

* ``random``: negatives uniform on the square [-2, 2]^2, ``--rounds`` x ``--steps`` steps;
* ``hard``: the same first ``--steps`` steps, then ``--rounds - 1`` rounds that each draw
  ``--n`` (1,000) argmax samples of the current D, add them to a pool of negatives (half of every
  negative batch from the pool, half uniform), and train ``--steps`` more steps: the same
  number of updates as ``random``.

Generation (``argmax_samples``): ``--n`` starting points uniform on [-1.5, 1.5]^2, then
``--ascent`` steps of Adam (learning rate 0.01) up D's logit, each point on its own. Scored
by ``metrics.modes.toy_mode_stats``: high-quality fraction (within 3 std of a mode), modes
captured and reverse KL, plus the mean distance to the nearest mode.

    gankit experiment discriminator-alone --out DIR
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Dict, Optional

import torch
from torch import nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..viz.plots import pyplot, save_figure
from . import write_json

__all__ = ["critic", "argmax_samples", "train", "quality", "run", "table", "main", "NAME"]

NAME = "discriminator_alone"
N_SAMPLES = 1000
BOX = 2.0          # negatives are uniform on [-BOX, BOX]^2
START = 1.5        # argmax searches start uniform on [-START, START]^2
STD = 0.05         # the spread of each ring-8 mode (five times the PacGAN protocol's)


def _ring(seed: int, split: str = "train", n: int = N_SAMPLES):
    from ..data.toy import ring8

    return ring8(n_samples=n, seed=seed, split=split, std=STD)


def critic(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 128), nn.Softplus(beta=5.0), nn.Linear(128, 128), nn.Softplus(beta=5.0),
                         nn.Linear(128, 1))


def argmax_samples(d: nn.Module, n: int, steps: int, gen: torch.Generator, lr: float = 0.01) -> torch.Tensor:
    """``n`` local maxima of D's logit found by Adam from uniform starting points."""
    x = ((torch.rand(n, 2, generator=gen) * 2 - 1) * START).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    for p in d.parameters():
        p.requires_grad_(False)
    try:
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            (-d(x).sum()).backward()     # each point climbs its own score
            opt.step()
    finally:
        for p in d.parameters():
            p.requires_grad_(True)
    return x.detach()


def _fit(d: nn.Module, opt, real: torch.Tensor, pool: Optional[torch.Tensor], steps: int, gen: torch.Generator,
         batch: int = 256) -> float:
    loss = torch.zeros(())
    for _ in range(steps):
        xr = real[torch.randint(0, len(real), (batch,), generator=gen)]
        neg = (torch.rand(batch, 2, generator=gen) * 2 - 1) * BOX
        if pool is not None:
            half = batch // 2
            neg[:half] = pool[torch.randint(0, len(pool), (half,), generator=gen)]
        loss = F.softplus(-d(xr)).mean() + F.softplus(d(neg)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return float(loss.detach())


def train(kind: str, rounds: int, steps: int, ascent: int, seed: int = 0, n: int = N_SAMPLES) -> Dict[str, object]:
    """Train D with ``random`` or ``hard`` negatives; returns D, its argmax samples and the pool."""
    if kind not in ("random", "hard"):
        raise ConfigError(f"negatives must be random or hard, got '{kind}'")
    real = _ring(seed, n=20_000).x.float()
    gen = torch.Generator().manual_seed(seed)
    d = critic(seed)
    opt = torch.optim.Adam(d.parameters(), lr=1e-3)
    pool = None
    history = []
    for r in range(rounds):
        _fit(d, opt, real, pool, steps, gen)
        if kind == "hard" and r < rounds - 1:
            x = argmax_samples(d, n, ascent, gen)
            history.append(quality(x))
            pool = x if pool is None else torch.cat([pool, x])
    x = argmax_samples(d, n, ascent, torch.Generator().manual_seed(10_000 + seed))
    return {"critic": d, "samples": x, "history": history, "pool": pool}


def quality(x: torch.Tensor) -> Dict[str, float]:
    from ..metrics import toy_mode_stats

    data = _ring(0, n=8)
    s = toy_mode_stats(x, data.modes, data.mode_stds)
    dist = torch.cdist(x.double(), data.modes.double()).min(dim=1).values
    return {"high_quality": float(s["high_quality"]), "modes": int(s["modes_captured"]),
            "reverse_kl": float(s["reverse_kl"]), "mean_distance": float(dist.mean()),
            "median_distance": float(dist.median())}


def run(rounds: int = 4, steps: int = 400, ascent: int = 150, seed: int = 0, out: Optional[str] = None,
        n: int = N_SAMPLES) -> Dict[str, object]:
    if rounds < 2 or steps < 1 or ascent < 1 or n < 10:
        raise ConfigError("--rounds must be at least 2 (one round has no hard negatives yet), "
                          "--steps and --ascent at least 1, --n at least 10")
    t0 = time.perf_counter()
    runs = {k: train(k, rounds, steps, ascent, seed, n) for k in ("random", "hard")}
    rows = {k: {**quality(r["samples"]), "rounds": [h for h in r["history"]]} for k, r in runs.items()}
    res = {"rounds": rounds, "steps": steps, "ascent": ascent, "seed": seed, "n": n, "rows": rows,
           "seconds": round(time.perf_counter() - t0, 1)}
    if out is not None:
        _figure(runs, rows, write_json(out, NAME, res) / f"{NAME}.png")
    return res


def table(res: Dict[str, object]) -> str:
    lines = [f"| negatives ({res['rounds']} x {res['steps']} D steps) | high quality % | modes | reverse KL "
             "| mean distance to a mode |", "|---|---|---|---|---|"]
    for k, r in res["rows"].items():
        lines.append(f"| {k} | {100 * r['high_quality']:.1f} | {r['modes']} | {r['reverse_kl']:.3f} "
                     f"| {r['mean_distance']:.4f} |")
    return "\n".join(lines)


def _figure(runs, rows, path) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.4))
    g = torch.linspace(-1.5, 1.5, 201)
    gx, gy = torch.meshgrid(g, g, indexing="xy")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    modes = _ring(0, n=8).modes.numpy()
    for ax, (k, r) in zip(axes, runs.items()):
        with torch.no_grad():
            score = r["critic"](grid).reshape(201, 201).numpy()
        ax.imshow(score, origin="lower", extent=(-1.5, 1.5, -1.5, 1.5), cmap="viridis")
        x = r["samples"].numpy()
        ax.scatter(x[:, 0], x[:, 1], s=1, c="w", alpha=0.5)
        ax.scatter(modes[:, 0], modes[:, 1], s=14, c="r", marker="x")
        ax.set_xlim(-1.5, 1.5)
        ax.set_ylim(-1.5, 1.5)
        ax.set_title(f"{k} negatives: D's logit and argmax samples\n{100 * rows[k]['high_quality']:.0f}% high "
                     f"quality, {rows[k]['modes']} modes", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="gankit experiment discriminator-alone", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help=f"folder for {NAME}.json and {NAME}.png")
    p.add_argument("--rounds", type=int, default=4, help="training rounds (hard: each after the first adds negatives)")
    p.add_argument("--steps", type=int, default=400, help="discriminator steps per round")
    p.add_argument("--ascent", type=int, default=150, help="gradient-ascent steps of each argmax search")
    p.add_argument("--n", type=int, default=N_SAMPLES, help="argmax samples per round and scored")
    p.add_argument("--threads", type=int, default=1, help="torch threads (small networks: 1 is fastest)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {a.threads}")
    torch.set_num_threads(a.threads)
    res = run(a.rounds, a.steps, a.ascent, a.seed, a.out, a.n)
    print(table(res))
    print(f"wrote {a.out}/{NAME}.json and .png ({res['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
