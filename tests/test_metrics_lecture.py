"""The lecture's evaluation metrics: Parzen log-likelihood, mode counting, memorisation, birthday test.

Each metric is checked against a brute-force or closed-form reference on small data, on
constructed inputs whose answer is known, and on bad input (clear ValueError messages).
The Fashion-MNIST checks are skipped when the data set is not installed.
"""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from gankit.data.images import FASHION_MNIST_DEBIAN_DIR
from gankit.data.toy import grid25, ring8
from gankit.metrics.birthday import (birthday_test, closest_pair_distance, support_from_collision_prob)
from gankit.metrics.memorization import (memorization_report, nearest_neighbours, save_neighbours_figure,
                                         shift_images)
from gankit.metrics.modes import (conditional_accuracy, stack_images, stacked_labels, stacked_modes,
                                  toy_mode_stats)
from gankit.metrics.parzen import (DEFAULT_SIGMAS, parzen_evaluate, parzen_log_density, parzen_log_likelihood,
                                   parzen_select_sigma)

HAVE_FASHION = (Path(FASHION_MNIST_DEBIAN_DIR) / "t10k-images-idx3-ubyte.gz").exists() or \
    (Path(FASHION_MNIST_DEBIAN_DIR) / "t10k-images-idx3-ubyte").exists()
needs_fashion = pytest.mark.skipif(not HAVE_FASHION, reason="apt-get install dataset-fashion-mnist")


@pytest.fixture(scope="module")
def fashion_test():
    from gankit.data.images import fashion_mnist

    return fashion_mnist(split="test").x.numpy().astype(np.float64) / 255.0


def brute_log_density(samples, x, sigma):
    s = samples.reshape(len(samples), -1)
    a = x.reshape(len(x), -1)
    d2 = ((a[:, None, :] - s[None, :, :]) ** 2).sum(-1)
    dim = s.shape[1]
    return logsumexp(-d2 / (2 * sigma ** 2), axis=1) - math.log(len(s)) - 0.5 * dim * math.log(2 * math.pi * sigma ** 2)


# ------------------------------------------------------------------------------------------------
# Parzen window
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sigma", [0.03, 0.2, 1.0, 5.0])
@pytest.mark.parametrize("batch_size", [4, 1024])
def test_parzen_matches_brute_force(sigma, batch_size):
    rng = np.random.default_rng(0)
    samples = rng.random((37, 1, 3, 4))            # flattened to D = 12
    test = rng.random((23, 1, 3, 4))
    got = parzen_log_density(samples, test, sigma, batch_size=batch_size)
    np.testing.assert_allclose(got, brute_log_density(samples, test, sigma), rtol=1e-10, atol=1e-9)


def test_parzen_grid_torch_and_float32_inputs():
    rng = np.random.default_rng(1)
    samples = rng.normal(size=(50, 6))
    test = rng.normal(size=(20, 6))
    sigmas = [0.3, 1.0, 2.0]
    grid = parzen_log_density(torch.from_numpy(samples), torch.from_numpy(test), sigmas, batch_size=7)
    assert grid.shape == (20, 3)
    for j, s in enumerate(sigmas):
        np.testing.assert_allclose(grid[:, j], brute_log_density(samples, test, s), rtol=1e-10)
    f32 = parzen_log_density(samples.astype(np.float32), test.astype(np.float32), 1.0)
    ref = brute_log_density(samples.astype(np.float32).astype(np.float64),
                            test.astype(np.float32).astype(np.float64), 1.0)
    np.testing.assert_allclose(f32, ref, rtol=1e-10)


def test_parzen_single_sample_is_gaussian_log_density():
    rng = np.random.default_rng(2)
    mu = rng.normal(size=(1, 10))
    x = rng.normal(size=(15, 10)) + mu
    for sigma in (0.5, 2.0):
        ref = multivariate_normal(mean=mu[0], cov=sigma ** 2 * np.eye(10)).logpdf(x)
        np.testing.assert_allclose(parzen_log_density(mu, x, sigma), ref, rtol=1e-12)
    mean, stderr = parzen_log_likelihood(mu, x, 2.0)
    ref = multivariate_normal(mean=mu[0], cov=4.0 * np.eye(10)).logpdf(x)
    assert mean == pytest.approx(ref.mean(), rel=1e-12)
    assert stderr == pytest.approx(ref.std(ddof=1) / math.sqrt(15), rel=1e-10)


