"""KID and Parzen through `gankit eval`: sample counts KID cannot use are refused, metric
parameters are reachable from --metrics and eval.metrics, and the Parzen bandwidth is chosen
on samples the run never trained on and that are not scored."""
import json
import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

import gankit
from gankit.cli import main
from gankit.errors import ConfigError
from gankit.metrics import evaluate as E
from gankit.metrics import kid
from gankit.metrics import parzen as P

from conftest import toy_config


def _vectors(n, shift=0.0, seed=0, dim=4):
    return torch.from_numpy(np.random.default_rng(seed).normal(shift, 1.0, size=(n, dim)))


# ---------------------------------------------------------------------------- KID


def test_kid_metric_refuses_fewer_samples_than_its_subset_size():
    s = E.EvalSet(_vectors(300), _vectors(400, 0.3, seed=1), "vector")
    with pytest.raises(ConfigError, match=r"subset_size=1000.*300 real and 400 generated") as err:
        E.evaluate(s, ["kid"])
    assert "--n" in str(err.value) and "kid:subset_size=" in str(err.value)
    # both sets exactly as large as the subsets: every subset would be the whole set, std 0
    same = E.EvalSet(_vectors(300), _vectors(300, 0.3, seed=1), "vector")
    with pytest.raises(ConfigError, match="standard deviation"):
        E.evaluate(same, ["kid:subset_size=300"])


def test_kid_metric_with_a_subset_size_matches_torch_fidelity():
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid", reason="torch-fidelity not installed")
    real, fake = _vectors(300).numpy(), _vectors(250, 0.3, seed=1).numpy()
    got = E.evaluate(E.EvalSet(torch.from_numpy(real), torch.from_numpy(fake), "vector"),
                     ["kid:subset_size=200:subsets=10"])
    ref = metric_kid.kid_features_to_metric(torch.from_numpy(fake), torch.from_numpy(real), kid_subsets=10,
                                            kid_subset_size=200, verbose=False)  # its default seed, as ours
    assert got["kid"] == pytest.approx(ref[metric_kid.KEY_METRIC_KID_MEAN], rel=1e-6)
    assert got["kid_std"] == pytest.approx(ref[metric_kid.KEY_METRIC_KID_STD], rel=1e-6)
    assert got["kid_std"] > 1e-6


def test_kid_subset_size_from_the_command_line(tmp_path, capsys):
    real, fake = _vectors(300).numpy().astype(np.float32), _vectors(300, 0.3, seed=1).numpy().astype(np.float32)
    np.savez(tmp_path / "real.npz", x=real)
    np.savez(tmp_path / "fake.npz", x=fake)
    paths = ["--real", str(tmp_path / "real.npz"), "--fake", str(tmp_path / "fake.npz")]
    assert main(["eval", *paths, "--metrics", "kid"]) == 2
    err = capsys.readouterr().err
    assert "subset_size=1000" in err and "--n" in err and "kid:subset_size=" in err
    assert main(["eval", *paths, "--metrics", "fid,kid:subset_size=100:subsets=20",
                 "--json", str(tmp_path / "r.json")]) == 0
    got = json.loads((tmp_path / "r.json").read_text())["metrics"]
    ref = kid(real, fake, subsets=20, subset_size=100)
    assert (got["kid"], got["kid_std"]) == pytest.approx((ref.mean, ref.std), rel=1e-12)
    assert main(["eval", *paths, "--metrics", "kid:subset_sise=100"]) == 2
    assert "did you mean 'subset_size'" in capsys.readouterr().err


def test_kid_subset_size_from_the_eval_config_section(tmp_path):
    cfg = toy_config(tmp_path / "run", steps=10, train__checkpoint_every=0)
    cfg["eval"] = {"every": 10, "metrics": ["kid:subset_size=100:subsets=5"], "n": 300}
    run = gankit.train(cfg)
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval_kid" in r]
    assert [r["step"] for r in evals] == [10] and evals[0]["eval_kid_std"] > 0
    bad = {**cfg, "eval": {**cfg["eval"], "metrics": ["kid:subsets=many"]}, "out": str(tmp_path / "bad")}
    with pytest.raises(ConfigError, match="kid.subsets: expected int"):
        gankit.train(bad)


# ---------------------------------------------------------------------------- Parzen


def _brute_log_density(samples, x, sigma):
    d2 = ((x[:, None, :] - samples[None, :, :]) ** 2).sum(-1)
    dim = samples.shape[1]
    return (logsumexp(-d2 / (2 * sigma ** 2), axis=1) - math.log(len(samples))
            - 0.5 * dim * math.log(2 * math.pi * sigma ** 2))


