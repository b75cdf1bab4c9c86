"""Fashion-MNIST with a short English sentence for every picture (text-to-image).

"Conditional Generation by GAN" in the lectures: a generator that reads a sentence and
draws the picture it describes, trained on pairs of pictures and sentences. This data set
makes such pairs from Fashion-MNIST: each picture gets a description of its class, one of
several phrasings ("a pair of sneakers", "sporty shoes", "running shoes" ...).

Some phrasings of every class are held out: the train split's sentences come from
:data:`TRAIN_PHRASES` only, the test split's from :data:`HELD_OUT_PHRASES` only, so a
generator judged on the test split is judged on sentences it never read. Held-out
phrasings are new combinations of words that training phrasings use ("a warm wool sweater"
from "a warm knitted sweater" and "a wool jumper"), which a word-level encoder can
generalise to; the vocabulary is the training phrasings' words, and a word outside it is
left out of a sentence (:func:`encode`).

The sentence of picture i of a split is a function of ``seed``, the split and i only: the
i-th draw of a generator seeded by (seed, split) picks among its class's phrasings, so
``n_samples`` (the first N pictures) keeps every sentence as it was.

Fields: ``x`` (the picture), ``y`` (its class) and ``text`` (kind ``tokens``: the word
numbers of the sentence, padded with 0 to the longest phrasing; the field's ``classes``
are the vocabulary, index = word number, 0 = padding).
"""
from __future__ import annotations

import re
from typing import Dict, List, Literal, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import ConfigError
from ..registries import DATASETS
from .base import Dataset
from .images import fashion_mnist

__all__ = ["TRAIN_PHRASES", "HELD_OUT_PHRASES", "PAD", "VOCABULARY", "MAX_WORDS", "words", "encode", "decode",
           "phrases_of", "fashion_mnist_text"]

#: the padding word (number 0)
PAD = "<pad>"

#: phrasings a generator trains on, per class of Fashion-MNIST (class number -> sentences)
TRAIN_PHRASES: Dict[int, Tuple[str, ...]] = {
    0: ("a t-shirt", "a short-sleeved top", "a plain cotton t-shirt", "a casual tee", "a sleeveless top",
        "a summer t-shirt with short sleeves"),
    1: ("a pair of trousers", "long trousers", "blue jeans", "a pair of slacks", "denim pants",
        "trousers with two legs"),
    2: ("a pullover", "a long-sleeved pullover", "a warm knitted sweater", "a wool jumper", "a cosy sweater",
        "a knitted pullover with long sleeves"),
    3: ("a dress", "a summer dress", "a long evening gown", "an elegant dress", "a sleeveless gown",
        "a knee-length dress"),
    4: ("a coat", "a winter coat", "a warm jacket", "a long coat with buttons", "a heavy overcoat",
        "a jacket with a zip"),
    5: ("a sandal", "open summer sandals", "a pair of sandals", "a flat sandal with straps", "beach sandals",
        "strappy sandals"),
    6: ("a shirt", "a button-down shirt", "a collared shirt", "a formal shirt with long sleeves", "a checked shirt",
        "a shirt with a collar and buttons"),
    7: ("a sneaker", "a pair of sneakers", "sporty shoes", "running shoes", "a trainer", "a low canvas sneaker"),
    8: ("a bag", "a handbag", "a leather bag", "a shoulder bag with a strap", "a tote bag", "a purse"),
    9: ("an ankle boot", "a pair of boots", "a leather boot", "a boot with a heel", "short winter boots",
        "ankle boots"),
}

#: phrasings no training sentence uses (the test split's), per class: new combinations of known words
HELD_OUT_PHRASES: Dict[int, Tuple[str, ...]] = {
    0: ("a cotton tee", "a casual short-sleeved t-shirt", "a plain summer top"),
    1: ("a pair of jeans", "long denim trousers", "blue pants"),
    2: ("a warm wool sweater", "a knitted jumper", "a cosy pullover"),
    3: ("an elegant evening dress", "a long gown", "a sleeveless summer dress"),
    4: ("a heavy winter jacket", "a warm coat", "a long overcoat"),
    5: ("open sandals with straps", "a pair of beach sandals", "flat summer sandals"),
    6: ("a formal collared shirt", "a checked button-down shirt", "a shirt with buttons"),
    7: ("sporty running sneakers", "a pair of running shoes", "canvas sneakers"),
    8: ("a leather handbag", "a tote", "a shoulder bag"),
    9: ("a leather ankle boot", "winter boots with a heel", "a short boot"),
}

