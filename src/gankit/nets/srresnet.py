"""SRGAN's networks (Ledig et al. 2017): the SRResNet generator and SRGAN's discriminator.

``srresnet`` maps a LOW-resolution image (the data's ``input`` field, C x H/f x W/f) to
the high-resolution x (C x H x W), f = 2 or 4 read off the two shapes. It works at the
input's size and enlarges only at the end, as the paper's network does: a 9x9
convolution to ``width`` channels with PReLU; ``blocks`` residual blocks (3x3 convolution,
batch norm, PReLU, 3x3 convolution, batch norm, added to the block's input); a 3x3
convolution with batch norm whose output is added to the first convolution's (the long
skip, so the blocks learn only what the first layer's features lack); one stage per
factor 2 of a 3x3 convolution to 4 x ``width`` channels, a pixel shuffle (the channels
rearranged into a map of twice the side: sub-pixel convolution, Shi et al. 2016) and
PReLU; a 9x9 convolution to the data's channels and Tanh. No noise vector (``z_dim`` 0):
the output is a function of the input. ``norm: none`` drops the batch norms (EDSR's
later finding that they do not help super-resolution).

``srgan`` (a discriminator) judges a high-resolution image alone, one logit per image:
a 3x3 convolution (LeakyReLU 0.2, no normalisation), then ``stages`` pairs of a stride-2
and a stride-1 3x3 convolution (batch norm, LeakyReLU), the first of each pair doubling
the channels from ``width`` up to ``max_width`` (the paper's k3n64s2, k3n128s1 ... k3n512s2
after k3n64s1), and a dense head: ``dense`` units, LeakyReLU, one logit (the sigmoid lives
in the objective). ``stages`` defaults to the paper's 4 halvings, fewer where the images are
too small: as many as leave a map of at least 4 pixels a side (28 -> 14 -> 7 -> 4: 3).
:meth:`SRDiscriminator.features` gives the convolutional maps the head reads (flattened),
for a feature-matching loss.
"""
from __future__ import annotations

from typing import Literal, Optional, Tuple

import torch
from torch import nn

from ..errors import ConfigError
from ..registries import DISCRIMINATORS, GENERATORS
from .pix2pix import _image_shape

__all__ = ["SRResNet", "SRResidualBlock", "SRDiscriminator", "upscale_factor", "FACTORS"]

#: the upscale factors the generator has stages for (data.pairs=lowres2, lowres4)
FACTORS = (2, 4)


def _bn(norm: str, channels: int) -> list:
    return [nn.BatchNorm2d(channels)] if norm == "batch" else []


def upscale_factor(info, what: str = "srresnet") -> Tuple[int, int]:
    """(the upscale factor f, the input's channels) of data whose ``input`` field is its ``x``
    downsampled by f = 2 or 4 (``data.pairs=lowres2`` / ``lowres4``); a ConfigError
    naming those pairings otherwise."""
    c, h, w = _image_shape(info, what)
    fields = getattr(info, "fields", {}) or {}
    f_in = fields.get("input")
    if f_in is None or f_in.kind != "image" or len(f_in.shape) != 3:
        raise ConfigError(f"{what} enlarges a low-resolution picture, the data's field 'input', which this data "
                          "set does not have as an image; pair the images with data.pairs=lowres2 or lowres4")
    c_in, h_in, w_in = f_in.shape
    if h_in == h and w_in == w:
        raise ConfigError(f"{what} enlarges a low-resolution picture, but the data's input is as large as x "
                          f"({h}x{w}): pair the images with data.pairs=lowres2 or lowres4 (super-resolution), "
                          "not edges, grey or mask (those are for pix2pix)")
    if h % h_in or w % w_in or h // h_in != w // w_in or h // h_in not in FACTORS:
        raise ConfigError(f"{what} enlarges by 2 or 4, but the data's input is {h_in}x{w_in} for x of {h}x{w}; "
                          "pair the images with data.pairs=lowres2 or lowres4")
    return h // h_in, c_in


