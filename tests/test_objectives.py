import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gankit.objectives.adversarial import (gan_d_loss, minimax_g_loss, nonsaturating_g_loss, value_function)
from gankit.registries import OBJECTIVES, load_all


def test_d_loss_is_binary_cross_entropy():
    torch.manual_seed(0)
    real, fake = torch.randn(50) * 3, torch.randn(50) * 3
    expected = (F.binary_cross_entropy(torch.sigmoid(real), torch.ones(50))
                + F.binary_cross_entropy(torch.sigmoid(fake), torch.zeros(50)))
    assert gan_d_loss(real, fake).item() == pytest.approx(expected.item(), rel=1e-5)


def test_generator_losses_in_probability_terms():
    logits = torch.tensor([-3.0, 0.0, 2.0])
    d = torch.sigmoid(logits)
    assert minimax_g_loss(logits).item() == pytest.approx(torch.log(1 - d).mean().item(), rel=1e-6)
    assert nonsaturating_g_loss(logits).item() == pytest.approx(-torch.log(d).mean().item(), rel=1e-6)


def test_losses_stay_finite_when_d_saturates():
    logits = torch.tensor([-200.0, 200.0])
    for value in (gan_d_loss(logits, logits), minimax_g_loss(logits), nonsaturating_g_loss(logits)):
        assert torch.isfinite(value)


def test_optimal_discriminator_gives_minus_log4_plus_2jsd():
    """Goodfellow et al. Theorem 1 on two discrete distributions: with D* = p/(p+q),
    V(D*, G) = -log 4 + 2 JSD(p || q)."""
    p = np.array([0.5, 0.3, 0.2, 0.0])
    q = np.array([0.1, 0.2, 0.3, 0.4])
    d_star = p / (p + q)
    with np.errstate(divide="ignore"):
        logit = np.log(d_star) - np.log1p(-d_star)
    # expectations as weighted means over the support of each distribution
    v = (sum(p[i] * -np.logaddexp(0, -logit[i]) for i in range(4) if p[i] > 0)
         + sum(q[i] * -np.logaddexp(0, logit[i]) for i in range(4) if q[i] > 0))
    m = (p + q) / 2
    kl = lambda a, b: sum(a[i] * math.log(a[i] / b[i]) for i in range(4) if a[i] > 0)
    jsd = 0.5 * kl(p, m) + 0.5 * kl(q, m)
    assert v == pytest.approx(-math.log(4) + 2 * jsd, rel=1e-12)
    # and our value_function computes the same V on samples drawn exactly in those proportions
    real = torch.tensor(np.repeat(logit[:3], (p[:3] * 10).astype(int)))
    fake = torch.tensor(np.repeat(logit, (q * 10).astype(int)))
    assert value_function(real, fake).item() == pytest.approx(v, rel=1e-6)
    # D* is the best discriminator: any other D gives a lower value
    for shift in (-0.5, 0.5):
        assert value_function(real + shift, fake + shift).item() < v


def test_minimax_saturates_where_nonsaturating_does_not():
    """When D confidently rejects G's samples (D(G(z)) ~ 0), d/dlogit of the minimax loss
    vanishes while the non-saturating one stays near -1."""
    logit = torch.tensor([-8.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(minimax_g_loss(logit), logit)
    (g_ns,) = torch.autograd.grad(nonsaturating_g_loss(logit), logit)
    assert abs(g_mm.item()) < 1e-3
    assert g_ns.item() == pytest.approx(-1.0, abs=1e-3)


def test_registered_by_name():
    load_all()
    assert {"minimax", "nonsaturating"} <= set(OBJECTIVES.names())
    assert OBJECTIVES.get("minimax")().g_loss is minimax_g_loss
