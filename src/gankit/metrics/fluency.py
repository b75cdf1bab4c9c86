"""Fluency of written text: perplexity under a language model trained on a corpus.

The unsupervised text tasks (style transfer, summarisation) judge whether what a generator
writes reads like the corpus's sentences. The judge is a word-level LSTM language model
(:class:`~gankit.nets.sequence.LSTMGenerator`) trained by maximum likelihood on sentences the
generator did not see (a held-out split, or another corpus), and the score is its perplexity
of the written sentences: exp of the mean per-token negative log-likelihood, each sentence's
end counted. Lower reads more like the corpus; a random sentence of the corpus's own kind is
the reference.

:func:`train_language_model` is deterministic given its seed; :func:`language_model` keeps
the models it trained in this process, so the metrics of several runs on the same data
train one judge.
"""
from __future__ import annotations

import hashlib
import math
from typing import Callable, Dict, Tuple

import torch
from torch import nn

from ..errors import ConfigError
from ..nets.sequence import LSTMGenerator
from .sequences import heldout_nll

__all__ = ["train_language_model", "language_model", "perplexity", "fit_by_likelihood"]

_MODELS: Dict[Tuple, LSTMGenerator] = {}


def train_language_model(x: torch.Tensor, vocab: int, steps: int = 1500, batch: int = 64, seed: int = 0,
                         embed: int = 64, hidden: int = 128, lr: float = 3e-3) -> LSTMGenerator:
    """An LSTM language model of token sequences ``x`` (N, L) over ``vocab`` tokens, trained by
    maximum likelihood for ``steps`` Adam steps of ``batch`` sequences (seeded draws)."""
    x = torch.as_tensor(x).long()
    if x.dim() != 2 or len(x) < 2:
        raise ConfigError(f"a language model needs at least 2 token sequences (N, L), got {tuple(x.shape)}")
    if steps < 1 or batch < 1:
        raise ConfigError(f"language model steps and batch must be positive, got {steps}, {batch}")
    if int(x.min()) < 0 or int(x.max()) >= vocab:
        raise ConfigError(f"token numbers must lie in [0, {vocab}); got {int(x.min())}..{int(x.max())}")

    def nll(lm, idx):
        logp, n = lm.log_prob(x[idx])
        return -logp.sum() / n.sum()

    return fit_by_likelihood(lambda: LSTMGenerator(vocab, x.shape[1], embed, hidden), nll, len(x), steps, batch,
                             seed, lr)


def fit_by_likelihood(make_model: Callable[[], nn.Module], nll: Callable[[nn.Module, torch.Tensor], torch.Tensor],
                      n: int, steps: int, batch: int, seed: int, lr: float) -> nn.Module:
    """A model made by ``make_model`` (its initial weights drawn from ``seed``) trained for
    ``steps`` Adam steps (learning rate ``lr``, gradients clipped to norm 5) on ``nll(model,
    rows)``, the loss of the rows ``rows`` of ``n`` (``batch`` of them, seeded draws with
    replacement); returned in eval mode. Deterministic given its seed; the global random state
    is left as it was."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = nll(model, torch.randint(n, (min(batch, n),), generator=g))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
    return model.eval()


def _fingerprint(x: torch.Tensor) -> str:
    return hashlib.sha1(x.contiguous().numpy().tobytes()).hexdigest()


def language_model(x: torch.Tensor, vocab: int, **settings) -> LSTMGenerator:
    """:func:`train_language_model` of ``x``, trained once per process for the same sequences and settings."""
    x = torch.as_tensor(x).long().cpu()
    key = (_fingerprint(x), tuple(x.shape), vocab, tuple(sorted(settings.items())))
    if key not in _MODELS:
        _MODELS[key] = train_language_model(x, vocab, **settings)
    return _MODELS[key]


def perplexity(lm: LSTMGenerator, x: torch.Tensor) -> float:
    """exp of the mean per-token NLL of token sequences ``x`` (N, L) under ``lm`` (ends counted).
    Sequences longer than the model's length are cut to it; shorter ones are padded with 0."""
    x = torch.as_tensor(x).long().cpu()
    if x.dim() != 2 or not len(x):
        raise ConfigError(f"perplexity reads token sequences (N, L), got {tuple(x.shape)}")
    if x.shape[1] > lm.length:
        x = x[:, :lm.length]
    elif x.shape[1] < lm.length:
        x = torch.cat([x, x.new_zeros(len(x), lm.length - x.shape[1])], 1)
    return math.exp(heldout_nll(lm, x))
