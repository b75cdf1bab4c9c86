"""Likelihood is not quality: a generator that emits noise 99% of the time loses only log(100) nats.

The lecture's argument (GAN Evaluation, "Likelihood v.s. Quality"): let generator 1 be
good, and generator 2 emit random noise with probability 0.99 and do what generator 1
does with probability 0.01.  Then p2(x) = 0.01 p1(x) + 0.99 p_noise(x) >= 0.01 p1(x), so
per test point log p2(x) >= log p1(x) - log 100: generator 2 loses at most
log 100 = 4.605 nats, a small change next to log-likelihoods of hundreds of nats, while
99% of its output is garbage.

Setup (Fashion-MNIST, pixels scaled to [0, 1], D = 784):

* the test split is shuffled (seeded) and cut into validation (``n_validation``), test
  (``n_test``) and the rest, which is the output of the *good generator*: held-out real
  images, in random order.  The three parts share no image, so sigma is chosen on images
  that are neither scored nor among any generator's samples;
* the *mixture generator* outputs, per draw, the good generator's next image with
  probability 0.01 and uniform noise U[0, 1]^784 otherwise;
* Parzen protocol (Goodfellow et al. 2014, :mod:`gankit.metrics.parzen`): sigma from
  ``logspace(-1, 0, 10)`` by the validation log-likelihood, then the mean test
  log-likelihood with its standard error.  The good generator contributes ``n_good``
  samples.  The mixture contributes a stratified draw of ``100 * n_good`` samples: the same
  ``n_good`` good images plus ``99 * n_good`` noise images, i.e. exactly 1% good.  Its KDE
  is then exactly 0.01 KDE_good + 0.99 KDE_noise, the lecture's p2, and the measured gap
  isolates the mixture weight.  For contrast, ``ll_mixture_equal_n`` scores a mixture KDE
  built from only ``n_good`` draws (about 1% of them good): with the same number of
  samples the KDE resolves the good part far worse, so the number depends at least as
  much on how many samples were drawn as on the generator -- the lecture's other
  complaint about this estimator;
* quality: FID and improved precision/recall (k = 3) against ``n_quality`` real images
  from the *training* split, on ``n_quality`` draws from each generator, on flattened
  pixels or on a ``features`` callable (images (n, 1, 28, 28) float in [0, 1] -> (n, F);
  :func:`pooled_pixels` gives k x k average pooling, ``--features pool4`` on the command line).

Trained models beside it (``--pixelcnn RUN``, ``--gan RUN``; :func:`model_rows`): each run draws
``n_good`` samples, scored as above (Parzen log-likelihood with sigma chosen on the same
validation images, FID and precision/recall against the same real images). A model with an
exact likelihood (method ``pixelcnn``) also gives the exact log-probability of the same test
images: ``exact_bits_per_dim``, ``exact_nll_nats`` (log P of the 8-bit picture) and
``exact_log_density`` = log P + D log 256, the density on [0, 1]^D of the model with each value
spread uniformly over its bin, the units of the Parzen numbers. The lecture's mixture is then
no thought experiment: with probability 0.99 a uniformly random 8-bit picture, else the model,
log p2 = log(0.01 P + 0.99 / 256^D) exactly (``exact_mixture_*``): its likelihood moves by at most
log 100 nats (``exact_mixture_gap``; 0.0085 bits per dimension on 784 pixels) while 99 of its
100 samples are noise. The Parzen number of the PixelCNN's own samples beside its exact
log-density shows what the estimate misses.

Run ``python -m gankit.experiments.likelihood_vs_quality --out DIR`` (about 10-20 s on 2
cores with the defaults); it writes ``DIR/likelihood_vs_quality.json`` and ``.png`` (and, with
trained models, ``likelihood_vs_quality_models.png``: their samples and numbers).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Optional

import numpy as np

from ..metrics.parzen import DEFAULT_SIGMAS, parzen_evaluate
from ..viz.plots import pyplot, save_figure as write_figure

__all__ = ["likelihood_vs_quality", "model_rows", "pooled_pixels", "save_figure", "save_models_figure", "main"]

P_GOOD = 0.01


def _load(split: str, data_root: Optional[str]) -> np.ndarray:
    from ..data.images import fashion_mnist

    return fashion_mnist(root=data_root, split=split).x.numpy()


def pooled_pixels(k: int) -> Callable[[np.ndarray], np.ndarray]:
    """A features callable: k x k average pooling of (n, C, H, W) images, flattened (H, W divisible by k)."""
    def pool(images: np.ndarray) -> np.ndarray:
        a = np.asarray(images, dtype=np.float64)
        n, c, h, w = a.shape
        if h % k or w % k:
            raise ValueError(f"pool{k} needs image sides divisible by {k}, got {h}x{w}")
        return a.reshape(n, c, h // k, k, w // k, k).mean(axis=(3, 5)).reshape(n, -1)

    pool.__name__ = f"pool{k}"
    return pool


def likelihood_vs_quality(n_good: int = 500, n_validation: int = 500, n_test: int = 1000,
                          n_quality: int = 2000, seed: int = 0,
                          features: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                          sigmas=DEFAULT_SIGMAS, data_root: Optional[str] = None,
                          test_images: Optional[np.ndarray] = None,
                          train_images: Optional[np.ndarray] = None,
                          return_arrays: bool = False, models: Optional[Dict[str, object]] = None,
                          ) -> Dict[str, object]:
    """Run the experiment; returns a dict of numbers (see the module docstring).

    ``test_images`` / ``train_images`` (uint8 (N, 1, 28, 28)) replace the Fashion-MNIST
    splits when given.  Keys: ``ll_good``, ``ll_good_stderr``, ``sigma_good``,
    ``ll_mixture``, ``ll_mixture_stderr``, ``sigma_mixture``, ``ll_gap`` (good - mixture,
    nats), ``log_100``, ``gap_over_log_100``, ``bound_holds`` (every test point satisfies
    log p2 >= log p1 - log 100 at the good generator's sigma), ``ll_mixture_equal_n``,
    ``gap_equal_n``, ``fid_good``, ``fid_mixture``, ``precision_good``,
    ``precision_mixture``, ``recall_good``, ``recall_mixture``, ``mixture_good_fraction``
    (good images among the mixture's quality draws), ``validation`` (what sigma was chosen
    on, in words), sizes and ``seconds``.  With ``return_arrays``, ``_arrays`` also holds
    ``rows``: the test-split indices of the validation, test and good-generator images.

    ``models`` (name -> a trained run of ``gankit.load_run``, pictures of the data's size) adds
    ``models``: name -> the numbers of :func:`model_rows` on the same validation, test and real
    images (and, with ``return_arrays``, their first 64 samples under ``_arrays["models"]``).
    """
    from ..metrics import fid, precision_recall          # written alongside; imported when used
    from ..metrics.parzen import parzen_log_density

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    test_u8 = _load("test", data_root) if test_images is None else np.asarray(test_images)
    train_u8 = _load("train", data_root) if train_images is None else np.asarray(train_images)
    n_stream = len(test_u8) - n_validation - n_test
    if n_stream < max(n_good, 1) or n_quality > len(train_u8):
        raise ValueError(f"not enough images: {len(test_u8)} test images cannot give {n_validation} validation + "
                         f"{n_test} test + {n_good} good samples, or {len(train_u8)} train images fewer than "
                         f"n_quality={n_quality}")
    to_unit = lambda a: (a.astype(np.float32) / np.float32(255.0))  # noqa: E731
    order = rng.permutation(len(test_u8))
    validation = to_unit(test_u8[order[:n_validation]])
    test = to_unit(test_u8[order[n_validation:n_validation + n_test]])
    stream = order[n_validation + n_test:]                      # the good generator's outputs, in order
    shape = test_u8.shape[1:]
    dim = int(np.prod(shape))

    def noise(n: int) -> np.ndarray:
        return rng.random((n,) + shape, dtype=np.float32)

    # ---- Parzen log-likelihood ---------------------------------------------------------------
    good = to_unit(test_u8[stream[:n_good]])
    mix_kde = np.concatenate([good, noise(99 * n_good)])        # stratified: exactly 1% good
    res_good = parzen_evaluate(good, validation, test, sigmas)
    res_mix = parzen_evaluate(mix_kde, validation, test, sigmas)
    lp_good = parzen_log_density(good, test, res_good["sigma"])
    lp_mix = parzen_log_density(mix_kde, test, res_good["sigma"])
    bound_holds = bool(np.all(lp_mix >= lp_good - math.log(1.0 / P_GOOD) - 1e-9))
    del mix_kde
    is_good = rng.random(n_good) < P_GOOD                       # same sample count, ~1% good
    eq = noise(n_good)
    eq[is_good] = good[:int(is_good.sum())]
    res_eq = parzen_evaluate(eq, validation, test, sigmas)

    # ---- quality metrics ------------------------------------------------------------------
    real_q = to_unit(train_u8[rng.choice(len(train_u8), n_quality, replace=False)])
    good_q = to_unit(test_u8[stream[np.arange(n_quality) % len(stream)]])
    pick = rng.random(n_quality) < P_GOOD
    mix_q = noise(n_quality)
    mix_q[pick] = good_q[:int(pick.sum())]
    feat = (lambda a: a.reshape(len(a), -1)) if features is None else features
    f_real, f_good, f_mix = (np.asarray(feat(a), dtype=np.float64) for a in (real_q, good_q, mix_q))
    pr_good = precision_recall(f_real, f_good, k=3)
    pr_mix = precision_recall(f_real, f_mix, k=3)

    gap = res_good["mean"] - res_mix["mean"]
    out: Dict[str, object] = {
        "ll_good": res_good["mean"], "ll_good_stderr": res_good["stderr"], "sigma_good": res_good["sigma"],
        "ll_mixture": res_mix["mean"], "ll_mixture_stderr": res_mix["stderr"], "sigma_mixture": res_mix["sigma"],
        "ll_gap": gap, "log_100": math.log(100.0), "gap_over_log_100": gap / math.log(100.0),
        "bound_holds": bound_holds,
        "ll_mixture_equal_n": res_eq["mean"], "sigma_mixture_equal_n": res_eq["sigma"],
        "gap_equal_n": res_good["mean"] - res_eq["mean"],
        "validation_ll_by_sigma": {"good": res_good["by_sigma"], "mixture": res_mix["by_sigma"],
                                   "mixture_equal_n": res_eq["by_sigma"]},
        "fid_good": fid(f_real, f_good), "fid_mixture": fid(f_real, f_mix),
        "precision_good": pr_good.precision, "precision_mixture": pr_mix.precision,
        "recall_good": pr_good.recall, "recall_mixture": pr_mix.recall,
        "mixture_good_fraction": float(pick.mean()),
        "features": "pixels" if features is None else getattr(features, "__name__", "callable"),
        "validation": f"{n_validation} test-split images (seed {seed}), disjoint from the {n_test} scored "
                      f"test images and from the good generator's images",
        "n_good": n_good, "n_mixture_kde": 100 * n_good, "n_validation": n_validation, "n_test": n_test,
        "n_quality": n_quality, "dim": dim, "seed": seed,
        "seconds": time.perf_counter() - t0,
    }
    if models:
        rows, pictures = model_rows(models, test_u8[order[n_validation:n_validation + n_test]], validation, real_q,
                                    n_samples=n_good, seed=seed, sigmas=sigmas, features=feat)
        out["models"] = rows
        out["seconds"] = time.perf_counter() - t0
    if return_arrays:
        out["_arrays"] = {"good": good_q[:64], "mixture": mix_q[:64],
                          "rows": {"validation": order[:n_validation], "test": order[n_validation:n_validation + n_test],
                                   "good": stream[:n_good]}}
        if models:
            out["_arrays"]["models"] = pictures
    return out


def model_rows(models: Dict[str, object], test_u8: np.ndarray, validation: np.ndarray, real_q: np.ndarray,
               n_samples: int = 500, seed: int = 0, sigmas=DEFAULT_SIGMAS,
               features: Optional[Callable[[np.ndarray], np.ndarray]] = None):
    """Trained runs scored as the experiment's generators are: ``n_samples`` samples of each (seed
    ``seed``) give the Parzen log-likelihood of the test images (uint8 ``test_u8``; sigma chosen
    on ``validation``, in [0, 1]), FID and precision/recall against ``real_q`` (in [0, 1]) on
    ``features``; a run whose method has an exact likelihood (``method.log_prob``: pixelcnn)
    adds its exact numbers on the same test images and those of its 99%-noise mixture (see the
    module). Returns (name -> numbers, name -> its first 64 samples)."""
    from ..metrics import fid, precision_recall

    feat = (lambda a: a.reshape(len(a), -1)) if features is None else features
    f_real = np.asarray(feat(real_q), dtype=np.float64)
    test = test_u8.astype(np.float32) / np.float32(255.0)
    dim = int(np.prod(test_u8.shape[1:]))
    rows, pictures = {}, {}
    for name, run in models.items():
        t0 = time.perf_counter()
        if tuple(run.info.shape) != tuple(test_u8.shape[1:]):
            raise ValueError(f"run {name} ({run.path}) makes pictures of shape {tuple(run.info.shape)}, but the "
                             f"experiment's images have shape {tuple(test_u8.shape[1:])}")
        samples = run.sample(n_samples, seed=seed).numpy().astype(np.float32)     # [0, 1]
        parzen = parzen_evaluate(samples, validation, test, sigmas)
        f_fake = np.asarray(feat(samples), dtype=np.float64)
        pr = precision_recall(f_real, f_fake, k=3)
        row: Dict[str, object] = {
            "method": run.config.method["name"], "run": str(run.path), "step": run.step,
            "parzen": parzen["mean"], "parzen_stderr": parzen["stderr"], "parzen_sigma": parzen["sigma"],
            "fid": fid(f_real, f_fake), "precision": pr.precision, "recall": pr.recall, "n_samples": n_samples,
        }
        if hasattr(run.method, "log_prob"):
            import torch

            x = torch.from_numpy(test_u8).float().div(127.5).sub(1.0)
            log_p = run.method.log_prob(x).numpy()                          # nats, log P of the 8-bit pictures
            log_uniform = -dim * math.log(256.0)                            # one uniformly random 8-bit picture
            log_mix = np.logaddexp(math.log(P_GOOD) + log_p, math.log(1.0 - P_GOOD) + log_uniform)
            to_bits = 1.0 / (dim * math.log(2.0))
            row.update({
                "exact_nll_nats": float(-log_p.mean()), "exact_bits_per_dim": float(-log_p.mean() * to_bits),
                "exact_log_density": float(log_p.mean() - log_uniform),
                "exact_mixture_nll_nats": float(-log_mix.mean()),
                "exact_mixture_bits_per_dim": float(-log_mix.mean() * to_bits),
                "exact_mixture_gap": float(log_p.mean() - log_mix.mean()),
                "exact_mixture_gap_bound_holds": bool(np.all(log_p - log_mix <= math.log(1.0 / P_GOOD) + 1e-9)),
            })
        row["seconds"] = time.perf_counter() - t0
        rows[name] = row
        pictures[name] = samples[:64]
    return rows, pictures


def _grid(ax, images: np.ndarray, title: str) -> None:
    n = int(math.ceil(math.sqrt(len(images))))
    h, w = images.shape[-2:]
    canvas = np.ones((n * (h + 1) - 1, n * (w + 1) - 1))
    for i, img in enumerate(images):
        r, c = divmod(i, n)
        canvas[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = img.reshape(h, w)
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def save_figure(res: Dict[str, object], path) -> Path:
    """The PNG: samples of both generators, validation log-likelihood vs sigma, and the metrics."""
    plt = pyplot()

    arrays = res.get("_arrays")
    fig, axes = plt.subplots(2, 2, figsize=(10, 9))
    if arrays is not None:
        _grid(axes[0, 0], arrays["good"], "good generator (held-out real images)")
        _grid(axes[0, 1], arrays["mixture"], "mixture: noise 99%, good 1%")
    else:
        axes[0, 0].axis("off"), axes[0, 1].axis("off")
    ax = axes[1, 0]
    labels = ["good", "mixture\n(100x samples)", "mixture\n(same n)"]
    vals = [res["ll_good"], res["ll_mixture"], res["ll_mixture_equal_n"]]
    errs = [res["ll_good_stderr"], res["ll_mixture_stderr"], 0.0]
    ax.bar(range(3), vals, yerr=errs, color=["tab:blue", "tab:red", "tab:gray"], capsize=3)
    ax.axhline(res["ll_good"] - res["log_100"], color="k", ls="--", lw=0.8, label="good - log 100")
    for i, v in enumerate(vals):
        ax.annotate(f"{v:.1f}", (i, v), ha="center", va="bottom" if v >= 0 else "top", fontsize=8)
    ax.set_xticks(range(3), labels, fontsize=8)
    ax.set_ylabel("Parzen test log-likelihood (nats)")
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(f"Parzen: gap {res['ll_gap']:.2f} nats vs log 100 = {res['log_100']:.2f} "
                 f"(sigma {res['sigma_good']:.3f} / {res['sigma_mixture']:.3f})", fontsize=9)
    ax = axes[1, 1]
    names = ["precision", "recall"]
    x = np.arange(len(names))
    ax.bar(x - 0.2, [res["precision_good"], res["recall_good"]], 0.4, label="good", color="tab:blue")
    ax.bar(x + 0.2, [res["precision_mixture"], res["recall_mixture"]], 0.4, label="mixture", color="tab:red")
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    ax.set_title(f"FID ({res['features']}): good {res['fid_good']:.1f}, mixture {res['fid_mixture']:.1f}",
                 fontsize=9)
    fig.suptitle(f"Likelihood is not quality: log-likelihood {res['ll_good']:.1f} -> {res['ll_mixture']:.1f} "
                 f"nats, precision {res['precision_good']:.2f} -> {res['precision_mixture']:.2f}", fontsize=10)
    fig.tight_layout()
    return write_figure(fig, path)


def save_models_figure(res: Dict[str, object], path) -> Path:
    """The PNG of the trained models: each one's samples, titled with its numbers."""
    plt = pyplot()

    rows = res["models"]
    pictures = (res.get("_arrays") or {}).get("models", {})
    fig, axes = plt.subplots(1, len(rows), figsize=(4.5 * len(rows), 6.0), squeeze=False)
    for ax, (name, row) in zip(axes[0], rows.items()):
        if name in pictures:
            _grid(ax, pictures[name], name)
        else:
            ax.axis("off")
        lines = [f"{name} ({row['method']}, step {row['step']})",
                 f"Parzen {row['parzen']:.1f} +- {row['parzen_stderr']:.1f} nats",
                 f"FID {row['fid']:.1f}  precision {row['precision']:.2f}  recall {row['recall']:.2f}"]
        if "exact_bits_per_dim" in row:
            lines.append(f"exact: {row['exact_bits_per_dim']:.3f} bits/dim, log-density {row['exact_log_density']:.1f}")
            lines.append(f"99%-noise mixture: {row['exact_mixture_bits_per_dim']:.3f} bits/dim "
                         f"(-{row['exact_mixture_gap']:.2f} nats)")
        ax.set_title("\n".join(lines), fontsize=8)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.8, wspace=0.06)   # room for five title lines
    return write_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m gankit.experiments.likelihood_vs_quality",
                                description="Parzen log-likelihood vs FID/precision for a 99%-noise generator.")
    p.add_argument("--out", required=True, help="folder for likelihood_vs_quality.json and .png")
    p.add_argument("--n-good", type=int, default=500, help="good generator's Parzen samples (mixture: 100x)")
    p.add_argument("--n-validation", type=int, default=500)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--n-quality", type=int, default=2000, help="samples per set for FID and precision/recall")
    p.add_argument("--features", choices=["pixels", "pool2", "pool4"], default="pixels",
                   help="features for FID and precision/recall: raw pixels (784) or k x k average pooling")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", default=None, help="folder with the Fashion-MNIST IDX files")
    p.add_argument("--pixelcnn", metavar="RUN", help="a pixelcnn run on Fashion-MNIST: its exact bits/dim and "
                   "samples beside its Parzen estimate (and the exact likelihood of its 99%%-noise mixture)")
    p.add_argument("--gan", metavar="RUN", help="a GAN run on Fashion-MNIST (gan, cgan ...): its Parzen estimate, "
                   "FID and precision/recall on the same images")
    a = p.parse_args(argv)
    models = {}
    for name in ("pixelcnn", "gan"):
        if getattr(a, name):
            from ..api import load_run

            models[name] = load_run(getattr(a, name))
    feats = None if a.features == "pixels" else pooled_pixels(int(a.features[-1]))
    res = likelihood_vs_quality(n_good=a.n_good, n_validation=a.n_validation, n_test=a.n_test,
                                n_quality=a.n_quality, seed=a.seed, data_root=a.data_root, features=feats,
                                return_arrays=True, models=models or None)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    save_figure(res, out / "likelihood_vs_quality.png")
    if models:
        save_models_figure(res, out / "likelihood_vs_quality_models.png")
    res.pop("_arrays", None)
    (out / "likelihood_vs_quality.json").write_text(json.dumps(res, indent=2))
    print(f"Parzen LL  good {res['ll_good']:.2f} +- {res['ll_good_stderr']:.2f} (sigma {res['sigma_good']:.3f})   "
          f"mixture {res['ll_mixture']:.2f} +- {res['ll_mixture_stderr']:.2f} (sigma {res['sigma_mixture']:.3f})")
    print(f"sigma chosen on {res['validation']}")
    print(f"gap {res['ll_gap']:.3f} nats = {res['gap_over_log_100']:.3f} x log(100)   "
          f"(same-n mixture: gap {res['gap_equal_n']:.1f} nats)")
    print(f"FID        good {res['fid_good']:.2f}   mixture {res['fid_mixture']:.2f}")
    print(f"precision  good {res['precision_good']:.3f}   mixture {res['precision_mixture']:.3f}")
    print(f"recall     good {res['recall_good']:.3f}   mixture {res['recall_mixture']:.3f}")
    for name, row in (res.get("models") or {}).items():
        print(f"{name:9s}  Parzen {row['parzen']:.2f} +- {row['parzen_stderr']:.2f} (sigma {row['parzen_sigma']:.3f})   "
              f"FID {row['fid']:.2f}   precision {row['precision']:.3f}   recall {row['recall']:.3f}")
        if "exact_bits_per_dim" in row:
            print(f"{'':9s}  exact {row['exact_bits_per_dim']:.4f} bits/dim = {row['exact_nll_nats']:.1f} nats a picture "
                  f"(log-density on [0, 1]^D {row['exact_log_density']:.1f}); 99%-noise mixture "
                  f"{row['exact_mixture_bits_per_dim']:.4f} bits/dim, {row['exact_mixture_gap']:.3f} nats worse "
                  f"(bound log 100 = {math.log(100):.3f})")
    print(f"wrote {out / 'likelihood_vs_quality.json'} and {out / 'likelihood_vs_quality.png'} "
          f"({res['seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