def test_parzen_far_away_points_do_not_underflow():
    # every kernel underflows in a naive exp(); log-sum-exp must still be exact
    samples = np.zeros((3, 2))
    x = np.array([[100.0, 0.0]])
    got = parzen_log_density(samples, x, 0.1)
    assert got[0] == pytest.approx(-1e4 / (2 * 0.01) - math.log(2 * math.pi * 0.01), rel=1e-12)


def test_parzen_select_sigma_picks_best_on_validation():
    rng = np.random.default_rng(3)
    samples = rng.normal(scale=0.3, size=(200, 5))
    validation = rng.normal(scale=0.3, size=(100, 5))
    test = rng.normal(scale=0.3, size=(80, 5))
    sigmas = DEFAULT_SIGMAS
    means = [brute_log_density(samples, validation, s).mean() for s in sigmas]
    best = sigmas[int(np.argmax(means))]
    assert 0 < int(np.argmax(means)) < len(sigmas) - 1          # an interior optimum: a real choice
    assert parzen_select_sigma(samples, validation) == pytest.approx(best)
    res = parzen_evaluate(samples, validation, test, batch_size=16)
    assert res["sigma"] == pytest.approx(best)
    assert not res["sigma_on_edge"]
    ll = brute_log_density(samples, test, best)
    assert res["mean"] == pytest.approx(ll.mean(), rel=1e-10)
    assert res["stderr"] == pytest.approx(ll.std(ddof=1) / math.sqrt(len(ll)), rel=1e-8)
    assert list(res["by_sigma"]) == pytest.approx(list(sigmas))
    assert list(res["by_sigma"].values()) == pytest.approx(means, rel=1e-10)
    assert (res["n_samples"], res["n_validation"], res["n_test"]) == (200, 100, 80)
    json.dumps(res)                                              # JSON-friendly
    # a wider spread moves the choice to the largest sigma and flags it
    wide = parzen_evaluate(samples * 30, validation * 30, test * 30)
    assert wide["sigma"] == pytest.approx(1.0) and wide["sigma_on_edge"]


@pytest.mark.parametrize("call, match", [
    (lambda: parzen_log_likelihood(np.zeros((5, 3)), np.zeros((4, 2)), 1.0), "dimensions differ"),
    (lambda: parzen_log_likelihood(np.full((5, 3), np.nan), np.zeros((4, 3)), 1.0), "NaN"),
    (lambda: parzen_log_likelihood(np.zeros((5, 3)), np.zeros((0, 3)), 1.0), "empty"),
    (lambda: parzen_log_likelihood(np.zeros((0, 3)), np.zeros((4, 3)), 1.0), "empty"),
    (lambda: parzen_log_likelihood(np.zeros((5, 3)), np.zeros((4, 3)), -1.0), "positive"),
    (lambda: parzen_select_sigma(np.zeros((5, 3)), np.zeros((4, 3)), sigmas=[]), "non-empty"),
    (lambda: parzen_evaluate(np.zeros((5, 3)), np.zeros((4, 3)), np.zeros((4, 2))), "dimensions differ"),
    (lambda: parzen_log_likelihood(np.zeros((5, 3)), np.zeros((4, 3)), 1.0, batch_size=0), "batch_size"),
])
def test_parzen_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------------------------------------
# toy mode statistics (VEEGAN / PacGAN)
# ------------------------------------------------------------------------------------------------

RING = np.stack([np.cos(2 * np.pi * np.arange(8) / 8), np.sin(2 * np.pi * np.arange(8) / 8)], axis=1)


def test_toy_all_modes_evenly():
    rng = np.random.default_rng(0)
    x = np.repeat(RING, 300, axis=0) + rng.normal(scale=0.005, size=(2400, 2))
    res = toy_mode_stats(x, RING, 0.01)
    assert res["modes_captured"] == 8
    assert res["high_quality"] == 1.0
    assert res["reverse_kl"] == pytest.approx(0.0, abs=1e-12)
    assert res["counts"] == [300] * 8


