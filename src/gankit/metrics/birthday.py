"""Birthday-paradox estimate of a generator's support size (Arora & Zhang 2017, "Do GANs learn the distribution?").

Idea: if a distribution is uniform over N distinct outputs, a batch of s independent draws
holds two equal outputs with probability ``1 - prod_{i<s} (1 - i/N) ~ 1 - exp(-s(s-1)/(2N))``,
about 1/2 when s ~ sqrt(N).  So if batches of s samples contain a duplicate with
probability >= 1/2, the generator's support is about s^2 -- the paper found duplicates in
batches of 400 DCGAN faces, hence a support of only ~0.16 million.  The paper shows the
closest pairs to people; here "duplicate" is decided automatically by a distance threshold
calibrated on real data.

Protocol of :func:`birthday_test`:

1. Distances are Euclidean, between flattened images (pixel space) or between
   ``features(images)`` when a ``features`` callable is given.
2. Threshold (unless ``threshold`` is given): draw ``trials`` batches of the *largest*
   batch size ``s_max`` from ``real`` (without replacement within a batch), take each
   batch's closest-pair distance, and set the threshold to their ``alpha`` quantile
   (default 0.05).  Real batches of size ``s_max`` then contain a "duplicate" with
   probability ~alpha, and smaller real batches less often (the closest pair of a subset
   is never closer), so with one threshold for all batch sizes a collision means the same
   thing at every s and real data rarely collides at any of them.
3. For each batch size s: draw ``trials`` batches of s generated samples (without
   replacement from ``samples``, which should hold many more than s_max samples), and
   count a collision when the batch's closest pair is closer than the threshold (strict
   ``<``).  ``collision_prob[s]`` = collisions / trials.  The same is measured on fresh
   real batches (``real_collision_prob``) as a check.
4. Support estimates, from the model P(collision at s) = 1 - exp(-s(s-1)/(2N)):
   * per batch size: ``N_s = s(s-1) / (-2 ln(1 - p_s))``, defined when 0 < p_s < 1
     (None otherwise: p_s = 0 says only that N is large, p_s = 1 that it is small);
   * ``support_estimate``: the maximum-likelihood N over all batch sizes together, with
     the collision counts taken as binomial(trials, p_s(N)); ``inf`` when no batch of any
     size collided; when every batch of every size collided, the likelihood has no maximum
     and the estimate uses p = 1 - 1/(2 trials) at the smallest size (use smaller batches);
   * ``support_half_rule``: Arora & Zhang's rule of thumb s_half^2, with s_half the
     smallest batch size whose collision probability is >= 1/2 (None if none).
   The model assumes a uniform distribution over N outputs; for a non-uniform one, N is the
   size of a uniform distribution with the same collision rate (a lower bound on the
   number of distinct outputs).
"""
from __future__ import annotations

import math
import numbers
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ._checks import _to_numpy, check_positive_int

__all__ = ["birthday_test", "closest_pair_distance", "support_from_collision_prob"]


def _flat(x, name: str) -> np.ndarray:
    a = _to_numpy(x, name)
    if a.ndim < 1 or a.shape[0] == 0 or a.size == 0:
        raise ValueError(f"{name} is empty (shape {tuple(a.shape)}); at least one sample is needed")
    if a.dtype.kind not in "fiub":
        raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    a = a.reshape(len(a), -1).astype(np.float64, copy=False)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values ({int(np.isnan(a).sum())} NaN, "
                         f"{int(np.isinf(a).sum())} inf); check the generator output")
    return a


def closest_pair_distance(batch) -> float:
    """Smallest Euclidean distance between two different rows of a batch (N >= 2, flattened)."""
    x = _flat(batch, "batch")
    if len(x) < 2:
        raise ValueError("a batch needs at least 2 samples to have a closest pair")
    return float(_closest(x))


def _closest(x: np.ndarray) -> float:
    x = x - x.mean(axis=0)
    sq = np.einsum("ij,ij->i", x, x)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    np.fill_diagonal(d2, np.inf)
    return math.sqrt(max(float(d2.min()), 0.0))


def support_from_collision_prob(p: float, s: int) -> Optional[float]:
    """N with 1 - exp(-s(s-1)/(2N)) = p, i.e. s(s-1) / (-2 ln(1 - p)); None unless 0 < p < 1."""
    if not 0.0 < p < 1.0:
        return None
    return s * (s - 1) / (-2.0 * math.log1p(-p))


