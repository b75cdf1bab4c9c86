"""Maximum-likelihood training of a sequence generator (teacher forcing).

The baseline of "Improving Sequence Generation by GAN": the generator reads the true tokens
x_<t and learns p(x_t | x_<t) by minimising the negative log-likelihood of the training
sequences, -(1 / T) sum_i sum_t log p(x_i,t | x_i,<t), T the number of tokens counted (each
sequence's tokens up to and including its end, the first padding token). It is also the
pre-training every adversarial sequence method starts from (``gumbel``'s ``init``).

What it logs: ``nll``, the mean per-token NLL of the batch in nats. Samples are drawn token by
token from the learned distribution (the moving average when ``train.ema_decay`` > 0);
evaluation adds the NLL of the held-out split (``nll_test``), BLEU against it, self-BLEU and,
on the ``oracle`` data, the oracle's NLL of the samples (``nll_oracle``).
"""
from __future__ import annotations

from typing import Dict, List

import torch

from ..config import Config
from ..registries import METHODS
from ..train.runtime import Runtime
from ._sequences import SEQUENCE_METRICS, SequenceMethod
from .base import Batch, Contract, DataInfo

__all__ = ["MLE", "sequence_nll"]


def sequence_nll(G, x: torch.Tensor) -> torch.Tensor:
    """The mean per-token negative log-likelihood of token sequences ``x`` under ``G``."""
    logp, count = G.log_prob(x)
    return -logp.sum() / count.sum().clamp_min(1)


class MLE(SequenceMethod):
    contract = Contract(roles={"generator": "generator"}, auto={"generator": "lstm"}, metrics=SEQUENCE_METRICS,
                        optim={"lr_g": 1e-2}, data_kinds=("tokens",))

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config):
        super().__init__(runtime, info, cfg)
        self.add_module("generator", self.build_sequence_generator())
        self.opt = self.add_optimizer("generator", self.generator.parameters())
        self.enable_ema()

    def train_step(self, batches: List[Batch], step: int) -> Dict[str, torch.Tensor]:
        with self.rt.autocast():
            loss = sequence_nll(self.generator, batches[0]["x"])
        self.rt.step(loss, self.opt, "generator")
        self.update_ema()
        self.step_schedulers()
        return {"nll": loss.detach()}


@METHODS.register("mle")
def mle(runtime, info, cfg, /) -> MLE:
    """Maximum-likelihood (teacher-forcing) training of a sequence generator on token data."""
    return MLE(runtime, info, cfg)


mle.contract = MLE.contract
