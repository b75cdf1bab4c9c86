"""Goodfellow et al. (2014), Proposition 1 and Figure 1, checked numerically in 1D.

Proposition 1: for a fixed generator, the optimal discriminator is
D*(x) = p_data(x) / (p_data(x) + p_g(x)), and at D* the value function is
V(D*, G) = -log 4 + 2 JSD(p_data || p_g) (Theorem 1's rewriting).

Part 1 (the check).  Data: ``gaussian1d`` (mean 4, std 0.5).  The generator is frozen at the
affine map x = g_mean + g_std * z, z ~ N(0, 1), so p_g = N(g_mean, g_std^2) (default N(3, 1))
is known in closed form.  A fresh MLP discriminator is trained with
:func:`gankit.objectives.adversarial.gan_d_loss` (Adam, ``d_steps`` steps) and compared with
D* on the grid of points where both densities exceed ``density_floor`` (``max_abs_error``).
V(D, G) is measured with :func:`value_function` on ``n_eval`` fresh samples of each side
(``value``) and by quadrature of D on a fine grid (``value_quadrature``); the target
-log 4 + 2 JSD uses JSD from ``scipy.integrate.quad`` (``jsd``).

Part 2 (the picture).  A short full GAN run (non-saturating generator loss) on the same
data from a generator that starts near 0; snapshots of the data density, a histogram of
G(z) and D(x) at ``len(snapshot_steps)`` stages, drawn like Figure 1 (data black dots,
generator green, discriminator blue dashes).  ``gan_final_mean`` / ``gan_final_std`` are the
generator's sample mean and standard deviation at the end.  This part only illustrates the
dynamics (a small GAN oscillates around the data rather than settling); nothing is asserted
on it.

Run ``python -m gankit.experiments.theory1d --out DIR``; writes ``DIR/theory1d.json`` and ``.png``.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from scipy import integrate, stats

from ..data.toy import gaussian1d
from ..nets.mlp import mlp_discriminator, mlp_generator
from ..objectives.adversarial import gan_d_loss, nonsaturating_g_loss, value_function
from ..viz.plots import pyplot, save_figure as write_figure
from . import write_json

__all__ = ["jsd_gaussians", "run", "save_figure", "main"]

NAME = "theory1d"
DATA_MEAN, DATA_STD = 4.0, 0.5


class _Shift(torch.nn.Module):
    """Standardise the input before an MLP (the data sit around 4, far from where the MLP's init is useful)."""

    def __init__(self, net: torch.nn.Module, center: float = 3.5, scale: float = 1.0):
        super().__init__()
        self.net, self.center, self.scale = net, center, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.center) / self.scale)


def jsd_gaussians(m1: float, s1: float, m2: float, s2: float) -> float:
    """JSD(N(m1, s1^2) || N(m2, s2^2)) in nats, by quadrature."""
    p, q = stats.norm(m1, s1), stats.norm(m2, s2)
    lo, hi = min(m1 - 12 * s1, m2 - 12 * s2), max(m1 + 12 * s1, m2 + 12 * s2)

    def f(x: float) -> float:
        a, b = p.pdf(x), q.pdf(x)
        m = 0.5 * (a + b)
        return 0.5 * (a * math.log(a / m) if a > 0 else 0.0) + 0.5 * (b * math.log(b / m) if b > 0 else 0.0)

    val, _ = integrate.quad(f, lo, hi, limit=400, points=[m1, m2])
    return float(val)


