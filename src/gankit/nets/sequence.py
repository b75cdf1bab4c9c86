"""Networks over token sequences: autoregressive generators and a CNN discriminator.

A generator (:class:`SequenceGenerator`: ``lstm``, or ``transformer``, a small causal decoder)
writes a sequence one token at a time, each drawn from p(x_t | x_<t) given the tokens before
it, starting from a start token of its own (not in the vocabulary). Token 0 (``<pad>``) ends a
sequence: after it every token is 0. Its parts:

* ``token_log_probs(x)`` / ``log_prob(x)``: teacher forcing, log p of each token (N, L) and of
  each sequence (N,) counting the tokens up to and including its end (the first 0), the
  maximum-likelihood objective.
* ``forward(z)``: a draw of N sequences. The noise is one standard normal number per position
  (``z_dim`` = L), turned into a uniform u_t = Phi(z_t) that picks token x_t by the inverse of
  the cumulative distribution of p(. | x_<t): a sampled sequence is a function of its noise,
  so a seeded draw repeats, and sharded evaluation works as for any generator.
* ``complete(x, keep, z)``: the same draw with the first ``keep[i]`` tokens of row i held to
  those of ``x``: continuing a given prefix, and the Monte Carlo rollouts from a partial
  sequence that a discriminator of partial sequences (SeqGAN) needs.
* ``relaxed(gumbel, tau, hard)``: a differentiable draw (Gumbel-softmax, Jang et al. 2017):
  y_t = softmax((logits_t + g_t) / tau), y_t's expected embedding fed to the next step;
  ``hard``: the one-hot of argmax y_t forward with y_t's gradient backward (straight-through).

Each of these takes ``state``: the body's state the sequence continues (None: a fresh start).
A decoder conditioned on a code (:mod:`gankit.nets.seq2seq`) passes the state it makes from
the code, so every drawing and scoring above also serves sequence-to-sequence models.

The discriminator ``seq_cnn`` (SeqGAN's): token embeddings, 1-D convolutions of several
widths with ReLU and max-over-time pooling, a highway layer, dropout and one logit (N,).
It reads token numbers (N, L) or distributions over the vocabulary (N, L, V): a one-hot
real sequence or a relaxed generated one, embedded as their expected embedding, so its
score is differentiable in the relaxed tokens. A partial sequence (padded with 0) is a
sequence like any other to it.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..registries import DISCRIMINATORS, GENERATORS

__all__ = ["SequenceGenerator", "LSTMGenerator", "TransformerGenerator", "SequenceCNN", "vocabulary_of",
           "alive_mask", "inverse_cdf"]


def vocabulary_of(info) -> Tuple[int, int]:
    """(vocabulary size, sequence length) of a tokens data set's ``DataInfo``."""
    f = info.fields.get("x") if hasattr(info, "fields") else None
    if f is None or f.kind != "tokens" or not f.classes:
        raise ConfigError("sequence networks need token data with a vocabulary (data.name=poems, quotes, text "
                          "or oracle)")
    return len(f.classes), int(f.shape[0])


def alive_mask(x: torch.Tensor) -> torch.Tensor:
    """(N, L) bool: the positions a sequence's likelihood counts, every token up to and including
    its first 0 (its end)."""
    ended_before = torch.cumsum((x == 0).long(), 1) - (x == 0).long()
    return ended_before == 0


