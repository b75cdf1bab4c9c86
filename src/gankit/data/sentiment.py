"""Sentences of two styles, positive and negative, without pairs: the text style transfer data.

"Unsupervised conditional sequence generation" in the lectures turns a positive sentence into
a negative one (and back) having seen only a pile of positive sentences and a pile of
negative ones, never a sentence beside its rewrite. ``sentiment`` is such a pair of piles,
made from the English quotations of the ``fortunes`` package as the ``quotes`` data set reads
them (each entry's attribution left out, lower case, words and punctuation as tokens):

* each distinct sentence (its tokens joined by spaces, the text every tokenised sentence has)
  is scored by the VADER lexicon (Hutto and Gilbert 2014, ``vaderSentiment``): its
  ``compound`` score, in [-1, 1]. A sentence scoring at least ``threshold`` is ``positive``,
  one scoring at most ``-threshold`` is ``negative``; the rest (neutral, or mixed) are left
  out. At 0.3 and 3..20 words there are about 1,450 negative and 1,910 positive sentences.
* fields: ``x``, token numbers (N, L = ``max_words``) padded with 0, one vocabulary taken from
  the train split (``min_count``; rarer words are ``<unk>``), as in ``quotes``; ``domain``, the
  label field of the style (classes ``("negative", "positive")``), the field the methods that
  translate between the domains of one data set read (as on ``voices`` or
  ``fashion_mnist_styles``).
* the split: whole sentences, the first ``test_fraction`` of the labelled sentences in an
  order seeded by ``seed`` held out (``quotes``' split), so a sentence and its style are in one
  split only.

The lexicon is the ``text`` extra (``pip install -e .[text]``); without it the data set is a
:class:`~gankit.errors.DataError` saying so.
"""
from __future__ import annotations

import functools
from typing import Dict, List, Literal, Optional, Tuple

import torch

from ..errors import ConfigError, DataError
from ..registries import DATASETS
from .base import Dataset
from .sequences import _split, _token_dataset, quote_words

__all__ = ["STYLES", "vader", "compound", "sentence_scores", "label_of", "sentiment"]

#: the classes of the ``domain`` field, index = label
STYLES = ("negative", "positive")


@functools.lru_cache(maxsize=1)
def vader():
    """VADER's ``SentimentIntensityAnalyzer`` (one per process); a DataError naming the extra
    that installs it when it is missing."""
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        raise DataError("data sentiment scores sentences with the VADER lexicon, which is not installed: "
                        "`pip install -e .[text]` (or `pip install vaderSentiment`)") from None
    return SentimentIntensityAnalyzer()


def compound(text: str) -> float:
    """VADER's compound score of ``text`` in [-1, 1]."""
    return float(vader().polarity_scores(text)["compound"])


def label_of(score: float, threshold: float) -> Optional[int]:
    """1 (positive) for a score of at least ``threshold``, 0 (negative) for at most
    ``-threshold``, None in between."""
    if score >= threshold:
        return 1
    if score <= -threshold:
        return 0
    return None


@functools.lru_cache(maxsize=8)
def sentence_scores(files: Optional[Tuple[str, ...]], root: Optional[str], min_words: int, max_words: int
                    ) -> Dict[Tuple[str, ...], float]:
    """Each distinct quotation of ``min_words``..``max_words`` tokens of the fortune files
    (``quote_words``' reading) -> VADER's compound score of its tokens joined by spaces (cached
    per process: scoring every quotation takes seconds)."""
    analyzer = vader()
    out: Dict[Tuple[str, ...], float] = {}
    for words in quote_words(list(files) if files else None, root):
        if min_words <= len(words) <= max_words and words not in out:
            out[words] = float(analyzer.polarity_scores(" ".join(words))["compound"])
    return out


@DATASETS.register("sentiment")
def sentiment(split: Literal["train", "test"] = "train", threshold: float = 0.3, files: Optional[List[str]] = None,
              max_words: int = 20, min_words: int = 3, test_fraction: float = 0.2, seed: int = 0, min_count: int = 2,
              n_samples: Optional[int] = None, root: Optional[str] = None) -> Dataset:
    """English quotations of the fortunes package scored by the VADER lexicon: compound >= threshold
    is positive, <= -threshold negative, the rest left out; fields x (word tokens, the train
    split's vocabulary) and domain (negative, positive); a held-out split of whole sentences."""
    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"data.threshold must be between 0 and 1 (a sentence whose VADER compound score is at "
                          f"least it is positive, at most minus it negative), got {threshold}")
    if max_words < 1 or min_words < 1 or min_words > max_words:
        raise ConfigError(f"data.min_words ({min_words}) and data.max_words ({max_words}) must be positive, "
                          "min_words <= max_words")
    scores = sentence_scores(tuple(files) if files else None, root, int(min_words), int(max_words))
    labels = {words: label_of(s, threshold) for words, s in scores.items()}
    seqs = sorted(words for words, lab in labels.items() if lab is not None)
    counts = [sum(1 for w in seqs if labels[w] == k) for k in range(len(STYLES))]
    if min(counts) < 2:
        raise DataError(f"data sentiment at threshold {threshold}: {counts[0]} negative and {counts[1]} positive "
                        "sentences; each style needs at least 2: lower data.threshold or read more files")
    data = _token_dataset("sentiment", seqs, split, test_fraction, seed, min_count, max_words, n_samples)
    train, test = _split(seqs, test_fraction, seed)
    rows = (train if split == "train" else test)[:len(data)]
    domain = torch.tensor([labels[w] for w in rows], dtype=torch.long)
    return Dataset(x=data.x, kind="tokens", name="sentiment", vocabulary=data.vocabulary,
                   extra={"domain": domain}, extra_kinds={"domain": "label"}, extra_classes={"domain": list(STYLES)})
