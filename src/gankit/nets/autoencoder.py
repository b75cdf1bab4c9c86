"""Auto-encoder discriminators for energy-based GANs (EBGAN, Zhao et al. 2017).

The discriminator encodes a sample to a code (an embedding of ``code`` numbers) and decodes
it back; the *energy* of a sample is its reconstruction error, the mean squared difference
per sample. Low energy means "looks like the data".

* vectors (toy data, or flattened images with ``kind=mlp``): an MLP encoder
  ``layers x (Linear, activation) -> Linear(code)`` and a mirrored MLP decoder;
* images: a convolutional encoder shaped like the DCGAN discriminator (strided 4x4
  convolutions, LeakyReLU 0.2) followed by a linear map to the code, and a decoder shaped
  like the DCGAN generator (linear map to a ``base x base`` map, strided transposed
  convolutions, Tanh since images live in [-1, 1]); it fits the same 28/32/64 sizes.

Unlike the other discriminators, ``forward(x)`` returns the reconstruction, not one number
per sample; :meth:`AutoEncoder.energy` gives the per-sample score (N,) in float32.
"""
from __future__ import annotations

import math
from typing import Literal, Tuple

import torch
from torch import nn

from ..errors import ConfigError
from ..registries import DISCRIMINATORS
from .blocks import shape_of
from .dcgan import plan
from .mlp import Activation, _stack

__all__ = ["AutoEncoder", "MLPAutoEncoder", "ConvAutoEncoder", "reconstruction_energy", "is_autoencoder"]


def reconstruction_energy(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared reconstruction error (N,), computed in float32."""
    return (recon.float() - x.float()).pow(2).flatten(1).mean(1)


def is_autoencoder(module: nn.Module) -> bool:
    """Whether ``module`` offers the auto-encoder interface (encode, decode, energy)."""
    return all(callable(getattr(module, name, None)) for name in ("encode", "decode", "energy"))


class AutoEncoder(nn.Module):
    """Base class: subclasses set ``encoder`` (x -> (N, code)) and ``decoder`` (code -> x)."""

    shape: Tuple[int, ...]
    code_dim: int

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding (N, code) of a batch of samples."""
        return self.encoder(x)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Reconstructions (N, *shape) from codes (N, code)."""
        return self.decoder(code).reshape(len(code), *self.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction of ``x``, same shape as ``x``."""
        return self.decode(self.encode(x))

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """D(x) of EBGAN: the per-sample mean squared reconstruction error (N,), float32."""
        return reconstruction_energy(x, self(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding, the layer a read-out would see (same as :meth:`encode`)."""
        return self.encode(x)


class MLPAutoEncoder(AutoEncoder):
    def __init__(self, shape: Tuple[int, ...], code: int, hidden: int, layers: int, activation: str):
        super().__init__()
        self.shape, self.code_dim = tuple(shape), code
        n = math.prod(shape)
        self.encoder = nn.Sequential(nn.Flatten(), _stack(n, hidden, layers, activation, batch_norm=False),
                                     nn.Linear(hidden, code))
        self.decoder = nn.Sequential(_stack(code, hidden, layers, activation, batch_norm=False),
                                     nn.Linear(hidden, n))


class ConvAutoEncoder(AutoEncoder):
    def __init__(self, shape: Tuple[int, ...], code: int, width: int, batch_norm: bool):
        super().__init__()
        self.shape, self.code_dim = tuple(shape), code
        base, n = plan(shape)
        down = [nn.Conv2d(shape[0], width, 4, 2, 1), nn.LeakyReLU(0.2)]
        ch = width
        for _ in range(n - 1):
            down += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=not batch_norm)]
            down += [nn.BatchNorm2d(ch * 2)] if batch_norm else []
            down += [nn.LeakyReLU(0.2)]
            ch *= 2
        self.base, self.ch = base, ch
        self.encoder = nn.Sequential(*down, nn.Flatten(), nn.Linear(ch * base * base, code))
        up = [nn.Linear(code, ch * base * base), nn.Unflatten(1, (ch, base, base))]
        up += [nn.BatchNorm2d(ch)] if batch_norm else []
        up += [nn.ReLU()]
        for _ in range(n - 1):
            up += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=not batch_norm)]
            up += [nn.BatchNorm2d(ch // 2)] if batch_norm else []
            up += [nn.ReLU()]
            ch //= 2
        up += [nn.ConvTranspose2d(ch, shape[0], 4, 2, 1), nn.Tanh()]
        self.decoder = nn.Sequential(*up)


@DISCRIMINATORS.register("autoencoder")
def autoencoder(info, /, kind: Literal["auto", "mlp", "conv"] = "auto", code: int = 32, hidden: int = 128,
                layers: int = 2, activation: Activation = "leaky_relu", width: int = 64,
                batch_norm: bool = False) -> AutoEncoder:
    """Auto-encoder discriminator for EBGAN, energy = reconstruction error (kind auto: conv for
    images, mlp for vectors; mlp uses hidden/layers/activation, conv uses width/batch_norm)."""
    shape = shape_of(info)
    if code < 1:
        raise ConfigError(f"discriminator.code must be positive, got {code}")
    if kind == "auto":
        kind = "conv" if len(shape) == 3 else "mlp"
    if kind == "mlp":
        return MLPAutoEncoder(shape, code, hidden, layers, activation)
    if width < 1:
        raise ConfigError(f"discriminator.width must be positive, got {width}")
    return ConvAutoEncoder(shape, code, width, batch_norm)
