"""Domain-adversarial training: the gradient-reversal layer and the paper's schedules against their
closed forms, a short run on Fashion-MNIST -> Fashion-MNIST-M whose features hide the domain
that source-only training's features show, sampling as classified target pictures, the metric
through evaluation, and clear errors for bad input."""
import math

import pytest
import torch

import gankit
from gankit.api import build_data, make_config
from gankit.errors import ConfigError
from gankit.methods.dann import DANN, annealed_rate, reverse_gradient, reversal_coefficient
from gankit.metrics.evaluate import evaluate_run

from test_contract import _tiny_domains


def test_the_reversal_layer_is_the_identity_forward_and_flips_the_gradient_back():
    x = torch.randn(5, 3, requires_grad=True)
    w = torch.randn(3)
    y = reverse_gradient(x, 0.7)
    assert torch.equal(y, x)
    (g,) = torch.autograd.grad((y * w).sum(), x)
    torch.testing.assert_close(g, -0.7 * w.expand(5, 3))
    (g0,) = torch.autograd.grad((reverse_gradient(x, 0.0) * w).sum(), x)
    assert float(g0.abs().max()) == 0.0


def test_the_schedules_are_the_papers():
    assert reversal_coefficient(0.0) == 0.0
    assert reversal_coefficient(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert reversal_coefficient(0.1) == pytest.approx((1 - math.exp(-1)) / (1 + math.exp(-1)))   # tanh(p * 5)
    assert annealed_rate(0.0) == 1.0 and annealed_rate(1.0) == pytest.approx(11 ** -0.75)
    assert annealed_rate(0.5) == pytest.approx(6 ** -0.75)


def _tiny(tmp_path, steps=6, **method):
    a, b = _tiny_domains(tmp_path)
    return {"method": {"name": "dann", "horizon": 10, **method},
            "data": {"name": "array", "path": str(a), "test_fraction": 0.5},
            "data_b": {"name": "array", "path": str(b), "test_fraction": 0.5},
            "generator": {"name": "auto", "width": 8}, "classifier": {"name": "auto", "width": 16},
            "discriminator": {"name": "auto", "width": 16},
            "train": {"steps": steps, "batch_size": 16, "log_every": 1, "sample_every": 0, "checkpoint_every": 0,
                      "progress": "none", "seed": 0},
            "optim": {"lr_g": 1e-3}, "runtime": {"threads": 1}, "out": str(tmp_path / "run")}


def test_the_coefficient_and_the_learning_rate_follow_the_progress(tmp_path):
    import json

    run = gankit.train(_tiny(tmp_path, steps=6))
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    for row in rows:   # the row of step s logs the step that ran at s - 1
        p = (row["step"] - 1) / 10
        assert row["lambda"] == pytest.approx(reversal_coefficient(p), rel=1e-6)
        assert row["lr_generator"] == pytest.approx(1e-3 * annealed_rate(row["step"] / 10), rel=1e-6)
    weighted = gankit.train({**_tiny(tmp_path, steps=3, domain_weight=0.25), "out": str(tmp_path / "w")})
    last = [json.loads(line) for line in (weighted.path / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["lambda"] == pytest.approx(0.25 * reversal_coefficient(0.2), rel=1e-6)
    assert {"label_loss", "domain_loss", "label_accuracy", "domain_accuracy"} <= set(last)


def test_sampling_classifies_target_pictures_and_evaluation_scores_the_target(tmp_path):
    run = gankit.train(_tiny(tmp_path, steps=4))
    out = run.generate(12, seed=0)                      # from the pool of target training pictures
    assert out["x"].shape == (12, 1, 32, 32) and torch.equal(out["x"], out["input"])
    assert out["label"].dtype == torch.long and int(out["label"].max()) < run.info.n_classes
    assert bool(((out["target_prob"] >= 0) & (out["target_prob"] <= 1)).all())
    pool = run.method.inputs.images
    assert len(pool) == 16 * 4 and pool.dtype == torch.uint8          # the target pictures the run saw
    seen = run.sources["b"].x.flatten(1)
    assert all(bool((seen == p.flatten()).all(1).any()) for p in pool)
    pictures = run.sources["b"].x[:5].float() / 127.5 - 1
    given = run.generate(5, seed=3, given={"input": pictures})
    torch.testing.assert_close(given["input"], run.sources["b"].x[:5].float() / 255)
    with pytest.raises(ConfigError, match="'input' must have samples of shape"):
        run.generate(2, given={"input": torch.zeros(2, 3, 32, 32)})

    result = evaluate_run(run, n=100)                  # no list: the method's own metric alone
    assert set(result) == {"target_accuracy", "source_accuracy", "domain_classifier_accuracy"}
    test_b = build_data(run.config, split="test", source="b")
    predicted = run.method.classify(test_b.x[:100].float() / 255)["label"]
    assert result["target_accuracy"] == pytest.approx(float((predicted == test_b.y[:100]).double().mean()))
    assert all(0.0 <= v <= 1.0 for v in result.values())


def test_bad_input_is_refused_with_what_to_do(tmp_path):
    a, b = _tiny_domains(tmp_path)
    cfg = _tiny(tmp_path)
    del cfg["data_b"]
    with pytest.raises(ConfigError, match="data_b"):
        gankit.train(cfg)
    with pytest.raises(ConfigError, match="optim.lr.classifier.*optim.lr_g"):
        gankit.train({**_tiny(tmp_path), "optim": {"lr": {"classifier": 1e-4}}})
    with pytest.raises(ConfigError, match="domain_weight must not be negative"):
        gankit.train(_tiny(tmp_path, domain_weight=-1.0))
    colour = {**_tiny(tmp_path), "data_b": {"name": "fashion_mnist_m", "split": "test", "image_size": 32,
                                            "backgrounds": "scikit-learn"}}
    with pytest.raises(ConfigError, match="data.channels=3"):
        gankit.train(colour)
    with pytest.raises(ConfigError, match="generator.name=dann_features"):
        gankit.train({**_tiny(tmp_path), "generator": {"name": "dcgan", "width": 8}})
    import numpy as np

    unlabelled = tmp_path / "unlabelled.npz"
    with np.load(a) as f:
        np.savez(unlabelled, x=f["x"])
    with pytest.raises(ConfigError, match="class labels"):
        gankit.train({**_tiny(tmp_path), "data": {"name": "array", "path": str(unlabelled)}})
    assert not (tmp_path / "run").exists()          # nothing written by a refused config


def _domains(tmp_path, weight, steps):
    """Fashion-MNIST (source, as 3 channels) -> Fashion-MNIST-M (target) on the first halves of the test
    splits (quick to make), the second halves held out."""
    return {"method": {"name": "dann", "domain_weight": weight, "horizon": steps},
            "data": {"name": "fashion_mnist", "split": "test", "channels": 3, "half": "first"},
            "data_b": {"name": "fashion_mnist_m", "split": "test", "half": "first", "backgrounds": "scikit-learn"},
            "generator": {"name": "auto", "width": 16}, "classifier": {"name": "auto", "width": 64},
            "discriminator": {"name": "auto", "width": 64},
            "train": {"steps": steps, "batch_size": 32, "log_every": 50, "sample_every": 0, "checkpoint_every": 0,
                      "progress": "none", "seed": 0},
            "runtime": {"threads": 2}, "out": str(tmp_path / f"w{weight}")}


def test_the_domain_term_hides_the_domain_while_the_labels_are_learnt(tmp_path):
    steps = 200
    source_only = gankit.train(_domains(tmp_path, 0.0, steps))
    adapted = gankit.train(_domains(tmp_path, 1.0, steps))
    held = make_config(_domains(tmp_path, 0.0, steps))
    held.data["half"], held.sources["b"]["half"] = "second", "second"
    source, target = build_data(held), build_data(held, source="b")
    n = 1000

    def scores(run):
        s = run.method.classify(source.x[:n].float() / 255)
        t = run.method.classify(target.x[:n].float() / 255)
        domain = 0.5 * (float((s["domain"] <= 0).double().mean()) + float((t["domain"] > 0).double().mean()))
        return (float((s["label"] == source.y[:n]).double().mean()), float((t["label"] == target.y[:n]).double().mean()),
                domain)

    src0, tgt0, dom0 = scores(source_only)
    src1, tgt1, dom1 = scores(adapted)
    assert src0 > 0.6 and src1 > 0.6                    # both learn the labels of the source (chance: 0.1)
    assert dom0 > 0.7                                   # source-only features give the domain away
    assert dom1 < dom0 - 0.05, (dom0, dom1)             # the reversed gradient hides it (1,000 of each side)
    assert tgt0 > 0.2 and tgt1 > 0.2                    # and both carry some of it to the target
    assert isinstance(adapted.method, DANN)
