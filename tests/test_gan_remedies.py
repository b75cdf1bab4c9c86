"""Remedies for mode collapse from the lecture: minibatch discrimination, packing, feature matching."""
import pytest
import torch

import gankit
from gankit import ConfigError
from gankit.nets.blocks import MinibatchDiscrimination
from gankit.nets.dcgan import dcgan_discriminator
from gankit.nets.mlp import mlp_discriminator

from conftest import toy_config
from test_gan import modes_covered
from test_resume import _assert_same_state, _interrupt_at


def test_minibatch_discrimination_sees_a_collapsed_batch():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(in_features=4, n_kernels=3, kernel_dim=2)
    diverse = torch.randn(16, 4) * 10
    collapsed = torch.zeros(16, 4) + torch.randn(1, 4)
    out_d, out_c = layer(diverse), layer(collapsed)
    assert out_d.shape == (16, 7)
    assert torch.equal(out_d[:, :4], diverse)               # features pass through unchanged
    # identical samples: each is at L1 distance 0 from the 15 others -> o_b = 15
    torch.testing.assert_close(out_c[:, 4:], torch.full((16, 3), 15.0))
    assert out_d[:, 4:].mean() < 0.5 * 15
    # a brute-force loop agrees
    m = (diverse @ layer.T).view(16, 3, 2)
    brute = torch.stack([torch.stack([sum(torch.exp(-(m[i, b] - m[j, b]).abs().sum()) for j in range(16) if j != i)
                                      for b in range(3)]) for i in range(16)])
    torch.testing.assert_close(out_d[:, 4:], brute)


def test_discriminators_take_minibatch_kernels():
    d = dcgan_discriminator((1, 28, 28), width=4, minibatch_kernels=5)
    x = torch.randn(6, 1, 28, 28)
    assert d(x).shape == (6,) and d.features(x).shape == (6, 8 * 7 * 7)
    assert mlp_discriminator((2,), hidden=8, minibatch_kernels=3)(torch.randn(5, 2)).shape == (5,)


def test_packing_builds_a_discriminator_of_packed_samples(tmp_path):
    run = gankit.train(toy_config(tmp_path / "pac", steps=5, method__pack=4))
    assert run.discriminator.body[0].in_features == 2 * 4
    with pytest.raises(ConfigError, match=r"batch_size \(64\) must be a multiple of method.pack \(3\)"):
        gankit.train(toy_config(tmp_path / "bad", steps=5, method__pack=3))


# the modes each remedy covers after these 1,000 steps (tests/test_gan.py::modes_covered) on
# seeds 3 (the test's), 0 and 1: PacGAN2 8, 8, 8 (at least 46 samples on each mode); feature
# matching 8, 8, 8 (at least 6); minibatch discrimination 6, 8, 8 (its seed-3 run leaves modes
# with 4 and 1 samples). The bars keep a margin of one mode below the fewest measured; a
# generator on one or two modes fails them all.
@pytest.mark.parametrize("method,disc,min_modes", [
    ({"pack": 2}, {}, 7),
    ({"generator_loss": "feature_matching"}, {}, 7),
    ({}, {"minibatch_kernels": 8}, 5),
])
def test_remedies_learn_the_ring(tmp_path, method, disc, min_modes):
    cfg = toy_config(tmp_path / "run", steps=1000, train__batch_size=256, train__checkpoint_every=0,
                     generator__hidden=128, discriminator__hidden=128, optim__lr_g=1e-3, optim__lr_d=1e-3,
                     optim__beta1=0.0)
    cfg["data"] = {"name": "ring8", "n_samples": 20000}
    cfg["method"] = {"name": "gan", **method}
    cfg["discriminator"].update(disc)
    untrained = gankit.train({**cfg, "train": {**cfg["train"], "steps": 1}, "out": str(tmp_path / "start")})
    run = gankit.train(cfg)

    def distance(r):
        x = r.sample(2000, seed=0).double()
        return torch.cdist(x, r.data.modes.double()).min(1).values.mean().item()

    assert distance(run) < 0.5 * distance(untrained)
    covered, counts = modes_covered(run)
    assert covered >= min_modes, counts


def test_resume_is_exact_with_packing_and_minibatch_discrimination(tmp_path, monkeypatch):
    def cfg(out):
        c = toy_config(out, steps=30, method__pack=2, method__generator_loss="feature_matching")
        c["discriminator"]["minibatch_kernels"] = 4
        return c

    reference = gankit.train(cfg(tmp_path / "a"))
    _interrupt_at(monkeypatch, 11)
    assert gankit.train(cfg(tmp_path / "b")).step == 11
    monkeypatch.undo()
    _assert_same_state(reference, gankit.resume(tmp_path / "b"))
