"""Mode counting: 2D Gaussian mixtures (VEEGAN/PacGAN), stacked MNIST-style data, conditional accuracy.

Toy mixtures -- :func:`toy_mode_stats`, the protocol of VEEGAN (Srivastava et al. 2017) and
PacGAN (Lin et al. 2018, Table 1), as written in BENCHMARKS.md:

* draw 2,500 samples from the generator (the caller does this; any number is accepted);
* per-axis normalised distance of sample x to mode k with mean mu_k and per-axis standard
  deviations std_k: ``d_k(x) = sqrt( sum_j ((x_j - mu_kj) / std_kj)^2 )``; the nearest mode
  is the k with the smallest d_k (as in the PacGAN code, where the variances are std^2 per
  axis and the threshold is 3);
* a sample is *high quality* if ``min_k d_k(x) < n_sigma`` (3 standard deviations);
* ``counts[k]`` = number of high-quality samples whose nearest mode is k; a mode is
  *captured* if ``counts[k] >= 1``;
* ``high_quality`` = sum(counts) / number of samples, a fraction in [0, 1] (tables print it
  as a percentage);
* ``reverse_kl`` = KL(q || u) = sum_k q_k log(q_k / (1/K)) = log K - H(q) in nats, where
  ``q = counts / sum(counts)`` is the histogram of the high-quality samples over the K modes
  and u the uniform distribution (the mixtures in the benchmarks have equal weights).
  Empty modes contribute 0 (0 log 0 = 0), so the value is finite and at most log K; a
  generator that puts its high-quality samples evenly on m of K modes scores log(K/m).
  This is the "reverse" direction (generator first): the forward KL(u || q) would be
  infinite for every generator that misses a mode.  It matches the published numbers:
  6.3 of 8 modes needs at least log(8/6.3) = 0.24 and PacGAN reports 0.45 (uneven
  coverage adds the rest); 24.8 of 25 modes with 0.04, above log(25/24.8) = 0.008.
  With no high-quality sample at all, q is undefined and ``reverse_kl`` is NaN.

Stacked MNIST (here Fashion-MNIST) -- :func:`stack_images`, :func:`stacked_labels`,
:func:`stacked_modes`: three images drawn independently form the three channels of one
sample, a classifier labels each channel, and the triple of labels is the sample's mode
(10^3 = 1,000 modes).  Over the generated samples (26,000 in the benchmark), ``modes`` is
the number of distinct triples and ``kl`` = KL(p_gen || uniform over the 1,000 triples) =
log 1000 - H(p_gen), with 0 log 0 = 0 for triples never produced.

Conditional generation -- :func:`conditional_accuracy`: the fraction of images that a
classifier assigns to the class they were generated for.

A ``classify`` callable takes a batch of images (what you pass in, sliced) and returns
either labels (N,) or scores (N, n_classes) -- logits or probabilities, whose argmax is
taken -- as a numpy array, a torch tensor or a list.
"""
from __future__ import annotations

import math
import numbers
from typing import Callable, Dict, Optional

import numpy as np

from ..data.stacked import stack_images  # noqa: F401 - part of this module's API
from ._checks import _to_numpy, check_positive_int

__all__ = ["toy_mode_stats", "stacked_modes", "stack_images", "stacked_labels", "conditional_accuracy"]

Classify = Callable[[object], object]


def _points(x, name: str) -> np.ndarray:
    a = _to_numpy(x, name)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (N, D) of points, got shape {tuple(a.shape)}")
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(a.shape)}); at least one point with one coordinate is needed")
    a = a.astype(np.float64, copy=False)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values ({int(np.isnan(a).sum())} NaN, "
                         f"{int(np.isinf(a).sum())} inf)")
    return a


