"""JS divergence vs Wasserstein distance between two parallel line segments (WGAN, Example 1).

P is the segment {(0, u): u ~ U[0, 1]}, Q_theta the segment {(theta, u)}.  For every
theta != 0 the supports are disjoint, so

* JSD(P || Q_theta) = log 2, whatever theta: a GAN discriminator separates them perfectly,
  the optimal value max_D V(D, G) = 2 JSD - log 4 = 0, and a generator at theta = 2 gets no
  better signal than one at theta = 0.1 (the lecture's "JS divergence is always log 2 when
  the supports do not overlap");
* W(P, Q_theta) = |theta|, which does tell how far apart the segments are.

For each theta the experiment trains a *fresh* MLP discriminator with the GAN loss
(:func:`gankit.objectives.adversarial.gan_d_loss`, Adam, ``d_steps`` steps on fresh
batches) and reports the loss-based estimate ``js_estimate = log 2 - d_loss / 2`` (d_loss =
-V on a large held-out batch; since V <= 2 JSD - log 4, this is a lower bound on JSD that is
tight at the optimal D), and a fresh MLP critic trained with the WGAN-GP loss
(:func:`wasserstein_critic_loss` + :func:`gradient_penalty`, ``critic_steps`` steps) whose
estimate is ``w_estimate = E_P[f] - E_Q[f]``.

Keys: ``thetas``, ``js_estimate``, ``w_estimate``, ``d_loss``, ``log_2``, ``true_w``,
``js_max_dev_far`` (max |js_estimate - log 2| over |theta| >= 0.5), ``w_max_rel_err_far``
(max |w_estimate / |theta| - 1| over |theta| >= 0.5), settings and ``seconds``.

Run ``python -m gankit.experiments.js_vs_wasserstein --out DIR``; writes
``DIR/js_vs_wasserstein.json`` and ``.png``.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch

from ..nets.mlp import mlp_discriminator
from ..objectives.adversarial import gan_d_loss, wasserstein_critic_loss
from ..objectives.penalties import gradient_penalty
from ..viz.plots import pyplot, save_figure as write_figure
from . import write_json

__all__ = ["segment", "js_estimate", "wasserstein_estimate", "run", "save_figure", "main"]

NAME = "js_vs_wasserstein"
DEFAULT_THETAS = (-2.0, -1.0, -0.5, -0.1, 0.1, 0.5, 1.0, 2.0)


def segment(theta: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """n points (theta, u), u ~ U[0, 1]."""
    u = torch.rand(n, 1, generator=generator)
    return torch.cat([torch.full_like(u, float(theta)), u], dim=1)


def js_estimate(theta: float, steps: int = 300, batch: int = 256, lr: float = 2e-3, hidden: int = 64,
                seed: int = 0) -> Dict[str, float]:
    """Train a fresh GAN discriminator P vs Q_theta; returns its held-out d_loss and log 2 - d_loss / 2."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    disc = mlp_discriminator((2,), hidden=hidden, layers=2)
    opt = torch.optim.Adam(disc.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        gan_d_loss(disc(segment(0.0, batch, g)), disc(segment(theta, batch, g))).backward()
        opt.step()
    with torch.no_grad():
        d_loss = float(gan_d_loss(disc(segment(0.0, 8192, g)), disc(segment(theta, 8192, g))))
    return {"d_loss": d_loss, "js": math.log(2.0) - d_loss / 2.0}


def wasserstein_estimate(theta: float, steps: int = 300, batch: int = 256, lr: float = 1e-3, hidden: int = 64,
                         gp_weight: float = 10.0, seed: int = 0) -> float:
    """Train a fresh WGAN-GP critic P vs Q_theta; returns E_P[f] - E_Q[f] on a held-out batch."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    critic = mlp_discriminator((2,), hidden=hidden, layers=2)
    opt = torch.optim.Adam(critic.parameters(), lr=lr, betas=(0.5, 0.9))
    for _ in range(steps):
        real, fake = segment(0.0, batch, g), segment(theta, batch, g)
        opt.zero_grad()
        loss = wasserstein_critic_loss(critic(real), critic(fake))
        (loss + gradient_penalty(critic, real, fake, weight=gp_weight, generator=g)).backward()
        opt.step()
    with torch.no_grad():
        return -float(wasserstein_critic_loss(critic(segment(0.0, 8192, g)), critic(segment(theta, 8192, g))))


def run(out: Optional[str] = None, seed: int = 0, thetas: Sequence[float] = DEFAULT_THETAS,
        d_steps: int = 300, critic_steps: int = 300, batch: int = 256, hidden: int = 64) -> Dict[str, object]:
    """Estimate JSD and W for every theta; write ``js_vs_wasserstein.json``/``.png`` under ``out`` when given."""
    t0 = time.perf_counter()
    thetas = [float(t) for t in thetas]
    js, dl, w = [], [], []
    for i, th in enumerate(thetas):
        r = js_estimate(th, steps=d_steps, batch=batch, hidden=hidden, seed=seed * 1000 + i)
        js.append(r["js"])
        dl.append(r["d_loss"])
        w.append(wasserstein_estimate(th, steps=critic_steps, batch=batch, hidden=hidden, seed=seed * 1000 + i))
    far = [i for i, th in enumerate(thetas) if abs(th) >= 0.5]
    res: Dict[str, object] = {
        "thetas": thetas, "js_estimate": js, "d_loss": dl, "w_estimate": w,
        "log_2": math.log(2.0), "true_w": [abs(t) for t in thetas],
        "js_max_dev_far": max((abs(js[i] - math.log(2.0)) for i in far), default=float("nan")),
        "w_max_rel_err_far": max((abs(w[i] / abs(thetas[i]) - 1.0) for i in far), default=float("nan")),
        "d_steps": d_steps, "critic_steps": critic_steps, "batch": batch, "hidden": hidden, "seed": seed,
        "seconds": time.perf_counter() - t0,
    }
    if out is not None:
        _write(res, out)
    return res


def save_figure(res: Dict[str, object], path) -> Path:
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    th = res["thetas"]
    ax = axes[0]
    ax.plot(th, res["js_estimate"], "o-", color="tab:red", label="GAN discriminator: log 2 - d_loss/2")
    ax.axhline(res["log_2"], color="k", ls="--", lw=0.8, label="true JSD = log 2 (theta != 0)")
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("theta")
    ax.set_ylabel("JS divergence estimate")
    ax.set_title("JS: flat in theta (no signal for the generator)", fontsize=10)
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.plot(th, res["w_estimate"], "o-", color="tab:blue", label="WGAN-GP critic: E_P f - E_Q f")
    ax.plot(th, res["true_w"], "k--", lw=0.8, label="true W = |theta|")
    ax.set_xlabel("theta")
    ax.set_ylabel("Wasserstein estimate")
    ax.set_title("Wasserstein: grows with |theta|", fontsize=10)
    ax.legend(fontsize=8)
    fig.suptitle("P = (0, u), Q_theta = (theta, u), u ~ U[0, 1]", fontsize=10)
    fig.tight_layout()
    return write_figure(fig, path)


def _write(res: Dict[str, object], out) -> None:
    save_figure(res, write_json(out, NAME, res) / f"{NAME}.png")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=f"python -m gankit.experiments.{NAME}",
                                description="JS divergence vs Wasserstein distance on parallel line segments.")
    p.add_argument("--out", required=True, help=f"folder for {NAME}.json and .png")
    p.add_argument("--thetas", type=float, nargs="+", default=list(DEFAULT_THETAS))
    p.add_argument("--d-steps", type=int, default=300)
    p.add_argument("--critic-steps", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    torch.set_num_threads(1)  # tiny networks: one thread is faster than two contended ones
    res = run(out=a.out, seed=a.seed, thetas=a.thetas, d_steps=a.d_steps, critic_steps=a.critic_steps)
    print(f"{'theta':>7} {'JS est':>8} {'W est':>8} {'|theta|':>8}")
    for th, js, w in zip(res["thetas"], res["js_estimate"], res["w_estimate"]):
        print(f"{th:7.2f} {js:8.4f} {w:8.4f} {abs(th):8.4f}")
    print(f"log 2 = {res['log_2']:.4f}; |theta| >= 0.5: max |JS - log 2| {res['js_max_dev_far']:.4f}, "
          f"max |W/|theta| - 1| {res['w_max_rel_err_far']:.3f}")
    print(f"wrote {Path(a.out) / (NAME + '.json')} and .png ({res['seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
