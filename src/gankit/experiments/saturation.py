"""Minimax vs non-saturating generator loss: who gets a gradient when D rejects every sample.

The lecture's "in practice" remark (Theory behind GAN) and Goodfellow et al. (2014, Sec. 3):
early in training D confidently rejects generated samples, D(G(z)) ~ 0, and the minimax
generator loss log(1 - D(G(z))) is flat there, while -log D(G(z)) is steep.

With the logit l (D = sigmoid(l)) the two losses are
``minimax_g_loss = -softplus(l)`` and ``nonsaturating_g_loss = softplus(-l)``, so

* d/dl minimax        = -sigmoid(l)     = -D(G(z))       -> 0 as D(G(z)) -> 0;
* d/dl non-saturating = -(1 - sigmoid(l)) = -(1 - D(G(z))) -> -1 as D(G(z)) -> 0.

Both push l up (same sign, same fixed point); only the size differs.  The experiment:

(a) the closed forms |dL/dl| against D(G(z)) in (0, 1), checked against autograd through
    gankit's loss functions;
(b) one small GAN (MLP generator and discriminator) on ``gaussian1d`` (mean 4, std 0.5).
    The generator starts near 0; the discriminator is pre-trained for ``pretrain_steps``
    steps against that generator so that it confidently rejects its samples.  From that
    same starting point (same weights, same noise) the GAN is trained for ``steps`` steps
    with each generator objective: one Adam step for D, then one plain SGD step for G (plain
    SGD so that the size of the gradient is what moves G: Adam would divide it out).
    Recorded: the generator's parameter-gradient norm at every step and the distance
    |mean(G(z)) - 4| over training.

Keys of the result: ``grad_norm_first_minimax`` / ``grad_norm_first_nonsaturating`` (mean
generator gradient norm over the first ``n_first`` steps), ``grad_ratio_first``
(non-saturating / minimax), ``final_distance_minimax`` / ``final_distance_nonsaturating``,
``d_fake_at_start`` (mean D(G(z)) after pre-training), the curves and settings.

Run ``python -m gankit.experiments.saturation --out DIR``; writes ``DIR/saturation.json``
and ``.png``.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch

from ..data.toy import gaussian1d
from ..nets.mlp import mlp_discriminator, mlp_generator
from ..objectives.adversarial import gan_d_loss, minimax_g_loss, nonsaturating_g_loss
from ..viz.plots import pyplot, save_figure as write_figure
from . import write_json

__all__ = ["closed_form_gradients", "run", "save_figure", "main"]

NAME = "saturation"
G_LOSSES = {"minimax": minimax_g_loss, "nonsaturating": nonsaturating_g_loss}


def closed_form_gradients(d: np.ndarray) -> Dict[str, np.ndarray]:
    """|d loss / d logit| of each generator loss at D(G(z)) = d: minimax d, non-saturating 1 - d."""
    d = np.asarray(d, dtype=np.float64)
    return {"minimax": d, "nonsaturating": 1.0 - d}


def _autograd_check(d: np.ndarray) -> float:
    """Largest gap between the closed forms and autograd through gankit's loss functions."""
    logits = torch.logit(torch.as_tensor(d, dtype=torch.float64)).requires_grad_(True)
    worst = 0.0
    closed = closed_form_gradients(d)
    for name, fn in G_LOSSES.items():
        (g,) = torch.autograd.grad(fn(logits) * len(d), logits)  # undo the batch mean
        worst = max(worst, float(np.max(np.abs(np.abs(g.numpy()) - closed[name]))))
    return worst


def _grad_norm(module: torch.nn.Module) -> float:
    return float(torch.sqrt(sum(p.grad.pow(2).sum() for p in module.parameters() if p.grad is not None)))


