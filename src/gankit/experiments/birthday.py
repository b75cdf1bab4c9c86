"""The birthday-paradox test of support size (Arora & Zhang 2017), end to end.

If a generator's outputs are uniform over N distinct pictures, a batch of s of them holds a
duplicate with probability 1 - exp(-s(s-1)/(2N)), about 1/2 at s^2 ~ 1.39 N, so the smallest
batch size whose duplicate rate reaches 1/2 gives the support as s^2 (the paper's rule), and
the duplicate rates at all batch sizes give a maximum-likelihood N (``metrics.birthday``).
Solving 1 - exp(-s^2/(2N)) = 1/2 exactly gives N = s^2 / (2 ln 2), the s^2 rule without its
1.39x overestimate; the table shows the rule both ways.

(a) Known support: S distinct Fashion-MNIST training images (S in ``--supports``, default
100, 400, 1,600) stand for a generator whose support is exactly S; 5,000 draws with
replacement from them are tested in pixel space, the duplicate threshold calibrated on
held-out test images (5 % of real batches of the largest size hold a pair closer than it).
The maximum-likelihood N and s^2 / (2 ln 2) should recover S within a factor of 2 (the
batch-size grid, steps of at most 1.25x, and the sampling of ``--trials`` batches per size
leave that margin); the plain s^2 sits about 1.4x above S by construction.

(b) Generators on ring-8 (unless ``--gan-steps 0``): held-out data, a GAN trained with the
``modes`` experiment's protocol, one trained with PacGAN's optimiser (it drops modes), and
the planted collapsed generator of ``collapse-vs-dropping`` (2 modes, a tenth of the
spread). For 2-D points "duplicate" means closer than the real-calibrated threshold, so the
number is the size of the uniform distribution with the same near-duplicate rate: what
matters is the ratio to the data's own.

    gankit experiment birthday --out DIR
    gankit experiment birthday --supports 100,400,1600 --gan-steps 0 --out DIR
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from ..errors import ConfigError
from ..viz.plots import pyplot, save_figure
from . import write_json

__all__ = ["planted_support", "toy_generators", "run", "table", "main", "NAME", "IMAGE_SIZES"]

NAME = "birthday"
#: batch sizes for the image test: steps of at most ~1.25x from 4 to 96
IMAGE_SIZES = (4, 5, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96)
TOY_SIZES = (4, 8, 16, 32, 64, 128, 256)
N_DRAWS = 5000
FACTOR = 2.0


def _fashion(split: str) -> np.ndarray:
    from ..data.images import fashion_mnist

    return fashion_mnist(split=split).x.numpy().reshape(-1, 28 * 28).astype(np.float32) / 255.0


def planted_support(support: int, seed: int = 0, trials: int = 100, train=None, test=None) -> Dict[str, object]:
    """The birthday test on ``N_DRAWS`` draws from ``support`` distinct training images."""
    from ..metrics import birthday_test

    if support < 2:
        raise ConfigError(f"a planted support needs at least 2 images, got {support}")
    train = _fashion("train") if train is None else train
    test = _fashion("test") if test is None else test
    if support > len(train):
        raise ConfigError(f"support {support} is more than the {len(train)} training images")
    rng = np.random.default_rng(seed)
    chosen = train[rng.choice(len(train), support, replace=False)]
    draws = chosen[rng.integers(0, support, N_DRAWS)]
    res = birthday_test(draws, test, IMAGE_SIZES, trials=trials, seed=seed)
    mle, half = res["support_estimate"], res["support_half_rule"]
    exact = None if half is None else half / (2 * math.log(2))
    return {"support": support, "estimate": mle, "half_batch_size": res["half_batch_size"],
            "estimate_half_rule": half, "estimate_half_rule_exact": exact, "collision_prob": res["collision_prob"],
            "real_collision_prob": res["real_collision_prob"], "threshold": res["threshold"],
            "within_factor": bool(exact is not None and 1 / FACTOR <= mle / support <= FACTOR
                                  and 1 / FACTOR <= exact / support <= FACTOR)}


def toy_generators(gan_steps: int, seed: int = 0) -> Dict[str, np.ndarray]:
    """2,500 samples each of held-out ring-8 data, two trained GANs and the planted collapse."""
    from .collapse_vs_dropping import N_SAMPLES, _ring, planted
    from .modes import one_run

    out = {"data (held out)": _ring(seed + 5, "test").x.double().numpy()}
    with tempfile.TemporaryDirectory() as tmp:
        for setting in ("gan", "gan_pacgan_opt"):
            res = one_run("ring8", setting, seed, gan_steps, str(Path(tmp) / setting))
            out[setting] = np.asarray(res["samples"], dtype=np.float64)[:N_SAMPLES]
    out["planted collapse"] = planted("collapse", seed=seed + 1)
    return out


def run(supports: Sequence[int] = (100, 400, 1600), gan_steps: int = 3000, seed: int = 0, trials: int = 100,
        out: Optional[str] = None) -> Dict[str, object]:
    from ..metrics import birthday_test
    from .collapse_vs_dropping import _ring

    if gan_steps < 0:
        raise ConfigError(f"--gan-steps must be 0 (no trained generators) or more, got {gan_steps}")
    t0 = time.perf_counter()
    train, test = _fashion("train"), _fashion("test")
    planted = [planted_support(int(s), seed, trials, train, test) for s in supports]
    toy = {}
    if gan_steps:
        real = _ring(seed, "test").x.double().numpy()
        for name, x in toy_generators(gan_steps, seed).items():
            r = birthday_test(x, real, TOY_SIZES, trials=trials, seed=seed)
            toy[name] = {"estimate": r["support_estimate"], "estimate_half_rule": r["support_half_rule"],
                         "collision_prob": r["collision_prob"]}
    res = {"image_batch_sizes": list(IMAGE_SIZES), "toy_batch_sizes": list(TOY_SIZES), "draws": N_DRAWS,
           "trials": trials, "factor": FACTOR, "gan_steps": gan_steps, "planted": planted, "toy": toy,
           "seconds": round(time.perf_counter() - t0, 1)}
    if out is not None:
        _figure(res, write_json(out, NAME, res) / f"{NAME}.png")
    return res


def _fmt(v) -> str:
    return "-" if v is None else ("inf" if math.isinf(v) else f"{v:,.0f}")


def table(res: Dict[str, object]) -> str:
    lines = ["| planted support S | batch size s at p >= 1/2 | s^2 | s^2 / (2 ln 2) | maximum likelihood | within 2x |",
             "|---|---|---|---|---|---|"]
    for r in res["planted"]:
        lines.append(f"| {r['support']:,} | {r['half_batch_size']} | {_fmt(r['estimate_half_rule'])} "
                     f"| {_fmt(r['estimate_half_rule_exact'])} "
                     f"| {_fmt(r['estimate'])} | {'yes' if r['within_factor'] else 'no'} |")
    if res["toy"]:
        lines += ["", f"| ring-8 generator ({res['gan_steps']} steps) | s^2 rule | maximum likelihood |",
                  "|---|---|---|"]
        lines += [f"| {k} | {_fmt(r['estimate_half_rule'])} | {_fmt(r['estimate'])} |" for k, r in res["toy"].items()]
    return "\n".join(lines)


def _figure(res: Dict[str, object], path) -> Path:
    plt = pyplot()
    n = 2 if res["toy"] else 1
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 3.8), squeeze=False)
    ax = axes[0, 0]
    sizes = np.asarray(res["image_batch_sizes"], dtype=np.float64)
    for r in res["planted"]:
        line, = ax.plot(sizes, r["collision_prob"], "o-", ms=3, label=f"S = {r['support']:,}")
        s = np.linspace(2, sizes.max(), 200)
        ax.plot(s, 1 - np.exp(-s * (s - 1) / (2 * r["support"])), "--", c=line.get_color(), lw=0.8)
    ax.plot(sizes, res["planted"][0]["real_collision_prob"], "k:", label="real test images")
    ax.axhline(0.5, c="grey", lw=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("batch size s")
    ax.set_ylabel("P(duplicate in batch)")
    ax.set_title("planted supports (dashed: 1 - exp(-s(s-1)/2S))", fontsize=9)
    ax.legend(fontsize=7)
    if res["toy"]:
        ax = axes[0, 1]
        for k, r in res["toy"].items():
            ax.plot(res["toy_batch_sizes"], r["collision_prob"], "o-", ms=3, label=f"{k}: {_fmt(r['estimate'])}")
        ax.set_xscale("log")
        ax.set_xlabel("batch size s")
        ax.set_title("ring-8 generators (legend: estimated support)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="gankit experiment birthday", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help=f"folder for {NAME}.json and {NAME}.png")
    p.add_argument("--supports", default="100,400,1600", help="comma-separated planted support sizes")
    p.add_argument("--gan-steps", type=int, default=3000,
                   help="generator steps of each trained ring-8 GAN (0: planted supports only)")
    p.add_argument("--trials", type=int, default=100, help="batches drawn per batch size")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    try:
        supports = [int(s) for s in a.supports.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--supports must be comma-separated whole numbers, got '{a.supports}'") from None
    res = run(supports, a.gan_steps, a.seed, a.trials, a.out)
    print(table(res))
    print(f"wrote {a.out}/{NAME}.json and .png ({res['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
