"""Word translation without parallel data: aligning two languages' word embeddings.

The last example of "Improving Sequence Generation by GAN" treats two languages as two
domains. Conneau, Lample et al. (2018, "Word translation without parallel data") do it for
single words: embeddings trained on each language's text alone live in spaces that are
nearly a rotation of one another, so a linear map W is learnt adversarially (a discriminator
tells mapped source vectors from target vectors, W is trained to fool it and kept near
orthogonal), then refined in closed form.

Parts, each a plain function on arrays:

* corpora: ``english_sentences``/``german_sentences`` (fortune entries, lower-cased words;
  German keeps umlauts and ß), ``Embeddings`` from ``ppmi_svd`` (a positive PMI co-occurrence
  matrix with context-distribution smoothing, truncated SVD, U sqrt(S)), centred and
  unit-normalised by ``normalise``;
* the dictionary: ``parse_dictd`` reads a dictd index + dictionary (the FreeDict
  English-German one) into headword -> set of one-word translations; ``test_dictionary``
  keeps the pairs whose both words are in the vocabularies and splits them by source word;
* maps: ``procrustes`` (the orthogonal W minimising ||X W^T - Y||, U V^T of the SVD of Y^T X),
  ``adversarial`` (the paper's linear map, MLP discriminator with input dropout, orthogonality
  update W <- (1 + beta) W - beta (W W^T) W), ``refine`` (Procrustes on the mutual nearest
  neighbours under CSLS, iterated);
* retrieval and scores: ``csls`` (2 cos(Wx, y) - r_T(Wx) - r_S(y), the mean cosine of the k
  nearest neighbours), ``retrieve`` (NN or CSLS), ``precision_at`` (a source word is right
  when any of its translations is among the first k), ``identity_precision`` and
  ``mean_csls_cosine`` (the paper's unsupervised model-selection criterion).

Rows are words; a map W sends a source vector x to W x (``X @ W.T``).
"""
from __future__ import annotations

import gzip
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np
import torch
import torch.nn as nn

from .data.sequences import FORTUNES_DIR, QUOTE_FILES, _read, quote_entries
from .errors import ConfigError, DataError

__all__ = ["APT", "DICT_DIR", "tokenize", "english_sentences", "german_sentences", "Embeddings", "ppmi_svd",
           "normalise", "parse_dictd", "test_dictionary", "procrustes", "random_orthogonal", "csls",
           "retrieve", "precision_at", "identity_precision", "mean_csls_cosine", "mutual_csls_pairs",
           "refine", "AdversarialResult", "adversarial"]

#: the packages that hold the corpora and the dictionary
APT = "apt-get install fortunes fortunes-de dict-freedict-eng-deu"
DICT_DIR = Path("/usr/share/dictd")
GERMAN_DIR = FORTUNES_DIR / "de"
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_TAG = re.compile(r"<[^>]*>|\[[^\]]*\]|\([^)]*\)|\{[^}]*\}")
_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


# ----------------------------------------------------------------------------- corpora

def tokenize(text: str) -> List[str]:
    """Lower-cased words of any alphabet (inner apostrophes kept: "don't"); digits and
    punctuation dropped; umlauts and ß kept as they are."""
    return _WORD.findall(unicodedata.normalize("NFC", text).lower().replace("’", "'"))


def _sentences(folder: Path, names: Iterable[str], what: str) -> List[List[str]]:
    out = []
    for name in names:
        path = folder / name
        if not path.is_file():
            continue
        for entry in quote_entries(_read(path, what)):
            words = tokenize(entry)
            if words:
                out.append(words)
    if not out:
        raise DataError(f"no {what} text in {folder}: install the corpora and the dictionary with `{APT}` "
                        "(as root)")
    return out


def english_sentences(root: Optional[str] = None) -> List[List[str]]:
    """The English fortunes (the files ``quotes`` reads), one word list per entry."""
    return _sentences(Path(root or FORTUNES_DIR), QUOTE_FILES, "fortunes")


def german_sentences(root: Optional[str] = None) -> List[List[str]]:
    """The German fortunes (every file of fortunes-de, UTF-8), one word list per entry."""
    folder = Path(root or GERMAN_DIR)
    if not folder.is_dir():
        raise DataError(f"{folder} is missing: install the corpora and the dictionary with `{APT}` (as root)")
    names = sorted(p.name for p in folder.iterdir()
                   if p.is_file() and not p.is_symlink() and p.suffix not in (".dat", ".u8"))
    return _sentences(folder, names, "fortunes-de")


