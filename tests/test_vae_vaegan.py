"""The VAE and VAE-GAN: the KL term and the ELBO against independent computations, the
likelihoods as probabilities, the three-class discriminator's loss, the paper's rule of which
loss reaches which network, short trainings that beat their start, sampling of
reconstructions, and clear errors for bad input."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.errors import ConfigError
from gankit.methods.vae import (bernoulli_log_likelihood, discretized_gaussian_log_likelihood, elbo,
                                gaussian_kl, reparameterize)
from gankit.methods.vaegan import three_class_d_loss, three_class_g_loss


def test_the_kl_term_is_the_closed_form_and_its_monte_carlo_estimate():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    q = torch.distributions.Normal(mu.double(), logvar.double().mul(0.5).exp())
    p = torch.distributions.Normal(torch.zeros(5, 3, dtype=torch.float64), 1.0)
    exact = torch.distributions.kl_divergence(q, p).sum(1)
    torch.testing.assert_close(gaussian_kl(mu, logvar).double(), exact, rtol=1e-5, atol=1e-5)
    z = q.sample((200_000,))                                  # E_q[log q(z) - log p(z)]
    mc = (q.log_prob(z) - p.log_prob(z)).sum(2).mean(0)
    torch.testing.assert_close(mc, exact, rtol=0.02, atol=0.02)
    assert float(gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)).abs().max()) == 0.0


def test_the_discretized_gaussian_is_a_probability_over_the_256_values():
    values = torch.arange(256, dtype=torch.float32) / 127.5 - 1       # every 8-bit value, model space
    for mean, scale in ((0.3, 0.05), (-0.99, 0.2), (1.0, 0.003), (0.0, 2.0), (0.5, 1e-3)):
        x = values.view(256, 1, 1, 1)
        log_p = discretized_gaussian_log_likelihood(x, torch.full_like(x, mean), torch.tensor([math.log(scale)]))
        assert abs(float(log_p.double().exp().sum()) - 1.0) < 1e-4, (mean, scale)
    # a middle bin against the difference of two CDFs in float64
    x = torch.tensor([[[[100 / 127.5 - 1]]]])
    normal = torch.distributions.Normal(torch.tensor(-0.1, dtype=torch.float64), 0.3)
    lo, hi = (99.5 / 127.5 - 1), (100.5 / 127.5 - 1)
    want = math.log(float(normal.cdf(torch.tensor(hi, dtype=torch.float64)) - normal.cdf(torch.tensor(lo, dtype=torch.float64))))
    got = float(discretized_gaussian_log_likelihood(x, torch.full_like(x, -0.1), torch.tensor([math.log(0.3)])))
    assert got == pytest.approx(want, abs=1e-4)


def test_the_bernoulli_likelihood_reads_the_decoder_picture_as_its_mean():
    pre = torch.randn(3, 1, 4, 4)
    x = torch.rand(3, 1, 4, 4) * 2 - 1
    t, p = (x + 1) / 2, torch.sigmoid(2 * pre)
    want = (t * p.log() + (1 - t) * (1 - p).log()).flatten(1).sum(1)
    torch.testing.assert_close(bernoulli_log_likelihood(x, 2 * pre), want, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(2 * p - 1, torch.tanh(pre), rtol=1e-5, atol=1e-5)   # its mean is the picture


class _LinearVAE(torch.nn.Module):
    """A one-dimensional code and a linear decoder of one pixel: z -> a z + b, and a Gaussian
    encoder with fixed mean and log-variance, so E_q[log p(x|z)] is an integral over one variable."""

    def __init__(self, a, b, mu, logvar, scale):
        super().__init__()
        self.a, self.b, self.mu, self.logvar = a, b, mu, logvar
        self.log_scale = torch.tensor([math.log(scale)])
        self.z_dim = 1

    def encode(self, x):
        n = len(x)
        return torch.full((n, 1), self.mu), torch.full((n, 1), self.logvar)

    def decode(self, z):
        return (self.a * z + self.b).view(-1, 1, 1, 1)

    def decode_pre_tanh(self, z):
        return torch.atanh(self.decode(z).clamp(-0.999, 0.999))


def test_the_elbo_matches_an_independent_quadrature():
    net = _LinearVAE(a=0.4, b=-0.1, mu=0.3, logvar=math.log(0.5), scale=0.15)
    v = 140                                                   # the pixel's 8-bit value
    x = torch.full((400_000, 1, 1, 1), v / 127.5 - 1)
    eps = torch.randn(400_000, 1, generator=torch.Generator().manual_seed(1))
    mc = elbo(net, x, eps)["elbo"].double().mean()

    # independently: Gauss-Hermite quadrature of E_q[log P(v | z)] in float64, KL in closed form
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)  # for the weight exp(-z^2 / 2)
    sd = math.sqrt(0.5)
    z = 0.3 + sd * nodes
    mean = 0.4 * z - 0.1
    from scipy.stats import norm

    hi, lo = (v + 0.5) / 127.5 - 1, (v - 0.5) / 127.5 - 1
    prob = np.where(mean < lo, norm.sf(lo, mean, 0.15) - norm.sf(hi, mean, 0.15),    # each tail from its own side
                    norm.cdf(hi, mean, 0.15) - norm.cdf(lo, mean, 0.15))
    expected_log_lik = float((weights * np.log(prob)).sum() / math.sqrt(2 * math.pi))
    kl = 0.5 * (0.3 ** 2 + 0.5 - 1 - math.log(0.5))
    assert float(mc) == pytest.approx(expected_log_lik - kl, abs=0.02)


def test_the_reparameterisation_is_differentiable_in_mean_and_log_variance():
    mu = torch.tensor([0.5], requires_grad=True)
    logvar = torch.tensor([math.log(4.0)], requires_grad=True)
    z = reparameterize(mu, logvar, torch.tensor([1.5]))
    assert float(z.detach()) == pytest.approx(0.5 + 2.0 * 1.5)
    z.backward()
    assert float(mu.grad) == 1.0 and float(logvar.grad) == pytest.approx(0.5 * 2.0 * 1.5)


def test_the_three_class_losses_are_cross_entropies_of_their_classes():
    g = torch.Generator().manual_seed(2)
    real, gen, rec = (torch.randn(6, 3, generator=g) for _ in range(3))

    def ce(logits, k):
        log_p = logits.double() - torch.logsumexp(logits.double(), 1, keepdim=True)
        return -log_p[:, k].mean()

    want_d = ce(real, 0) + ce(gen, 1) + ce(rec, 2)
    want_g = ce(gen, 0) + ce(rec, 0)
    assert float(three_class_d_loss(real, gen, rec)) == pytest.approx(float(want_d), rel=1e-5)
    assert float(three_class_g_loss(gen, rec)) == pytest.approx(float(want_g), rel=1e-5)
    # a discriminator sure of every class has (almost) no loss; the decoder then has a large one
    sure = lambda k: F.one_hot(torch.full((4,), k), 3).float() * 30   # noqa: E731
    assert float(three_class_d_loss(sure(0), sure(1), sure(2))) < 1e-6
    assert float(three_class_g_loss(sure(1), sure(2))) > 50


# ------------------------------------------------------------------ training
def _pictures(folder):
    """400 grey 16x16 pictures: a bright square of one of four sizes at a random place."""
    path = folder / "squares.npz"
    if not path.exists():
        rng = np.random.default_rng(0)
        x = np.full((400, 16, 16), 10, np.uint8)
        for img in x:
            s = int(rng.integers(4, 8))
            top, left = rng.integers(0, 16 - s, size=2)
            img[top:top + s, left:left + s] = 230
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(path, x=x)
    return path


def _config(tmp_path, method, steps, **method_params):
    cfg = {"method": {"name": method, **method_params},
           "data": {"name": "array", "path": str(_pictures(tmp_path)), "test_fraction": 0.25},
           "generator": {"name": "vae", "z_dim": 8, "width": 8},
           "train": {"steps": steps, "batch_size": 32, "log_every": 10, "sample_every": 0,
                     "checkpoint_every": steps, "progress": "none", "seed": 0},
           "runtime": {"threads": 1},
           "out": str(tmp_path / "-".join([method, str(steps), *map(str, method_params.values())]))}
    if method == "vaegan":
        cfg["discriminator"] = {"name": "dcgan", "width": 8}
        cfg["optim"] = {"lr_g": 1e-3, "lr_d": 1e-3}
    return cfg


def _held_out(run):
    from gankit.metrics.evaluate import evaluate_run

    return evaluate_run(run, metrics=["elbo", "reconstruction_error"] if run.config.method["name"] == "vae"
                        else ["reconstruction_error"], n=100, features="pixels")


def test_a_short_vae_training_raises_the_held_out_elbo(tmp_path):
    start = _held_out(gankit.train(_config(tmp_path, "vae", 1)))
    end = _held_out(gankit.train(_config(tmp_path, "vae", 150)))
    assert end["elbo"] > start["elbo"] + 100                       # nats per 256-pixel picture
    assert end["elbo_bits_per_dim"] < start["elbo_bits_per_dim"]
    assert end["reconstruction_error"] < start["reconstruction_error"]


def test_a_short_vaegan_training_lowers_the_reconstruction_error(tmp_path):
    start = _held_out(gankit.train(_config(tmp_path, "vaegan", 1)))
    end = gankit.train(_config(tmp_path, "vaegan", 150))
    assert _held_out(end)["reconstruction_error"] < 0.7 * start["reconstruction_error"]
    three = gankit.train(_config(tmp_path, "vaegan", 150, three_class=True))
    assert _held_out(three)["reconstruction_error"] < 0.7 * start["reconstruction_error"]
    assert "classes" in three.method.modules and three.method.modules["classes"].out_features == 3


def test_vaegan_sends_each_loss_to_the_paper_s_networks(tmp_path):
    """Encoder <- KL + feature error, decoder <- gamma * feature error + GAN term: with gamma
    scaled, the encoder's gradient stays and the decoder's feature part scales."""
    run = gankit.train(_config(tmp_path, "vaegan", 1, gamma=0.5))
    m = run.method
    batch = {"x": run.data.to_model({"x": run.data.tensors()["x"][:16]})["x"]}

    def grads(gamma, adversarial=True):
        torch.manual_seed(5)
        m.gamma = gamma
        for net in m.modules.values():
            net.zero_grad(set_to_none=True)
        captured = {}

        def capture(loss, opt, name):
            if name == "generator":
                loss.backward()
                captured.update({k: p.grad.clone() for k, p in m.generator.named_parameters() if p.grad is not None})
            # no optimiser step: the weights stay as they are

        m.rt.step, keep = capture, m.rt.step
        objective = m.objective
        if not adversarial:         # the decoder's GAN term switched off
            m.objective = SimpleNamespace(d_loss=objective.d_loss, g_loss=lambda d: d.float().sum() * 0.0,
                                          output=objective.output)
        try:
            m.train_step([batch], 0)
        finally:
            m.rt.step, m.objective = keep, objective
        return captured

    a, b = grads(0.5), grads(0.25)
    enc = [k for k in a if k.startswith("encoder.")]
    dec = [k for k in a if k.startswith("decoder.")]
    for k in enc:                                              # the encoder does not see gamma
        torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=1e-6)
    fa, fb = grads(0.5, adversarial=False), grads(0.25, adversarial=False)
    for k in dec:                                              # the decoder's feature part is gamma-weighted
        torch.testing.assert_close(fb[k], fa[k] * 0.5, rtol=1e-3, atol=1e-7)
    assert not any(k.startswith("log_scale") for k in a)       # no pixel likelihood in VAE-GAN


def test_sampling_gives_reconstructions_beside_their_inputs(tmp_path):
    from gankit.cli import main

    run = gankit.train(_config(tmp_path, "vae", 20))
    pictures = run.data.tensors()["x"][:5]
    out = run.generate(5, seed=0, given={"input": pictures.float() / 127.5 - 1})
    assert set(out) == {"x", "input", "sample", "elbo"}
    torch.testing.assert_close(out["input"], pictures.float() / 255)
    again = run.generate(5, seed=7, given={"input": pictures.float() / 127.5 - 1})
    torch.testing.assert_close(again["x"], out["x"])          # the mean code: a function of the picture
    assert not torch.equal(again["sample"], out["sample"])     # prior draws follow the seed
    prior = run.generate(5, seed=0)
    assert set(prior) == {"x"}

    np.save(tmp_path / "in.npy", pictures.numpy())
    assert main(["sample", str(run.path), "--input", str(tmp_path / "in.npy"), "--out", str(tmp_path / "rec")]) == 0
    assert len(list((tmp_path / "rec").glob("*.png"))) == 5
    assert main(["sample", str(run.path), "--input", str(tmp_path / "in.npy"), "--out", str(tmp_path / "g.png")]) == 0
    from PIL import Image

    with Image.open(tmp_path / "g.png") as img:                # input | reconstruction | sample, per picture
        assert img.size[0] > 3 * 16 * 2


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="method.gamma must be positive"):
        gankit.train(_config(tmp_path, "vaegan", 1, gamma=0.0))
    with pytest.raises(ConfigError, match="likelihood"):
        gankit.train(_config(tmp_path, "vae", 1, likelihood="poisson"))
    cfg = _config(tmp_path, "vae", 1)
    cfg["generator"] = {"name": "dcgan", "width": 8}
    with pytest.raises(ConfigError, match="generator 'dcgan' only decodes; set generator.name=vae"):
        gankit.train(cfg)
    cfg = _config(tmp_path, "vae", 1)
    cfg["data"] = {"name": "ring8"}
    cfg["generator"] = {"name": "auto"}
    with pytest.raises(ConfigError, match="works on image data"):
        gankit.train(cfg)
    with pytest.raises(ConfigError, match="has no network role 'discriminator'"):
        gankit.api.make_config({"method": {"name": "vae"}, "discriminator": {"name": "dcgan"}})
    run = gankit.train(_config(tmp_path, "vae", 1))
    with pytest.raises(ConfigError, match="shape"):
        run.generate(2, given={"input": torch.zeros(2, 1, 8, 8)})
    cfg = _config(tmp_path, "vae", 1)
    cfg["generator"]["init_scale"] = 0.0
    with pytest.raises(ConfigError, match="init_scale must be positive"):
        gankit.train(cfg)
