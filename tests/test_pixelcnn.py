"""The gated PixelCNN: causal with no blind spot, an exact and normalised likelihood, sampling that
draws from the model it reports, training that lowers held-out bits per dimension, clear errors."""
import math

import numpy as np
import pytest
import torch

import gankit
from gankit.errors import ConfigError
from gankit.nets.pixelcnn import LEVELS, GatedPixelCNN, from_levels, to_levels


def _net(shape, width=8, layers=3, kernel=3, head=16, seed=0):
    torch.manual_seed(seed)
    net = GatedPixelCNN(shape, width, layers, kernel, head).eval()
    with torch.no_grad():   # larger biases than the default init, so no output is nearly uniform
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.bias.normal_(0, 0.5)
    return net


@pytest.mark.parametrize("kernel", [3, 5])
def test_each_pixel_sees_exactly_the_pixels_before_it_within_reach(kernel):
    """The gradient of pixel (i, j)'s logits reaches every input pixel of the rectangle of rows
    above within reach and the pixels to its left, and nothing at or after (i, j): causal, and no
    blind spot (a stack of masked 3x3 convolutions misses pixels up and to the right)."""
    layers, (h, w) = 3, (14, 15)
    net = _net((1, h, w), kernel=kernel, layers=layers)
    reach = layers * (kernel // 2)
    for i, j in ((9, 7), (12, 2), (0, 5), (4, 14)):
        x = (torch.rand(1, 1, h, w) * 2 - 1).requires_grad_(True)
        net(x)[0, :, 0, i, j].sum().backward()
        seen = x.grad[0, 0] != 0
        want = torch.zeros(h, w, dtype=torch.bool)
        want[max(0, i - 1 - reach):i, max(0, j - reach):j + reach + 1] = True
        want[i, max(0, j - 1 - reach):j] = True
        assert torch.equal(seen, want), (i, j)


def test_log_prob_is_the_sum_of_each_pixels_conditional():
    """An independent computation for a tiny picture: pixel by pixel in raster order, the
    probability of its value from a forward pass in which every later pixel holds other values."""
    net = _net((2, 3, 4))
    levels = torch.randint(0, LEVELS, (3, 2, 3, 4))
    want = torch.zeros(3, dtype=torch.float64)
    for i in range(3):
        for j in range(4):
            scrambled = levels.clone()
            later = torch.zeros(3, 4, dtype=torch.bool)
            later.view(-1)[i * 4 + j:] = True
            scrambled[:, :, later] = torch.randint(0, LEVELS, (3, 2, int(later.sum())))
            with torch.no_grad():
                p = torch.softmax(net(from_levels(scrambled)).double(), dim=1)[:, :, :, i, j]   # (N, 256, C)
            want += p.gather(1, levels[:, :, i, j].unsqueeze(1)).squeeze(1).log().sum(1)
    with torch.no_grad():
        got = net.log_prob(levels).double()
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)


def test_the_probabilities_of_every_picture_sum_to_one():
    """A 1x2 grey picture has 256^2 possible values: their probabilities add up to 1."""
    net = _net((1, 1, 2))
    a, b = torch.meshgrid(torch.arange(LEVELS), torch.arange(LEVELS), indexing="ij")
    every = torch.stack([a.reshape(-1), b.reshape(-1)], 1).view(-1, 1, 1, 2)
    with torch.no_grad():
        total = torch.logsumexp(net.log_prob(every).double(), 0)
    assert abs(float(total)) < 1e-4


def test_levels_round_trip():
    v = torch.arange(LEVELS).view(1, 1, 16, 16)
    assert torch.equal(to_levels(from_levels(v)), v)
    assert torch.equal(to_levels(v.float() / 255 * 2 - 1), v)     # the evaluation's [0, 1] -> model space


def test_sampling_draws_what_the_full_network_scores():
    """The pixel-by-pixel sampler (bands of rows and columns, not the whole picture) reports the
    log-probability that a full forward pass gives its pictures, and a seed repeats them."""
    net = _net((1, 10, 9))
    z = torch.randn(6, 90, generator=torch.Generator().manual_seed(1))
    levels, log_prob = net.sample(z)
    with torch.no_grad():
        full = net.log_prob(levels).double()
    torch.testing.assert_close(log_prob, full, rtol=0, atol=1e-3)
    again, _ = net.sample(z)
    assert torch.equal(levels, again) and levels.min() >= 0 and levels.max() < LEVELS