def test_toy_two_modes_and_uneven_counts():
    x = np.concatenate([np.repeat(RING[[0]], 500, 0), np.repeat(RING[[3]], 500, 0)])
    res = toy_mode_stats(x, RING, 0.01)
    assert res["modes_captured"] == 2 and res["high_quality"] == 1.0
    assert res["reverse_kl"] == pytest.approx(math.log(4.0))           # log(K / m) for m even modes
    assert res["counts"] == [500, 0, 0, 500, 0, 0, 0, 0]
    x = np.concatenate([np.repeat(RING[[1]], 300, 0), np.repeat(RING[[2]], 100, 0)])
    res = toy_mode_stats(x, RING, 0.01)
    assert res["reverse_kl"] == pytest.approx(0.75 * math.log(0.75 * 8) + 0.25 * math.log(0.25 * 8))


def test_toy_far_samples_are_not_high_quality():
    far = np.full((100, 2), 5.0)
    res = toy_mode_stats(far, RING, 0.01)
    assert res["modes_captured"] == 0 and res["high_quality"] == 0.0 and math.isnan(res["reverse_kl"])
    x = np.concatenate([far, np.repeat(RING, 25, 0)[:100]])             # half good, half far
    res = toy_mode_stats(x, RING, 0.01)
    assert res["high_quality"] == 0.5 and res["modes_captured"] == 4


def test_toy_threshold_is_per_axis_normalised():
    modes = np.array([[0.0, 0.0], [10.0, 10.0]])
    stds = np.array([[0.1, 1.0], [0.1, 1.0]])                           # (K, D): anisotropic
    x = np.array([[0.29, 0.0], [0.31, 0.0], [0.0, 2.9], [0.0, 3.1], [0.2, 2.0]])
    res = toy_mode_stats(x, modes, stds)
    # normalised distances: 2.9, 3.1, 2.9, 3.1, sqrt(4 + 4) = 2.83
    assert res["counts"] == [3, 0]
    assert res["high_quality"] == pytest.approx(0.6)
    assert toy_mode_stats(x, modes, stds, n_sigma=4.0)["counts"] == [5, 0]
    assert toy_mode_stats(x, modes, np.array([0.1, 0.1]))["counts"] == [1, 0]    # (K,): isotropic per mode


