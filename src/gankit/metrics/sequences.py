"""Metrics of generated token sequences: the oracle's NLL, held-out NLL, BLEU and self-BLEU.

All in float64. A sequence is its tokens up to its end (the first 0); BLEU compares those.

* ``nll_oracle``: on the ``oracle`` data (SeqGAN's synthetic experiment), the mean per-token
  negative log-likelihood of the generated sequences under the oracle that made the data,
  -(sum_i log p_oracle(x_i)) / (sum_i |x_i|): lower is better; the oracle's own samples score
  its entropy rate. A generated sequence that ends before the oracle's length counts only its
  tokens; ``nll_oracle_short`` is the share of such sequences.
* ``nll_test``: the mean per-token NLL of the held-out split under the run's generator
  (teacher forcing, each sequence's end counted): how well the generator covers data it never
  saw; a generator that collapses onto a few good sequences scores badly here.
* ``bleu``: BLEU-2 .. BLEU-5 of each generated sequence against the whole held-out split as
  its references, averaged over the sequences (Texygen's protocol, which SeqGAN-like papers
  report). Sentence BLEU-n is BP * exp(sum_{k=1..n} (1/n) log p_k): p_k the clipped k-gram
  precision (a k-gram's count clipped to its largest count in any one reference), BP =
  exp(1 - r/c) when the sequence's length c is below r, the reference length closest to c
  (the shorter on a tie), else 1. A p_k with no match is taken as 0.1 / (number of k-grams,
  at least 1) (Chen and Cherry's smoothing 1, NLTK's ``method1``), and a sequence without a
  single matching token scores 0, as NLTK's ``sentence_bleu`` does.
* ``self_bleu``: BLEU-n of each of the first ``n_hyp`` generated sequences against the other
  generated ones (Zhu et al. 2018): high when the samples repeat each other (low diversity).
"""
from __future__ import annotations

import bisect
import math
from collections import Counter
from typing import Dict, List, Sequence, Tuple

import torch

from ..errors import ConfigError
from ..registries import METRICS
from .evaluate import EvalSet

__all__ = ["token_lists", "ngrams", "sentence_bleu", "bleu", "self_bleu", "oracle_nll", "heldout_nll"]

#: the smoothing of a k-gram precision without a match: epsilon / (number of the sequence's k-grams)
EPSILON = 0.1


def token_lists(x) -> List[Tuple[int, ...]]:
    """Each row of token numbers (N, L) as a tuple of its tokens before its end (first 0)."""
    out = []
    for row in torch.as_tensor(x).tolist():
        end = row.index(0) if 0 in row else len(row)
        out.append(tuple(row[:end]))
    return out


def ngrams(seq: Sequence[int], k: int) -> Counter:
    return Counter(tuple(seq[i:i + k]) for i in range(len(seq) - k + 1))


def _closest(lengths_sorted: List[int], c: int) -> int:
    """The reference length closest to c (the shorter one on a tie)."""
    i = bisect.bisect_left(lengths_sorted, c)
    cands = [lengths_sorted[j] for j in (i - 1, i) if 0 <= j < len(lengths_sorted)]
    return min(cands, key=lambda r: (abs(r - c), r))


def _score(hyp: Sequence[int], clipped: Sequence[int], r: int, max_n: int) -> Dict[int, float]:
    """Sentence BLEU-n for n = 1..max_n of a hypothesis with ``clipped[k-1]`` clipped k-gram
    matches and closest reference length ``r``."""
    c = len(hyp)
    if c == 0 or clipped[0] == 0:
        return {n: 0.0 for n in range(1, max_n + 1)}
    bp = 1.0 if c > r else math.exp(1.0 - r / c)
    logs, out = 0.0, {}
    for k in range(1, max_n + 1):
        total = max(1, c - k + 1)
        num = clipped[k - 1]
        logs += math.log(num / total if num > 0 else EPSILON / total)
        out[k] = bp * math.exp(logs / k)
    return out


def sentence_bleu(references: Sequence[Sequence[int]], hypothesis: Sequence[int], n: int) -> float:
    """BLEU-n of one hypothesis against references (uniform weights, smoothing 1): the plain
    definition, for checks and small inputs."""
    clipped = []
    for k in range(1, n + 1):
        h = ngrams(hypothesis, k)
        best: Counter = Counter()
        for ref in references:
            for g, cnt in ngrams(ref, k).items():
                best[g] = max(best[g], cnt)
        clipped.append(sum(min(cnt, best[g]) for g, cnt in h.items()))
    return _score(hypothesis, clipped, _closest(sorted(len(r) for r in references), len(hypothesis)), n)[n]


def bleu(hypotheses: Sequence[Sequence[int]], references: Sequence[Sequence[int]], max_n: int = 5
         ) -> Dict[int, float]:
    """Mean sentence BLEU-n (n = 1..max_n) of ``hypotheses`` against all of ``references``."""
    if not references:
        raise ConfigError("BLEU needs reference sequences (the held-out split is empty)")
    best: List[Dict[tuple, int]] = []
    for k in range(1, max_n + 1):       # each k-gram's largest count in any one reference
        b: Dict[tuple, int] = {}
        for ref in references:
            for g, cnt in ngrams(ref, k).items():
                if cnt > b.get(g, 0):
                    b[g] = cnt
        best.append(b)
    ref_lengths = sorted(set(len(r) for r in references))
    sums = {n: 0.0 for n in range(1, max_n + 1)}
    for hyp in hypotheses:
        clipped = [sum(min(cnt, best[k - 1].get(g, 0)) for g, cnt in ngrams(hyp, k).items())
                   for k in range(1, max_n + 1)]
        for n, v in _score(hyp, clipped, _closest(ref_lengths, len(hyp)), max_n).items():
            sums[n] += v
    return {n: v / max(1, len(hypotheses)) for n, v in sums.items()}


