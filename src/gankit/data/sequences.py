"""Token sequences: Tang poems, English quotations, any text file, and SeqGAN's synthetic oracle.

"Improving Sequence Generation by GAN" in the lectures: a generator writes a sentence one
token at a time. Every data set here holds ``x`` of kind ``tokens``: (N, L) token numbers,
padded with 0, and a vocabulary (the ``Field``'s ``classes``, index = token number, stored
with the run in its ``DataInfo``, so samples decode back to text without the data set).

* Token 0 is ``<pad>``: a sequence ends at its first 0 (everything after it is 0) or at L.
  :func:`lengths` gives each row's length; a generator models the 0 after a shorter sequence
  as its end.
* Token 1 is ``<unk>`` in the text data sets: a character or word seen fewer than
  ``min_count`` times in the train split (or never) stands for it. The oracle has none.
* The vocabulary comes from the train split alone, so the test split's sequences are told in
  the words training saw (unknown ones as ``<unk>``).
* The split: the distinct sequences of the source, in an order seeded by ``seed``, the first
  ``test_fraction`` of them held out; a sequence is in one split only (duplicates are one).

Data sets:

* ``poems``: character-level lines of classical Chinese verse from the ``fortunes-zh`` package:
  ``source`` tang300 (Three Hundred Tang Poems) or song100 (a hundred Song ci); each poem's
  lines split at its punctuation into clauses, the clauses of ``lengths`` characters kept (5
  and 7: the five- and seven-character lines of regulated verse).
* ``quotes``: word-level English quotations from the ``fortunes`` package's files: each entry
  with its attribution ("-- Author") left out, lower case, words and punctuation as tokens,
  the entries of at most ``max_words`` tokens kept.
* ``text``: a text file of the user's (``data.path=FILE``), one sequence per non-empty line,
  ``level`` char or word.
* ``oracle``: SeqGAN's synthetic data (Yu et al. 2017, section "Synthetic Data Experiments"):
  a randomly initialised LSTM (vocabulary 5,000, embedding 32, hidden 32, every parameter
  drawn from N(0, 1) by a generator seeded with ``oracle_seed``) samples the train split's
  10,000 sequences of length 20 (the test split's are further draws of the same oracle). Its
  exact log-probability of any sequence is the data set's ``log_prob``, so a generated
  sequence's NLL under the oracle (``nll_oracle``) measures sample quality exactly. Oracle
  token j is token number j + 1 (0 is the padding no oracle sequence holds).
"""
from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, List, Literal, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, DataError
from ..registries import DATASETS
from .base import Dataset

__all__ = ["PAD", "UNK", "FORTUNES_DIR", "QUOTE_FILES", "lengths", "is_char_level", "decode", "decode_all",
           "encode", "write_text", "tokenize_words", "poem_lines", "quote_entries", "quote_words", "Oracle", "oracle_model", "poems", "quotes",
           "text", "oracle"]

PAD, UNK = "<pad>", "<unk>"
#: where the fortune packages put their files
FORTUNES_DIR = Path("/usr/share/games/fortunes")
#: the English files of the ``fortunes`` package that ``quotes`` reads by default
QUOTE_FILES = ("art", "computers", "cookie", "definitions", "drugs", "education", "ethnic", "food", "fortunes",
               "goedel", "humorists", "kids", "law", "linuxcookie", "literature", "love", "magic", "medicine",
               "men-women", "miscellaneous", "news", "people", "pets", "platitudes", "politics", "riddles",
               "science", "songs-poems", "sports", "wisdom", "work")

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CLAUSE_END = re.compile(r"[，。？！；：、,.?!;:\s]+")
_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)*|[^\sa-z0-9]")


# ----------------------------------------------------------------------------- tokens and text

def lengths(x: torch.Tensor) -> torch.Tensor:
    """The length of each row of token numbers (N, L): the position of its first 0, or L."""
    x = torch.as_tensor(x)
    is_pad = x == 0
    first = torch.where(is_pad.any(1), is_pad.int().argmax(1), torch.full((len(x),), x.shape[1]))
    return first.long()


