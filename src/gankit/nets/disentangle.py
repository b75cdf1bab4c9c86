"""Two encoders and a decoder that split a picture into content and factor, and a judge of content codes.

``disentangler`` (generator): one module holding

* the content encoder E_c: a 3x3 convolution to ``width`` channels and two stride-2 4x4
  convolutions (``2 width`` channels each), ReLU after each, then a 1x1 convolution to a
  content map of ``content`` channels at a quarter of the picture's sides (7x7 for 28x28);
* the factor encoder E_f: the same three convolutions, then global average pooling and a
  linear read-out of a ``factor``-dimensional vector (no place: a factor is about the whole
  picture, such as its style or the speaker of an utterance);
* the decoder: the content map with the factor vector as constant planes beside it, a 3x3
  convolution, two stride-2 transposed convolutions back to the picture's size, ReLU after
  each, and a 3x3 convolution to the picture's channels with Tanh.

Sides that 4 does not divide are padded (borders replicated) before encoding and the
decoded picture is cropped back. No noise (``z_dim`` 0): ``forward(x)`` is the
reconstruction from x's own codes, ``decode(content, factor)`` the general case.

``code_classifier`` (discriminator): guesses a factor (a class) from a content map (C, h,
w): a 3x3 convolution of ``width`` channels, leaky ReLU, a linear layer of ``hidden`` units
on the flattened map, leaky ReLU and a linear read-out of one logit per class (the classes:
the ``n_classes`` of the description it is built for).
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError
from ..registries import DISCRIMINATORS, GENERATORS

__all__ = ["Disentangler", "CodeClassifier"]

#: the factor by which the encoders shrink a picture's sides
SHRINK = 4


def _image_shape(info, what: str) -> Tuple[int, int, int]:
    shape = tuple(getattr(info, "shape", info))
    if len(shape) != 3:
        raise ConfigError(f"{what} works on pictures (C, H, W), got samples of shape {shape}; use an image data set")
    return shape


def _encoder_body(channels: int, width: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, width, 3, 1, 1), nn.ReLU(True),
                         nn.Conv2d(width, 2 * width, 4, 2, 1), nn.ReLU(True),
                         nn.Conv2d(2 * width, 2 * width, 4, 2, 1), nn.ReLU(True))


class Disentangler(nn.Module):
    z_dim = 0

    def __init__(self, shape: Tuple[int, int, int], width: int, content: int, factor: int):
        super().__init__()
        for key, value in (("width", width), ("content", content), ("factor", factor)):
            if value < 1:
                raise ConfigError(f"generator.{key} must be at least 1, got {value}")
        c, h, w = shape
        self.shape, self.content_dim, self.factor_dim = tuple(shape), int(content), int(factor)
        self.padded = (-(-h // SHRINK) * SHRINK, -(-w // SHRINK) * SHRINK)
        self.code_shape = (self.content_dim, self.padded[0] // SHRINK, self.padded[1] // SHRINK)
        self.content_encoder = nn.Sequential(_encoder_body(c, width), nn.Conv2d(2 * width, content, 1))
        self.factor_body = _encoder_body(c, width)
        self.factor_out = nn.Linear(2 * width, factor)
        self.decoder = nn.Sequential(
            nn.Conv2d(content + factor, 2 * width, 3, 1, 1), nn.ReLU(True),
            nn.ConvTranspose2d(2 * width, 2 * width, 4, 2, 1), nn.ReLU(True),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.ReLU(True),
            nn.Conv2d(width, c, 3, 1, 1), nn.Tanh())

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        dh, dw = self.padded[0] - x.shape[2], self.padded[1] - x.shape[3]
        if x.shape[2:] != self.shape[1:]:
            raise ConfigError(f"the disentangler was built for {self.shape[1]}x{self.shape[2]} pictures, got "
                              f"{x.shape[2]}x{x.shape[3]}")
        return F.pad(x, (0, dw, 0, dh), mode="replicate") if dh or dw else x

    def content(self, x: torch.Tensor) -> torch.Tensor:
        """E_c(x): the content map (N, content, H/4, W/4)."""
        return self.content_encoder(self._pad(x))

    def factor(self, x: torch.Tensor) -> torch.Tensor:
        """E_f(x): the factor vector (N, factor)."""
        return self.factor_out(self.factor_body(self._pad(x)).mean((2, 3)))

    def decode(self, content: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        """The picture of a content map and a factor vector."""
        planes = factor.to(content.dtype)[:, :, None, None].expand(-1, -1, *content.shape[2:])
        out = self.decoder(torch.cat([content, planes], 1))
        return out[:, :, :self.shape[1], :self.shape[2]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x decoded from its own content and factor."""
        return self.decode(self.content(x), self.factor(x))


class CodeClassifier(nn.Module):
    def __init__(self, shape: Tuple[int, int, int], n_classes: int, width: int, hidden: int):
        super().__init__()
        if n_classes < 2:
            raise ConfigError(f"a code classifier tells at least 2 classes apart, got {n_classes}")
        for key, value in (("width", width), ("hidden", hidden)):
            if value < 1:
                raise ConfigError(f"discriminator.{key} must be at least 1, got {value}")
        c, h, w = shape
        self.shape, self.n_classes = tuple(shape), int(n_classes)
        self.body = nn.Sequential(nn.Conv2d(c, width, 3, 1, 1), nn.LeakyReLU(0.2, True), nn.Flatten(),
                                  nn.Linear(width * h * w, hidden), nn.LeakyReLU(0.2, True))
        self.out = nn.Linear(hidden, n_classes)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        """Class logits (N, n_classes) of content maps (N, C, h, w)."""
        return self.out(self.body(code))


@GENERATORS.register("disentangler")
def disentangler(info, /, width: int = 32, content: int = 16, factor: int = 8) -> Disentangler:
    """Content encoder (a map of `content` channels at 1/4 of the sides), factor encoder (a vector
    of `factor` numbers) and a decoder of the two, convolutional, `width` channels at full size."""
    return Disentangler(_image_shape(info, "the disentangler"), width, content, factor)


@DISCRIMINATORS.register("code_classifier")
def code_classifier(info, /, width: int = 32, hidden: int = 128) -> CodeClassifier:
    """A classifier of content maps: 3x3 convolution (width), a hidden layer (hidden), one logit
    per class; built for the code's shape and the classes to guess."""
    n = getattr(info, "n_classes", 0)
    return CodeClassifier(_image_shape(info, "code_classifier"), n, width, hidden)