def _optimal_d_check(seed: int, g_mean: float, g_std: float, d_steps: int, batch: int, hidden: int,
                     n_eval: int, density_floor: float) -> Dict[str, object]:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    data = gaussian1d(mean=DATA_MEAN, std=DATA_STD, n_samples=100_000, seed=seed).x
    disc = _Shift(mlp_discriminator((1,), hidden=hidden, layers=2))
    opt = torch.optim.Adam(disc.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, d_steps)

    def fake(n: int) -> torch.Tensor:
        return g_mean + g_std * torch.randn(n, 1, generator=g)

    for _ in range(d_steps):
        real = data[torch.randint(len(data), (batch,), generator=g)]
        opt.zero_grad()
        gan_d_loss(disc(real), disc(fake(batch))).backward()
        opt.step()
        sched.step()

    grid = np.linspace(min(DATA_MEAN - 5 * DATA_STD, g_mean - 5 * g_std),
                       max(DATA_MEAN + 5 * DATA_STD, g_mean + 5 * g_std), 2001)
    pd, pg = stats.norm.pdf(grid, DATA_MEAN, DATA_STD), stats.norm.pdf(grid, g_mean, g_std)
    d_star = pd / (pd + pg + 1e-300)
    with torch.no_grad():
        logits = disc(torch.as_tensor(grid, dtype=torch.float32)[:, None]).double()
        d_hat = torch.sigmoid(logits).numpy()
        log_d, log_1md = (-torch.nn.functional.softplus(-logits)).numpy(), (-torch.nn.functional.softplus(logits)).numpy()
        real_eval = DATA_MEAN + DATA_STD * torch.randn(n_eval, 1, generator=g)
        v_mc = float(value_function(disc(real_eval), disc(fake(n_eval))))
    both = (pd > density_floor) & (pg > density_floor)
    v_quad = float(np.trapezoid(pd * log_d + pg * log_1md, grid))
    jsd = jsd_gaussians(DATA_MEAN, DATA_STD, g_mean, g_std)
    v_star = -math.log(4.0) + 2 * jsd
    return {
        "max_abs_error": float(np.max(np.abs(d_hat - d_star)[both])),
        "mean_abs_error": float(np.mean(np.abs(d_hat - d_star)[both])),
        "grid_range": [float(grid[both].min()), float(grid[both].max())],
        "value": v_mc, "value_quadrature": v_quad, "jsd": jsd, "value_optimal": v_star,
        "value_error": abs(v_mc - v_star), "value_quadrature_error": abs(v_quad - v_star),
        "_curves": {"x": grid.tolist(), "d_hat": d_hat.tolist(), "d_star": d_star.tolist(),
                    "p_data": pd.tolist(), "p_g": pg.tolist(), "both": both.tolist()},
    }


def _gan_snapshots(seed: int, gan_steps: int, snapshot_steps: Sequence[int], batch: int, gan_lr: float,
                   hidden: int) -> Dict[str, object]:
    torch.manual_seed(seed + 7)
    g = torch.Generator().manual_seed(seed + 7)
    data = gaussian1d(mean=DATA_MEAN, std=DATA_STD, n_samples=100_000, seed=seed).x
    gen = mlp_generator((1,), z_dim=1, hidden=hidden, layers=2)
    disc = _Shift(mlp_discriminator((1,), hidden=hidden, layers=2))
    opt_g = torch.optim.Adam(gen.parameters(), lr=gan_lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=gan_lr, betas=(0.5, 0.999))
    xs = torch.linspace(-1.0, 7.0, 401)[:, None]
    z_eval = torch.randn(5000, 1, generator=g)
    snaps = []

    def snap(step: int) -> None:
        with torch.no_grad():
            samples = gen(z_eval).squeeze(1).numpy()
            d = torch.sigmoid(disc(xs)).numpy()
        snaps.append({"step": step, "samples": samples.tolist(), "d": d.tolist(),
                      "g_mean": float(samples.mean()), "g_std": float(samples.std())})

    wanted = set(int(s) for s in snapshot_steps)
    for step in range(gan_steps + 1):
        if step in wanted:
            snap(step)
        if step == gan_steps:
            break
        real = data[torch.randint(len(data), (batch,), generator=g)]
        opt_d.zero_grad()
        gan_d_loss(disc(real), disc(gen(torch.randn(batch, 1, generator=g)).detach())).backward()
        opt_d.step()
        opt_g.zero_grad()
        nonsaturating_g_loss(disc(gen(torch.randn(batch, 1, generator=g)))).backward()
        opt_g.step()
    if not snaps or snaps[-1]["step"] != gan_steps:
        snap(gan_steps)
    return {"x": xs.squeeze(1).tolist(), "snapshots": snaps}


def run(out: Optional[str] = None, seed: int = 0, g_mean: float = 3.0, g_std: float = 1.0, d_steps: int = 1000,
        batch: int = 512, hidden: int = 64, n_eval: int = 200_000, density_floor: float = 0.05,
        gan_steps: int = 2000, snapshot_steps: Sequence[int] = (0, 200, 600, 2000),
        gan_lr: float = 5e-4) -> Dict[str, object]:
    """Run both parts; write ``theory1d.json``/``.png`` under ``out`` when given."""
    t0 = time.perf_counter()
    chk = _optimal_d_check(seed, g_mean, g_std, d_steps, batch, hidden, n_eval, density_floor)
    res: Dict[str, object] = {k: v for k, v in chk.items() if not k.startswith("_")}
    res.update({"g_mean": g_mean, "g_std": g_std, "d_steps": d_steps, "batch": batch, "hidden": hidden,
                "density_floor": density_floor, "seed": seed})
    arrays = {"check": chk["_curves"]}
    if gan_steps > 0:
        gan = _gan_snapshots(seed, gan_steps, snapshot_steps, batch, gan_lr, hidden)
        arrays["gan"] = gan
        res["gan_steps"] = gan_steps
        res["gan_final_mean"] = gan["snapshots"][-1]["g_mean"]
        res["gan_final_std"] = gan["snapshots"][-1]["g_std"]
        res["gan_snapshot_stats"] = [{"step": s["step"], "g_mean": s["g_mean"], "g_std": s["g_std"]}
                                     for s in gan["snapshots"]]
    res["seconds"] = time.perf_counter() - t0
    if out is not None:
        _write(res, arrays, out)
    return res


