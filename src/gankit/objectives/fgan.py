"""fGAN: the general framework of GAN (Nowozin, Cseke and Tomioka, 2016).

Every f-divergence, for a convex f with f(1) = 0,

    D_f(P || Q) = ∫ q(x) f(p(x) / q(x)) dx,

has a variational lower bound through the Fenchel conjugate f*(t) = sup_u {u t - f(u)}:

    D_f(P || Q) >= sup_T  E_{x~P}[T(x)] - E_{x~Q}[f*(T(x))],

with equality at T*(x) = f'(p(x) / q(x)). The discriminator plays T: its raw output v = V(x)
(any real number) goes through an *output activation* g_f that maps it into the domain of
f*, T(x) = g_f(V(x)). The discriminator maximises

    F = E_P[g_f(V(x))] - E_Q[f*(g_f(V(x)))]

(``d_loss = -F``). The generator of the saddle-point game minimises F, i.e. the only term that
depends on it, -E_Q[f*(g_f(V(G(z))))] (``generator="saddle"``); the paper's practical variant,
the analogue of the non-saturating GAN, instead maximises E_Q[g_f(V(G(z)))], i.e. minimises
-E_Q[g_f(V(G(z)))] (``generator="alternative"``). In a config the choice is the objective's
parameter: ``method.objective: {name: fgan_gan, generator: alternative}``, or
``--set method.objective=fgan_gan method.objective.generator=alternative``; the default,
``saddle``, is for ``fgan_gan`` the saturating minimax loss of Goodfellow et al.

The composition f*(g_f(v)) is written per divergence in a form that stays finite where the two
factors on their own would overflow or hit a log of 0 (for example, for ``gan`` it is
softplus(v), and the discriminator loss is exactly the binary cross-entropy of the original GAN).

Conventions follow the paper's table: ``jensen_shannon`` uses f(u) = u log u - (u + 1) log((1 + u)/2),
whose D_f is 2 JSD(P || Q); ``gan`` uses f(u) = u log u - (u + 1) log(u + 1), whose D_f is
2 JSD(P || Q) - log 4, the value of Goodfellow et al.'s game at the optimal discriminator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Literal, Optional, Tuple, Union

import torch
import torch.nn.functional as F

from ..registries import OBJECTIVES
from .adversarial import Objective

__all__ = ["FDivergence", "F_DIVERGENCES", "get_f_divergence", "variational_divergence", "fgan_d_loss",
           "fgan_saddle_g_loss", "fgan_alternative_g_loss", "fgan_objective"]

Tensor = torch.Tensor
GeneratorLoss = Literal["saddle", "alternative"]
_LOG2 = math.log(2.0)


@dataclass(frozen=True)
class FDivergence:
    """One row of the f-GAN table.

    * ``f(u)``: the convex generator function, f(1) = 0;
    * ``activation(v)``: the output activation g_f, from R onto the domain of f*;
    * ``conjugate(t)``: the Fenchel conjugate f*(t), for t in ``domain``;
    * ``conjugate_of_activation(v)``: f*(g_f(v)), the same function of v written so it stays
      finite for large |v|;
    * ``domain``: the open interval (low, high) on which f* is finite.
    """

    name: str
    f: Callable[[Tensor], Tensor]
    activation: Callable[[Tensor], Tensor]
    conjugate: Callable[[Tensor], Tensor]
    conjugate_of_activation: Callable[[Tensor], Tensor]
    domain: Tuple[float, float]
    title: str = ""


def _js_f(u: Tensor) -> Tensor:
    return torch.xlogy(u, u) - (u + 1) * torch.log((1 + u) / 2)


def _gan_f(u: Tensor) -> Tensor:
    return torch.xlogy(u, u) - (u + 1) * torch.log1p(u)


_TABLE = [
    FDivergence(
        "kl",
        f=lambda u: torch.xlogy(u, u),
        activation=lambda v: v,
        conjugate=lambda t: torch.exp(t - 1),
        conjugate_of_activation=lambda v: torch.exp(v - 1),
        domain=(-math.inf, math.inf),
        title="Kullback-Leibler",
    ),
    FDivergence(
        "reverse_kl",
        f=lambda u: -torch.log(u),
        activation=lambda v: -torch.exp(-v),
        conjugate=lambda t: -1 - torch.log(-t),
        conjugate_of_activation=lambda v: v - 1,           # -1 - log(exp(-v))
        domain=(-math.inf, 0.0),
        title="reverse Kullback-Leibler",
    ),
    FDivergence(
        "pearson",
        f=lambda u: (u - 1) ** 2,
        activation=lambda v: v,
        conjugate=lambda t: t * t / 4 + t,
        conjugate_of_activation=lambda v: v * v / 4 + v,
        domain=(-math.inf, math.inf),
        title="Pearson chi^2",
    ),
    FDivergence(
        "neyman",
        f=lambda u: (1 - u) ** 2 / u,
        activation=lambda v: 1 - torch.exp(-v),
        conjugate=lambda t: 2 - 2 * torch.sqrt(1 - t),
        conjugate_of_activation=lambda v: 2 - 2 * torch.exp(-v / 2),   # sqrt(1 - g) = exp(-v/2)
        domain=(-math.inf, 1.0),
        title="Neyman chi^2",
    ),
    FDivergence(
        "hellinger",
        f=lambda u: (torch.sqrt(u) - 1) ** 2,
        activation=lambda v: 1 - torch.exp(-v),
        conjugate=lambda t: t / (1 - t),
        conjugate_of_activation=lambda v: torch.expm1(v),             # (1 - e^-v) / e^-v
        domain=(-math.inf, 1.0),
        title="squared Hellinger",
    ),
    FDivergence(
        "jensen_shannon",
        f=_js_f,
        activation=lambda v: _LOG2 - F.softplus(-v),
        conjugate=lambda t: -torch.log(2 - torch.exp(t)),
        conjugate_of_activation=lambda v: F.softplus(v) - _LOG2,
        domain=(-math.inf, _LOG2),
        title="Jensen-Shannon (D_f = 2 JSD)",
    ),
    FDivergence(
        "gan",
        f=_gan_f,
        activation=lambda v: -F.softplus(-v),
        conjugate=lambda t: -torch.log(-torch.expm1(t)),
        conjugate_of_activation=lambda v: F.softplus(v),
        domain=(-math.inf, 0.0),
        title="GAN (D_f = 2 JSD - log 4)",
    ),
]

#: The f-GAN table, by name.
F_DIVERGENCES: Dict[str, FDivergence] = {row.name: row for row in _TABLE}


def get_f_divergence(f_div: Union[str, FDivergence]) -> FDivergence:
    """The table row for a name (or the row itself)."""
    if isinstance(f_div, FDivergence):
        return f_div
    try:
        return F_DIVERGENCES[f_div]
    except KeyError:
        raise KeyError(f"unknown f-divergence {f_div!r}; choose one of {', '.join(F_DIVERGENCES)}") from None


def _at_least_float32(x: Tensor) -> Tensor:
    return x if x.dtype == torch.float64 else x.float()


def variational_divergence(f_div: Union[str, FDivergence], t_real: Tensor, t_fake: Tensor) -> Tensor:
    """The lower-bound estimate E_P[T] - E_Q[f*(T)] of D_f(P || Q), from the values T(x) of a
    function T (already in the domain of f*) on samples x ~ P (``t_real``) and x ~ Q (``t_fake``).

    Computed in float32, or float64 when given float64."""
    div = get_f_divergence(f_div)
    t_real, t_fake = _at_least_float32(t_real), _at_least_float32(t_fake)
    return t_real.mean() - div.conjugate(t_fake).mean()


def fgan_d_loss(f_div: Union[str, FDivergence], v_real: Tensor, v_fake: Tensor) -> Tensor:
    """-(E_P[g_f(V(x))] - E_Q[f*(g_f(V(x)))]), from the discriminator's raw outputs V(x)."""
    div = get_f_divergence(f_div)
    return div.conjugate_of_activation(v_fake.float()).mean() - div.activation(v_real.float()).mean()


