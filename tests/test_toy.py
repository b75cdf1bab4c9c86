import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal, norm

from gankit import ConfigError
from gankit.data.toy import gaussian1d, grid25, mixture, ring8, swissroll


def test_ring8_has_eight_distinct_modes_on_the_unit_circle():
    ds = ring8(n_samples=1000)
    assert ds.modes.shape == (8, 2)
    assert torch.allclose(ds.modes.norm(dim=1), torch.ones(8), atol=1e-6)
    angles = torch.atan2(ds.modes[:, 1], ds.modes[:, 0]) % (2 * math.pi)
    expected = 2 * math.pi * torch.arange(8) / 8
    assert torch.allclose(angles.sort().values, expected.float(), atol=1e-6)
    assert torch.cdist(ds.modes, ds.modes).add(torch.eye(8)).min() > 0.7


def test_grid25_means_and_spread():
    ds = grid25(n_samples=50_000)
    values = sorted({round(v, 6) for v in ds.modes.flatten().tolist()})
    assert values == [-4.0, -2.0, 0.0, 2.0, 4.0] and len(ds.modes) == 25
    nearest = torch.cdist(ds.x, ds.modes).argmin(1)
    resid = ds.x - ds.modes[nearest]
    assert resid.std().item() == pytest.approx(0.05, rel=0.03)
    counts = torch.bincount(nearest, minlength=25).float()
    assert counts.min() > 0.8 * counts.mean()


def test_log_prob_matches_scipy():
    ds = mixture(means=[[0.0, 0.0], [1.0, 2.0]], stds=[0.5, 0.2], weights=[0.3, 0.7], n_samples=100)
    pts = np.array([[0.1, -0.2], [1.0, 1.9], [3.0, 3.0]])
    expected = np.log(0.3 * multivariate_normal([0, 0], 0.25 * np.eye(2)).pdf(pts)
                      + 0.7 * multivariate_normal([1, 2], 0.04 * np.eye(2)).pdf(pts))
    np.testing.assert_allclose(ds.log_prob(torch.tensor(pts)).numpy(), expected, rtol=1e-10)
    g = gaussian1d(mean=4.0, std=0.5, n_samples=10)
    np.testing.assert_allclose(g.log_prob(torch.tensor([[3.0], [4.2]], dtype=torch.float64)).numpy(),
                               norm(4.0, 0.5).logpdf([3.0, 4.2]), rtol=1e-10)


def test_samples_follow_the_density():
    g = gaussian1d(mean=4.0, std=0.5, n_samples=200_000)
    assert g.x.mean().item() == pytest.approx(4.0, abs=0.01)
    assert g.x.std().item() == pytest.approx(0.5, rel=0.01)


def test_splits_and_seeds_are_reproducible_and_distinct():
    a, b = ring8(n_samples=100, seed=1), ring8(n_samples=100, seed=1)
    assert torch.equal(a.x, b.x)
    assert not torch.equal(a.x, ring8(n_samples=100, seed=1, split="test").x)
    assert not torch.equal(a.x, ring8(n_samples=100, seed=2).x)


def test_swissroll_shape_and_scale():
    ds = swissroll(n_samples=5000)
    assert ds.x.shape == (5000, 2) and ds.modes is None and ds.log_prob is None
    assert 1.0 < ds.x.abs().max().item() < 3.0


def test_mixture_bad_input():
    with pytest.raises(ConfigError, match="equally long"):
        mixture(means=[[0.0], [1.0, 2.0]])
    with pytest.raises(ConfigError, match="1 or 2 values"):
        mixture(means=[[0.0], [1.0]], stds=[0.1, 0.2, 0.3])
    with pytest.raises(ConfigError, match="positive"):
        mixture(means=[[0.0]], stds=[-1.0])
    with pytest.raises(ConfigError, match="n_samples"):
        ring8(n_samples=0)
