"""Triple-GAN: the balanced labelled subset (data.per_class), the three players learning on a
toy mixture whose classes are its modes, the labelled-only baseline, the metric and the errors."""

import pytest
import torch

import gankit
from gankit.errors import ConfigError, DataError
from gankit.metrics.evaluate import evaluate_run


def _config(out, steps, **method):
    return {"method": {"name": "triplegan", **method},
            "data": {"name": "ring8", "n_samples": 2000},
            "data_labelled": {"name": "ring8", "n_samples": 2000, "per_class": 4},
            "generator": {"name": "mlp", "hidden": 64, "layers": 2, "z_dim": 4},
            "discriminator": {"name": "mlp", "hidden": 64, "layers": 2},
            "classifier": {"name": "mlp", "hidden": 32, "layers": 2},
            "optim": {"lr_g": 2e-3, "lr_d": 2e-3},
            "train": {"steps": steps, "batch_size": 32, "log_every": 25, "sample_every": 0, "checkpoint_every": 0,
                      "progress": "none", "seed": 5},
            "runtime": {"threads": 1}, "out": str(out)}


# ------------------------------------------------------------------ the labelled subset
def test_per_class_keeps_the_first_samples_of_each_class():
    full = gankit.api.build_data(gankit.api.make_config({"data": {"name": "ring8", "n_samples": 500}}))
    sub = gankit.api.build_data(gankit.api.make_config({"data": {"name": "ring8", "n_samples": 500,
                                                                 "per_class": 3}}))
    want = []                                      # an independent walk over the data in order
    seen = {}
    for i, c in enumerate(full.y.tolist()):
        if seen.get(c, 0) < 3:
            want.append(i)
            seen[c] = seen.get(c, 0) + 1
    assert len(sub) == 24 and torch.equal(sub.x, full.x[want]) and torch.equal(sub.y, full.y[want])
    assert torch.equal(torch.bincount(sub.y, minlength=8), torch.full((8,), 3))
    assert sub.fields()["y"].frequencies == pytest.approx((1 / 8,) * 8)


def test_per_class_errors_say_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="data.per_class must be a whole number.*per_class=10"):
        gankit.api.make_config({"data": {"name": "ring8", "per_class": -1}})
    with pytest.raises(ConfigError, match="data_labelled.per_class must be a whole number"):
        gankit.api.make_config({**_config(tmp_path, 1), "data_labelled": {"name": "ring8", "per_class": "ten"}})
    with pytest.raises(DataError, match=r"per_class=400: class \d has only \d+ samples; lower per_class"):
        gankit.api.build_data(gankit.api.make_config({"data": {"name": "ring8", "n_samples": 1000,
                                                               "per_class": 400}}))
    import numpy as np

    path = tmp_path / "nolabels.npz"
    np.savez(path, x=np.zeros((10, 2), np.float32))
    with pytest.raises(ConfigError, match="per_class keeps samples by their labels.*has none"):
        gankit.api.build_data(gankit.api.make_config({"data": {"name": "array", "path": str(path), "per_class": 1}}))


# ------------------------------------------------------------------ learning
def _judgements(run, n=2000):
    """(the share of G's samples of class y nearest to mode y, C's error on held-out points, the
    margin by which D scores held-out points with their own class above a wrong class)."""
    m = run.method
    data = gankit.api.build_data(run.config, split="test")
    x, y = data.x[:n], data.y[:n]
    y_gen = torch.arange(n) % 8
    fake = run.generate(n, seed=0, given={"y": y_gen})["x"].double()
    near = torch.cdist(fake, data.modes.double()).argmin(1)
    error = float((m.classify(x) != y).double().mean())
    D = m.discriminator
    with torch.no_grad():
        wrong = (y + 1 + torch.randint(7, (n,), generator=torch.Generator().manual_seed(0))) % 8
        margin = float((D(x, y)["score"] - D(x, wrong)["score"]).mean())
    return float((near == y_gen).double().mean()), error, margin