def is_char_level(vocabulary: Sequence[str]) -> bool:
    """Whether a vocabulary's tokens are characters (every entry but ``<pad>``/``<unk>`` one
    character long): its text is written without spaces between tokens."""
    ordinary = [w for w in vocabulary if w not in (PAD, UNK)]
    return bool(ordinary) and all(len(w) == 1 for w in ordinary)


def decode(tokens, vocabulary: Sequence[str]) -> str:
    """The text of one row of token numbers, up to its end (first 0): characters joined as
    they are, words with a space between them."""
    out = []
    for t in tokens:
        t = int(t)
        if t == 0:
            break
        out.append(vocabulary[t] if 0 <= t < len(vocabulary) else UNK)
    return ("" if is_char_level(vocabulary) else " ").join(out)


def decode_all(x, vocabulary: Sequence[str]) -> List[str]:
    """:func:`decode` of every row of (N, L) token numbers."""
    return [decode(row, vocabulary) for row in torch.as_tensor(x).tolist()]


def write_text(x, vocabulary: Sequence[str], path) -> Path:
    """Write the text of each row of token numbers (N, L) to ``path``, one a line; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in decode_all(x, vocabulary)), encoding="utf-8")
    return path


def tokenize_words(line: str) -> List[str]:
    """Word-level tokens: lower case, words (with inner apostrophes: "don't") and each
    punctuation mark on its own."""
    return _WORD.findall(unicodedata.normalize("NFKC", line).lower())


def encode(text_: str, vocabulary: Sequence[str], length: Optional[int] = None) -> List[int]:
    """Token numbers of ``text_`` in ``vocabulary`` (characters or words, as the vocabulary
    holds them); a token outside it is ``<unk>`` (an error when the vocabulary has none);
    padded with 0 to ``length`` when given (a longer text is an error)."""
    index = {w: i for i, w in enumerate(vocabulary)}
    pieces = [c for c in text_ if not c.isspace()] if is_char_level(vocabulary) else tokenize_words(text_)
    out = []
    for p in pieces:
        if p in index and p != PAD:
            out.append(index[p])
        elif UNK in index:
            out.append(index[UNK])
        else:
            raise ConfigError(f"'{p}' is not in this run's vocabulary of {len(vocabulary)} tokens")
    if length is not None:
        if len(out) > length:
            raise ConfigError(f"{text_!r} has {len(out)} tokens; this run's sequences hold at most {length}")
        out = out + [0] * (length - len(out))
    return out


def _vocabulary(train: Iterable[Sequence[str]], min_count: int) -> List[str]:
    """``<pad>``, ``<unk>``, then every token seen at least ``min_count`` times, most frequent first
    (ties in code-point order)."""
    counts = Counter(t for seq in train for t in seq)
    kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    return [PAD, UNK] + kept


def _split(seqs: List[Tuple[str, ...]], test_fraction: float, seed: int
           ) -> Tuple[List[Tuple[str, ...]], List[Tuple[str, ...]]]:
    """(train, test) sequences: the distinct sequences in an order seeded by ``seed``, the first
    ``test_fraction`` of them the test split's."""
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"data.test_fraction must be between 0 and 1, got {test_fraction}")
    distinct = sorted(set(seqs))
    if len(distinct) < 2:
        raise DataError(f"{len(distinct)} distinct sequences: too few to split into train and test")
    order = np.random.default_rng([seed, 7]).permutation(len(distinct))
    n_test = min(len(distinct) - 1, max(1, int(round(test_fraction * len(distinct)))))
    test = [distinct[i] for i in order[:n_test]]
    train = [distinct[i] for i in order[n_test:]]
    return train, test