@dataclass
class Embeddings:
    """Word vectors (rows of ``vectors``, float64) of ``words``, most frequent first."""
    words: List[str]
    vectors: np.ndarray
    counts: np.ndarray

    def __post_init__(self):
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)


def normalise(v: np.ndarray) -> np.ndarray:
    """Rows unit-normalised, centred on their mean, unit-normalised again (the paper's
    renorm,center,renorm)."""
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    v = v - v.mean(0, keepdims=True)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def ppmi_svd(sentences: Sequence[Sequence[str]], vocab: int = 5000, dim: int = 100, window: int = 5,
             contexts: Optional[int] = None, alpha: float = 0.75, min_count: int = 3) -> Embeddings:
    """Embeddings of the ``vocab`` most frequent words (seen at least ``min_count`` times): the
    positive PMI of word-context co-occurrence counts within ``window`` words (the ``contexts``
    most frequent words as contexts, default ``vocab``, context probabilities smoothed by the power ``alpha``),
    factored by a truncated SVD, rows U_d sqrt(S_d), then ``normalise``d. Deterministic."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import svds

    counts = Counter(w for s in sentences for w in s)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    words = [w for w, c in ranked[:vocab] if c >= min_count]
    ctx = [w for w, c in ranked[:max(contexts or vocab, len(words))] if c >= min_count]
    if len(words) <= dim:
        raise ConfigError(f"only {len(words)} words are seen {min_count} times or more; "
                          f"dim ({dim}) must be below the vocabulary size")
    cid = {w: i for i, w in enumerate(ctx)}
    ids = np.array([cid.get(w, -1) for s in sentences for w in s] + [-1], dtype=np.int64)
    sent = np.repeat(np.arange(len(sentences) + 1), [len(s) for s in sentences] + [1])
    rows, cols = [], []
    for d in range(1, window + 1):
        a, b = ids[:-d], ids[d:]
        ok = (a >= 0) & (b >= 0) & (sent[:-d] == sent[d:])
        rows += [a[ok], b[ok]]
        cols += [b[ok], a[ok]]
    r, c = np.concatenate(rows), np.concatenate(cols)
    keep = r < len(words)
    m = coo_matrix((np.ones(int(keep.sum())), (r[keep], c[keep])), shape=(len(words), len(ctx))).tocsr()
    m.sum_duplicates()
    total = m.sum()
    pw = np.asarray(m.sum(1)).ravel() / total
    pc = np.asarray(m.sum(0)).ravel() ** alpha
    pc = pc / pc.sum()
    m = m.tocoo()
    pmi = np.log(m.data / total) - np.log(pw[m.row]) - np.log(pc[m.col])
    ok = pmi > 0
    ppmi = coo_matrix((pmi[ok], (m.row[ok], m.col[ok])), shape=m.shape).tocsr()
    u, s, _ = svds(ppmi, k=dim, v0=np.ones(min(ppmi.shape)) / np.sqrt(min(ppmi.shape)))
    order = np.argsort(-s)
    vec = u[:, order] * np.sqrt(s[order])
    return Embeddings(words, normalise(vec), np.array([counts[w] for w in words]))


# ----------------------------------------------------------------------------- the dictionary

def _b64(s: str) -> int:
    v = 0
    for ch in s:
        v = v * 64 + _B64[ch]
    return v


def _translations(entry: str) -> List[str]:
    """The one-word translations on an entry's second line (the first is headword and
    pronunciation): grammar tags <..>, subject labels [..], notes (..) removed, lower case."""
    lines = entry.split("\n")
    if len(lines) < 2:
        return []
    out = []
    for part in _TAG.sub(" ", lines[1]).split(","):
        words = tokenize(part)
        if len(words) == 1 and len(part.split()) == 1:
            out.append(words[0])
    return out


def parse_dictd(index: Path, dictionary: Path, headwords: Optional[Set[str]] = None) -> Dict[str, Set[str]]:
    """A dictd dictionary as headword (lower case) -> its one-word translations. ``index`` holds
    ``headword<TAB>offset<TAB>length`` per line (base64 numbers into the uncompressed text);
    ``dictionary`` is read with gzip (a .dict.dz is gzip-readable) or plainly. With
    ``headwords`` only those are decoded."""
    index, dictionary = Path(index), Path(dictionary)
    for p in (index, dictionary):
        if not p.is_file():
            raise DataError(f"{p} is missing: install the corpora and the dictionary with `{APT}` (as root)")
    raw = gzip.open(dictionary).read() if dictionary.suffix in (".dz", ".gz") else dictionary.read_bytes()
    out: Dict[str, Set[str]] = {}
    with open(index, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3 or not parts[0] or parts[0].startswith("00"):
                continue
            head = parts[0].lower()
            if headwords is not None and head not in headwords:
                continue
            off, n = _b64(parts[1]), _b64(parts[2])
            found = _translations(raw[off:off + n].decode("utf-8", errors="replace"))
            if found:
                out.setdefault(head, set()).update(found)
    return out


def test_dictionary(pairs: Dict[str, Set[str]], src: Embeddings, tgt: Embeddings, test_fraction: float = 0.5,
                    seed: int = 0) -> Tuple[Dict[int, Set[int]], Dict[int, Set[int]]]:
    """(train, test): source index -> target indices, the pairs of ``pairs`` whose both words are
    in the vocabularies, split by source word in a seeded order (``test_fraction`` to test)."""
    both: Dict[int, Set[int]] = {}
    for w, ts in pairs.items():
        if w in src.index:
            hits = {tgt.index[t] for t in ts if t in tgt.index}
            if hits:
                both[src.index[w]] = hits
    keys = sorted(both)
    order = np.random.default_rng(seed).permutation(len(keys))
    n_test = int(round(test_fraction * len(keys)))
    test = {keys[i]: both[keys[i]] for i in order[:n_test]}
    train = {keys[i]: both[keys[i]] for i in order[n_test:]}
    return train, test


# ----------------------------------------------------------------------------- maps and retrieval

def procrustes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The orthogonal W minimising ||x W^T - y||_F (rows paired): U V^T with U S V^T = svd(y^T x)."""
    u, _, vt = np.linalg.svd(y.T @ x)
    return u @ vt