class SRResidualBlock(nn.Module):
    """conv-BN-PReLU-conv-BN, added to the input."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        bias = norm == "none"
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=bias), *_bn(norm, channels),
                                  nn.PReLU(channels),
                                  nn.Conv2d(channels, channels, 3, 1, 1, bias=bias), *_bn(norm, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """Low-resolution image (N, C_in, h, w) -> image (N, C_out, f h, f w) in [-1, 1]."""

    #: no noise vector: the output is a function of the input
    z_dim = 0

    def __init__(self, in_channels: int, out_channels: int, factor: int, width: int = 64, blocks: int = 8,
                 norm: str = "batch"):
        super().__init__()
        if factor not in FACTORS:
            raise ConfigError(f"srresnet enlarges by 2 or 4, not {factor}")
        self.in_channels, self.out_channels, self.factor = in_channels, out_channels, factor
        self.head = nn.Sequential(nn.Conv2d(in_channels, width, 9, 1, 4), nn.PReLU(width))
        self.blocks = nn.Sequential(*[SRResidualBlock(width, norm) for _ in range(blocks)])
        self.join = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1, bias=norm == "none"), *_bn(norm, width))
        up = []
        for _ in range(factor.bit_length() - 1):        # 2 -> one stage, 4 -> two
            up += [nn.Conv2d(width, 4 * width, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(width)]
        self.up = nn.Sequential(*up)
        self.tail = nn.Conv2d(width, out_channels, 9, 1, 4)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        h = self.head(c)
        h = h + self.join(self.blocks(h))               # the long skip
        return torch.tanh(self.tail(self.up(h)))


class SRDiscriminator(nn.Module):
    """A high-resolution image (N, C, H, W) -> one logit per image (N,); see the module."""

    def __init__(self, shape: Tuple[int, int, int], width: int = 64, max_width: int = 512, stages: int = 4,
                 dense: int = 1024, norm: str = "batch"):
        super().__init__()
        c, h, w = shape
        bias = norm == "none"
        layers = [nn.Conv2d(c, width, 3, 1, 1), nn.LeakyReLU(0.2)]
        ch = width
        for i in range(stages):
            out = min(width * 2 ** (i + 1), max_width)
            layers += [nn.Conv2d(ch, ch, 3, 2, 1, bias=bias), *_bn(norm, ch), nn.LeakyReLU(0.2),
                       nn.Conv2d(ch, out, 3, 1, 1, bias=bias), *_bn(norm, out), nn.LeakyReLU(0.2)]
            ch, h, w = out, (h - 1) // 2 + 1, (w - 1) // 2 + 1
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(ch * h * w, dense), nn.LeakyReLU(0.2), nn.Linear(dense, 1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutional maps the dense head reads, flattened (N, F)."""
        return self.body(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).squeeze(1)


def _at_least(key: str, value: int, low: int) -> None:
    if value < low:
        raise ConfigError(f"{key} must be at least {low}, got {value}")


@GENERATORS.register("srresnet")
def srresnet(info, /, width: int = 64, blocks: int = 8, norm: Literal["batch", "none"] = "batch") -> SRResNet:
    """SRResNet (SRGAN's generator): the low-resolution input (data.pairs=lowres2, lowres4) through
    blocks residual blocks at its own size, a long skip, pixel-shuffle x2 stages, Tanh."""
    factor, c_in = upscale_factor(info)
    c = _image_shape(info, "srresnet")[0]
    _at_least("generator.width", width, 1)
    _at_least("generator.blocks", blocks, 0)
    return SRResNet(c_in, c, factor, width, blocks, norm)


@DISCRIMINATORS.register("srgan")
def srgan_discriminator(info, /, width: int = 64, max_width: int = 512, stages: Optional[int] = None,
                        dense: int = 1024, norm: Literal["batch", "none"] = "batch") -> SRDiscriminator:
    """SRGAN's discriminator on the high-resolution image alone: 3x3 convolutions, stages stride-2
    halvings (default: the paper's 4, fewer for small images), a dense head of dense units, one logit."""
    c, h, w = _image_shape(info, "srgan discriminator")
    _at_least("discriminator.width", width, 1)
    _at_least("discriminator.max_width", max_width, 1)
    _at_least("discriminator.dense", dense, 1)
    most, side = 0, min(h, w)
    while most < 4 and (side - 1) // 2 + 1 >= 4:
        most, side = most + 1, (side - 1) // 2 + 1
    if stages is None:
        stages = most
    _at_least("discriminator.stages", stages, 0)
    if min(h, w) / 2 ** stages < 1:
        raise ConfigError(f"discriminator.stages={stages} halves {h}x{w} images below one pixel; choose at most "
                          f"{max(most, 1)}")
    return SRDiscriminator((c, h, w), width, max_width, stages, dense, norm)
