"""Accuracy of an unsupervised clustering against labels, under the best one-to-one matching.

An unsupervised model (InfoGAN's categorical code, k-means) names its clusters 0..k-1 in an
order of its own; its accuracy is the share of samples whose cluster, mapped to a class by the
one-to-one assignment of clusters to classes that agrees with the most samples, is their class
(the assignment problem on the contingency table, solved by SciPy's
``linear_sum_assignment``). With more clusters than classes the clusters left without a class
count as wrong, and with fewer, the classes left over do. :func:`kmeans` is the baseline
clustering (scikit-learn's k-means from k-means++ seeds, several restarts).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["contingency", "matched_accuracy", "kmeans"]


def contingency(pred: np.ndarray, truth: np.ndarray, k_pred: int, k_true: int) -> np.ndarray:
    """(k_pred, k_true) counts of the samples in each (cluster, class)."""
    pred, truth = np.asarray(pred, dtype=np.int64).ravel(), np.asarray(truth, dtype=np.int64).ravel()
    if len(pred) != len(truth):
        raise ValueError(f"{len(pred)} clusters for {len(truth)} labels")
    for name, t, k in (("cluster", pred, k_pred), ("label", truth, k_true)):
        if len(t) and (t.min() < 0 or t.max() >= k):
            raise ValueError(f"{name} values must lie in 0..{k - 1}, got {t.min()}..{t.max()}")
    table = np.zeros((k_pred, k_true), dtype=np.int64)
    np.add.at(table, (pred, truth), 1)
    return table


def matched_accuracy(pred, truth, k_pred: int = 0, k_true: int = 0) -> Tuple[float, np.ndarray]:
    """(accuracy, mapping) of clusters ``pred`` against labels ``truth`` under the best
    one-to-one matching; ``mapping[c]`` is the class cluster c is matched to (-1: none).
    ``k_pred``/``k_true`` default to one more than the largest value seen."""
    pred, truth = np.asarray(pred, dtype=np.int64).ravel(), np.asarray(truth, dtype=np.int64).ravel()
    if len(pred) == 0:
        raise ValueError("no samples to score")
    k_pred = k_pred or int(pred.max()) + 1
    k_true = k_true or int(truth.max()) + 1
    table = contingency(pred, truth, k_pred, k_true)
    rows, cols = linear_sum_assignment(table, maximize=True)
    mapping = np.full(k_pred, -1, dtype=np.int64)
    mapping[rows] = cols
    return float(table[rows, cols].sum() / len(pred)), mapping


def kmeans(x: np.ndarray, k: int, seed: int = 0, restarts: int = 3) -> Tuple[np.ndarray, np.ndarray, float]:
    """(cluster of each row, centres, within-cluster sum of squares) of the best of
    ``restarts`` k-means runs from k-means++ seeds (scikit-learn), float64."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if not 1 <= k <= len(x):
        raise ValueError(f"k-means needs 1 <= k <= the number of samples ({len(x)}), got k={k}")
    try:
        from sklearn.cluster import KMeans
    except ImportError:
        raise ImportError("the k-means baseline needs scikit-learn: pip install scikit-learn "
                          "(or pip install -e '.[photos]')") from None
    fit = KMeans(n_clusters=k, init="k-means++", n_init=restarts, random_state=seed).fit(x)
    return fit.labels_.astype(np.int64), fit.cluster_centers_, float(fit.inertia_)
