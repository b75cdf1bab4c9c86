"""Mode collapse on 2-D mixtures: every objective and remedy on ring-8 and grid-25.

Data (PacGAN protocol): ring8, 8 Gaussians evenly spaced on the unit circle with std 0.01;
grid25, 25 Gaussians on {-4, -2, 0, 2, 4}^2 with std 0.05; 100,000 training samples.
Metric (VEEGAN / PacGAN): 2,500 samples from the trained generator; a sample is high
quality when its distance to the nearest mode, in units of that mode's standard deviation,
is under 3; a mode is captured when it is the nearest mode of at least one high-quality
sample; reverse KL is KL(histogram of high-quality samples over the modes || uniform).
Reported: mean and standard deviation over seeds 0 .. seeds-1 of each number.

Training budget (NOT PacGAN's 400 epochs of 100,000 samples with 4 x 400 batch-norm
generators and maxout discriminators, which would take days on 2 CPU cores): gankit's MLPs
(3 hidden layers of 256; 2-d noise, as in PacGAN), batch 256, ``--steps`` generator steps, Adam(1e-3,
beta1 0) decayed linearly to 0, samples drawn from a moving average of the generator
(decay 0.999). Every setting gets the same budget in generator steps; the ones that do more
work per step (d_steps, unrolling) say so in the table. The ``*_pacgan_opt`` settings
train with PacGAN's optimiser and batch instead (Adam(1e-4, beta1 0.8), batch 100, constant
learning rate, no moving average): under it the vanilla GAN drops modes as PacGAN reports.

The ``*_published`` settings train each objective or remedy with its authors' own toy (or,
where they published none, nearest small-scale) settings instead of the shared protocol:
their networks, optimiser, learning rates, batch, critic steps and schedule, samples from
the generator itself unless they averaged it (:data:`PUBLISHED_SETTINGS` says whose settings
and from where; ``configs/<stem>_ring8.yaml`` and ``configs/<stem>_grid25.yaml`` hold the
same settings for ``gankit train``). ``--published both`` runs every listed setting both
ways, ``--published only`` only with the published settings.

    gankit experiment modes --data ring8 --seeds 5 --steps 5000 --out DIR
    gankit experiment modes --data grid25 --settings gan,pacgan2 --seeds 5 --out DIR
    gankit experiment modes --data ring8 --settings wgan_gp,sngan --published both --seeds 3 --out DIR
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..errors import ConfigError
from ..registry import closest
from ..viz.plots import pyplot, save_figure
from . import overlay_config, write_json

__all__ = ["SETTINGS", "PUBLISHED", "PUBLISHED_SETTINGS", "published_variants", "config_file", "run", "one_run",
           "run_settings", "summarise", "table", "main", "NAME"]

NAME = "modes"

_PACGAN_OPT = {"optim": {"lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.8, "schedule": "constant"},
               "train": {"batch_size": 100, "ema_decay": 0.0}}

#: setting -> (what it is, config overlay over the shared protocol)
SETTINGS: Dict[str, tuple] = {
    "gan": ("GAN, non-saturating", {}),
    "minimax": ("GAN, minimax", {"method": {"objective": "minimax"}}),
    "lsgan": ("LSGAN (least squares)", {"method": {"objective": "least_squares"}}),
    "hinge": ("hinge loss", {"method": {"objective": "hinge"}}),
    "wgan_gp": ("WGAN-GP (5 critic steps)", {"method": {"objective": "wasserstein", "penalty": "gradient",
                                                         "d_steps": 5},
                                              "optim": {"beta2": 0.9}}),
    "wgan_clip": ("WGAN, weight clipping at 0.01 (5 critic steps)",
                  {"method": {"objective": "wasserstein", "clip": 0.01, "d_steps": 5}}),
    # R1 (Mescheder et al. 2018): a zero-centred gradient penalty on real samples, 0.5 * 0.1 * |grad D|^2
    "gan_r1": ("GAN + R1 penalty (weight 0.1)", {"method": {"penalty": "r1", "penalty_weight": 0.1}}),
    "sngan": ("spectral norm + hinge", {"method": {"objective": "hinge", "spectral_norm": True}}),
    "fgan_kl": ("f-GAN, KL", {"method": {"objective": "fgan_kl"}}),
    "pacgan2": ("PacGAN2", {"method": {"pack": 2}}),
    "pacgan4": ("PacGAN4", {"method": {"pack": 4}}),
    "minibatch": ("minibatch discrimination", {"discriminator": {"minibatch_kernels": 8}}),
    "feature_matching": ("feature matching", {"method": {"generator_loss": "feature_matching"}}),
    "unrolled5": ("unrolled GAN (5 steps)", {"method": {"unroll": 5}}),
    "ebgan": ("EBGAN", {"method": {"name": "ebgan"}, "discriminator": {"name": "autoencoder"}}),
    "loss_sensitive": ("loss-sensitive GAN", {"method": {"name": "loss_sensitive"}}),
    # PacGAN's optimiser and batch instead of gankit's protocol: Adam(1e-4, beta1 0.8), batch
    # 100, constant learning rate, samples from the generator itself (no moving average)
    "gan_pacgan_opt": ("GAN, PacGAN's optimiser (Adam 1e-4, beta1 0.8, batch 100, no averaging)",
                       _PACGAN_OPT),
    "pacgan2_pacgan_opt": ("PacGAN2, PacGAN's optimiser", {**_PACGAN_OPT, "method": {"pack": 2}}),
    "pacgan4_pacgan_opt": ("PacGAN4, PacGAN's optimiser", {**_PACGAN_OPT, "method": {"pack": 4}}),
}


def _mlp(z_dim: int, hidden: int, layers: int, activation: str, batch_norm: bool = False) -> dict:
    return {"name": "mlp", "z_dim": z_dim, "hidden": hidden, "layers": layers, "activation": activation,
            "batch_norm": batch_norm}


def _critic(hidden: int, layers: int, activation: str, minibatch_kernels: int = 0) -> dict:
    return {"name": "mlp", "hidden": hidden, "layers": layers, "activation": activation,
            "minibatch_kernels": minibatch_kernels}


def _adam(lr_g: float, lr_d: float, beta1: float, beta2: float = 0.999, schedule: str = "constant") -> dict:
    return {"optimizer": "adam", "lr_g": lr_g, "lr_d": lr_d, "beta1": beta1, "beta2": beta2,
            "weight_decay": 0.0, "schedule": schedule}


def _rmsprop(lr: float) -> dict:
    return {"optimizer": "rmsprop", "lr_g": lr, "lr_d": lr, "beta1": 0.5, "beta2": 0.999, "weight_decay": 0.0,
            "schedule": "constant"}


def _gan(objective: str = "nonsaturating", d_steps: int = 1, **more) -> dict:
    return {"name": "gan", "objective": objective, "d_steps": d_steps, **more}


def _published(method: dict, generator: dict, discriminator: dict, optim: dict, batch_size: int,
               ema_decay: float = 0.0) -> dict:
    """A complete overlay: every part of the shared protocol the authors set is replaced."""
    return {"method": method, "generator": generator, "discriminator": discriminator, "optim": optim,
            "train": {"batch_size": batch_size, "ema_decay": ema_decay}}


# The networks of the shared protocol, for methods whose authors published no toy networks.
_TOY_G, _TOY_D = _mlp(2, 256, 3, "relu"), _critic(256, 3, "leaky_relu")
# PacGAN's 2-D networks (synthetic_data_experiments/*/pacgan_task.py): generator 4 x 400 ReLU with
# batch norm; discriminator 3 maxout layers of 200 units (5 pieces), here leaky-ReLU layers of 200
_PACGAN_G, _PACGAN_D = _mlp(2, 400, 4, "relu", batch_norm=True), _critic(200, 3, "leaky_relu")
# Gulrajani et al.'s gan_toy.py: 3 x 512 ReLU for both networks, 2-d noise
_GULRAJANI_G, _GULRAJANI_D = _mlp(2, 512, 3, "relu"), _critic(512, 3, "relu")
# the mixture-of-Gaussians scripts of Mao et al. (LSGAN) and Poole (unrolled GAN): 2 x 128 tanh, 256-d noise
_TANH_G, _TANH_D = _mlp(256, 128, 2, "tanh"), _critic(128, 2, "tanh")
_PACGAN_ADAM = _adam(1e-4, 1e-4, 0.8)
_SNGAN_ADAM = _adam(2e-4, 2e-4, 0.0, 0.9, schedule="linear")

#: setting -> (whose settings and from where, config file stem, overlay); ``<setting>_published``
#: in :data:`SETTINGS` trains with the overlay, ``configs/<stem>_<data>.yaml`` holds the same.
PUBLISHED_SETTINGS: Dict[str, tuple] = {
    "gan": ("PacGAN's GAN (Lin et al. 2018, fjxmlzn/PacGAN synthetic_data_experiments config.py; "
            "Goodfellow et al. 2014 give no 2-D settings)", "gan_pacgan",
            _published(_gan(), _PACGAN_G, _PACGAN_D, _PACGAN_ADAM, 100)),
    "minimax": ("PacGAN's settings with the minimax loss (Goodfellow et al. 2014 give no 2-D settings)",
                "minimax_pacgan", _published(_gan("minimax"), _PACGAN_G, _PACGAN_D, _PACGAN_ADAM, 100)),
    "lsgan": ("Mao et al. 2017, LSGAN's mixture-of-Gaussians script (xudonmao/LSGAN "
              "stability_comparison/mixture_gaussian/ls.py)", "lsgan",
              _published(_gan("least_squares"), _TANH_G, _TANH_D, _adam(1e-3, 1e-4, 0.5), 512)),
    "hinge": ("no toy settings published; SNGAN's CIFAR-10 hinge settings (Miyato et al. 2018, "
              "pfnet-research/sngan_projection configs/sn_cifar10_unconditional.yml) without spectral norm",
              "hinge", _published(_gan("hinge", 5), _TOY_G, _TOY_D, _SNGAN_ADAM, 64)),
    "wgan_gp": ("Gulrajani et al. 2017, gan_toy.py (igul222/improved_wgan_training), mode wgan-gp",
                "wgan_gp", _published(_gan("wasserstein", 5, penalty="gradient", penalty_weight=0.1),
                                      _GULRAJANI_G, _GULRAJANI_D, _adam(1e-4, 1e-4, 0.5, 0.9), 256)),
    "wgan_clip": ("Gulrajani et al. 2017, gan_toy.py (igul222/improved_wgan_training), mode wgan",
                  "wgan_clip", _published(_gan("wasserstein", 5, clip=0.01), _GULRAJANI_G, _GULRAJANI_D,
                                          _rmsprop(5e-5), 256)),
    "gan_r1": ("no 2-D settings published; Mescheder et al. 2018's defaults (LMescheder/GAN_stability "
               "configs/default.yaml: RMSprop 1e-4, gamma 10, batch 64, generator average 0.999)", "gan_r1",
               _published(_gan(penalty="r1", penalty_weight=10.0), _TOY_G, _TOY_D, _rmsprop(1e-4), 64, 0.999)),
    "sngan": ("no toy settings published; Miyato et al. 2018's CIFAR-10 hinge settings "
              "(pfnet-research/sngan_projection configs/sn_cifar10_unconditional.yml)", "sngan_hinge",
              _published(_gan("hinge", 5, spectral_norm=True), _TOY_G, _TOY_D, _SNGAN_ADAM, 64)),
    "pacgan2": ("Lin et al. 2018, PacGAN's 2-D settings (fjxmlzn/PacGAN synthetic_data_experiments config.py)",
                "pacgan2", _published(_gan(pack=2), _PACGAN_G, _PACGAN_D, _PACGAN_ADAM, 100)),
    "pacgan4": ("Lin et al. 2018, PacGAN's 2-D settings (fjxmlzn/PacGAN synthetic_data_experiments config.py)",
                "pacgan4", _published(_gan(pack=4), _PACGAN_G, _PACGAN_D, _PACGAN_ADAM, 100)),
    "minibatch": ("no toy settings published; Salimans et al. 2016's CIFAR-10 script (openai/improved-gan "
                  "mnist_svhn_cifar10/train_cifar_minibatch_discrimination.py: Adam 3e-4, beta1 0.5, batch 100, "
                  "100 kernels of 5)", "minibatch",
                  _published(_gan(), _TOY_G, _critic(256, 3, "leaky_relu", 100), _adam(3e-4, 3e-4, 0.5), 100)),
    "feature_matching": ("no toy settings published; Salimans et al. 2016's MNIST script (openai/improved-gan "
                         "mnist_svhn_cifar10/train_mnist_feature_matching.py: Adam 3e-3, beta1 0.5, batch 100)",
                         "feature_matching", _published(_gan(generator_loss="feature_matching"), _TOY_G, _TOY_D,
                                                        _adam(3e-3, 3e-3, 0.5), 100)),
    "unrolled5": ("Poole's mixture-of-Gaussians notebook for Metz et al. 2017 (poolio/unrolled_gan, "
                  "'Unrolled GAN demo.ipynb')", "unrolled5_notebook",
                  _published(_gan(unroll=5), _TANH_G, _TANH_D, _adam(1e-3, 1e-4, 0.5), 512)),
    "loss_sensitive": ("no toy settings published; Qi 2017's image script (guojunq/lsgan lsgan.lua: Adam 1e-4, "
                       "beta1 0.5, batch 64, no gradient penalty, no weight decay)", "loss_sensitive_qi",
                       _published({"name": "loss_sensitive", "slack_weight": 100.0, "distance": "l1",
                                   "penalty_weight": 0.0, "d_steps": 1}, _TOY_G, _TOY_D, _adam(1e-4, 1e-4, 0.5), 64)),
}

for _name, (_source, _stem, _overlay) in PUBLISHED_SETTINGS.items():
    SETTINGS[f"{_name}_published"] = (f"{SETTINGS[_name][0]}, published settings", _overlay)


def published_variants(settings: Sequence[str], published: str = "no") -> List[str]:
    """``settings`` as listed (``published='no'``), each replaced by its published variant
    (``'only'``), or each followed by it (``'both'``); settings without one stay as they are,
    and none is listed twice."""
    if published not in ("no", "only", "both"):
        raise ConfigError(f"--published must be no, only or both, got '{published}'")
    out: List[str] = []
    for s in settings:
        has = s in PUBLISHED_SETTINGS
        wanted = []
        if published != "only" or not has:
            wanted.append(s)
        if published != "no" and has:
            wanted.append(f"{s}_published")
        out += [w for w in wanted if w not in out]
    return out


def config_file(setting: str, data: str) -> str:
    """The file under configs/ that holds a published setting for ``data``, e.g.
    ``wgan_gp_ring8.yaml`` for ``wgan_gp`` (or ``wgan_gp_published``)."""
    base = setting[:-len("_published")] if setting.endswith("_published") else setting
    if base not in PUBLISHED_SETTINGS:
        raise ConfigError(f"setting '{setting}' has no published variant; those with one: "
                          f"{', '.join(PUBLISHED_SETTINGS)}")
    return f"{PUBLISHED_SETTINGS[base][1]}_{data}.yaml"


#: published rows (BENCHMARKS.md): (source, method) -> {data: (modes, high quality %, reverse KL or None)}
PUBLISHED = [
    ("VEEGAN Table 1", "GAN", {"ring8": (1, 99.3, None), "grid25": (3.3, 0.5, None)}),
    ("VEEGAN Table 1", "ALI (BiGAN)", {"ring8": (2.8, 0.13, None), "grid25": (15.8, 1.6, None)}),
    ("VEEGAN Table 1", "Unrolled GAN (5 steps)", {"ring8": (7.6, 35.6, None), "grid25": (23.6, 16, None)}),
    ("VEEGAN Table 1", "VEEGAN", {"ring8": (8, 52.9, None), "grid25": (24.6, 40, None)}),
    ("PacGAN Table 1", "GAN", {"ring8": (6.3, 98.2, 0.45), "grid25": (17.3, 94.8, 0.70)}),
    ("PacGAN Table 1", "ALI", {"ring8": (6.6, 97.6, None), "grid25": (24.1, 95.7, None)}),
    ("PacGAN Table 1", "PacGAN2", {"ring8": (7.9, 95.6, 0.07), "grid25": (23.8, 91.3, None)}),
    ("PacGAN Table 1", "PacGAN4", {"ring8": (7.8, 95.9, None), "grid25": (24.8, 93.6, 0.04)}),
]


def config_for(data: str, setting: str, seed: int, steps: int, out: str) -> dict:
    """The full training config of one (setting, seed) run."""
    base = {
        "method": {"name": "gan"}, "data": {"name": data},
        "generator": {"name": "mlp", "z_dim": 2, "hidden": 256, "layers": 3},
        "discriminator": {"name": "mlp", "hidden": 256, "layers": 3},
        "train": {"steps": steps, "batch_size": 256, "seed": seed, "ema_decay": 0.999, "log_every": 500,
                  "sample_every": 0, "checkpoint_every": 0, "progress": "none"},
        "optim": {"lr_g": 1e-3, "lr_d": 1e-3, "beta1": 0.0, "schedule": "linear"},
        "runtime": {"precision": "fp32"},
        "out": out,
    }
    return overlay_config(base, SETTINGS[setting][1])


def one_run(data: str, setting: str, seed: int, steps: int, out: str, threads: int = 0) -> Dict[str, object]:
    """Train one setting with one seed; returns its mode statistics and 2,500 samples."""
    import gankit
    from ..metrics import toy_mode_stats

    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    run = gankit.train(config_for(data, setting, seed, steps, out))
    x = run.sample(2500, seed=10_000 + seed)
    stats = toy_mode_stats(x, run.data.modes, run.data.mode_stds)
    return {"setting": setting, "seed": seed, "modes": float(stats["modes_captured"]),
            "high_quality": float(stats["high_quality"]), "reverse_kl": float(stats["reverse_kl"]),
            "seconds": round(time.perf_counter() - t0, 1), "samples": x.numpy().tolist()}


def run(data: str = "ring8", settings: Sequence[str] = ("gan", "pacgan2"), seeds: int = 5, steps: int = 5000,
        out: Optional[str] = None, workers: int = 1) -> Dict[str, object]:
    t0 = time.perf_counter()
    runs = run_settings(one_run, (data,), settings, SETTINGS, seeds, steps, workers)
    rows = summarise(runs, settings, SETTINGS, ("modes", "high_quality", "reverse_kl"))
    samples = {s: np.asarray(next(r for r in runs if r["setting"] == s)["samples"]) for s in settings}
    res = {"data": data, "steps": steps, "seeds": seeds, "rows": rows,
           "published": [{"source": src, "method": m, "modes": v[data][0], "high_quality_pct": v[data][1],
                          "reverse_kl": v[data][2]} for src, m, v in PUBLISHED],
           "seconds": round(time.perf_counter() - t0, 1)}
    if out is not None:
        _figure(data, samples, rows, write_json(out, f"{NAME}_{data}", res) / f"{NAME}_{data}.png")
    return res


def summarise(runs: List[dict], settings: Sequence[str], described: Dict[str, tuple],
              keys: Sequence[str]) -> Dict[str, dict]:
    """Per setting: its description, [mean, std] over seeds of each key, and the runs' numbers."""
    rows = {}
    for s in settings:
        mine = [r for r in runs if r["setting"] == s]
        rows[s] = {"what": described[s][0]}
        for key in keys:
            vals = np.array([r[key] for r in mine], dtype=np.float64)
            rows[s][key] = [float(np.nanmean(vals)), float(np.nanstd(vals))]
        rows[s]["runs"] = [{k: r[k] for k in ("seed", *keys, "seconds")} for r in mine]
    return rows


