"""Kernel Inception Distance (Bińkowski et al., 2018).

KID is the unbiased estimate of the squared maximum mean discrepancy (MMD^2) between the
two feature sets under the polynomial kernel k(x, y) = (gamma x.y + coef0)^degree, with
gamma = 1/D by default, averaged over random subsets of equal size.

Subsets are drawn exactly as torch-fidelity draws them: one ``numpy.random.RandomState(seed)``
and, for each subset, ``rng.choice(n, subset_size, replace=False)`` first for the generated
set and then for the real set (torch-fidelity's input1 is the generated set).  So
``kid(real, fake, seed=s)`` reproduces torch-fidelity's KID for input1=fake, input2=real
and rng_seed=s, on the same features.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from ._checks import as_features, check_positive_int, check_same_dim

__all__ = ["KIDResult", "kid", "mmd2_unbiased"]

DEFAULT_SEED = 2020  # torch-fidelity's default rng_seed


class KIDResult(NamedTuple):
    """Mean and (population, ddof=0) standard deviation of MMD^2 over the subsets."""

    mean: float
    std: float


def _poly_kernel(x: np.ndarray, y: np.ndarray, degree: float, gamma: float, coef0: float) -> np.ndarray:
    k = x @ y.T  # numpy uses a symmetric rank-k update when y is x
    k *= gamma
    k += coef0
    if float(degree).is_integer() and 1 <= degree <= 8:
        base = k.copy()
        for _ in range(int(degree) - 1):
            k *= base
        return k
    return np.power(k, degree, out=k)


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, degree: float = 3, gamma: Optional[float] = None,
                  coef0: float = 1) -> float:
    """Unbiased MMD^2 between two equally sized float64 sample sets (m, D), polynomial kernel.

    (sum_{i!=j} k(x_i, x_j) + sum_{i!=j} k(y_i, y_j)) / (m (m - 1)) - 2 sum_{i,j} k(x_i, y_j) / m^2
    """
    m = x.shape[0]
    if x.ndim != 2 or x.shape != y.shape or m < 2:
        raise ValueError(f"mmd2_unbiased needs two (m, D) arrays of the same shape with m >= 2, "
                         f"got {x.shape} and {y.shape}")
    if gamma is None:
        gamma = 1.0 / x.shape[1]
    k_xx = _poly_kernel(x, x, degree, gamma, coef0)
    within = k_xx.sum() - np.trace(k_xx)
    del k_xx
    k_yy = _poly_kernel(y, y, degree, gamma, coef0)
    within += k_yy.sum() - np.trace(k_yy)
    del k_yy
    cross = _poly_kernel(x, y, degree, gamma, coef0).sum()
    return float(within / (m * (m - 1)) - 2.0 * cross / (m * m))


def kid(real, fake, subsets: int = 100, subset_size: int = 1000, degree: float = 3,
        gamma: Optional[float] = None, coef0: float = 1, seed: int = DEFAULT_SEED) -> KIDResult:
    """Kernel Inception Distance between two (N, D) feature sets: ``(mean, std)`` of MMD^2.

    ``subsets`` random subsets of ``subset_size`` samples (without replacement) are taken
    from each set; both sets need at least ``subset_size`` samples (a ValueError says so
    otherwise, as torch-fidelity refuses too).  When both hold exactly ``subset_size``, every
    subset is the whole set and ``std`` is 0: it measures nothing then.  ``gamma=None`` means
    1/D.  Values slightly below zero are valid (the estimator is unbiased) and mean the two
    distributions are very close.
    """
    real = as_features(real, "real")
    fake = as_features(fake, "fake")
    check_same_dim(real, fake)
    subsets = check_positive_int(subsets, "subsets")
    subset_size = check_positive_int(subset_size, "subset_size", minimum=2)
    if not degree > 0:
        raise ValueError(f"degree must be positive, got {degree!r}")
    if gamma is not None and not gamma > 0:
        raise ValueError(f"gamma must be positive (or None for 1/D), got {gamma!r}")
    n_real, n_fake = len(real), len(fake)
    if n_real < subset_size or n_fake < subset_size:
        raise ValueError(
            f"KID subset_size={subset_size} is larger than a feature set (real: {n_real} samples, "
            f"fake: {n_fake} samples); lower subset_size to at most {min(n_real, n_fake)} "
            f"or provide more samples")
    rng = np.random.RandomState(seed)
    values = np.empty(subsets, dtype=np.float64)
    for i in range(subsets):
        # same order of draws as torch-fidelity: generated (its input1) first, then real
        f = fake[rng.choice(n_fake, subset_size, replace=False)].astype(np.float64, copy=False)
        r = real[rng.choice(n_real, subset_size, replace=False)].astype(np.float64, copy=False)
        values[i] = mmd2_unbiased(f, r, degree, gamma, coef0)
    return KIDResult(float(values.mean()), float(values.std()))