def random_orthogonal(dim: int, seed: int = 0, proper: bool = False) -> np.ndarray:
    """A Haar-random orthogonal matrix (QR of a Gaussian matrix, signs fixed by R's diagonal);
    ``proper``: a rotation (determinant +1, the first column's sign flipped when needed)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    q = q * np.sign(np.diag(r))
    if proper and np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _top_mean(sim: np.ndarray, k: int) -> np.ndarray:
    """Per row, the mean of its k largest entries."""
    k = min(k, sim.shape[1])
    return np.partition(sim, sim.shape[1] - k, axis=1)[:, -k:].mean(1)


def _neighbourhood(a: np.ndarray, b: np.ndarray, k: int, chunk: int = 4096) -> np.ndarray:
    """r(a_i): the mean cosine of a_i's k nearest rows of b (rows unit-normalised)."""
    return np.concatenate([_top_mean(a[i:i + chunk] @ b.T, k) for i in range(0, len(a), chunk)])


def csls(mapped: np.ndarray, tgt: np.ndarray, k: int = 10, queries: Optional[np.ndarray] = None) -> np.ndarray:
    """CSLS(Wx_i, y_j) = 2 cos(Wx_i, y_j) - r_T(Wx_i) - r_S(y_j) for the rows ``queries`` of
    ``mapped`` (all by default) against every target row; r_T is the mean cosine of Wx_i's k
    nearest targets, r_S that of y_j's k nearest mapped sources (over all of ``mapped``)."""
    mapped = mapped / np.linalg.norm(mapped, axis=1, keepdims=True)
    tgt = tgt / np.linalg.norm(tgt, axis=1, keepdims=True)
    q = mapped if queries is None else mapped[queries]
    r_s = _neighbourhood(tgt, mapped, k)
    cos = q @ tgt.T
    return 2 * cos - _top_mean(cos, k)[:, None] - r_s[None, :]


