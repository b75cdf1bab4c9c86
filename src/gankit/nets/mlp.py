"""Fully connected generator and discriminator, for toy data (and flattened images)."""
from __future__ import annotations

import math
from typing import Literal, Tuple

import torch
from torch import nn

from ..errors import ConfigError
from ..registries import DISCRIMINATORS, GENERATORS
from .blocks import DiscriminatorHead, shape_of

__all__ = ["MLPGenerator", "MLPDiscriminator"]

Activation = Literal["relu", "leaky_relu", "tanh", "elu"]


def _activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(0.2), "tanh": nn.Tanh(), "elu": nn.ELU()}[name]


def _stack(n_in: int, hidden: int, layers: int, activation: str, batch_norm: bool) -> nn.Sequential:
    if layers < 1 or hidden < 1:
        raise ConfigError(f"an MLP needs layers >= 1 and hidden >= 1, got layers={layers}, hidden={hidden}")
    mods = []
    for i in range(layers):
        mods.append(nn.Linear(n_in if i == 0 else hidden, hidden))
        if batch_norm:
            mods.append(nn.BatchNorm1d(hidden))
        mods.append(_activation(activation))
    return nn.Sequential(*mods)


class MLPGenerator(nn.Module):
    def __init__(self, shape: Tuple[int, ...], z_dim: int, hidden: int, layers: int, activation: str,
                 batch_norm: bool):
        super().__init__()
        self.shape, self.z_dim = tuple(shape), z_dim
        self.body = _stack(z_dim, hidden, layers, activation, batch_norm)
        self.out = nn.Linear(hidden, math.prod(shape))
        self.image = len(shape) == 3

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.out(self.body(z))
        if self.image:  # images live in [-1, 1]
            x = torch.tanh(x)
        return x.view(len(z), *self.shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, shape: Tuple[int, ...], hidden: int, layers: int, activation: str,
                 minibatch_kernels: int = 0):
        super().__init__()
        self.shape = tuple(shape)
        self.body = _stack(math.prod(shape), hidden, layers, activation, batch_norm=False)
        self.head = DiscriminatorHead(hidden, minibatch_kernels)

    @property
    def out(self) -> nn.Linear:
        return self.head.out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate features (N, hidden) that the read-out sees (used by feature matching)."""
        return self.body(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits D(x) before the sigmoid, shape (N,)."""
        return self.head(self.features(x))


@GENERATORS.register("mlp")
def mlp_generator(info, /, z_dim: int = 8, hidden: int = 128, layers: int = 3, activation: Activation = "relu",
                  batch_norm: bool = False) -> MLPGenerator:
    """Fully connected generator: z -> layers x (Linear, [BatchNorm], activation) -> Linear."""
    shape = shape_of(info)
    return MLPGenerator(shape, z_dim, hidden, layers, activation, batch_norm)


@DISCRIMINATORS.register("mlp")
def mlp_discriminator(info, /, hidden: int = 128, layers: int = 3, activation: Activation = "leaky_relu",
                      minibatch_kernels: int = 0) -> MLPDiscriminator:
    """Fully connected discriminator returning one logit per sample (minibatch_kernels > 0 adds
    minibatch discrimination before the read-out)."""
    shape = shape_of(info)
    return MLPDiscriminator(shape, hidden, layers, activation, minibatch_kernels)
