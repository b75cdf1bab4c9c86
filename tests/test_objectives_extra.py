"""Closed-form checks of the f-GAN table, LSGAN, WGAN, hinge, and the Lipschitz penalties."""
import math

import numpy as np
import pytest
import torch
from scipy import integrate, optimize, stats
from torch import nn

import gankit
import gankit.objectives.fgan  # noqa: F401  (registers the fgan_* objectives)
from gankit.objectives.adversarial import (Objective, gan_d_loss, hinge_d_loss, hinge_g_loss, least_squares_d_loss,
                                           least_squares_g_loss, least_squares_objective, minimax_g_loss,
                                           nonsaturating_g_loss, wasserstein_critic_loss, wasserstein_g_loss)
from gankit.objectives.fgan import (F_DIVERGENCES, fgan_alternative_g_loss, fgan_d_loss, fgan_objective,
                                    fgan_saddle_g_loss, get_f_divergence, variational_divergence)
from gankit.objectives.penalties import (clip_weights_, gradient_penalty, lipschitz_margin_penalty, r1_penalty,
                                         spectral_norm_all)
from gankit.registries import OBJECTIVES, load_all

NAMES = list(F_DIVERGENCES)
D64 = torch.float64

# Two distributions on five points, with every probability a multiple of 1/20, so that a list of
# 20 "samples" holding each point in exact proportion turns a sample mean into the expectation.
P = np.array([2, 3, 5, 6, 4]) / 20
Q = np.array([5, 5, 4, 3, 3]) / 20


def as_samples(values, probs, n=20):
    return torch.repeat_interleave(torch.as_tensor(values), torch.as_tensor(np.round(probs * n).astype(int)))


def f_prime(div, u):
    """f'(u) by autograd, float64."""
    u = torch.as_tensor(u, dtype=D64).clone().requires_grad_(True)
    (g,) = torch.autograd.grad(div.f(u).sum(), u)
    return g.detach()


def discrete_divergence(div, p, q):
    p, q = torch.as_tensor(p, dtype=D64), torch.as_tensor(q, dtype=D64)
    return float((q * div.f(p / q)).sum())


# The inverse of each output activation g_f, to get the raw discriminator output v* = g_f^-1(T*).
INVERSE_ACTIVATION = {
    "kl": lambda t: t,
    "reverse_kl": lambda t: -torch.log(-t),
    "pearson": lambda t: t,
    "neyman": lambda t: -torch.log(1 - t),
    "hellinger": lambda t: -torch.log(1 - t),
    "jensen_shannon": lambda t: -torch.log(2 * torch.exp(-t) - 1),
    "gan": lambda t: -torch.log(torch.expm1(-t)),
}

# For each row, values of t whose maximiser u*(t) of u t - f(u) lies well inside (0, 60).
T_GRID = {
    "kl": np.linspace(-2, 3, 11),
    "reverse_kl": np.linspace(-5, -0.1, 11),
    "pearson": np.linspace(-1.8, 4, 11),
    "neyman": np.linspace(-3, 0.9, 11),
    "hellinger": np.linspace(-3, 0.7, 11),
    "jensen_shannon": np.linspace(-3, 0.6, 11),
    "gan": np.linspace(-4, -0.1, 11),
}


# ------------------------------------------------------------------------------- f-divergences

def test_table_is_complete():
    assert set(NAMES) == {"kl", "reverse_kl", "pearson", "neyman", "hellinger", "jensen_shannon", "gan"}
    for name, div in F_DIVERGENCES.items():
        assert div.name == name and get_f_divergence(name) is div and get_f_divergence(div) is div
    with pytest.raises(KeyError):
        get_f_divergence("total_variation_typo")