def _token_dataset(name: str, seqs: List[Tuple[str, ...]], split: str, test_fraction: float, seed: int,
                   min_count: int, length: int, n_samples: Optional[int]) -> Dataset:
    train, test = _split(seqs, test_fraction, seed)
    vocab = _vocabulary(train, min_count)
    index = {w: i for i, w in enumerate(vocab)}
    rows = train if split == "train" else test
    if n_samples is not None:
        if n_samples < 1:
            raise ConfigError(f"data.n_samples must be positive (or null for every sequence), got {n_samples}")
        rows = rows[:n_samples]
    x = np.zeros((len(rows), length), dtype=np.int64)
    for i, seq in enumerate(rows):
        x[i, :len(seq)] = [index.get(t, 1) for t in seq]
    return Dataset(x=torch.from_numpy(x), kind="tokens", name=name, vocabulary=vocab)


def _read(path: Path, package: str) -> str:
    if not path.is_file():
        raise DataError(f"{path} is missing: install it with `apt-get install -y {package}` (as root), or give "
                        "another file with data.name=text data.path=FILE")
    return path.read_text(encoding="utf-8", errors="replace")


def _entries(raw: str) -> List[List[str]]:
    """A fortune file's entries (split at lines holding only %), each a list of lines with the
    terminal colour codes removed."""
    out, cur = [], []
    for line in raw.splitlines():
        if line.strip() == "%":
            out.append(cur)
            cur = []
        else:
            cur.append(_ANSI.sub("", line))
    out.append(cur)
    return [e for e in out if any(l.strip() for l in e)]


# ----------------------------------------------------------------------------- poems

def poem_lines(raw: str, lengths_: Sequence[int] = (5, 7)) -> List[Tuple[str, ...]]:
    """The clauses of ``lengths_`` characters of a fortune file of Chinese verse, each a tuple of
    characters: every entry's title line (题目:) and author line (作者:) left out, the verse
    split at punctuation and white space, clauses holding a character that is no CJK ideograph
    left out."""
    keep = set(int(n) for n in lengths_)
    out = []
    for entry in _entries(raw):
        for line in entry:
            s = line.strip()
            if not s or s.startswith(("题目", "作者")):
                continue
            for clause in _CLAUSE_END.split(s):
                if len(clause) in keep and all("\u4e00" <= c <= "\u9fff" for c in clause):
                    out.append(tuple(clause))
    return out


@DATASETS.register("poems")
def poems(split: Literal["train", "test"] = "train", source: Literal["tang300", "song100"] = "tang300",
          lengths: List[int] = [5, 7], test_fraction: float = 0.1, seed: int = 0, min_count: int = 1,
          n_samples: Optional[int] = None, root: Optional[str] = None) -> Dataset:
    """Character-level lines of Chinese verse from the fortunes-zh package (source tang300: Tang
    poems; song100: Song ci), the clauses of the given lengths; a held-out test split."""
    if not lengths or any(int(n) < 1 for n in lengths):
        raise ConfigError(f"data.lengths must be positive clause lengths, e.g. [5, 7]; got {lengths}")
    path = Path(root or FORTUNES_DIR) / source
    seqs = poem_lines(_read(path, "fortunes-zh"), lengths)
    return _token_dataset("poems", seqs, split, test_fraction, seed, min_count, max(int(n) for n in lengths),
                          n_samples)


# ----------------------------------------------------------------------------- quotes

def quote_entries(raw: str) -> List[str]:
    """The quotations of a fortune file: each entry's lines joined (runs of white space made one
    space), its attribution (from a line starting with "--") left out."""
    out = []
    for entry in _entries(raw):
        lines = []
        for line in entry:
            if line.strip().startswith("--") or line.strip().startswith("\u2014"):
                break
            lines.append(line.strip())
        s = " ".join(" ".join(lines).split())
        if s:
            out.append(s)
    return out


