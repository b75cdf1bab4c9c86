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

The objectives further down drop the sigmoid and read the discriminator's output as a raw
score (the "Tips for Improving GAN"): Least Square GAN (``least_squares``) regresses the score
onto targets, WGAN (``wasserstein``) lets a critic estimate the Wasserstein (Earth Mover's)
distance, and the hinge loss (``hinge``) is WGAN's critic with margins. The Lipschitz
constraints WGAN needs (weight clipping, gradient penalty, spectral norm) live in
:mod:`gankit.objectives.penalties`.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import torch
import torch.nn.functional as F

from ..registries import OBJECTIVES

__all__ = ["Objective", "gan_d_loss", "minimax_g_loss", "nonsaturating_g_loss", "value_function",
           "least_squares_d_loss", "least_squares_g_loss", "least_squares_objective",
           "wasserstein_critic_loss", "wasserstein_g_loss", "hinge_d_loss", "hinge_g_loss"]


class Objective(NamedTuple):
    d_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    g_loss: Callable[..., torch.Tensor]
    #: "logit" when the discriminator's output is log D/(1-D), so sigmoid(output) = D(x);
    #: "score" for critics and other raw outputs (Wasserstein, hinge, least squares, f-GAN)
    output: str = "logit"


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


# ------------------------------------------------------------------ Least Square GAN (LSGAN)

def least_squares_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor, a: float = 0.0, b: float = 1.0) -> torch.Tensor:
    """0.5 E[(D(x) - b)^2] + 0.5 E[(D(G(z)) - a)^2]: regress real scores onto b, generated onto a."""
    return 0.5 * (d_real.float() - b).pow(2).mean() + 0.5 * (d_fake.float() - a).pow(2).mean()


def least_squares_g_loss(d_fake: torch.Tensor, d_real: Optional[torch.Tensor] = None, c: float = 1.0) -> torch.Tensor:
    """0.5 E[(D(G(z)) - c)^2]: the generator wants its samples scored c."""
    return 0.5 * (d_fake.float() - c).pow(2).mean()


def least_squares_objective(a: float = 0.0, b: float = 1.0, c: float = 1.0) -> Objective:
    """LSGAN (Mao et al. 2017) with target a for generated, b for real, c for the generator.

    a=0, b=1, c=1 (the ``least_squares`` objective) is the 0-1 coding; a=-1, b=1, c=0
    makes the generator minimise a Pearson chi^2 divergence at the optimal discriminator.
    """
    def d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        return least_squares_d_loss(d_real, d_fake, a, b)

    def g_loss(d_fake: torch.Tensor, d_real: Optional[torch.Tensor] = None) -> torch.Tensor:
        return least_squares_g_loss(d_fake, d_real, c)

    return Objective(d_loss, g_loss, output="score")


@OBJECTIVES.register("least_squares")
def least_squares() -> Objective:
    """Least Square GAN: D minimises 0.5 E[(D(x)-1)^2] + 0.5 E[D(G(z))^2], G 0.5 E[(D(G(z))-1)^2]."""
    return Objective(least_squares_d_loss, least_squares_g_loss, output="score")


# ------------------------------------------------------------------ WGAN and hinge

def wasserstein_critic_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """E[D(G(z))] - E[D(x)]: minus the critic's estimate of the Wasserstein distance
    (exact, up to sign, for the best 1-Lipschitz critic)."""
    return d_fake.float().mean() - d_real.float().mean()


def wasserstein_g_loss(d_fake: torch.Tensor, d_real: Optional[torch.Tensor] = None) -> torch.Tensor:
    """-E[D(G(z))]: the generator raises the critic's score of its samples."""
    return -d_fake.float().mean()


def hinge_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]: real scores pushed above +1, generated below -1."""
    return F.relu(1 - d_real.float()).mean() + F.relu(1 + d_fake.float()).mean()


def hinge_g_loss(d_fake: torch.Tensor, d_real: Optional[torch.Tensor] = None) -> torch.Tensor:
    """-E[D(G(z))], as for WGAN."""
    return -d_fake.float().mean()


@OBJECTIVES.register("wasserstein")
def wasserstein() -> Objective:
    """WGAN: the critic minimises E[D(G(z))] - E[D(x)], G minimises -E[D(G(z))] (add a Lipschitz constraint)."""
    return Objective(wasserstein_critic_loss, wasserstein_g_loss, output="score")


@OBJECTIVES.register("hinge")
def hinge() -> Objective:
    """Hinge loss: D minimises E[relu(1-D(x))] + E[relu(1+D(G(z)))], G minimises -E[D(G(z))]."""
    return Objective(hinge_d_loss, hinge_g_loss, output="score")
