"""Cycle consistency can be met by hiding the source in the translation (steganography).

The lectures' caveat on CycleGAN ("Unsupervised Conditional Generation"): the cycle loss
asks only that G_BA(G_AB(a)) gives a back, not that the translation G_AB(a) holds no more
than a picture of domain B can. Chu et al. (2017, "CycleGAN, a Master of Steganography")
found a CycleGAN between aerial photos and maps writing the photo's details into the map as
a faint signal that G_BA reads back. Here B holds strictly less than A, so that no honest
translation can be inverted:

* A: Fashion-MNIST garments (the first half of the training set);
* B: two-tone silhouettes of the *other* half (no pair exists): grey level ``TONES[1]``
  where the garment is brighter than :data:`SILHOUETTE_THRESHOLD` (gaps closed, holes
  filled), ``TONES[0]`` elsewhere. Mid-greys, as a map's flat colours are, and both on the
  grid of 8-bit pixels. A silhouette keeps the outline and drops all shading and texture.

After training (least squares, cycle weight 10, no identity term, fp32) the experiment
measures on held-out garments a, with t = G_AB(a) the translation:

1. ``cycle_error``: mean |G_BA(t) - a| (pixels in [0, 1]);
2. ``perturbed``: the same when t is perturbed before going back, in ways that leave the
   picture as one sees it (:func:`perturbations`): a blur, faint noise, requantisation;
3. ``honest``: what a decoder that sees only the true silhouette s(a) reaches: this run's
   G_BA(s(a)), a decoder of G_BA's architecture trained *with the pairs* (s(a), a)
   (``supervised``), and the per-pixel median garment given the pixel's bit (``lookup``);
4. ``translation``: how far t is from a two-tone picture (the residual from the nearest
   one, in 1/255: mean, 99th percentile, and the mean inside the silhouette's flat parts)
   and the share of pixels where that nearest two-tone picture is the true silhouette.

The claim holds when (1) is far below the best of (3) while t is a silhouette, and the
perturbations push (1) up towards (3): the shading rides on a signal one does not see.
At the defaults on Fashion-MNIST (the README's Experiments table) (1) is well below (3), a
1-pixel blur or two-tone requantisation brings it to (3), but 8-bit requantisation and noise
of a few /255 do not: the hidden signal is a visible texture of several grey levels, and the
translation agrees with the true silhouette on only about half its pixels.

``gankit experiment cycle-hides --out DIR [--steps N] [--seed S]`` writes
``DIR/cycle_hides.json`` and ``DIR/cycle_hides.png`` (rows of pictures and the errors).
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from . import write_json

__all__ = ["TONES", "SILHOUETTE_THRESHOLD", "PERTURBATIONS", "silhouettes", "gaussian_blur", "add_noise",
           "requantise", "binarise", "perturbations", "lookup_table", "hide", "run", "save_figure", "main"]

NAME = "cycle_hides"
Tensor = torch.Tensor

#: the command line's defaults: minutes on a 2-core CPU
STEPS, WIDTH, BLOCKS, D_WIDTH, BATCH_SIZE, LR = 6000, 16, 2, 32, 4, 5e-4
#: the silhouettes' grey levels (/255) off and on
TONES = (68, 187)
#: a garment pixel brighter than this (in [0, 1]) is inside the silhouette
SILHOUETTE_THRESHOLD = 0.1


# --------------------------------------------------------------------------- domain B

def _fill_holes(on: Tensor) -> Tensor:
    """``on`` (bool (N, 1, H, W)) with its holes filled: a pixel stays off only when a
    4-connected path of off pixels leads from it to the border."""
    off = ~on
    outside = torch.zeros_like(off)
    for edge in ((..., 0, slice(None)), (..., -1, slice(None)), (..., slice(None), 0), (..., slice(None), -1)):
        outside[edge] = off[edge]
    while True:
        grown = outside.clone()
        grown[..., 1:, :] |= outside[..., :-1, :]
        grown[..., :-1, :] |= outside[..., 1:, :]
        grown[..., :, 1:] |= outside[..., :, :-1]
        grown[..., :, :-1] |= outside[..., :, 1:]
        grown &= off
        if torch.equal(grown, outside):
            return ~outside
        outside = grown


def _close(on: Tensor) -> Tensor:
    """Morphological closing by a 3x3 square on an off background: shuts gaps one pixel wide."""
    plane = F.pad(on.float(), (2, 2, 2, 2))
    shut = -F.max_pool2d(-F.max_pool2d(plane, 3, 1, 1), 3, 1, 1)
    return shut[..., 2:-2, 2:-2] > 0.5


def silhouettes(x: Tensor) -> Tensor:
    """The two-tone silhouette (uint8, :data:`TONES`) of each uint8 grey image of ``x`` (N, 1, H, W)."""
    _check_images("images", x)
    on = _fill_holes(_close(x.float() / 255.0 > SILHOUETTE_THRESHOLD))
    return torch.where(on, torch.tensor(TONES[1], dtype=torch.uint8), torch.tensor(TONES[0], dtype=torch.uint8))


# --------------------------------------------------------------------------- perturbations
# Each takes pictures (N, C, H, W) in [0, 1] and returns pictures in [0, 1].

def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """A Gaussian blur of ``sigma`` pixels (separable, cut at 3 sigma, normalised, borders replicated)."""
    if not sigma > 0:
        raise ConfigError(f"the blur's sigma must be positive (pixels), got {sigma}")
    radius = max(1, math.ceil(3.0 * sigma))
    k = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=x.dtype) / sigma) ** 2)
    k = (k / k.sum()).to(x.device)
    c = x.shape[1]
    y = F.pad(x, (radius,) * 4, mode="replicate")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def add_noise(x: Tensor, std: float, seed: int = 0) -> Tensor:
    """``x`` plus seeded Gaussian noise of standard deviation ``std``, clipped to [0, 1]."""
    if not std >= 0:
        raise ConfigError(f"the noise's standard deviation must not be negative, got {std}")
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(int(seed)))
    return (x + std * noise.to(x.device, x.dtype)).clamp(0.0, 1.0)


def requantise(x: Tensor, levels: int = 256) -> Tensor:
    """``x`` rounded to ``levels`` evenly spaced values in [0, 1] (256: an 8-bit picture)."""
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 2:
        raise ConfigError(f"requantisation needs an integer number of levels of at least 2, got {levels!r}")
    return torch.round(x.clamp(0.0, 1.0) * (levels - 1)) / (levels - 1)


def binarise(x: Tensor) -> Tensor:
    """The nearest two-tone picture: each pixel set to the nearer of :data:`TONES` (a tie goes up)."""
    lo, hi = TONES[0] / 255.0, TONES[1] / 255.0
    return torch.where(x >= 0.5 * (lo + hi), torch.full_like(x, hi), torch.full_like(x, lo))


def perturbations(seed: int = 0) -> Dict[str, Callable[[Tensor], Tensor]]:
    """What may happen to a translation before it goes back: name -> function."""
    return {
        "blur 0.5 px": lambda t: gaussian_blur(t, 0.5),
        "blur 1 px": lambda t: gaussian_blur(t, 1.0),
        "noise 1/255": lambda t: add_noise(t, 1 / 255, seed),
        "noise 4/255": lambda t: add_noise(t, 4 / 255, seed + 1),
        "noise 16/255": lambda t: add_noise(t, 16 / 255, seed + 2),
        "8 bits (256 levels)": lambda t: requantise(t, 256),
        "32 levels": lambda t: requantise(t, 32),
        "two tones": binarise,
    }


#: the names of :func:`perturbations`, in order
PERTURBATIONS = tuple(perturbations())


# --------------------------------------------------------------------------- honest decoders

def lookup_table(a: Tensor, on: Tensor) -> Tensor:
    """Per pixel, the median of ``a`` (N, C, H, W) over the images whose bit ``on`` (bool, same
    shape) is off, then on: (2, C, H, W); a bit never seen at a pixel gives the median over all."""
    overall = a.median(dim=0).values
    rows = []
    for bit in (False, True):
        med = torch.where(on == bit, a, torch.full_like(a, float("nan"))).nanmedian(dim=0).values
        rows.append(torch.where(torch.isnan(med), overall, med))
    return torch.stack(rows)


def _supervised(s: Tensor, a: Tensor, steps: int, width: int, blocks: int, batch_size: int, lr: float,
                seed: int) -> torch.nn.Module:
    """A decoder s -> a of G_BA's architecture trained on the pairs with L1 (pixels in [-1, 1])."""
    from ..nets.resnet_translator import ResnetGenerator

    torch.manual_seed(seed)
    net = ResnetGenerator(1, 1, width=width, blocks=blocks, norm="batch")
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        i = torch.randint(0, len(a), (batch_size,), generator=g)
        loss = (net(s[i] * 2 - 1) - (a[i] * 2 - 1)).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net