@pytest.mark.parametrize("name", NAMES)
def test_f_of_one_is_zero_and_f_is_convex(name):
    """f(1) = 0 for every row but the paper's ``gan`` row, whose f(1) = -log 4 makes its D_f the
    value 2 JSD - log 4 of the original GAN game at the optimal discriminator."""
    div = F_DIVERGENCES[name]
    f1 = -math.log(4) if name == "gan" else 0.0
    assert div.f(torch.tensor(1.0, dtype=D64)).item() == pytest.approx(f1, abs=1e-15)
    u = torch.linspace(0.05, 10, 200, dtype=D64)
    second_difference = div.f(u[2:]) - 2 * div.f(u[1:-1]) + div.f(u[:-2])
    assert (second_difference >= -1e-12).all()


@pytest.mark.parametrize("name", NAMES)
def test_conjugate_is_the_fenchel_conjugate(name):
    """f*(t) = sup_u {u t - f(u)}, found numerically on a grid of t in the domain of f*."""
    div = F_DIVERGENCES[name]
    f = lambda u: float(div.f(torch.tensor(u, dtype=D64)))
    for t in T_GRID[name]:
        res = optimize.minimize_scalar(lambda u: -(u * t - f(u)), bounds=(1e-9, 60.0), method="bounded",
                                       options={"xatol": 1e-12})
        assert 1e-3 < res.x < 59  # an interior maximiser, so the bounds did not decide it
        assert float(div.conjugate(torch.tensor(t, dtype=D64))) == pytest.approx(-res.fun, rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_activation_maps_onto_the_domain_and_composition_is_stable(name):
    div = F_DIVERGENCES[name]
    lo, hi = div.domain
    v = torch.linspace(-15, 15, 301, dtype=D64)
    t = div.activation(v)
    assert ((t > lo) & (t < hi)).all()
    assert torch.allclose(div.conjugate_of_activation(v), div.conjugate(t), rtol=1e-9, atol=1e-9)
    assert torch.allclose(INVERSE_ACTIVATION[name](t[100:200]), v[100:200], atol=1e-8)
    # the composed form stays finite where a naive f*(g_f(v)) may not, in float32 too
    for x in (torch.tensor([-50.0, 50.0]), torch.tensor([-50.0, 50.0], dtype=D64)):
        assert torch.isfinite(div.conjugate_of_activation(x)).all()


@pytest.mark.parametrize("name", NAMES)
def test_variational_bound_is_tight_at_the_optimal_t(name):
    """E_P[T] - E_Q[f*(T)] equals D_f(P || Q) at T* = f'(p/q) and is lower for any other T."""
    div = F_DIVERGENCES[name]
    true = discrete_divergence(div, P, Q)
    assert true > (-math.log(4) if name == "gan" else 0.0)
    t_star = f_prime(div, P / Q)
    # the same number as an explicit weighted sum and as sample means over exact-proportion samples
    weighted = float((torch.tensor(P) * t_star).sum() - (torch.tensor(Q) * div.conjugate(t_star)).sum())
    assert weighted == pytest.approx(true, rel=1e-12, abs=1e-14)
    bound = variational_divergence(div, as_samples(t_star, P), as_samples(t_star, Q))
    assert bound.dtype == D64 and bound.item() == pytest.approx(true, rel=1e-12, abs=1e-14)

    lo, hi = div.domain
    rng = np.random.default_rng(1)
    for _ in range(20):
        d = torch.tensor(rng.normal(0, 0.3, size=5))
        if math.isfinite(hi):  # a step up goes at most halfway to the edge of the domain
            d = torch.minimum(d, 0.5 * (hi - t_star))
        t = t_star + d
        assert variational_divergence(div, as_samples(t, P), as_samples(t, Q)).item() < true


@pytest.mark.parametrize("name", NAMES)
def test_objective_at_the_optimal_discriminator(name):
    """With raw outputs v* = g_f^-1(T*), the registered objective's d_loss is -D_f(P || Q)."""
    div = F_DIVERGENCES[name]
    v_star = INVERSE_ACTIVATION[name](f_prime(div, P / Q))
    objective = fgan_objective(name)
    loss = objective.d_loss(as_samples(v_star, P), as_samples(v_star, Q))
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(-discrete_divergence(div, P, Q), rel=1e-5, abs=1e-6)


def test_js_and_gan_rows_in_terms_of_jsd():
    m = (P + Q) / 2
    kl = lambda a, b: float(np.sum(a * np.log(a / b)))
    jsd = 0.5 * kl(P, m) + 0.5 * kl(Q, m)
    assert discrete_divergence(F_DIVERGENCES["jensen_shannon"], P, Q) == pytest.approx(2 * jsd, rel=1e-12)
    assert discrete_divergence(F_DIVERGENCES["gan"], P, Q) == pytest.approx(2 * jsd - math.log(4), rel=1e-12)
    assert discrete_divergence(F_DIVERGENCES["kl"], P, Q) == pytest.approx(kl(P, Q), rel=1e-12)
    assert discrete_divergence(F_DIVERGENCES["reverse_kl"], P, Q) == pytest.approx(kl(Q, P), rel=1e-12)


def test_fgan_gan_row_is_the_original_gan():
    """For the ``gan`` row the f-GAN losses are exactly Goodfellow et al.'s, from the same logits."""
    torch.manual_seed(0)
    real, fake = torch.randn(64) * 4, torch.randn(64) * 4
    assert fgan_d_loss("gan", real, fake).item() == pytest.approx(gan_d_loss(real, fake).item(), rel=1e-6)
    assert fgan_saddle_g_loss("gan", fake).item() == pytest.approx(minimax_g_loss(fake).item(), rel=1e-6)
    assert fgan_alternative_g_loss("gan", fake).item() == pytest.approx(nonsaturating_g_loss(fake).item(), rel=1e-6)
    # and the Jensen-Shannon row differs from it only by constants: same gradients
    v = fake.clone().requires_grad_(True)
    (g_js,) = torch.autograd.grad(fgan_saddle_g_loss("jensen_shannon", v), v)
    (g_gan,) = torch.autograd.grad(fgan_saddle_g_loss("gan", v), v)
    assert torch.allclose(g_js, g_gan)


def test_generator_loss_variants():
    v = torch.tensor([-2.0, 0.5, 3.0])
    div = F_DIVERGENCES["kl"]
    saddle, alternative = fgan_objective("kl"), fgan_objective("kl", generator="alternative")
    assert saddle.g_loss(v).item() == pytest.approx(-torch.exp(v - 1).mean().item(), rel=1e-6)
    assert alternative.g_loss(v).item() == pytest.approx(-div.activation(v).mean().item(), rel=1e-6)
    assert OBJECTIVES.get("fgan_kl")(generator="alternative").g_loss(v).item() == alternative.g_loss(v).item()
    with pytest.raises(ValueError):
        fgan_objective("kl", generator="nonsaturating")


# Closed forms between P = N(0, 1) and Q = N(1, 1), where p/q = exp(1/2 - x).
GAUSSIAN_CLOSED_FORM = {
    "kl": 0.5,                                    # mu^2 / 2
    "reverse_kl": 0.5,
    "pearson": math.e - 1,                        # exp(mu^2) - 1
    "neyman": math.e - 1,
    "hellinger": 2 * (1 - math.exp(-1 / 8)),      # 2 (1 - exp(-mu^2 / 8))
}


@pytest.mark.parametrize("name", NAMES)
def test_gaussian_divergence_by_monte_carlo(name):
    div = F_DIVERGENCES[name]
    p, q = stats.norm(0, 1), stats.norm(1, 1)
    integrand = lambda x: q.pdf(x) * float(div.f(torch.tensor(p.pdf(x) / q.pdf(x), dtype=D64)))
    true, _ = integrate.quad(integrand, -12, 13, epsabs=1e-12, limit=200)
    if name in GAUSSIAN_CLOSED_FORM:
        assert true == pytest.approx(GAUSSIAN_CLOSED_FORM[name], rel=1e-7)

    rng = np.random.default_rng(0)
    n = 100_000
    x_p, x_q = torch.tensor(rng.normal(0, 1, n)), torch.tensor(rng.normal(1, 1, n))
    t_real, t_fake = f_prime(div, torch.exp(0.5 - x_p)), f_prime(div, torch.exp(0.5 - x_q))
    estimate = variational_divergence(div, t_real, t_fake).item()
    # the standard error of the estimate, from the same samples
    se = math.sqrt(t_real.var().item() / n + div.conjugate(t_fake).var().item() / n)
    assert se < 0.1
    assert abs(estimate - true) < 5 * se + 1e-3


# ------------------------------------------------------------------------------- LSGAN

def test_least_squares_hand_computed():
    d_real, d_fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-3.0, 0.0, 1.0])
    obj = OBJECTIVES.get("least_squares")()
    # 0.5 * mean([1, 0.25, 4]) + 0.5 * mean([9, 0, 1]);  0.5 * mean([16, 1, 0])
    assert obj.d_loss(d_real, d_fake).item() == pytest.approx(0.5 * 5.25 / 3 + 0.5 * 10 / 3)
    assert obj.g_loss(d_fake).item() == pytest.approx(17 / 6)
    assert obj.d_loss is least_squares_d_loss and obj.g_loss is least_squares_g_loss