def test_the_three_players_each_beat_their_start(tmp_path):
    start = gankit.train(_config(tmp_path / "start", 1))
    run = gankit.train(_config(tmp_path / "run", 300, pseudo_start=100, adv_weight=0.1))
    g0, c0, d0 = _judgements(start)
    g1, c1, d1 = _judgements(run)
    # G: its samples of class y lie at mode y (chance: 1/8)
    assert g0 < 0.4 and g1 > 0.8, (g0, g1)
    # C: from 32 labels (4 per mode) and the unlabelled points, it classifies held-out points
    assert c0 > 0.5 and c1 < 0.05, (c0, c1)
    # D: a point with its own class passes, with a wrong class it does not
    assert d1 > d0 + 2.0 and d1 > 2.0, (d0, d1)
    logs = [__import__("json").loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert {"d_loss", "g_loss", "c_supervised", "c_adversarial", "c_pseudo"} <= set(logs[-1])

    # the metric is C's error on the held-out split, as computed independently above
    result = evaluate_run(run, metrics=["classifier_error"], n=2000)
    assert result["classifier_error"] == pytest.approx(c1)


def test_the_classifiers_adversarial_term_is_the_expectation_over_its_labels(tmp_path):
    """C's adversarial loss sums D's scores of every class weighted by C's probabilities: its
    gradient equals that of the expectation computed class by class."""
    from gankit.methods.triplegan import class_scores

    run = gankit.train(_config(tmp_path / "run", 3))
    for design in ("projection", "joint"):
        r = run if design == "projection" else gankit.train(_config(tmp_path / design, 3, design=design))
        D = r.method.discriminator
        x = torch.randn(12, 2)
        scores = class_scores(D, x, 8)
        one_by_one = torch.stack([D(x, torch.full((12,), c))["score"] for c in range(8)], 1)
        torch.testing.assert_close(scores, one_by_one)


def test_the_labelled_only_baseline_trains_the_classifier_alone(tmp_path):
    start = gankit.train(_config(tmp_path / "start", 1, adv_weight=0.0, pseudo_weight=0.0))
    run = gankit.train(_config(tmp_path / "run", 60, adv_weight=0.0, pseudo_weight=0.0))
    for role in ("generator", "discriminator"):     # held still: the seed's weights
        for a, b in zip(start.method.modules[role].parameters(), run.method.modules[role].parameters()):
            assert torch.equal(a, b)
    moved = [not torch.equal(a, b) for a, b in zip(start.method.classifier.parameters(),
                                                     run.method.classifier.parameters())]
    assert all(moved)
    logs = [__import__("json").loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert "c_adversarial" not in logs[-1] and "d_loss" not in logs[-1]
    assert logs[-1]["c_supervised"] < logs[0]["c_supervised"] / 2


def test_sampling_follows_the_labelled_classes(tmp_path):
    run = gankit.train(_config(tmp_path / "run", 2))
    out = run.generate(16, seed=1, given={"y": 3})
    assert bool((out["y"] == 3).all()) and out["x"].shape == (16, 2)
    assert run.info.fields["y"].n_classes == 8
    with pytest.raises(ConfigError, match="label 9 is out of range"):
        run.generate(4, seed=1, given={"y": 9})


def test_bad_settings_are_refused_before_anything_is_written(tmp_path):
    cfg = _config(tmp_path / "a", 1)
    del cfg["data_labelled"]
    with pytest.raises(ConfigError, match="data_labelled"):
        gankit.train(cfg)
    with pytest.raises(ConfigError, match="method.alpha.*strictly between 0 and 1"):
        gankit.train(_config(tmp_path / "b", 1, alpha=1.0))
    with pytest.raises(ConfigError, match="adv_weight must not be negative"):
        gankit.train(_config(tmp_path / "c", 1, adv_weight=-1.0))
    with pytest.raises(ConfigError, match="input noise must be a standard deviation"):
        gankit.train(_config(tmp_path / "c", 1, d_noise=-0.5))
    other = _config(tmp_path / "d", 1)
    other["data_labelled"] = {"name": "gaussian1d", "per_class": 2}     # 1-D points beside 2-D ones
    with pytest.raises(ConfigError, match="labelled samples like the unlabelled ones"):
        gankit.train(other)
    for name in "abcd":
        assert not (tmp_path / name).exists()


# ------------------------------------------------------------------ noise in the discriminator
def test_discriminator_noise_has_the_set_spread_and_only_while_training():
    from torch import nn

    from gankit.nets.blocks import add_gaussian_noise

    net = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False))
    for layer in net:
        nn.init.eye_(layer.weight)          # identity layers: the output is the input plus both noises
    add_gaussian_noise(net, 0.3, 0.5)
    x = torch.zeros(50_000, 4)
    torch.manual_seed(0)
    with torch.no_grad():
        out = net(x)
    assert float(out.var()) == pytest.approx(0.3 ** 2 + 0.5 ** 2, rel=0.02)
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), x)


def test_a_run_with_discriminator_noise_resumes_exactly(tmp_path):
    cfg = _config(tmp_path / "n", 20, d_noise=0.6, d_hidden_noise=0.5)
    cfg["train"]["checkpoint_every"] = 10
    full = gankit.train(cfg)
    half = gankit.train({**_config(tmp_path / "h", 10, d_noise=0.6, d_hidden_noise=0.5),
                         "train": {**cfg["train"], "steps": 10}})
    resumed = gankit.resume(half.path, steps=20)
    for a, b in zip(full.method.discriminator.parameters(), resumed.method.discriminator.parameters()):
        assert torch.equal(a, b)