def _mle_support(sizes: Sequence[int], counts: Sequence[int], trials: int) -> float:
    """Maximum-likelihood N of the model p_s = 1 - exp(-s(s-1)/(2N)) for binomial counts."""
    c = np.asarray(counts, dtype=np.float64)
    if c.sum() == 0:
        return float("inf")
    if (c == trials).all():                             # every batch collided: N -> 0 maximises the
        s = min(sizes)                                  # likelihood; use p = 1 - 1/(2 trials) at the
        return s * (s - 1) / (2.0 * math.log(2.0 * trials))   # smallest size instead
    a = np.array([s * (s - 1) / 2.0 for s in sizes])
    grid = np.logspace(-1, 15, 6401)                    # N from 0.1 to 1e15, 0.25% steps

    def loglik(n_values: np.ndarray) -> np.ndarray:
        lam = a[None, :] / n_values[:, None]            # -ln(1 - p)
        log_p = np.log(-np.expm1(-lam))                 # ln p
        return (c[None] * log_p - (trials - c)[None] * lam).sum(axis=1)

    ll = loglik(grid)
    best = int(np.argmax(ll))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    fine = np.linspace(lo, hi, 401)                     # refine between the neighbours
    return float(fine[int(np.argmax(loglik(fine)))])


def _closest_pairs(x: np.ndarray, s: int, trials: int, rng: np.random.Generator) -> np.ndarray:
    return np.array([_closest(x[rng.choice(len(x), size=s, replace=False)]) for _ in range(trials)])


def birthday_test(samples, real, batch_sizes: Sequence[int] = (10, 20, 50, 100, 200), trials: int = 100,
                  seed: int = 0, features: Optional[Callable[[object], object]] = None, *,
                  alpha: float = 0.05, threshold: Optional[float] = None) -> Dict[str, object]:
    """Collision probability per batch size and the implied support size (see the module docstring).

    ``samples`` (N, ...) generated and ``real`` (M, ...) real images or vectors (numpy or
    torch, same shape per sample), both with at least ``max(batch_sizes)`` rows (better:
    many more).  ``features`` maps a batch of images to (n, F) features; without it,
    distances are in pixel space.  Returns a dict with ``batch_sizes``, ``trials``,
    ``threshold``, ``alpha``, ``collisions`` and ``collision_prob`` (per batch size),
    ``real_collision_prob``, ``median_closest`` (median closest-pair distance of the
    generated batches per size), ``support_by_size`` (N_s or None), ``support_estimate``,
    ``half_batch_size`` and ``support_half_rule``.
    """
    sizes = [check_positive_int(s, "batch size", minimum=2) for s in batch_sizes]
    if not sizes:
        raise ValueError("batch_sizes is empty: give at least one batch size >= 2")
    trials = check_positive_int(trials, "trials")
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be a probability in (0, 1), got {alpha!r}")
    if threshold is not None and not (isinstance(threshold, numbers.Real) and math.isfinite(threshold)
                                      and threshold >= 0):
        raise ValueError(f"threshold must be a non-negative number, got {threshold!r}")
    if features is not None:
        if not callable(features):
            raise ValueError("features must be a callable images -> (n, F) array")
        x = _flat(features(samples), "features(samples)")
        r = _flat(features(real), "features(real)")
    else:
        x = _flat(samples, "samples")
        r = _flat(real, "real")
    if x.shape[1] != r.shape[1]:
        raise ValueError(f"dimensions differ: samples have {x.shape[1]} values each, real has {r.shape[1]}; "
                         "pass both through the same feature extractor (or none)")
    s_max = max(sizes)
    for name, arr in (("samples", x), ("real", r)):
        if len(arr) < s_max:
            raise ValueError(f"{name} holds {len(arr)} rows, fewer than the largest batch size {s_max}")
    rng = np.random.default_rng(seed)
    if threshold is None:
        threshold = float(np.quantile(_closest_pairs(r, s_max, trials, rng), alpha))
    else:
        threshold = float(threshold)
    collisions: List[int] = []
    real_prob: List[float] = []
    medians: List[float] = []
    for s in sizes:
        gen = _closest_pairs(x, s, trials, rng)
        collisions.append(int((gen < threshold).sum()))
        medians.append(float(np.median(gen)))
        real_prob.append(float((_closest_pairs(r, s, trials, rng) < threshold).mean()))
    probs = [c / trials for c in collisions]
    half = next((s for s, p in sorted(zip(sizes, probs)) if p >= 0.5), None)
    return {
        "batch_sizes": sizes,
        "trials": trials,
        "threshold": threshold,
        "alpha": float(alpha),
        "collisions": collisions,
        "collision_prob": probs,
        "real_collision_prob": real_prob,
        "median_closest": medians,
        "support_by_size": [support_from_collision_prob(p, s) for p, s in zip(probs, sizes)],
        "support_estimate": _mle_support(sizes, collisions, trials),
        "half_batch_size": half,
        "support_half_rule": None if half is None else float(half * half),
    }
