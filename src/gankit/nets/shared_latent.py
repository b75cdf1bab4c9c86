"""Two domains' encoders and decoders around one latent space (CoGAN, UNIT), and a judge of codes.

``shared_latent`` (generator): one module holding, for domains A and B, an encoder E_A, E_B
(image -> a Gaussian over a latent map: its mean and log-variance) and a decoder G_A, G_B
(latent map -> image). Each encoder is a 7x7 convolution to ``width`` channels, ``downs``
stride-2 3x3 convolutions doubling the channels and ``blocks`` residual blocks (CycleGAN's
ResNet cut in half, :mod:`gankit.nets.resnet_translator`); then two 1x1 convolutions read the
mean and the log-variance of the code, a map of ``width * 2^downs`` channels at
``1 / 2^downs`` of the picture's sides. Each decoder mirrors it: ``blocks`` residual blocks,
``downs`` stride-2 transposed convolutions halving the channels and a 7x7 convolution to
the domain's channels with Tanh. Instance normalisation and ReLU after every layer but the
last of a decoder.

``shared`` ties the layers next to the latent space, as CoGAN and UNIT do: the last
``shared`` layers of E_A and E_B are one and the same module (so are the first ``shared``
layers of G_A and G_B), and with ``shared`` >= 1 the two read-out convolutions are shared
too. The layers counted are the stem, each down (up) convolution and each residual block,
``1 + downs + blocks`` per encoder; the outermost one (which sees the domain's own channels)
stays per domain, so ``shared`` is at most ``downs + blocks``. ``shared: 0``: two
independent auto-encoders that only the method's losses tie together.

Sides that ``2^downs`` does not divide are padded (borders reflected) before encoding and the
decoded picture is cropped back to the picture size the network was built for, so 28x28
pictures work. No noise vector (``z_dim`` 0): ``forward(a)`` is the translation A -> B
through the mean code, G_B(mu_A(a)).

``latent`` (discriminator): a judge of latent maps (C, h, w), for a method that asks the codes
of the two domains to be indistinguishable: two 3x3 convolutions of ``width`` channels with
leaky ReLU, global average pooling and a linear read-out, one output per sample (N,).
"""
from __future__ import annotations

from typing import List, Literal, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError
from ..registries import DISCRIMINATORS, GENERATORS
from .pix2pix import _image_shape, _norm
from .resnet_translator import ResidualBlock, _pad

__all__ = ["SharedLatentTranslator", "LatentDiscriminator", "DOMAINS"]

DOMAINS = ("a", "b")


def _stem(channels: int, width: int, norm: str, padding: str) -> nn.Module:
    return nn.Sequential(_pad(padding, 3), nn.Conv2d(channels, width, 7, bias=norm == "none"),
                         *_norm(norm, width), nn.ReLU(True))


def _down(ch: int, norm: str) -> nn.Module:
    return nn.Sequential(nn.Conv2d(ch, 2 * ch, 3, 2, 1, bias=norm == "none"), *_norm(norm, 2 * ch), nn.ReLU(True))


