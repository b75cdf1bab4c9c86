"""The networks of domain-adversarial training (Ganin et al. 2016), for method ``dann``.

* ``dann_features`` (generator registry, the role ``generator``: the lecture calls the feature
  extractor DANN's generator): the paper's MNIST feature extractor, a 5x5 convolution of
  ``width`` channels, ReLU, 2x2 max-pooling, a 5x5 convolution of 1.5 ``width`` channels,
  ReLU, 2x2 max-pooling, flattened (28x28 pictures: 48 x 4 x 4 = 768 features at width 32).
  ``features_dim`` is the number of features; it has no ``z_dim`` (it draws nothing from
  noise).
* ``label_classifier`` (discriminator registry, the role ``classifier``): features ->
  ``layers`` fully connected ReLU layers of ``width`` units -> one logit per class of ``y``
  (the paper's: 100, 100, 10).
* ``domain_classifier`` (discriminator registry, the role ``discriminator``: the lecture's
  "domain classifier, which is the discriminator"): features -> ``layers`` ReLU layers of
  ``width`` units -> one logit per sample (N,), positive for the target domain (the paper's:
  100, then the logit).

The classifiers are built for the features: method dann gives them a description of the
data whose sample shape is ``(features_dim,)``.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from ..errors import ConfigError
from ..registries import DISCRIMINATORS, GENERATORS
from .blocks import shape_of

__all__ = ["FeatureExtractor", "Classifier"]


def _side(n: int) -> int:
    """The side of the feature map after the two convolutions and poolings of an n-pixel side."""
    return ((n - 4) // 2 - 4) // 2


class FeatureExtractor(nn.Module):
    """Pictures (N, C, H, W) -> features (N, features_dim)."""

    def __init__(self, shape: Tuple[int, ...], width: int):
        super().__init__()
        c, h, w = shape
        second = width + width // 2
        self.shape = tuple(shape)
        self.body = nn.Sequential(nn.Conv2d(c, width, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                                  nn.Conv2d(width, second, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.features_dim = second * _side(h) * _side(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten(1)


class Classifier(nn.Module):
    """Features (N, D) -> logits (N, outputs), or (N,) for one output."""

    def __init__(self, features: int, width: int, layers: int, outputs: int):
        super().__init__()
        stack, n_in = [], features
        for _ in range(layers):
            stack += [nn.Linear(n_in, width), nn.ReLU(inplace=True)]
            n_in = width
        self.hidden = nn.Sequential(*stack)
        self.out = nn.Linear(n_in, outputs)
        self.outputs = outputs

    def features(self, f: torch.Tensor) -> torch.Tensor:
        """The penultimate layer (N, width)."""
        return self.hidden(f)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        out = self.out(self.hidden(f))
        return out.squeeze(1) if self.outputs == 1 else out


def _check(width: int, layers: int, min_layers: int) -> None:
    if width < 1:
        raise ConfigError(f"width must be positive, got {width}")
    if layers < min_layers:
        raise ConfigError(f"layers must be at least {min_layers}, got {layers}")


def _features_of(info, network: str) -> int:
    shape = shape_of(info)
    if len(shape) != 1:
        raise ConfigError(f"the {network} network reads a feature vector (method dann gives it the feature "
                          f"extractor's), got samples of shape {tuple(shape)}")
    return int(shape[0])


@GENERATORS.register("dann_features")
def dann_features(info, /, width: int = 32) -> FeatureExtractor:
    """DANN's feature extractor (Ganin et al. 2016, MNIST): conv 5x5 (width) + ReLU + max-pool 2,
    conv 5x5 (1.5 width) + ReLU + max-pool 2, flattened; for method dann's role generator."""
    shape = shape_of(info)
    if len(shape) != 3:
        raise ConfigError(f"the dann_features network takes pictures (C, H, W), got samples of shape {tuple(shape)}")
    _check(width, 1, 1)
    if min(_side(shape[1]), _side(shape[2])) < 1:
        raise ConfigError(f"the dann_features network needs pictures of at least 16x16 pixels, got "
                          f"{shape[1]}x{shape[2]}; set data.image_size")
    return FeatureExtractor(shape, width)


@DISCRIMINATORS.register("label_classifier")
def label_classifier(info, /, width: int = 100, layers: int = 2) -> Classifier:
    """DANN's label predictor: features -> layers ReLU layers of width units -> one logit per class
    (the paper's 100, 100, 10); for method dann's role classifier."""
    _check(width, layers, 0)
    classes = int(getattr(info, "n_classes", 0) or 0)
    if classes < 2:
        raise ConfigError("the label_classifier network predicts the classes of y: the data needs labels of at "
                          "least two classes")
    return Classifier(_features_of(info, "label_classifier"), width, layers, classes)


@DISCRIMINATORS.register("domain_classifier")
def domain_classifier(info, /, width: int = 100, layers: int = 1) -> Classifier:
    """DANN's domain classifier: features -> layers ReLU layers of width units -> one logit (target
    domain positive; the paper's 100, then the logit); for method dann's role discriminator."""
    _check(width, layers, 0)
    return Classifier(_features_of(info, "domain_classifier"), width, layers, 1)