@DATASETS.register("quotes")
def quotes(split: Literal["train", "test"] = "train", files: Optional[List[str]] = None, max_words: int = 20,
           min_words: int = 3, test_fraction: float = 0.1, seed: int = 0, min_count: int = 2,
           n_samples: Optional[int] = None, root: Optional[str] = None) -> Dataset:
    """Word-level English quotations from the fortunes package (files: the names of its files,
    default a set of English ones), entries of min_words..max_words tokens; a held-out split."""
    if max_words < 1 or min_words < 1 or min_words > max_words:
        raise ConfigError(f"data.min_words ({min_words}) and data.max_words ({max_words}) must be positive, "
                          "min_words <= max_words")
    seqs = [words for words in quote_words(files, root) if min_words <= len(words) <= max_words]
    return _token_dataset("quotes", seqs, split, test_fraction, seed, min_count, max_words, n_samples)


def quote_words(files: Optional[Sequence[str]] = None, root: Optional[str] = None) -> List[Tuple[str, ...]]:
    """Every quotation of the fortunes files ``files`` (default :data:`QUOTE_FILES`, those the
    installed package has) in folder ``root`` (default :data:`FORTUNES_DIR`) as word tokens, in
    file order; a missing package is a DataError naming the apt command."""
    folder = Path(root or FORTUNES_DIR)
    names = list(files) if files else list(QUOTE_FILES)
    if not files and not (folder / "wisdom").is_file():
        raise DataError(f"{folder / 'wisdom'} is missing: install the English fortunes with "
                        "`apt-get install -y fortunes` (as root)")
    seqs = []
    for name in names:
        path = folder / name
        if not path.is_file() and not files:
            continue          # a file another release of the package leaves out
        seqs.extend(tuple(tokenize_words(q)) for q in quote_entries(_read(path, "fortunes")))
    return seqs


# ----------------------------------------------------------------------------- any text file

@DATASETS.register("text")
def text(path: str = "", split: Literal["train", "test"] = "train", level: Literal["char", "word"] = "word",
         max_length: int = 32, test_fraction: float = 0.1, seed: int = 0, min_count: int = 1,
         n_samples: Optional[int] = None) -> Dataset:
    """A text file, one sequence per non-empty line (level char or word); lines longer than
    max_length tokens are left out; a held-out split."""
    if not path:
        raise ConfigError("data.path: give the text file, one sequence per line, e.g. --set data.path=lines.txt")
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"data.path: {p} is not a file")
    if max_length < 1:
        raise ConfigError(f"data.max_length must be positive, got {max_length}")
    seqs = []
    for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        toks = tuple(c for c in line if not c.isspace()) if level == "char" else tuple(tokenize_words(line))
        if 0 < len(toks) <= max_length:
            seqs.append(toks)
    if not seqs:
        raise DataError(f"{p} holds no line of 1..{max_length} tokens")
    return _token_dataset("text", seqs, split, test_fraction, seed, min_count, max_length, n_samples)


# ----------------------------------------------------------------------------- the oracle

