"""pg: REINFORCE with a baseline on a pluggable reward (a scorer, a classifier run, a reward
model fit to rated samples), from an MLE-initialised start."""
import random
from collections import Counter

import numpy as np
import pytest
import torch

import gankit
from conftest import mostly_a_lines
from gankit.errors import ConfigError
from gankit.methods.pg import RatingsModel, length_closeness, ngram_counts, read_ratings, token_share


def _cfg(out, data, steps, method, lr=1e-2, lr_d=1e-3):
    nets = {"discriminator": {"name": "auto", "filters": 16}} if method["name"] == "seqgan" else {}
    return {"method": method, "data": data, "generator": {"name": "auto"}, **nets,
            "train": {"steps": steps, "batch_size": 32, "log_every": 25, "sample_every": 0, "checkpoint_every": 0,
                      "progress": "none", "seed": 0},
            "optim": {"lr_g": lr, "lr_d": lr_d}, "runtime": {"threads": 1}, "out": str(out)}


@pytest.fixture(scope="module")
def words(tmp_path_factory):
    """Word-level lines (mostly 'a') and a short MLE run on them that pg starts from."""
    tmp = tmp_path_factory.mktemp("pg")
    data = {"name": "text", "path": str(mostly_a_lines(tmp / "lines.txt")), "max_length": 6}
    mle = gankit.train(_cfg(tmp / "mle", data, 60, {"name": "mle"}))
    return tmp, data, mle


def _mean_reward(run, n=500):
    return float(run.method.reward(run.generate(n, seed=0)["x"]).mean())


def test_scorers_against_direct_counts():
    x = torch.tensor([[3, 4, 3, 0, 0], [5, 5, 5, 5, 5], [0, 0, 0, 0, 0]])
    torch.testing.assert_close(token_share(x, torch.tensor([3, 5])), torch.tensor([2 / 3, 1.0, 0.0]))
    torch.testing.assert_close(length_closeness(x, 4), torch.tensor([1 - 1 / 5, 1 - 1 / 5, 1 - 4 / 5]))


def test_ngram_counts_and_ridge_in_closed_form():
    rng = random.Random(0)
    rows = [[rng.randrange(1, 6) for _ in range(rng.randrange(1, 7))] for _ in range(40)]
    x = torch.tensor([r + [0] * (7 - len(r)) for r in rows])
    y = torch.tensor([rng.gauss(0, 1) for _ in rows], dtype=torch.float64)
    model = RatingsModel(y, x, vocab=5, ngrams=2, ridge=0.5)
    # counts: against Python's Counter of each sequence's uni- and bigrams
    X = ngram_counts(x, model.tables, model.base).numpy()
    names = [(int(k),) for k in model.tables[0]] + [divmod(int(k), model.base) for k in model.tables[1]]
    for row, counts in zip(rows, X):
        c = Counter([(t,) for t in row] + list(zip(row, row[1:])))
        assert list(counts) == [c[g] for g in names]
    # ridge with an unpenalised intercept, as least squares on the centred data stacked on sqrt(lambda) I
    Xc, yc = X - X.mean(0), y.numpy() - y.numpy().mean()
    A = np.vstack([Xc, np.sqrt(0.5) * np.eye(X.shape[1])])
    w = np.linalg.lstsq(A, np.concatenate([yc, np.zeros(X.shape[1])]), rcond=None)[0]
    np.testing.assert_allclose(model.w.numpy(), w, atol=1e-9)
    np.testing.assert_allclose(model.predict(x).numpy(), Xc @ w + y.numpy().mean(), atol=1e-5)
    # more n-grams than rated lines: the dual system gives the same w
    wide = RatingsModel(y[:6], x[:6], vocab=5, ngrams=2, ridge=0.5)
    Xw = ngram_counts(x[:6], wide.tables, wide.base).numpy()
    Xwc = Xw - Xw.mean(0)
    want = np.linalg.solve(Xwc.T @ Xwc + 0.5 * np.eye(Xw.shape[1]), Xwc.T @ (y[:6].numpy() - y[:6].numpy().mean()))
    assert Xw.shape[1] > 6
    np.testing.assert_allclose(wide.w.numpy(), want, atol=1e-9)


def test_a_scorer_reward_rises_above_the_mle_start(words):
    tmp, data, mle = words
    method = {"name": "pg", "reward": "tokens", "tokens": "w3 w5", "init": str(mle.path)}
    start = _mean_reward(gankit.train(_cfg(tmp / "tok0", data, 1, method)))
    run = gankit.train(_cfg(tmp / "tok", data, 80, method))
    after = _mean_reward(run)
    assert start < 0.1 and after > start + 0.4, (start, after)     # w3 and w5 are 2 of 21 words, ~1% each
    state = run.method.extra_state()
    assert state["baseline_updates"] == 80 and float(state["baseline"]) > start
    again = gankit.load_run(tmp / "tok")
    assert float(again.method.b) == float(state["baseline"])


