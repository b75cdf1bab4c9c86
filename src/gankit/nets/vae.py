"""A variational auto-encoder's networks in the generator role: a Gaussian encoder and a decoder.

``vae`` (generator): one module holding

* the **encoder** q(z|x): the DCGAN discriminator's convolutional body
  (:class:`~gankit.nets.dcgan.DCGANDiscriminator` without its read-out; ``norm`` after every
  convolution but the first) and one linear layer that reads the mean and the log-variance of
  a diagonal Gaussian over the ``z_dim`` code from the body's features;
* the **decoder** p(x|z): the DCGAN generator itself (:class:`~gankit.nets.dcgan.DCGANGenerator`),
  so ``forward(z)`` is a generator's forward, images in [-1, 1] from codes, and any method
  that samples from noise can use the module;
* ``log_scale``: one learned log standard deviation per channel, the scale of a Gaussian
  likelihood around the decoder's output (methods with another reconstruction term leave
  it alone).

Encoder and decoder live in one role (one config section, one optimiser, one moving
average) because a VAE updates them together from one loss; a method that wants them to
learn from different losses shapes the gradients (see :mod:`gankit.methods.vaegan`).
"""
from __future__ import annotations

import math
from typing import Literal, Tuple

import torch
from torch import nn

from ..errors import ConfigError
from ..registries import GENERATORS
from .blocks import shape_of
from .dcgan import DCGANDiscriminator, DCGANGenerator, plan

__all__ = ["GaussianEncoder", "VAENet", "is_vae"]


class GaussianEncoder(nn.Module):
    """x -> (mean, log-variance) of q(z|x), each (N, z_dim): the DCGAN discriminator's body
    and a linear read-out of 2 * z_dim numbers."""

    def __init__(self, shape: Tuple[int, ...], z_dim: int, width: int, norm: str = "batch"):
        super().__init__()
        self.body = DCGANDiscriminator(shape, width, 0, norm).body
        base, n = plan(shape)
        self.features = width * 2 ** (n - 1) * base * base
        self.read = nn.Linear(self.features, 2 * z_dim)
        self.z_dim = z_dim

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x).flatten(1)
        mean, logvar = self.read(h).chunk(2, dim=1)
        return mean, logvar


class VAENet(nn.Module):
    """Encoder, decoder (the DCGAN generator) and the likelihood's per-channel log scale."""

    def __init__(self, shape: Tuple[int, ...], z_dim: int, width: int, norm: str, init_scale: float):
        super().__init__()
        self.shape, self.z_dim = tuple(shape), z_dim
        self.encoder = GaussianEncoder(shape, z_dim, width, norm)
        self.decoder = DCGANGenerator(shape, z_dim, width)
        self.log_scale = nn.Parameter(torch.full((shape[0],), math.log(init_scale)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Decoded images in [-1, 1] (the generator's forward)."""
        return self.decoder(z)

    def encode(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def decode_pre_tanh(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's output before its Tanh (Bernoulli logits are twice this)."""
        return self.decoder.pre_tanh(z)


def is_vae(net: nn.Module) -> bool:
    """Whether ``net`` (or the network inside a channels_last/compiled wrapper) is a :class:`VAENet`."""
    return all(hasattr(net, name) for name in ("encode", "decode", "decode_pre_tanh", "log_scale"))


@GENERATORS.register("vae")
def vae_network(info, /, z_dim: int = 32, width: int = 64, norm: Literal["batch", "layer", "none"] = "batch",
                init_scale: float = 0.2) -> VAENet:
    """VAE encoder (DCGAN discriminator body -> mean, log-variance of z) and decoder (the DCGAN
    generator); norm: the encoder's normalisation; init_scale: the starting standard deviation of
    the Gaussian likelihood (images in [-1, 1]), learned per channel."""
    shape = shape_of(info)
    if len(shape) != 3:
        raise ConfigError(f"the vae network encodes images (C, H, W), got samples of shape {tuple(shape)}")
    if z_dim < 1:
        raise ConfigError(f"generator.z_dim must be at least 1, got {z_dim}")
    if width < 1:
        raise ConfigError(f"generator.width must be positive, got {width}")
    if not init_scale > 0:
        raise ConfigError(f"generator.init_scale must be positive (a standard deviation), got {init_scale}")
    return VAENet(shape, z_dim, width, norm, init_scale)
