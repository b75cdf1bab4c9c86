"""Documents to summarise, and a supply of short human sentences: unsupervised summarisation's data.

"Unsupervised Abstractive Summarization" in the lectures: a generator reads a document and
writes a short word sequence, a reconstructor recovers the document from it, and a
discriminator that has seen many short sentences written by people (not summaries of these
documents) makes the short sequence read like them. The data are two piles of text, never
pairs:

* ``x``: the documents, the long multi-sentence quotations of the English ``fortunes``
  package (as the ``quotes`` data set reads them: attributions left out, lower case, words
  and punctuation as tokens), those of ``min_words``..``max_words`` tokens; (N, max_words)
  token numbers padded with 0.
* ``sentence``: short quotations of the same files, those of ``summary_words`` = [min, max]
  tokens, as (N, max) token numbers. Document row i carries the sentence at position i
  (cycled) of a permutation of the split's sentences seeded by ``seed``: a sentence has
  nothing to do with the document beside it; the field is only the discriminator's supply
  of human sentences, drawn with the documents' batches.

The documents are split as ``quotes`` splits its sequences (the distinct documents in a
seeded order, the first ``test_fraction`` held out, so the test split holds whole documents
no training step read), and the sentences likewise, separately. One vocabulary for both
fields, from the train split's documents and sentences: ``<pad>``, ``<unk>``, then every word
seen at least ``min_count`` times (rarer words read as ``<unk>``).
"""
from __future__ import annotations

import functools
from typing import List, Literal, Optional, Tuple

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..registries import DATASETS
from .base import Dataset
from .sequences import _split, _vocabulary, quote_words

__all__ = ["documents", "document_corpus"]


@functools.lru_cache(maxsize=4)
def _corpus(files: Optional[Tuple[str, ...]], root: Optional[str]) -> Tuple[Tuple[str, ...], ...]:
    return tuple(quote_words(files, root))


def document_corpus(min_words: int, max_words: int, summary_words: Tuple[int, int], test_fraction: float,
                    seed: int, files=None, root: Optional[str] = None):
    """((train documents, test documents), (train sentences, test sentences)), each a list of
    word tuples: the quotations of min_words..max_words words and those of summary_words[0]..
    summary_words[1] words, each pile split by :func:`~gankit.data.sequences._split`."""
    quotes_ = _corpus(tuple(files) if files else None, root)
    lo, hi = summary_words
    docs = [w for w in quotes_ if min_words <= len(w) <= max_words]
    sents = [w for w in quotes_ if lo <= len(w) <= hi]
    for what, pile, key in (("documents", docs, "min_words..max_words"), ("short sentences", sents, "summary_words")):
        if len(set(pile)) < 2:
            raise DataError(f"the fortunes files hold {len(set(pile))} distinct {what} of that length; widen "
                            f"data.{key}")
    return _split(docs, test_fraction, seed), _split(sents, test_fraction, seed)


def _tokens(rows: List[Tuple[str, ...]], index, length: int) -> torch.Tensor:
    x = np.zeros((len(rows), length), dtype=np.int64)
    for i, seq in enumerate(rows):
        x[i, :len(seq)] = [index.get(t, 1) for t in seq]
    return torch.from_numpy(x)


@DATASETS.register("documents")
def documents(split: Literal["train", "test"] = "train", min_words: int = 20, max_words: int = 50,
              summary_words: List[int] = [4, 10], test_fraction: float = 0.1, seed: int = 0, min_count: int = 3,
              n_samples: Optional[int] = None, files: Optional[List[str]] = None,
              root: Optional[str] = None) -> Dataset:
    """Documents to summarise (x: fortunes quotations of min_words..max_words words) and, beside
    each, a short human sentence (field sentence: quotations of summary_words [min, max] words,
    in a seeded order, no pair of the document) for a discriminator; one vocabulary of the
    train split's words seen min_count times; a held-out split of whole documents."""
    if min_words < 1 or max_words < min_words:
        raise ConfigError(f"data.min_words ({min_words}) and data.max_words ({max_words}) must be positive, "
                          "min_words <= max_words")
    if len(summary_words) != 2 or not 1 <= summary_words[0] <= summary_words[1]:
        raise ConfigError(f"data.summary_words must be [min, max] with 1 <= min <= max, got {summary_words}")
    lo, hi = int(summary_words[0]), int(summary_words[1])
    if hi >= min_words:
        raise ConfigError(f"data.summary_words ({lo}..{hi}) must be shorter than the documents "
                          f"(data.min_words {min_words}): a summary is shorter than what it summarises")
    if min_count < 1:
        raise ConfigError(f"data.min_count must be at least 1, got {min_count}")
    (train_docs, test_docs), (train_sents, test_sents) = document_corpus(
        min_words, max_words, (lo, hi), test_fraction, seed, files, root)
    vocab = _vocabulary(train_docs + train_sents, min_count)
    index = {w: i for i, w in enumerate(vocab)}
    rows, sents = (train_docs, train_sents) if split == "train" else (test_docs, test_sents)
    if n_samples is not None:
        if n_samples < 1:
            raise ConfigError(f"data.n_samples must be positive (or null for every document), got {n_samples}")
        rows = rows[:n_samples]
    order = np.random.default_rng([seed, 11, 0 if split == "train" else 1]).permutation(len(sents))
    paired = [sents[order[i % len(sents)]] for i in range(len(rows))]
    return Dataset(x=_tokens(rows, index, max_words), kind="tokens", name="documents", vocabulary=vocab,
                   extra={"sentence": _tokens(paired, index, hi)}, extra_kinds={"sentence": "tokens"},
                   extra_classes={"sentence": list(vocab)})