_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")


def words(sentence: str) -> List[str]:
    """The words of a sentence: lower case, hyphenated words kept whole ("t-shirt"), other
    punctuation and digits dropped."""
    return _WORD.findall(str(sentence).lower())


#: the vocabulary: the padding word, then every word of the training phrasings (sorted)
VOCABULARY: Tuple[str, ...] = (PAD,) + tuple(sorted({w for ps in TRAIN_PHRASES.values() for p in ps
                                                      for w in words(p)}))
#: the length of the token field: the longest phrasing, in words
MAX_WORDS = max(len(words(p)) for table in (TRAIN_PHRASES, HELD_OUT_PHRASES) for ps in table.values() for p in ps)


def encode(sentence: str, vocabulary: Sequence[str] = VOCABULARY, length: Optional[int] = None
           ) -> Tuple[List[int], List[str]]:
    """(word numbers of the known words of ``sentence``, padded with 0 to ``length`` when
    given; the words not in ``vocabulary``, which are left out). A sentence with more known
    words than ``length`` is an error."""
    index = {w: i for i, w in enumerate(vocabulary)}
    known, unknown = [], []
    for w in words(sentence):
        (known.append(index[w]) if w in index and w != PAD else unknown.append(w))
    if length is not None:
        if len(known) > length:
            raise ConfigError(f"the sentence {sentence!r} has {len(known)} known words; at most {length} fit")
        known = known + [0] * (length - len(known))
    return known, unknown


def decode(tokens, vocabulary: Sequence[str] = VOCABULARY) -> str:
    """The sentence of a row of word numbers (padding left out)."""
    return " ".join(vocabulary[int(t)] for t in tokens if int(t) != 0)


def phrases_of(split: str) -> Dict[int, Tuple[str, ...]]:
    """The phrasings a split's sentences come from: training phrasings for "train", held-out ones
    for "test"."""
    return TRAIN_PHRASES if split == "train" else HELD_OUT_PHRASES


def _sentence_tokens(y: np.ndarray, split: str, seed: int) -> torch.Tensor:
    """(N, MAX_WORDS) word numbers: picture i's sentence is phrasing floor(u_i * P) of its class,
    u_i the i-th draw of a generator seeded by (seed, split)."""
    table = phrases_of(split)
    u = np.random.default_rng([seed, 0 if split == "train" else 1]).random(len(y))
    rows = {c: np.array([encode(p, VOCABULARY, MAX_WORDS)[0] for p in table[c]], dtype=np.int64) for c in table}
    out = np.zeros((len(y), MAX_WORDS), dtype=np.int64)
    for c, phrasing in rows.items():
        at = np.flatnonzero(y == c)
        out[at] = phrasing[np.minimum((u[at] * len(phrasing)).astype(np.int64), len(phrasing) - 1)]
    return torch.from_numpy(out)


@DATASETS.register("fashion_mnist_text")
def fashion_mnist_text(root: Optional[str] = None, split: Literal["train", "test"] = "train", image_size: int = 28,
                       channels: Literal[1, 3] = 1, seed: int = 0, n_samples: Optional[int] = None) -> Dataset:
    """Fashion-MNIST with a sentence describing each picture (field text): training phrasings in
    the train split, held-out phrasings in the test split; n_samples keeps the first N pictures."""
    if n_samples is not None and n_samples < 1:
        raise ConfigError(f"data.n_samples must be positive (or null for every picture), got {n_samples}")
    base = fashion_mnist(root=root, split=split, image_size=image_size, channels=channels)
    x, y = base.x, base.y
    if n_samples is not None:
        x, y = x[:n_samples], y[:n_samples]
    text = _sentence_tokens(y.numpy(), split, seed)
    return Dataset(x=x, kind="image", name="fashion_mnist_text", y=y, classes=base.classes,
                   extra={"text": text}, extra_kinds={"text": "tokens"}, extra_classes={"text": list(VOCABULARY)})
