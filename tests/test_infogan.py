"""InfoGAN: the mutual-information bound against its closed forms, the best one-to-one matching
against brute force, a short run in which Q learns to recover the code, sampling given codes,
the traversal grid, the metric and the errors for bad settings."""
import itertools
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.cli import main
from gankit.errors import ConfigError
from gankit.methods.infogan import InfoGAN, categorical_bound, gaussian_bound, information_bound
from gankit.metrics.matching import kmeans, matched_accuracy

from conftest import toy_config


def infogan_config(out, steps=400, **method):
    cfg = toy_config(out, steps=steps)
    cfg["method"] = {"name": "infogan", "categorical": [8], "continuous": 1, **method}
    cfg["generator"] = {"name": "mlp", "hidden": 64, "layers": 2, "z_dim": 2}
    cfg["discriminator"] = {"name": "mlp", "hidden": 64, "layers": 2}
    cfg["train"].update(checkpoint_every=0, log_every=50)
    cfg["runtime"] = {"threads": 1}          # tiny networks: a second thread only waits
    return cfg


# ----------------------------------------------------------------------------------- the bound
def test_the_categorical_bound_is_the_entropy_minus_the_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits, code = torch.randn(50, 6, generator=g), torch.randint(0, 6, (50,), generator=g)
    p = np.exp(logits.double().numpy())
    p /= p.sum(1, keepdims=True)
    want = math.log(6) + np.mean(np.log(p[np.arange(50), code.numpy()]))   # H(c) + E log Q(c|x)
    assert categorical_bound(logits, code).item() == pytest.approx(want, rel=1e-5)
    # Q that knows nothing: the bound is 0; Q that is sure and right: it reaches H(c) = log k
    assert categorical_bound(torch.zeros(50, 6), code).item() == pytest.approx(0.0, abs=1e-6)
    sure = F.one_hot(code, 6).float() * 50
    assert categorical_bound(sure, code).item() == pytest.approx(math.log(6), abs=1e-6)


def test_the_continuous_bound_is_the_entropy_plus_the_gaussian_log_likelihood():
    from scipy.stats import norm

    g = torch.Generator().manual_seed(1)
    mean, log_std = torch.randn(40, 3, generator=g), 0.3 * torch.randn(40, 3, generator=g)
    code = torch.rand(40, 3, generator=g) * 2 - 1
    loglik = norm.logpdf(code.double().numpy(), loc=mean.double().numpy(), scale=np.exp(log_std.double().numpy()))
    want = (math.log(2.0) + loglik).sum(1).mean()      # uniform in [-1, 1]: differential entropy log 2
    assert gaussian_bound(mean, log_std, code).item() == pytest.approx(want, rel=1e-5)
    fixed = norm.logpdf(code.double().numpy(), loc=mean.double().numpy(), scale=1.0)
    assert gaussian_bound(mean, torch.zeros(40, 3), code).item() == pytest.approx((math.log(2.0) + fixed).sum(1).mean(),
                                                                                 rel=1e-5)


def test_the_bound_sums_over_codes():
    g = torch.Generator().manual_seed(2)
    logits = [torch.randn(20, 4, generator=g), torch.randn(20, 3, generator=g)]
    codes = [torch.randint(0, 4, (20,), generator=g), torch.randint(0, 3, (20,), generator=g)]
    mean, cont = torch.randn(20, 2, generator=g), torch.rand(20, 2, generator=g) * 2 - 1
    cat, gauss = information_bound({"logits": logits, "mean": mean, "log_std": torch.zeros(20, 2)}, codes, cont)
    assert cat.item() == pytest.approx(sum(categorical_bound(lg, c).item() for lg, c in zip(logits, codes)), rel=1e-6)
    assert gauss.item() == pytest.approx(gaussian_bound(mean, torch.zeros(20, 2), cont).item(), rel=1e-6)


# ----------------------------------------------------------------------------------- matching
def _brute_force_best(table):
    """The largest sum of a one-to-one matching of rows to columns, over every injection."""
    r, c = table.shape
    if r <= c:
        return max(sum(table[i, p[i]] for i in range(r)) for p in itertools.permutations(range(c), r))
    return max(sum(table[p[j], j] for j in range(c)) for p in itertools.permutations(range(r), c))