@pytest.fixture(scope="module")
def array_run(tmp_path_factory):
    """A 2-step run on 80 distinct 2-D points, 20 of them held out as the test split."""
    tmp = tmp_path_factory.mktemp("parzen")
    i = np.arange(80)
    points = np.stack([i / 80.0, ((7 * i) % 80) / 80.0], axis=1).astype(np.float32)
    assert len({tuple(p) for p in points}) == 80
    np.savez(tmp / "points.npz", x=points)
    cfg = toy_config(tmp / "run", steps=2, train__checkpoint_every=0, train__batch_size=16)
    cfg["data"] = {"name": "array", "path": str(tmp / "points.npz"), "test_fraction": 0.25}
    return gankit.train(cfg)


@pytest.fixture
def recorded(monkeypatch):
    """The arguments every parzen_evaluate call receives."""
    calls = []
    real = P.parzen_evaluate

    def spy(samples, validation, test, *args, **kw):
        calls.append({"samples": np.array(samples), "validation": np.array(validation), "test": np.array(test)})
        return real(samples, validation, test, *args, **kw)

    monkeypatch.setattr(P, "parzen_evaluate", spy)
    return calls


def _rows(a):
    return {tuple(np.round(np.asarray(r, dtype=np.float64), 6)) for r in a}


def test_parzen_bandwidth_is_chosen_on_held_out_rows(array_run, recorded, tmp_path):
    run = array_run
    train_x = gankit.api.build_data(run.config, split="train").x.double().numpy()
    test_x = gankit.api.build_data(run.config, split="test").x.double().numpy()
    assert (len(train_x), len(test_x)) == (60, 20)
    assert main(["eval", str(run.path), "--metrics", "parzen:n_validation=5", "--n", "12",
                 "--json", str(tmp_path / "r.json")]) == 0
    got = json.loads((tmp_path / "r.json").read_text())["metrics"]
    (call,) = recorded
    # the bandwidth is chosen on the last 5 test-split rows: none of them was trained on or is scored
    assert not _rows(call["validation"]) & _rows(train_x)
    assert not _rows(call["validation"]) & _rows(call["test"])
    np.testing.assert_array_equal(call["validation"], test_x[-5:])
    np.testing.assert_array_equal(call["test"], test_x[:12])
    assert (got["parzen_n_validation"], got["parzen_n_test"]) == (5, 12)
    # sigma by hand: the grid value with the highest mean log-density of those 5 rows
    samples = run.sample(12, seed=0).double().numpy()
    means = [_brute_log_density(samples, test_x[-5:], s).mean() for s in P.DEFAULT_SIGMAS]
    best = int(np.argmax(means))
    assert 0 < best < len(P.DEFAULT_SIGMAS) - 1          # an interior optimum: a real choice
    sigma = float(P.DEFAULT_SIGMAS[best])
    assert got["parzen_sigma"] == pytest.approx(sigma, rel=1e-12)
    assert got["parzen"] == pytest.approx(_brute_log_density(samples, test_x[:12], sigma).mean(), rel=1e-9)


def test_parzen_scores_only_the_rows_before_the_validation_rows(array_run, recorded):
    # 20 real samples asked for, but the last 5 of the 20 test rows choose sigma: 15 are scored
    out = E.evaluate_run(array_run, ["parzen:n_validation=5"], n=20)
    test_x = gankit.api.build_data(array_run.config, split="test").x.double().numpy()
    (call,) = recorded
    np.testing.assert_array_equal(call["test"], test_x[:15])
    np.testing.assert_array_equal(call["validation"], test_x[15:])
    assert (out["parzen_n_test"], out["parzen_n_validation"]) == (15, 5)
    # scored on the training split: every test row is free for choosing sigma
    out = E.evaluate_run(array_run, ["parzen:n_validation=5"], n=10, split="train")
    np.testing.assert_array_equal(recorded[1]["validation"], test_x[15:])
    assert not _rows(recorded[1]["validation"]) & _rows(recorded[1]["test"])
    with pytest.raises(ConfigError, match="parzen:n_validation="):
        E.evaluate_run(array_run, ["parzen:n_validation=20"], n=10)


def test_parzen_needs_a_run(tmp_path):
    s = E.EvalSet(_vectors(30, dim=2), _vectors(30, dim=2, seed=1), "vector")
    with pytest.raises(ConfigError, match="never trained on"):
        E.evaluate(s, ["parzen"])


def test_likelihood_vs_quality_chooses_sigma_on_images_nobody_else_uses():
    from gankit.experiments.likelihood_vs_quality import likelihood_vs_quality

    rng = np.random.default_rng(0)
    test_images = rng.integers(0, 256, size=(400, 1, 28, 28), dtype=np.uint8)
    train_images = rng.integers(0, 256, size=(100, 1, 28, 28), dtype=np.uint8)
    res = likelihood_vs_quality(n_good=5, n_validation=30, n_test=40, n_quality=50, seed=3,
                                test_images=test_images, train_images=train_images, return_arrays=True)
    rows = res["_arrays"]["rows"]
    val, test, good = (set(rows[k].tolist()) for k in ("validation", "test", "good"))
    assert (len(val), len(test), len(good)) == (30, 40, 5)
    assert not val & test and not val & good and not test & good
    assert "30 test-split images" in res["validation"]