def _up(ch: int, norm: str) -> nn.Module:
    return nn.Sequential(nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1, bias=norm == "none"),
                         *_norm(norm, ch // 2), nn.ReLU(True))


def _out(width: int, channels: int, padding: str) -> nn.Module:
    return nn.Sequential(_pad(padding, 3), nn.Conv2d(width, channels, 7), nn.Tanh())


class SharedLatentTranslator(nn.Module):
    """Encoders and decoders of domains A and B with ``shared`` tied layers; see the module."""

    z_dim = 0

    def __init__(self, channels_a: int, channels_b: int, size: Tuple[int, int], width: int = 32, downs: int = 2,
                 blocks: int = 3, shared: int = 1, norm: str = "instance", padding: str = "reflect"):
        super().__init__()
        self.channels = {"a": channels_a, "b": channels_b}
        self.in_channels, self.out_channels = channels_a, channels_b
        self.size, self.multiple, self.shared = tuple(size), 2 ** downs, shared
        code = width * 2 ** downs
        self.latent_shape = (code, -(-size[0] // self.multiple), -(-size[1] // self.multiple))

        def encoder_layers(c: int) -> List[nn.Module]:
            layers, ch = [_stem(c, width, norm, padding)], width
            for _ in range(downs):
                layers.append(_down(ch, norm))
                ch *= 2
            return layers + [ResidualBlock(ch, norm, padding) for _ in range(blocks)]

        def decoder_layers(c: int) -> List[nn.Module]:
            layers, ch = [ResidualBlock(code, norm, padding) for _ in range(blocks)], code
            for _ in range(downs):
                layers.append(_up(ch, norm))
                ch //= 2
            return layers + [_out(ch, c, padding)]

        enc = {d: encoder_layers(self.channels[d]) for d in DOMAINS}
        dec = {d: decoder_layers(self.channels[d]) for d in DOMAINS}
        n = len(enc["a"])
        for i in range(n - shared, n):          # the layers next to the latent space: one module for both
            enc["b"][i] = enc["a"][i]
        for i in range(shared):
            dec["b"][i] = dec["a"][i]
        self.encoders = nn.ModuleDict({d: nn.ModuleList(enc[d]) for d in DOMAINS})
        self.decoders = nn.ModuleDict({d: nn.ModuleList(dec[d]) for d in DOMAINS})
        mu_a, logvar_a = nn.Conv2d(code, code, 1), nn.Conv2d(code, code, 1)
        mu_b, logvar_b = (mu_a, logvar_a) if shared else (nn.Conv2d(code, code, 1), nn.Conv2d(code, code, 1))
        self.mu = nn.ModuleDict({"a": mu_a, "b": mu_b})
        self.logvar = nn.ModuleDict({"a": logvar_a, "b": logvar_b})

    @staticmethod
    def _check(domain: str) -> None:
        if domain not in DOMAINS:
            raise ValueError(f"domain must be 'a' or 'b', got {domain!r}")

    def encode(self, x: torch.Tensor, domain: str) -> Tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-variance) of the code of pictures ``x`` of ``domain``, each (N, *latent_shape)."""
        self._check(domain)
        h, w = x.shape[-2:]
        ph, pw = -h % self.multiple, -w % self.multiple
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode=mode)
        for layer in self.encoders[domain]:
            x = layer(x)
        return self.mu[domain](x), self.logvar[domain](x)

    def decode(self, z: torch.Tensor, domain: str) -> torch.Tensor:
        """Pictures of ``domain`` from latent maps ``z``, at the size the network was built for."""
        self._check(domain)
        for layer in self.decoders[domain]:
            z = layer(z)
        h, w = self.size
        ph, pw = z.shape[-2] - h, z.shape[-1] - w
        if ph or pw:
            z = z[..., ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]
        return z

    def translate(self, x: torch.Tensor, source: str, target: str) -> torch.Tensor:
        """G_target(mu_source(x)): the translation through the mean code."""
        return self.decode(self.encode(x, source)[0], target)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.translate(a, "a", "b")

    def tied(self) -> Sequence[nn.Module]:
        """The modules that both domains use (the tied layers and read-outs)."""
        out = [m for m in self.encoders["a"] if any(m is o for o in self.encoders["b"])]
        out += [m for m in self.decoders["a"] if any(m is o for o in self.decoders["b"])]
        return out + ([self.mu["a"], self.logvar["a"]] if self.mu["a"] is self.mu["b"] else [])


@GENERATORS.register("shared_latent")
def shared_latent(info, /, width: int = 32, downs: int = 2, blocks: int = 3, shared: int = 1,
                  norm: Literal["instance", "batch", "none"] = "instance",
                  padding: Literal["reflect", "zero"] = "reflect") -> SharedLatentTranslator:
    """Encoders and decoders of two domains around one latent space (UNIT's): per domain a 7x7
    convolution, downs stride-2 convolutions, blocks residual blocks, a Gaussian code, and the
    mirror image back; the shared layers next to the code tied between the domains (at most
    downs + blocks)."""
    c, h, w = _image_shape(info, "shared_latent")
    fields = getattr(info, "fields", {}) or {}
    c_in = fields["input"].shape[0] if "input" in fields and len(fields["input"].shape) == 3 else c
    for key, value, low in (("width", width, 1), ("downs", downs, 0), ("blocks", blocks, 0), ("shared", shared, 0)):
        if value < low:
            raise ConfigError(f"generator.{key} must be at least {low}, got {value}")
    if 2 ** downs > min(h, w):
        raise ConfigError(f"generator.downs={downs} halves {h}x{w} pictures below one pixel; choose fewer")
    if shared > downs + blocks:
        raise ConfigError(f"generator.shared={shared} ties more layers than an encoder has next to its first "
                          f"(downs + blocks = {downs + blocks}; the first layer sees each domain's own channels and "
                          f"stays per domain): choose at most {downs + blocks}, or add generator.blocks")
    return SharedLatentTranslator(c_in, c, (h, w), width, downs, blocks, shared, norm, padding)


class LatentDiscriminator(nn.Module):
    """Latent map (N, C, h, w) -> one score per sample; see the module."""

    def __init__(self, channels: int, width: int = 64):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, width, 3, 1, 1), nn.LeakyReLU(0.2, True),
                                  nn.Conv2d(width, width, 3, 1, 1), nn.LeakyReLU(0.2, True))
        self.out = nn.Linear(width, 1)

    def features(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z).mean((2, 3))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(z)).squeeze(1)


@DISCRIMINATORS.register("latent")
def latent(info, /, width: int = 64) -> LatentDiscriminator:
    """A judge of latent maps (C, h, w) (shared_latent's codes of the two domains): two 3x3
    convolutions with leaky ReLU, global average pooling, a linear read-out."""
    c, _, _ = _image_shape(info, "latent")
    if width < 1:
        raise ConfigError(f"discriminator.width must be at least 1, got {width}")
    return LatentDiscriminator(c, width)
