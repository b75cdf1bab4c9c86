"""Sequence-to-sequence parts: an encoder of token sequences and a decoder conditioned on a code.

The lectures' unsupervised text tasks (style transfer, summarisation) read a sentence and
write another. Their generators are built from two parts:

* :class:`SequenceEncoder`: token embeddings and a bidirectional LSTM. It reads token numbers
  (N, L), or distributions over the vocabulary (N, L, V) (a relaxed generated sequence, read
  as its expected embedding, so a code is differentiable in the tokens that made it), and
  returns the hidden state of every position and a code (N, code): the last forward state
  (after a sequence's last token, its first 0 included) beside the first backward state.
  Positions after a sequence's end are left out (packed sequences), so padding never
  changes a code.
* :class:`ConditionalLSTM`: the ``lstm`` generator of :mod:`gankit.nets.sequence` whose first
  state is made from a code (``initial_state``: a linear map and tanh for h, the map's other
  half for c). Every drawing and scoring of a sequence generator takes that state:
  ``G.log_prob(x, state=G.initial_state(code))`` (teacher forcing),
  ``G.complete(None, None, z, state=...)`` (a draw), ``G.relaxed(gumbel, tau, state=...,
  hidden=True)`` (a differentiable draw with the decoder's hidden states, for a
  discriminator that reads them).

A code's length is ``SequenceEncoder.code_dim`` (twice the LSTM's width).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..errors import ConfigError
from .sequence import LSTMGenerator, alive_mask

__all__ = ["SequenceEncoder", "ConditionalLSTM", "sequence_lengths"]


def sequence_lengths(x: torch.Tensor) -> torch.Tensor:
    """The number of positions (N,) an encoder reads of token numbers (N, L): every token up to
    and including the first 0 (all L when there is none); at least 1."""
    return alive_mask(x).sum(1).clamp_min(1)


class SequenceEncoder(nn.Module):
    """Embeddings and a bidirectional LSTM over token sequences (tokens or distributions)."""

    def __init__(self, vocab: int, embed: int = 64, hidden: int = 64, dropout: float = 0.0):
        super().__init__()
        for key, v in (("embed", embed), ("hidden", hidden), ("vocab", vocab)):
            if v < 1:
                raise ConfigError(f"encoder {key} must be positive, got {v}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"encoder dropout must be in [0, 1), got {dropout}")
        self.vocab, self.hidden = vocab, hidden
        self.embed = nn.Embedding(vocab, embed)
        self.drop = nn.Dropout(dropout)
        self.rnn = nn.LSTM(embed, hidden, batch_first=True, bidirectional=True)

    @property
    def code_dim(self) -> int:
        return 2 * self.hidden

    def embed_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings (N, L, embed) of token numbers (N, L) or distributions (N, L, V)."""
        if x.is_floating_point():
            if x.shape[-1] != self.vocab:
                raise ConfigError(f"the encoder reads distributions over {self.vocab} tokens, got the last "
                                  f"dimension {x.shape[-1]}")
            return x.to(self.embed.weight.dtype) @ self.embed.weight
        return self.embed(x)

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """(hidden states (N, L, 2 hidden), zero after a sequence's end; the code (N, 2 hidden)).
        ``lengths``: the positions to read of each sequence (default: up to and including its
        first 0; for distributions, give the lengths of the tokens they stand for)."""
        if lengths is None:
            if x.is_floating_point():
                lengths = sequence_lengths(x.argmax(-1))
            else:
                lengths = sequence_lengths(x)
        lengths = lengths.clamp(1, x.shape[1])
        e = self.drop(self.embed_tokens(x))
        packed = pack_padded_sequence(e, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h, _) = self.rnn(packed)
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        # h: (2, N, hidden): the forward direction's state after the last position read, and the
        # backward direction's after reading back to the first position
        return states, torch.cat([h[0], h[1]], 1)


class ConditionalLSTM(LSTMGenerator):
    """An LSTM decoder whose first state is made from a code (N, code_dim)."""

    def __init__(self, vocab: int, length: int, code_dim: int, embed: int = 64, hidden: int = 64,
                 layers: int = 1):
        for key, v in (("code_dim", code_dim), ("embed", embed), ("hidden", hidden), ("layers", layers)):
            if v < 1:
                raise ConfigError(f"decoder {key} must be positive, got {v}")
        super().__init__(vocab, length, embed, hidden, layers)
        self.code_dim, self.layers, self.width = code_dim, layers, hidden
        self.bridge = nn.Linear(code_dim, 2 * layers * hidden)

    def initial_state(self, code: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The LSTM state (h, c), each (layers, N, hidden), the decoder starts from given ``code``."""
        if code.dim() != 2 or code.shape[1] != self.code_dim:
            raise ConfigError(f"the decoder takes codes (N, {self.code_dim}), got {tuple(code.shape)}")
        hc = self.bridge(code).view(len(code), 2, self.layers, self.width)
        h = torch.tanh(hc[:, 0]).transpose(0, 1).contiguous()
        c = hc[:, 1].transpose(0, 1).contiguous()
        return h, c