@pytest.mark.parametrize("a, b, c", [(0.0, 1.0, 1.0), (-1.0, 1.0, 0.0)])
def test_least_squares_optimal_discriminator_and_pearson(a, b, c):
    """Mao et al.: D*(x) = (b p + a q) / (p + q). At D*, C(G) = 0.5 E_P[(D*-c)^2] + 0.5 E_Q[(D*-c)^2]
    (the generator's loss plus a term constant in G) is a Pearson chi^2 divergence:
    with a=-1, b=1, c=0, 2 C = chi^2_Pearson(2Q || P + Q); with the 0-1 coding a=0, b=1, c=1,
    C = (chi^2_Pearson(2Q || P + Q) + 2) / 8, minimal (1/4) when Q = P."""
    obj = least_squares_objective(a, b, c)
    d_star = (b * P + a * Q) / (P + Q)
    real, fake = as_samples(d_star, P), as_samples(d_star, Q)
    best = obj.d_loss(real, fake).item()
    for shift in (-0.1, 0.1):
        assert obj.d_loss(real + shift, fake + shift).item() > best
    for i in range(5):  # nudging D at any single point makes it worse
        bump = torch.zeros(5, dtype=D64)
        bump[i] = 0.05
        assert obj.d_loss(as_samples(d_star + bump.numpy(), P), as_samples(d_star + bump.numpy(), Q)).item() > best

    value = obj.g_loss(real).item() + obj.g_loss(fake).item()
    pearson = discrete_divergence(F_DIVERGENCES["pearson"], 2 * Q, P + Q)
    expected = pearson / 2 if (a, b, c) == (-1.0, 1.0, 0.0) else (pearson + 2) / 8
    assert value == pytest.approx(expected, rel=1e-6)


