"""Text style transfer by cross-alignment (method text_style) and its metric style_transfer."""
import math

import pytest
import torch

import gankit
from gankit.cli import main
from gankit.data.sequences import FORTUNES_DIR, decode_all
from gankit.errors import ConfigError
from gankit.metrics.style import (bag_of_words, content_bleu, fit_logistic, predict_logistic,
                                  style_transfer_scores)

pytestmark = pytest.mark.usefixtures("one_thread")

needs_data = pytest.mark.skipif(not (FORTUNES_DIR / "wisdom").is_file(),
                                reason="the sentiment data reads the fortunes package: apt-get install fortunes")


def _config(out, steps, **method):
    return {
        "method": {"name": "text_style", **method},
        "data": {"name": "sentiment", "max_words": 10},
        "generator": {"name": "auto", "embed": 32, "encoder": 32, "content": 32, "style": 8, "hidden": 64},
        "discriminator": {"name": "auto", "filters": 16},
        "discriminator_b": {"name": "auto", "filters": 16},
        "train": {"steps": steps, "batch_size": 32, "log_every": 10, "sample_every": 0, "checkpoint_every": steps,
                  "progress": "none", "seed": 0},
        "runtime": {"threads": 1},
        "out": str(out),
    }


# ----------------------------------------------------------------------------------- the metric's parts

def test_bag_of_words_counts_words_before_the_end():
    x = torch.tensor([[3, 4, 3, 0, 5], [2, 0, 0, 0, 0], [1, 2, 3, 4, 5]])
    f = bag_of_words(x, 6)
    assert f.dtype == torch.float64
    assert f.tolist() == [[0, 0, 0, 1, 1, 0], [0, 0, 1, 0, 0, 0], [0, 1, 1, 1, 1, 1]]


def test_logistic_regression_reaches_its_optimum():
    g = torch.Generator().manual_seed(0)
    f = (torch.rand(120, 7, generator=g) < 0.3).double()
    y = ((f[:, 0] - f[:, 1] + 0.3 * torch.randn(120, generator=g, dtype=torch.float64)) > 0).long()
    l2 = 0.5
    w, b = fit_logistic(f, y, l2)
    p = torch.sigmoid(f @ w + b)
    # first-order conditions of sum BCE + l2/2 |w|^2: F^T (p - y) + l2 w = 0 and sum (p - y) = 0
    assert torch.allclose(f.T @ (p - y.double()) + l2 * w, torch.zeros(7, dtype=torch.float64), atol=1e-6)
    assert abs(float((p - y.double()).sum())) < 1e-6
    assert float((predict_logistic(w, b, f) == y).double().mean()) > 0.8
    with pytest.raises(ConfigError, match="l2 penalty"):
        fit_logistic(f, y, 0.0)


def test_content_bleu_of_a_copy_and_of_another_sentence():
    a = torch.tensor([[5, 6, 7, 8, 9, 0], [4, 5, 6, 7, 0, 0]])
    assert content_bleu(a, a) == pytest.approx(1.0)
    b = torch.tensor([[10, 11, 12, 13, 14, 0], [10, 11, 12, 13, 0, 0]])
    assert content_bleu(b, a) == 0.0
    # one word of four changed: precisions 3/4, 2/3, 1/2, then 0 matches of 1 smoothed to 0.1
    c = torch.tensor([[4, 5, 6, 9, 0, 0]])
    expected = math.exp((math.log(3 / 4) + math.log(2 / 3) + math.log(1 / 2) + math.log(0.1)) / 4)
    assert content_bleu(c, a[1:]) == pytest.approx(expected)


def test_scores_of_copies_equal_the_copy_baseline_and_real_sentences_are_judged_right():
    g = torch.Generator().manual_seed(1)
    # two styles told by word 2 (style 0) or word 3 (style 1), other words shared
    n, vocab = 80, 12
    styles = torch.arange(n) % 2
    x = torch.randint(4, vocab, (n, 6), generator=g)
    x[:, 0] = 2 + styles
    x[:, 5] = 0
    train = x.clone()
    train[:, 1] = torch.randint(4, vocab, (n,), generator=g)
    names = [f"w{i}" for i in range(vocab)]
    out = style_transfer_scores(x, x, styles, 1 - styles, train, styles, names, ("a", "b"), lm_steps=5)
    assert out["style_accuracy"] == out["style_accuracy_copy"] == 0.0
    assert out["content_bleu"] == out["content_bleu_copy"] == pytest.approx(1.0)
    assert out["perplexity"] == pytest.approx(out["perplexity_copy"])
    assert out["style_accuracy_real"] == 1.0 and out["style_classifier_check"] == 1.0
    assert out["transfer_unchanged"] == 1.0
    swapped = x.clone()
    swapped[:, 0] = 3 - styles                       # the style word changed, the rest kept
    out = style_transfer_scores(swapped, x, styles, 1 - styles, train, styles, names, ("a", "b"), lm_steps=5)
    assert out["style_accuracy"] == 1.0 and out["transfer_unchanged"] == 0.0
    assert 0.5 < out["content_bleu"] < 1.0


# ----------------------------------------------------------------------------------- the method

NOUNS = ("food", "film", "car", "hotel", "room", "book", "song", "game", "meal", "show", "trip", "team", "plan",
         "phone", "class", "city", "park", "coffee", "bus", "house", "garden", "road", "shop", "camera", "bike")
