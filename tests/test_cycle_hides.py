"""cycle-hides: the silhouettes and perturbations against closed forms, the lookup decoder,
a tiny CycleGAN whose silhouette-looking translation carries the brightness that no
silhouette holds (it reconstructs better than any decoder of the true silhouette, and a
blur or two-tone requantisation of the translation loses that), and clear errors."""
import json
import math

import numpy as np
import pytest
import torch

from gankit.errors import ConfigError
from gankit.experiments import EXPERIMENTS, run_experiment
from gankit.experiments.cycle_hides import (PERTURBATIONS, TONES, add_noise, binarise, gaussian_blur, hide,
                                            lookup_table, main, perturbations, report, requantise, save_figure,
                                            silhouettes)


# --------------------------------------------------------------------------- closed forms

def test_requantisation_lands_on_the_grid_within_half_a_step():
    x = torch.rand(4, 1, 9, 9, generator=torch.Generator().manual_seed(0))
    for levels in (256, 32, 2):
        q = requantise(x, levels)
        assert torch.equal(requantise(q, levels), q)
        assert float((q - x).abs().max()) <= 0.5 / (levels - 1) + 1e-6
        k = q * (levels - 1)
        assert torch.allclose(k, k.round(), atol=1e-4)
    grid = torch.arange(256.0).view(1, 1, 16, 16) / 255
    assert torch.equal(requantise(grid, 256), grid)                    # an 8-bit picture stays as it is
    assert torch.equal(requantise(torch.tensor([-0.2, 1.3]), 256), torch.tensor([0.0, 1.0]))
    lo, hi = TONES[0] / 255, TONES[1] / 255
    b = binarise(x)
    assert torch.equal(b == hi, x >= (lo + hi) / 2) and torch.equal(b.unique(), torch.tensor([lo, hi]))
    assert torch.equal(requantise(b, 256), b)                           # the tones are 8-bit levels


def test_the_blur_keeps_a_constant_and_spreads_an_impulse_by_the_gaussian():
    const = torch.full((2, 1, 7, 9), 0.3)
    torch.testing.assert_close(gaussian_blur(const, 1.0), const)
    for sigma in (0.5, 1.0):
        impulse = torch.zeros(1, 1, 15, 15)
        impulse[0, 0, 7, 7] = 1.0
        out = gaussian_blur(impulse, sigma)
        w = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-math.ceil(3 * sigma), math.ceil(3 * sigma) + 1)]
        k0, k1 = 1 / sum(w), math.exp(-0.5 / sigma ** 2) / sum(w)
        assert out.sum().item() == pytest.approx(1.0, abs=1e-6)
        assert out[0, 0, 7, 7].item() == pytest.approx(k0 * k0, rel=1e-5)
        assert out[0, 0, 7, 8].item() == pytest.approx(k0 * k1, rel=1e-5)
        assert out[0, 0, 8, 8].item() == pytest.approx(k1 * k1, rel=1e-5)
        torch.testing.assert_close(out, out.transpose(-1, -2))


