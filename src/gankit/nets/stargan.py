"""StarGAN's discriminator (Choi et al. 2018): a realism map and a domain classifier on one body.

``stargan``: strided 4x4 convolutions (LeakyReLU 0.01, no normalisation: the WGAN-GP penalty
treats every sample on its own) that halve the image while its side stays at least 4 pixels
(28 -> 14 -> 7, 64 -> ... -> 4), doubling the channels from ``width`` up to ``max_width``;
then two read-outs of the last map: a 3x3 convolution to one channel (a realism score per
patch, as PatchGAN) and a convolution as large as the map to one logit per domain (the
auxiliary classifier that tells which domain a picture belongs to). The number of domains
is the ``n_classes`` of the data description the method builds it for. The forward pass
returns ``(scores (N, 1, h, w), logits (N, K))``.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from ..errors import ConfigError
from ..registries import DISCRIMINATORS
from .pix2pix import _image_shape

__all__ = ["StarDiscriminator"]


class StarDiscriminator(nn.Module):
    def __init__(self, shape: Tuple[int, int, int], n_classes: int, width: int = 64, max_width: int = 512):
        super().__init__()
        c, h, w = shape
        layers, ch = [], c
        out = width
        while True:
            layers += [nn.Conv2d(ch, out, 4, 2, 1), nn.LeakyReLU(0.01)]
            ch, h, w = out, h // 2, w // 2
            out = min(2 * out, max_width)
            if min(h, w) // 2 < 4:
                break
        self.body = nn.Sequential(*layers)
        self.src = nn.Conv2d(ch, 1, 3, 1, 1, bias=False)
        self.cls = nn.Conv2d(ch, n_classes, (h, w), bias=False)
        self.n_classes = n_classes

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten(1)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.src(h), self.cls(h).flatten(1)


@DISCRIMINATORS.register("stargan")
def stargan_discriminator(info, /, width: int = 64, max_width: int = 512) -> StarDiscriminator:
    """StarGAN's discriminator: strided convolutions (LeakyReLU 0.01, no normalisation), a
    realism score per patch and a domain classifier (one logit per class of the data)."""
    c, h, w = _image_shape(info, "stargan")
    k = int(getattr(info, "n_classes", 0) or 0)
    if k < 2:
        raise ConfigError("the stargan discriminator classifies domains: build it for data with at least 2 classes "
                          "(method stargan does)")
    if min(h, w) < 4:
        raise ConfigError(f"the stargan discriminator needs images of at least 4x4, got {h}x{w}")
    if width < 1 or max_width < 1:
        raise ConfigError(f"discriminator.width and max_width must be at least 1, got {width} and {max_width}")
    return StarDiscriminator((c, h, w), k, width, max_width)