ADJECTIVES = {"positive": ("good", "great"), "negative": ("bad", "awful")}


def _templates(folder):
    """A fortunes-style file of short sentences whose style is one word: "the NOUN was/is/seems
    ADJ ." with a positive or a negative adjective (so a rewrite swaps that word)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"the {noun} {verb} {adj} ." for noun in NOUNS for verb in ("was", "is", "seems")
             for adjs in ADJECTIVES.values() for adj in adjs]
    (folder / "styled").write_text("\n%\n".join(lines) + "\n")
    return {"name": "sentiment", "files": ["styled"], "root": str(folder), "max_words": 5}

def test_training_beats_the_untrained_start_in_style_and_reconstruction(tmp_path):
    pytest.importorskip("vaderSentiment")
    data = _templates(tmp_path / "fortunes")
    cfg = {**_config(tmp_path / "start", 1, pretrain_steps=100), "data": data}
    start = gankit.train(cfg)
    run = gankit.train({**cfg, "train": {**cfg["train"], "steps": 200}, "out": str(tmp_path / "run")})
    from gankit.metrics.evaluate import evaluate_run

    spec = ["style_transfer:lm_steps=40"]
    before = evaluate_run(start, metrics=spec, n=500)
    after = evaluate_run(run, metrics=spec, n=500)
    assert before["style_classifier_check"] == 1.0       # one word tells the style: the judge is sure
    assert after["reconstruction_nll"] < before["reconstruction_nll"] - 1.0
    assert after["style_accuracy"] > before["style_accuracy"] + 0.3 and after["style_accuracy"] > 0.8
    assert after["style_vader"] > 0.8 and after["style_accuracy_copy"] == 0.0
    assert after["content_bleu"] > before["content_bleu"]


@needs_data
def test_sampling_given_a_sentence_and_a_target_style(tmp_path):
    run = gankit.train(_config(tmp_path / "run", 4))
    vocab = run.info.fields["x"].classes
    out = run.generate(1, seed=0, given={"input": "life is good .", "domain": "negative"})
    assert out["x"].shape == (1, 10) and int(out["domain"]) == 0 and int(out["source"]) == 1
    assert decode_all(out["input"], vocab) == ["life is good ."]
    both = run.generate(2, seed=0, given={"input": ["life is good .", "life is bad ."], "domain": [0, 1],
                                          "source": [1, 0]})
    again = run.generate(2, seed=5, given={"input": ["life is good .", "life is bad ."], "domain": [0, 1],
                                           "source": [1, 0]})
    assert torch.equal(both["x"], again["x"])        # greedy: the noise does not matter
    drawn = run.generate(6, seed=0)                   # without sentences: pooled training sentences
    assert torch.equal(drawn["domain"], 1 - drawn["source"])
    unknown = run.generate(20, seed=0, given={"input": "life is good ."})   # no styles: targets drawn
    assert torch.equal(unknown["source"], 1 - unknown["domain"]) and 0 < int(unknown["domain"].sum()) < 20
    known = run.generate(4, seed=0, given={"input": "life is good .", "source": "positive"})
    assert known["domain"].tolist() == [0] * 4
    loaded = gankit.load_run(run.path)                # the pool comes back with the checkpoint
    assert torch.equal(loaded.method.pool, run.method.pool) and len(loaded.method.pool) == 128
    assert torch.equal(loaded.generate(6, seed=0)["input"], drawn["input"])

    out_file = tmp_path / "rewritten.txt"
    assert main(["sample", str(run.path), "--text", "life is good .", "--text", "i hate mondays .",
                 "--to", "negative,positive", "--n", "1", "--out", str(out_file)]) == 0
    assert len(out_file.read_text().splitlines()) == 4


@needs_data
def test_bad_input_is_refused_with_what_to_do(tmp_path, capsys):
    with pytest.raises(ConfigError, match="field 'domain'.*--data sentiment"):
        gankit.train({**_config(tmp_path / "q", 2), "data": {"name": "quotes"}})
    assert not (tmp_path / "q").exists()
    for key, value, words in (("adv_weight", -1.0, "must not be negative"), ("tau_end", 0.5, "tau_end <= tau_start"),
                              ("gate", 0.0, "gate must be positive"), ("input_pool", 0, "input_pool")):
        with pytest.raises(ConfigError, match=words):
            gankit.train(_config(tmp_path / key, 2, **{key: value}))
    run = gankit.train(_config(tmp_path / "run", 2))
    with pytest.raises(ConfigError, match="styles are negative, positive"):
        run.generate(1, given={"input": "life is good .", "domain": "cheerful"})
    with pytest.raises(ConfigError, match="--to negative or --to positive"):
        run.method.generate(torch.zeros(1, 10), {"input": torch.ones(1, 10, dtype=torch.long)})
    with pytest.raises(ConfigError, match="at most 10"):
        run.generate(1, given={"input": "one two three four five six seven eight nine ten eleven", "domain": 1})
    with pytest.raises(ConfigError, match="out of range"):
        run.generate(1, given={"input": torch.tensor([[10 ** 6, 3]]), "domain": 1})
    capsys.readouterr()
    assert main(["sample", str(run.path), "--text", "life is good .", "--to", "cheerful", "--out",
                 str(tmp_path / "x.txt")]) == 2
    assert "domains are negative, positive" in capsys.readouterr().err and not (tmp_path / "x.txt").exists()
