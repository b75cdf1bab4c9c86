"""DCGAN networks (Radford et al. 2016) for square images of 28, 32, 64, ... pixels.

The generator projects z to a small ``base x base`` map and doubles it with strided
transposed convolutions (batch norm + ReLU, Tanh at the end); the discriminator mirrors it
with strided convolutions (LeakyReLU 0.2, batch norm after the first layer) and a linear
read-out of one logit. ``base`` is the image size halved as often as it stays a whole
number of at least 4 pixels: 28 -> 7 (two doublings), 32 -> 4 (three), 64 -> 4 (four).
"""
from __future__ import annotations

from typing import Literal, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError
from ..registries import DISCRIMINATORS, GENERATORS
from .blocks import DiscriminatorHead, shape_of

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "plan", "conv_transpose_by_fold"]


def plan(shape: Tuple[int, ...]) -> Tuple[int, int]:
    """(base size, number of doublings) for an image shape (C, H, W)."""
    if len(shape) != 3:
        raise ConfigError(f"DCGAN networks need image data (C, H, W), got samples of shape {tuple(shape)}; "
                          "use --set generator.name=mlp --set discriminator.name=mlp for vector data")
    _, h, w = shape
    if h != w:
        raise ConfigError(f"DCGAN networks need square images, got {h}x{w}; set data.image_size")
    n = 0
    while h % (2 ** (n + 1)) == 0 and h // (2 ** (n + 1)) >= 4:
        n += 1
    if n == 0:
        raise ConfigError(f"DCGAN networks cannot fit {h}x{w} images: the size must be divisible by 2 at least "
                          "once and stay >= 4 (e.g. 28, 32, 64); set data.image_size")
    return h // 2 ** n, n


class DCGANGenerator(nn.Module):
    def __init__(self, shape: Tuple[int, ...], z_dim: int, width: int):
        super().__init__()
        self.shape, self.z_dim = tuple(shape), z_dim
        base, n = plan(shape)
        ch = width * 2 ** (n - 1)
        self.base, self.ch = base, ch
        self.project = nn.Linear(z_dim, ch * base * base, bias=False)
        self.project_bn = nn.Sequential(nn.BatchNorm2d(ch), nn.ReLU(inplace=True))
        ups = []
        for _ in range(n - 1):
            ups += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(inplace=True)]
            ch //= 2
        ups += [nn.ConvTranspose2d(ch, shape[0], 4, 2, 1)]   # then tanh, in forward
        self.up = nn.Sequential(*ups)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.pre_tanh(z))

    def pre_tanh(self, z: torch.Tensor) -> torch.Tensor:
        """The last layer's output before the Tanh (a VAE's Bernoulli decoder reads its logits
        as twice this, since tanh(a) = 2 sigmoid(2a) - 1)."""
        x = self.project(z).view(len(z), self.ch, self.base, self.base)
        if self.up[0].weight.is_contiguous(memory_format=torch.channels_last):
            # the network runs channels_last: give the first map the same layout, so that the
            # gradients coming back from the convolutions meet batch norm and ReLU in the
            # layout they saved (mixed layouts take PyTorch's slow element-wise path)
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.project_bn(x)
        *body, last = self.up
        for layer in body:
            x = layer(x)
        if x.is_cpu and x.is_contiguous(memory_format=torch.channels_last):
            return conv_transpose_by_fold(x, last.weight, last.bias)
        return last(x)


def conv_transpose_by_fold(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``F.conv_transpose2d(x, weight, bias, stride=2, padding=1)`` for 4x4 kernels, as one
    matrix product and a fold: every input pixel's channels times ``weight`` give its 4x4
    patch of each output channel, and ``F.fold`` adds the overlapping patches.

    For the generator's last layer (64 channels to 1) on the CPU under bf16 autocast the
    forward pass is 2.7 times and forward plus backward 1.6 times as fast as the library's
    transposed convolution, whose kernels are built for many output channels
    (benchmarks/README.md). ``x`` is channels_last, so its (N, H, W, C) view
    is the product's left operand without a copy. The patches are added up in float32 (or
    the input's precision when higher) and the result has that type.
    """
    n, c, h, w = x.shape
    k = weight.shape[-1]
    patches = x.permute(0, 2, 3, 1).reshape(n, h * w, c) @ weight.reshape(c, -1).to(x.dtype)
    patches = patches.to(torch.promote_types(patches.dtype, torch.float32))
    y = F.fold(patches.transpose(1, 2), (2 * h, 2 * w), k, padding=1, stride=2)
    return y if bias is None else y + bias.to(y.dtype).view(1, -1, 1, 1)


def _norm(kind: str, channels: int) -> list:
    """Normalisation after a discriminator convolution: batch norm (DCGAN), layer norm over
    (C, H, W) (WGAN-GP's choice: a gradient penalty needs samples treated independently) or none."""
    if kind == "batch":
        return [nn.BatchNorm2d(channels)]
    if kind == "layer":
        return [nn.GroupNorm(1, channels)]
    return []


class DCGANDiscriminator(nn.Module):
    def __init__(self, shape: Tuple[int, ...], width: int, minibatch_kernels: int = 0, norm: str = "batch"):
        super().__init__()
        self.shape = tuple(shape)
        base, n = plan(shape)
        layers = [nn.Conv2d(shape[0], width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        ch = width
        for _ in range(n - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm == "none"), *_norm(norm, ch * 2),
                       nn.LeakyReLU(0.2, inplace=True)]
            ch *= 2
        self.body = nn.Sequential(*layers)
        self.head = DiscriminatorHead(ch * base * base, minibatch_kernels)

    @property
    def out(self) -> nn.Linear:
        return self.head.out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate features (N, F) that the read-out sees (used by feature matching)."""
        return self.body(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits D(x) before the sigmoid, shape (N,)."""
        h = self.body(x)
        if (isinstance(self.head.minibatch, nn.Identity) and not h.is_contiguous()
                and h.is_contiguous(memory_format=torch.channels_last)):
            # channels_last maps: read out in memory order (N, H, W, C) with the weight permuted
            # the same way. The same logits as flattening in (C, H, W) order, but no copy, and
            # the gradient reaches the last LeakyReLU in the layout it saved.
            n, c, hh, ww = h.shape
            w = self.out.weight.view(1, c, hh, ww).permute(0, 2, 3, 1).reshape(1, c * hh * ww)
            return F.linear(h.permute(0, 2, 3, 1).reshape(n, c * hh * ww), w, self.out.bias).squeeze(1)
        return self.head(h.flatten(1))


def _check_width(width: int) -> None:
    if width < 1:
        raise ConfigError(f"width must be positive, got {width}")


@GENERATORS.register("dcgan")
def dcgan_generator(info, /, z_dim: int = 100, width: int = 64) -> DCGANGenerator:
    """DCGAN generator: z -> base x base x (width * 2^(n-1)) -> transposed convolutions -> Tanh."""
    shape = shape_of(info)
    _check_width(width)
    return DCGANGenerator(shape, z_dim, width)


@DISCRIMINATORS.register("dcgan")
def dcgan_discriminator(info, /, width: int = 64, minibatch_kernels: int = 0,
                        norm: Literal["batch", "layer", "none"] = "batch") -> DCGANDiscriminator:
    """DCGAN discriminator: strided convolutions, LeakyReLU(0.2), batch norm (or layer norm,
    or none: ``norm``), one logit (minibatch_kernels > 0 adds minibatch discrimination
    before the read-out)."""
    shape = shape_of(info)
    _check_width(width)
    return DCGANDiscriminator(shape, width, minibatch_kernels, norm)