def save_figure(res: Dict[str, object], arrays: Dict[str, object], path) -> Path:
    plt = pyplot()

    gan = arrays.get("gan")
    n_snap = len(gan["snapshots"]) if gan else 0
    fig, axes = plt.subplots(1, 1 + n_snap, figsize=(4.2 * (1 + n_snap), 3.8), squeeze=False)
    axes = axes[0]
    c = arrays["check"]
    x = np.asarray(c["x"])
    ax = axes[0]
    ax.plot(x, c["p_data"], "k:", label="p_data = N(4, 0.5^2)")
    ax.plot(x, c["p_g"], color="tab:green", label=f"p_g = N({res['g_mean']:g}, {res['g_std']:g}^2)")
    ax.plot(x, c["d_star"], color="tab:gray", lw=2.5, alpha=0.6, label="D* = p_data/(p_data+p_g)")
    ax.plot(x, c["d_hat"], "b--", label="trained D")
    lo, hi = res["grid_range"]
    ax.axvspan(lo, hi, color="tab:orange", alpha=0.1, label="compared region")
    ax.set_xlim(0, 7)
    ax.set_title(f"max|D-D*| {res['max_abs_error']:.3f}; V {res['value']:.3f} vs "
                 f"-log4+2JSD {res['value_optimal']:.3f}", fontsize=9)
    ax.legend(fontsize=7)
    if gan:
        xs = np.asarray(gan["x"])
        pd = np.exp(-0.5 * ((xs - DATA_MEAN) / DATA_STD) ** 2) / (DATA_STD * math.sqrt(2 * math.pi))
        for ax, s in zip(axes[1:], gan["snapshots"]):
            ax.plot(xs, pd, "k:", label="data")
            ax.hist(s["samples"], bins=60, range=(xs[0], xs[-1]), density=True, color="tab:green", alpha=0.5,
                    label="G(z)")
            ax.plot(xs, s["d"], "b--", label="D(x)")
            ax.set_ylim(0, 1.6)
            ax.set_title(f"GAN step {s['step']}: G mean {s['g_mean']:.2f}, std {s['g_std']:.2f}", fontsize=9)
            ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return write_figure(fig, path)


def _write(res: Dict[str, object], arrays: Dict[str, object], out) -> None:
    save_figure(res, arrays, write_json(out, NAME, res) / f"{NAME}.png")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=f"python -m gankit.experiments.{NAME}",
                                description="Optimal discriminator and value function (Goodfellow et al. Prop. 1).")
    p.add_argument("--out", required=True, help=f"folder for {NAME}.json and .png")
    p.add_argument("--g-mean", type=float, default=3.0)
    p.add_argument("--g-std", type=float, default=1.0)
    p.add_argument("--d-steps", type=int, default=1000)
    p.add_argument("--gan-steps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    torch.set_num_threads(1)  # tiny networks: one thread is faster than two contended ones
    snaps = sorted({0, a.gan_steps // 10, (3 * a.gan_steps) // 10, a.gan_steps})
    res = run(out=a.out, seed=a.seed, g_mean=a.g_mean, g_std=a.g_std, d_steps=a.d_steps, gan_steps=a.gan_steps,
              snapshot_steps=snaps)
    print(f"max |D - D*| on [{res['grid_range'][0]:.2f}, {res['grid_range'][1]:.2f}]: {res['max_abs_error']:.4f} "
          f"(mean {res['mean_abs_error']:.4f})")
    print(f"V(D, G) {res['value']:.4f} (quadrature {res['value_quadrature']:.4f})  "
          f"-log 4 + 2 JSD {res['value_optimal']:.4f}  (JSD {res['jsd']:.4f})")
    if "gan_final_mean" in res:
        print(f"GAN after {res['gan_steps']} steps: G mean {res['gan_final_mean']:.3f}, std {res['gan_final_std']:.3f}")
    print(f"wrote {Path(a.out) / (NAME + '.json')} and .png ({res['seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