def run_settings(fn, lead: tuple, settings: Sequence[str], table: Dict[str, tuple], seeds: int, steps: int,
                 workers: int) -> List[dict]:
    """``fn(*lead, setting, seed, steps, out_dir, threads)`` for every setting and seed (seeds
    0 .. seeds-1), in ``workers`` spawned processes of one thread each when more than one;
    run directories live in a temporary folder."""
    unknown = [s for s in settings if s not in table]
    if unknown:
        raise ConfigError(f"unknown setting '{unknown[0]}'{closest(unknown[0], table)}; "
                          f"available: {', '.join(table)}")
    if seeds < 1 or steps < 1 or workers < 1:
        raise ConfigError("--seeds, --steps and --workers must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        threads = 1 if workers > 1 else 0
        jobs = [(*lead, s, seed, steps, os.path.join(tmp, f"{s}-{seed}"), threads)
                for s in settings for seed in range(seeds)]
        if workers > 1:
            with mp.get_context("spawn").Pool(workers) as pool:
                return pool.starmap(fn, jobs, chunksize=1)
        return [fn(*j) for j in jobs]


def table(res: Dict[str, object]) -> str:
    """The result as a Markdown table, published rows below ours. When some settings ran
    with their authors' settings, a column says which rows did (shared / published)."""
    data, steps, seeds = res["data"], res["steps"], res["seeds"]
    both = any(s.endswith("_published") for s in res["rows"])
    col = " settings |" if both else ""
    lines = [f"| setting ({data}, {steps} steps, {seeds} seeds) |{col} modes | high quality % | reverse KL |",
             "|---|" + ("---|" if both else "") + "---|---|---|"]
    for s, r in res["rows"].items():
        m, hq, kl = r["modes"], r["high_quality"], r["reverse_kl"]
        what = r["what"]
        if both:
            published = s.endswith("_published")
            what = what[:-len(", published settings")] if published else what
            what += " | published" if published else " | shared"
        lines.append(f"| gankit: {what} | {m[0]:.2f} ± {m[1]:.2f} | {100 * hq[0]:.1f} ± {100 * hq[1]:.1f} "
                     f"| {kl[0]:.3f} ± {kl[1]:.3f} |")
    for p in res["published"]:
        kl = "" if p["reverse_kl"] is None else f"{p['reverse_kl']:.2f}"
        paper = " paper |" if both else ""
        lines.append(f"| {p['source']}: {p['method']} |{paper} {p['modes']} | {p['high_quality_pct']} | {kl} |")
    return "\n".join(lines)


def _figure(data: str, samples: Dict[str, np.ndarray], rows, path) -> Path:
    from ..data import toy

    plt = pyplot()
    real = getattr(toy, data)(n_samples=2500, seed=0)
    n = len(samples) + 1
    cols = min(n, 5)
    rws = (n + cols - 1) // cols
    fig, axes = plt.subplots(rws, cols, figsize=(3 * cols, 3 * rws), squeeze=False)
    lim = 1.4 if data == "ring8" else 5.5
    panels = [("data", real.x.numpy(), None)] + [(s, x, rows[s]) for s, x in samples.items()]
    for ax, (name, x, r) in zip(axes.flat, panels):
        ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.4, c="tab:green" if r is None else "tab:blue")
        ax.scatter(real.modes[:, 0], real.modes[:, 1], s=12, c="k", marker="x")
        title = name if r is None else (f"{name}: {r['runs'][0]['modes']:.0f} modes, "
                                        f"{100 * r['runs'][0]['high_quality']:.0f}% HQ")
        ax.set_title(title, fontsize=8)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"{data}: 2,500 samples of seed 0 per setting (x: the modes)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="gankit experiment modes", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help=f"folder for {NAME}_DATA.json and {NAME}_DATA.png")
    p.add_argument("--data", default="ring8", choices=["ring8", "grid25"])
    p.add_argument("--settings", default="gan,pacgan2",
                   help=f"comma-separated, or 'all' ({', '.join(SETTINGS)})")
    p.add_argument("--published", default="no", choices=["no", "only", "both"],
                   help="run each setting with its authors' published settings instead (only) or as well "
                        f"(both); settings with a published variant: {', '.join(PUBLISHED_SETTINGS)}")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=5000, help="generator steps per run")
    p.add_argument("--workers", type=int, default=1, help="runs in parallel (each on one thread)")
    a = p.parse_args(argv)
    if a.settings == "all":
        settings = [s for s in SETTINGS if not s.endswith("_published")]
    else:
        settings = [s.strip() for s in a.settings.split(",") if s.strip()]
    settings = published_variants(settings, a.published)
    res = run(a.data, settings, a.seeds, a.steps, a.out, a.workers)
    print(table(res))
    print(f"wrote {a.out}/{NAME}_{a.data}.json and .png ({res['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
