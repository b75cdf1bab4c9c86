"""A sequence-to-sequence network: read a token sequence, write another (summariser, reconstructor).

The ``encoder_decoder`` generator is a :class:`~gankit.nets.seq2seq.SequenceEncoder` (a
bidirectional LSTM over tokens, or over distributions over the vocabulary) whose code starts
a :class:`~gankit.nets.seq2seq.ConditionalLSTM` that writes ``length`` tokens (the length of
the ``x`` field of the ``DataInfo`` it is built for). Method ``summarize`` builds two of
them: the generator writes a summary of a document, the reconstructor writes the document
back from the summary.

With ``copy`` the decoder may also copy words of its (token) source, a pointer-generator
(See et al. 2017; the summariser of the lecture's unsupervised summarisation is one): at
step t an attention a_t over the encoder's states (bilinear scores, the source's padding
left out), a gate p_gen = sigmoid(w . [h_t, context_t]), and

    p(w) = p_gen * softmax(head(h_t))_w + (1 - p_gen) * sum_{i: source_i = w} a_t,i.

A freshly initialised generator then already writes words of its document, so a
reconstructor has something to read from the start; without it the first summaries hardly
depend on the document and the reconstructor learns to ignore them.

* ``token_log_probs(source, target)`` / ``log_prob`` / ``nll``: teacher forcing (each
  target's end counted); ``nll`` takes ``word_dropout`` (words fed to the decoder replaced
  by ``<unk>``, Bowman et al. 2016);
* ``forward(source, z)``: a draw, one standard normal number per written position (the
  inverse-CDF draw of :class:`~gankit.nets.sequence.SequenceGenerator`);
* ``greedy(source)``: the most likely token at each step (sampling a summary);
* ``relaxed(source, gumbel, tau, hard)``: the Gumbel-softmax draw, differentiable in the
  network's parameters (the relaxed one-hot rows (N, length, V) and the tokens).

The source's lengths default to the encoder's (up to and including its first 0); a relaxed
source (distributions) should be read with the lengths of the tokens it stands for.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..registries import GENERATORS
from .seq2seq import ConditionalLSTM, SequenceEncoder, sequence_lengths
from .sequence import alive_mask, inverse_cdf, vocabulary_of

__all__ = ["EncoderDecoder"]


class EncoderDecoder(nn.Module):
    """A sequence encoder and a decoder started from its code (optionally copying source words)."""

    def __init__(self, vocab: int, length: int, embed: int = 64, hidden: int = 128, dropout: float = 0.0,
                 copy: bool = False):
        super().__init__()
        self.encoder = SequenceEncoder(vocab, embed, hidden, dropout)
        self.decoder = ConditionalLSTM(vocab, length, self.encoder.code_dim, embed, hidden)
        self.vocab, self.length, self.copy = vocab, length, bool(copy)
        self.z_dim = length                  #: one standard normal number per written position
        if self.copy:
            self.attend = nn.Linear(hidden, self.encoder.code_dim, bias=False)
            self.gate = nn.Linear(hidden + self.encoder.code_dim, 1)

    # ------------------------------------------------------------------ reading the source
    def read(self, source: torch.Tensor, lengths: Optional[torch.Tensor] = None):
        """(the decoder's first state, the encoder's states, which of them to attend to, the
        source's tokens) for ``source`` (tokens (N, S) or distributions (N, S, V))."""
        if lengths is None:
            lengths = sequence_lengths(source.argmax(-1) if source.is_floating_point() else source)
        states, code = self.encoder(source, lengths)
        if self.copy and source.is_floating_point():
            raise ConfigError("a copying decoder copies words of a token source; give token numbers")
        seen = torch.arange(source.shape[1], device=source.device)[None, :] < lengths.to(source.device)[:, None]
        return self.decoder.initial_state(code), states, seen, source

    def state(self, source: torch.Tensor, lengths: Optional[torch.Tensor] = None):
        """The decoder's first state for ``source``."""
        return self.read(source, lengths)[0]

    def _log_p(self, h: torch.Tensor, ctx) -> torch.Tensor:
        """log p(. | h) over the vocabulary for decoder hidden states h (..., hidden), float32."""
        logits = self.decoder.head(h).float()
        if not self.copy:
            return torch.log_softmax(logits, -1)
        _, states, seen, source = ctx
        squeeze = h.dim() == 2
        if squeeze:
            h = h.unsqueeze(1)
        score = torch.einsum("nth,nsh->nts", self.attend(h), states).float()
        score = score.masked_fill(~seen[:, None, :], float("-inf"))
        a = torch.softmax(score, -1)                                   # (N, T, S)
        context = torch.einsum("nts,nsh->nth", a.to(states.dtype), states)
        p_gen = torch.sigmoid(self.gate(torch.cat([h, context], -1)).float())
        copied = torch.zeros(*a.shape[:2], self.vocab, device=a.device, dtype=a.dtype)
        copied = copied.scatter_add(2, source[:, None, :].expand(-1, a.shape[1], -1), a)
        p = p_gen * torch.softmax(logits if not squeeze else logits.unsqueeze(1), -1) + (1 - p_gen) * copied
        logp = torch.log(p.clamp_min(1e-12))
        return logp[:, 0] if squeeze else logp

    # ------------------------------------------------------------------ teacher forcing
    def token_log_probs(self, source: torch.Tensor, target: torch.Tensor, lengths=None, fed=None) -> torch.Tensor:
        """log p(target_t | target_<t, source) of each position (N, length); ``fed``: the tokens
        the decoder is fed in place of the target's own (word dropout)."""
        ctx = self.read(source, lengths)
        h = self.decoder.hidden(target if fed is None else fed, ctx[0])
        return self._log_p(h, ctx).gather(2, target.unsqueeze(2)).squeeze(2)

    def log_prob(self, source: torch.Tensor, target: torch.Tensor, lengths=None):
        """(log p of each target (N,), the number of tokens counted (N,)), given each source."""
        mask = alive_mask(target)
        return (self.token_log_probs(source, target, lengths) * mask).sum(1), mask.sum(1)

    def nll(self, source: torch.Tensor, target: torch.Tensor, lengths=None, word_dropout: float = 0.0,
            generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """The mean per-token negative log-likelihood of the targets given the sources. With
        ``word_dropout`` p > 0 each word the decoder is fed (teacher forcing) is replaced by
        ``<unk>`` (token 1) with probability p, the targets left whole (Bowman et al. 2016): a
        decoder that cannot lean on the words before a position must read the source's code."""
        fed = None
        if word_dropout > 0:
            drop = torch.rand(target.shape, generator=generator, device=target.device) < word_dropout
            fed = torch.where(drop & (target != 0), torch.ones_like(target), target)
        mask = alive_mask(target)
        logp = self.token_log_probs(source, target, lengths, fed)
        return -(logp * mask).sum() / mask.sum().clamp_min(1)

    # ------------------------------------------------------------------ drawing
    def _write(self, source: torch.Tensor, pick, soft_feed: bool = False):
        """Write ``length`` tokens: ``pick(t, log p (N, V))`` returns (the token (N,), the row fed
        back (N, V) or None for the token's embedding); returns tokens and the rows."""
        dec = self.decoder
        ctx = self.read(source)
        state = ctx[0]
        n = len(source)
        inp = dec.embed(torch.full((n,), dec.start, dtype=torch.long, device=source.device)).unsqueeze(1)
        table = dec.embed.weight[:self.vocab]
        ended = torch.zeros(n, dtype=torch.bool, device=source.device)
        tokens, rows = [], []
        for t in range(self.length):
            h, state = dec._body(inp, state)
            tok, row = pick(t, self._log_p(h[:, 0], ctx))
            tok = torch.where(ended, torch.zeros_like(tok), tok)
            if row is not None:
                pad = F.one_hot(torch.zeros_like(tok), self.vocab).to(row.dtype)
                row = torch.where(ended.unsqueeze(1), pad, row)
                rows.append(row)
                inp = (row.to(table.dtype) @ table).unsqueeze(1)
            else:
                inp = dec.embed(tok).unsqueeze(1)
            ended = ended | (tok == 0)
            tokens.append(tok)
        return torch.stack(tokens, 1), (torch.stack(rows, 1) if rows else None)

    def forward(self, source: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """A draw (N, length) for each source, with noise ``z`` (N, length)."""
        if not self.copy:
            return self.decoder.complete(None, None, z, state=self.state(source))
        u = torch.special.ndtr(z.float())
        return self._write(source, lambda t, logp: (inverse_cdf(logp, u[:, t]), None))[0]

    def greedy(self, source: torch.Tensor) -> torch.Tensor:
        """The most likely token at each step (N, length); after a sequence's end, 0."""
        return self._write(source, lambda t, logp: (logp.argmax(-1), None))[0]

    def relaxed(self, source: torch.Tensor, gumbel: torch.Tensor, tau: float, hard: bool = False, lengths=None):
        """(relaxed one-hot rows (N, length, V), the tokens (N, length)) of a Gumbel-softmax draw."""
        if not self.copy:
            return self.decoder.relaxed(gumbel, tau, hard, state=self.state(source, lengths))

        def pick(t, logp):
            y = torch.softmax((logp + gumbel[:, t].to(logp.dtype)) / tau, -1)
            tok = y.argmax(-1)
            if hard:
                y = F.one_hot(tok, self.vocab).to(y.dtype) - y.detach() + y
            return tok, y

        tokens, rows = self._write(source, pick)
        return rows, tokens


@GENERATORS.register("encoder_decoder")
def encoder_decoder(info, /, embed: int = 64, hidden: int = 128, dropout: float = 0.0,
                    copy: bool = False) -> EncoderDecoder:
    """Sequence to sequence: a bidirectional LSTM encoder (tokens or distributions) whose code
    starts an LSTM decoder of x's length; copy: a pointer-generator that may copy source words
    (method summarize's generator and reconstructor)."""
    for key, v in (("embed", embed), ("hidden", hidden)):
        if v < 1:
            raise ConfigError(f"generator.{key} must be positive, got {v}")
    vocab, length = vocabulary_of(info)
    return EncoderDecoder(vocab, length, embed, hidden, dropout, copy)
