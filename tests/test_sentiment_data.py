"""The sentiment data set: quotations in two styles by the VADER lexicon, split by whole sentences."""
import sys

import pytest
import torch

from gankit.data.sequences import FORTUNES_DIR, decode_all
from gankit.errors import ConfigError, DataError

pytest.importorskip("vaderSentiment")
if not (FORTUNES_DIR / "wisdom").is_file():
    pytest.skip("the sentiment data reads the fortunes package: apt-get install fortunes", allow_module_level=True)

from gankit.data import sentiment as S  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def _texts(data):
    return decode_all(data.x, data.vocabulary)


def test_labels_agree_with_vader_and_the_threshold():
    data = S.sentiment(min_count=1, threshold=0.3)        # every training word in the vocabulary: exact text
    assert data.fields()["domain"].classes == ("negative", "positive")
    texts, labels = _texts(data), data.extra["domain"].tolist()
    assert len(texts) > 2000 and set(labels) == {0, 1}
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()               # an analyser of the test's own
    for text, label in zip(texts[:400], labels[:400]):
        score = analyzer.polarity_scores(text)["compound"]
        assert (score >= 0.3) if label == 1 else (score <= -0.3), (text, score, label)
        assert 3 <= len(text.split()) <= 20


def test_the_split_holds_whole_sentences_once():
    train, test = S.sentiment(min_count=1), S.sentiment(split="test", min_count=1)
    assert test.vocabulary == train.vocabulary
    a, b = set(_texts(train)), set(_texts(test))
    assert len(a) == len(train) and not (a & b)
    n = len(train) + len(test)
    assert abs(len(test) / n - 0.2) < 0.01                # the default test_fraction
    # about 1,450 negative and 1,910 positive sentences of 3..20 words at threshold 0.3
    neg = int((train.extra["domain"] == 0).sum() + (test.extra["domain"] == 0).sum())
    assert 1350 < neg < 1550 and 1800 < n - neg < 2050
    again = S.sentiment(split="test", min_count=1)       # the split is a function of the seed
    assert torch.equal(again.x, test.x) and torch.equal(again.extra["domain"], test.extra["domain"])
    other = S.sentiment(split="test", min_count=1, seed=1)
    assert not torch.equal(other.x[:50], test.x[:50])


def test_a_higher_threshold_keeps_a_subset_and_the_vocabulary_comes_from_training():
    strict = S.sentiment(threshold=0.6, min_count=1)
    loose = S.sentiment(threshold=0.3, min_count=1)
    assert len(strict) < len(loose)
    test = S.sentiment(split="test", min_count=1)
    assert test.vocabulary == loose.vocabulary            # the test split is told in the training words
    counted = S.sentiment(min_count=2)
    assert len(counted.vocabulary) < len(loose.vocabulary) and counted.vocabulary[:2] == ["<pad>", "<unk>"]
    assert len(S.sentiment(n_samples=10)) == 10


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="threshold must be between 0 and 1"):
        S.sentiment(threshold=1.5)
    with pytest.raises(ConfigError, match="min_words"):
        S.sentiment(min_words=9, max_words=4)
    with pytest.raises(ConfigError, match="test_fraction"):
        S.sentiment(test_fraction=1.0)
    with pytest.raises(DataError, match="apt-get install -y fortunes"):
        S.sentiment(root="/nonexistent/fortunes")
    with pytest.raises(DataError, match="each style needs at least 2"):
        S.sentiment(threshold=0.999)


def test_a_missing_lexicon_names_the_extra(monkeypatch):
    S.vader.cache_clear()
    S.sentence_scores.cache_clear()
    monkeypatch.setitem(sys.modules, "vaderSentiment.vaderSentiment", None)   # import fails
    try:
        with pytest.raises(DataError, match=r"pip install -e \.\[text\]"):
            S.sentiment()
    finally:
        S.vader.cache_clear()