@pytest.mark.parametrize("make, modes_expected", [(ring8, 8), (grid25, 25)])
def test_toy_real_data_scores_like_the_protocol(make, modes_expected):
    data = make(n_samples=2500, seed=1)
    res = toy_mode_stats(data.x, data.modes, data.mode_stds)
    assert res["modes_captured"] == modes_expected
    # 2-D Gaussian: P(|z| < 3) = 1 - exp(-9/2) = 0.9889
    assert res["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert res["reverse_kl"] < 0.02 if modes_expected == 8 else res["reverse_kl"] < 0.03


@pytest.mark.parametrize("call, match", [
    (lambda: toy_mode_stats(np.zeros((5, 3)), RING, 0.01), "dimensions differ"),
    (lambda: toy_mode_stats(np.full((5, 2), np.nan), RING, 0.01), "NaN"),
    (lambda: toy_mode_stats(np.zeros((0, 2)), RING, 0.01), "empty"),
    (lambda: toy_mode_stats(np.zeros((5, 2)), RING, np.ones(3)), "stds"),
    (lambda: toy_mode_stats(np.zeros((5, 2)), RING, -1.0), "positive"),
    (lambda: toy_mode_stats(np.zeros((5, 2)), RING, 0.01, n_sigma=0), "n_sigma"),
])
def test_toy_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------------------------------------
# stacked MNIST-style modes, conditional accuracy
# ------------------------------------------------------------------------------------------------

def test_stacked_modes_known_triples():
    labels = np.array([[0, 0, 0], [0, 0, 0], [1, 2, 3], [9, 9, 9]])
    res = stacked_modes(labels)
    assert res["modes"] == 3 and res["n_modes_total"] == 1000
    assert res["kl"] == pytest.approx(math.log(1000) - 1.5 * math.log(2))
    assert res["counts"][0] == 2 and res["counts"][123] == 1 and res["counts"][999] == 1
    every = np.array([[a, b, c] for a in range(10) for b in range(10) for c in range(10)])
    res = stacked_modes(torch.from_numpy(np.concatenate([every, every])))
    assert res["modes"] == 1000 and res["kl"] == pytest.approx(0.0, abs=1e-12)
    assert stacked_modes(np.array([[0, 1], [1, 0]]), n_classes=2)["modes"] == 2


def _labelled_images(n=500, seed=0):
    """Images whose top-left pixel is their label: classify reads it back."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = rng.integers(0, 256, (n, 1, 6, 6)).astype(np.uint8)
    x[:, 0, 0, 0] = y
    return x, y


def read_label(images):
    return np.asarray(images)[:, 0, 0, 0].astype(np.int64)


def test_stack_images_and_stacked_labels():
    x, y = _labelled_images()
    stacked, idx = stack_images(x, np.random.default_rng(0), n=2000, return_indices=True)
    assert stacked.shape == (2000, 3, 6, 6) and stacked.dtype == np.uint8 and idx.shape == (2000, 3)
    for c in range(3):
        np.testing.assert_array_equal(stacked[:, c], x[idx[:, c], 0])
    labels = stacked_labels(stacked, read_label, batch_size=300)
    np.testing.assert_array_equal(labels, y[idx])
    # channels are drawn independently: labels of different channels are uncorrelated
    assert abs(np.corrcoef(labels[:, 0], labels[:, 1])[0, 1]) < 0.1
    # scores (one-hot) work like labels, and torch input gives torch output
    onehot = lambda im: np.eye(10)[read_label(im)]                    # noqa: E731
    st = stack_images(torch.from_numpy(x), 5, n=100)
    assert isinstance(st, torch.Tensor) and st.shape == (100, 3, 6, 6)
    np.testing.assert_array_equal(stacked_labels(st, onehot), stacked_labels(st.numpy(), read_label))
    # same seed, same stack
    np.testing.assert_array_equal(stack_images(x, 3), stack_images(x, 3))


def test_stacked_real_data_covers_nearly_all_modes():
    x, _ = _labelled_images(n=2000, seed=1)
    stacked = stack_images(x, np.random.default_rng(2), n=26000)
    res = stacked_modes(stacked_labels(stacked, read_label))
    assert res["modes"] >= 995
    assert res["kl"] < 0.05


def test_conditional_accuracy():
    x, y = _labelled_images(n=200)
    assert conditional_accuracy(x, y, read_label) == 1.0
    wrong = y.copy()
    wrong[:50] = (wrong[:50] + 1) % 10
    assert conditional_accuracy(x, wrong, read_label) == pytest.approx(0.75)
    scores = lambda im: torch.nn.functional.one_hot(torch.as_tensor(read_label(im)), 10).float()  # noqa: E731
    assert conditional_accuracy(torch.from_numpy(x), torch.from_numpy(wrong), scores, batch_size=64) == \
        pytest.approx(0.75)


@pytest.mark.parametrize("call, match", [
    (lambda: stacked_modes(np.array([[0, 10, 1]])), "0..9"),
    (lambda: stacked_modes(np.array([[0, -1, 1]])), "0..9"),
    (lambda: stacked_modes(np.zeros((0, 3), dtype=int)), "empty"),
    (lambda: stacked_modes(np.array([0, 1, 2])), r"\(N, C\)"),
    (lambda: stacked_modes(np.array([[0.5, 1, 2]])), "whole numbers"),
    (lambda: stack_images(np.zeros((4, 3, 5, 5)), 0), "one-channel"),
    (lambda: stack_images(np.zeros((0, 1, 5, 5)), 0), "empty"),
    (lambda: conditional_accuracy(np.zeros((4, 1, 2, 2)), np.zeros(3, dtype=int), read_label), "3 labels for 4"),
    (lambda: conditional_accuracy(np.zeros((4, 1, 2, 2)), np.zeros(4, dtype=int), lambda im: np.zeros(2)),
     "2 labels for 4"),
    (lambda: conditional_accuracy(np.zeros((0, 1, 2, 2)), np.zeros(0, dtype=int), read_label), "empty"),
    (lambda: conditional_accuracy(np.zeros((4, 1, 2, 2)), np.zeros(4, dtype=int), "not callable"), "callable"),
])
def test_modes_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------------------------------------
# nearest neighbours and memorisation
# ------------------------------------------------------------------------------------------------

def brute_shift_distance(x, t, max_shift):
    """min over shifts of the full-frame-rescaled squared difference on the overlap, for (C, H, W)."""
    c, h, w = x.shape
    best = np.inf
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            ys, xs = slice(max(dy, 0), h + min(dy, 0)), slice(max(dx, 0), w + min(dx, 0))
            ys_src, xs_src = slice(max(-dy, 0), h + min(-dy, 0)), slice(max(-dx, 0), w + min(-dx, 0))
            diff = x[:, ys_src, xs_src] - t[:, ys, xs]
            best = min(best, (diff ** 2).sum() * (c * h * w) / diff.size)
    return math.sqrt(best)


def test_nearest_neighbours_l2_matches_brute_force():
    rng = np.random.default_rng(0)
    samples = rng.random((23, 1, 5, 5))
    train = rng.random((61, 1, 5, 5))
    d = np.sqrt(((samples.reshape(23, 1, -1) - train.reshape(1, 61, -1)) ** 2).sum(-1))
    for bs in (4, 2048):
        idx, dist = nearest_neighbours(samples, torch.from_numpy(train), k=3, batch_size=bs)
        np.testing.assert_array_equal(idx, np.argsort(d, axis=1)[:, :3])
        np.testing.assert_allclose(dist, np.sort(d, axis=1)[:, :3], rtol=1e-10)


def test_nearest_neighbours_shift_matches_brute_force():
    rng = np.random.default_rng(1)
    samples = rng.random((9, 2, 7, 6))
    train = rng.random((30, 2, 7, 6))
    idx, dist = nearest_neighbours(samples, train, "shift", max_shift=2, k=2, batch_size=40)
    ref = np.array([[brute_shift_distance(s, t, 2) for t in train] for s in samples])
    np.testing.assert_array_equal(idx, np.argsort(ref, axis=1)[:, :2])
    np.testing.assert_allclose(dist, np.sort(ref, axis=1)[:, :2], rtol=1e-9)
    l2_idx, l2_dist = nearest_neighbours(samples, train, "l2", k=1)
    assert (dist[:, 0] <= l2_dist[:, 0] + 1e-12).all()              # shift (0, 0) is included
    idx0, dist0 = nearest_neighbours(samples, train, "shift", max_shift=0)   # no shift: plain L2
    np.testing.assert_array_equal(idx0, l2_idx)
    np.testing.assert_allclose(dist0, l2_dist, rtol=1e-10)


def _blob_images(n, size=16, seed=0):
    """Images of a few random bright blobs on a black background, values in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.zeros((n, 1, size, size))
    for i in range(n):
        for _ in range(4):
            cy, cx, r = rng.uniform(4, size - 4), rng.uniform(4, size - 4), rng.uniform(1, 2.5)
            out[i, 0] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    return np.clip(out, 0, 1)


def test_shift_metric_finds_shifted_copies():
    train = _blob_images(300)
    src = np.arange(0, 300, 10)
    shifts = [(2, -1), (-3, 0), (1, 3), (-2, -2), (3, 3)]
    copies = np.concatenate([shift_images(train[i:i + 1], *shifts[j % 5]) for j, i in enumerate(src)])
    idx, dist, found = nearest_neighbours(copies, train, "shift", max_shift=3, return_shifts=True)
    np.testing.assert_array_equal(idx[:, 0], src)
    assert dist.max() < 1e-6                                           # exact on the overlap
    np.testing.assert_array_equal(found[:, 0], -np.array([shifts[j % 5] for j in range(len(src))]))
    l2_idx, _ = nearest_neighbours(copies, train, "l2")
    assert (l2_idx[:, 0] == src).mean() < 0.5                          # pixel L2 mostly misses them


def test_shift_images():
    x = np.arange(16, dtype=float).reshape(1, 1, 4, 4)
    y = shift_images(x, 1, -1, fill=-5)
    np.testing.assert_array_equal(y[0, 0], [[-5, -5, -5, -5], [1, 2, 3, -5], [5, 6, 7, -5], [9, 10, 11, -5]])
    assert (shift_images(x, 4, 0) == 0).all()


def test_nearest_neighbours_features():
    rng = np.random.default_rng(2)
    samples, train = rng.random((10, 1, 4, 4)), rng.random((40, 1, 4, 4))
    feats = lambda im: np.asarray(im).reshape(len(im), -1)[:, :3] * 2.0   # noqa: E731
    idx, dist = nearest_neighbours(samples, train, "features", features=feats, k=2)
    ref_idx, ref_dist = nearest_neighbours(feats(samples), feats(train), "l2", k=2)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist)


