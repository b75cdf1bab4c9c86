"""Does the generator copy its training set?  Nearest training neighbours of generated samples.

The lectures' warning ("we don't want memory GAN"): compare each generated image with every
training image -- but a pixel-space L1/L2 comparison is not enough, because an image moved
by two or three pixels is usually closer (in L2) to some *other* training image than to the
one it was copied from.  Three distances are offered by :func:`nearest_neighbours`:

* ``"l2"``: Euclidean distance between the flattened arrays (pixel space);
* ``"shift"``: shift-tolerant distance: the smallest distance over the integer translations
  (dy, dx) of the sample with ``|dy|, |dx| <= max_shift``, each measured on the region where
  the translated sample and the training image overlap (the pixels that the translation
  moves out of the frame, or that it leaves uncovered, are not compared) and rescaled to
  the full frame::

      d_shift(x, t)^2 = min_{dy,dx} (H W / |O|) * sum_{p in O} (x[p - (dy,dx)] - t[p])^2

  with O the overlap (``(H-|dy|)(W-|dx|)`` pixels, times the channels).  Why the overlap
  and not zero padding: a copy that was moved by 3 pixels has lost a 3-pixel strip, which
  zero padding would count as a difference (on Fashion-MNIST, where clothes fill the frame,
  one shifted copy in ten then matches another training image better than its source);
  over the overlap the source matches exactly, and no fill value has to be guessed for
  images in [0, 255], [0, 1] or [-1, 1].  The H W / |O| factor turns the sum into a
  per-pixel mean scaled back to the frame, so that larger shifts (fewer pixels compared)
  are not favoured.  Shift (0, 0) is the plain L2 distance, so ``shift <= l2``.  Each of
  the (2 max_shift + 1)^2 shifts is one batched matmul against the training set;
* ``"features"``: Euclidean distance between ``features(samples)`` and ``features(train)``
  for a ``features`` callable (e.g. a classifier's penultimate layer).

All distances are float64, computed tile by tile with ``|a|^2 - 2 a.b + |b|^2``, so memory
stays bounded whatever the size of the training set.

:func:`memorization_report` flags near-copies with a threshold calibrated on real data:
the nearest-training-neighbour distances of a held-out real set (images the generator
never saw and that are not copies) are computed with the same metric, and the threshold
is their ``percentile``-th percentile (default 1).  A sample is a near-copy when its own
nearest-neighbour distance is ``<=`` that threshold.  A generator whose samples are as
novel as held-out data would therefore have about ``percentile`` % of its samples flagged;
a fraction well above that means the generator reproduces training images.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from ..viz.plots import pyplot, save_figure as write_figure
from ._checks import _to_numpy, check_positive_int

__all__ = ["nearest_neighbours", "memorization_report", "save_neighbours_figure", "shift_images"]

METRICS = ("l2", "shift", "features")
DEFAULT_BATCH_SIZE = 2048


def _array(x, name: str, min_ndim: int = 1) -> np.ndarray:
    """numpy view of numpy/torch data, checked: real, finite, non-empty; dtype kept."""
    a = _to_numpy(x, name)
    if a.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s) (N, ...), got shape {tuple(a.shape)}")
    if a.dtype.kind not in "fiub":
        raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.shape[0] == 0 or a.size == 0:
        raise ValueError(f"{name} is empty (shape {tuple(a.shape)}); at least one image is needed")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values ({int(np.isnan(a).sum())} NaN, "
                         f"{int(np.isinf(a).sum())} inf); check the generator output")
    return a


def _as_images(a: np.ndarray, name: str) -> np.ndarray:
    """(N, H, W) or (N, C, H, W) -> (N, C, H, W)."""
    if a.ndim == 3:
        return a[:, None]
    if a.ndim != 4:
        raise ValueError(f"metric='shift' needs images shaped (N, C, H, W) or (N, H, W); {name} has shape "
                         f"{tuple(a.shape)}")
    return a


def shift_images(images, dy: int, dx: int, fill: float = 0.0) -> np.ndarray:
    """Translate (N, C, H, W) or (N, H, W) images by ``dy`` rows (down) and ``dx`` columns (right).

    Returns float64 (N, C, H, W).  Pixels moved out of the frame are dropped; the pixels left
    uncovered get ``fill``.
    """
    a = _to_numpy(images, "images")
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W) or (N, H, W), got shape {tuple(a.shape)}")
    h, w = a.shape[-2:]
    out = np.full(a.shape, float(fill), dtype=np.float64)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        a[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def _overlap_mask(shape, dy: int, dx: int) -> np.ndarray:
    """1 where a (C, H, W) frame translated by (dy, dx) overlaps the untranslated frame."""
    m = np.zeros(shape)
    h, w = shape[-2:]
    m[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = 1.0
    return m


class _Train:
    """Training rows (M, D) in their own dtype, read one float64 block at a time.

    With ``masks`` (V, D), ``sq`` holds per-variant squared norms over each mask, (M, V);
    without, plain squared norms (M, 1).
    """

    def __init__(self, x: np.ndarray, bs: int, masks: Optional[np.ndarray] = None):
        self.x, self.bs = x, bs
        cols = 1 if masks is None else len(masks)
        self.sq = np.empty((len(x), cols))
        for lo, blk in self.blocks():
            if masks is None:
                self.sq[lo:lo + len(blk), 0] = np.einsum("ij,ij->i", blk, blk)
            else:
                self.sq[lo:lo + len(blk)] = (blk * blk) @ masks.T

    def blocks(self):
        for lo in range(0, len(self.x), self.bs):
            yield lo, np.asarray(self.x[lo:lo + self.bs], dtype=np.float64)


def _knn(queries: np.ndarray, train: _Train, k: int, n_variants: int = 1,
         scale: Optional[np.ndarray] = None,
         want_variant: bool = False) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k nearest training rows for queries grouped as ``n_variants`` consecutive rows per sample.

    A sample's squared distance to a training row is the minimum over its variants v of
    ``scale[v] * (|q_v|^2 + train.sq[:, v] - 2 q_v . t)`` (``train.sq`` has one column per
    variant; one column when there is one variant).  Returns squared distances (N, k), indices (N, k) and, with
    ``want_variant``, the variant that achieved each distance (N, k; zeros otherwise).
    """
    n = len(queries) // n_variants
    sc = np.ones(n_variants) if scale is None else np.asarray(scale, dtype=np.float64)
    q = np.asarray(queries, dtype=np.float64).reshape(n, n_variants, -1)
    q_sq = np.einsum("nvd,nvd->nv", q, q) * sc[None]                     # scale_v |q_v|^2
    q = (q * (-2.0 * sc)[None, :, None]).reshape(n * n_variants, -1)      # so q @ t.T = -2 scale_v q_v.t
    t_sq_all = train.sq * sc[None]                                       # (M, V): one column per variant
    bd = np.full((n, 0), np.inf)
    bi = np.zeros((n, 0), dtype=np.int64)
    bv = np.zeros((n, 0), dtype=np.int64)
    for lo, t in train.blocks():
        g = (q @ t.T).reshape(n, n_variants, len(t))
        g += q_sq[:, :, None]
        g += t_sq_all[lo:lo + len(t)].T[None]
        if n_variants == 1:
            d2, v = g[:, 0], np.zeros((n, len(t)), dtype=np.int64)
        elif want_variant:
            v = g.argmin(axis=1)
            d2 = np.take_along_axis(g, v[:, None, :], 1)[:, 0]
        else:
            d2, v = g.min(axis=1), np.zeros((n, len(t)), dtype=np.int64)
        cand_d = np.concatenate([bd, d2], axis=1)
        cand_i = np.concatenate([bi, np.broadcast_to(np.arange(lo, lo + len(t)), d2.shape)], axis=1)
        cand_v = np.concatenate([bv, v], axis=1)
        if cand_d.shape[1] > k:
            part = np.argpartition(cand_d, k - 1, axis=1)[:, :k]
            cand_d, cand_i, cand_v = (np.take_along_axis(c, part, 1) for c in (cand_d, cand_i, cand_v))
        bd, bi, bv = cand_d, cand_i, cand_v
    order = np.lexsort((bi, bd), axis=1)
    bd, bi, bv = (np.take_along_axis(c, order, 1) for c in (bd, bi, bv))
    np.maximum(bd, 0.0, out=bd)
    return bd, bi, bv


