"""StackGAN's pieces (Zhang et al. 2017): conditioning augmentation, the two stage generators
and the refiner network of stage 2.

* :class:`ConditioningAugmentation` turns any condition embedding (a one-hot class code, a
  sentence embedding ...) into a Gaussian: one linear layer gives its mean and log-variance,
  and a sample ``c = mu + exp(logvar / 2) * eps`` is drawn with the reparameterisation trick
  from standard normal noise ``eps`` that the caller supplies (so the draws go through the
  method's random streams). :func:`kl_divergence` is the regulariser that keeps the Gaussian
  near N(0, I).
* :class:`StageOneGenerator`: G0(z, c0) = base([z, c0]) for any registered generator of
  noise built for ``z_dim + cond_dim`` inputs at the first stage's (smaller) size.
* :class:`StageTwoGenerator`: G(s0, c) = refiner(s0, c), no noise (the paper's: the
  randomness is already in s0); its own conditioning augmentation, as in the paper.
* :class:`Refiner` (registered generator ``refiner``): encodes the stage-1 picture (one
  strided halving when its side is even and at least 8), joins the condition vector as
  constant maps, residual blocks, then nearest-neighbour doublings with 3x3 convolutions up
  to the final size, Tanh. Its factory reads the stage-1 shape from the field ``input`` and
  the condition's width from the field ``condition`` of the ``DataInfo`` it is built for.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch
from torch import nn

from ..errors import ConfigError
from ..registries import GENERATORS

__all__ = ["ConditioningAugmentation", "kl_divergence", "StageOneGenerator", "StageTwoGenerator", "Refiner",
           "refiner"]

Tensor = torch.Tensor


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) of each row, averaged over the rows (float32):
    0.5 * sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)."""
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(1).mean()


class ConditioningAugmentation(nn.Module):
    """An embedding (N, embed_dim) -> (c, mu, logvar), each (N, cond_dim), float32."""

    def __init__(self, embed_dim: int, cond_dim: int):
        super().__init__()
        if embed_dim < 1 or cond_dim < 1:
            raise ConfigError(f"conditioning augmentation needs positive widths, got embedding {embed_dim} and "
                              f"condition {cond_dim}")
        self.embed_dim, self.cond_dim = embed_dim, cond_dim
        self.fc = nn.Linear(embed_dim, 2 * cond_dim)

    def forward(self, e: Tensor, eps: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        mu, logvar = self.fc(e).float().chunk(2, 1)
        return mu + torch.exp(0.5 * logvar) * eps.float(), mu, logvar


class StageOneGenerator(nn.Module):
    """G0(z, e, eps) -> (picture at the first stage's size, mu, logvar)."""

    def __init__(self, base: nn.Module, z_dim: int, embed_dim: int, cond_dim: int):
        super().__init__()
        if getattr(base, "z_dim", None) != z_dim + cond_dim:
            raise ConfigError("stage 1's network must take z_dim + cond_dim inputs")
        self.base, self.z_dim = base, z_dim
        self.ca = ConditioningAugmentation(embed_dim, cond_dim)

    def forward(self, z: Tensor, e: Tensor, eps: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        c, mu, logvar = self.ca(e, eps)
        return self.base(torch.cat([z, c.to(z.dtype)], 1)), mu, logvar


class StageTwoGenerator(nn.Module):
    """G(s0, e, eps) -> (picture at the final size, mu, logvar); ``refiner`` maps (s0, c)."""

    def __init__(self, refiner: "Refiner", embed_dim: int):
        super().__init__()
        self.refiner = refiner
        self.ca = ConditioningAugmentation(embed_dim, refiner.cond_dim)

    def forward(self, s0: Tensor, e: Tensor, eps: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        c, mu, logvar = self.ca(e, eps)
        return self.refiner(s0, c), mu, logvar


class _Residual(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(inplace=True),
                                  nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch))

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x + self.body(x))


class Refiner(nn.Module):
    """(stage-1 picture (N, C_in, h, w), condition (N, cond_dim)) -> picture (N, C, h * factor,
    w * factor) in [-1, 1]; ``factor`` a power of two."""

    def __init__(self, c_in: int, c_out: int, size: Tuple[int, int], factor: int, cond_dim: int, width: int,
                 blocks: int):
        super().__init__()
        h, w = size
        self.cond_dim, self.factor, self.z_dim = cond_dim, factor, 0
        down = 1 if h % 2 == 0 and w % 2 == 0 and min(h, w) >= 8 else 0
        layers = [nn.Conv2d(c_in, width, 3, 1, 1), nn.ReLU(inplace=True)]
        ch = width
        for _ in range(down):
            layers += [nn.Conv2d(ch, 2 * ch, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * ch), nn.ReLU(inplace=True)]
            ch *= 2
        self.encode = nn.Sequential(*layers)
        self.join = nn.Sequential(nn.Conv2d(ch + cond_dim, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch),
                                  nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*[_Residual(ch) for _ in range(blocks)])
        ups = []
        for _ in range(down + int(round(math.log2(factor)))):
            nxt = max(ch // 2, 8)
            ups += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, nxt, 3, 1, 1, bias=False),
                    nn.BatchNorm2d(nxt), nn.ReLU(inplace=True)]
            ch = nxt
        self.up = nn.Sequential(*ups)
        self.out = nn.Conv2d(ch, c_out, 3, 1, 1)

    def forward(self, s0: Tensor, c: Tensor) -> Tensor:
        h = self.encode(s0)
        maps = c.to(h.dtype)[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        if not h.is_contiguous() and h.is_contiguous(memory_format=torch.channels_last):
            maps = maps.contiguous(memory_format=torch.channels_last)
        h = self.blocks(self.join(torch.cat([h, maps], 1)))
        return torch.tanh(self.out(self.up(h)))


@GENERATORS.register("refiner")
def refiner(info, /, width: int = 32, blocks: int = 2) -> Refiner:
    """StackGAN's stage-2 network: a smaller picture (field ``input``) and a condition vector
    (field ``condition``) -> the full-size picture; ``width`` channels at the stage-1 size
    (doubled after its one halving), ``blocks`` residual blocks."""
    fields = getattr(info, "fields", None) or {}
    if "input" not in fields or "condition" not in fields:
        raise ConfigError("generator 'refiner' refines a smaller picture given a condition vector: it is stage 2 of "
                          "method stackgan; for other methods pick dcgan, mlp, unet ...")
    if width < 1 or blocks < 0:
        raise ConfigError(f"refiner: width must be positive and blocks not negative, got {width} and {blocks}")
    c, h, w = fields["x"].shape
    c_in, h1, w1 = fields["input"].shape
    factor = h // h1
    if h1 * factor != h or w1 * factor != w or factor < 2 or factor & (factor - 1):
        raise ConfigError(f"refiner: the final size {h}x{w} must be the stage-1 size {h1}x{w1} times a power of two")
    return Refiner(c_in, c, (h1, w1), factor, fields["condition"].shape[0], width, blocks)
