"""Unrolled GAN: the generator is trained against the discriminator k updates ahead."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gankit
from gankit import ConfigError
from gankit.methods.base import make_optimizer
from gankit.methods.gan import surrogate_step
from gankit.objectives.adversarial import Objective

from conftest import ring_before_after, toy_config
from test_gan import modes_covered
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
    D_3, _ = method.unrolled_discriminator(real, fake, steps=3)
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
        D_k, _ = method.unrolled_discriminator(real, generated, steps=steps)
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


class Line(nn.Module):
    """D(x) = w x + b on 1-D data."""

    def __init__(self, w, b):
        super().__init__()
        self.w, self.b = nn.Parameter(torch.tensor(w, dtype=f64)), nn.Parameter(torch.tensor(b, dtype=f64))

    def forward(self, x):
        return self.w * x[:, 0] + self.b


class Affine(nn.Module):
    """G(z) = a z + c from one-dimensional noise."""
    z_dim = 1

    def __init__(self, a, c):
        super().__init__()
        self.a, self.c = nn.Parameter(torch.tensor(a, dtype=f64)), nn.Parameter(torch.tensor(c, dtype=f64))

    def forward(self, z):
        return self.a * z.double() + self.c


def _sigmoid(u):
    return 1.0 / (1.0 + math.exp(-u))


def _softplus(u):
    return max(u, 0.0) + math.log1p(math.exp(-abs(u)))


ADAM = {"lr": 0.1, "betas": (0.5, 0.9), "eps": 1e-8, "weight_decay": 0.01}


def _line_step_by_hand(state, reals, fakes):
    """One Adam step (ADAM, weight decay added to the gradient) of D(x) = w x + b on the
    non-saturating loss mean softplus(-D(r)) + mean softplus(D(f)), in plain Python floats;
    state = (w, b, m_w, v_w, m_b, v_b, t)."""
    w, b, m_w, v_w, m_b, v_b, t = state
    # d softplus(-u)/du = -sigmoid(-u), d softplus(u)/du = sigmoid(u)
    d_r = [-_sigmoid(-(w * r + b)) / len(reals) for r in reals]
    d_f = [_sigmoid(w * f + b) / len(fakes) for f in fakes]
    g_w = sum(d * r for d, r in zip(d_r, reals)) + sum(d * f for d, f in zip(d_f, fakes))
    g_b = sum(d_r) + sum(d_f)
    (beta1, beta2), t = ADAM["betas"], t + 1

    def adam(theta, g, m, v):
        g = g + ADAM["weight_decay"] * theta
        m, v = beta1 * m + (1 - beta1) * g, beta2 * v + (1 - beta2) * g * g
        step = ADAM["lr"] * (m / (1 - beta1 ** t)) / (math.sqrt(v / (1 - beta2 ** t)) + ADAM["eps"])
        return theta - step, m, v

    w, m_w, v_w = adam(w, g_w, m_w, v_w)
    b, m_b, v_b = adam(b, g_b, m_b, v_b)
    return w, b, m_w, v_w, m_b, v_b, t


@pytest.mark.parametrize("d_steps", [1, 2])
def test_unrolled_step_is_the_papers_by_hand(tmp_path, d_steps):
    """Metz et al.: the generator's loss is f(theta_G, theta_D^2) with theta_D^0 the
    discriminator before its update and theta_D^{j+1} one Adam step of theta_D^j on the
    iteration's minibatch; D's own update is theta_D^1. Here D(x) = w x + b and
    G(z) = a z + c on 1-D data, and the unroll is written out in plain Python."""
    method = gankit.train(toy_config(tmp_path / "m", steps=1, method__unroll=2, method__d_steps=d_steps)).method
    D, G = Line(0.3, -0.2), Affine(0.5, 0.1)
    method.modules["discriminator"], method.modules["generator"] = D, G
    method.objective = F64_OBJECTIVE
    method.opt_d = torch.optim.Adam(D.parameters(), foreach=False, **ADAM)
    method.opt_g = torch.optim.SGD(G.parameters(), lr=0.5)
    gen = torch.Generator().manual_seed(1)
    warm_real = torch.randn(8, 1, generator=gen, dtype=f64) + 1.0
    warm_fake = torch.randn(8, 1, generator=gen, dtype=f64)
    for _ in range(2):                             # the optimiser's running averages are not empty
        method.opt_d.zero_grad()
        method.objective.d_loss(D(warm_real), D(warm_fake)).backward()
        method.opt_d.step()
    batches = [0.5 * torch.randn(8, 1, generator=gen, dtype=f64) + 1.0 for _ in range(d_steps)]
    st = [method.opt_d.state[p] for p in (D.w, D.b)]
    start = (D.w.item(), D.b.item(), st[0]["exp_avg"].item(), st[0]["exp_avg_sq"].item(),
             st[1]["exp_avg"].item(), st[1]["exp_avg_sq"].item(), int(st[0]["step"]))
    a0, c0 = G.a.item(), G.c.item()

    torch.manual_seed(7)
    out = method.train_step([{"x": b} for b in batches], 0)
    torch.manual_seed(7)                           # the noise train_step drew, one draw per D step
    zs = [torch.randn(8, 1).double()[:, 0].tolist() for _ in range(d_steps)]
    reals = [x[:, 0].tolist() for x in batches]

    def fakes(a, c, z):
        return [a * zi + c for zi in z]

    before = start                                 # the first d_steps - 1 steps are ordinary ones
    for real, z in zip(reals[:-1], zs[:-1]):
        before = _line_step_by_hand(before, real, fakes(a0, c0, z))

    def surrogate(a, c, k=2):                      # f(theta_G, theta_D^k), one minibatch for every step
        state, f = before, fakes(a, c, zs[-1])
        for _ in range(k):
            state = _line_step_by_hand(state, reals[-1], f)
        w, b = state[:2]
        return sum(_softplus(-(w * x + b)) for x in f) / len(f)

    assert out["g_loss"].item() == pytest.approx(surrogate(a0, c0), rel=1e-12)
    # looking one step further (the discriminator's real step, then two unrolled ones) is
    # measurably different
    assert abs(surrogate(a0, c0, k=3) - surrogate(a0, c0)) > 1e-4
    # the discriminator's update is theta_D^1, its optimiser's state too
    first = _line_step_by_hand(before, reals[-1], fakes(a0, c0, zs[-1]))
    st = [method.opt_d.state[p] for p in (D.w, D.b)]
    after = (D.w.item(), D.b.item(), st[0]["exp_avg"].item(), st[0]["exp_avg_sq"].item(),
             st[1]["exp_avg"].item(), st[1]["exp_avg_sq"].item(), int(st[0]["step"]))
    assert after[-1] == start[-1] + d_steps == first[-1]
    assert after[:-1] == pytest.approx(first[:-1], rel=1e-12, abs=1e-15)
    assert D.w.item() != pytest.approx(before[0], rel=1e-3)     # it moved
    # the generator's gradient goes through both unrolled steps: one SGD step by central differences
    h = 1e-6
    grad_a = (surrogate(a0 + h, c0) - surrogate(a0 - h, c0)) / (2 * h)
    grad_c = (surrogate(a0, c0 + h) - surrogate(a0, c0 - h)) / (2 * h)
    assert G.a.item() == pytest.approx(a0 - 0.5 * grad_a, rel=1e-8)
    assert G.c.item() == pytest.approx(c0 - 0.5 * grad_c, rel=1e-8)
    assert abs(G.a.item() - a0) > 1e-4 and abs(G.c.item() - c0) > 1e-4


def test_unroll_zero_is_the_plain_gan(tmp_path):
    """unroll=0 takes Algorithm 1's step: checked against the step written out here, with
    copies of the same networks, optimisers and random draws."""
    run = gankit.train(toy_config(tmp_path / "zero", steps=3, method__d_steps=2, method__unroll=0))
    m = run.method
    assert run.config.method["unroll"] == 0
    G, D = copy.deepcopy(m.generator), copy.deepcopy(m.discriminator).requires_grad_(True)
    opt_g, opt_d = (make_optimizer(net.parameters(), 1.0, m.cfg.optim) for net in (G, D))
    opt_g.load_state_dict(copy.deepcopy(m.opt_g.state_dict()))
    opt_d.load_state_dict(copy.deepcopy(m.opt_d.state_dict()))
    gen = torch.Generator().manual_seed(0)
    for step in range(3, 6):
        batches = [torch.randn(64, 2, generator=gen) for _ in range(2)]
        torch.manual_seed(step)
        m.train_step([{"x": b} for b in batches], step)
        torch.manual_seed(step)
        for real in batches:                       # k = 2 discriminator steps on fresh samples
            with torch.no_grad():
                fake = G(torch.randn(64, G.z_dim))
            opt_d.zero_grad()
            m.objective.d_loss(D(real), D(fake)).backward()
            opt_d.step()
        opt_g.zero_grad()                          # one generator step against the updated D
        m.objective.g_loss(D(G(torch.randn(64, G.z_dim)))).backward()
        opt_g.step()
    for mine, ref in ((m.generator, G), (m.discriminator, D)):
        for a, b in zip(mine.state_dict().values(), ref.state_dict().values()):
            assert torch.equal(a, b)
    for mine, ref in ((m.opt_g, opt_g), (m.opt_d, opt_d)):
        for idx, st in ref.state_dict()["state"].items():
            for key, value in st.items():
                assert torch.equal(mine.state_dict()["state"][idx][key], value), (idx, key)


@pytest.mark.parametrize("method,optim", [
    ({}, {}),
    ({"spectral_norm": True, "penalty": "gradient", "objective": "hinge"}, {}),
    ({"objective": "wasserstein", "clip": 0.05}, {"optimizer": "rmsprop"}),
    ({"pack": 2, "generator_loss": "feature_matching", "d_steps": 2}, {"weight_decay": 1e-3}),
])
def test_unrolled_generator_step_leaves_the_discriminator_to_its_own_step(tmp_path, method, optim):
    """Neither the unroll nor the generator's step touch D (parameters, buffers, optimiser
    state): D as the unroll finds it is D as its last step finds it, and that step is
    theta_D^1."""
    cfg = toy_config(tmp_path / "r", steps=3, **{f"method__{k}": v for k, v in {**method, "unroll": 2}.items()},
                     **{f"optim__{k}": v for k, v in optim.items()})
    m = gankit.train(cfg).method
    seen = {}
    unroll, d_loss = m.unrolled_discriminator, m._d_loss

    def state():
        return copy.deepcopy(m.discriminator.state_dict()), copy.deepcopy(m.opt_d.state_dict()["state"])

    def spy(*args, **kwargs):                      # the discriminator as the unroll finds it
        seen["unroll"] = state()
        D_1, _ = unroll(*args, steps=1)
        seen["probe"] = torch.randn(32, 2 * m.pack)
        seen["D_1"] = D_1(seen["probe"]).detach()
        return unroll(*args, **kwargs)

    def loss_spy(D, *args):                        # ... and as each of its own steps finds it
        if D is m.discriminator:
            seen.setdefault("d_steps", []).append(state())
        return d_loss(D, *args)

    m.unrolled_discriminator, m._d_loss = spy, loss_spy
    batches = list(torch.randn(m.real_batches_per_step, 64, 2))
    g_before = [p.detach().clone() for p in m.generator.parameters()]
    out = m.train_step([{"x": b} for b in batches], 3)
    assert torch.isfinite(out["g_loss"]) and len(seen["d_steps"]) == m.d_steps
    assert any(not torch.equal(a, p) for a, p in zip(g_before, m.generator.parameters()))
    (d_seen, opt_seen), (d_last, opt_last) = seen["unroll"], seen["d_steps"][-1]
    for key, value in d_last.items():
        assert torch.equal(value, d_seen[key]), key
    for idx, st in opt_last.items():
        for key, value in st.items():
            assert torch.equal(value, opt_seen[idx][key]), (idx, key)
    with torch.no_grad():
        after = m.discriminator(seen["probe"])
    torch.testing.assert_close(after, seen["D_1"], rtol=1e-4, atol=1e-5)


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
    D_k, _ = m.unrolled_discriminator(real, generated)
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
    assert s0["modes_captured"] == 0, s0
    # these 300 steps cover all 8 modes on seeds 3 (the test's), 0, 1 and 2
    # (tests/test_gan.py::modes_covered), some of them with only 6 of the 2,500 samples: a
    # margin of two modes
    covered, counts = modes_covered(run)
    assert covered >= 6, counts
