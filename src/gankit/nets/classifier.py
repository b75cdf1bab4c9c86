"""A class-label classifier built around any registered discriminator.

Triple-GAN's classifier C(y | x) is a network of the discriminator registry (``dcgan`` for
pictures, ``mlp`` for vectors, any network with penultimate ``features`` and a read-out
``head``) whose one-logit read-out is replaced by a linear read-out of ``n_classes`` logits
on the same features. The base network's own read-out is dropped, so every parameter of
the classifier learns.
"""
from __future__ import annotations

import torch
from torch import nn

from .conditional import feature_dim

__all__ = ["FeatureClassifier"]


class FeatureClassifier(nn.Module):
    """``logits(x) = W features(x) + b``: (N, n_classes) class logits from ``base``'s features."""

    def __init__(self, base: nn.Module, n_classes: int):
        super().__init__()
        width = feature_dim(base, "a classifier is built around a network with penultimate features and a read-out "
                                  "head (dcgan, mlp)")
        if not isinstance(getattr(base.head, "minibatch", nn.Identity()), nn.Identity):
            from ..errors import ConfigError

            raise ConfigError("a classifier judges each sample on its own: set minibatch_kernels=0 for its network")
        base.head = nn.Identity()     # its one-logit read-out: replaced by the class read-out below
        self.base, self.n_classes = base, int(n_classes)
        self.out = nn.Linear(width, self.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.base.features(x))
