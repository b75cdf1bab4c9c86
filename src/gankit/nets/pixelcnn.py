"""A gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
Decoders"): an autoregressive image model with an exact likelihood.

The picture's pixels are taken in raster order (row by row, left to right), and the network
gives, for every pixel, a 256-way categorical distribution over its 8-bit value given all the
pixels before it. The channels of one pixel are drawn independently given the earlier pixels
(the paper orders R, G, B inside a pixel; for grey pictures, such as Fashion-MNIST, the two
agree). The product of these conditionals is a normalised distribution over 8-bit pictures,
so its log-probability is exact, not a bound.

Two stacks keep the model causal without the blind spot of masked 3x3 convolutions:

* the **vertical stack** sees a window of the rows above. Its convolution has a kernel of
  ``(k // 2 + 1) x k`` with ``k // 2`` rows of zero padding on top only, so its output at
  (i, j) reads rows i - k // 2 .. i (the row itself included); that is harmless because the
  stack reaches the pixel only through a shift down by one row (the ``down`` links), so
  (i, j) hears rows < i;
* the **horizontal stack** sees the pixels to the left in the same row: a ``1 x (k // 2 + 1)``
  kernel padded on the left only. In the first layer its output is shifted right by one
  pixel (mask A: the pixel itself is not read); later layers read their own position (mask B:
  by then it holds only what came before the pixel). Each horizontal layer adds the vertical
  stack's pre-activation of the row above through a 1x1 convolution (the link), and keeps a
  residual connection.

Every layer is gated: ``tanh(a) * sigmoid(b)`` of the two halves of a convolution with twice
the channels. The output is a 1x1 convolution, ReLU and a 1x1 convolution to 256 logits per
channel. With L layers the pixel (i, j) depends on the rows i - 1 - L (k // 2) .. i - 1, columns
j - L (k // 2) .. j + L (k // 2), and on row i's columns j - 1 - L (k // 2) .. j - 1: the whole of
what comes before it within that reach, no blind spot (``tests/test_pixelcnn.py``
checks the gradient of one output against every input pixel).

Sampling (:meth:`GatedPixelCNN.sample`) draws one pixel at a time for a whole batch at once,
by the inverse of each categorical's distribution function at uniform numbers made from the
given standard normal noise (u = Phi(z)), so a seeded noise tensor fixes the pictures. It does
not run the whole network for every pixel: for each row it runs the vertical stack on the few
rows above that the row can see, and for each pixel the horizontal stack on the few pixels to
its left that it can see (the receptive field, cut out with the same zero padding at the true
edges of the picture), then the output layers on that pixel alone. The logits are the ones the
whole network gives for the finished picture (the tests check that the log-probability added
up while sampling equals that of a full forward pass).
"""
from __future__ import annotations

from typing import List, Literal, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..registries import GENERATORS
from .blocks import shape_of

__all__ = ["GatedPixelCNN", "LEVELS", "to_levels", "from_levels", "is_pixelcnn"]

#: the values one channel of an 8-bit pixel takes
LEVELS = 256


def to_levels(x: torch.Tensor) -> torch.Tensor:
    """Pictures in model space ([-1, 1], value v stored as v / 127.5 - 1) -> integer levels
    0..255 (int64)."""
    return x.float().add(1.0).mul(127.5).round().clamp(0, LEVELS - 1).long()


def from_levels(v: torch.Tensor) -> torch.Tensor:
    """Integer levels 0..255 -> model space, v / 127.5 - 1 (float32)."""
    return v.float().div(127.5).sub(1.0)


def _gate(t: torch.Tensor) -> torch.Tensor:
    a, b = t.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def _down(t: torch.Tensor) -> torch.Tensor:
    """Shift down by one row (row 0 becomes zeros)."""
    return F.pad(t, (0, 0, 1, 0))[:, :, :-1]


def _right(t: torch.Tensor) -> torch.Tensor:
    """Shift right by one column (column 0 becomes zeros)."""
    return F.pad(t, (1, 0))[..., :-1]