def inverse_cdf(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The token (N,) whose cumulative probability interval under softmax(logits) (N, V) holds u (N,)."""
    cdf = torch.softmax(logits.float(), -1).cumsum(-1)
    idx = torch.searchsorted(cdf, (u.float() * cdf[:, -1]).unsqueeze(1).contiguous()).squeeze(1)
    return idx.clamp_max(logits.shape[-1] - 1)


class SequenceGenerator(nn.Module):
    """An autoregressive generator of token sequences; a subclass gives :meth:`_body`."""

    def __init__(self, vocab: int, length: int, embed: int, hidden: int):
        super().__init__()
        self.vocab, self.length = vocab, length
        self.z_dim = length                       #: one standard normal number per position
        self.embed = nn.Embedding(vocab + 1, embed)   # index `vocab`: the start token
        self.head = nn.Linear(hidden, vocab)
        self.temperature = 1.0

    @property
    def start(self) -> int:
        return self.vocab

    def _body(self, e: torch.Tensor, state):
        """Hidden states (N, T, hidden) for input embeddings ``e`` (N, T, embed) that continue
        ``state`` (None: the sequence starts), and the new state."""
        raise NotImplementedError

    # -------------------------------------------------------------- teacher forcing
    def hidden(self, x: torch.Tensor, state=None) -> torch.Tensor:
        """Hidden states (N, L, hidden) of each position given the true tokens before it."""
        inp = torch.cat([torch.full_like(x[:, :1], self.start), x[:, :-1]], 1)
        return self._body(self.embed(inp), state)[0]

    def logits(self, x: torch.Tensor, state=None) -> torch.Tensor:
        """Logits (N, L, V) of each position given the true tokens before it."""
        return self.head(self.hidden(x, state))

    def token_log_probs(self, x: torch.Tensor, state=None) -> torch.Tensor:
        """log p(x_t | x_<t) of each position (N, L), float32."""
        logp = torch.log_softmax(self.logits(x, state).float(), -1)
        return logp.gather(2, x.unsqueeze(2)).squeeze(2)

    def log_prob(self, x: torch.Tensor, state=None) -> Tuple[torch.Tensor, torch.Tensor]:
        """(log p of each sequence (N,), the number of tokens it counts (N,)): every token up to
        and including the sequence's end."""
        mask = alive_mask(x)
        return (self.token_log_probs(x, state) * mask).sum(1), mask.sum(1)

    # -------------------------------------------------------------- drawing
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """N sequences (N, L) of token numbers for noise ``z`` (N, L)."""
        return self.complete(None, None, z)

    def complete(self, x: Optional[torch.Tensor], keep: Optional[torch.Tensor], z: torch.Tensor,
                 state=None) -> torch.Tensor:
        """Sequences (N, L) whose first ``keep[i]`` tokens are those of ``x[i]`` and the rest drawn
        with noise ``z`` (N, L) (a token after an end is 0)."""
        n = len(z)
        u = torch.special.ndtr(z.float())
        tok = torch.full((n,), self.start, dtype=torch.long, device=z.device)
        ended = torch.zeros(n, dtype=torch.bool, device=z.device)
        out = []
        for t in range(self.length):
            h, state = self._body(self.embed(tok).unsqueeze(1), state)
            logits = self.head(h[:, 0])
            if self.temperature != 1.0:        # (a division by 1 is a full pass over N x V for nothing)
                logits = logits / self.temperature
            drawn = inverse_cdf(logits, u[:, t])
            if x is not None:
                drawn = torch.where(t < keep, x[:, t], drawn)
            tok = torch.where(ended, torch.zeros_like(drawn), drawn)
            ended = ended | (tok == 0)
            out.append(tok)
        return torch.stack(out, 1)

    def relaxed(self, gumbel: torch.Tensor, tau: float, hard: bool = False, state=None, hidden: bool = False):
        """A differentiable draw: (relaxed one-hot sequences (N, L, V), the tokens (N, L) they
        stand for) for Gumbel noise ``gumbel`` (N, L, V) at temperature ``tau``. After a
        sequence's end (its argmax token 0) every position is the one-hot of 0. ``hidden``: also
        return the hidden state of every step (N, L, hidden), as a third element."""
        n = len(gumbel)
        inp = self.embed(torch.full((n,), self.start, dtype=torch.long, device=gumbel.device)).unsqueeze(1)
        table = self.embed.weight[:self.vocab]
        ended = torch.zeros(n, dtype=torch.bool, device=gumbel.device)
        soft, tokens, states = [], [], []
        for t in range(self.length):
            h, state = self._body(inp, state)
            states.append(h[:, 0])
            logits = self.head(h[:, 0])
            if logits.dtype in (torch.float16, torch.bfloat16):
                logits = logits.float()
            y = torch.softmax((logits + gumbel[:, t].to(logits.dtype)) / tau, -1)
            tok = y.argmax(-1)
            pad = F.one_hot(torch.zeros_like(tok), self.vocab).to(y.dtype)
            if hard:
                y = F.one_hot(tok, self.vocab).to(y.dtype) - y.detach() + y
            tok = torch.where(ended, torch.zeros_like(tok), tok)
            y = torch.where(ended.unsqueeze(1), pad, y)
            ended = ended | (tok == 0)
            soft.append(y)
            tokens.append(tok)
            inp = (y.to(table.dtype) @ table).unsqueeze(1)
        if hidden:
            return torch.stack(soft, 1), torch.stack(tokens, 1), torch.stack(states, 1)
        return torch.stack(soft, 1), torch.stack(tokens, 1)


class LSTMGenerator(SequenceGenerator):
    """Token embeddings -> ``layers`` LSTM layers -> logits over the vocabulary."""

    def __init__(self, vocab: int, length: int, embed: int = 32, hidden: int = 32, layers: int = 1):
        super().__init__(vocab, length, embed, hidden)
        self.rnn = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)

    def _body(self, e, state):
        return self.rnn(e, state)


