"""Mode collapse with 1,000 modes: stacked Fashion-MNIST (VEEGAN / PacGAN's stacked MNIST).

Data: ``stacked`` -- three independently drawn Fashion-MNIST training images as the three
channels of one 28x28 image, 100,000 of them; its mode is the triple of their classes, so
there are 10 x 10 x 10 = 1,000 equally likely modes. Metric (VEEGAN / PacGAN): 26,000
generated images; gankit's Fashion-MNIST classifier (test accuracy 0.923) labels each
channel; modes = distinct triples; KL = KL(p_gen || uniform over 1,000). The same numbers
for 26,000 held-out real stacked images (test split) are the ceiling set by the classifier
and the sample size.

Networks and budget: the DCGAN networks of the default run (3 channels in and out), batch
64, Adam(2e-4, 0.5), ``--steps`` generator steps, bf16 autocast on the CPU: a CPU budget,
far shorter than the published runs, and Fashion-MNIST rather than MNIST, so the published
rows are context, not a like-for-like comparison.

    gankit experiment stacked --settings dcgan,pacgan2 --steps 6000 --seeds 2 --out DIR
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from ..viz.plots import pyplot, save_figure
from . import overlay_config, write_json
from .modes import run_settings, summarise

__all__ = ["SETTINGS", "PUBLISHED", "run", "one_run", "score", "main", "NAME"]

NAME = "stacked"
N_SAMPLES = 26_000

#: setting -> (what it is, config overlay over the shared protocol)
SETTINGS: Dict[str, tuple] = {
    "dcgan": ("DCGAN (non-saturating)", {}),
    "dcgan_ema": ("DCGAN, samples from the generator's moving average (0.999)", {"train": {"ema_decay": 0.999}}),
    "dcgan_ema_linear": ("DCGAN, moving average (0.999), learning rates decayed linearly to 0",
                         {"train": {"ema_decay": 0.999}, "optim": {"schedule": "linear"}}),
    "pacgan2": ("PacDCGAN2", {"method": {"pack": 2}}),
    "pacgan4": ("PacDCGAN4", {"method": {"pack": 4}}),
    "minibatch": ("DCGAN + minibatch discrimination", {"discriminator": {"minibatch_kernels": 16}}),
    "feature_matching": ("DCGAN + feature matching", {"method": {"generator_loss": "feature_matching"}}),
    "unrolled5": ("unrolled DCGAN (5 steps)", {"method": {"unroll": 5}}),
}

#: (source, method, modes, KL) from BENCHMARKS.md (stacked MNIST, not Fashion-MNIST)
PUBLISHED = [
    ("VEEGAN Table 2", "DCGAN", "99", "3.4"),
    ("VEEGAN Table 2", "Unrolled GAN", "48.7", "4.32"),
    ("VEEGAN Table 2", "VEEGAN", "150", "2.95"),
    ("PacGAN Table 2", "DCGAN", "78.9 ± 6.46", "4.50 ± 0.127"),
    ("PacGAN Table 2", "PacDCGAN2", "1000 ± 0", "0.06 ± 0.003"),
]


def config_for(setting: str, seed: int, steps: int, out: str) -> dict:
    base = {
        "method": {"name": "gan"},
        "data": {"name": "stacked", "n_samples": 100_000},
        "generator": {"name": "dcgan"}, "discriminator": {"name": "dcgan"},
        "train": {"steps": steps, "batch_size": 64, "seed": seed, "log_every": 200, "sample_every": 0,
                  "checkpoint_every": 0, "progress": "none"},
        "out": out,
    }
    return overlay_config(base, SETTINGS[setting][1])


def score(images: torch.Tensor, classifier=None) -> Dict[str, float]:
    """Modes and KL of stacked images in [0, 1], (N, 3, H, W)."""
    from ..metrics.features import fashion_mnist
    from ..metrics.modes import stacked_labels, stacked_modes

    classifier = classifier or fashion_mnist()
    labels = stacked_labels(images, lambda x: classifier.classify(x), batch_size=2000)
    out = stacked_modes(labels)
    return {"modes": float(out["modes"]), "kl": float(out["kl"])}


def one_run(setting: str, seed: int, steps: int, out: str, threads: int = 0) -> Dict[str, object]:
    import gankit

    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    run = gankit.train(config_for(setting, seed, steps, out))
    x = run.sample(N_SAMPLES, seed=20_000 + seed)
    res = {"setting": setting, "seed": seed, **score(x), "seconds": round(time.perf_counter() - t0, 1)}
    res["grid"] = x[:64].numpy().tolist()
    return res


def reference(seed: int = 0) -> Dict[str, float]:
    """The same scores for real held-out stacked images: what a perfect generator would get."""
    from ..data.stacked import stacked

    real = stacked(split="test", n_samples=N_SAMPLES, seed=seed)
    return score(real.x.float() / 255)


def run(settings: Sequence[str] = ("dcgan", "pacgan2"), seeds: int = 1, steps: int = 6000,
        out: Optional[str] = None, workers: int = 1) -> Dict[str, object]:
    t0 = time.perf_counter()
    runs = run_settings(one_run, (), settings, SETTINGS, seeds, steps, workers)
    rows = summarise(runs, settings, SETTINGS, ("modes", "kl"))
    grids = {s: np.asarray(next(r for r in runs if r["setting"] == s)["grid"]) for s in settings}
    res = {"steps": steps, "seeds": seeds, "n_samples": N_SAMPLES, "rows": rows, "real": reference(),
           "published": [dict(zip(("source", "method", "modes", "kl"), p)) for p in PUBLISHED],
           "seconds": round(time.perf_counter() - t0, 1)}
    if out is not None:
        _figure(grids, rows, write_json(out, NAME, res) / f"{NAME}.png")
    return res


def table(res: Dict[str, object]) -> str:
    lines = [f"| setting (stacked Fashion-MNIST, {res['steps']} steps, {res['seeds']} seeds) | modes (of 1,000) | KL |",
             "|---|---|---|"]
    for r in res["rows"].values():
        lines.append(f"| gankit: {r['what']} | {r['modes'][0]:.1f} ± {r['modes'][1]:.1f} "
                     f"| {r['kl'][0]:.3f} ± {r['kl'][1]:.3f} |")
    lines.append(f"| real held-out stacked images | {res['real']['modes']:.0f} | {res['real']['kl']:.3f} |")
    for p in res["published"]:
        lines.append(f"| {p['source']} (stacked MNIST): {p['method']} | {p['modes']} | {p['kl']} |")
    return "\n".join(lines)


def _figure(grids: Dict[str, np.ndarray], rows, path) -> Path:
    from torchvision.utils import make_grid

    plt = pyplot()
    fig, axes = plt.subplots(1, len(grids), figsize=(4 * len(grids), 4.3), squeeze=False)
    for ax, (s, g) in zip(axes.flat, grids.items()):
        ax.imshow(make_grid(torch.from_numpy(g).float(), nrow=8, padding=1).permute(1, 2, 0).clamp(0, 1).numpy())
        ax.set_title(f"{s}: {rows[s]['runs'][0]['modes']:.0f} modes, KL {rows[s]['runs'][0]['kl']:.2f}", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="gankit experiment stacked", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help=f"folder for {NAME}.json and {NAME}.png")
    p.add_argument("--settings", default="dcgan,pacgan2", help=f"comma-separated ({', '.join(SETTINGS)})")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--steps", type=int, default=6000, help="generator steps per run")
    p.add_argument("--workers", type=int, default=1, help="runs in parallel (each on one thread)")
    a = p.parse_args(argv)
    res = run([s.strip() for s in a.settings.split(",") if s.strip()], a.seeds, a.steps, a.out, a.workers)
    print(table(res))
    print(f"wrote {a.out}/{NAME}.json and .png ({res['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
