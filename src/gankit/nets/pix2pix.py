"""pix2pix's networks (Isola et al. 2017): a U-Net generator and a PatchGAN discriminator.

``unet`` maps an image to an image of the data's shape: an encoder of strided 4x4
convolutions (LeakyReLU 0.2, normalisation after all but the first and the innermost), a
decoder of strided 4x4 transposed convolutions (ReLU, normalisation) that takes at each
level the encoder's map of the same size beside its own (the skip connections that let
the low-level structure of the input, such as the place of its edges, pass straight to
the output), and Tanh at the end. There is no noise vector: as in the paper, dropout
(``dropout``, 0.5) in the three innermost decoder layers is the generator's noise, active
in training. Sides that ``2^depth`` does not divide are padded (borders replicated) and the
output cropped back, so 28x28 Fashion-MNIST, 64x64 patches or 30x30 images all work.
``depth`` (default: log2 of the shorter side, minus 2: 28 -> 2 levels, 64 -> 4, 256 -> 6)
is the number of halvings; the level i map has ``min(width * 2^i, max_width)`` channels.
The input has the channels of the data's ``input`` field (the data's own where there is
none); the output those of ``x``.

``patchgan`` judges every patch of a (condition, image) pair given as one stack of
channels and returns a map of logits (N, 1, h, w), one per patch, not one per sample:
a method averages its loss over the patches. Its receptive field (the patch each logit
sees) is ``receptive_field``: 1 (PixelGAN: 1x1 convolutions), 16, 34, 70 (the paper's
default), 142, 286 (strided 4x4 convolutions as in the paper's appendix: n of stride 2,
then two of stride 1, giving 2 r + 2 per stride-2 layer from 7), or ``image`` (ImageGAN:
halvings down to at most 4x4, then one convolution over the whole map: one logit per
image that sees every pixel).
"""
from __future__ import annotations

import math
from typing import List, Literal, Optional, Tuple, Union

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError
from ..registries import DISCRIMINATORS, GENERATORS
from .blocks import shape_of

__all__ = ["UNet", "PatchGAN", "RECEPTIVE_FIELDS", "patch_plan"]

Norm = Literal["batch", "instance", "none"]
#: the receptive fields a PatchGAN can have (pixels on a side) -> stride-2 layers
RECEPTIVE_FIELDS = {16: 1, 34: 2, 70: 3, 142: 4, 286: 5}
ReceptiveField = Literal[1, 16, 34, 70, 142, 286, "image"]


def _norm(kind: str, channels: int) -> List[nn.Module]:
    if kind == "batch":
        return [nn.BatchNorm2d(channels)]
    if kind == "instance":
        return [nn.InstanceNorm2d(channels, affine=True)]
    return []


def _image_shape(info, what: str) -> Tuple[int, int, int]:
    shape = shape_of(info)
    if len(shape) != 3:
        raise ConfigError(f"the {what} network works on images (C, H, W), got samples of shape {shape}; use it "
                          "with image data")
    return shape


class UNet(nn.Module):
    """Image -> image with skip connections; see the module's description."""

    #: no noise vector: dropout is the noise (``Method.noise`` draws (n, 0))
    z_dim = 0

    def __init__(self, in_channels: int, out_channels: int, width: int = 64, depth: int = 3,
                 max_width: int = 512, dropout: float = 0.5, norm: str = "batch"):
        super().__init__()
        self.depth, self.multiple = depth, 2 ** depth
        self.in_channels, self.out_channels = in_channels, out_channels
        w = [min(width * 2 ** i, max_width) for i in range(depth)]
        self.down = nn.ModuleList()
        for i in range(depth):
            if i == 0:
                self.down.append(nn.Conv2d(in_channels, w[0], 4, 2, 1))
            else:
                normed = i < depth - 1     # the innermost map is not normalised (it may be 1x1)
                self.down.append(nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(w[i - 1], w[i], 4, 2, 1, bias=not normed),
                                               *(_norm(norm, w[i]) if normed else [])))
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):     # innermost first
            c_in = w[i] if i == depth - 1 else 2 * w[i]
            if i == 0:
                self.up.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_in, out_channels, 4, 2, 1), nn.Tanh()))
            else:
                drop = [nn.Dropout(dropout)] if dropout > 0 and depth - 1 - i < 3 else []
                self.up.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_in, w[i - 1], 4, 2, 1, bias=norm == "none"),
                                             *_norm(norm, w[i - 1]), *drop))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        h, w = c.shape[-2:]
        ph, pw = -h % self.multiple, -w % self.multiple
        if ph or pw:
            c = F.pad(c, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="replicate")
        skips = []
        x = c
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = skips.pop()
        for k, layer in enumerate(self.up):
            x = layer(x)
            if k < len(self.up) - 1:
                x = torch.cat([skips.pop(), x], 1)
        if ph or pw:
            x = x[..., ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]
        return x