def test_matched_accuracy_against_brute_force_and_relabelling():
    rng = np.random.default_rng(2)
    for k_pred, k_true in ((3, 3), (4, 3), (3, 4), (5, 5)):
        pred, truth = rng.integers(0, k_pred, 200), rng.integers(0, k_true, 200)
        acc, mapping = matched_accuracy(pred, truth, k_pred, k_true)
        table = np.zeros((k_pred, k_true))
        np.add.at(table, (pred, truth), 1)
        assert acc == pytest.approx(_brute_force_best(table) / 200)
        hit = [mapping[p] == t for p, t in zip(pred, truth)]
        assert np.mean(hit) == pytest.approx(acc)
    truth = rng.integers(0, 6, 300)
    perm = rng.permutation(6)
    assert matched_accuracy(perm[truth], truth, 6, 6)[0] == 1.0     # a renamed clustering is perfect
    with pytest.raises(ValueError, match="0..2"):
        matched_accuracy([0, 3], [0, 1], 3, 2)


def test_kmeans_finds_separated_clusters():
    rng = np.random.default_rng(3)
    centres = np.array([[0, 0], [5, 0], [0, 5], [5, 5]], dtype=float)
    truth = rng.integers(0, 4, 400)
    x = centres[truth] + rng.normal(0, 0.3, size=(400, 2))
    labels, found, inertia = kmeans(x, 4, seed=0)
    assert matched_accuracy(labels, truth, 4, 4)[0] == 1.0
    assert inertia == pytest.approx(((x - found[labels]) ** 2).sum(), rel=1e-6)
    with pytest.raises(ValueError, match="k-means needs"):
        kmeans(x[:3], 4)


# ----------------------------------------------------------------------------------- training
def q_recovery(run, n=800):
    """The share of generated samples whose categorical code Q recovers (the code drawn for each)."""
    m = run.method
    g = torch.Generator().manual_seed(5)
    latent = m.noise(n, g)
    code = m.split(latent)[1][0]
    with torch.no_grad():
        x = m.generator.eval()(latent)
        m.generator.train()
    return (m.classify(x) == code).float().mean().item()


def test_q_learns_to_recover_the_code_and_sampling_obeys_it(tmp_path):
    start = gankit.train(infogan_config(tmp_path / "start", steps=1))
    run = gankit.train(infogan_config(tmp_path / "run"))
    before, after = q_recovery(start), q_recovery(run)
    assert before < 0.3                       # chance is 1 in 8
    assert after > 0.8, after                 # G makes the code visible and Q reads it
    logs = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    last = [row for row in logs if "mi_categorical" in row][-1]
    assert last["mi_categorical"] > 0.5 * math.log(8) and last["q_accuracy"] > 0.7
    assert "mi_continuous" in last

    out = run.generate(64, seed=0, given={"code": 3, "continuous": [0.5]})
    assert bool((out["code"] == 3).all()) and torch.allclose(out["continuous"], torch.full((64, 1), 0.5))
    # fixing the code fixes the cluster: samples of one code land in few of the ring's modes
    modes = torch.cdist(out["x"].double(), run.data.modes.double()).argmin(1)
    assert torch.bincount(modes, minlength=8).max().item() > 0.6 * 64

    from gankit.metrics.evaluate import evaluate_run

    result = evaluate_run(gankit.load_run(run.path), metrics=["unsupervised_accuracy"], n=800)
    # the code as a clustering of the ring's modes: well above the 1 in 8 of chance
    assert result["unsupervised_accuracy_generated"] > 0.5 and result["unsupervised_accuracy"] > 0.5, result