@torch.no_grad()
def _apply(net: torch.nn.Module, x: Tensor, batch: int = 500) -> Tensor:
    """``net`` (eval mode, on the CPU) on pictures in [0, 1]; its output in [0, 1]."""
    net = net.eval().cpu()
    out = torch.cat([net(x[i:i + batch] * 2 - 1) for i in range(0, len(x), batch)])
    return out.add(1.0).div(2.0).clamp(0.0, 1.0)


def _l1(x: Tensor, y: Tensor) -> float:
    return float((x - y).abs().mean())


# --------------------------------------------------------------------------- the experiment

def _check_images(what: str, x) -> None:
    if not isinstance(x, Tensor) or x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 1:
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise ConfigError(f"{what} must be uint8 grey images (N, 1, H, W), got {got}")


def _check_int(key: str, value, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ConfigError(f"{key} must be an integer of at least {least}, got {value!r}")


def cyclegan_config(out: Path, steps: int, seed: int, width: int, blocks: int, d_width: int, batch_size: int,
                    lr: float, threads: int, time_limit: float) -> dict:
    """The CycleGAN's config: A from ``OUT/data/a.npz``, B from ``OUT/data/b.npz``."""
    g = {"name": "resnet", "width": width, "blocks": blocks, "norm": "batch"}
    d = {"name": "patchgan", "width": d_width, "receptive_field": 16, "norm": "instance"}
    return {"method": {"name": "cyclegan", "objective": "least_squares", "cycle_weight": 10.0,
                       "identity_weight": 0.0},
            "data": {"name": "array", "path": str(out / "data" / "a.npz")},
            "data_b": {"name": "array", "path": str(out / "data" / "b.npz")},
            "generator": g, "generator_ba": g, "discriminator": d, "discriminator_a": d,
            "train": {"steps": steps, "batch_size": batch_size, "seed": seed, "log_every": max(1, min(100, steps)),
                      "sample_every": 0, "checkpoint_every": 0, "progress": "none", "time_limit": time_limit},
            "optim": {"lr_g": lr, "lr_d": lr, "beta1": 0.5, "beta2": 0.999},
            "runtime": {"precision": "fp32", "threads": threads},
            "out": str(out / "run")}


def measure(G_ab: torch.nn.Module, G_ba: torch.nn.Module, test_images: Tensor, honest: Dict[str, Tensor],
            seed: int = 0, n_show: int = 8) -> Tuple[Dict[str, object], Dict[str, Tensor]]:
    """Items 1-4 of the module on ``test_images`` (uint8), given the ``honest`` reconstructions
    of other decoders from the true silhouettes; and the pictures of the figure."""
    a = test_images.float() / 255.0
    s_u8 = silhouettes(test_images)
    s = s_u8.float() / 255.0
    t = _apply(G_ab, a)
    rec = _apply(G_ba, t)
    perturbed, shown_rec = {}, {}
    for name, fn in perturbations(seed).items():
        shown = fn(t)
        shown_rec[name] = _apply(G_ba, shown)
        perturbed[name] = {"reconstruction_error": _l1(shown_rec[name], a), "change_of_translation": _l1(shown, t)}
    honest = {"G_BA(silhouette)": _apply(G_ba, s), **honest}
    errors = {name: _l1(r, a) for name, r in honest.items()}
    residual = t - binarise(t)
    flat = F.max_pool2d(s, 3, 1, 1) == -F.max_pool2d(-s, 3, 1, 1)    # the 3x3 neighbourhood is one tone
    res = {"cycle_error": _l1(rec, a), "perturbed": perturbed, "honest": errors,
           "best_honest": min(errors.values()),
           "translation": {"residual_mean_in_255": 255 * float(residual.abs().mean()),
                           "residual_p99_in_255": 255 * float(residual.abs().flatten().kthvalue(
                               max(1, math.ceil(0.99 * residual.numel()))).values),
                           "residual_mean_flat_in_255": 255 * float(residual[flat].abs().mean()),
                           "agreement_with_true_silhouette": float((binarise(t) == s).float().mean())}}
    k = n_show
    pictures = {"garment": a[:k], "true silhouette": s[:k], "translation": t[:k], "residual": residual[:k],
                "reconstruction": rec[:k], **{f"after {name}": r[:k] for name, r in shown_rec.items()},
                **{f"honest: {name}": r[:k] for name, r in honest.items()}}
    return res, pictures


def hide(train_images: Tensor, test_images: Tensor, out, steps: int = STEPS, seed: int = 0, width: int = WIDTH,
         blocks: int = BLOCKS, d_width: int = D_WIDTH, batch_size: int = BATCH_SIZE, lr: float = LR,
         supervised_steps: Optional[int] = None, threads: int = 0, time_limit: float = 0.0, n_show: int = 8
         ) -> Tuple[Dict[str, object], Dict[str, Tensor]]:
    """Train the CycleGAN in ``OUT/run`` and measure (see the module). ``train_images`` and
    ``test_images`` are uint8 garments (N, 1, H, W): A is the first half of ``train_images``,
    B the silhouettes of the second half. The supervised decoder trains for
    ``supervised_steps`` (default: a quarter of the CycleGAN's steps done, as one network
    fitted to pairs by L1 needs far fewer than an adversarial pair; 0 leaves it out). Returns
    the numbers and the figure's pictures."""
    import gankit

    for key, value, least in (("steps", steps, 1), ("width", width, 1), ("blocks", blocks, 0),
                              ("d_width", d_width, 1), ("batch_size", batch_size, 1), ("threads", threads, 0),
                              ("n_show", n_show, 1)):
        _check_int(key, value, least)
    if supervised_steps is not None:
        _check_int("supervised_steps", supervised_steps, 0)
    if not lr > 0:
        raise ConfigError(f"lr must be positive, got {lr}")
    if not time_limit >= 0:
        raise ConfigError(f"time_limit must not be negative (seconds; 0: none), got {time_limit}")
    _check_images("train_images", train_images)
    _check_images("test_images", test_images)
    half = len(train_images) // 2
    if half < batch_size:
        raise ConfigError(f"train_images holds {len(train_images)} images; each half (A and B) needs at least "
                          f"batch_size={batch_size}")
    if len(test_images) < n_show:
        raise ConfigError(f"test_images holds {len(test_images)} images, fewer than the {n_show} the figure shows")

    out = Path(out)
    (out / "data").mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "data" / "a.npz", x=train_images[:half].numpy())
    np.savez_compressed(out / "data" / "b.npz", x=silhouettes(train_images[half:]).numpy())
    t0 = time.time()
    r = gankit.train(cyclegan_config(out, steps, seed, width, blocks, d_width, batch_size, lr, threads, time_limit))
    seconds = {"cyclegan": time.time() - t0}
    done = int(r.step)

    t0 = time.time()
    a_pairs, s_pairs, s_test = train_images[:half].float() / 255.0, silhouettes(train_images[:half]), \
        silhouettes(test_images)
    table = lookup_table(a_pairs, s_pairs == TONES[1])
    honest = {"lookup": torch.where(s_test == TONES[1], table[1], table[0])}
    supervised_steps = max(1, done // 4) if supervised_steps is None else supervised_steps
    if supervised_steps:
        net = _supervised(s_pairs.float() / 255.0, a_pairs, supervised_steps, width, blocks, batch_size, lr, seed)
        honest["supervised"] = _apply(net, s_test.float() / 255.0)
    seconds["honest"] = time.time() - t0
    res, pictures = measure(r.method.for_sampling("generator"), r.method.for_sampling("generator_ba"),
                            test_images, honest, seed, n_show)
    res = {"steps": done, "seed": seed,
           "settings": {"width": width, "blocks": blocks, "d_width": d_width, "batch_size": batch_size, "lr": lr,
                        "cycle_weight": 10.0, "objective": "least_squares", "precision": "fp32",
                        "supervised_steps": supervised_steps, "tones": list(TONES), "n_a": half,
                        "n_b": len(train_images) - half, "n_test": len(test_images)},
           **res, "seconds": seconds}
    return res, pictures


def save_figure(res: Dict[str, object], pictures: Dict[str, Tensor], path: Path, title: str = "") -> Path:
    """Left: rows of pictures (the residual shown as 1/2 + gain r, the gain mapping its
    largest |r| to 1/2); right: the reconstruction error of each row against the best honest one."""
    from ..viz.plots import pyplot, save_figure as write

    plt = pyplot()
    rows, labels = [], []
    for label, x in pictures.items():
        if label == "residual":
            gain = 0.5 / max(float(x.abs().max()), 1e-12)
            x = (0.5 + gain * x).clamp(0, 1)
            label = f"residual x{gain:.0f}"
        rows.append(torch.cat(list(x[:, 0]), dim=1))
        labels.append(label)
    h, pad = rows[0].shape[0], 2
    grid = torch.ones(len(rows) * (h + pad) - pad, rows[0].shape[1])
    for i, row in enumerate(rows):
        grid[i * (h + pad):i * (h + pad) + h] = row
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 0.42 * len(rows) + 1.0), dpi=100,
                                 gridspec_kw={"width_ratios": [1.4, 1]})
    ax.imshow(grid.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([i * (h + pad) + h / 2 for i in range(len(rows))])
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    bars = {"reconstruction": res["cycle_error"],
            **{f"after {k}": v["reconstruction_error"] for k, v in res["perturbed"].items()},
            **{f"honest: {k}": v for k, v in res["honest"].items()}}
    names = list(bars)[::-1]
    colours = ["tab:green" if n.startswith("honest") else "tab:red" if n == "reconstruction" else "tab:blue"
               for n in names]
    bx.barh(names, [bars[n] for n in names], color=colours)
    bx.axvline(res["best_honest"], color="k", ls="--", lw=1, label="best honest")
    bx.set_xlabel("mean |reconstruction - garment| (pixels in [0, 1])", fontsize=8)
    bx.tick_params(labelsize=7)
    bx.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return write(fig, path)


def run(out, steps: int = STEPS, seed: int = 0, n_eval: int = 2000, data_root: Optional[str] = None,
        **kwargs) -> Dict[str, object]:
    """The experiment on Fashion-MNIST (measured on the first ``n_eval`` test garments);
    writes ``OUT/cycle_hides.json`` and ``.png``."""
    from ..data.images import fashion_mnist

    _check_int("n_eval", n_eval, 8)
    out = Path(out)
    t0 = time.time()
    train_x = fashion_mnist(root=data_root, split="train").x
    test_x = fashion_mnist(root=data_root, split="test").x[:n_eval]
    res, pictures = hide(train_x, test_x, out, steps=steps, seed=seed, **kwargs)
    res["data"] = "fashion_mnist"
    res["seconds"]["total"] = time.time() - t0
    write_json(out, NAME, res)
    save_figure(res, pictures, out / f"{NAME}.png",
                f"CycleGAN garments -> silhouettes, {res['steps']} steps: cycle error {res['cycle_error']:.3f}, "
                f"best honest {res['best_honest']:.3f}")
    return res


def report(res: Dict[str, object]) -> List[str]:
    """Lines that summarise the numbers."""
    tr = res["translation"]
    lines = [f"cycle error {res['cycle_error']:.4f} (best decoder of the true silhouette {res['best_honest']:.4f})"]
    lines += [f"  after {name:20s} {p['reconstruction_error']:.4f}  (the translation moved by "
              f"{255 * p['change_of_translation']:.2f}/255 on average)" for name, p in res["perturbed"].items()]
    lines += [f"  honest: {name:20s} {v:.4f}" for name, v in res["honest"].items()]
    lines.append(f"translation: {100 * tr['agreement_with_true_silhouette']:.1f}% of pixels on the true silhouette's "
                 f"tone; residual from two tones {tr['residual_mean_in_255']:.2f}/255 mean, "
                 f"{tr['residual_mean_flat_in_255']:.2f}/255 inside flat parts, {tr['residual_p99_in_255']:.1f}/255 "
                 f"99th percentile")
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="gankit experiment cycle-hides", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=STEPS, help=f"CycleGAN updates (default {STEPS})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-eval", type=int, default=2000, help="held-out garments measured (default 2000)")
    p.add_argument("--supervised-steps", type=int, default=None,
                   help="updates of the supervised decoder (default: a quarter of the CycleGAN's; 0 leaves it out)")
    p.add_argument("--time-limit", type=float, default=0.0, help="stop training after this many seconds (0: none)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    a = p.parse_args(argv)
    res = run(Path(a.out), a.steps, a.seed, a.n_eval, supervised_steps=a.supervised_steps,
              time_limit=a.time_limit, threads=a.threads)
    print("\n".join(report(res)))
    print(f"wrote {Path(a.out) / (NAME + '.json')} and {Path(a.out) / (NAME + '.png')}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