# ------------------------------------------------------------------------------- WGAN, hinge

def test_wasserstein_and_hinge_hand_computed():
    d_real, d_fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-3.0, 0.0, 1.0])
    w, h = OBJECTIVES.get("wasserstein")(), OBJECTIVES.get("hinge")()
    assert w.d_loss(d_real, d_fake).item() == pytest.approx(-2 / 3 - 0.5)
    assert w.g_loss(d_fake).item() == pytest.approx(2 / 3)
    # relu(1 - [2, .5, -1]) = [0, .5, 2];  relu(1 + [-3, 0, 1]) = [0, 1, 2]
    assert h.d_loss(d_real, d_fake).item() == pytest.approx(2.5 / 3 + 1.0)
    assert h.g_loss(d_fake).item() == pytest.approx(2 / 3)
    assert (w.d_loss, w.g_loss, h.d_loss, h.g_loss) == (wasserstein_critic_loss, wasserstein_g_loss,
                                                        hinge_d_loss, hinge_g_loss)
    # hinge: no loss once real scores are >= 1 and generated <= -1
    assert h.d_loss(torch.tensor([1.0, 5.0]), torch.tensor([-1.0, -7.0])).item() == 0.0


def test_wasserstein_critic_loss_with_the_optimal_critic():
    """Real N(theta, 1), generated N(0, 1): the 1-Lipschitz critic f(x) = x is optimal, and the
    critic loss is -theta = -W_1 in expectation; other 1-Lipschitz critics do no better."""
    theta, n = 1.5, 100_000
    rng = np.random.default_rng(0)
    real, fake = torch.tensor(rng.normal(theta, 1, n)), torch.tensor(rng.normal(0, 1, n))
    loss = wasserstein_critic_loss(real, fake).item()
    assert loss == pytest.approx(-theta, abs=0.03)            # standard error sqrt(2/n) ~ 0.0045
    assert -loss == pytest.approx(stats.wasserstein_distance(real.numpy(), fake.numpy()), abs=0.03)
    for critic in (torch.tanh, lambda x: x.clamp(-1, 1), lambda x: -(x - 0.7).abs(), lambda x: 0.5 * x):
        assert wasserstein_critic_loss(critic(real), critic(fake)).item() > -theta - 0.03


