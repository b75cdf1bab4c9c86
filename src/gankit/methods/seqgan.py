"""SeqGAN (Yu et al. 2017): the discriminator as the reward of a policy-gradient generator.

"Improving Sequence Generation by GAN": the generator's tokens are drawn, so the
discriminator's score has no gradient with respect to the generator's parameters; treat the
generator as a policy and the score as its reward, and follow the policy gradient
(REINFORCE). A sequence's score only comes at its end, so each token gets its own reward, the
expected final score given the tokens so far, in one of two ways (``reward``):

* ``rollout`` (the paper's Monte Carlo search): for each prefix x_1..t of a generated sequence
  the generator completes it ``rollouts`` times; Q_t is the mean of D's probability that the
  completions are real (Q_L = D's probability of the sequence itself). Every completion of
  every prefix of the batch is drawn in one batched call of the generator
  (``SequenceGenerator.complete`` with a per-row number of kept tokens).
* ``prefix`` (the lectures' other answer: a discriminator that evaluates partial sequences):
  D is trained on prefixes, real and generated sequences cut at the same random length (the
  rest padded with the end token 0, as a short sequence is), and Q_t is D's probability of
  the prefix x_1..t itself: one pass of D over L prefixes instead of L x rollouts completions.

The generator minimises -sum_t log p(x_t | x_<t) (Q_t - b) over each sequence's tokens up to
its end, divided by their number, with b a moving average of the rewards (``baseline``
decay; REINFORCE with a baseline, kept in the checkpoint: ``_sequences.Reinforce``, which
``pg`` shares). The discriminator learns
real against generated sequences with the standard GAN loss, ``d_steps`` real batches per
iteration (the paper trains D much more than G). The generator starts from maximum-likelihood
pre-training: ``init`` (an ``mle`` run) and/or ``pretrain_steps`` of MLE in this run (D
trains from the first step, so it is ready when the adversarial updates start);
``mle_weight`` keeps the MLE term beside the policy gradient.
"""
from __future__ import annotations

from typing import Dict, List, Literal, Optional

import torch
import torch.nn.functional as F

from ..config import Config
from ..errors import ConfigError
from ..registries import METHODS
from ..train.runtime import Runtime
from ._sequences import ADVERSARIAL_SEQUENCE_CONTRACT, Reinforce, policy_gradient_loss
from .base import Adversarial, Batch, DataInfo, check_positive
from .mle import sequence_nll

__all__ = ["SeqGAN", "policy_gradient_loss", "cut_prefixes"]


def cut_prefixes(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Row i of ``x`` (N, L) with the tokens after the first ``keep[i]`` replaced by the end token 0."""
    pos = torch.arange(x.shape[1], device=x.device)
    return torch.where(pos.unsqueeze(0) < keep.unsqueeze(1), x, torch.zeros_like(x))


class SeqGAN(Reinforce, Adversarial):
    contract = ADVERSARIAL_SEQUENCE_CONTRACT

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, reward: str, rollouts: int, d_steps: int,
                 baseline: float, pretrain_steps: int, init: Optional[str], mle_weight: float):
        super().__init__(runtime, info, cfg)
        check_positive("method.rollouts", rollouts)
        check_positive("method.d_steps", d_steps)
        if pretrain_steps < 0 or mle_weight < 0:
            raise ConfigError(f"method.pretrain_steps and method.mle_weight must not be negative, got "
                              f"{pretrain_steps} and {mle_weight}")
        self.reward, self.rollouts = reward, rollouts
        self.pretrain_steps = pretrain_steps
        self.d_steps = self.real_batches_per_step = d_steps
        self.opt_g, self.opt_d = self.build_sequence_pair(init)
        self.enable_ema()
        self.setup_policy(baseline, mle_weight)
        self.step_now = 0

    # ------------------------------------------------------------------ rewards
    def probability_real(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), self.rt.autocast():
            return torch.sigmoid(self.discriminator(x).float())

    def token_rewards(self, x: torch.Tensor) -> torch.Tensor:
        """Q_t (N, L): the expected probability that the sequence is real given x_1..t."""
        n, length = x.shape
        keep = torch.arange(1, length + 1, device=x.device)
        if self.reward == "prefix":
            cut = cut_prefixes(x.repeat_interleave(length, 0), keep.repeat(n))
            return self.probability_real(cut).view(n, length)
        q = torch.empty(n, length, dtype=torch.float32, device=x.device)
        q[:, -1] = self.probability_real(x)
        rows = x.repeat_interleave(length - 1, 0)                 # row i * (L-1) + t: prefix of t + 1 tokens
        kept = keep[:-1].repeat(n)
        total = torch.zeros(n * (length - 1), dtype=torch.float32, device=x.device)
        G = self.generator
        for _ in range(self.rollouts):   # one batched completion of every prefix per rollout
            with torch.no_grad(), self.rt.autocast():
                done = G.complete(rows, kept, self.rt.randn(len(rows), length))
            total += self.probability_real(done)
        q[:, :-1] = (total / self.rollouts).view(n, length - 1)
        return q

    # ------------------------------------------------------------------ updates
    def discriminator_step(self, batch: Batch) -> Dict[str, torch.Tensor]:
        real = batch["x"]
        fake = self.draw(len(real))
        if self.reward == "prefix":   # D learns to judge partial sequences: both cut at one random length
            keep = torch.randint(1, real.shape[1] + 1, (len(real),)).to(real.device)
            real, fake = cut_prefixes(real, keep), cut_prefixes(fake, keep)
        with self.rt.autocast():
            d_real, d_fake = self.discriminator(real).float(), self.discriminator(fake).float()
            loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                    + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        self.rt.step(loss, self.opt_d, "discriminator")
        return {"d_loss": loss.detach(), "d_real": torch.sigmoid(d_real.detach()).mean(),
                "d_fake": torch.sigmoid(d_fake.detach()).mean()}

    def generator_step(self, batches: List[Batch]) -> Dict[str, torch.Tensor]:
        real = batches[0]["x"]
        G = self.generator
        if self.step_now < self.pretrain_steps:
            with self.rt.autocast():
                nll = sequence_nll(G, real)
            self.rt.step(nll, self.opt_g, "generator")
            return {"nll": nll.detach()}
        x = self.draw(len(real))
        return self.reinforce_step(x, self.token_rewards(x), real)

    def train_step(self, batches: List[Batch], step: int) -> Dict[str, torch.Tensor]:
        self.step_now = step
        return super().train_step(batches, step)


@METHODS.register("seqgan")
def seqgan(runtime, info, cfg, /, reward: Literal["rollout", "prefix"] = "rollout", rollouts: int = 16,
           d_steps: int = 3, baseline: float = 0.9, pretrain_steps: int = 0, init: Optional[str] = None,
           mle_weight: float = 0.0) -> SeqGAN:
    """SeqGAN: policy gradient with D's probability as the reward; per-token rewards by Monte
    Carlo rollouts (reward=rollout, rollouts completions of every prefix) or by a D trained on
    prefixes (reward=prefix); d_steps real batches of D per iteration; baseline = decay of the
    reward's moving average; the generator starts from an mle run (init) and/or
    pretrain_steps of MLE; mle_weight keeps an MLE term."""
    return SeqGAN(runtime, info, cfg, reward, rollouts, d_steps, baseline, pretrain_steps, init, mle_weight)


seqgan.contract = SeqGAN.contract
