"""Word translation by aligning embeddings: Procrustes, CSLS, the dictd reader, the adversarial map."""
from __future__ import annotations

import gzip
import subprocess
import sys

import numpy as np
import pytest

from gankit import translation as T
from gankit.errors import ConfigError, DataError


pytestmark = pytest.mark.usefixtures("one_thread")     # tiny networks: one thread


def _unit(v):
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_procrustes_recovers_a_planted_orthogonal_map_exactly():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 7))
    w = T.random_orthogonal(7, 4)
    got = T.procrustes(x, x @ w.T)
    assert np.allclose(got, w, atol=1e-10)
    assert np.allclose(got @ got.T, np.eye(7), atol=1e-12)
    # with noise it is still the least-squares orthogonal map: no other orthogonal map does better
    y = x @ w.T + 0.3 * rng.standard_normal(x.shape)
    best = np.linalg.norm(x @ T.procrustes(x, y).T - y)
    for s in range(20):
        assert best <= np.linalg.norm(x @ T.random_orthogonal(7, 100 + s).T - y)
    for s in range(5):
        q = T.random_orthogonal(7, 200 + s, proper=True)
        assert np.isclose(np.linalg.det(q), 1.0)


def test_csls_matches_a_direct_computation():
    rng = np.random.default_rng(1)
    src, tgt, k = rng.standard_normal((5, 3)), rng.standard_normal((6, 3)), 2
    s, t = _unit(src), _unit(tgt)
    want = np.zeros((5, 6))
    for i in range(5):
        r_t = np.mean(sorted([s[i] @ t[j] for j in range(6)])[-k:])
        for j in range(6):
            r_s = np.mean(sorted([t[j] @ s[m] for m in range(5)])[-k:])
            want[i, j] = 2 * (s[i] @ t[j]) - r_t - r_s
    assert np.allclose(T.csls(src, tgt, k), want, atol=1e-12)
    assert np.allclose(T.csls(src, tgt, k, queries=np.array([3, 1])), want[[3, 1]], atol=1e-12)
    got = T.retrieve(src, tgt, np.arange(5), "csls", top=3, k=k)
    assert (got == np.argsort(-want, axis=1)[:, :3]).all()
    cos = s @ t.T
    assert (T.retrieve(src, tgt, np.arange(5), "nn", top=2) == np.argsort(-cos, axis=1)[:, :2]).all()
    with pytest.raises(ConfigError, match="nn or csls"):
        T.retrieve(src, tgt, np.arange(5), "cosine")


def test_csls_reduces_hubness():
    """Queries gathered round one direction c, each with its own noisy target, and c itself
    among the targets: plain nearest neighbours send many queries to the hub c; CSLS
    penalises c for being near everything."""
    rng = np.random.default_rng(2)
    d, n = 30, 200
    c = _unit(rng.standard_normal((1, d)))[0]
    q = _unit(c + 0.6 * rng.standard_normal((n, d)) / np.sqrt(d))
    t = _unit(q + 0.9 * rng.standard_normal((n, d)) / np.sqrt(d))
    tgt = np.vstack([t, c])
    pairs = {i: {i} for i in range(n)}
    hub_nn = int((T.retrieve(q, tgt, np.arange(n), "nn", top=1)[:, 0] == n).sum())
    hub_csls = int((T.retrieve(q, tgt, np.arange(n), "csls", top=1)[:, 0] == n).sum())
    assert hub_nn > n * 3 // 4
    assert hub_csls < hub_nn / 2
    assert T.precision_at(q, tgt, pairs, "csls")[1] > T.precision_at(q, tgt, pairs, "nn")[1] + 0.2


def _dictd(tmp_path, entries):
    """Write a dictd pair (index + gzip dictionary) holding ``entries`` (headword, text)."""
    blob, lines = b"", []
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def enc(v):
        s = ""
        while True:
            s = b64[v % 64] + s
            v //= 64
            if not v:
                return s
    for head, text in entries:
        raw = text.encode("utf-8")
        lines.append(f"{head}\t{enc(len(blob))}\t{enc(len(raw))}\n")
        blob += raw
    (tmp_path / "x.index").write_text("".join(lines), encoding="utf-8")
    with gzip.open(tmp_path / "x.dict.dz", "wb") as f:
        f.write(blob)
    return tmp_path / "x.index", tmp_path / "x.dict.dz"