def test_memorization_report_flags_planted_copies():
    rng = np.random.default_rng(3)
    train = rng.random((500, 1, 8, 8))
    heldout = rng.random((300, 1, 8, 8))
    fresh = rng.random((100, 1, 8, 8))
    planted = train[[5, 50, 123, 400]] + rng.normal(scale=0.01, size=(4, 1, 8, 8))
    samples = np.concatenate([fresh, planted])
    res = memorization_report(samples, train, heldout)
    flagged = set(res["near_copies"].tolist())
    assert flagged >= {100, 101, 102, 103}                            # every planted copy
    assert len(flagged - {100, 101, 102, 103}) <= 4                   # ~1% of the 100 fresh ones
    np.testing.assert_array_equal(res["nn_indices"][100:], [5, 50, 123, 400])
    assert res["fraction"] == pytest.approx(len(flagged) / 104)
    strict = memorization_report(samples, train, threshold=0.3)
    np.testing.assert_array_equal(strict["near_copies"], [100, 101, 102, 103])
    assert res["expected_fraction"] == 0.01 and res["heldout_fraction"] == pytest.approx(0.01, abs=0.005)
    assert res["threshold"] > 0.5                                     # calibrated: far above the copies' 0.08
    # copies moved by two pixels: invisible to pixel L2, flagged by the shift-tolerant distance
    blobs = _blob_images(400, seed=4)
    train, heldout, fresh = blobs[:200], blobs[200:300], blobs[300:]
    moved = np.concatenate([shift_images(train[i:i + 1], 2, -2) for i in (3, 30, 77)])
    samples = np.concatenate([fresh, moved])
    l2 = memorization_report(samples, train, heldout, metric="l2", percentile=1)
    sh = memorization_report(samples, train, heldout, metric="shift", max_shift=3, percentile=1)
    assert not set(l2["near_copies"]) >= {100, 101, 102}
    assert set(sh["near_copies"]) >= {100, 101, 102}
    assert sh["fraction"] <= 0.06
    fixed = memorization_report(samples, train, threshold=1e-6, metric="shift")
    np.testing.assert_array_equal(fixed["near_copies"], [100, 101, 102])
    assert fixed["expected_fraction"] is None and fixed["heldout_fraction"] is None


