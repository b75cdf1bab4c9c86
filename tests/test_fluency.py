"""The language-model judge of fluency: perplexity is exp of the per-token NLL, low for sentences of
the corpus's kind, high for the same words shuffled."""
import math

import pytest
import torch

from gankit.errors import ConfigError
from gankit.metrics.fluency import language_model, perplexity, train_language_model

pytestmark = pytest.mark.usefixtures("one_thread")


def _grammar(n, seed):
    """Sentences "a b c ... " counting up from a random start token, of random lengths, ended by 0."""
    g = torch.Generator().manual_seed(seed)
    start = torch.randint(1, 6, (n,), generator=g)
    length = torch.randint(3, 8, (n,), generator=g)
    x = (start.unsqueeze(1) + torch.arange(10).unsqueeze(0))
    x[torch.arange(10).unsqueeze(0) >= length.unsqueeze(1)] = 0
    return x


def test_perplexity_ranks_sentences_of_the_corpus_above_shuffled_words():
    lm = train_language_model(_grammar(500, 0), vocab=16, steps=300, hidden=32, embed=16)
    held = _grammar(200, 1)
    shuffled = held.clone()
    g = torch.Generator().manual_seed(2)
    for row in shuffled:
        k = int((row > 0).sum())
        row[:k] = row[:k][torch.randperm(k, generator=g)]
    p_held, p_shuf = perplexity(lm, held), perplexity(lm, shuffled)
    assert p_held < 2.0 < p_shuf
    # independent computation: exp of the mean NLL of every counted token
    with torch.no_grad():
        logp = torch.log_softmax(lm.logits(held), -1).gather(2, held.unsqueeze(2)).squeeze(2)
    alive = (torch.cumsum((held == 0).long(), 1) - (held == 0).long()) == 0
    assert p_held == pytest.approx(math.exp(float(-logp[alive].double().mean())), rel=1e-5)


def test_the_judge_is_trained_once_and_is_deterministic():
    x = _grammar(100, 3)
    a = language_model(x, 16, steps=20, hidden=8, embed=8)
    assert language_model(x.clone(), 16, steps=20, hidden=8, embed=8) is a
    b = train_language_model(x, 16, steps=20, hidden=8, embed=8)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_bad_input_is_refused():
    with pytest.raises(ConfigError, match=r"\[0, 5\)"):
        train_language_model(_grammar(10, 0), vocab=5, steps=1)
    with pytest.raises(ConfigError, match="at least 2"):
        train_language_model(torch.zeros(1, 4, dtype=torch.long), vocab=5, steps=1)
