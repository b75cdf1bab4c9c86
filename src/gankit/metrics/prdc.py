"""k-nearest-neighbour manifold metrics: precision/recall and density/coverage.

* Improved precision and recall (Kynkäänniemi et al., 2019).  Each sample gets a ball whose
  radius is the distance to its k-th nearest neighbour in its own set (itself excluded).
  Precision is the fraction of fake samples inside at least one real ball, recall the
  fraction of real samples inside at least one fake ball; "inside" is ``<=`` as in
  torch-fidelity.  ``precision_recall(real, fake)`` equals torch-fidelity's prc with
  input1=fake, input2=real.
* Density and coverage (Naeem et al., 2020), with balls around the real samples only and a
  strict ``<``, as in the authors' ``prdc`` package.  Density counts, per fake sample, the
  real balls that contain it, divided by k and averaged (about 1 when the two sets come from
  the same distribution; it is not bounded by 1).  Coverage is the fraction of real balls
  that contain at least one fake sample.

Distances are float64 and computed tile by tile (``batch_size`` x ``batch_size`` at a time,
never a full N x M matrix), as |a|^2 + |b|^2 - 2 a.b on features centred on the real mean.
Every tile is computed in one canonical orientation (the block with the lower block index
is the left operand, the real one on the diagonal), so when the two sets are equal a
real-fake distance is bit-for-bit the same number as the within-set distance it mirrors, and
the ties this creates at a radius (the k-th neighbour itself) are decided the same way for
every batch size: identical sets (without duplicate samples) give precision = recall = 1 and
density = coverage = 1 exactly.  ``batch_size`` bounds memory (about 3 x batch_size^2 x 8
bytes beyond the float64 copies of the inputs); otherwise it can change a distance only by
float64 rounding (~1e-16 relative), which matters only for a distance that ties a radius to
that precision.
"""
from __future__ import annotations

from typing import List, NamedTuple, Tuple

import numpy as np

from ._checks import as_features, check_positive_int, check_same_dim

__all__ = ["PrecisionRecall", "DensityCoverage", "precision_recall", "density_coverage",
           "knn_radii"]

DEFAULT_BATCH_SIZE = 1024


class PrecisionRecall(NamedTuple):
    precision: float
    recall: float


class DensityCoverage(NamedTuple):
    density: float
    coverage: float


class _Feats:
    """Centred float64 features split into row blocks, with squared row norms."""

    def __init__(self, x: np.ndarray, center: np.ndarray, batch_size: int):
        self.x = np.subtract(x, center, dtype=np.float64)
        self.n = len(self.x)
        self.bounds: List[Tuple[int, int]] = [(s, min(s + batch_size, self.n))
                                              for s in range(0, self.n, batch_size)]
        self.sq = np.empty(self.n, dtype=np.float64)
        for lo, hi in self.bounds:
            blk = self.x[lo:hi]
            self.sq[lo:hi] = (blk * blk).sum(axis=1)

    def block(self, i: int) -> Tuple[np.ndarray, np.ndarray]:
        lo, hi = self.bounds[i]
        return self.x[lo:hi], self.sq[lo:hi]


