"""Fréchet distance between two feature sets (FID when the features come from Inception).

Each set is summarised by its mean and covariance, and the distance between the Gaussians
N(mu1, S1) and N(mu2, S2) is

    |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))        (Heusel et al., 2017)

All statistics are float64; the covariance uses ddof=1 like ``np.cov`` and the reference
implementations (pytorch-fid, torch-fidelity, clean-fid).

:func:`reduced_stats` computes the same mean and covariance when the rows are spread over
several processes (sharded evaluation under torchrun): only sums travel, never features.
"""
from __future__ import annotations

from typing import Callable, Tuple

import numpy as np

from ._checks import as_features, check_same_dim

__all__ = ["feature_stats", "reduced_stats", "fid_from_stats", "fid", "trace_sqrt_product"]

# Rows converted to float64 at a time while accumulating the covariance: bounds the extra
# memory to _ROWS x D float64 instead of a float64 copy of the whole set.
_ROWS = 2048


def feature_stats(feats) -> Tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of an (N, D) feature set, both float64.

    The covariance is the unbiased one (divided by N - 1), as ``np.cov(feats, rowvar=False)``.
    """
    return _stats(as_features(feats, "features"))


def _stats(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    n, d = x.shape
    mu = x.mean(axis=0, dtype=np.float64)
    cov = np.zeros((d, d), dtype=np.float64)
    for start in range(0, n, _ROWS):
        c = x[start:start + _ROWS].astype(np.float64)  # always a fresh float64 block
        c -= mu
        # ``c.T @ c`` is recognised by numpy as a symmetric rank-k update (BLAS syrk): half the
        # flops of a general product, and the result is exactly symmetric.
        cov += c.T @ c
    cov /= n - 1
    return mu, cov


def reduced_stats(feats, all_sum: Callable[[np.ndarray], np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D, ddof=1) of feature rows spread over several processes.

    ``feats`` holds this process's rows (possibly none, shaped (0, D)); ``all_sum`` returns the
    elementwise sum of a float64 array over all processes (every process calls this function
    at the same point; :func:`gankit.train.distributed.all_reduce_sum_np`). Two reductions of
    float64 sufficient statistics: the count and the sum of the rows (so the global mean),
    then the sum of the outer products of the rows centred at that mean. Centring before
    summing keeps the accuracy of the one-process two-pass formula, where the raw second
    moment minus n mu mu^T would cancel digits for features with a large mean. Equal to
    :func:`feature_stats` of all rows up to the order of floating-point additions.
    """
    x = np.asarray(_np(feats))
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"features must be a 2-D array of shape (N, D) with D > 0, got shape {tuple(x.shape)}")
    d = x.shape[1]
    head = all_sum(np.concatenate([[float(len(x))], x.sum(axis=0, dtype=np.float64)]))
    n = int(round(float(head[0])))
    if n < 2:
        raise ValueError(f"features has {n} sample(s) over all processes; at least 2 are needed")
    if not np.isfinite(head).all():  # checked after the reduction, so every process raises alike
        raise ValueError("features: features contain NaN or infinite values; check the generator output "
                         "and the feature extractor")
    mu = head[1:] / n
    cov = np.zeros((d, d), dtype=np.float64)
    for start in range(0, len(x), _ROWS):
        c = x[start:start + _ROWS].astype(np.float64)
        c -= mu
        cov += c.T @ c
    cov = all_sum(cov)
    cov /= n - 1
    return mu, cov


def _check_stats(mu, sigma, which: str) -> Tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(_np(mu), dtype=np.float64)
    sigma = np.asarray(_np(sigma), dtype=np.float64)
    if mu.ndim != 1:
        raise ValueError(f"mu{which} must be a 1-D mean vector, got shape {tuple(mu.shape)}")
    d = mu.shape[0]
    if sigma.shape != (d, d):
        raise ValueError(f"sigma{which} must be a ({d}, {d}) covariance matching mu{which}, "
                         f"got shape {tuple(sigma.shape)}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"mu{which}/sigma{which}: statistics contain NaN or infinite values")
    return mu, sigma


def _np(x):
    if type(x).__module__.startswith("torch"):
        return x.detach().cpu().double().numpy()
    return x


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((S1 S2)^(1/2)) for two symmetric positive semi-definite matrices.

    How: write S1 = F F^T (Cholesky; for a singular S1, F = V diag(sqrt(w)) from its
    eigendecomposition).  Then S1 S2 = F (F^T S2 F) F^-1 is similar to M = F^T S2 F, so both
    have the same eigenvalues; tr((S1 S2)^(1/2)) is the sum of their square roots.

    Why this one: M is symmetric positive semi-definite, so a symmetric eigensolver (eigvalsh)
    gets its eigenvalues real and backward-stable, values only, in about a third of the time
    of the nonsymmetric ``eig(S1 @ S2)``, which also returns spurious complex parts from
    rounding; ``scipy.linalg.sqrtm`` (a full Schur-based matrix square root) is slower still.
    Eigenvalues that rounding pushes a hair below zero are clipped to 0 before the root.
    """
    s1 = 0.5 * (sigma1 + sigma1.T)  # tolerate covariances that are symmetric only up to rounding
    s2 = 0.5 * (sigma2 + sigma2.T)
    factor = None
    for a, b in ((s1, s2), (s2, s1)):  # eig(S1 S2) == eig(S2 S1): factor whichever is definite
        try:
            factor, other = np.linalg.cholesky(a), b
            break
        except np.linalg.LinAlgError:
            continue
    if factor is None:  # both singular (e.g. fewer samples than dimensions)
        w, v = np.linalg.eigh(s1)
        factor, other = v * np.sqrt(np.clip(w, 0.0, None)), s2
    m = factor.T @ other @ factor
    eig = np.linalg.eigvalsh(0.5 * (m + m.T))
    return float(np.sqrt(np.clip(eig, 0.0, None)).sum())


def fid_from_stats(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Values slightly below zero can come out of rounding when the two are (nearly) equal;
    they are returned as they are, not clamped.
    """
    mu1, sigma1 = _check_stats(mu1, sigma1, "1")
    mu2, sigma2 = _check_stats(mu2, sigma2, "2")
    if mu1.shape != mu2.shape:
        raise ValueError(f"feature dimensions differ: mu1 has D={mu1.shape[0]}, mu2 has D={mu2.shape[0]}")
    diff = mu1 - mu2
    tr_covmean = trace_sqrt_product(sigma1, sigma2)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def fid(real, fake) -> float:
    """Fréchet distance between two (N, D) feature sets (FID on Inception pool features)."""
    real = as_features(real, "real")
    fake = as_features(fake, "fake")
    check_same_dim(real, fake)
    mu1, sigma1 = _stats(real)
    mu2, sigma2 = _stats(fake)
    return fid_from_stats(mu1, sigma1, mu2, sigma2)