def patch_plan(size: Tuple[int, int], receptive_field) -> Tuple[int, int]:
    """The (h, w) of a PatchGAN's logit map on images of ``size``; a ConfigError when the
    receptive field is too deep for them."""
    h, w = size
    if receptive_field == 1:
        return h, w
    if receptive_field == "image":
        return 1, 1
    n = RECEPTIVE_FIELDS[receptive_field]
    for _ in range(n):
        h, w = (h + 2 - 4) // 2 + 1, (w + 2 - 4) // 2 + 1
    for _ in range(2):
        h, w = h - 1, w - 1
    if h < 1 or w < 1:
        fit = [r for r, k in RECEPTIVE_FIELDS.items() if _fits(size, k)]
        raise ConfigError(f"a PatchGAN with a {receptive_field}x{receptive_field} receptive field halves "
                          f"{size[0]}x{size[1]} images too often to leave a patch; choose "
                          f"discriminator.receptive_field from {', '.join(map(str, [1] + fit))} or image")
    return h, w


def _fits(size, n: int) -> bool:
    h, w = size
    for _ in range(n):
        h, w = (h + 2 - 4) // 2 + 1, (w + 2 - 4) // 2 + 1
    return min(h, w) - 2 >= 1


class PatchGAN(nn.Module):
    """Logits for every patch of a stack of channels: (N, C, H, W) -> (N, 1, h, w)."""

    def __init__(self, shape: Tuple[int, int, int], receptive_field: Union[int, str] = 70, width: int = 64,
                 max_width: int = 512, norm: str = "batch"):
        super().__init__()
        c, h, w = shape
        self.receptive_field = receptive_field
        self.out_size = patch_plan((h, w), receptive_field)
        chans = lambda i: min(width * 2 ** i, max_width)   # noqa: E731
        layers: List[nn.Module]
        if receptive_field == 1:      # PixelGAN: every pixel on its own
            layers = [nn.Conv2d(c, chans(0), 1), nn.LeakyReLU(0.2),
                      nn.Conv2d(chans(0), chans(1), 1, bias=norm == "none"), *_norm(norm, chans(1)),
                      nn.LeakyReLU(0.2)]
            last = nn.Conv2d(chans(1), 1, 1)
        elif receptive_field == "image":   # ImageGAN: halve to at most 4x4, then one read-out over the map
            layers, ch, i = [], c, 0
            while i == 0 or max(h, w) > 4:
                layers += [nn.Conv2d(ch, chans(i), 4, 2, 1, bias=i == 0 or norm == "none"),
                           *(_norm(norm, chans(i)) if i else []), nn.LeakyReLU(0.2)]
                ch, h, w, i = chans(i), (h + 2 - 4) // 2 + 1, (w + 2 - 4) // 2 + 1, i + 1
                if min(h, w) < 1:
                    raise ConfigError(f"an ImageGAN discriminator needs images of at least 2x2, got {shape[1:]}")
            last = nn.Conv2d(ch, 1, (h, w))
        else:
            n = RECEPTIVE_FIELDS[receptive_field]
            layers = [nn.Conv2d(c, chans(0), 4, 2, 1), nn.LeakyReLU(0.2)]
            for i in range(1, n + 1):          # n - 1 more of stride 2, then one of stride 1
                stride = 2 if i < n else 1
                layers += [nn.Conv2d(chans(i - 1), chans(i), 4, stride, 1, bias=norm == "none"),
                           *_norm(norm, chans(i)), nn.LeakyReLU(0.2)]
            last = nn.Conv2d(chans(n), 1, 4, 1, 1)
        self.body = nn.Sequential(*layers)
        self.last = last

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate maps, flattened (N, F) (for feature matching)."""
        return self.body(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, 1, h, w): one per patch."""
        return self.last(self.body(x))


def _check(key: str, value: int, low: int = 1) -> None:
    if value < low:
        raise ConfigError(f"{key} must be at least {low}, got {value}")


@GENERATORS.register("unet")
def unet(info, /, width: int = 64, depth: Optional[int] = None, max_width: int = 512, dropout: float = 0.5,
         norm: Norm = "batch") -> UNet:
    """U-Net image -> image (pix2pix): skip connections, dropout as the noise, depth halvings
    (default: log2 of the shorter side minus 2), padding for sides 2^depth does not divide."""
    c, h, w = _image_shape(info, "unet")
    fields = getattr(info, "fields", {}) or {}
    c_in = fields["input"].shape[0] if "input" in fields and len(fields["input"].shape) == 3 else c
    _check("generator.width", width)
    _check("generator.max_width", max_width)
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"generator.dropout must be in [0, 1), got {dropout}")
    if depth is None:
        depth = max(1, int(math.floor(math.log2(min(h, w)))) - 2)
    _check("generator.depth", depth)
    if 2 ** depth > 2 * max(h, w):
        raise ConfigError(f"generator.depth={depth} halves {h}x{w} images {depth} times, below one pixel; "
                          f"choose at most {int(math.ceil(math.log2(max(h, w))))}")
    return UNet(c_in, c, width, depth, max_width, dropout, norm)


@DISCRIMINATORS.register("patchgan")
def patchgan(info, /, receptive_field: ReceptiveField = 70, width: int = 64, max_width: int = 512,
             norm: Norm = "batch") -> PatchGAN:
    """PatchGAN: a logit per patch of receptive_field pixels (1: PixelGAN, 16, 34, 70, 142,
    286, image: ImageGAN); the map (N, 1, h, w) is averaged by the method's loss."""
    shape = _image_shape(info, "patchgan")
    _check("discriminator.width", width)
    _check("discriminator.max_width", max_width)
    return PatchGAN(shape, receptive_field, width, max_width, norm)
