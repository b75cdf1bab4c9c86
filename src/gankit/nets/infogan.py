"""InfoGAN's discriminator with the recognition network Q as a head on its penultimate features.

"Feature Extraction by GAN" in the lectures: the classifier that recovers the code c from a
generated x and the discriminator read the same image, so they share their parameters and
differ only in what they output. :class:`InfoDiscriminator` wraps any registered
discriminator that exposes ``features(x)`` and a read-out ``head`` (dcgan, mlp): the realism
score is the wrapped network's own read-out, and Q is a small head on the same features
(one hidden layer of ``hidden`` units, LeakyReLU 0.2, as Chen et al.'s MNIST network has
before its outputs) giving the logits of each categorical code and, for the continuous codes,
the mean of a factored Gaussian (and its log standard deviation when ``learn_std``; else the
standard deviation is fixed at 1).
"""
from __future__ import annotations

from typing import Dict, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from .conditional import feature_dim

__all__ = ["InfoDiscriminator", "LOG_STD_RANGE"]

#: the learned log standard deviation is squashed into this range (a Gaussian whose sigma may
#: reach 0 gives an unbounded likelihood on the codes it recovers exactly)
LOG_STD_RANGE = (-5.0, 2.0)


class InfoDiscriminator(nn.Module):
    """D(x) and Q(c | x) from one body: ``forward(x)`` returns ``score`` (N,), ``logits`` (a list
    of (N, k_i), one per categorical code), ``mean`` (N, n_continuous) and ``log_std`` (same
    shape; zeros unless ``learn_std``)."""

    def __init__(self, base: nn.Module, categories: Sequence[int], n_continuous: int, learn_std: bool = False,
                 hidden: int = 128):
        super().__init__()
        if hidden < 1:
            raise ConfigError(f"method.q_hidden must be at least 1, got {hidden}")
        width = feature_dim(base, "method infogan puts its recognition network Q on the discriminator's "
                              "penultimate features: use discriminator.name=auto (dcgan, mlp)")
        self.base, self.categories = base, tuple(int(k) for k in categories)
        self.n_continuous, self.learn_std = int(n_continuous), bool(learn_std)
        n_out = sum(self.categories) + self.n_continuous * (2 if learn_std else 1)
        self.q = nn.Sequential(nn.Linear(width, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, n_out))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.base.features(x)

    def q_outputs(self, phi: torch.Tensor) -> Dict[str, object]:
        """Q's outputs on penultimate features ``phi``."""
        out = self.q(phi)
        logits = list(out[:, :sum(self.categories)].split(self.categories, 1)) if self.categories else []
        rest = out[:, sum(self.categories):]
        mean = rest[:, :self.n_continuous]
        if self.learn_std:
            lo, hi = LOG_STD_RANGE
            log_std = lo + (hi - lo) * torch.sigmoid(rest[:, self.n_continuous:])
        else:
            log_std = torch.zeros_like(mean)
        return {"logits": logits, "mean": mean, "log_std": log_std}

    def recognise(self, x: torch.Tensor) -> Dict[str, object]:
        """Q(c | x) alone (no realism score): what encoding a real image needs."""
        return self.q_outputs(self.base.features(x))

    def forward(self, x: torch.Tensor) -> Dict[str, object]:
        phi = self.base.features(x)
        return {"score": self.base.head(phi), **self.q_outputs(phi)}
