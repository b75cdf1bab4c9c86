"""``summary_quality``: how much of a document a summary carries, and how human it reads.

No reference summaries exist for the ``documents`` data (fortunes quotations), so there is
no ROUGE against references. The summaries a ``summarize`` run writes for held-out
documents are judged against two baselines of the same length (each document's baseline
has as many words as its generated summary): ``lead``, the document's first words, and
``random``, that many words of the document picked at random (seeded) in their order; and,
for the information carried, ``none``, an empty summary.

Information (lower NLL and higher recall: more of the document):

* ``summary_nll``: the per-token NLL of the held-out documents under a *judge*
  reconstructor, an ``encoder_decoder`` (width ``judge_hidden``) trained from scratch for
  ``judge_steps`` Adam steps of ``batch`` pairs (seeded draws) of (summary, document) of the
  first ``train_docs`` training documents (their summaries by the run's generator), one judge
  per kind of summary (so every baseline has a reconstructor of its own, trained alike);
  ``summary_nll_none`` (every summary empty: the judge is a language model of documents) is
  the ceiling no summary should reach;
* ``summary_rouge1_recall``: ROUGE-1 recall of the document's words: the clipped unigram
  matches sum_w min(count_summary(w), count_document(w)) over the document's length.

Readability (the lecture's discriminator's aim):

* ``summary_perplexity``: perplexity under :func:`gankit.metrics.fluency.language_model`
  trained for ``lm_steps`` on the distinct training sentences (the ``sentence`` field), beside the held-out
  human sentences' (``summary_perplexity_sentences``, the reference);
* ``summary_d_human``: the run's discriminator's mean probability that a summary is a
  person's sentence, beside the held-out human sentences' (``summary_d_human_sentences``).

The scores cover the first ``docs`` distinct held-out documents the evaluation summarised.
"""
from __future__ import annotations

from collections import Counter
from typing import Dict, Tuple

import numpy as np
import torch

from ..errors import ConfigError
from ..registries import DATASETS, METRICS
from .evaluate import EvalSet
from .fluency import fit_by_likelihood, language_model, perplexity

__all__ = ["rouge1_recall", "lead_summaries", "random_summaries", "train_judge", "judge_nll"]


def _rows(x: torch.Tensor):
    for row in torch.as_tensor(x).tolist():
        yield row[:row.index(0)] if 0 in row else row


def _lengths(x: torch.Tensor) -> torch.Tensor:
    return torch.tensor([len(r) for r in _rows(x)], dtype=torch.long)


def rouge1_recall(summaries: torch.Tensor, documents: torch.Tensor) -> np.ndarray:
    """ROUGE-1 recall of each document (N,) by its summary: clipped unigram matches over the
    document's number of tokens (each up to its first 0)."""
    out = []
    for s, d in zip(_rows(summaries), _rows(documents)):
        cs, cd = Counter(s), Counter(d)
        out.append(sum(min(c, cs[w]) for w, c in cd.items()) / max(1, len(d)))
    return np.asarray(out, dtype=np.float64)


def lead_summaries(documents: torch.Tensor, lengths: torch.Tensor, width: int) -> torch.Tensor:
    """Each document's first ``lengths[i]`` tokens (at most its own length), padded with 0 to ``width``."""
    docs = torch.as_tensor(documents).long()
    k = torch.minimum(lengths.clamp_max(width), _lengths(docs))
    keep = torch.arange(width)[None, :] < k[:, None]
    return torch.where(keep, docs[:, :width], torch.zeros_like(docs[:, :width]))


def random_summaries(documents: torch.Tensor, lengths: torch.Tensor, width: int, seed: int = 0) -> torch.Tensor:
    """``lengths[i]`` tokens of document i at positions drawn without replacement (a generator
    seeded by ``seed``), kept in the document's order, padded with 0 to ``width``."""
    g = np.random.default_rng([seed, 5])
    out = torch.zeros(len(documents), width, dtype=torch.long)
    for i, row in enumerate(_rows(documents)):
        k = min(int(lengths[i]), len(row), width)
        pos = np.sort(g.choice(len(row), size=k, replace=False)) if k else np.zeros(0, dtype=np.int64)
        out[i, :k] = torch.tensor([row[p] for p in pos], dtype=torch.long)
    return out


def train_judge(summaries: torch.Tensor, documents: torch.Tensor, vocab: int, steps: int = 500, batch: int = 32,
                seed: int = 0, embed: int = 64, hidden: int = 64, lr: float = 3e-3):
    """An ``encoder_decoder`` reconstructor of ``documents`` (N, L) from ``summaries`` (N, S),
    trained from scratch by maximum likelihood for ``steps`` Adam steps of ``batch`` seeded
    draws of pairs; deterministic given its seed."""
    from ..nets.summarizer import EncoderDecoder

    summaries, documents = torch.as_tensor(summaries).long(), torch.as_tensor(documents).long()
    if len(summaries) != len(documents) or len(documents) < 2:
        raise ConfigError(f"a judge needs at least 2 (summary, document) pairs, got {len(summaries)} summaries and "
                          f"{len(documents)} documents")
    if steps < 1 or batch < 1:
        raise ConfigError(f"summary_quality: judge_steps and batch must be positive, got {steps}, {batch}")
    return fit_by_likelihood(lambda: EncoderDecoder(vocab, documents.shape[1], embed, hidden),
                             lambda judge, idx: judge.nll(summaries[idx], documents[idx]), len(documents), steps,
                             batch, seed, lr)