def self_bleu(samples: Sequence[Sequence[int]], max_n: int = 5) -> Dict[int, float]:
    """Mean BLEU-n of each sample against all the other samples (leave one out)."""
    if len(samples) < 2:
        raise ConfigError("self-BLEU needs at least two generated sequences")
    per_sample = [[ngrams(s, k) for k in range(1, max_n + 1)] for s in samples]
    # for each k-gram: its largest count, how many samples reach it, and the second largest count
    tops: List[Dict[tuple, List[int]]] = [dict() for _ in range(max_n)]
    for grams in per_sample:
        for k in range(max_n):
            for g, cnt in grams[k].items():
                t = tops[k].setdefault(g, [0, 0, 0])
                if cnt > t[0]:
                    t[:] = [cnt, 1, t[0]]
                elif cnt == t[0]:
                    t[1] += 1
                elif cnt > t[2]:
                    t[2] = cnt
    length_counts = Counter(len(s) for s in samples)
    sums = {n: 0.0 for n in range(1, max_n + 1)}
    for s, grams in zip(samples, per_sample):
        clipped = []
        for k in range(max_n):
            total = 0
            for g, cnt in grams[k].items():
                top, holders, second = tops[k][g]
                others = second if (cnt == top and holders == 1) else top
                total += min(cnt, others)
            clipped.append(total)
        others_lengths = sorted(l for l, c in length_counts.items() if c - (l == len(s)) > 0)
        for n, v in _score(s, clipped, _closest(others_lengths, len(s)), max_n).items():
            sums[n] += v
    return {n: v / len(samples) for n, v in sums.items()}


def oracle_nll(x: torch.Tensor, log_prob) -> Tuple[float, float]:
    """(the mean per-token NLL of sequences ``x`` under ``log_prob``, the share of sequences
    shorter than the oracle's length)."""
    x = torch.as_tensor(x).long()
    from ..data.sequences import lengths

    n_tok = lengths(x)
    logp = log_prob(x).double()
    return float(-logp.sum() / n_tok.sum().clamp_min(1)), float((n_tok < x.shape[1]).double().mean())


@torch.no_grad()
def heldout_nll(G, x: torch.Tensor, batch: int = 500) -> float:
    """The mean per-token NLL of ``x`` under generator ``G`` (each sequence's end counted)."""
    device = next(G.parameters()).device
    total, count = 0.0, 0
    was = G.training
    G.eval()
    try:
        for s in range(0, len(x), batch):
            logp, n = G.log_prob(torch.as_tensor(x[s:s + batch]).long().to(device))
            total += float(logp.double().sum())
            count += int(n.sum())
    finally:
        G.train(was)
    return -total / max(1, count)


def _tokens(t: torch.Tensor, what: str) -> torch.Tensor:
    if t.dim() != 2 or t.is_floating_point():
        raise ConfigError(f"this metric reads token sequences; the {what} samples are {t.dtype} "
                          f"{tuple(t.shape[1:])}: evaluate a sequence run (data poems, quotes, text or oracle)")
    return t


@METRICS.register("nll_oracle")
def _nll_oracle(s: EvalSet, /) -> Dict[str, float]:
    """The oracle's mean per-token NLL of the generated sequences (oracle data; lower is better)."""
    if s.log_prob is None or s.kind != "tokens":
        raise ConfigError("nll_oracle needs the oracle that made the data: train on data.name=oracle")
    nll, short = oracle_nll(_tokens(s.fake, "generated"), s.log_prob)
    return {"nll_oracle": nll, "nll_oracle_short": short}


@METRICS.register("nll_test")
def _nll_test(s: EvalSet, /) -> Dict[str, float]:
    """The held-out split's mean per-token NLL under the run's generator (nats; lower is better)."""
    method = s.method
    G = method.for_sampling() if method is not None else None
    if G is None or not hasattr(G, "log_prob"):
        raise ConfigError("nll_test needs a run whose generator gives likelihoods of sequences (methods mle, gumbel)")
    return {"nll_test": heldout_nll(G, _tokens(s.heldout, "held-out"))}


@METRICS.register("bleu")
def _bleu(s: EvalSet, /, max_n: int = 5, n_hyp: int = 1000) -> Dict[str, float]:
    """BLEU-2..max_n of the first n_hyp generated sequences against the held-out split (higher: closer to real)."""
    if max_n < 2 or n_hyp < 1:
        raise ConfigError(f"bleu: max_n must be at least 2 and n_hyp positive, got {max_n}, {n_hyp}")
    hyps = token_lists(_tokens(s.fake, "generated")[:n_hyp])
    refs = token_lists(_tokens(s.heldout, "held-out"))
    scores = bleu(hyps, refs, max_n)
    return {f"bleu{n}": scores[n] for n in range(2, max_n + 1)}


@METRICS.register("self_bleu")
def _self_bleu(s: EvalSet, /, max_n: int = 5, n_hyp: int = 1000) -> Dict[str, float]:
    """Self-BLEU-2..max_n among the first n_hyp generated sequences (lower: more diverse)."""
    if max_n < 2 or n_hyp < 2:
        raise ConfigError(f"self_bleu: max_n must be at least 2 and n_hyp at least 2, got {max_n}, {n_hyp}")
    scores = self_bleu(token_lists(_tokens(s.fake, "generated")[:n_hyp]), max_n)
    return {f"self_bleu{n}": scores[n] for n in range(2, max_n + 1)}
