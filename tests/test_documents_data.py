"""The documents data set: long quotations to summarise and a supply of short human sentences."""
from collections import Counter

import pytest
import torch

from gankit.data.sequences import FORTUNES_DIR, decode, lengths
from gankit.data.summaries import document_corpus, documents
from gankit.errors import ConfigError, DataError

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.skipif(not (FORTUNES_DIR / "wisdom").is_file(),
                                 reason="the English fortunes: apt-get install fortunes")]


def _rows(x):
    return {tuple(r) for r in x.tolist()}


def test_splits_hold_whole_documents_of_the_asked_lengths():
    train, test = documents(), documents(split="test")
    assert len(train) > 2500 and 250 < len(test) < 500        # about 3,600 quotations of 20..50 words, 10% held out
    assert _rows(train.x).isdisjoint(_rows(test.x))           # no document in both splits
    for data in (train, test):
        n = lengths(data.x)
        assert int(n.min()) >= 20 and int(n.max()) <= 50 and data.x.shape[1] == 50
        s = lengths(data.extra["sentence"])
        assert int(s.min()) >= 4 and int(s.max()) <= 10 and data.extra["sentence"].shape[1] == 10
        f = data.fields()
        assert f["x"].kind == f["sentence"].kind == "tokens" and f["sentence"].classes == f["x"].classes
    # the sentences are split too (as words: in tokens, two sentences may differ only in <unk>s)
    (train_docs, test_docs), (train_sents, test_sents) = document_corpus(20, 50, (4, 10), 0.1, 0)
    assert set(train_docs).isdisjoint(test_docs) and set(train_sents).isdisjoint(test_sents)
    assert len(train_docs) == len(train) and len(test_docs) == len(test)


def test_one_vocabulary_of_the_training_words_seen_min_count_times():
    (train_docs, _), (train_sents, _) = document_corpus(20, 50, (4, 10), 0.1, 0)
    counts = Counter(w for seq in train_docs + train_sents for w in seq)
    data = documents(min_count=4)
    vocab = data.vocabulary
    assert vocab[:2] == ["<pad>", "<unk>"]
    assert set(vocab[2:]) == {w for w, c in counts.items() if c >= 4}
    assert 2000 < len(vocab) < 5000                           # a few thousand words: CPU-sized
    # each training document reads back as its words, a word seen fewer times as <unk>
    by_text = {" ".join(seq): seq for seq in train_docs}
    shown = decode(data.x[0], vocab).split()
    originals = [seq for seq in train_docs if len(seq) == len(shown)
                 and all(s == w or (s == "<unk>" and counts[w] < 4) for s, w in zip(shown, seq))]
    assert originals and "<unk>" not in by_text


def test_the_sentences_are_a_seeded_order_not_pairs():
    a, b = documents(n_samples=200), documents(n_samples=200)
    assert torch.equal(a.x, b.x) and torch.equal(a.extra["sentence"], b.extra["sentence"])
    other = documents(n_samples=200, seed=1)
    assert not torch.equal(a.x, other.x)                       # another seed, another split and order
    # distinct sentences beside the documents (a permutation, cycled only past its end)
    assert len(_rows(a.extra["sentence"])) == 200


def test_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="min_words"):
        documents(min_words=40, max_words=30)
    with pytest.raises(ConfigError, match="summary_words"):
        documents(summary_words=[10, 4])
    with pytest.raises(ConfigError, match="shorter than the documents"):
        documents(summary_words=[4, 25])
    with pytest.raises(ConfigError, match="n_samples"):
        documents(n_samples=0)
    with pytest.raises(ConfigError, match="test_fraction"):
        documents(test_fraction=1.5)
    with pytest.raises(DataError, match="apt-get install -y fortunes"):
        documents(root=str(tmp_path))
    (tmp_path / "few").write_text("one short line here\n%\nanother one\n")
    with pytest.raises(DataError, match="widen"):
        documents(root=str(tmp_path), files=["few"])