@torch.no_grad()
def judge_nll(judge, summaries: torch.Tensor, documents: torch.Tensor, batch: int = 500) -> float:
    """The per-token NLL of ``documents`` given ``summaries`` under a judge (ends counted)."""
    total, count = 0.0, 0
    for s in range(0, len(documents), batch):
        logp, n = judge.log_prob(torch.as_tensor(summaries[s:s + batch]).long(),
                                 torch.as_tensor(documents[s:s + batch]).long())
        total += float(logp.double().sum())
        count += int(n.sum())
    return -total / max(1, count)


def _distinct(documents: torch.Tensor, k: int) -> torch.Tensor:
    """Positions of the first ``k`` distinct rows (first occurrences, in order)."""
    seen, keep = set(), []
    for i, row in enumerate(torch.as_tensor(documents).tolist()):
        t = tuple(row)
        if t not in seen:
            seen.add(t)
            keep.append(i)
            if len(keep) == k:
                break
    return torch.tensor(keep, dtype=torch.long)


def _heldout_sentences(section: Dict) -> torch.Tensor:
    """The ``sentence`` field of the held-out split of the run's data set."""
    params = {k: v for k, v in section.items() if k != "name"}
    params["split"] = "test" if section.get("split", "train") == "train" else "train"
    return DATASETS.get(section["name"], "data.name")(**params).extra["sentence"]


@METRICS.register("summary_quality")
def summary_quality(s: EvalSet, /, docs: int = 300, train_docs: int = 2000, judge_steps: int = 500,
                    judge_hidden: int = 64, lm_steps: int = 600, batch: int = 32, seed: int = 0) -> Dict[str, float]:
    """Summaries of held-out documents (method summarize) beside lead and random-word baselines of
    the same lengths: the NLL of the document under a judge reconstructor trained from scratch
    per kind of summary (summary_nll*, none: an empty summary), ROUGE-1 recall of the document
    (summary_rouge1_recall*), perplexity under a language model of the training sentences
    (summary_perplexity*, _sentences: held-out human sentences) and the run's discriminator's probability
    "human" (summary_d_human*)."""
    method = s.method
    if method is None or not hasattr(method, "summarise") or "document" not in s.outputs_local:
        raise ConfigError("summary_quality judges summaries of documents: evaluate a summarize run (method "
                          "summarize on data documents)")
    if docs < 1 or train_docs < 2:
        raise ConfigError(f"summary_quality: docs must be positive and train_docs at least 2, got {docs}, {train_docs}")
    documents = s.output("document").long()
    keep = _distinct(documents, docs)
    documents, summaries = documents[keep], s.fake.long()[keep][:, :method.summary_length]
    section, train = s.train_data
    vocab = len(method.vocab)
    train_x = train.x[:train_docs].long()
    width = method.summary_length

    kinds: Dict[str, Tuple[torch.Tensor, torch.Tensor]] = {}
    train_summaries = method.summarise(train_x)
    train_len, test_len = _lengths(train_summaries).clamp_min(1), _lengths(summaries).clamp_min(1)
    kinds[""] = (train_summaries, summaries)
    kinds["_lead"] = (lead_summaries(train_x, train_len, width), lead_summaries(documents, test_len, width))
    kinds["_random"] = (random_summaries(train_x, train_len, width, seed),
                        random_summaries(documents, test_len, width, seed + 1))
    out: Dict[str, float] = {}
    for suffix, (tr, te) in kinds.items():
        judge = train_judge(tr, train_x, vocab, judge_steps, batch, seed, hidden=judge_hidden)
        out[f"summary_nll{suffix}"] = judge_nll(judge, te, documents)
    empty = train_judge(torch.zeros(len(train_x), width, dtype=torch.long), train_x, vocab, judge_steps, batch, seed,
                        hidden=judge_hidden)
    out["summary_nll_none"] = judge_nll(empty, torch.zeros(len(documents), width, dtype=torch.long), documents)
    for suffix, (_, te) in kinds.items():
        out[f"summary_rouge1_recall{suffix}"] = float(rouge1_recall(te, documents).mean())

    sentences = torch.unique(train.extra["sentence"].long(), dim=0)
    lm = language_model(sentences, vocab, steps=lm_steps, batch=batch, seed=seed)
    human = torch.unique(_heldout_sentences(section).long(), dim=0)
    for suffix, (_, te) in kinds.items():
        out[f"summary_perplexity{suffix}"] = perplexity(lm, te)
        out[f"summary_d_human{suffix}"] = float(method.judge(te).double().mean())
    out["summary_perplexity_sentences"] = perplexity(lm, human)
    out["summary_d_human_sentences"] = float(method.judge(human).double().mean())
    out["summary_length"] = float(_lengths(summaries).double().mean())
    return out