def nearest_neighbours(samples, train, metric: str = "l2", max_shift: int = 3, k: int = 1, *,
                       batch_size: int = DEFAULT_BATCH_SIZE,
                       features: Optional[Callable[[object], object]] = None,
                       return_shifts: bool = False):
    """The ``k`` nearest training images of every sample: ``(indices (N, k), distances (N, k))``.

    ``samples`` (N, ...) and ``train`` (M, ...) are numpy arrays or torch tensors (images
    (N, C, H, W) or (N, H, W) for ``metric="shift"``, any shape otherwise; any real dtype,
    on the same scale).  ``metric`` is ``"l2"``, ``"shift"`` (translations up to
    ``max_shift`` pixels) or ``"features"`` (with ``features``, a callable mapping a batch
    of images to an (n, F) array); see the module docstring.  Distances are Euclidean (not
    squared); neighbours are sorted nearest first (lower index first on ties).
    ``batch_size`` bounds memory: each tile is about ``batch_size`` x ``batch_size`` float64
    numbers (for "shift", ``batch_size // (2 max_shift + 1)^2`` samples with all their
    shifts against ``batch_size`` training images).  With ``return_shifts=True`` a third
    array (N, k, 2) gives, per neighbour, the translation (dy, dx) of the sample that matched
    it (``shift_images(sample, dy, dx)`` lines up with ``train[i]``; zeros for other metrics).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    k = check_positive_int(k, "k")
    batch_size = check_positive_int(batch_size, "batch_size")
    if metric == "features":
        if not callable(features):
            raise ValueError("metric='features' needs a features callable: images -> (n, F) array")
        s = _array(features(samples), "features(samples)", 2)
        t = _array(features(train), "features(train)", 2)
        if s.ndim != 2 or t.ndim != 2:
            raise ValueError(f"features must return (n, F) arrays, got shapes {s.shape} and {t.shape}")
    else:
        s = _array(samples, "samples")
        t = _array(train, "train")
    if k > len(t):
        raise ValueError(f"k={k} neighbours asked for, but train holds only {len(t)} images")
    if metric != "shift":
        sf, tf = s.reshape(len(s), -1), t.reshape(len(t), -1)
        if sf.shape[1] != tf.shape[1]:
            raise ValueError(f"dimensions differ: samples have {sf.shape[1]} values each "
                             f"(shape {tuple(s.shape[1:])}), train has {tf.shape[1]} (shape {tuple(t.shape[1:])})")
        tr = _Train(tf, batch_size)
        parts = [_knn(sf[lo:lo + batch_size], tr, k) for lo in range(0, len(sf), batch_size)]
        d2 = np.concatenate([p[0] for p in parts])
        idx = np.concatenate([p[1] for p in parts])
        if return_shifts:
            return idx, np.sqrt(d2), np.zeros(idx.shape + (2,), dtype=np.int64)
        return idx, np.sqrt(d2)
    s, t = _as_images(s, "samples"), _as_images(t, "train")
    if s.shape[1:] != t.shape[1:]:
        raise ValueError(f"image shapes differ: samples are {s.shape[1:]}, train images are {t.shape[1:]}")
    max_shift = check_positive_int(max_shift, "max_shift", minimum=0)
    shifts = np.array([(dy, dx) for dy in range(-max_shift, max_shift + 1)
                       for dx in range(-max_shift, max_shift + 1)], dtype=np.int64)
    frame = s.shape[1:]
    masks = np.stack([_overlap_mask(frame, dy, dx).reshape(-1) for dy, dx in shifts])     # (V, D)
    if (masks.sum(axis=1) == 0).any():
        raise ValueError(f"max_shift={max_shift} moves images of size {frame[-2:]} out of the frame; "
                         "use a smaller max_shift")
    scale = masks.shape[1] / masks.sum(axis=1)
    tr = _Train(t.reshape(len(t), -1), batch_size, masks)
    q_block = max(1, batch_size // len(shifts))
    parts = []
    for lo in range(0, len(s), q_block):
        chunk = s[lo:lo + q_block]
        variants = np.stack([shift_images(chunk, dy, dx, 0.0) for dy, dx in shifts], axis=1)
        parts.append(_knn(variants.reshape(len(chunk) * len(shifts), -1), tr, k, len(shifts), scale,
                          return_shifts))
    d2 = np.concatenate([p[0] for p in parts])
    idx = np.concatenate([p[1] for p in parts])
    if return_shifts:
        return idx, np.sqrt(d2), shifts[np.concatenate([p[2] for p in parts])]
    return idx, np.sqrt(d2)


def memorization_report(samples, train, heldout=None, *, metric: str = "l2", percentile: float = 1.0,
                        threshold: Optional[float] = None, max_shift: int = 3,
                        features: Optional[Callable[[object], object]] = None,
                        batch_size: int = DEFAULT_BATCH_SIZE) -> Dict[str, object]:
    """Flag samples that are near-copies of training images.

    The threshold is ``threshold`` if given, else the ``percentile``-th percentile of the
    nearest-training-neighbour distances of ``heldout`` (real images not in ``train``),
    measured with the same ``metric``.  A sample is a near-copy when its nearest-neighbour
    distance is ``<= threshold``.

    Returns ``near_copies`` (indices of the flagged samples), ``fraction`` (flagged /
    N), ``threshold``, ``percentile``, ``expected_fraction`` (percentile / 100: what a
    generator as novel as held-out data would score; None when ``threshold`` was given),
    ``heldout_fraction`` (held-out images at or under the threshold), ``metric``,
    ``nn_indices`` (N,) and ``nn_distances`` (N,) of every sample, and
    ``heldout_median_distance``.
    """
    if threshold is None:
        if heldout is None:
            raise ValueError("memorization_report needs held-out real images to calibrate the threshold "
                             "(heldout=...), or an explicit threshold=...")
        if not (0.0 <= float(percentile) <= 100.0):
            raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    elif not (np.isscalar(threshold) and math.isfinite(float(threshold)) and float(threshold) >= 0):
        raise ValueError(f"threshold must be a non-negative number, got {threshold!r}")
    kw = dict(metric=metric, max_shift=max_shift, batch_size=batch_size, features=features)
    idx, dist = nearest_neighbours(samples, train, **kw)
    held_d = None
    if heldout is not None:
        _, held = nearest_neighbours(heldout, train, **kw)
        held_d = held[:, 0]
    if threshold is None:
        threshold = float(np.percentile(held_d, float(percentile)))
        expected = float(percentile) / 100.0
    else:
        threshold, expected = float(threshold), None
    d = dist[:, 0]
    flagged = np.flatnonzero(d <= threshold)
    return {
        "near_copies": flagged,
        "fraction": float(len(flagged) / len(d)),
        "threshold": threshold,
        "percentile": float(percentile) if expected is not None else None,
        "expected_fraction": expected,
        "heldout_fraction": None if held_d is None else float((held_d <= threshold).mean()),
        "heldout_median_distance": None if held_d is None else float(np.median(held_d)),
        "metric": metric,
        "nn_indices": idx[:, 0],
        "nn_distances": d,
    }


def _display(a: np.ndarray) -> np.ndarray:
    """(n, ...) -> (n, H, W) or (n, H, W, 3) float arrays for imshow."""
    if a.ndim == 2:                                           # flat vectors: square images if possible
        side = int(round(math.sqrt(a.shape[1])))
        if side * side != a.shape[1]:
            raise ValueError(f"cannot show flat vectors of length {a.shape[1]} as images; pass (N, C, H, W)")
        return a.reshape(len(a), side, side)
    if a.ndim == 3:
        return a
    if a.ndim == 4 and a.shape[1] == 1:
        return a[:, 0]
    if a.ndim == 4 and a.shape[1] == 3:
        return a.transpose(0, 2, 3, 1)
    raise ValueError(f"images must be (N, H, W), (N, 1|3, H, W) or square flat vectors, got shape {a.shape}")


def save_neighbours_figure(samples, train, indices, path, n: int = 8, distances=None,
                           title: Optional[str] = None) -> Path:
    """Save a PNG: one row per sample (the first ``n``), the sample then its nearest training images.

    ``indices`` (N, k) or (N,) from :func:`nearest_neighbours`; ``distances`` (same shape,
    optional) are printed above the neighbours.  All images share one grey scale (or RGB
    range) from the smallest to the largest value shown.  Returns the path.
    """
    plt = pyplot()

    s = _array(samples, "samples")
    t = _array(train, "train")
    idx = np.asarray(_to_numpy(indices, "indices"))
    if idx.ndim == 1:
        idx = idx[:, None]
    if idx.ndim != 2 or len(idx) > len(s) or len(idx) == 0:
        raise ValueError(f"indices must be (N, k) with N <= {len(s)} samples, got shape {idx.shape}")
    if idx.min() < 0 or idx.max() >= len(t):
        raise ValueError(f"indices must lie in 0..{len(t) - 1} (rows of train)")
    dist = None if distances is None else np.asarray(_to_numpy(distances, "distances"), dtype=np.float64)
    if dist is not None:
        dist = dist.reshape(idx.shape)
    rows = min(check_positive_int(n, "n"), len(idx))
    k = idx.shape[1]
    shown_s = _display(np.asarray(s[:rows], dtype=np.float64))
    shown_t = _display(np.asarray(t[idx[:rows].reshape(-1)], dtype=np.float64)).reshape(rows, k, *shown_s.shape[1:])
    lo = min(shown_s.min(), shown_t.min())
    hi = max(shown_s.max(), shown_t.max())
    span = hi - lo if hi > lo else 1.0
    fig, axes = plt.subplots(rows, k + 1, figsize=(1.3 * (k + 1), 1.4 * rows + (0.4 if title else 0)),
                             squeeze=False)
    for r in range(rows):
        for c in range(k + 1):
            img = shown_s[r] if c == 0 else shown_t[r, c - 1]
            ax = axes[r, c]
            if img.ndim == 3:
                ax.imshow(np.clip((img - lo) / span, 0, 1))
            else:
                ax.imshow(img, cmap="gray", vmin=lo, vmax=lo + span)
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_title("sample" if r == 0 else "", fontsize=7)
            else:
                label = f"#{idx[r, c - 1]}"
                if dist is not None:
                    label += f" d={dist[r, c - 1]:.2f}"
                ax.set_title(label, fontsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return write_figure(fig, path)