class TransformerGenerator(SequenceGenerator):
    """A small causal Transformer decoder (pre-norm blocks, learned positions); its state is the
    inputs seen so far, each step reads them all again (sequences are short)."""

    def __init__(self, vocab: int, length: int, embed: int = 64, heads: int = 4, layers: int = 2,
                 dropout: float = 0.0):
        super().__init__(vocab, length, embed, embed)
        self.pos = nn.Parameter(torch.randn(length, embed) * 0.02)
        block = nn.TransformerEncoderLayer(embed, heads, 4 * embed, dropout, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(embed)

    def _body(self, e, state):
        seen = e if state is None else torch.cat([state, e], 1)
        T = seen.shape[1]
        causal = torch.triu(torch.full((T, T), float("-inf"), device=e.device), 1)
        h = self.norm(self.blocks(seen + self.pos[:T], mask=causal, is_causal=True))
        return h[:, T - e.shape[1]:], seen


class SequenceCNN(nn.Module):
    """SeqGAN's discriminator: embeddings, convolutions of several widths with max-over-time
    pooling, a highway layer, dropout, one logit per sequence."""

    def __init__(self, vocab: int, length: int, embed: int = 64, widths: List[int] = (2, 3, 4, 5),
                 filters: int = 64, dropout: float = 0.25):
        super().__init__()
        widths = [w for w in widths if w <= length] or [length]
        self.vocab = vocab
        self.embed = nn.Parameter(torch.randn(vocab, embed) * 0.1)
        self.convs = nn.ModuleList(nn.Conv1d(embed, filters, w) for w in widths)
        width = filters * len(widths)
        self.highway = nn.Linear(width, 2 * width)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(width, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled and highway features (N, filters * widths) of token numbers (N, L) or
        distributions over the vocabulary (N, L, V)."""
        e = F.embedding(x, self.embed) if not x.is_floating_point() else x.to(self.embed.dtype) @ self.embed
        e = e.transpose(1, 2)
        pooled = torch.cat([torch.relu(conv(e)).amax(2) for conv in self.convs], 1)
        h, gate = self.highway(pooled).chunk(2, 1)
        g = torch.sigmoid(gate)
        return g * torch.relu(h) + (1 - g) * pooled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One logit per sequence (N,)."""
        return self.out(self.drop(self.features(x))).squeeze(1)


def _check(**values) -> None:
    for key, v in values.items():
        if v < 1:
            raise ConfigError(f"{key} must be positive, got {v}")


@GENERATORS.register("lstm")
def lstm_generator(info, /, embed: int = 32, hidden: int = 32, layers: int = 1) -> LSTMGenerator:
    """Autoregressive LSTM over tokens (SeqGAN's generator: embedding 32, hidden 32)."""
    _check(embed=embed, hidden=hidden, layers=layers)
    vocab, length = vocabulary_of(info)
    return LSTMGenerator(vocab, length, embed, hidden, layers)


@GENERATORS.register("transformer")
def transformer_generator(info, /, embed: int = 64, heads: int = 4, layers: int = 2,
                          dropout: float = 0.0) -> TransformerGenerator:
    """A small causal Transformer decoder over tokens (embed must be a multiple of heads)."""
    _check(embed=embed, heads=heads, layers=layers)
    if embed % heads:
        raise ConfigError(f"generator.embed ({embed}) must be a multiple of generator.heads ({heads})")
    vocab, length = vocabulary_of(info)
    return TransformerGenerator(vocab, length, embed, heads, layers, dropout)


@DISCRIMINATORS.register("seq_cnn")
def seq_cnn(info, /, embed: int = 64, widths: List[int] = [2, 3, 4, 5], filters: int = 64,
            dropout: float = 0.25) -> SequenceCNN:
    """SeqGAN's CNN over token embeddings (reads tokens or relaxed one-hot sequences)."""
    _check(embed=embed, filters=filters)
    if not widths or any(w < 1 for w in widths):
        raise ConfigError(f"discriminator.widths must be positive convolution widths, got {widths}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"discriminator.dropout must be in [0, 1), got {dropout}")
    vocab, length = vocabulary_of(info)
    return SequenceCNN(vocab, length, embed, list(widths), filters, dropout)
