"""A sequence GAN trained through the Gumbel-softmax relaxation (Kusner and Hernandez-Lobato 2016;
Jang et al. 2017).

"Improving Sequence Generation by GAN": a generator that samples discrete tokens gives the
discriminator's score no gradient with respect to the generator's parameters (the draw, an
argmax or an inverse CDF, is a step function of the logits; ``gankit experiment
argmax-gradient`` measures exactly 0). One way through, listed in the lecture beside policy
gradients: replace each draw by its continuous relaxation, y_t = softmax((logits_t + g_t) /
tau) with Gumbel noise g_t = -log(-log u_t), the generator's next step fed y_t's expected
embedding, and let the discriminator read the relaxed one-hot vectors. As tau -> 0 they
approach one-hot samples of the generator's own distribution (argmax y_t is an exact draw at
any tau); the gradient's variance grows as tau falls, so tau is annealed from ``tau_start``
to ``tau_end`` over the first ``anneal_steps`` adversarial steps (geometrically; then held at
``tau_end``; a number of its own, not the run's length, so resuming with more steps keeps the
schedule). With
``hard`` the generator emits the one-hot argmax forward and passes y_t's gradient backward
(straight-through): the discriminator then sees one-hot vectors on both sides.

The discriminator (SeqGAN's CNN, ``seq_cnn``) reads real sequences as one-hot vectors (the
embedding of a token number is the same product) and generated ones relaxed; the objective
is any registered one (``nonsaturating`` by default).

Starting point: adversarial training of a random generator rarely gets anywhere, so the
generator starts from maximum-likelihood pre-training: ``init`` loads the generator of an
``mle`` run (the same data and generator settings), and ``pretrain_steps`` trains it by MLE
for that many first steps of this run (the discriminator is trained from the first step on
regardless, so it is ready when the adversarial updates begin). ``mle_weight`` > 0 keeps the
MLE term in the generator's loss during adversarial training.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import torch

from ..config import Config
from ..errors import ConfigError
from ..registries import METHODS, OBJECTIVES
from ..train.runtime import Runtime
from ._sequences import ADVERSARIAL_SEQUENCE_CONTRACT, SequenceMethod
from .base import Adversarial, Batch, DataInfo, discriminator_logs
from .mle import sequence_nll

__all__ = ["GumbelGAN", "gumbel_noise", "temperature"]

ObjectiveSpec = OBJECTIVES.spec_type()


def gumbel_noise(u: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel noise -log(-log u) of uniform ``u`` (kept away from 0 and 1)."""
    u = u.clamp(1e-10, 1.0 - 1e-7)
    return -torch.log(-torch.log(u))


def temperature(step: int, tau_start: float, tau_end: float, anneal_steps: int) -> float:
    """tau at ``step``: tau_start * (tau_end / tau_start) ** (min(step, T) / T), T = anneal_steps."""
    frac = min(max(step, 0), anneal_steps) / max(1, anneal_steps)
    return tau_start * (tau_end / tau_start) ** frac


class GumbelGAN(SequenceMethod, Adversarial):
    contract = ADVERSARIAL_SEQUENCE_CONTRACT

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, objective, tau_start: float, tau_end: float,
                 anneal_steps: int, hard: bool, pretrain_steps: int, init: Optional[str], mle_weight: float):
        super().__init__(runtime, info, cfg)
        if not 0 < tau_end <= tau_start:
            raise ConfigError(f"method.tau_start ({tau_start}) and method.tau_end ({tau_end}) must satisfy "
                              "0 < tau_end <= tau_start")
        if pretrain_steps < 0 or anneal_steps < 1 or mle_weight < 0:
            raise ConfigError("method.pretrain_steps and method.mle_weight must not be negative and "
                              f"method.anneal_steps must be positive, got {pretrain_steps}, {mle_weight}, {anneal_steps}")
        self.objective = OBJECTIVES.build_spec(objective, key="method.objective")
        self.tau_start, self.tau_end, self.hard = tau_start, tau_end, hard
        self.pretrain_steps, self.mle_weight = pretrain_steps, mle_weight
        self.anneal_steps = anneal_steps
        self.opt_g, self.opt_d = self.build_sequence_pair(init)
        self.tau = tau_start
        self.step_now = 0

    def gumbel(self, n: int) -> torch.Tensor:
        """Gumbel noise (n, L, V) from the global RNG (this process's share)."""
        return gumbel_noise(self.rt.rand(n, self.info.shape[0], self.generator.vocab))

    def relaxed_fake(self, n: int):
        with self.rt.autocast():
            return self.generator.relaxed(self.gumbel(n), self.tau, self.hard)[0]

    def discriminator_step(self, batch: Batch) -> Dict[str, torch.Tensor]:
        real = batch["x"]
        with torch.no_grad():
            fake = self.relaxed_fake(len(real))
        D = self.discriminator
        with self.rt.autocast():
            d_real, d_fake = D(real), D(fake)
            loss = self.objective.d_loss(d_real, d_fake)
        self.rt.step(loss, self.opt_d, "discriminator")
        return discriminator_logs(self.objective, loss, d_real, d_fake)

    def generator_step(self, batches: List[Batch]) -> Dict[str, torch.Tensor]:
        real = batches[0]["x"]
        if self.step_now < self.pretrain_steps:
            with self.rt.autocast():
                nll = sequence_nll(self.generator, real)
            self.rt.step(nll, self.opt_g, "generator")
            return {"nll": nll.detach()}
        fake = self.relaxed_fake(len(real))
        with self.rt.autocast():
            loss = self.objective.g_loss(self.discriminator(fake))
            logs = {"g_loss": loss.detach()}
            if self.mle_weight > 0:
                nll = sequence_nll(self.generator, real)
                loss = loss + self.mle_weight * nll
                logs["nll"] = nll.detach()
        self.rt.step(loss, self.opt_g, "generator")
        return logs

    def train_step(self, batches: List[Batch], step: int) -> Dict[str, torch.Tensor]:
        self.step_now = step
        self.tau = temperature(step - self.pretrain_steps, self.tau_start, self.tau_end, self.anneal_steps)
        logs = super().train_step(batches, step)
        logs["tau"] = torch.tensor(self.tau)
        return logs


@METHODS.register("gumbel")
def gumbel(runtime, info, cfg, /, objective: ObjectiveSpec = "nonsaturating", tau_start: float = 1.0,
           tau_end: float = 0.1, anneal_steps: int = 2000, hard: bool = False, pretrain_steps: int = 0,
           init: Optional[str] = None, mle_weight: float = 0.0) -> GumbelGAN:
    """Sequence GAN through the Gumbel-softmax relaxation: tau annealed tau_start -> tau_end over
    anneal_steps adversarial steps, hard = straight-through; the generator starts
    from an mle run (init) and/or pretrain_steps of MLE; mle_weight keeps an MLE term."""
    return GumbelGAN(runtime, info, cfg, objective, tau_start, tau_end, anneal_steps, hard, pretrain_steps, init,
                     mle_weight)


gumbel.contract = GumbelGAN.contract
