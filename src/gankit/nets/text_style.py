"""Networks of text style transfer through a common space (Shen et al. 2017, cross-alignment).

* ``style_seq2seq`` (generator role): one module holding the encoder E(x, s) -> content code
  and the decoder G(code, s). E reads a sentence with :class:`~gankit.nets.seq2seq.SequenceEncoder`
  (a bidirectional LSTM; its code the last states of both directions) and maps that code,
  beside an embedding of the sentence's style s, through a linear layer and tanh to the
  content code c (``content`` numbers): the style is given, so c need not carry it. The
  decoder is a :class:`~gankit.nets.seq2seq.ConditionalLSTM` whose first state is made from
  [c, the embedding of the style to write in] (``style`` numbers), so the same content
  decodes into either style. ``z_dim`` is the sentence length (one standard normal number a
  position), the noise of a drawn (not greedy) decoding.
* ``state_cnn`` (discriminator roles): Shen et al.'s discriminator, a CNN over a sequence of
  the decoder's hidden states (N, L, H) rather than over words: convolutions of several widths
  along the sentence with ReLU and max-over-time pooling, dropout, one logit (N,). It reads
  every position: after a sentence's end a decoder goes on reading the padding token.
"""
from __future__ import annotations

from typing import List

import torch
from torch import nn

from ..errors import ConfigError
from ..registries import DISCRIMINATORS, GENERATORS
from .seq2seq import ConditionalLSTM, SequenceEncoder
from .sequence import vocabulary_of

__all__ = ["StyleSeq2Seq", "StateCNN"]


class StyleSeq2Seq(nn.Module):
    """E(x, s) -> content code, G(code, s) -> a sentence; see the module."""

    def __init__(self, vocab: int, length: int, styles: int, embed: int = 64, encoder: int = 64,
                 content: int = 128, style: int = 32, hidden: int = 128, dropout: float = 0.0):
        super().__init__()
        self.vocab, self.length, self.styles = vocab, length, styles
        self.z_dim = length
        self.encoder = SequenceEncoder(vocab, embed, encoder, dropout)
        self.style_in = nn.Embedding(styles, style)
        self.to_content = nn.Linear(self.encoder.code_dim + style, content)
        self.style_out = nn.Embedding(styles, style)
        self.decoder = ConditionalLSTM(vocab, length, content + style, embed, hidden)
        self.content_dim, self.hidden_dim = content, hidden

    def content(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """The content code (N, content) of sentences ``x`` (token numbers (N, L) or distributions
        (N, L, V)) written in styles ``style`` (N,)."""
        _, code = self.encoder(x)
        return torch.tanh(self.to_content(torch.cat([code, self.style_in(style).to(code.dtype)], 1)))

    def state(self, content: torch.Tensor, style: torch.Tensor):
        """The decoder's first state for writing ``content`` in styles ``style``."""
        return self.decoder.initial_state(torch.cat([content, self.style_out(style).to(content.dtype)], 1))

    def teacher_forced(self, x: torch.Tensor, state) -> torch.Tensor:
        """The decoder's hidden states (N, L, H) reading the true tokens of ``x`` from ``state``."""
        return self.decoder.hidden(x, state)

    def greedy(self, state) -> torch.Tensor:
        """The most probable token at each step, fed back (N, L) (0 after the end)."""
        h = state[0]
        zeros = torch.zeros(h.shape[1], self.length, self.vocab, device=h.device)
        return self.decoder.relaxed(zeros, 1.0, hard=True, state=state)[1]

    def forward(self, x: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Sentences ``x`` of styles ``source`` rewritten in styles ``target``, greedily (N, L)."""
        return self.greedy(self.state(self.content(x, source), target))


class StateCNN(nn.Module):
    """A CNN over hidden-state sequences (N, L, H) -> one logit (N,)."""

    def __init__(self, width: int, length: int, widths: List[int] = (1, 2, 3, 4, 5), filters: int = 64,
                 dropout: float = 0.5):
        super().__init__()
        widths = [w for w in widths if w <= length] or [length]
        self.width = width
        self.convs = nn.ModuleList(nn.Conv1d(width, filters, w) for w in widths)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(filters * len(widths), 1)

    def features(self, h: torch.Tensor) -> torch.Tensor:
        """Max-over-time pooled features (N, filters * widths)."""
        if h.dim() != 3 or h.shape[-1] != self.width:
            raise ConfigError(f"state_cnn reads hidden states (N, L, {self.width}), got {tuple(h.shape)}")
        e = h.transpose(1, 2)
        return torch.cat([torch.relu(conv(e)).amax(2) for conv in self.convs], 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.features(h))).squeeze(1)


def _positive(**values) -> None:
    for key, v in values.items():
        if v < 1:
            raise ConfigError(f"{key} must be positive, got {v}")


def _styles(info) -> int:
    f = info.fields.get("domain") if hasattr(info, "fields") else None
    if f is None or f.kind != "label" or f.n_classes < 2:
        raise ConfigError("style_seq2seq writes sentences in styles: it needs token data with a label field "
                          "'domain' of at least 2 styles (data.name=sentiment)")
    return f.n_classes


@GENERATORS.register("style_seq2seq")
def style_seq2seq(info, /, embed: int = 64, encoder: int = 64, content: int = 128, style: int = 32,
                  hidden: int = 128, dropout: float = 0.0) -> StyleSeq2Seq:
    """Text style transfer's encoder E(x, style) -> content code (a bidirectional LSTM of
    `encoder` units a direction, then [code, style embedding] -> content) and decoder (an LSTM of
    `hidden` units started from [content, target style embedding]); token data with styles."""
    _positive(**{"generator.embed": embed, "generator.encoder": encoder, "generator.content": content,
                 "generator.style": style, "generator.hidden": hidden})
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"generator.dropout must be in [0, 1), got {dropout}")
    vocab, length = vocabulary_of(info)
    return StyleSeq2Seq(vocab, length, _styles(info), embed, encoder, content, style, hidden, dropout)


@DISCRIMINATORS.register("state_cnn")
def state_cnn(info, /, widths: List[int] = [1, 2, 3, 4, 5], filters: int = 64, dropout: float = 0.5) -> StateCNN:
    """Shen et al.'s discriminator of a decoder's hidden-state sequences (info's x: (L, H)):
    convolutions of the given widths, max-over-time pooling, dropout, one logit."""
    shape = tuple(info.shape) if hasattr(info, "shape") else tuple(info)
    if len(shape) != 2:
        raise ConfigError("state_cnn judges sequences of hidden states (the text_style method builds it); "
                          f"it cannot read samples of shape {shape}")
    _positive(**{"discriminator.filters": filters})
    if not widths or any(w < 1 for w in widths):
        raise ConfigError(f"discriminator.widths must be positive convolution widths, got {widths}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"discriminator.dropout must be in [0, 1), got {dropout}")
    return StateCNN(int(shape[1]), int(shape[0]), list(widths), filters, dropout)