def _mode_stds(stds, k: int, d: int) -> np.ndarray:
    """stds as a (K, D) array: a scalar (one for all), (K,) (one per mode, isotropic) or (K, D)."""
    s = _to_numpy(stds, "stds")
    if s.dtype.kind not in "fiu":
        raise ValueError(f"stds must hold real numbers, got dtype {s.dtype}")
    s = s.astype(np.float64)
    if s.ndim == 0:
        s = np.full((k, d), float(s))
    elif s.ndim == 1 and s.shape[0] == k:
        s = np.repeat(s[:, None], d, axis=1)
    elif s.ndim == 1 and s.shape[0] == 1:
        s = np.full((k, d), float(s[0]))
    if s.shape != (k, d):
        raise ValueError(f"stds must be a scalar, one value per mode ({k},) or one per mode and axis ({k}, {d}), "
                         f"got shape {tuple(s.shape)}")
    if not (np.isfinite(s).all() and (s > 0).all()):
        raise ValueError("stds must be positive and finite")
    return s


def _kl_to_uniform(counts: np.ndarray, n_bins: int) -> float:
    """KL(q || uniform over n_bins) with q = counts / counts.sum(); 0 log 0 = 0; NaN if all zero."""
    total = counts.sum()
    if total == 0:
        return float("nan")
    q = counts[counts > 0] / total
    return float(max(0.0, np.sum(q * np.log(q * n_bins))))


def toy_mode_stats(samples, modes, stds, n_sigma: float = 3.0, *, batch_size: int = 8192) -> Dict[str, object]:
    """Modes captured, high-quality fraction and reverse KL of 2-D (or any D) mixture samples.

    ``samples`` (N, D); ``modes`` (K, D) the mixture means; ``stds`` the per-axis standard
    deviations: a scalar, (K,) or (K, D) -- e.g. ``dataset.modes`` and ``dataset.mode_stds``
    of ``gankit.data.toy``.  See the module docstring for the exact protocol.  Returns
    ``modes_captured`` (int), ``high_quality`` (fraction in [0, 1]), ``reverse_kl`` (nats,
    NaN when no sample is high quality), ``counts`` (list of K ints: high-quality samples per
    mode), ``n_modes`` and ``n_samples``.
    """
    x = _points(samples, "samples")
    mu = _points(modes, "modes")
    if x.shape[1] != mu.shape[1]:
        raise ValueError(f"dimensions differ: samples have D={x.shape[1]}, modes have D={mu.shape[1]}")
    k, d = mu.shape
    sd = _mode_stds(stds, k, d)
    if (isinstance(n_sigma, bool) or not isinstance(n_sigma, numbers.Real) or not math.isfinite(n_sigma)
            or n_sigma <= 0):
        raise ValueError(f"n_sigma must be a positive number, got {n_sigma!r}")
    batch_size = check_positive_int(batch_size, "batch_size")
    counts = np.zeros(k, dtype=np.int64)
    for lo in range(0, len(x), batch_size):
        z = (x[lo:lo + batch_size, None, :] - mu[None]) / sd[None]        # (b, K, D)
        dist = np.sqrt((z * z).sum(axis=2))
        nearest = dist.argmin(axis=1)
        good = dist[np.arange(len(nearest)), nearest] < n_sigma
        counts += np.bincount(nearest[good], minlength=k)
    return {
        "modes_captured": int((counts > 0).sum()),
        "high_quality": float(counts.sum() / len(x)),
        "reverse_kl": _kl_to_uniform(counts, k),
        "counts": counts.tolist(),
        "n_modes": int(k),
        "n_samples": int(len(x)),
    }


def _labels(y, name: str, n: Optional[int] = None) -> np.ndarray:
    """Labels from ints (N,) or scores (N, C) -> int64 (N,)."""
    a = _to_numpy(y, name)
    if a.ndim == 2:
        if a.shape[1] == 0:
            raise ValueError(f"{name} has shape {tuple(a.shape)}: scores need at least one class")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or infinite scores")
        a = a.argmax(axis=1)
    if a.ndim != 1:
        raise ValueError(f"{name} must be labels (N,) or class scores (N, n_classes), got shape {tuple(a.shape)}")
    if a.dtype.kind == "f":
        if not np.isfinite(a).all() or (a != np.round(a)).any():
            raise ValueError(f"{name} must be whole-number class labels, got non-integer values")
    elif a.dtype.kind not in "iub":
        raise ValueError(f"{name} must be integer class labels, got dtype {a.dtype}")
    if n is not None and len(a) != n:
        raise ValueError(f"{name} has {len(a)} labels for {n} images")
    return a.astype(np.int64)