def test_save_neighbours_figure(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(5)
    samples, train = rng.random((5, 1, 8, 8)), rng.random((20, 1, 8, 8))
    idx, dist = nearest_neighbours(samples, train, k=3)
    path = save_neighbours_figure(samples, train, idx, tmp_path / "nn.png", n=4, distances=dist, title="t")
    with Image.open(path) as im:
        assert im.size[0] > 100 and im.size[1] > 100
    rgb = rng.random((3, 3, 8, 8))
    save_neighbours_figure(rgb, rgb, np.array([1, 2, 0]), tmp_path / "rgb.png")
    assert (tmp_path / "rgb.png").stat().st_size > 0


@pytest.mark.parametrize("call, match", [
    (lambda: nearest_neighbours(np.zeros((3, 1, 4, 4)), np.zeros((5, 1, 4, 5))), "dimensions differ"),
    (lambda: nearest_neighbours(np.zeros((3, 1, 4, 4)), np.zeros((5, 1, 4, 5)), "shift"), "image shapes differ"),
    (lambda: nearest_neighbours(np.zeros((3, 16)), np.zeros((5, 16)), "shift"), "needs images"),
    (lambda: nearest_neighbours(np.full((3, 4), np.nan), np.zeros((5, 4))), "NaN"),
    (lambda: nearest_neighbours(np.zeros((0, 4)), np.zeros((5, 4))), "empty"),
    (lambda: nearest_neighbours(np.zeros((3, 4)), np.zeros((5, 4)), k=6), "only 5"),
    (lambda: nearest_neighbours(np.zeros((3, 4)), np.zeros((5, 4)), "l1"), "metric must be one of"),
    (lambda: nearest_neighbours(np.zeros((3, 4)), np.zeros((5, 4)), "features"), "features callable"),
    (lambda: nearest_neighbours(np.zeros((3, 1, 4, 4)), np.zeros((5, 1, 4, 4)), "shift", max_shift=4),
     "out of the frame"),
    (lambda: memorization_report(np.zeros((3, 4)), np.zeros((5, 4))), "held-out"),
    (lambda: memorization_report(np.zeros((3, 4)), np.zeros((5, 4)), np.zeros((2, 4)), percentile=120),
     "percentile"),
    (lambda: memorization_report(np.zeros((3, 4)), np.zeros((5, 4)), threshold=-1.0), "threshold"),
    (lambda: save_neighbours_figure(np.zeros((3, 4)), np.zeros((5, 4)), np.array([[7]]), "x.png"), "0..4"),
])
def test_memorization_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------------------------------------
# birthday paradox
# ------------------------------------------------------------------------------------------------

def test_support_formula_and_closest_pair():
    assert support_from_collision_prob(0.5, 20) == pytest.approx(380 / (2 * math.log(2)))
    assert support_from_collision_prob(0.0, 20) is None and support_from_collision_prob(1.0, 20) is None
    assert closest_pair_distance(np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])) == pytest.approx(1.0)