def _sqdist(a: np.ndarray, a_sq: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (len(a), len(b)), float64, clipped at 0."""
    if np.may_share_memory(a, b):
        # keep numpy from switching to a symmetric rank-k update for a @ a.T, so a block
        # against itself is computed by the same BLAS routine as a block against a copy
        b = b.copy()
    g = a @ b.T
    g *= -2.0
    g += a_sq[:, None]
    g += b_sq[None, :]
    np.maximum(g, 0.0, out=g)
    return g


def _cross_tile(real: _Feats, i: int, fake: _Feats, j: int) -> np.ndarray:
    """Squared distances real block i x fake block j, in canonical orientation."""
    if i <= j:
        return _sqdist(*real.block(i), *fake.block(j))
    return _sqdist(*fake.block(j), *real.block(i)).T


def _keep_smallest(best: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Per row, the best.shape[1] smallest values among ``best`` and ``d`` (unordered)."""
    m = best.shape[1]
    if np.isfinite(best).all():
        # Only values below a row's current m-th smallest can enter it, and after the first
        # tile those are few: gather them into a small inf-padded array, not the whole tile.
        rows, cols = np.nonzero(d < best.max(axis=1)[:, None])
        if rows.size == 0:
            return best
        counts = np.bincount(rows, minlength=len(d))
        slot = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
        few = np.full((len(d), int(counts.max())), np.inf)
        few[rows, slot] = d[rows, cols]
        d = few
    cand = np.concatenate((best, d), axis=1)
    cand.partition(m - 1, axis=1)
    return cand[:, :m]


def _knn_sqradii(s: _Feats, k: int) -> np.ndarray:
    """Squared distance from each sample to its k-th nearest neighbour in the same set."""
    # keep, per sample, the k+1 smallest distances including its own (0); the largest of
    # them is the k-th neighbour excluding itself (duplicates of a sample count as neighbours)
    best = np.full((s.n, k + 1), np.inf)
    nb = len(s.bounds)
    for i in range(nb):
        i0, i1 = s.bounds[i]
        for j in range(i, nb):  # upper triangle of blocks; the lower one is its transpose
            j0, j1 = s.bounds[j]
            d = _sqdist(*s.block(i), *s.block(j))
            if i == j:
                np.fill_diagonal(d, 0.0)
            best[i0:i1] = _keep_smallest(best[i0:i1], d)
            if i != j:
                best[j0:j1] = _keep_smallest(best[j0:j1], d.T)
    return best.max(axis=1)


def _prepare(real, fake, k, batch_size, what: str):
    real = as_features(real, "real")
    fake = as_features(fake, "fake")
    check_same_dim(real, fake)
    k = check_positive_int(k, "k")
    batch_size = check_positive_int(batch_size, "batch_size")
    for name, x in (("real", real), ("fake", fake)):
        if len(x) <= k:
            raise ValueError(f"{what} with k={k} needs at least {k + 1} samples in each set "
                             f"({name} has {len(x)}); lower k or provide more samples")
    center = real.mean(axis=0, dtype=np.float64)
    return _Feats(real, center, batch_size), _Feats(fake, center, batch_size), k


def knn_radii(feats, k: int = 3, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Distance (float64, N) from each sample to its k-th nearest neighbour in ``feats``."""
    x = as_features(feats, "features")
    k = check_positive_int(k, "k")
    batch_size = check_positive_int(batch_size, "batch_size")
    if len(x) <= k:
        raise ValueError(f"k={k} needs at least {k + 1} samples, got {len(x)}")
    return np.sqrt(_knn_sqradii(_Feats(x, x.mean(axis=0, dtype=np.float64), batch_size), k))


def precision_recall(real, fake, k: int = 3, *, batch_size: int = DEFAULT_BATCH_SIZE) -> PrecisionRecall:
    """Improved precision and recall of ``fake`` against ``real`` (N, D) features, k-NN balls."""
    r, f, k = _prepare(real, fake, k, batch_size, "precision_recall")
    r_rad = _knn_sqradii(r, k)
    f_rad = _knn_sqradii(f, k)
    real_hit = np.zeros(r.n, dtype=bool)  # real sample inside some fake ball -> recall
    fake_hit = np.zeros(f.n, dtype=bool)  # fake sample inside some real ball -> precision
    for i, (i0, i1) in enumerate(r.bounds):
        for j, (j0, j1) in enumerate(f.bounds):
            d = _cross_tile(r, i, f, j)
            real_hit[i0:i1] |= (d <= f_rad[None, j0:j1]).any(axis=1)
            fake_hit[j0:j1] |= (d <= r_rad[i0:i1, None]).any(axis=0)
    return PrecisionRecall(float(fake_hit.mean()), float(real_hit.mean()))


def density_coverage(real, fake, k: int = 5, *, batch_size: int = DEFAULT_BATCH_SIZE) -> DensityCoverage:
    """Density and coverage of ``fake`` against ``real`` (N, D) features, k-NN balls (strict <)."""
    r, f, k = _prepare(real, fake, k, batch_size, "density_coverage")
    r_rad = _knn_sqradii(r, k)
    inside = 0  # number of (real ball, fake sample) pairs with the sample inside the ball
    covered = np.zeros(r.n, dtype=bool)
    for i, (i0, i1) in enumerate(r.bounds):
        for j in range(len(f.bounds)):
            hit = _cross_tile(r, i, f, j) < r_rad[i0:i1, None]
            inside += int(np.count_nonzero(hit))
            covered[i0:i1] |= hit.any(axis=1)
    return DensityCoverage(float(inside / (k * f.n)), float(covered.mean()))
