"""A small learned sentence encoder: word embeddings averaged over the sentence's words.

A sentence arrives as a row of word numbers padded with 0 (a ``tokens`` field, see
:mod:`gankit.data.text`). The encoder looks each word up in a learned table, averages the
vectors of the sentence's words (padding left out, so a sentence's length does not matter),
and maps the average through one linear layer and a leaky ReLU to the condition code that a
conditional network reads (:mod:`gankit.nets.conditional`). A bag of words suffices for
short descriptions, and it generalises to new phrasings made of known words: "a warm wool
sweater" is near "a warm knitted sweater" and "a wool jumper" because it shares their words.

The table may start from pretrained word vectors (:func:`load_word_vectors`: a plain-text
file, one word and its numbers per line, as GloVe's files are; a word2vec text file's
first line of two counts is skipped): the vocabulary's words found in the file start from
their vectors, the others from random vectors of the same scale, and all go on learning.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["SentenceEncoder", "load_word_vectors"]


class SentenceEncoder(nn.Module):
    """(N, L) word numbers (0: padding) -> (N, ``dim``) codes."""

    def __init__(self, vocabulary_size: int, dim: int = 16, embedding_dim: int = 32,
                 vectors: Optional[torch.Tensor] = None):
        super().__init__()
        if vectors is not None:
            if vectors.shape[0] != vocabulary_size:
                raise ValueError(f"{vectors.shape[0]} word vectors for a vocabulary of {vocabulary_size}")
            embedding_dim = vectors.shape[1]
        self.embed = nn.Embedding(vocabulary_size, embedding_dim, padding_idx=0)
        if vectors is not None:
            with torch.no_grad():
                self.embed.weight.copy_(vectors)
                self.embed.weight[0].zero_()
        self.out = nn.Linear(embedding_dim, dim)
        self.act = nn.LeakyReLU(0.2)
        self.dim = dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens.long()
        present = (tokens != 0).to(self.embed.weight.dtype).unsqueeze(2)   # (N, L, 1)
        mean = (self.embed(tokens) * present).sum(1) / present.sum(1).clamp_min(1.0)
        return self.act(self.out(mean))


def load_word_vectors(path: str, vocabulary: Sequence[str], key: str = "method.word_vectors"
                      ) -> Tuple[torch.Tensor, int]:
    """(a (len(vocabulary), D) table: the file's vector for each word of ``vocabulary`` found in
    it and a random vector of the found vectors' scale for the others, row 0 (padding) zero;
    how many words were found). A missing or unreadable file, a line that is not a word and
    numbers, lines of different lengths or a file without any of the words is an error
    naming ``key``."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"{key}={path}: no such file; give a plain-text word-vector file (one word and its numbers "
                          f"per line, as GloVe's files are) or leave {key} empty to learn the vectors from scratch")
    wanted = {w: i for i, w in enumerate(vocabulary) if i != 0}
    found, dim = {}, None
    try:
        with open(file, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                parts = line.rstrip("\n").split(" ")
                parts = [p for p in parts if p]
                if not parts:
                    continue
                if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    continue                      # word2vec's header: counts of words and numbers
                if dim is None:
                    dim = len(parts) - 1
                    if dim < 1:
                        raise ConfigError(f"{key}={path}, line {number}: a word without numbers; each line must be a "
                                          "word and its vector")
                if len(parts) - 1 != dim:
                    raise ConfigError(f"{key}={path}, line {number}: {len(parts) - 1} numbers, but the first vector "
                                      f"has {dim}; the file is damaged or not a word-vector file")
                if parts[0] in wanted:
                    try:
                        found[parts[0]] = [float(p) for p in parts[1:]]
                    except ValueError:
                        raise ConfigError(f"{key}={path}, line {number}: not a number among the values of "
                                          f"{parts[0]!r}; the file is damaged or not a word-vector file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{key}={path} is not a text file ({exc.reason} at byte {exc.start}); give a plain-text "
                          "word-vector file (binary word2vec files are not read)") from None
    if not found:
        raise ConfigError(f"{key}={path} holds none of the {len(wanted)} words of the data's vocabulary; is it an "
                          "English word-vector file?")
    known = torch.tensor(list(found.values()), dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    table = torch.randn(len(vocabulary), dim, generator=gen) * known.std().clamp_min(1e-3)
    for word, vec in found.items():
        table[wanted[word]] = torch.tensor(vec)
    table[0] = 0
    return table, len(found)