def _small_support(n_distinct, n, dim=64, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.random((n_distinct, dim))
    return base[rng.integers(0, n_distinct, n)] + rng.normal(scale=1e-3, size=(n, dim))


def test_birthday_small_support_collides_and_estimates_size():
    rng = np.random.default_rng(1)
    real = rng.random((4000, 64))
    gen = _small_support(50, 3000)
    res = birthday_test(gen, real, batch_sizes=(5, 10, 20, 50), trials=200, seed=0)
    p = dict(zip(res["batch_sizes"], res["collision_prob"]))
    assert p[20] > 0.9 and p[50] == 1.0
    # uniform over 50: P(collision) = 1 - prod(1 - i/50) = 0.19 at s=5, 0.62 at s=10
    assert p[5] == pytest.approx(0.19, abs=0.1) and p[10] == pytest.approx(0.62, abs=0.12)
    assert 25 <= res["support_estimate"] <= 100
    assert res["half_batch_size"] == 10 and res["support_half_rule"] == 100.0
    assert max(res["real_collision_prob"]) <= 0.15
    json.dumps(res)


def test_birthday_large_support_does_not_collide():
    rng = np.random.default_rng(2)
    real, gen = rng.random((4000, 64)), rng.random((4000, 64))
    res = birthday_test(gen, real, batch_sizes=(10, 50, 200), trials=100, seed=3)
    assert max(res["collision_prob"]) <= 0.15
    assert res["support_estimate"] > 5000
    assert res["half_batch_size"] is None and res["support_half_rule"] is None
    # the threshold is the alpha quantile of real closest pairs at the largest batch size
    assert res["real_collision_prob"][-1] == pytest.approx(0.05, abs=0.06)


def test_birthday_with_features_and_fixed_threshold():
    gen = _small_support(30, 1000, dim=16, seed=4)
    real = np.random.default_rng(5).random((1000, 16))
    res = birthday_test(gen, real, batch_sizes=(10,), trials=50, features=lambda a: np.asarray(a)[:, :8],
                        threshold=0.01)
    assert res["threshold"] == 0.01 and res["collision_prob"][0] > 0.5


@needs_fashion
def test_birthday_fashion_mnist(fashion_test):
    rng = np.random.default_rng(6)
    base = fashion_test[rng.choice(5000, 50, replace=False)]
    gen = base[rng.integers(0, 50, 2000)] + rng.normal(scale=0.01, size=(2000, 1, 28, 28))
    res = birthday_test(gen, fashion_test[:5000], batch_sizes=(5, 10, 20, 40), trials=100)
    assert 25 <= res["support_estimate"] <= 100
    real = birthday_test(fashion_test[5000:], fashion_test[:5000], batch_sizes=(10, 40, 100), trials=60)
    assert max(real["collision_prob"]) <= 0.15


@pytest.mark.parametrize("call, match", [
    (lambda: birthday_test(np.zeros((50, 4)), np.zeros((50, 5)), batch_sizes=(5,)), "dimensions differ"),
    (lambda: birthday_test(np.zeros((10, 4)), np.zeros((50, 4)), batch_sizes=(20,)), "fewer than the largest"),
    (lambda: birthday_test(np.full((50, 4), np.nan), np.zeros((50, 4)), batch_sizes=(5,)), "NaN"),
    (lambda: birthday_test(np.zeros((0, 4)), np.zeros((50, 4)), batch_sizes=(5,)), "empty"),
    (lambda: birthday_test(np.zeros((50, 4)), np.zeros((50, 4)), batch_sizes=()), "batch_sizes is empty"),
    (lambda: birthday_test(np.zeros((50, 4)), np.zeros((50, 4)), batch_sizes=(1,)), "batch size"),
    (lambda: birthday_test(np.zeros((50, 4)), np.zeros((50, 4)), batch_sizes=(5,), alpha=1.5), "alpha"),
    (lambda: closest_pair_distance(np.zeros((1, 3))), "at least 2"),
])
def test_birthday_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