def run(out: Optional[str] = None, seed: int = 0, steps: int = 300, pretrain_steps: int = 300,
        n_first: int = 20, batch: int = 256, g_lr: float = 0.05, d_lr: float = 1e-3,
        hidden: int = 32) -> Dict[str, object]:
    """Run both parts; write ``saturation.json``/``.png`` under ``out`` when given."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    data = gaussian1d(mean=4.0, std=0.5, n_samples=20_000, seed=seed).x
    gen0 = mlp_generator((1,), z_dim=4, hidden=hidden, layers=2)
    disc0 = mlp_discriminator((1,), hidden=hidden, layers=2)
    with torch.no_grad():                      # start the generator near 0
        gen0.out.weight.mul_(0.1)
        gen0.out.bias.zero_()

    # pre-train D against the frozen initial generator, until it confidently rejects its samples
    g = torch.Generator().manual_seed(seed + 1)
    opt_d = torch.optim.Adam(disc0.parameters(), lr=d_lr, betas=(0.5, 0.999))
    for _ in range(pretrain_steps):
        real = data[torch.randint(len(data), (batch,), generator=g)]
        with torch.no_grad():
            fake = gen0(torch.randn(batch, 4, generator=g))
        opt_d.zero_grad()
        gan_d_loss(disc0(real), disc0(fake)).backward()
        opt_d.step()
    z_eval = torch.randn(1024, 4, generator=g)
    with torch.no_grad():
        d_fake_start = float(torch.sigmoid(disc0(gen0(z_eval))).mean())
        initial_distance = abs(float(gen0(z_eval).mean()) - 4.0)
    d_state = copy.deepcopy(opt_d.state_dict())

    curves: Dict[str, Dict[str, list]] = {}
    for name, g_loss in G_LOSSES.items():
        gen, disc = copy.deepcopy(gen0), copy.deepcopy(disc0)
        od = torch.optim.Adam(disc.parameters(), lr=d_lr, betas=(0.5, 0.999))
        od.load_state_dict(d_state)
        og = torch.optim.SGD(gen.parameters(), lr=g_lr)
        gs = torch.Generator().manual_seed(seed + 2)       # same noise for both objectives
        norms, dist, dfake = [], [], []
        for _ in range(steps):
            real = data[torch.randint(len(data), (batch,), generator=gs)]
            z = torch.randn(batch, 4, generator=gs)
            od.zero_grad()
            gan_d_loss(disc(real), disc(gen(z).detach())).backward()
            od.step()
            og.zero_grad()
            logits = disc(gen(torch.randn(batch, 4, generator=gs)))
            g_loss(logits).backward()
            norms.append(_grad_norm(gen))
            og.step()
            with torch.no_grad():
                x = gen(z_eval)
                dist.append(abs(float(x.mean()) - 4.0))
                dfake.append(float(torch.sigmoid(logits).mean()))
        curves[name] = {"grad_norm": norms, "distance": dist, "d_fake": dfake}

    d_grid = np.linspace(1e-4, 1 - 1e-4, 201)
    first = {k: float(np.mean(v["grad_norm"][:n_first])) for k, v in curves.items()}
    res: Dict[str, object] = {
        "d_fake_at_start": d_fake_start,
        "grad_norm_first_minimax": first["minimax"],
        "grad_norm_first_nonsaturating": first["nonsaturating"],
        "grad_ratio_first": first["nonsaturating"] / max(first["minimax"], 1e-30),
        "final_distance_minimax": curves["minimax"]["distance"][-1],
        "final_distance_nonsaturating": curves["nonsaturating"]["distance"][-1],
        "initial_distance": initial_distance,
        "closed_form_autograd_max_error": _autograd_check(d_grid),
        "closed_form": {"d": d_grid.tolist(), **{k: v.tolist() for k, v in closed_form_gradients(d_grid).items()}},
        "curves": curves,
        "steps": steps, "pretrain_steps": pretrain_steps, "n_first": n_first, "batch": batch,
        "g_lr": g_lr, "d_lr": d_lr, "hidden": hidden, "seed": seed,
        "seconds": time.perf_counter() - t0,
    }
    if out is not None:
        _write(res, out)
    return res


def save_figure(res: Dict[str, object], path) -> Path:
    plt = pyplot()

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    cf = res["closed_form"]
    ax = axes[0]
    ax.plot(cf["d"], cf["minimax"], label="minimax  log(1 - D): |dL/dl| = D", color="tab:red")
    ax.plot(cf["d"], cf["nonsaturating"], label="non-saturating  -log D: |dL/dl| = 1 - D", color="tab:blue")
    ax.axvline(res["d_fake_at_start"], color="k", ls=":", lw=0.8, label="D(G(z)) after pre-training")
    ax.set_yscale("log")
    ax.set_xlabel("D(G(z))")
    ax.set_ylabel("|d loss / d logit|")
    ax.legend(fontsize=8)
    ax.set_title("gradient w.r.t. D's logit", fontsize=10)
    colors = {"minimax": "tab:red", "nonsaturating": "tab:blue"}
    for name, c in res["curves"].items():
        axes[1].plot(c["grad_norm"], color=colors[name], label=name)
        axes[2].plot(c["distance"], color=colors[name], label=name)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("||grad_theta L_G||")
    axes[1].set_title(f"generator gradient norm (first {res['n_first']} steps: ratio "
                      f"{res['grad_ratio_first']:.3g})", fontsize=10)
    axes[1].legend(fontsize=8)
    axes[2].set_xlabel("step")
    axes[2].set_ylabel("|mean G(z) - 4|")
    axes[2].set_title(f"distance to data: minimax {res['final_distance_minimax']:.2f}, "
                      f"non-sat. {res['final_distance_nonsaturating']:.2f}", fontsize=10)
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    return write_figure(fig, path)


def _write(res: Dict[str, object], out) -> None:
    save_figure(res, write_json(out, NAME, res) / f"{NAME}.png")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=f"python -m gankit.experiments.{NAME}",
                                description="Minimax vs non-saturating generator gradients when D rejects fakes.")
    p.add_argument("--out", required=True, help=f"folder for {NAME}.json and .png")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--pretrain-steps", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    torch.set_num_threads(1)  # tiny networks: one thread is faster than two contended ones
    res = run(out=a.out, seed=a.seed, steps=a.steps, pretrain_steps=a.pretrain_steps)
    print(f"D(G(z)) after pre-training {res['d_fake_at_start']:.2e}")
    print(f"generator grad norm, first {res['n_first']} steps: minimax {res['grad_norm_first_minimax']:.3e}  "
          f"non-saturating {res['grad_norm_first_nonsaturating']:.3e}  (ratio {res['grad_ratio_first']:.3g})")
    print(f"|mean G(z) - 4|: start {res['initial_distance']:.3f}  final minimax {res['final_distance_minimax']:.3f}  "
          f"non-saturating {res['final_distance_nonsaturating']:.3f}")
    print(f"wrote {Path(a.out) / (NAME + '.json')} and .png ({res['seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
