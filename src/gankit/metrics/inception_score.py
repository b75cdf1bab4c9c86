"""Inception Score (Salimans et al., 2016) from class probabilities.

IS = exp(E_x KL(p(y|x) || p(y))), where p(y) is the mean of p(y|x) over the samples.  As in
the original code and torch-fidelity, the N samples are cut into ``splits`` contiguous
parts (part i holds rows i*N//splits up to (i+1)*N//splits), the score is computed on each
part with that part's own p(y), and the mean and population (ddof=0) standard deviation of
the per-part scores are returned.  The rows are taken in the order given: shuffle them
first if they are sorted by class.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import as_features, check_positive_int

__all__ = ["ISResult", "inception_score"]

# How far a row of probabilities may sum from 1 (float16 softmax outputs are off by ~1e-3).
_ROW_SUM_TOL = 2e-3


class ISResult(NamedTuple):
    """Mean and population (ddof=0) standard deviation of the per-split scores."""

    mean: float
    std: float


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x * log(y), with 0 where x == 0 (so 0 * log 0 = 0)."""
    positive = x > 0
    return np.where(positive, x * np.log(np.where(positive, y, 1.0)), 0.0)


def inception_score(probs, splits: int = 10) -> ISResult:
    """Inception Score of (N, K) class probabilities p(y|x) (rows summing to 1).

    Pass softmax outputs, not logits: rows that do not sum to 1 or hold negative values
    raise ``ValueError``.
    """
    p = as_features(probs, "probs", min_samples=1).astype(np.float64, copy=False)
    splits = check_positive_int(splits, "splits")
    n = len(p)
    if n < splits:
        raise ValueError(f"inception_score needs at least one sample per split: got {n} samples "
                         f"for splits={splits}; lower splits or provide more samples")
    if (p < 0).any():
        raise ValueError("probs contain negative values: pass class probabilities "
                         "(softmax of the logits), not logits")
    sums = p.sum(axis=1)
    worst = float(np.abs(sums - 1.0).max())
    if worst > _ROW_SUM_TOL:
        raise ValueError(f"rows of probs must sum to 1 (one row is off by {worst:.3g}): pass class "
                         "probabilities (softmax of the logits), not logits or unnormalised scores")
    # per-sample entropy term sum_y p log p, shared by every split
    neg_entropy = _xlogy(p, p).sum(axis=1)
    scores = np.empty(splits, dtype=np.float64)
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        part = p[lo:hi]
        marginal = part.mean(axis=0)
        # KL(p(y|x) || p(y)) = sum_y p log p - sum_y p log p(y); where p > 0, p(y) > 0 too
        kl = neg_entropy[lo:hi] - _xlogy(part, marginal[None, :]).sum(axis=1)
        scores[i] = np.exp(kl.mean())
    return ISResult(float(scores.mean()), float(scores.std()))