def _classify_batches(classify: Classify, images, batch_size: Optional[int], name: str) -> np.ndarray:
    if not callable(classify):
        raise ValueError(f"classify must be a callable images -> labels, got {type(classify).__name__}")
    n = len(images)
    step = n if batch_size is None else check_positive_int(batch_size, "batch_size")
    parts = [_labels(classify(images[lo:lo + step]), name, min(step, n - lo)) for lo in range(0, n, step)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def stacked_modes(labels_per_channel, n_classes: int = 10) -> Dict[str, object]:
    """Distinct label tuples and KL(p_gen || uniform) for stacked data.

    ``labels_per_channel`` (N, C) ints in ``0 .. n_classes-1`` (C = 3 for stacked MNIST,
    giving ``n_classes ** C`` = 1,000 modes).  Returns ``modes`` (distinct tuples produced),
    ``kl`` (nats, ``log(n_classes**C) - H(p_gen)``, 0 log 0 = 0), ``n_modes_total``,
    ``n_samples`` and ``counts`` (a numpy array of length ``n_classes**C``, indexed by the
    tuple read as a base-``n_classes`` number, first channel most significant).
    """
    n_classes = check_positive_int(n_classes, "n_classes", minimum=2)
    a = _to_numpy(labels_per_channel, "labels_per_channel")
    if a.ndim != 2 or a.shape[1] == 0:
        raise ValueError(f"labels_per_channel must be (N, C) integer labels, one column per channel; "
                         f"got shape {tuple(a.shape)}")
    if a.shape[0] == 0:
        raise ValueError("labels_per_channel is empty: no samples to count")
    if a.dtype.kind == "f":
        if not np.isfinite(a).all() or (a != np.round(a)).any():
            raise ValueError("labels_per_channel must be whole numbers (class labels)")
    elif a.dtype.kind not in "iu":
        raise ValueError(f"labels_per_channel must be integer labels, got dtype {a.dtype}")
    a = a.astype(np.int64)
    if a.min() < 0 or a.max() >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, got values from {a.min()} to {a.max()}")
    c = a.shape[1]
    total = n_classes ** c
    code = np.zeros(len(a), dtype=np.int64)
    for j in range(c):
        code = code * n_classes + a[:, j]
    counts = np.bincount(code, minlength=total)
    return {
        "modes": int((counts > 0).sum()),
        "kl": _kl_to_uniform(counts, total),
        "n_modes_total": int(total),
        "n_samples": int(len(a)),
        "counts": counts,
    }


def stacked_labels(stacked_images, classify: Classify, batch_size: Optional[int] = None) -> np.ndarray:
    """Classify every channel of stacked images (M, C, H, W): returns (M, C) int64 labels.

    ``classify`` is called on (m, 1, H, W) slices of the input (same type as the input), in
    batches of ``batch_size`` images (default: one call per channel).
    """
    shape = tuple(stacked_images.shape) if hasattr(stacked_images, "shape") else np.shape(stacked_images)
    if len(shape) != 4:
        raise ValueError(f"stacked_images must be (M, C, H, W), got shape {shape}")
    if shape[0] == 0:
        raise ValueError("stacked_images is empty")
    cols = [_classify_batches(classify, stacked_images[:, j:j + 1], batch_size, f"classify output for channel {j}")
            for j in range(shape[1])]
    return np.stack(cols, axis=1)


def conditional_accuracy(images, requested_labels, classify: Classify, batch_size: Optional[int] = None) -> float:
    """Fraction of ``images`` that ``classify`` puts in the class they were generated for.

    ``requested_labels`` (N,) ints: the class each image was conditioned on.
    """
    n = len(images)
    if n == 0:
        raise ValueError("images is empty: no conditional samples to score")
    want = _labels(requested_labels, "requested_labels", n)
    got = _classify_batches(classify, images, batch_size, "classify output")
    return float((got == want).mean())
