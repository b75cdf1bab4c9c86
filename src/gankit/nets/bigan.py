"""BiGAN's (Donahue et al. 2017; ALI, Dumoulin et al. 2017) networks beside its DCGAN generator.

* ``encoder`` (generator registry, the role ``encoder``): E(x), a picture -> a code of the
  generator's ``z_dim`` numbers: the DCGAN discriminator's convolutional body (``norm`` after
  every convolution but the first) and one linear read-out. Deterministic, as in the BiGAN
  paper's main experiments. Its size is ``code_dim`` (no ``z_dim``: it draws nothing from
  noise, so no method takes it for a generator).
* ``joint`` (discriminator registry): D(x, z), one logit per (picture, code) pair. The picture
  goes through the DCGAN discriminator's body, the code through a fully connected layer; the
  two feature vectors, concatenated, through a hidden layer to the logit (ALI's and BiGAN's
  shape: separate paths for x and z that meet before the read-out), with dropout in the
  fully connected part (``dropout``). ``features(x, z)`` is the penultimate layer.

Both read the code's size from the field ``z`` of the :class:`~gankit.methods.base.DataInfo`
they are built for, which method ``bigan`` adds (the generator's ``z_dim``); built without it
they say so.
"""
from __future__ import annotations

from typing import Literal, Tuple

import torch
from torch import nn

from ..errors import ConfigError
from ..registries import DISCRIMINATORS, GENERATORS
from .dcgan import DCGANDiscriminator, plan

__all__ = ["Encoder", "JointDiscriminator", "code_size"]


def code_size(info, network: str) -> int:
    """The size of the code (the field ``z`` that method bigan adds to the data's description)."""
    fields = getattr(info, "fields", None) or {}
    if "z" not in fields:
        raise ConfigError(f"the {network} network works with the codes of a generator (their size comes from it): "
                          "use it with method bigan")
    return int(fields["z"].shape[0])


def _image_shape(info, network: str) -> Tuple[int, ...]:
    shape = tuple(info.shape)
    if len(shape) != 3:
        raise ConfigError(f"the {network} network takes pictures (C, H, W), got samples of shape {shape}")
    return shape


class Encoder(nn.Module):
    """x -> E(x) (N, code_dim): the DCGAN discriminator's body and a linear read-out."""

    def __init__(self, shape: Tuple[int, ...], code_dim: int, width: int, norm: str = "batch"):
        super().__init__()
        self.shape, self.code_dim = tuple(shape), int(code_dim)
        self.body = DCGANDiscriminator(shape, width, 0, norm).body
        base, n = plan(shape)
        self.read = nn.Linear(width * 2 ** (n - 1) * base * base, code_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The body's features (N, F) that the read-out sees."""
        return self.body(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.read(self.features(x))


class JointDiscriminator(nn.Module):
    """(x, z) -> one logit per pair (N,): see the module."""

    #: takes (picture, code) pairs (method bigan checks for it)
    joint = True

    def __init__(self, shape: Tuple[int, ...], code_dim: int, width: int, hidden: int, norm: str, dropout: float):
        super().__init__()
        self.shape, self.code_dim = tuple(shape), int(code_dim)
        self.image = DCGANDiscriminator(shape, width, 0, norm).body
        base, n = plan(shape)
        image_features = width * 2 ** (n - 1) * base * base
        self.code = nn.Sequential(nn.Linear(code_dim, hidden), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(dropout))
        self.joint_layer = nn.Sequential(nn.Dropout(dropout), nn.Linear(image_features + hidden, hidden),
                                         nn.LeakyReLU(0.2, inplace=True), nn.Dropout(dropout))
        self.out = nn.Linear(hidden, 1)

    def features(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The penultimate features (N, hidden) of each pair."""
        h = torch.cat([self.image(x).flatten(1), self.code(z)], 1)
        return self.joint_layer(h)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x, z)).squeeze(1)


def _check(width: int, key: str = "width") -> None:
    if width < 1:
        raise ConfigError(f"{key} must be positive, got {width}")


@GENERATORS.register("encoder")
def encoder_network(info, /, width: int = 64, norm: Literal["batch", "layer", "none"] = "batch") -> Encoder:
    """BiGAN's encoder E: a picture -> a code of the generator's z_dim numbers (the DCGAN
    discriminator's body, norm after every convolution but the first, and a linear read-out);
    for method bigan's role encoder."""
    _check(width)
    return Encoder(_image_shape(info, "encoder"), code_size(info, "encoder"), width, norm)


@DISCRIMINATORS.register("joint")
def joint_network(info, /, width: int = 64, hidden: int = 256, norm: Literal["batch", "layer", "none"] = "batch",
                  dropout: float = 0.2) -> JointDiscriminator:
    """BiGAN's joint discriminator D(x, z): the picture through the DCGAN discriminator's body, the
    code through a fully connected layer of hidden units, both into a hidden layer and one logit;
    dropout in the fully connected part; for method bigan."""
    _check(width)
    _check(hidden, "hidden")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"discriminator.dropout must lie in [0, 1), got {dropout}")
    return JointDiscriminator(_image_shape(info, "joint"), code_size(info, "joint"), width, hidden, norm, dropout)
