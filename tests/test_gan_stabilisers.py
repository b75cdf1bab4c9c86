"""The gan method with the lecture's stabilisers: WGAN clipping, gradient penalties, spectral norm."""
import pytest
import torch

import gankit
from gankit import ConfigError

from conftest import toy_config
from test_resume import _assert_same_state, _interrupt_at


def _gaussian1d(tmp_path, name, method, optim, steps=600):
    return gankit.train({
        "method": {"name": "gan", **method}, "data": {"name": "gaussian1d", "n_samples": 20000},
        "generator": {"name": "mlp", "hidden": 64, "layers": 2},
        "discriminator": {"name": "mlp", "hidden": 64, "layers": 2},
        "train": {"steps": steps, "batch_size": 256, "log_every": 50, "sample_every": 0, "checkpoint_every": 0,
                  "progress": "none"},
        "optim": optim, "out": str(tmp_path / name)})


@pytest.mark.parametrize("name,method,optim", [
    ("wgan_clip", {"objective": "wasserstein", "clip": 0.01, "d_steps": 5},
     {"optimizer": "rmsprop", "lr_g": 5e-4, "lr_d": 5e-4}),
    ("sngan_hinge", {"objective": "hinge", "spectral_norm": True}, {"lr_g": 1e-3, "lr_d": 1e-3, "beta1": 0.0}),
    ("r1", {"objective": "nonsaturating", "penalty": "r1", "penalty_weight": 1.0},
     {"lr_g": 1e-3, "lr_d": 1e-3, "beta1": 0.0}),
])
def test_stabilised_gans_learn_a_gaussian(tmp_path, name, method, optim):
    run = _gaussian1d(tmp_path, name, method, optim)
    x = run.sample(2000, seed=0)
    assert abs(x.mean().item() - 4.0) < 0.5, x.mean().item()
    if "clip" in method:
        assert max(p.abs().max().item() for p in run.discriminator.parameters()) <= 0.01 + 1e-7
    if method.get("spectral_norm"):
        linear = run.discriminator.out
        assert hasattr(linear, "parametrizations")
        assert torch.linalg.matrix_norm(linear.weight, ord=2).item() == pytest.approx(1.0, abs=0.05)


def test_gradient_penalty_makes_the_critic_1_lipschitz_between_the_distributions(tmp_path):
    cfg = toy_config(tmp_path / "gp", steps=300, train__batch_size=256, generator__hidden=64,
                     discriminator__hidden=64, method__objective="wasserstein", method__penalty="gradient",
                     method__d_steps=5, optim__lr_g=1e-4, optim__lr_d=1e-4, optim__beta1=0.0, optim__beta2=0.9)
    run = gankit.train(cfg)
    real = run.data.x[:1000]
    fake = run.sample(1000, seed=1)
    eps = torch.rand(1000, 1)
    x = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(run.discriminator(x).sum(), x)
    norms = grad.norm(dim=1)
    assert norms.mean().item() == pytest.approx(1.0, abs=0.2), norms.mean().item()
    # the critic's scores are raw (no sigmoid) and its loss estimates -W(P, Q) <= 0
    assert run.method.objective.output == "score"


def test_resume_is_exact_with_gradient_penalty_and_spectral_norm(tmp_path, monkeypatch):
    def cfg(out):
        return toy_config(out, steps=40, method__objective="hinge", method__penalty="gradient",
                          method__spectral_norm=True, method__d_steps=2)

    reference = gankit.train(cfg(tmp_path / "a"))
    _interrupt_at(monkeypatch, 17)
    assert gankit.train(cfg(tmp_path / "b")).step == 17
    monkeypatch.undo()
    _assert_same_state(reference, gankit.resume(tmp_path / "b"))


def test_bad_stabiliser_settings(tmp_path):
    with pytest.raises(ConfigError, match=r"method\.penalty: 'l2' is not allowed; choose one of 'none', 'gradient', 'r1'"):
        gankit.train(toy_config(tmp_path / "x", method__penalty="l2"))
    with pytest.raises(ConfigError, match="must not be negative"):
        gankit.train(toy_config(tmp_path / "y", method__clip=-1.0))
    with pytest.raises(ConfigError, match=r"unknown objective 'wasserstien'.*did you mean 'wasserstein'"):
        gankit.train(toy_config(tmp_path / "z", method__objective="wasserstien"))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
