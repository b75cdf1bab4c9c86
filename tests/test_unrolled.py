"""Unrolled GAN: the generator is trained against the discriminator k updates ahead."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gankit
from gankit import ConfigError
from gankit.methods.gan import surrogate_step
from gankit.objectives.adversarial import Objective

from conftest import ring_before_after, toy_config
from test_resume import _assert_same_state, _interrupt_at

f64 = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)   # small networks: one thread is faster, and fair to a shared machine
    yield


class LinearD(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def forward(self, x):
        return self.lin(x).squeeze(1)


# the non-saturating objective without the float32 casts of gankit.objectives, for float64 checks
F64_OBJECTIVE = Objective(lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(),
                          lambda f, r=None: F.softplus(-f).mean())


def _tiny(tmp_path, optimizer="adam"):
    """A trained-for-one-step gan method whose D is linear, everything in float64, with a
    discriminator optimiser that has taken two steps (so its running averages are not empty)."""
    method = gankit.train(toy_config(tmp_path / "m", steps=1, method__unroll=1)).method
    torch.manual_seed(0)
    D = LinearD().double()
    method.modules["discriminator"] = D
    if optimizer == "adam":
        method.opt_d = torch.optim.Adam(D.parameters(), lr=0.05, betas=(0.5, 0.9), weight_decay=0.01)
    else:
        method.opt_d = torch.optim.RMSprop(D.parameters(), lr=0.02, weight_decay=0.01)
    method.objective = F64_OBJECTIVE
    G = method.generator.double()
    real, z = torch.randn(16, 2, dtype=f64) + 1.0, torch.randn(16, G.z_dim, dtype=f64)
    for _ in range(2):
        method.opt_d.zero_grad()
        method.objective.d_loss(D(real), D(G(z).detach())).backward()
        method.opt_d.step()
    return method, real, z


@pytest.mark.parametrize("kind", ["adam", "rmsprop"])
def test_surrogate_step_matches_torch_optimizers(kind):
    target, w = torch.randn(5, dtype=f64), torch.rand(5, dtype=f64) + 0.5

    def loss(p):
        return (w * (p - target) ** 2).sum() + p.prod()

    start = torch.randn(5, dtype=f64)
    p = nn.Parameter(start.clone())
    opt = (torch.optim.Adam([p], lr=0.1, betas=(0.6, 0.95), weight_decay=0.03) if kind == "adam"
           else torch.optim.RMSprop([p], lr=0.05, alpha=0.9, weight_decay=0.03))
    theta, state = start.clone().requires_grad_(True), {}
    for t in range(1, 5):
        opt.zero_grad()
        loss(p).backward()
        opt.step()
        (g,) = torch.autograd.grad(loss(theta), theta, create_graph=True)
        theta, state = surrogate_step(opt, opt.param_groups[0], theta, g, state, t)
        torch.testing.assert_close(theta.detach(), p.detach(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_unrolled_discriminator_follows_its_optimizer_and_leaves_it_alone(tmp_path, optimizer):
    method, real, z = _tiny(tmp_path, optimizer)
    D, G = method.discriminator, method.generator
    d_before = copy.deepcopy(D.state_dict())
    opt_before = copy.deepcopy(method.opt_d.state_dict())
    fake = G(z).detach()
    D_3, _ = method.unrolled_discriminator([real], fake, steps=3)
    # the same three updates taken by the real optimiser, on copies
    D_ref = copy.deepcopy(D)
    opt_ref = type(method.opt_d)(D_ref.parameters())
    opt_ref.load_state_dict(copy.deepcopy(method.opt_d.state_dict()))
    for _ in range(3):
        opt_ref.zero_grad()
        method.objective.d_loss(D_ref(real), D_ref(fake)).backward()
        opt_ref.step()
    probe = torch.randn(8, 2, dtype=f64)
    torch.testing.assert_close(D_3(probe), D_ref(probe), rtol=1e-10, atol=1e-10)
    # a loss on the unrolled D reaches neither the discriminator nor its optimiser
    method.opt_d.zero_grad(set_to_none=True)
    method.objective.g_loss(D_3(G(z))).backward()
    for key, value in D.state_dict().items():
        assert torch.equal(value, d_before[key])
    assert all(p.grad is None for p in D.parameters())
    after = method.opt_d.state_dict()["state"]
    for idx, st in opt_before["state"].items():
        for key, value in st.items():
            assert torch.equal(after[idx][key], value)


def test_unrolled_generator_gradient_matches_finite_differences(tmp_path):
    method, real, z = _tiny(tmp_path)
    G, D = method.generator, method.discriminator
    params = [G.out.bias, G.out.weight]

    def g_loss(steps):
        generated = G(z)
        D_k, _ = method.unrolled_discriminator([real], generated, steps=steps)
        return method.objective.g_loss(D_k(generated))

    grads = torch.autograd.grad(g_loss(3), params)
    h = 1e-6
    checked = 0
    for p, grad in zip(params, grads):
        for idx in [(0,), (1,)] if p.dim() == 1 else [(0, 0), (1, 3), (0, 7)]:
            values = []
            for shift in (h, -2 * h, h):          # the unrolling itself needs autograd: shift, then evaluate
                with torch.no_grad():
                    p[idx] += shift
                values.append(g_loss(3).item())
            up, down = values[:2]
            assert grad[idx].item() == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-9)
            checked += 1
    assert checked == 5
    # zero steps is the plain generator loss against the current D, exactly
    plain = torch.autograd.grad(method.objective.g_loss(D(G(z))), params)
    for a, b in zip(torch.autograd.grad(g_loss(0), params), plain):
        assert torch.equal(a, b)
    # and unrolling changes the generator's gradient
    for a, b in zip(grads, plain):
        assert (a - b).abs().max() > 1e-3 * b.abs().max()


def test_unroll_zero_is_the_plain_gan(tmp_path):
    plain = gankit.train(toy_config(tmp_path / "plain", steps=20, method__d_steps=2))
    zero = gankit.train(toy_config(tmp_path / "zero", steps=20, method__d_steps=2, method__unroll=0))
    _assert_same_state(plain, zero)
    assert plain.config.method["unroll"] == 0


@pytest.mark.parametrize("method,optim", [
    ({}, {}),
    ({"spectral_norm": True, "penalty": "gradient", "objective": "hinge"}, {}),
    ({"objective": "wasserstein", "clip": 0.05}, {"optimizer": "rmsprop"}),
    ({"pack": 2, "generator_loss": "feature_matching", "d_steps": 2}, {"weight_decay": 1e-3}),
])
def test_unrolled_generator_step_leaves_the_discriminator_alone(tmp_path, method, optim):
    cfg = toy_config(tmp_path / "r", steps=3, **{f"method__{k}": v for k, v in {**method, "unroll": 2}.items()},
                     **{f"optim__{k}": v for k, v in optim.items()})
    m = gankit.train(cfg).method
    seen = {}
    unroll = m.unrolled_discriminator

    def spy(*args, **kwargs):                 # the discriminator as the generator step finds it
        seen["d"] = copy.deepcopy(m.discriminator.state_dict())
        seen["opt"] = copy.deepcopy(m.opt_d.state_dict()["state"])
        return unroll(*args, **kwargs)

    m.unrolled_discriminator = spy
    batches = list(torch.randn(m.real_batches_per_step, 64, 2))
    g_before = [p.detach().clone() for p in m.generator.parameters()]
    out = m.train_step(batches, 3)
    assert torch.isfinite(out["g_loss"]) and seen
    assert any(not torch.equal(a, p) for a, p in zip(g_before, m.generator.parameters()))
    # parameters, buffers (spectral norm's power-iteration vectors too) and optimiser state
    for key, value in m.discriminator.state_dict().items():
        assert torch.equal(value, seen["d"][key]), key
    for idx, st in m.opt_d.state_dict()["state"].items():
        for key, value in st.items():
            assert torch.equal(value, seen["opt"][idx][key]), (idx, key)


def test_unrolling_through_batch_norm_keeps_the_running_statistics(tmp_path, image_npz):
    cfg = {"data": {"name": "array", "path": str(image_npz)},
           "generator": {"name": "dcgan", "width": 4, "z_dim": 8}, "discriminator": {"name": "dcgan", "width": 4},
           "method": {"name": "gan", "unroll": 2},
           "train": {"steps": 2, "batch_size": 16, "log_every": 1, "sample_every": 0, "checkpoint_every": 0,
                     "progress": "none"},
           "out": str(tmp_path / "img")}
    run = gankit.train(cfg)          # images: bf16 autocast where the CPU has it
    m = run.method
    assert any(isinstance(mod, nn.BatchNorm2d) for mod in m.discriminator.modules())
    before = copy.deepcopy(m.discriminator.state_dict())
    real = run.runtime.tensor(run.data.to_model(run.data.x[:16]))
    generated = m.generator(m.noise(16))
    D_k, _ = m.unrolled_discriminator([real], generated)
    loss = m.objective.g_loss(D_k(generated))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.generator.parameters())
    for key, value in m.discriminator.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_resume_is_exact_with_unrolling(tmp_path, monkeypatch):
    def cfg(out):
        return toy_config(out, steps=30, method__unroll=2, method__d_steps=2)

    reference = gankit.train(cfg(tmp_path / "a"))
    _interrupt_at(monkeypatch, 11)
    assert gankit.train(cfg(tmp_path / "b")).step == 11
    monkeypatch.undo()
    _assert_same_state(reference, gankit.resume(tmp_path / "b"))


def test_negative_unroll_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="method.unroll must not be negative, got -1"):
        gankit.train(toy_config(tmp_path / "x", method__unroll=-1))
    assert not (tmp_path / "x").exists()


def test_unrolled_gan_learns_the_ring(tmp_path):
    cfg = toy_config(tmp_path / "run", steps=300, train__batch_size=256, train__checkpoint_every=0,
                     generator__hidden=64, discriminator__hidden=64, optim__lr_g=1e-3, optim__lr_d=1e-3,
                     optim__beta1=0.0, method__unroll=3)
    cfg["data"] = {"name": "ring8", "n_samples": 20000}
    (d0, s0), (d1, s1), run = ring_before_after(cfg, tmp_path)
    assert d1 < 0.5 * d0, (d0, d1)
    assert s0["modes_captured"] == 0 and s1["modes_captured"] >= 3, s1
