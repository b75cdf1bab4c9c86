"""gankit eval and periodic evaluation: the glue between runs, data, extractors and metrics."""
import json

import numpy as np
import pytest
import torch

import gankit
from gankit.cli import main
from gankit.metrics import fid
from gankit.metrics import evaluate as E

from conftest import toy_config


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    base = toy_config(tmp / "trained", steps=1000, train__batch_size=256, train__checkpoint_every=0,
                      generator__hidden=128, discriminator__hidden=128, optim__beta1=0.0)
    base["data"] = {"name": "ring8", "n_samples": 20000}
    trained = gankit.train(base)
    untrained = gankit.train({**base, "train": {**base["train"], "steps": 1}, "out": str(tmp / "untrained")})
    return trained, untrained


def test_evaluate_run_on_toy_data_ranks_trained_above_untrained(toy_runs):
    trained, untrained = toy_runs
    good = E.evaluate_run(trained, ["fid", "pr", "modes", "loglik"], n=1000)
    bad = E.evaluate_run(untrained, ["fid", "pr", "modes", "loglik"], n=1000)
    assert set(good) >= {"fid", "precision", "recall", "modes", "high_quality", "reverse_kl", "loglik"}
    assert good["fid"] < bad["fid"]
    assert good["loglik"] > bad["loglik"]
    # the same features through the plain function give the same number
    real = gankit.api.build_data(trained.config, split="test").x[:1000]
    assert good["fid"] == pytest.approx(fid(real.double().numpy(), trained.sample(1000, seed=0).double().numpy()),
                                        rel=1e-12)


def test_cli_eval_run_prints_a_table_and_writes_json(toy_runs, tmp_path, capsys):
    trained, _ = toy_runs
    out = tmp_path / "r.json"
    assert main(["eval", str(trained.path), "--metrics", "fid,pr", "--n", "500", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| fid" in text and "| precision" in text
    payload = json.loads(out.read_text())
    assert payload["n"] == 500 and payload["step"] == 1000 and set(payload["metrics"]) == {"fid", "precision", "recall"}


def test_cli_eval_two_feature_arrays(tmp_path, capsys):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(1200, 8)), rng.normal(0.5, 1.0, size=(1100, 8))
    np.savez(tmp_path / "a.npz", x=a.astype(np.float32))
    np.savez(tmp_path / "b.npz", x=b.astype(np.float32))
    assert main(["eval", "--real", str(tmp_path / "a.npz"), "--fake", str(tmp_path / "b.npz"),
                 "--json", str(tmp_path / "r.json")]) == 0
    got = json.loads((tmp_path / "r.json").read_text())["metrics"]
    assert got["fid"] == pytest.approx(fid(a.astype(np.float32), b.astype(np.float32)), rel=1e-12)
    assert set(got) == {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage"}


def test_periodic_evaluation_logs_and_keeps_the_best_checkpoint(tmp_path):
    cfg = toy_config(tmp_path / "run", steps=60, train__checkpoint_every=30)
    cfg["eval"] = {"every": 20, "metrics": ["fid", "modes"], "n": 500}
    run = gankit.train(cfg)
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval_fid" in r]
    assert [r["step"] for r in evals] == [20, 40, 60]
    best = torch.load(run.path / "checkpoints" / "best.pt", weights_only=False)
    best_row = min(evals, key=lambda r: r["eval_fid"])
    assert best["step"] == best_row["step"] and best["best"]["value"] == pytest.approx(best_row["eval_fid"])


def test_reference_features_are_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))

    class Counting:
        name, checksum, calls = "count", "v1", 0

        def features(self, x):
            Counting.calls += 1
            return x.reshape(len(x), -1).double().numpy()

    real = torch.rand(50, 1, 4, 4)
    cfg = {"name": "array", "path": "x.npz", "split": "train"}
    first = E.reference_features(cfg, "test", 50, Counting(), lambda: real)
    again = E.reference_features(cfg, "test", 50, Counting(), lambda: real)
    assert Counting.calls == 1 and np.array_equal(first, again)
    other = E.reference_features(cfg, "train", 50, Counting(), lambda: real)  # another split: another entry
    assert Counting.calls == 2 and len(list((tmp_path / "cache" / "reference").iterdir())) == 2


def test_eval_errors(toy_runs, tmp_path, capsys):
    trained, _ = toy_runs
    assert main(["eval", str(trained.path), "--metrics", "fdi"]) == 2
    assert "did you mean 'fid'" in capsys.readouterr().err
    assert main(["eval", "--real", str(tmp_path / "a.npz")]) == 2
    assert "--fake" in capsys.readouterr().err
    assert main(["eval", "--real", str(tmp_path / "nope.npz"), "--fake", str(tmp_path / "nope.npz")]) == 2
    assert "nope.npz" in capsys.readouterr().err
    assert main(["eval", str(trained.path), "--metrics", "is"]) == 2
    assert "classifier" in capsys.readouterr().err


def test_lecture_metrics_through_eval(toy_runs):
    trained, untrained = toy_runs
    good = E.evaluate_run(trained, ["parzen", "birthday"], n=1000)
    bad = E.evaluate_run(untrained, ["parzen"], n=1000)
    assert good["parzen"] > bad["parzen"] and good["parzen_stderr"] > 0
    assert np.isclose(np.logspace(-1, 0, 10), good["parzen_sigma"]).any()
    # sigma is chosen on 1,000 further test-split points (fresh draws, never trained on)
    assert (good["parzen_n_test"], good["parzen_n_validation"]) == (1000, 1000)
    assert good["support"] > 0 and 0 <= good["collision_p_10"] <= 1


def test_copies_metric_draws_samples_beside_their_nearest_training_images(tmp_path, image_npz, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", "array", "--steps", "2", "--out", str(out), "--set", f"data.path={image_npz}",
                 "data.test_fraction=0.2", "generator.width=4", "discriminator.width=4", "train.batch_size=8",
                 "train.progress=none"]) == 0
    assert main(["eval", str(out), "--metrics", "copies", "--n", "30", "--features", "pixels",
                 "--figures", str(tmp_path / "figs"), "--json", str(tmp_path / "r.json")]) == 0
    assert (tmp_path / "figs" / "nearest_training_images.png").read_bytes()[:4] == b"\x89PNG"
    got = json.loads((tmp_path / "r.json").read_text())["metrics"]
    assert 0.0 <= got["near_copies"] <= 1.0 and got["copy_threshold"] > 0