def retrieve(mapped: np.ndarray, tgt: np.ndarray, queries: np.ndarray, method: str = "csls", top: int = 5,
             k: int = 10) -> np.ndarray:
    """The ``top`` best target rows for each query row of ``mapped``, best first: by cosine
    (``nn``) or by ``csls``."""
    if method == "nn":
        m = mapped[queries] / np.linalg.norm(mapped[queries], axis=1, keepdims=True)
        score = m @ (tgt / np.linalg.norm(tgt, axis=1, keepdims=True)).T
    elif method == "csls":
        score = csls(mapped, tgt, k, queries)
    else:
        raise ConfigError(f"retrieval method must be nn or csls, got '{method}'")
    part = np.argpartition(-score, top - 1, axis=1)[:, :top]
    rows = np.arange(len(score))[:, None]
    return part[rows, np.argsort(-score[rows, part], axis=1)]


def precision_at(mapped: np.ndarray, tgt: np.ndarray, pairs: Dict[int, Set[int]], method: str = "csls",
                 ks: Sequence[int] = (1, 5), k: int = 10) -> Dict[int, float]:
    """Precision@k for each k of ``ks`` on ``pairs`` (source index -> target indices): the share
    of source words with any of their translations among the first k retrieved."""
    src = np.array(sorted(pairs))
    got = retrieve(mapped, tgt, src, method, max(ks), k)
    return {n: float(np.mean([bool(set(got[i, :n].tolist()) & pairs[s]) for i, s in enumerate(src)])) for n in ks}


def identity_precision(src: Embeddings, tgt: Embeddings, pairs: Dict[int, Set[int]]) -> float:
    """Precision of translating a word as the same string when the target vocabulary has it
    (a word it lacks counts wrong; one guess, so @1 = @5)."""
    right = 0
    for s, ts in pairs.items():
        j = tgt.index.get(src.words[s])
        right += j is not None and j in ts
    return right / max(1, len(pairs))


def mean_csls_cosine(mapped: np.ndarray, tgt: np.ndarray, n: int = 1000, k: int = 10) -> float:
    """The paper's model-selection criterion: the mean cosine between the ``n`` most frequent
    mapped source words and their CSLS translations (no dictionary needed)."""
    q = np.arange(min(n, len(mapped)))
    best = retrieve(mapped, tgt, q, "csls", 1, k)[:, 0]
    m = mapped[q] / np.linalg.norm(mapped[q], axis=1, keepdims=True)
    t = tgt[best] / np.linalg.norm(tgt[best], axis=1, keepdims=True)
    return float((m * t).sum(1).mean())


def mutual_csls_pairs(mapped: np.ndarray, tgt: np.ndarray, n: int = 2000, k: int = 10) -> np.ndarray:
    """(source, target) index pairs among the ``n`` most frequent words of each side that are
    each other's CSLS nearest neighbour."""
    ns, nt = min(n, len(mapped)), min(n, len(tgt))
    score = csls(mapped, tgt, k)[:ns, :nt]
    fwd, back = score.argmax(1), score.argmax(0)
    s = np.arange(ns)
    ok = back[fwd] == s
    return np.stack([s[ok], fwd[ok]], 1)


def refine(w: np.ndarray, src: np.ndarray, tgt: np.ndarray, iterations: int = 5, n: int = 2000,
           k: int = 10) -> Tuple[np.ndarray, List[int]]:
    """Procrustes on the mutual CSLS nearest neighbours of the current map, ``iterations``
    times; returns the map and the size of each induced dictionary."""
    sizes = []
    for _ in range(iterations):
        pairs = mutual_csls_pairs(src @ w.T, tgt, n, k)
        sizes.append(len(pairs))
        if len(pairs) < 2:
            break
        w = procrustes(src[pairs[:, 0]], tgt[pairs[:, 1]])
    return w, sizes


# ----------------------------------------------------------------------------- adversarial

@dataclass
class AdversarialResult:
    w: np.ndarray                 # the map kept: the epoch with the best criterion
    best_epoch: int
    criterion: List[float]        # mean CSLS cosine after each epoch
    precision: List[Dict[str, float]]   # after each epoch, when a test dictionary was given
    d_loss: List[float]


def _discriminator(dim: int, hidden: int, dropout: float) -> nn.Module:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, hidden), nn.LeakyReLU(0.2),
                         nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))