class GatedPixelCNN(nn.Module):
    """The network: pictures in model space (N, C, H, W) -> logits (N, 256, C, H, W) of each
    pixel's value given the pixels before it (see the module)."""

    #: draws pixel by pixel: no latent space that a picture could be inverted into
    autoregressive = True

    def __init__(self, shape: Tuple[int, ...], width: int, layers: int, kernel: int, head: int):
        super().__init__()
        c, h, w = shape
        self.shape, self.width, self.layers, self.kernel = tuple(shape), width, layers, kernel
        self.z_dim = c * h * w           # one standard normal number per pixel and channel
        p = kernel // 2
        self.pad = p
        self.vertical = nn.ModuleList([nn.Conv2d(c if i == 0 else width, 2 * width, (p + 1, kernel))
                                       for i in range(layers)])
        self.horizontal = nn.ModuleList([nn.Conv2d(c if i == 0 else width, 2 * width, (1, p + 1))
                                         for i in range(layers)])
        self.links = nn.ModuleList([nn.Conv2d(2 * width, 2 * width, 1) for _ in range(layers)])
        self.residual = nn.ModuleList([nn.Conv2d(width, width, 1) for _ in range(layers)])
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(width, head, 1), nn.ReLU(), nn.Conv2d(head, c * LEVELS, 1))

    # ------------------------------------------------------------------ the two stacks
    def vertical_stack(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Each layer's vertical pre-activation (N, 2 width, h, W) for pictures (or a band of
        rows of them) ``x``; the one at (i, j) reads rows i - (layer + 1) k // 2 .. i."""
        p, out, v = self.pad, [], x
        for conv in self.vertical:
            pre = conv(F.pad(v, (p, p, p, 0)))
            out.append(pre)
            v = _gate(pre)
        return out

    def horizontal_stack(self, x: torch.Tensor, links: List[torch.Tensor]) -> torch.Tensor:
        """The horizontal stack's last features (N, width, h, w) for pictures (or a band of
        columns of one row) ``x``, given each layer's link term (the 1x1 convolution of the
        vertical pre-activation one row up) at the same positions."""
        p = self.pad
        h = None
        for i, (conv, res) in enumerate(zip(self.horizontal, self.residual)):
            if i == 0:
                h = res(_gate(_right(conv(F.pad(x, (p, 0)))) + links[0]))
            else:
                h = h + res(_gate(conv(F.pad(h, (p, 0))) + links[i]))
        return h

    def logits_of(self, features: torch.Tensor) -> torch.Tensor:
        """(N, width, h, w) features -> (N, 256, C, h, w) logits."""
        out = self.head(features)
        n, _, hh, ww = out.shape
        return out.reshape(n, self.shape[0], LEVELS, hh, ww).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, 256, C, H, W) of every pixel's value given the pixels before it."""
        links = [link(_down(pre)) for link, pre in zip(self.links, self.vertical_stack(x))]
        return self.logits_of(self.horizontal_stack(x, links))

    def log_prob(self, levels: torch.Tensor) -> torch.Tensor:
        """Exact log-probability in nats (N,) of pictures given as integer levels (N, C, H, W)."""
        logits = self(from_levels(levels)).float()
        return -F.cross_entropy(logits, levels, reduction="none").flatten(1).sum(1)

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(self, z: torch.Tensor, temperature: float = 1.0) -> Tuple[torch.Tensor, torch.Tensor]:
        """Pictures drawn pixel by pixel for standard normal noise ``z`` (N, C H W), one number
        per pixel and channel in raster order: (levels (N, C, H, W) int64, their log-probability
        (N,) in nats under the model at temperature 1)."""
        c, height, width = self.shape
        n, reach = len(z), self.layers * self.pad
        u = torch.special.ndtr(z.float().view(n, height, width, c))
        x = torch.zeros(n, c, height, width, device=z.device)
        levels = torch.zeros(n, c, height, width, dtype=torch.long, device=z.device)
        log_prob = torch.zeros(n, dtype=torch.float64, device=z.device)
        for i in range(height):
            if i == 0:      # the row above the picture: zeros, through the links' biases
                above = [link(torch.zeros(n, 2 * self.width, 1, width, device=z.device)) for link in self.links]
            else:           # the rows that row i - 1's vertical pre-activation reads
                band = x[:, :, max(0, i - 1 - reach):i]
                above = [link(pre[:, :, -1:]) for link, pre in zip(self.links, self.vertical_stack(band))]
            for j in range(width):
                left = max(0, j - reach - 1)
                h = self.horizontal_stack(x[:, :, i:i + 1, left:j + 1], [a[..., left:j + 1] for a in above])
                logits = self.logits_of(h[..., -1:])[:, :, :, 0, 0].float()      # (N, 256, C)
                logp = torch.log_softmax(logits / temperature, dim=1)
                cdf = logp.exp().double().cumsum(1)
                target = u[:, i, j].double().unsqueeze(1) * cdf[:, -1:]
                v = (cdf < target).sum(1).clamp_max(LEVELS - 1)                    # (N, C)
                levels[:, :, i, j] = v
                x[:, :, i, j] = from_levels(v)
                own = torch.log_softmax(logits, dim=1)
                log_prob += own.gather(1, v.unsqueeze(1)).squeeze(1).double().sum(1)
        return levels, log_prob


def is_pixelcnn(net: nn.Module) -> bool:
    """Whether ``net`` is an autoregressive pixel model (:class:`GatedPixelCNN`)."""
    return bool(getattr(net, "autoregressive", False)) and hasattr(net, "log_prob") and hasattr(net, "sample")


@GENERATORS.register("pixelcnn")
def pixelcnn_network(info, /, width: int = 32, layers: int = 6, kernel: Literal[3, 5, 7] = 3,
                     head: int = 64) -> GatedPixelCNN:
    """Gated PixelCNN (vertical and horizontal stacks, no blind spot): each pixel a 256-way
    categorical given the pixels before it; width: channels of each stack; layers: gated layers
    (each widens the view by kernel // 2 pixels); kernel: the stacks' kernel width; head: channels
    of the output layer before the 256 logits per channel."""
    shape = shape_of(info)
    if len(shape) != 3:
        raise ConfigError(f"the pixelcnn network models pictures (C, H, W), got samples of shape {tuple(shape)}")
    for key, value in (("width", width), ("layers", layers), ("head", head)):
        if value < 1:
            raise ConfigError(f"generator.{key} must be at least 1, got {value}")
    if kernel not in (3, 5, 7):
        raise ConfigError(f"generator.kernel must be 3, 5 or 7 (odd: a centre column), got {kernel}")
    return GatedPixelCNN(shape, width, layers, kernel, head)
