"""Loss-sensitive GAN (Qi 2017): a learned loss L with a margin that depends on the samples.

The discriminator scores a sample with a loss L(x), low for real data. Instead of pushing
every generated sample as far as possible (as WGAN does), L only has to rate a generated
sample G(z) worse than a real one x by a margin Delta(x, G(z)) that shrinks as G(z) gets
closer to x: a good sample need not be pushed down much. With real and generated samples
paired up within the batch,

    L_D = E[L(x)] + slack_weight * E[relu(Delta(x, G(z)) + L(x) - L(G(z)))]
    L_G = E[L(G(z))]

L is a loss, so it is non-negative: L(x) = |f(x)| for the discriminator's output f(x)
(Qi's code ends the network in a ReLU; the absolute value cannot die the way a ReLU output
can). A lower bound is needed: with a raw output, E[L(x)] is minimised by driving L to
minus infinity everywhere (through hidden biases, where no gradient penalty looks), and
training falls apart after a few hundred steps.

``distance`` picks Delta, per sample and scaled by the dimension so that it does not grow
with the number of pixels: ``l1`` is the mean absolute difference, ``l2`` the root mean
squared difference. (:func:`gankit.objectives.penalties.lipschitz_margin_penalty` is the
same slack term with the unscaled L_p norm as Delta; for one-dimensional data they agree.)

The theory asks for a Lipschitz L. Qi keeps it so with weight decay (``optim.weight_decay``)
and names the alternative of keeping the gradient of L small; ``penalty_weight`` > 0 adds
that as ``penalty_weight * E[||grad_x L(x_hat)||^2]`` on random points x_hat between real
and generated samples (:func:`~gankit.objectives.penalties.gradient_penalty` with center 0),
which needs a discriminator that treats the samples of a batch independently: no batch norm,
no minibatch discrimination (refused otherwise).
``slack_weight`` sets the weight of the margin term against E[L(x)]; Qi's code leaves the
latter out by default (an infinite ``slack_weight``, in effect), and a small one lets it
dominate, so that L sinks to 0 on real and generated samples alike.
"""
from __future__ import annotations

from typing import Dict, List, Literal

import torch
import torch.nn.functional as F

from ..config import Config
from ..errors import ConfigError
from ..nets.autoencoder import is_autoencoder
from ..objectives.penalties import gradient_penalty, require_independent_samples
from ..registries import METHODS
from ..train.runtime import Runtime
from .base import Adversarial, Batch, DataInfo, check_positive

__all__ = ["LossSensitiveGAN", "pair_distance", "loss_sensitive_d_loss", "loss_function", "DISTANCES"]

DISTANCES = ("l1", "l2")


def pair_distance(real: torch.Tensor, fake: torch.Tensor, distance: str = "l1") -> torch.Tensor:
    """Delta between paired samples (N,), float32, no gradient: ``l1`` = mean |x - y| per
    sample, ``l2`` = sqrt(mean (x - y)^2) per sample."""
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must pair up: same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    diff = (real.detach().float() - fake.detach().float()).flatten(1)
    if distance == "l1":
        return diff.abs().mean(1)
    if distance == "l2":
        return diff.pow(2).mean(1).sqrt()
    raise ValueError(f"unknown distance {distance!r}; choose one of {', '.join(DISTANCES)}")


def loss_sensitive_d_loss(l_real: torch.Tensor, l_fake: torch.Tensor, delta: torch.Tensor,
                          slack_weight: float) -> torch.Tensor:
    """E[L(x)] + slack_weight * E[relu(Delta + L(x) - L(G(z)))], in float32."""
    l_real, l_fake = l_real.float(), l_fake.float()
    return l_real.mean() + slack_weight * F.relu(delta.float() + l_real - l_fake).mean()


def loss_function(discriminator, x: torch.Tensor) -> torch.Tensor:
    """L(x) = |f(x)| (N,), the non-negative loss that the discriminator f defines."""
    return discriminator(x).abs()


class LossSensitiveGAN(Adversarial):
    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, slack_weight: float, distance: str,
                 penalty_weight: float, d_steps: int):
        super().__init__(runtime, info, cfg)
        check_positive("method.d_steps", d_steps)
        if not slack_weight > 0:
            raise ConfigError(f"method.slack_weight must be positive, got {slack_weight}")
        if penalty_weight < 0:
            raise ConfigError(f"method.penalty_weight must not be negative, got {penalty_weight}")
        self.slack_weight, self.distance, self.penalty_weight = slack_weight, distance, penalty_weight
        self.d_steps = self.real_batches_per_step = d_steps
        d_name = self.network_name("discriminator")
        g, d = self.build_noise_generator(), self.build_network("discriminator")
        if is_autoencoder(d):
            raise ConfigError(f"method 'loss_sensitive' needs a discriminator with one output per sample, got "
                              f"'{d_name}' (an auto-encoder, for method.name=ebgan); use discriminator.name=auto")
        if penalty_weight:
            require_independent_samples(d, f"method.penalty_weight={penalty_weight:g} (the loss-sensitive GAN's "
                                           "gradient-norm penalty)")
        self.opt_g, self.opt_d = self.add_pair(g, d)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """The learned loss L(x) (N,) of a batch in model space: low for data."""
        return loss_function(self.discriminator, x)

    @torch.no_grad()
    def critic(self, x: torch.Tensor) -> torch.Tensor:
        """Minus the loss function L(x): real samples get a low loss."""
        D = self.discriminator
        return -self.judged(D, x, lambda v: loss_function(D, v)).float().reshape(len(x))

    def discriminator_step(self, batch: Batch) -> Dict[str, torch.Tensor]:
        """One update of the loss function L."""
        D, rt = self.discriminator, self.rt
        real = batch["x"]
        fake = self.generated(len(real))
        with rt.autocast():
            l_real, l_fake = loss_function(D, real), loss_function(D, fake)
        delta = pair_distance(real, fake, self.distance)
        d_loss = loss_sensitive_d_loss(l_real, l_fake, delta, self.slack_weight)
        if self.penalty_weight:
            d_loss = d_loss + gradient_penalty(lambda x: loss_function(D, x), real, fake,
                                               weight=self.penalty_weight, center=0.0)
        rt.step(d_loss, self.opt_d, "discriminator")
        with torch.no_grad():
            return {"d_loss": d_loss.detach(), "loss_real": l_real.detach().float().mean(),
                    "loss_fake": l_fake.detach().float().mean(), "delta": delta.mean()}

    def generator_step(self, batches: List[Batch]) -> Dict[str, torch.Tensor]:
        """One generator update; L is held fixed."""
        G, D, rt = self.generator, self.discriminator, self.rt
        with rt.autocast():
            g_loss = loss_function(D, G(self.noise(len(batches[0]["x"])))).float().mean()
        rt.step(g_loss, self.opt_g, "generator")
        return {"g_loss": g_loss.detach()}


@METHODS.register("loss_sensitive")
def loss_sensitive(runtime, info, cfg, /, slack_weight: float = 100.0, distance: Literal["l1", "l2"] = "l1",
                   penalty_weight: float = 0.0, d_steps: int = 1) -> LossSensitiveGAN:
    """Loss-sensitive GAN (Qi 2017): a learned loss L with a data-dependent margin Delta(x, G(z))
    between real and generated samples; optional gradient-norm penalty for a smooth L."""
    return LossSensitiveGAN(runtime, info, cfg, slack_weight, distance, penalty_weight, d_steps)