def adversarial(src: np.ndarray, tgt: np.ndarray, epochs: int = 10, steps: int = 1000, batch: int = 32,
                most_frequent: int = 2000, hidden: int = 512, dropout: float = 0.1, d_steps: int = 5,
                lr: float = 0.1, lr_decay: float = 0.98, smooth: float = 0.1, beta: float = 0.001,
                seed: int = 0, init: str = "identity", test: Optional[Dict[int, Set[int]]] = None,
                criterion_words: int = 1000, log=None) -> AdversarialResult:
    """The paper's adversarial training of a linear map W (d x d) from ``src`` to ``tgt`` rows
    (both most-frequent first). Each step: ``d_steps`` discriminator updates on a batch of
    mapped source and a batch of target vectors drawn from the ``most_frequent`` words (labels
    smoothed by ``smooth``: 1 - smooth for mapped source, smooth for target; input dropout),
    then one update of W that flips the labels, followed by W <- (1 + beta) W - beta (W W^T) W.
    Plain SGD at ``lr`` for both, multiplied by ``lr_decay`` per epoch and halved when the
    criterion (``mean_csls_cosine``) falls. The map of the best-criterion epoch is returned.

    ``init``: identity, reflection (the identity with its first diagonal entry -1) or orthogonal
    (a random one), or a given matrix (d, d). W stays near the orthogonal matrices, and a continuous path through them
    keeps the sign of det W: from the identity only rotations are reached, so a target space
    whose alignment is a reflection (e.g. an SVD with a flipped sign) needs the reflection start."""
    if isinstance(init, np.ndarray):
        pass
    elif init not in ("identity", "reflection", "orthogonal"):
        raise ConfigError(f"init must be identity, reflection or orthogonal, got '{init}'")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    dim = src.shape[1]
    xs = torch.tensor(src, dtype=torch.float32)
    yt = torch.tensor(tgt, dtype=torch.float32)
    if isinstance(init, np.ndarray):
        w0 = np.array(init, dtype=np.float64)
    else:
        w0 = random_orthogonal(dim, seed) if init == "orthogonal" else np.eye(dim)
        if init == "reflection":
            w0[0, 0] = -1.0
    mapping = nn.Linear(dim, dim, bias=False)
    with torch.no_grad():
        mapping.weight.copy_(torch.tensor(w0, dtype=torch.float32))
    disc = _discriminator(dim, hidden, dropout)
    opt_d = torch.optim.SGD(disc.parameters(), lr=lr)
    opt_m = torch.optim.SGD(mapping.parameters(), lr=lr)
    bce = nn.BCEWithLogitsLoss()
    ns, nt = min(most_frequent, len(src)), min(most_frequent, len(tgt))
    labels = torch.cat([torch.full((batch,), 1 - smooth), torch.full((batch,), smooth)])
    crit, prec, d_losses = [], [], []
    best, best_w, best_epoch = -np.inf, w0, -1
    for epoch in range(epochs):
        total = 0.0
        for _ in range(steps):
            disc.train()
            for _ in range(d_steps):
                i = torch.randint(ns, (batch,), generator=g)
                j = torch.randint(nt, (batch,), generator=g)
                with torch.no_grad():
                    fake = mapping(xs[i])
                loss = bce(disc(torch.cat([fake, yt[j]])).squeeze(1), labels)
                opt_d.zero_grad()
                loss.backward()
                opt_d.step()
                total += float(loss.detach())
            disc.eval()
            i = torch.randint(ns, (batch,), generator=g)
            j = torch.randint(nt, (batch,), generator=g)
            out = disc(torch.cat([mapping(xs[i]), yt[j]])).squeeze(1)
            loss = bce(out, 1 - labels)
            opt_m.zero_grad()
            loss.backward()
            opt_m.step()
            with torch.no_grad():
                wm = mapping.weight
                wm.copy_((1 + beta) * wm - beta * (wm @ wm.T) @ wm)
        w = mapping.weight.detach().double().numpy().copy()
        mapped = src @ w.T
        c = mean_csls_cosine(mapped, tgt, criterion_words)
        crit.append(c)
        d_losses.append(total / (steps * d_steps))
        if test:
            prec.append({f"{m}@{n}": p for m in ("nn", "csls")
                         for n, p in precision_at(mapped, tgt, test, m).items()})
        if c > best:
            best, best_w, best_epoch = c, w, epoch
        for opt in (opt_d, opt_m):
            for group in opt.param_groups:
                group["lr"] *= lr_decay
                if len(crit) > 1 and c < crit[-2]:
                    group["lr"] /= 2
        if log is not None:
            log(epoch, c, d_losses[-1], prec[-1] if prec else None)
    return AdversarialResult(best_w, best_epoch, crit, prec, d_losses)
