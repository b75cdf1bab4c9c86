"""Three ways to keep a Wasserstein critic smooth, side by side (the lecture's "Tips").

A critic (an MLP) is trained with the Wasserstein objective to tell ring8 data from a fixed
generated distribution (a Gaussian blob at the centre), kept 1-Lipschitz in one of three
ways:

* ``clip``: weight clipping to [-c, c] (WGAN): most weights pile up at +-c and the critic
  is pushed towards simple functions with small gradients;
* ``gradient``: the gradient penalty (WGAN-GP) on interpolates between the two samples:
  gradient norms there settle at about 1;
* ``spectral``: spectral normalisation of every layer (SNGAN): every layer has spectral
  norm 1, so the gradient norm is at most 1 everywhere.

Reported per critic: the fraction of weights within 1% of the clipping bound, gradient-norm
statistics on real, generated and interpolated points, and the Wasserstein estimate
E_P[f] - E_Q[f]; the PNG shows the weight histograms and the critic surfaces.

    gankit experiment lipschitz --out DIR
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Dict, Optional

import torch

from ..data.toy import ring8
from ..nets.mlp import mlp_discriminator
from ..objectives.adversarial import wasserstein_critic_loss
from ..objectives.penalties import clip_weights_, gradient_penalty, spectral_norm_all
from ..viz.plots import pyplot, save_figure as write_figure
from . import write_json

__all__ = ["run", "main", "NAME"]

NAME = "lipschitz"
METHODS = ("clip", "gradient", "spectral")


def _grad_norms(critic, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x).sum(), x)
    return g.norm(dim=1)


def _train_critic(method: str, real: torch.Tensor, fake: torch.Tensor, steps: int, clip: float, seed: int):
    torch.manual_seed(seed)
    critic = mlp_discriminator((2,), hidden=64, layers=3, activation="leaky_relu")
    if method == "spectral":
        spectral_norm_all(critic)
    if method == "clip":
        opt = torch.optim.RMSprop(critic.parameters(), lr=1e-3)
    else:
        opt = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.0, 0.9))
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        r = real[torch.randint(len(real), (256,), generator=g)]
        f = fake[torch.randint(len(fake), (256,), generator=g)]
        loss = wasserstein_critic_loss(critic(r), critic(f))
        if method == "gradient":
            loss = loss + gradient_penalty(critic, r, f, weight=10.0, generator=g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if method == "clip":
            clip_weights_(critic, clip)
    return critic


def run(out: Optional[str] = None, seed: int = 0, steps: int = 1000, clip: float = 0.01) -> Dict[str, object]:
    t0 = time.perf_counter()
    real = ring8(n_samples=4000, seed=seed).x
    g = torch.Generator().manual_seed(seed + 1)
    fake = 0.3 * torch.randn(4000, 2, generator=g)
    eps = torch.rand(4000, 1, generator=g)
    between = eps * real + (1 - eps) * fake
    res: Dict[str, object] = {"steps": steps, "clip": clip, "seed": seed}
    critics = {}
    for method in METHODS:
        critic = _train_critic(method, real, fake, steps, clip, seed)
        critics[method] = critic
        weights = torch.cat([p.detach().flatten() for n, p in critic.named_parameters() if "weight" in n
                             or "original" in n])
        with torch.no_grad():
            w_est = (critic(real).mean() - critic(fake).mean()).item()
        norms = {name: _grad_norms(critic, x) for name, x in (("real", real), ("fake", fake), ("between", between))}
        res[method] = {
            "wasserstein_estimate": w_est,
            "weight_abs_max": float(weights.abs().max()),
            **{f"grad_{k}_mean": float(v.mean()) for k, v in norms.items()},
            "grad_max": float(torch.cat(list(norms.values())).max()),
        }
        if method == "clip":
            res[method]["weights_at_bound"] = float((weights.abs() >= 0.99 * clip).float().mean())
    res["seconds"] = round(time.perf_counter() - t0, 2)
    if out is not None:
        _figure(res, critics, real, fake, clip, write_json(out, NAME, res) / f"{NAME}.png")
    return res


def _figure(res, critics, real, fake, clip, path) -> Path:
    plt = pyplot()

    fig, axes = plt.subplots(2, 3, figsize=(12, 7))
    xs = torch.linspace(-1.6, 1.6, 120)
    gx, gy = torch.meshgrid(xs, xs, indexing="xy")
    grid = torch.stack([gx.flatten(), gy.flatten()], 1)
    for col, method in enumerate(METHODS):
        critic = critics[method]
        weights = torch.cat([p.detach().flatten() for n, p in critic.named_parameters() if "weight" in n
                             or "original" in n]).numpy()
        ax = axes[0, col]
        ax.hist(weights, bins=60, color="tab:blue")
        if method == "clip":
            ax.axvline(-clip, color="k", ls=":")
            ax.axvline(clip, color="k", ls=":")
        r = res[method]
        at_bound = f" ({100 * r['weights_at_bound']:.0f}% at +-c)" if "weights_at_bound" in r else ""
        ax.set_title(f"{method}: weight histogram{at_bound}", fontsize=9)
        with torch.no_grad():
            z = critic(grid).reshape(120, 120).numpy()
        ax = axes[1, col]
        ax.contourf(gx.numpy(), gy.numpy(), z, levels=30, cmap="viridis")
        ax.scatter(real[:400, 0], real[:400, 1], s=2, c="w")
        ax.scatter(fake[:400, 0], fake[:400, 1], s=2, c="tab:red")
        ax.set_title(f"critic surface; |grad| between {r['grad_between_mean']:.2f}, W est {r['wasserstein_estimate']:.3f}",
                     fontsize=8)
        ax.set_aspect("equal")
    fig.suptitle("Keeping a Wasserstein critic smooth: clipping vs gradient penalty vs spectral norm", fontsize=10)
    fig.tight_layout()
    return write_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="gankit experiment lipschitz", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help=f"folder for {NAME}.json and {NAME}.png")
    p.add_argument("--steps", type=int, default=1000, help="critic training steps")
    p.add_argument("--clip", type=float, default=0.01, help="weight-clipping bound c")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    res = run(a.out, seed=a.seed, steps=a.steps, clip=a.clip)
    for method in METHODS:
        r = res[method]
        bound = f"weights at +-c {r['weights_at_bound']:.2f}  " if "weights_at_bound" in r else ""
        print(f"{method:<9} {bound}|grad| real {r['grad_real_mean']:.3f} "
              f"fake {r['grad_fake_mean']:.3f} between {r['grad_between_mean']:.3f} max {r['grad_max']:.3f}  "
              f"W estimate {r['wasserstein_estimate']:.4f}")
    print(f"wrote {a.out}/{NAME}.json and .png ({res['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