class Oracle(nn.Module):
    """SeqGAN's oracle: an LSTM language model with every parameter drawn from N(0, 1).

    Token numbers are the oracle's own (0..vocab-1); a sequence starts from a start token of
    its own (index ``vocab`` of the embedding)."""

    def __init__(self, vocab: int = 5000, embed: int = 32, hidden: int = 32, seed: int = 0):
        super().__init__()
        self.vocab = vocab
        self.embed = nn.Embedding(vocab + 1, embed)
        self.cell = nn.LSTMCell(embed, hidden)
        self.out = nn.Linear(hidden, vocab)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
            self.cell.bias_hh.zero_()      # one bias per gate, as SeqGAN's oracle has
        self.requires_grad_(False)

    def _steps(self, tokens: torch.Tensor):
        """Logits (N, L, vocab) of each position given the tokens before it."""
        n, L = tokens.shape
        inp = torch.cat([torch.full((n, 1), self.vocab, dtype=torch.long), tokens[:, :-1]], 1)
        e = self.embed(inp)
        h = c = e.new_zeros(n, self.cell.hidden_size)
        out = []
        for t in range(L):
            h, c = self.cell(e[:, t], (h, c))
            out.append(self.out(h))
        return torch.stack(out, 1)

    @torch.no_grad()
    def token_log_probs(self, tokens: torch.Tensor, batch: int = 1000) -> torch.Tensor:
        """log p(token_t | tokens before t) of each position (N, L), float64."""
        parts = []
        for s in range(0, len(tokens), batch):
            x = tokens[s:s + batch].long()
            logp = torch.log_softmax(self._steps(x).double(), -1)
            parts.append(logp.gather(2, x.unsqueeze(2)).squeeze(2))
        return torch.cat(parts) if parts else torch.zeros(0, 0, dtype=torch.float64)

    @torch.no_grad()
    def sample(self, n: int, length: int, generator: torch.Generator, batch: int = 1000) -> torch.Tensor:
        """``n`` sequences (n, length) of oracle tokens, drawn with ``generator``."""
        parts = []
        for s in range(0, n, batch):
            k = min(batch, n - s)
            tok = torch.full((k,), self.vocab, dtype=torch.long)
            h = c = torch.zeros(k, self.cell.hidden_size)
            rows = []
            for _ in range(length):
                h, c = self.cell(self.embed(tok), (h, c))
                cdf = torch.softmax(self.out(h), -1).double().cumsum(-1)   # inverse-CDF draw: one uniform each
                u = torch.rand(k, 1, generator=generator, dtype=torch.float64) * cdf[:, -1:]
                tok = torch.searchsorted(cdf, u).squeeze(1).clamp_max(self.vocab - 1)
                rows.append(tok)
            parts.append(torch.stack(rows, 1))
        return torch.cat(parts)


@functools.lru_cache(maxsize=4)
def oracle_model(vocab: int, embed: int, hidden: int, seed: int) -> Oracle:
    """The oracle of these sizes and seed (one per process)."""
    return Oracle(vocab, embed, hidden, seed)


@functools.lru_cache(maxsize=4)
def _oracle_draws(vocab: int, embed: int, hidden: int, seed: int, length: int, split: str, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(int(hashlib.sha256(f"{seed}-{split}".encode()).hexdigest()[:12], 16))
    return oracle_model(vocab, embed, hidden, seed).sample(n, length, g)


def _oracle_log_prob(model: Oracle) -> Callable[[torch.Tensor], torch.Tensor]:
    def log_prob(x: torch.Tensor) -> torch.Tensor:
        """log p(sequence) under the oracle, float64 (N,): the sum over the tokens before each
        row's end (its first 0); gankit token t is oracle token t - 1."""
        x = torch.as_tensor(x).long()
        n_tok = lengths(x)
        per = model.token_log_probs((x - 1).clamp_min(0))
        keep = torch.arange(x.shape[1])[None, :] < n_tok[:, None]
        return (per * keep).sum(1)

    return log_prob


@DATASETS.register("oracle")
def oracle(split: Literal["train", "test"] = "train", n_samples: int = 10_000, n_test: int = 10_000,
           length: int = 20, vocab: int = 5000, embed: int = 32, hidden: int = 32, oracle_seed: int = 0) -> Dataset:
    """SeqGAN's synthetic data: sequences of a random LSTM (vocab 5000, embedding 32, hidden 32,
    parameters N(0, 1) seeded by oracle_seed); n_samples train / n_test test sequences of
    `length` tokens; its exact log-probability judges generated sequences (nll_oracle)."""
    for key, value in (("n_samples", n_samples), ("n_test", n_test), ("length", length), ("vocab", vocab),
                       ("embed", embed), ("hidden", hidden)):
        if value < 1:
            raise ConfigError(f"data.{key} must be positive, got {value}")
    n = n_samples if split == "train" else n_test
    x = _oracle_draws(vocab, embed, hidden, oracle_seed, length, split, n) + 1
    model = oracle_model(vocab, embed, hidden, oracle_seed)
    vocabulary = [PAD] + [f"t{j}" for j in range(vocab)]
    return Dataset(x=x.clone(), kind="tokens", name="oracle", vocabulary=vocabulary, log_prob=_oracle_log_prob(model))