def test_the_noise_is_seeded_of_its_size_and_clipped():
    grey = torch.full((8, 1, 32, 32), 0.5)
    n = add_noise(grey, 2 / 255, seed=3)
    assert torch.equal(n, add_noise(grey, 2 / 255, seed=3)) and not torch.equal(n, add_noise(grey, 2 / 255, seed=4))
    assert float((n - grey).std()) == pytest.approx(2 / 255, rel=0.05)
    assert float((n - grey).mean()) == pytest.approx(0.0, abs=1e-4)
    edge = add_noise(torch.ones(2, 1, 8, 8), 0.1)
    assert float(edge.max()) == 1.0 and float(edge.min()) >= 0.0
    x = torch.rand(3, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    fns = perturbations()
    assert tuple(fns) == PERTURBATIONS
    for name, fn in fns.items():
        y = fn(x)
        assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1, name


def test_silhouettes_close_gaps_and_fill_holes():
    ring = torch.zeros(1, 1, 9, 9, dtype=torch.uint8)
    ring[0, 0, 2:7, 2:7] = 200
    ring[0, 0, 3:6, 3:6] = 0                                            # a dark hole inside
    expected = torch.full_like(ring, TONES[0])
    expected[0, 0, 2:7, 2:7] = TONES[1]
    assert torch.equal(silhouettes(ring), expected)
    cut = ring.clone()
    cut[0, 0, 4, 2] = 0                                                 # a gap one pixel wide: closed
    assert torch.equal(silhouettes(cut), expected)
    notch = ring.clone()
    notch[0, 0, 4, 0:4] = 0                                             # ... but a channel to the border stays
    notch[0, 0, 3:6, 2:4] = 0
    assert silhouettes(notch)[0, 0, 4, 3] == TONES[0]
    assert torch.equal(silhouettes(torch.zeros(2, 1, 5, 5, dtype=torch.uint8)), torch.full((2, 1, 5, 5), TONES[0],
                                                                                            dtype=torch.uint8))


def test_the_lookup_is_the_per_pixel_median_given_the_bit():
    a = torch.tensor([0.2, 0.4, 0.9, 0.1, 0.0]).view(5, 1, 1, 1)
    on = torch.tensor([True, True, True, False, False]).view(5, 1, 1, 1)
    table = lookup_table(a, on)
    assert table[1].item() == pytest.approx(0.4) and table[0].item() == pytest.approx(0.0)
    never = lookup_table(a, torch.zeros_like(on))                       # bit on never seen: the overall median
    assert never[1].item() == pytest.approx(float(a.median()))


# --------------------------------------------------------------------------- the experiment

BOXES = ((2, 10, 3, 12), (4, 13, 5, 10), (3, 9, 2, 14))      # top, bottom, left, right


def garments(n, size=16, seed=0):
    """Tiny "garments": one of three boxes filled with one random grey (0.3 .. 1) on black.
    A silhouette tells which box, never how bright it is."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 1, size, size), np.uint8)
    for img in x:
        top, bottom, left, right = BOXES[rng.integers(len(BOXES))]
        img[0, top:bottom, left:right] = int(255 * rng.uniform(0.3, 1.0))
    return torch.from_numpy(x)


TINY = dict(steps=300, width=8, d_width=8, blocks=1, batch_size=8, lr=2e-3, supervised_steps=100, threads=1)


def test_a_tiny_cyclegan_hides_the_brightness_that_no_silhouette_holds(tmp_path):
    res, pictures = hide(garments(512), garments(128, seed=1), tmp_path, seed=0, **TINY)
    cycle, honest = res["cycle_error"], res["best_honest"]
    assert set(res["honest"]) == {"G_BA(silhouette)", "lookup", "supervised"}
    # the translation is a silhouette: to the nearest tone, the true one on (nearly) every pixel
    assert res["translation"]["agreement_with_true_silhouette"] > 0.97, res["translation"]
    # and yet the garment comes back better than from anything that sees only the silhouette
    assert cycle < 0.75 * honest, (cycle, res["honest"])
    p = {k: v["reconstruction_error"] for k, v in res["perturbed"].items()}
    # set to its two tones, or blurred by a pixel, the translation loses what it carried
    assert p["two tones"] > cycle + 0.6 * (honest - cycle), (p, cycle, honest)
    assert p["blur 1 px"] > cycle + 0.6 * (honest - cycle), (p, cycle, honest)
    assert p["blur 0.5 px"] > cycle, (p, cycle)
    for name in PERTURBATIONS:
        assert p[name] >= cycle - 2e-3, (name, p[name], cycle)          # no perturbation helps
    assert list(pictures)[:5] == ["garment", "true silhouette", "translation", "residual", "reconstruction"]
    assert all(v.shape == (8, 1, 16, 16) for v in pictures.values())
    json.dumps(res)
    assert save_figure(res, pictures, tmp_path / "cycle_hides.png", "tiny").stat().st_size > 1000
    assert report(res)[0].startswith("cycle error")


def test_registered_and_clear_errors(tmp_path):
    assert EXPERIMENTS["cycle-hides"][0] == "cycle_hides"
    with pytest.raises(ConfigError, match="unknown experiment 'cycle-hide'.*cycle-hides"):
        run_experiment("cycle-hide", [])
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--steps", "many"])
    x = garments(64)
    with pytest.raises(ConfigError, match="steps must be an integer of at least 1"):
        hide(x, x[:8], tmp_path, steps=0)
    with pytest.raises(ConfigError, match="train_images must be uint8 grey images"):
        hide(x.float(), x[:8], tmp_path)
    with pytest.raises(ConfigError, match="fewer than the 8"):
        hide(x, x[:4], tmp_path, steps=1)
    with pytest.raises(ConfigError, match="batch_size=64"):
        hide(x, x[:8], tmp_path, batch_size=64)
    with pytest.raises(ConfigError, match="sigma must be positive"):
        gaussian_blur(torch.zeros(1, 1, 4, 4), 0.0)
    with pytest.raises(ConfigError, match="must not be negative"):
        add_noise(torch.zeros(1, 1, 4, 4), -0.1)
    with pytest.raises(ConfigError, match="integer number of levels of at least 2"):
        requantise(torch.zeros(1, 1, 4, 4), 1)
    with pytest.raises(ConfigError, match="uint8 grey images"):
        silhouettes(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