def fgan_saddle_g_loss(f_div: Union[str, FDivergence], v_fake: Tensor) -> Tensor:
    """-E_Q[f*(g_f(V(G(z))))]: the generator's side of the saddle-point objective."""
    return -get_f_divergence(f_div).conjugate_of_activation(v_fake.float()).mean()


def fgan_alternative_g_loss(f_div: Union[str, FDivergence], v_fake: Tensor) -> Tensor:
    """-E_Q[g_f(V(G(z)))]: the paper's practical generator objective (non-saturating for ``gan``)."""
    return -get_f_divergence(f_div).activation(v_fake.float()).mean()


def fgan_objective(f_div: Union[str, FDivergence], generator: GeneratorLoss = "saddle") -> Objective:
    """The f-GAN :class:`Objective` for one divergence; ``generator`` picks the generator loss,
    ``"saddle"`` (-E_Q[f*(g_f(V))]) or ``"alternative"`` (-E_Q[g_f(V)])."""
    div = get_f_divergence(f_div)
    if generator == "saddle":
        g_fn = fgan_saddle_g_loss
    elif generator == "alternative":
        g_fn = fgan_alternative_g_loss
    else:
        raise ValueError(f"generator must be 'saddle' or 'alternative', got {generator!r}")

    def d_loss(d_real: Tensor, d_fake: Tensor) -> Tensor:
        return fgan_d_loss(div, d_real, d_fake)

    def g_loss(d_fake: Tensor, d_real: Optional[Tensor] = None) -> Tensor:
        return g_fn(div, d_fake)

    d_loss.__doc__ = f"f-GAN discriminator loss for {div.name}: -E_P[g_f(V)] + E_Q[f*(g_f(V))]."
    g_loss.__doc__ = f"f-GAN {generator} generator loss for {div.name}."
    return Objective(d_loss, g_loss, output="score")


def _register(registered: str, div_name: str) -> None:
    def factory(generator: GeneratorLoss = "saddle") -> Objective:
        return fgan_objective(div_name, generator)

    factory.__name__ = registered
    factory.__doc__ = (f"f-GAN with the {F_DIVERGENCES[div_name].title} divergence "
                       f"(generator: 'saddle' or 'alternative').")
    OBJECTIVES.register(registered)(factory)


for _registered, _div in [("fgan_kl", "kl"), ("fgan_reverse_kl", "reverse_kl"), ("fgan_pearson", "pearson"),
                          ("fgan_neyman", "neyman"), ("fgan_hellinger", "hellinger"),
                          ("fgan_js", "jensen_shannon"), ("fgan_gan", "gan")]:
    _register(_registered, _div)