def _ratings_file(path, rng_seed=0):
    """300 lines of six words; each rated by how many times it says w3 (the rule the model must find)."""
    rng = random.Random(rng_seed)
    lines = []
    for _ in range(300):
        ws = [rng.choice(["a", "a", "w3", "w1", "w7", "w9"]) for _ in range(6)]
        lines.append(f"{ws.count('w3')}\t{' '.join(ws)}")
    path.write_text("# rating<TAB>text\n" + "\n".join(lines) + "\n")
    return path


def test_a_reward_model_of_ratings_is_learned_and_followed(words):
    tmp, data, mle = words
    path = _ratings_file(tmp / "ratings.tsv")
    method = {"name": "pg", "reward": "ratings", "ratings": str(path), "ngrams": 1, "ridge": 0.1,
              "init": str(mle.path), "kl_weight": 0.01}
    start = gankit.train(_cfg(tmp / "rat0", data, 1, method))
    model = start.method.ratings_model
    assert model.train_r2 > 0.999                                # rating = count of w3 is linear in unigrams
    vocab = start.info.fields["x"].classes
    probe = torch.tensor([[vocab.index(w) for w in "w3 w3 a w3 a a".split()],
                          [vocab.index(w) for w in "a a a a a a".split()]])
    torch.testing.assert_close(model.predict(probe), torch.tensor([3.0, 0.0]), atol=0.05, rtol=0)
    before = _mean_reward(start)
    run = gankit.train(_cfg(tmp / "rat", data, 80, method))
    after = _mean_reward(run)
    assert before < 1.0 and after > before + 2.0, (before, after)     # measured: 0.47 -> 5.99 (of at most 6)
    import json

    rows = [json.loads(line) for line in (tmp / "rat" / "metrics.jsonl").read_text().splitlines()]
    assert all("kl" in r and r["kl"] >= 0 for r in rows)


def test_a_classifier_run_as_the_reward(words):
    tmp, data, mle = words
    seqgan = gankit.train(_cfg(tmp / "seqgan", data, 40, {"name": "seqgan", "reward": "prefix", "d_steps": 3,
                                                          "init": str(mle.path)}, lr=1e-3, lr_d=1e-2))
    method = {"name": "pg", "reward": "classifier", "classifier": str(seqgan.path), "init": str(mle.path)}
    start = _mean_reward(gankit.train(_cfg(tmp / "cls0", data, 1, method)))
    after = _mean_reward(gankit.train(_cfg(tmp / "cls", data, 60, method)))
    assert after > start + 0.2, (start, after)         # measured: 0.47 -> 0.81
    with pytest.raises(ConfigError, match="no discriminator"):
        gankit.train(_cfg(tmp / "bad", data, 1, {**method, "classifier": str(mle.path)}))


@pytest.mark.parametrize("text, match", [
    ("2\tw3 a\nno tab here\n", "line 2: no tab"),
    ("2\tw3 a\nmuch\tw3\n", "line 2: the rating 'much' is not a number"),
    ("1\ta\n\n# note\nnan\ta\n", "line 4: the rating 'nan' is not finite"),
    ("1\ta\n3\t\n", "line 2: the text after the tab is empty"),
    ("1\ta\n", "at least 2"),
    ("1\ta\n1\tw3\n", "every rating is 1.0"),
])
def test_bad_ratings_files_name_the_line(tmp_path, text, match):
    path = tmp_path / "r.tsv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        read_ratings(path, ["<pad>", "<unk>", "a", "w3"], 6)


def test_config_errors(words):
    tmp, data, mle = words
    for method, match in [({"reward": "tokens"}, "method.tokens"), ({"reward": "tokens", "tokens": "zebra"},
                                                                     "not in this data's vocabulary"),
                          ({"reward": "tokens", "tokens": "a", "ratings": "x.tsv"}, "setting of reward=ratings"),
                          ({"reward": "length", "target_length": 9}, "target_length"),
                          ({"reward": "ratings"}, "method.ratings=FILE"),
                          ({"reward": "ratings", "ratings": str(tmp / "none.tsv")}, "no file"),
                          ({"reward": "classifier"}, "method.classifier=RUN"),
                          ({"kl_weight": -1.0}, "kl_weight"), ({"baseline": 1.0}, "baseline"),
                          ({"reward": "rating"}, "reward")]:
        with pytest.raises(ConfigError, match=match):
            gankit.train(_cfg(tmp / "bad", data, 1, {"name": "pg", **method}))


def test_length_reward_moves_lengths(tmp_path):
    lines = tmp_path / "short.txt"
    rng = random.Random(1)
    lines.write_text("".join(" ".join(f"w{rng.randrange(5)}" for _ in range(rng.choice([1, 2, 6]))) + "\n"
                             for _ in range(300)))
    data = {"name": "text", "path": str(lines), "max_length": 6}
    method = {"name": "pg", "reward": "length", "target_length": 6}
    start = _mean_reward(gankit.train(_cfg(tmp_path / "l0", data, 1, method)))
    after = _mean_reward(gankit.train(_cfg(tmp_path / "l", data, 60, method)))
    assert after > start + 0.1, (start, after)
