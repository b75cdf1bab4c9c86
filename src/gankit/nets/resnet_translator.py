"""CycleGAN's ResNet generator (Zhu et al. 2017, after Johnson et al. 2016): image -> image.

``resnet``: a 7x7 convolution (stride 1, reflection padding) to ``width`` channels, ``downs``
stride-2 3x3 convolutions doubling the channels, ``blocks`` residual blocks (two 3x3
convolutions with reflection padding and normalisation, added to their input), ``downs``
stride-2 transposed convolutions halving the channels back, and a 7x7 convolution to the
output's channels with Tanh; instance normalisation and ReLU after every layer but the
last (the paper's c7s1-64, d128, d256, R256 x 6 or 9, u128, u64, c7s1-3). ``blocks``
defaults to the paper's rule: 6 for images up to 128 pixels on a side, 9 above. Sides that
``2^downs`` does not divide are padded (borders reflected) and the output cropped back, so
28x28 Fashion-MNIST works. No noise vector (``z_dim`` 0): the output is a function of the
input. The input has the channels of the data's ``input`` field (a method builds the
network for its source domain that way, as for the U-Net), the output those of ``x``.
"""
from __future__ import annotations

import math
from typing import Literal, Optional

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError
from ..registries import GENERATORS
from .pix2pix import _image_shape, _norm

__all__ = ["ResnetGenerator", "ResidualBlock"]


def _pad(kind: str, n: int) -> nn.Module:
    return nn.ReflectionPad2d(n) if kind == "reflect" else nn.ZeroPad2d(n)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: str, padding: str = "reflect"):
        super().__init__()
        self.body = nn.Sequential(_pad(padding, 1), nn.Conv2d(channels, channels, 3, bias=norm == "none"),
                                  *_norm(norm, channels), nn.ReLU(True),
                                  _pad(padding, 1), nn.Conv2d(channels, channels, 3, bias=norm == "none"),
                                  *_norm(norm, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Image -> image through residual blocks at 1 / 2^downs of the size; see the module."""

    z_dim = 0

    def __init__(self, in_channels: int, out_channels: int, width: int = 64, downs: int = 2, blocks: int = 9,
                 norm: str = "instance", padding: str = "reflect"):
        super().__init__()
        self.in_channels, self.out_channels, self.multiple = in_channels, out_channels, 2 ** downs
        self.padding = padding
        bias = norm == "none"
        layers = [_pad(padding, 3), nn.Conv2d(in_channels, width, 7, bias=bias), *_norm(norm, width),
                  nn.ReLU(True)]
        ch = width
        for _ in range(downs):
            layers += [nn.Conv2d(ch, 2 * ch, 3, 2, 1, bias=bias), *_norm(norm, 2 * ch), nn.ReLU(True)]
            ch *= 2
        layers += [ResidualBlock(ch, norm, padding) for _ in range(blocks)]
        for _ in range(downs):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1, bias=bias), *_norm(norm, ch // 2),
                       nn.ReLU(True)]
            ch //= 2
        layers += [_pad(padding, 3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        h, w = c.shape[-2:]
        ph, pw = -h % self.multiple, -w % self.multiple
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            c = F.pad(c, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode=mode)
        x = self.net(c)
        if ph or pw:
            x = x[..., ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]
        return x


@GENERATORS.register("resnet")
def resnet(info, /, width: int = 64, downs: int = 2, blocks: Optional[int] = None,
           norm: Literal["instance", "batch", "none"] = "instance",
           padding: Literal["reflect", "zero"] = "reflect") -> ResnetGenerator:
    """CycleGAN's ResNet generator image -> image: c7s1, downs stride-2 convolutions, blocks residual
    blocks (default 6 up to 128 pixels, 9 above), back up, c7s1 + Tanh; instance norm;
    reflection padding (CycleGAN's) or zero padding (StarGAN's)."""
    c, h, w = _image_shape(info, "resnet")
    fields = getattr(info, "fields", {}) or {}
    c_in = fields["input"].shape[0] if "input" in fields and len(fields["input"].shape) == 3 else c
    if width < 1:
        raise ConfigError(f"generator.width must be at least 1, got {width}")
    if downs < 0:
        raise ConfigError(f"generator.downs must not be negative, got {downs}")
    if 2 ** downs > min(h, w):
        raise ConfigError(f"generator.downs={downs} halves {h}x{w} images below one pixel; choose at most "
                          f"{int(math.floor(math.log2(min(h, w))))}")
    if blocks is None:
        blocks = 6 if max(h, w) <= 128 else 9
    if blocks < 0:
        raise ConfigError(f"generator.blocks must not be negative, got {blocks}")
    return ResnetGenerator(c_in, c, width, downs, blocks, norm, padding)
