"""The linear probe: how much of the classes a representation makes linearly readable.

A multinomial logistic regression is fitted on the features of a labelled training set and
scored on the features of a test set (the protocol by which BiGAN's and ALI's encoders are
judged against random networks and raw pixels). Each feature is standardised by the mean and
standard deviation of the training features; the weights minimise the mean cross-entropy plus
``l2`` times their squared norm (the bias is not penalised), from zero, by L-BFGS with a
strong-Wolfe line search in float64, so the fit is deterministic and independent of the scale
of the features. The objective is scikit-learn's ``LogisticRegression`` (multinomial, lbfgs)
with ``C = 1 / (2 * l2 * n_train)``; ``tests/test_bigan.py`` checks the two agree.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["fit_logistic", "linear_probe"]


def _as_float64(a) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(a) if not torch.is_tensor(a) else a)
    return t.detach().reshape(len(t), -1).to(torch.float64).cpu()


def fit_logistic(features, labels, classes: int, l2: float = 1e-3,
                 max_iter: int = 500) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(weights (D, K), bias (K,), feature mean, feature std) of the regularised multinomial
    logistic regression of ``labels`` (0..classes-1) on standardised ``features`` (N, D)."""
    x = _as_float64(features)
    y = torch.as_tensor(np.asarray(labels) if not torch.is_tensor(labels) else labels).long().reshape(-1).cpu()
    if len(x) != len(y):
        raise ValueError(f"{len(x)} feature vectors for {len(y)} labels")
    if len(x) == 0:
        raise ValueError("no samples to fit")
    if l2 < 0:
        raise ValueError(f"l2 must not be negative, got {l2}")
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-8)
    x = (x - mean) / std
    w = torch.zeros(x.shape[1], classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + l2 * w.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach(), mean, std


def linear_probe(train_features, train_labels, test_features, test_labels, l2: float = 1e-3,
                 max_iter: int = 500) -> float:
    """Test accuracy of the logistic regression fitted on the training features (see the module)."""
    test_y = torch.as_tensor(np.asarray(test_labels) if not torch.is_tensor(test_labels) else test_labels)
    test_y = test_y.long().reshape(-1).cpu()
    train_y = torch.as_tensor(np.asarray(train_labels) if not torch.is_tensor(train_labels) else train_labels)
    classes = int(max(int(train_y.max()), int(test_y.max()))) + 1
    w, b, mean, std = fit_logistic(train_features, train_y, classes, l2, max_iter)
    x = (_as_float64(test_features) - mean) / std
    if len(x) != len(test_y):
        raise ValueError(f"{len(x)} test feature vectors for {len(test_y)} labels")
    return float(((x @ w + b).argmax(1) == test_y).double().mean())