# ------------------------------------------------------------------------------- registration

NEW_OBJECTIVES = ["least_squares", "wasserstein", "hinge", "fgan_kl", "fgan_reverse_kl", "fgan_pearson",
                  "fgan_neyman", "fgan_hellinger", "fgan_js", "fgan_gan"]


@pytest.mark.parametrize("name", NEW_OBJECTIVES)
def test_registered_and_finite_at_extreme_logits(name):
    load_all()
    obj = OBJECTIVES.get(name)()
    assert isinstance(obj, Objective)
    for dtype in (torch.float32, torch.bfloat16):
        extreme = torch.tensor([-50.0, 50.0, 0.0], dtype=dtype, requires_grad=True)
        d = obj.d_loss(extreme, extreme.flip(0))
        g = obj.g_loss(extreme)
        for value in (d, g):
            assert value.dim() == 0 and value.dtype == torch.float32 and torch.isfinite(value)
        (grad,) = torch.autograd.grad(d + g, extreme)
        assert torch.isfinite(grad.float()).all()
    if name.startswith("fgan_"):
        alt = OBJECTIVES.get(name)(generator="alternative")
        assert torch.isfinite(alt.g_loss(torch.tensor([-50.0, 50.0])))


# ------------------------------------------------------------------------------- penalties

def linear_critic(w):
    layer = nn.Linear(len(w), 1, bias=True)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([w]))
        layer.bias.fill_(0.3)
    return layer


def test_gradient_penalty_of_a_linear_critic():
    w = [3.0, -4.0]                                  # |w| = 5
    critic = linear_critic(w)
    torch.manual_seed(0)
    real, fake = torch.randn(32, 2), torch.randn(32, 2) + 2
    gp = gradient_penalty(critic, real, fake, weight=10.0)
    assert gp.item() == pytest.approx(10.0 * (5 - 1) ** 2, rel=1e-6)
    assert gradient_penalty(critic, real, fake, weight=2.0, center=0.0).item() == pytest.approx(2.0 * 25, rel=1e-6)
    # differentiable w.r.t. the critic: d/dw of 10 (|w| - 1)^2 = 20 (|w| - 1) w / |w|
    gp.backward()
    assert torch.allclose(critic.weight.grad, 20 * 4 * torch.tensor([w]) / 5, rtol=1e-5)
    # computed in float32 outside autocast: the same value under bf16 autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert gradient_penalty(critic, real, fake).item() == pytest.approx(160.0, rel=1e-6)


def test_gradient_penalty_samples_on_segments_and_is_seeded():
    seen = []

    def critic(x):
        seen.append(x.detach().clone())
        return (x ** 2).sum(1)

    real, fake = torch.zeros(100, 3) + torch.tensor([1.0, 2.0, 3.0]), torch.zeros(100, 3)
    a = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(5))
    b = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(5))
    assert a.item() == b.item()
    x_hat = seen[0]
    eps = x_hat[:, 0]                                # real - fake = (1, 2, 3), so eps is the first coordinate
    assert ((eps >= 0) & (eps <= 1)).all() and eps.std() > 0.1
    assert torch.allclose(x_hat, eps[:, None] * torch.tensor([1.0, 2.0, 3.0]))
    # grad of |x|^2 is 2 x, so the penalty is 10 E[(2 eps |(1,2,3)| - 1)^2]
    expected = 10 * ((2 * eps * math.sqrt(14) - 1) ** 2).mean()
    assert a.item() == pytest.approx(expected.item(), rel=1e-5)


