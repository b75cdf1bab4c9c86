"""Continuous input for the discriminator: the generator's word distributions, not its words.

"Improving Sequence Generation by GAN" lists a third way around the tokens a generator
draws (beside the Gumbel-softmax relaxation and reinforcement learning): give the
discriminator the generator's output distributions themselves. At each step the generator's
softmax p_t = softmax(logits_t / tau) over the vocabulary is the output (no draw: the next
step is fed p_t's expected embedding, ``SequenceGenerator.relaxed`` with zero noise; with
``noise`` the Gumbel-softmax draw of ``gumbel``), and the discriminator (``seq_cnn``, which
reads distributions over the vocabulary) judges these soft sequences against the real ones,
one-hot vectors. Everything is differentiable, so the generator follows D's gradient.

The lecture's warning: a real sequence is one-hot and a generated one is not, so a
discriminator can tell them apart by that alone, without looking at what is written; the
generator is then only pushed to make its distributions peaked. Which critic (``critic``):

* ``bce``: a standard, unconstrained discriminator (binary cross-entropy on its logit) and
  the non-saturating generator loss -log sigmoid(D(G)). It separates one-hot from soft
  within a few updates (``d_acc`` -> 1) and its verdict says nothing about content.
* ``wgan_gp`` (default): a Wasserstein critic with the gradient penalty (Gulrajani et al.):
  E[D(soft)] - E[D(one-hot)] + ``gp_weight`` E[(||grad D(x_hat)|| - 1)^2] on interpolates
  x_hat between a real one-hot sequence and a generated soft one (every position and word at
  once); the generator minimises -E[D(soft)]. A critic held near 1-Lipschitz cannot turn the
  one-hot/soft difference into an arbitrarily large score, so its gradient keeps a scale.

Each discriminator update uses one real batch (``d_steps`` per generator update). The
generator starts from an ``mle`` run (``init``); ``mle_weight`` keeps the maximum-likelihood
term. What it logs: ``d_loss``, ``d_real``/``d_fake`` (D's mean output, a probability for
``bce``), ``d_acc`` (D's accuracy, real vs generated, on the last update's batch: at logit 0
for ``bce``, at the midpoint of the two mean scores for ``wgan_gp``, whose scores have no
zero), ``w_dist`` (``wgan_gp``: the critic's estimate of the distance), ``g_loss``,
``g_grad`` (the norm of the generator's gradient), and how soft G's outputs are:
``max_prob`` (the mean largest probability over the positions before each sequence's end: 1
for one-hot) and ``entropy`` (their mean entropy in nats: 0 for one-hot). Samples are drawn
token by token from those distributions, as with every sequence method.
"""
from __future__ import annotations

from typing import Dict, List, Literal, Optional

import torch
import torch.nn.functional as F

from ..config import Config
from ..errors import ConfigError
from ..nets.sequence import alive_mask
from ..objectives.penalties import gradient_penalty
from ..registries import METHODS
from ..train.runtime import Runtime
from ._sequences import ADVERSARIAL_SEQUENCE_CONTRACT, SequenceMethod
from .base import Adversarial, Batch, DataInfo, check_positive
from .gumbel import gumbel_noise
from .mle import sequence_nll

__all__ = ["SoftD", "softness", "critic_accuracy", "sequence_gradient_penalty"]