def test_sampling_the_cli_and_the_traversal(tmp_path, capsys):
    run = gankit.train(infogan_config(tmp_path / "run", steps=2, continuous=2))
    assert main(["sample", str(run.path), "--label", "3", "--n", "5", "--out", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as f:
        assert f["code"].tolist() == [3] * 5 and f["continuous"].shape == (5, 2)
    assert main(["sample", str(run.path), "--n", "7", "--out", str(tmp_path / "u.npz")]) == 0
    with np.load(tmp_path / "u.npz") as f:
        assert f["x"].shape == (7, 2) and f["code"].min() >= 0 and f["code"].max() < 8
    assert main(["sample", str(run.path), "--label", "8", "--out", str(tmp_path / "bad.npz")]) == 2
    assert "code 8 is out of range" in capsys.readouterr().err

    m = gankit.load_run(run.path).method
    x, per_row = m.traversal(code=1, steps=5)
    assert x.shape == (8 * 5, 2) and per_row == 5
    # the same noise everywhere: a row's first and last column differ only in continuous code 1
    z, codes, cont = m.split(m.noise(1, torch.Generator().manual_seed(0)))
    latent = m.compose(z.expand(2, -1), [torch.tensor([0, 0])], torch.tensor([[0.0, -2.0], [0.0, 2.0]]))
    with torch.no_grad():
        want = m.for_sampling().eval()(latent)
    torch.testing.assert_close(x[[0, 4]], want)
    with pytest.raises(ConfigError, match="2 continuous codes; code 2"):
        m.traversal(code=2)


@pytest.mark.parametrize("method,match", [
    ({"categorical": [1]}, "at least 2"),
    ({"categorical": [], "continuous": 0}, "at least one latent code"),
    ({"continuous": -1}, "must not be negative"),
    ({"lambda_continuous": -0.1}, "lambda_continuous must not be negative"),
    ({"q_hidden": 0}, "q_hidden must be at least 1"),
])
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, method, match):
    cfg = infogan_config(tmp_path / "run", steps=1, **method)
    with pytest.raises(ConfigError, match=match):
        gankit.train(cfg)
    assert not (tmp_path / "run").exists()


def test_bad_codes_and_the_metric_on_another_method(tmp_path):
    run = gankit.train(infogan_config(tmp_path / "run", steps=1))
    assert isinstance(run.method, InfoGAN)
    with pytest.raises(ConfigError, match="takes the codes code, continuous; it cannot be given 'y'"):
        run.generate(4, given={"y": 1})
    with pytest.raises(ConfigError, match="'continuous' takes 1 values per sample"):
        run.generate(4, given={"continuous": [[0.1, 0.2]] * 4})
    with pytest.raises(ConfigError, match="3 values of 'code' given for 4 samples"):
        run.generate(4, given={"code": [1, 2, 3]})
    from gankit.metrics.evaluate import evaluate_run

    cfg = toy_config(tmp_path / "gan", steps=1)
    other = gankit.train(cfg)
    with pytest.raises(ConfigError, match="scores the categorical code of an InfoGAN run"):
        evaluate_run(other, metrics=["unsupervised_accuracy"], n=100)


def test_the_traversal_picture_and_the_kmeans_baselines(tmp_path, image_npz):
    from PIL import Image

    from gankit.experiments.infogan_codes import baselines, traversal_picture

    cfg = {"method": {"name": "infogan", "categorical": [3], "continuous": 2},
           "data": {"name": "array", "path": str(image_npz)},
           "generator": {"name": "dcgan", "z_dim": 4, "width": 8}, "discriminator": {"name": "dcgan", "width": 8},
           "train": {"steps": 1, "batch_size": 8, "progress": "none", "sample_every": 0},
           "runtime": {"threads": 1}, "out": str(tmp_path / "run")}
    run = gankit.train(cfg)
    path = traversal_picture(run.method, tmp_path / "t.png", steps=5)
    # two panels (one per continuous code) of 3 rows (categories) x 5 columns of 16-pixel tiles
    # with 2-pixel padding, 12 pixels apart
    assert Image.open(path).size == (2 * (5 * 18 + 2) + 12, 3 * 18 + 2)

    g = torch.Generator().manual_seed(0)
    y = torch.arange(3).repeat_interleave(40)
    x = torch.rand(120, 1, 4, 4, generator=g) * 0.1 + y.float().view(-1, 1, 1, 1) * 0.4   # three brightness levels
    assert baselines(x, y, 3, features=None) == {"kmeans_pixels": 1.0}


def test_q_is_a_head_on_the_discriminators_features():
    from gankit.nets.infogan import LOG_STD_RANGE, InfoDiscriminator
    from gankit.nets.mlp import mlp_discriminator

    base = mlp_discriminator((2,), hidden=16, layers=2)
    d = InfoDiscriminator(base, (4, 3), 2, learn_std=True, hidden=8)
    x = torch.randn(5, 2) * 10
    out = d(x)
    assert [t.shape for t in out["logits"]] == [(5, 4), (5, 3)]
    assert out["mean"].shape == out["log_std"].shape == (5, 2) and out["score"].shape == (5,)
    assert torch.equal(out["score"], base(x))                  # the realism score is the base's own read-out
    lo, hi = LOG_STD_RANGE
    assert bool(((out["log_std"] > lo) & (out["log_std"] < hi)).all())
    assert torch.equal(d.recognise(x)["mean"], out["mean"])
    fixed = InfoDiscriminator(base, (4,), 2, learn_std=False)
    assert torch.equal(fixed(x)["log_std"], torch.zeros(5, 2))
    with pytest.raises(ConfigError, match="penultimate features"):
        InfoDiscriminator(torch.nn.Linear(2, 1), (4,), 0)
