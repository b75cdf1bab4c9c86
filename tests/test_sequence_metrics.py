"""BLEU, self-BLEU, the oracle's NLL and held-out NLL against closed forms and independent computations.

NLTK is not a dependency; BLEU is checked against its definition worked out by hand on tiny
examples (the numbers NLTK's ``sentence_bleu`` with ``SmoothingFunction().method1`` gives for
them), and the fast corpus code against the plain per-sentence definition."""
import math
import random

import pytest
import torch

from gankit.errors import ConfigError
from gankit.metrics.sequences import bleu, heldout_nll, oracle_nll, self_bleu, sentence_bleu, token_lists
from gankit.nets.sequence import LSTMGenerator


def test_sentence_bleu_closed_forms():
    # p1 = 3/4, p2 = 2/3, p3 = 1/2, no 4-gram match: 0.1 / 1 (smoothing 1); same length: BP = 1
    hyp, ref = [1, 2, 3, 4], [1, 2, 3, 5]
    assert sentence_bleu([ref], hyp, 2) == pytest.approx(math.sqrt(3 / 4 * 2 / 3), abs=1e-12)
    assert sentence_bleu([ref], hyp, 3) == pytest.approx((3 / 4 * 2 / 3 * 1 / 2) ** (1 / 3), abs=1e-12)
    assert sentence_bleu([ref], hyp, 4) == pytest.approx((3 / 4 * 2 / 3 * 1 / 2 * 0.1) ** (1 / 4), abs=1e-12)
    # brevity: c = 2 against r = 4: exp(1 - 4/2); every n-gram matches
    assert sentence_bleu([[1, 2, 3, 4]], [1, 2], 2) == pytest.approx(math.exp(-1), abs=1e-12)
    # clipping: four 1s against a reference with two: p1 = 2/4; bigram (1, 1) is absent: 0.1 / 3
    assert sentence_bleu([[1, 2, 1, 3]], [1, 1, 1, 1], 2) == pytest.approx(math.sqrt(2 / 4 * 0.1 / 3), abs=1e-12)
    # the closest reference length, the shorter on a tie: c = 3 between 2 and 4 -> r = 2 -> BP = 1
    assert sentence_bleu([[7, 8], [9, 9, 9, 9]], [7, 8, 9], 2) == pytest.approx(math.sqrt(1.0 * 1 / 2), abs=1e-12)
    # the clipping count is the largest in any one reference, not summed over them
    assert sentence_bleu([[5, 6], [5, 7]], [5, 5], 2) == pytest.approx(math.sqrt(1 / 2 * 0.1 / 1), abs=1e-12)
    # no word in common: 0; a hypothesis shorter than n: its missing n-grams count as 0.1 / 1
    assert sentence_bleu([[1, 2, 3]], [4, 5, 6], 2) == 0.0
    assert sentence_bleu([[1, 2, 3]], [1], 3) == pytest.approx((1.0 * 0.1 * 0.1) ** (1 / 3) * math.exp(1 - 3), abs=1e-12)


def _corpus(rng, n, vocab=6):
    return [tuple(rng.randrange(1, vocab) for _ in range(rng.randint(1, 7))) for _ in range(n)]


def test_corpus_bleu_is_the_mean_of_sentence_bleu():
    rng = random.Random(0)
    hyps, refs = _corpus(rng, 40), _corpus(rng, 30)
    fast = bleu(hyps, refs, 5)
    for n in range(2, 6):
        assert fast[n] == pytest.approx(sum(sentence_bleu(refs, h, n) for h in hyps) / len(hyps), abs=1e-12)


def test_self_bleu_leaves_each_sample_out():
    rng = random.Random(1)
    samples = _corpus(rng, 35, vocab=4) + [(1, 2, 3)] * 3          # repeats: a sample's twin is among the others
    fast = self_bleu(samples, 4)
    for n in range(2, 5):
        slow = sum(sentence_bleu(samples[:i] + samples[i + 1:], s, n) for i, s in enumerate(samples)) / len(samples)
        assert fast[n] == pytest.approx(slow, abs=1e-12)
    assert self_bleu([(1, 2, 3)] * 4, 3)[3] == pytest.approx(1.0)      # identical samples: self-BLEU 1
    with pytest.raises(ConfigError, match="at least two"):
        self_bleu([(1, 2)])


def test_token_lists_stop_at_the_end():
    assert token_lists(torch.tensor([[4, 5, 0, 6], [1, 2, 3, 4]])) == [(4, 5), (1, 2, 3, 4)]


def test_oracle_nll_is_per_token_and_counts_short_sequences():
    def log_prob(x):                                   # a toy "oracle": every token costs log 2, 0 ends
        n = (x != 0).cumprod(1).sum(1)
        return -n.double() * math.log(2)

    x = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0]])
    nll, short = oracle_nll(x, log_prob)
    assert nll == pytest.approx(math.log(2)) and short == 0.5


def test_heldout_nll_is_the_mean_per_token_nll():
    torch.manual_seed(0)
    G = LSTMGenerator(9, 5)
    x = torch.randint(1, 9, (23, 5))
    x[3, 2:] = 0
    logits = torch.log_softmax(G.logits(x).double(), -1).detach()
    want, count = 0.0, 0
    for i in range(len(x)):
        for t in range(5):
            want -= float(logits[i, t, x[i, t]])
            count += 1
            if x[i, t] == 0:
                break
    assert heldout_nll(G, x, batch=7) == pytest.approx(want / count, abs=1e-5)