@torch.no_grad()
def softness(soft: torch.Tensor, tokens: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Mean largest probability and mean entropy (nats) of distributions ``soft`` (N, L, V) over
    the positions each sequence counts (up to and including its end, from ``tokens``)."""
    p = soft.float()
    mask = alive_mask(tokens).float()
    count = mask.sum().clamp_min(1)
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum(-1)
    return {"max_prob": (p.amax(-1) * mask).sum() / count, "entropy": (entropy * mask).sum() / count}


@torch.no_grad()
def critic_accuracy(d_real: torch.Tensor, d_fake: torch.Tensor, threshold: Optional[float] = None) -> torch.Tensor:
    """The share of real scores above and generated scores below ``threshold`` (default: the
    midpoint of the two means), each side weighted one half."""
    d_real, d_fake = d_real.float(), d_fake.float()
    t = 0.5 * (d_real.mean() + d_fake.mean()) if threshold is None else threshold
    return 0.5 * ((d_real > t).float().mean() + (d_fake < t).float().mean())


def sequence_gradient_penalty(D, real: torch.Tensor, fake: torch.Tensor, weight: float) -> torch.Tensor:
    """WGAN-GP's penalty for a critic of whole sequences of distributions (N, L, V): the norm of
    the gradient with respect to all L x V numbers of an interpolate at once."""
    shape = real.shape[1:]
    return gradient_penalty(lambda f: D(f.view(-1, *shape)), real.flatten(1), fake.flatten(1), weight)


class SoftD(SequenceMethod, Adversarial):
    contract = ADVERSARIAL_SEQUENCE_CONTRACT

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, critic: str, gp_weight: float, d_steps: int,
                 tau: float, noise: bool, init: Optional[str], mle_weight: float):
        super().__init__(runtime, info, cfg)
        check_positive("method.d_steps", d_steps)
        if tau <= 0 or gp_weight < 0 or mle_weight < 0:
            raise ConfigError(f"method.tau must be positive and method.gp_weight and method.mle_weight not "
                              f"negative, got {tau}, {gp_weight} and {mle_weight}")
        self.critic_name, self.gp_weight, self.tau, self.with_noise = critic, gp_weight, tau, noise
        self.mle_weight = mle_weight
        self.d_steps = self.real_batches_per_step = d_steps
        self.opt_g, self.opt_d = self.build_sequence_pair(init)

    def soft_fake(self, n: int):
        """(the generator's distributions (n, L, V), the tokens they stand for (n, L)), with a
        graph to the generator's parameters."""
        shape = (n, self.info.shape[0], self.generator.vocab)
        g = gumbel_noise(self.rt.rand(*shape)) if self.with_noise else torch.zeros(shape, device=self.rt.device)
        with self.rt.autocast():
            return self.generator.relaxed(g, self.tau)

    def one_hot(self, x: torch.Tensor) -> torch.Tensor:
        return F.one_hot(x, self.generator.vocab).float()

    def discriminator_step(self, batch: Batch) -> Dict[str, torch.Tensor]:
        real = self.one_hot(batch["x"])
        with torch.no_grad():
            fake = self.soft_fake(len(real))[0].float()
        D = self.discriminator
        with self.rt.autocast():
            d_real, d_fake = D(real).float(), D(fake).float()
        logs = {}
        if self.critic_name == "bce":
            loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                    + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
            logs.update(d_real=torch.sigmoid(d_real.detach()).mean(), d_fake=torch.sigmoid(d_fake.detach()).mean(),
                        d_acc=critic_accuracy(d_real, d_fake, 0.0))
        else:
            distance = d_real.mean() - d_fake.mean()
            gp = (sequence_gradient_penalty(D, real, fake, self.gp_weight) if self.gp_weight > 0
                  else torch.zeros((), device=d_real.device))
            loss = -distance + gp
            logs.update(d_real=d_real.detach().mean(), d_fake=d_fake.detach().mean(),
                        d_acc=critic_accuracy(d_real, d_fake), w_dist=distance.detach(), gp=gp.detach())
        self.rt.step(loss, self.opt_d, "discriminator")
        logs["d_loss"] = loss.detach()
        return logs

    def generator_step(self, batches: List[Batch]) -> Dict[str, torch.Tensor]:
        soft, tokens = self.soft_fake(len(batches[0]["x"]))
        with self.rt.autocast():
            d_fake = self.discriminator(soft).float()
            loss = F.softplus(-d_fake).mean() if self.critic_name == "bce" else -d_fake.mean()
            logs = {"g_loss": loss.detach()}
            if self.mle_weight > 0:
                nll = sequence_nll(self.generator, batches[0]["x"])
                loss = loss + self.mle_weight * nll
                logs["nll"] = nll.detach()
        self.rt.step(loss, self.opt_g, "generator")
        grads = [p.grad.float().pow(2).sum() for p in self.generator.parameters() if p.grad is not None]
        logs["g_grad"] = torch.stack(grads).sum().sqrt() if grads else torch.zeros(())
        logs.update(softness(soft.detach(), tokens))
        return logs


@METHODS.register("soft_d")
def soft_d(runtime, info, cfg, /, critic: Literal["wgan_gp", "bce"] = "wgan_gp", gp_weight: float = 10.0,
           d_steps: int = 3, tau: float = 1.0, noise: bool = False, init: Optional[str] = None,
           mle_weight: float = 0.0) -> SoftD:
    """Continuous input for the discriminator: G's per-step softmax distributions (expected
    embedding fed back; noise = Gumbel-softmax draws) judged against one-hot real sequences by a
    wgan_gp critic (gradient penalty on one-hot/soft interpolates) or a plain bce discriminator;
    d_steps real batches of D per update of G; the generator starts from an mle run (init)."""
    return SoftD(runtime, info, cfg, critic, gp_weight, d_steps, tau, noise, init, mle_weight)


soft_d.contract = SoftD.contract