def test_dictd_parser_on_a_generated_fixture(tmp_path):
    entries = [
        ("00-database-info", "This is a test dictionary with, many, words\n"),
        ("dog", "dog /dˈɒɡ/\nHund <masc> [zool.]\n      \"train a dog\"  - einen Hund abrichten\n"),
        ("dog", "dog /dˈɒɡ/\nBock <masc>, Auflagebock <masc> [techn.]\n   Synonym: {trestle}\n"),
        ("white", "white /wˈaɪt/\nweiß <adj>, (sehr) hell, schneeweiß\n"),
        ("go on", "go on\nweitermachen\n"),
        ("Bread", "bread\nBrot <neut>, belegtes Brot\n"),
        ("cat", "cat\n"),
    ]
    index, dictionary = _dictd(tmp_path, entries)
    got = T.parse_dictd(index, dictionary)
    assert got == {"dog": {"hund", "bock", "auflagebock"}, "white": {"weiß", "hell", "schneeweiß"},
                   "go on": {"weitermachen"}, "bread": {"brot"}}
    assert T.parse_dictd(index, dictionary, headwords={"white"}) == {"white": {"weiß", "hell", "schneeweiß"}}
    with pytest.raises(DataError, match="apt-get install fortunes fortunes-de dict-freedict-eng-deu"):
        T.parse_dictd(tmp_path / "none.index", dictionary)


def test_tokenize_keeps_umlauts_and_the_split_is_by_source_word():
    assert T.tokenize("Der Spieß hat Größe, 3 Äpfel -- don’t!") == ["der", "spieß", "hat", "größe", "äpfel", "don't"]
    e = T.Embeddings(["a", "b", "c", "d"], np.eye(4), np.ones(4))
    g = T.Embeddings(["x", "b", "y", "z"], np.eye(4), np.ones(4))
    words = {"a": {"x", "q"}, "b": {"b"}, "c": {"y", "z"}, "d": {"nope"}, "e": {"x"}}
    train, test = T.test_dictionary(words, e, g, 0.5, seed=0)
    assert set(train) | set(test) == {0, 1, 2} and not set(train) & set(test)
    assert {**train, **test} == {0: {0}, 1: {1}, 2: {2, 3}}
    assert T.test_dictionary(words, e, g, 0.5, seed=0) == (train, test)
    # identity-string: "b" is the only word spelled alike in both vocabularies
    assert T.identity_precision(e, g, {0: {0}, 1: {1}, 2: {2, 3}}) == pytest.approx(1 / 3)
    v = T.normalise(np.random.default_rng(0).standard_normal((50, 5)) + 3)
    assert np.allclose(np.linalg.norm(v, axis=1), 1)


def test_adversarial_recovers_a_planted_rotation():
    """A Gaussian mixture (clusters of unequal weight, anisotropic noise) and its rotation by a
    planted R plus a little noise: the adversarial map alone lands near R from the identity,
    and refinement then matches the precision of R itself."""
    rng = np.random.default_rng(0)
    d, k, n = 3, 6, 1000
    means = 3 * rng.standard_normal((k, d))
    weights = np.arange(1, k + 1.0) / np.arange(1, k + 1.0).sum()
    x = means[rng.choice(k, n, p=weights)] + rng.standard_normal((n, d)) * np.linspace(1.5, 0.3, d)
    r = T.random_orthogonal(d, 5, proper=True)
    y = x @ r.T + 0.02 * rng.standard_normal((n, d))
    pairs = {i: {i} for i in range(n)}
    start = T.precision_at(x, y, pairs, "csls")[1]
    ceiling = T.precision_at(x @ r.T, y, pairs, "csls")[1]
    res = T.adversarial(x, y, epochs=2, steps=200, most_frequent=n, hidden=64, seed=0, test=pairs)
    assert np.abs(res.w - r).max() < 0.1
    assert res.precision[res.best_epoch]["csls@1"] > start + 0.3
    w, sizes = T.refine(res.w, x, y, 2, n=n)
    assert np.abs(w - r).max() < 0.01
    assert T.precision_at(x @ w.T, y, pairs, "csls")[1] >= ceiling - 0.01
    assert res.criterion[res.best_epoch] == max(res.criterion)
    with pytest.raises(ConfigError, match="init must be"):
        T.adversarial(x, y, epochs=1, steps=1, init="zeros")


