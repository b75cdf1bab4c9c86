"""Adversarial objectives as pure functions of discriminator outputs.

An objective is a pair of functions of the discriminator's *logits* l (D = sigmoid(l)):

* ``d_loss(d_real, d_fake)``: what the discriminator minimises;
* ``g_loss(d_fake, d_real=None)``: what the generator minimises.

Written with softplus, so that log D = -softplus(-l) and log(1 - D) = -softplus(l) stay
finite when D saturates. Both are computed in float32 whatever the autocast precision.

Goodfellow et al. (2014) define the value V(D, G) = E[log D(x)] + E[log(1 - D(G(z)))];
the discriminator maximises V (so ``d_loss = -V``). The generator of the *minimax* game
minimises E[log(1 - D(G(z)))], which saturates early in training when D rejects every
sample; the *non-saturating* generator instead minimises -E[log D(G(z))], which has the
same fixed point and strong gradients where the minimax one vanishes.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import torch
import torch.nn.functional as F

from ..registries import OBJECTIVES

__all__ = ["Objective", "gan_d_loss", "minimax_g_loss", "nonsaturating_g_loss", "value_function"]


class Objective(NamedTuple):
    d_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    g_loss: Callable[..., torch.Tensor]


def value_function(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """V(D, G) = E[log D(x)] + E[log(1 - D(G(z)))], from logits."""
    return -F.softplus(-d_real.float()).mean() - F.softplus(d_fake.float()).mean()


def gan_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """-V(D, G): binary cross-entropy with real = 1, generated = 0."""
    return -value_function(d_real, d_fake)


def minimax_g_loss(d_fake: torch.Tensor, d_real: Optional[torch.Tensor] = None) -> torch.Tensor:
    """E[log(1 - D(G(z)))], the generator's side of the minimax game."""
    return -F.softplus(d_fake.float()).mean()


def nonsaturating_g_loss(d_fake: torch.Tensor, d_real: Optional[torch.Tensor] = None) -> torch.Tensor:
    """-E[log D(G(z))], the non-saturating generator objective."""
    return F.softplus(-d_fake.float()).mean()


@OBJECTIVES.register("minimax")
def minimax() -> Objective:
    """Goodfellow's minimax game: G minimises log(1 - D(G(z)))."""
    return Objective(gan_d_loss, minimax_g_loss)


@OBJECTIVES.register("nonsaturating")
def nonsaturating() -> Objective:
    """Non-saturating GAN: G minimises -log D(G(z))."""
    return Objective(gan_d_loss, nonsaturating_g_loss)
