"""Networks for image completion (Iizuka et al. 2017, "Globally and Locally Consistent Image
Completion"), scaled down to small pictures.

``context_encoder`` (generator) takes the picture with its hole filled plus the mask as one
more channel (``C + 1`` channels in, ``C`` out, no noise vector) and returns a whole picture,
of which the completion method keeps only the hole. As in the paper it is a fully
convolutional encoder-decoder that halves the resolution twice, with dilated convolutions
at the quarter resolution: they widen what each output pixel sees (the paper's point: a
pixel in the middle of a large hole must see the picture around it) without losing
resolution. The layers (``w`` = ``width``; every convolution but the last is followed by
normalisation and ReLU):

    5x5 w | 3x3/2 2w | 3x3 2w | 3x3/2 4w | 3x3 4w | dilated 3x3 4w (rates 2, 4, 8, 16 ...) |
    3x3 4w | 3x3 4w | 4x4 transposed /2 2w | 3x3 2w | 4x4 transposed /2 w | 3x3 w/2 | 3x3 C, tanh

``dilated`` is the number of dilated layers; each rate is capped at half the quarter-size
map's shorter side (a larger one would read only padding). Sides that 4 does not divide are
padded (borders replicated) and the output cropped back, so 28x28 and 64x64 both work.

``imagegan`` (discriminator) gives one logit per picture: strided 4x4 convolutions halve it
down to at most 4x4, then one convolution covers the whole map (the PatchGAN of
:mod:`gankit.nets.pix2pix` with ``receptive_field: image``, whose every logit sees every
pixel). The completion method builds two: the global one on the whole picture and the local
one on a crop around the hole, as the paper does.
"""
from __future__ import annotations

from typing import List, Literal, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError
from ..registries import DISCRIMINATORS, GENERATORS
from .pix2pix import PatchGAN, _image_shape, _norm

__all__ = ["ContextEncoder", "context_encoder", "imagegan", "dilation_rates"]

Norm = Literal["batch", "instance", "none"]


def dilation_rates(count: int, size: Tuple[int, int]) -> List[int]:
    """The rates of ``count`` dilated layers at a map of ``size`` (h, w): 2, 4, 8 ..., each at
    most half the shorter side (and at least 1)."""
    cap = max(1, min(size) // 2)
    return [min(2 ** (i + 1), cap) for i in range(count)]


class ContextEncoder(nn.Module):
    """(picture with its hole filled, mask) -> picture; see the module's description."""

    #: no noise vector
    z_dim = 0

    def __init__(self, in_channels: int, out_channels: int, size: Tuple[int, int], width: int = 32,
                 dilated: int = 4, norm: str = "batch"):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        w1, w2, w4 = width, 2 * width, 4 * width
        quarter = (-(-size[0] // 4), -(-size[1] // 4))
        self.rates = dilation_rates(dilated, quarter)

        def conv(c_in, c_out, k, stride=1, dilation=1):
            pad = dilation * (k - 1) // 2
            return [nn.Conv2d(c_in, c_out, k, stride, pad, dilation=dilation, bias=norm == "none"),
                    *_norm(norm, c_out), nn.ReLU()]

        def up(c_in, c_out):
            return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=norm == "none"), *_norm(norm, c_out), nn.ReLU()]

        layers = conv(in_channels, w1, 5) + conv(w1, w2, 3, 2) + conv(w2, w2, 3) + conv(w2, w4, 3, 2) + conv(w4, w4, 3)
        for rate in self.rates:
            layers += conv(w4, w4, 3, dilation=rate)
        layers += conv(w4, w4, 3) + conv(w4, w4, 3) + up(w4, w2) + conv(w2, w2, 3) + up(w2, w1)
        layers += conv(w1, max(1, w1 // 2), 3)
        layers += [nn.Conv2d(max(1, w1 // 2), out_channels, 3, 1, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        h, w = c.shape[-2:]
        ph, pw = -h % 4, -w % 4
        if ph or pw:
            c = F.pad(c, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="replicate")
        x = self.body(c)
        if ph or pw:
            x = x[..., ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]
        return x


def _at_least(key: str, value: int, low: int) -> None:
    if value < low:
        raise ConfigError(f"{key} must be at least {low}, got {value}")


@GENERATORS.register("context_encoder")
def context_encoder(info, /, width: int = 32, dilated: int = 4, norm: Norm = "batch") -> ContextEncoder:
    """Completion (Iizuka et al. 2017, scaled down): encoder-decoder halving twice, dilated 3x3
    convolutions (rates 2, 4, 8 ...) at quarter size; takes the data's input field (the holed
    picture and its mask: C + 1 channels) and returns a picture of the data's channels."""
    c, h, w = _image_shape(info, "context_encoder")
    fields = getattr(info, "fields", {}) or {}
    c_in = fields["input"].shape[0] if "input" in fields and len(fields["input"].shape) == 3 else c
    _at_least("generator.width", width, 1)
    _at_least("generator.dilated", dilated, 0)
    return ContextEncoder(c_in, c, (h, w), width, dilated, norm)


@DISCRIMINATORS.register("imagegan")
def imagegan(info, /, width: int = 64, max_width: int = 512, norm: Norm = "batch") -> PatchGAN:
    """One logit per picture (a PatchGAN whose receptive field is the whole image): strided 4x4
    convolutions down to at most 4x4, then one over the map; the completion method's global
    and local discriminators."""
    shape = _image_shape(info, "imagegan")
    _at_least("discriminator.width", width, 1)
    _at_least("discriminator.max_width", max_width, 1)
    return PatchGAN(shape, "image", width, max_width, norm)