def test_r1_penalty():
    critic = linear_critic([3.0, -4.0])
    real = torch.randn(16, 2)
    assert r1_penalty(critic, real, weight=10.0).item() == pytest.approx(0.5 * 10 * 25, rel=1e-6)
    quadratic = lambda x: (x ** 2).sum(1)            # grad 2x: R1 = 0.5 w E[4 |x|^2]
    expected = 0.5 * 3.0 * (4 * (real ** 2).sum(1)).mean()
    r1 = r1_penalty(quadratic, real, weight=3.0)
    assert r1.item() == pytest.approx(expected.item(), rel=1e-5)
    r1_linear = r1_penalty(critic, real, weight=10.0)
    r1_linear.backward()
    assert torch.allclose(critic.weight.grad, 10 * torch.tensor([[3.0, -4.0]]))


def test_clip_weights():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(10)
    before = [p.detach().clone() for p in net.parameters()]
    assert clip_weights_(net, 0.01) is None
    for p, old in zip(net.parameters(), before):
        assert p.abs().max() <= 0.01
        inside = old.abs() <= 0.01
        assert torch.equal(p[inside], old[inside])
        assert torch.equal(p[~inside], 0.01 * old[~inside].sign())
    with pytest.raises(ValueError):
        clip_weights_(net, 0.0)


def test_spectral_norm_all():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(8 * 4 * 4, 16),
                        nn.LeakyReLU(0.2), nn.Linear(16, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(7)
    assert spectral_norm_all(net) is net
    spectral_norm_all(net)                           # a second call changes nothing
    net.train()
    x = torch.randn(4, 3, 6, 6)
    for _ in range(10):                              # power iterations run on forward passes in training mode
        net(x)
    layers = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert len(layers) == 3
    for layer in layers:
        assert len(layer.parametrizations.weight) == 1
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2).item()
        assert sigma == pytest.approx(1.0, abs=1e-2)


def test_lipschitz_margin_penalty():
    real = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    fake = torch.tensor([[1.0, -1.0], [1.0, 1.5]])   # L1 distances 2 and 0.5
    l_real, l_fake = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 3.0])
    # relu(2 + 0 - 1) = 1, relu(0.5 + 0 - 3) = 0
    assert lipschitz_margin_penalty(l_real, l_fake, real, fake).item() == pytest.approx(0.5)


# ------------------------------------------------------------------------------- training

def train_gaussian1d(out, objective, steps):
    return gankit.train({
        "method": {"name": "gan", "objective": objective},
        "data": {"name": "gaussian1d", "n_samples": 20000},
        "generator": {"name": "mlp", "hidden": 64, "layers": 2},
        "discriminator": {"name": "mlp", "hidden": 64, "layers": 2},
        "train": {"steps": steps, "batch_size": 256, "log_every": 50, "sample_every": 0, "checkpoint_every": 0,
                  "progress": "none"},
        "optim": {"lr_g": 1e-3, "lr_d": 1e-3, "beta1": 0.0},
        "out": str(out),
    })


def test_generator_starts_near_zero(tmp_path):
    run = train_gaussian1d(tmp_path / "start", "least_squares", steps=1)
    assert abs(run.sample(2000, seed=0).mean().item()) < 1.0


@pytest.mark.parametrize("name", ["least_squares", "hinge", "fgan_js"])
def test_training_moves_generator_to_the_data(tmp_path, name):
    """600 steps take the generated mean from near 0 (see above) to within 0.5 of the data mean 4."""
    run = train_gaussian1d(tmp_path / name, name, steps=600)
    assert run.sample(2000, seed=0).mean().item() == pytest.approx(4.0, abs=0.5)