def _have_packages() -> bool:
    return ((T.FORTUNES_DIR / "wisdom").is_file() and T.GERMAN_DIR.is_dir()
            and (T.DICT_DIR / "freedict-eng-deu.index").is_file())


@pytest.mark.skipif(not _have_packages(), reason="needs `apt-get install fortunes fortunes-de dict-freedict-eng-deu`")
def test_real_supervised_procrustes_beats_random():
    src = T.ppmi_svd(T.english_sentences(), vocab=1000, dim=32, window=1)
    tgt = T.ppmi_svd(T.german_sentences(), vocab=1000, dim=32, window=1)
    assert "größe" in tgt.index or any("ß" in w or "ü" in w for w in tgt.words)
    words = T.parse_dictd(T.DICT_DIR / "freedict-eng-deu.index", T.DICT_DIR / "freedict-eng-deu.dict.dz",
                          set(src.words))
    train, test = T.test_dictionary(words, src, tgt, 0.5, seed=0)
    assert len(test) > 100
    p = np.array([(s, t) for s in sorted(train) for t in sorted(train[s])])
    w = T.procrustes(src.vectors[p[:, 0]], tgt.vectors[p[:, 1]])
    sup = T.precision_at(src.vectors @ w.T, tgt.vectors, test, "csls")
    rand = T.precision_at(src.vectors @ T.random_orthogonal(32, 3).T, tgt.vectors, test, "csls")
    assert sup[5] > 3 * rand[5] + 0.05


def test_missing_packages_name_the_apt_command(tmp_path):
    with pytest.raises(DataError, match="apt-get install fortunes fortunes-de dict-freedict-eng-deu"):
        T.english_sentences(str(tmp_path))
    with pytest.raises(DataError, match="apt-get install fortunes fortunes-de dict-freedict-eng-deu"):
        T.german_sentences(str(tmp_path / "de"))
    bad = subprocess.run([sys.executable, "-m", "gankit", "experiment", "word-translation", "--vocab", "0"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--vocab must be positive" in bad.stderr


@pytest.mark.skipif(not _have_packages(), reason="needs `apt-get install fortunes fortunes-de dict-freedict-eng-deu`")
def test_experiment_writes_the_table(tmp_path, capsys):
    import json

    from gankit.experiments import EXPERIMENTS, run_experiment

    assert EXPERIMENTS["word-translation"][0] == "word_translation"
    assert run_experiment("word-translation", ["--out", str(tmp_path), "--vocab", "400", "--dim", "16",
                                               "--epochs", "2", "--steps", "10", "--most-frequent", "200",
                                               "--refine", "1"]) == 0
    res = json.loads((tmp_path / "word_translation.json").read_text())
    assert (tmp_path / "word_translation.png").is_file()
    assert set(res["pairs"]) == {"en-de", "en-en halves"}
    for pair in res["pairs"].values():
        assert set(pair["rows"]) == {"identity-string", "random", "adversarial", "adversarial + refinement",
                                     "supervised Procrustes", "adversarial from supervised"}
        assert pair["vocab_source"] == 400 and pair["test_pairs"] >= pair["test_words"] > 0
        assert set(pair["epochs"]) == {"identity", "reflection"}
        assert all(len(e["criterion"]) == 2 for e in pair["epochs"].values())
    # each word is its own translation in the halves check, so the identity-string row is exact
    assert res["pairs"]["en-en halves"]["rows"]["identity-string"]["csls@1"] == 1.0
    out = capsys.readouterr().out
    assert "supervised Procrustes" in out and "en-en halves" in out
