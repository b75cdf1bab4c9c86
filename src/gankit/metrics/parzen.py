"""Parzen-window (Gaussian kernel density) log-likelihood of held-out data under a generator.

Protocol (Goodfellow et al. 2014, "Generative Adversarial Nets", section 5):

1. Draw 10,000 samples ``s_1 .. s_N`` from the generator and flatten each to a vector of
   D numbers, on the same scale as the data (for MNIST-like images: pixel values in
   [0, 1], which is what the published 225 +- 2 nats refer to).
2. Put an isotropic Gaussian of standard deviation ``sigma`` on every sample.  The density
   of a point x is the average of the N kernels::

       log p(x) = logsumexp_i( -||x - s_i||^2 / (2 sigma^2) ) - log N - (D/2) log(2 pi sigma^2)

3. Choose ``sigma`` from ``np.logspace(-1, 0, 10)`` (0.1 .. 1) as the one with the highest
   mean log p over a validation set (:func:`parzen_select_sigma`).  The validation points
   must be held out twice over: the generator never trained on them, and they are not
   among the test points scored in step 4 (else sigma is fitted to what it is judged on).
   ``gankit eval --metrics parzen`` takes the last ``n_validation`` (default 1,000) samples
   of the data set's test split and scores only test rows before them; the
   likelihood-vs-quality experiment cuts a seeded validation part out of the test split.
4. Report the mean log p over the test set and its standard error
   ``std(ddof=1) / sqrt(n_test)`` (:func:`parzen_log_likelihood`); :func:`parzen_evaluate`
   does steps 2-4 in one call.

The estimate is weak, as the GAN lectures stress: it depends on sigma and on N far more
than on what the samples look like, it is badly biased in high dimension, and a generator
that emits noise 99% of the time loses only log(100) ~ 4.6 nats (see
:mod:`gankit.experiments.likelihood_vs_quality`).

Computation: float64, tile by tile (``batch_size`` test points x ``batch_size`` samples at
a time), with squared distances from the expansion ``|x|^2 - 2 x.s + |s|^2`` (a matmul per
tile) on data centred at the samples' mean, and a running (streaming) log-sum-exp over the
sample tiles, so memory stays at a few tiles whatever N is.  The distance tiles are
shared by all sigmas of a grid, so choosing sigma costs little more than one evaluation.
Inputs may be numpy arrays or torch tensors of any shape (N, ...) and any real dtype;
float32 inputs are kept as they are and widened one tile at a time.
"""
from __future__ import annotations

import math
from typing import Dict, Sequence, Tuple, Union

import numpy as np

from ._checks import _to_numpy, check_positive_int

__all__ = ["DEFAULT_SIGMAS", "parzen_log_density", "parzen_log_likelihood", "parzen_select_sigma",
           "parzen_evaluate"]

#: the sigma grid of Goodfellow et al. (2014): 10 values from 0.1 to 1, evenly spaced in log
DEFAULT_SIGMAS = np.logspace(-1, 0, 10)
DEFAULT_BATCH_SIZE = 1024


def _flat(x, name: str) -> np.ndarray:
    """(N, ...) numpy/torch data -> (N, D) numpy array, checked; float dtypes are kept."""
    a = _to_numpy(x, name)
    if a.ndim == 0:
        raise ValueError(f"{name} must be an array of shape (N, ...) with one row per point, got a scalar")
    if a.dtype.kind not in "fiub":
        raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if len(a) == 0:
        raise ValueError(f"{name} is empty (shape {tuple(a.shape)}); at least one point is needed")
    a = a.reshape(len(a), -1)
    if a.shape[1] == 0:
        raise ValueError(f"{name} has shape {tuple(a.shape)}: each point needs at least one value")
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values ({int(np.isnan(a).sum())} NaN, "
                         f"{int(np.isinf(a).sum())} inf); check the generator output")
    return a


def _sigma_grid(sigmas) -> np.ndarray:
    s = np.atleast_1d(np.asarray(sigmas, dtype=np.float64))
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"sigmas must be a non-empty 1-D sequence of positive numbers, got shape {s.shape}")
    if not (np.isfinite(s).all() and (s > 0).all()):
        raise ValueError(f"every sigma must be a positive finite number, got {s.tolist()}")
    return s


def _check_pair(samples, x, x_name: str) -> Tuple[np.ndarray, np.ndarray]:
    s = _flat(samples, "samples")
    a = _flat(x, x_name)
    if s.shape[1] != a.shape[1]:
        raise ValueError(f"dimensions differ: samples have D={s.shape[1]} values per point, {x_name} has "
                         f"D={a.shape[1]}; flatten both the same way and put them on the same scale")
    return s, a