def test_sampling_follows_the_models_distribution():
    """For a one-pixel picture the model is one categorical: 4,000 draws land in eight bands of
    values as often as its probabilities say (a chi-square check at a 1-in-10^4 level)."""
    net = _net((1, 1, 1))
    with torch.no_grad():
        p = torch.softmax(net(torch.zeros(1, 1, 1, 1)).double()[0, :, 0, 0, 0], 0)
    levels, _ = net.sample(torch.randn(4000, 1, generator=torch.Generator().manual_seed(0)))
    counts = torch.bincount(levels.view(-1) // 32, minlength=8).double()
    expected = 4000 * p.view(8, 32).sum(1)
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 33.0           # chi-square with 7 degrees of freedom: P(> 33) < 1e-4


def _tiny_pictures(folder):
    """600 grey 12x12 pictures: a bright bar, horizontal or vertical, at a random place, on a
    dark ground with a little noise (much for a PixelCNN to learn: 8 bits a pixel at first)."""
    path = folder / "bars.npz"
    rng = np.random.default_rng(0)
    x = rng.integers(0, 12, size=(600, 12, 12)).astype(np.uint8)
    for img in x:
        k = rng.integers(0, 12)
        if rng.random() < 0.5:
            img[k] = 230
        else:
            img[:, k] = 230
    np.savez(path, x=x)
    return path


def _config(out, data, steps):
    return {"method": {"name": "pixelcnn"}, "data": {"name": "array", "path": str(data), "test_fraction": 0.25},
            "generator": {"name": "auto", "width": 16, "layers": 4},
            "train": {"steps": steps, "batch_size": 32, "log_every": 10, "sample_every": 0, "checkpoint_every": 1000,
                      "progress": "none", "seed": 0},
            "runtime": {"threads": 1}, "optim": {"lr_g": 3e-3}, "out": str(out)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The bars, a pixelcnn run after 1 and after 120 steps."""
    tmp_path = tmp_path_factory.mktemp("pixelcnn")
    data = _tiny_pictures(tmp_path)
    start = gankit.train(_config(tmp_path / "start", data, 1))
    run = gankit.train(_config(tmp_path / "run", data, 120))
    return data, start, run


def test_training_lowers_the_held_out_bits_per_dim(trained):
    from gankit.metrics.evaluate import evaluate_run

    data, start, run = trained
    before = evaluate_run(gankit.load_run(start.path), metrics=["bits_per_dim"], n=20, features="pixels")
    after = evaluate_run(gankit.load_run(run.path), metrics=["bits_per_dim"], n=20, features="pixels")
    assert before["bits_per_dim_n"] == after["bits_per_dim_n"] == 150     # the whole held-out quarter
    assert before["bits_per_dim"] > 7.0                   # about uniform over 256 values at the start
    assert after["bits_per_dim"] < 4.5                    # the ground's few values and the bars learnt
    # the metric is the exact NLL: the same number from the network directly
    held = np.load(data)["x"][np.sort(np.random.default_rng(0).permutation(600)[:150])]   # array's seeded split
    loaded = gankit.load_run(run.path)
    with torch.no_grad():
        lp = loaded.method.for_sampling().log_prob(torch.from_numpy(held).long()[:, None]).double()
    assert after["bits_per_dim"] == pytest.approx(float(-lp.mean() / (144 * math.log(2))), rel=1e-5)
    assert after["nll_nats"] == pytest.approx(float(-lp.mean()), rel=1e-5)
    # samples come with their own exact log-probability, and look like the data: the ground dark
    out = loaded.generate(8, seed=0)
    assert out["x"].shape == (8, 1, 12, 12) and out["log_prob"].shape == (8,)
    assert float(out["x"].median()) < 0.1


def test_clear_errors(tmp_path):
    data = _tiny_pictures(tmp_path)
    cfg = _config(tmp_path / "a", data, 1)
    cfg["generator"] = {"name": "dcgan"}
    with pytest.raises(ConfigError, match="generator.name=pixelcnn"):
        gankit.train(cfg)
    cfg = _config(tmp_path / "b", data, 1)
    cfg["method"]["temperature"] = 0
    with pytest.raises(ConfigError, match="temperature must be positive"):
        gankit.train(cfg)
    cfg = _config(tmp_path / "c", data, 1)
    cfg["generator"]["kernel"] = 4
    with pytest.raises(ConfigError, match="kernel"):
        gankit.train(cfg)
    with pytest.raises(ConfigError, match="pixelcnn works on image data"):
        gankit.train({"method": {"name": "pixelcnn"}, "data": {"name": "ring8"}, "out": str(tmp_path / "d"),
                      "train": {"steps": 1, "progress": "none"}})
    from gankit.metrics.evaluate import evaluate_run

    gan = gankit.train({"data": {"name": "array", "path": str(data), "test_fraction": 0.25},
                        "generator": {"name": "dcgan", "width": 8}, "discriminator": {"name": "dcgan", "width": 8},
                        "train": {"steps": 1, "batch_size": 8, "progress": "none", "sample_every": 0},
                        "out": str(tmp_path / "gan")})
    with pytest.raises(ConfigError, match="exact likelihood.*parzen"):
        evaluate_run(gan, metrics=["bits_per_dim"], n=20, features="pixels")


def test_the_likelihood_experiment_sets_exact_bits_beside_parzen(trained, tmp_path):
    """``likelihood_vs_quality`` with a pixelcnn and a GAN run: the PixelCNN's exact numbers on the
    experiment's test images (checked against the network directly), and the exact likelihood of
    its 99%-noise mixture within log 100 nats of its own while the Parzen estimate is a number of
    another kind."""
    from gankit.experiments.likelihood_vs_quality import likelihood_vs_quality, save_models_figure

    data, _, run = trained
    x = np.load(data)["x"][:, None]
    gan = gankit.train({"data": {"name": "array", "path": str(data), "test_fraction": 0.25},
                        "generator": {"name": "dcgan", "width": 8}, "discriminator": {"name": "dcgan", "width": 8},
                        "train": {"steps": 5, "batch_size": 16, "progress": "none", "sample_every": 0},
                        "runtime": {"threads": 1}, "out": str(tmp_path / "gan")})
    models = {"pixelcnn": gankit.load_run(run.path), "gan": gankit.load_run(gan.path)}
    res = likelihood_vs_quality(n_good=40, n_validation=100, n_test=100, n_quality=200, test_images=x,
                                train_images=x, models=models, return_arrays=True)
    pc, g = res["models"]["pixelcnn"], res["models"]["gan"]
    test_rows = res["_arrays"]["rows"]["test"]
    with torch.no_grad():
        lp = models["pixelcnn"].method.for_sampling().log_prob(torch.from_numpy(x[test_rows]).long()).double()
    assert pc["exact_nll_nats"] == pytest.approx(float(-lp.mean()), rel=1e-6)
    assert pc["exact_bits_per_dim"] == pytest.approx(pc["exact_nll_nats"] / (144 * math.log(2)), rel=1e-9)
    assert pc["exact_log_density"] == pytest.approx(float(lp.mean()) + 144 * math.log(256), rel=1e-9)
    # log(0.01 P + 0.99 / 256^D): a model far better than uniform loses almost exactly log 100
    assert 0 < pc["exact_mixture_gap"] <= math.log(100) + 1e-9 and pc["exact_mixture_gap_bound_holds"]
    assert pc["exact_mixture_gap"] == pytest.approx(math.log(100), abs=1e-3)
    assert "exact_bits_per_dim" not in g          # a GAN has no likelihood: only its Parzen estimate
    for row in (pc, g):
        assert math.isfinite(row["parzen"]) and row["fid"] >= 0 and 0 <= row["precision"] <= 1
    assert res["_arrays"]["models"]["pixelcnn"].shape == (40, 1, 12, 12)
    assert save_models_figure(res, tmp_path / "models.png").stat().st_size > 0