def _log_density(s: np.ndarray, x: np.ndarray, sigmas: np.ndarray, batch_size: int) -> np.ndarray:
    """log p(x) of every row of x under the KDE on s, for every sigma: (len(x), len(sigmas))."""
    n, d = s.shape
    c = 1.0 / (2.0 * sigmas * sigmas)                      # kernel log = -c * squared distance
    center = np.zeros(d)
    for lo in range(0, n, batch_size):
        center += s[lo:lo + batch_size].sum(axis=0, dtype=np.float64)
    center /= n
    s_blocks = []
    for lo in range(0, n, batch_size):
        hi = min(lo + batch_size, n)
        sq = np.subtract(s[lo:hi], center, dtype=np.float64)
        s_blocks.append((lo, hi, np.einsum("ij,ij->i", sq, sq)))
    out = np.empty((len(x), len(sigmas)))
    for xlo in range(0, len(x), batch_size):
        xb = np.subtract(x[xlo:xlo + batch_size], center, dtype=np.float64)
        x_sq = np.einsum("ij,ij->i", xb, xb)
        best = np.full(len(xb), np.inf)                    # running min squared distance
        acc = np.zeros((len(xb), len(sigmas)))             # sum_i exp(-c (d2_i - best))
        for lo, hi, s_sq in s_blocks:
            sb = np.subtract(s[lo:hi], center, dtype=np.float64)
            d2 = xb @ sb.T
            d2 *= -2.0
            d2 += x_sq[:, None]
            d2 += s_sq[None, :]
            np.maximum(d2, 0.0, out=d2)
            new_best = np.minimum(best, d2.min(axis=1))
            with np.errstate(invalid="ignore"):            # inf - inf on the first tile: acc is 0 there
                shift = np.where(np.isinf(best), 0.0, best - new_best)
            d2 -= new_best[:, None]
            for j, cj in enumerate(c):
                acc[:, j] *= np.exp(-cj * shift)
                acc[:, j] += np.exp(d2 * -cj).sum(axis=1)
            best = new_best
        out[xlo:xlo + len(xb)] = -best[:, None] * c[None, :] + np.log(acc)
    out -= math.log(n) + 0.5 * d * np.log(2.0 * math.pi * sigmas * sigmas)[None, :]
    return out


def parzen_log_density(samples, x, sigmas: Union[float, Sequence[float]], *,
                       batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Per-point KDE log-density log p(x) (nats) of each row of ``x`` under the Gaussian KDE on ``samples``.

    A scalar ``sigma`` gives shape (len(x),); a sequence of sigmas gives (len(x), len(sigmas)).
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    s, a = _check_pair(samples, x, "x")
    grid = _sigma_grid(sigmas)
    out = _log_density(s, a, grid, batch_size)
    return out[:, 0] if np.ndim(sigmas) == 0 else out


def _mean_stderr(ll: np.ndarray) -> Tuple[float, float]:
    n = len(ll)
    stderr = float(np.std(ll, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return float(np.mean(ll)), stderr


def parzen_log_likelihood(samples, test, sigma: float, *,
                          batch_size: int = DEFAULT_BATCH_SIZE) -> Tuple[float, float]:
    """Mean Parzen log-likelihood (nats per point) of ``test`` and its standard error.

    ``samples`` (N, ...) are the generator's samples (the kernel centres), ``test`` (M, ...)
    the held-out data, ``sigma`` the kernel's standard deviation on the data's scale.  The
    standard error is ``std(ddof=1) / sqrt(M)`` (NaN for a single test point).
    """
    if np.ndim(sigma) != 0:
        raise ValueError(f"sigma must be one number, got {sigma!r}; use parzen_evaluate for a grid")
    return _mean_stderr(parzen_log_density(samples, test, float(sigma), batch_size=batch_size))


def parzen_select_sigma(samples, validation, sigmas=DEFAULT_SIGMAS, *,
                        batch_size: int = DEFAULT_BATCH_SIZE) -> float:
    """The sigma of ``sigmas`` with the highest mean log-likelihood of ``validation`` (first one on ties)."""
    ll = parzen_log_density(samples, validation, _sigma_grid(sigmas), batch_size=batch_size)
    return float(_sigma_grid(sigmas)[int(np.argmax(ll.mean(axis=0)))])


def parzen_evaluate(samples, validation, test, sigmas=DEFAULT_SIGMAS, *,
                    batch_size: int = DEFAULT_BATCH_SIZE) -> Dict[str, object]:
    """The whole protocol: choose sigma on ``validation``, then score ``test`` with it.

    ``validation`` should be data the generator never trained on and not part of ``test``
    (see the module's docstring); this function takes the three sets as given.

    Returns a dict with ``sigma`` (chosen), ``mean`` and ``stderr`` (test log-likelihood,
    nats per point), ``by_sigma`` ({sigma: mean validation log-likelihood} for the whole
    grid), ``sigma_on_edge`` (True when the chosen sigma is the smallest or largest of the
    grid: the grid should then be widened), ``n_samples``, ``n_validation`` and ``n_test``.
    """
    grid = _sigma_grid(sigmas)
    batch_size = check_positive_int(batch_size, "batch_size")
    s, val = _check_pair(samples, validation, "validation")
    tst = _flat(test, "test")
    if tst.shape[1] != s.shape[1]:
        raise ValueError(f"dimensions differ: samples have D={s.shape[1]} values per point, test has "
                         f"D={tst.shape[1]}; flatten both the same way and put them on the same scale")
    val_means = _log_density(s, val, grid, batch_size).mean(axis=0)
    best = int(np.argmax(val_means))
    mean, stderr = _mean_stderr(_log_density(s, tst, grid[best:best + 1], batch_size)[:, 0])
    return {
        "sigma": float(grid[best]),
        "mean": mean,
        "stderr": stderr,
        "by_sigma": {float(g): float(v) for g, v in zip(grid, val_means)},
        "sigma_on_edge": bool(len(grid) > 1 and best in (0, len(grid) - 1)),
        "n_samples": int(len(s)),
        "n_validation": int(len(val)),
        "n_test": int(len(tst)),
    }
