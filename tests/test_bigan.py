"""BiGAN: the linear probe against scikit-learn's logistic regression, the losses each network
learns from, a short run on Fashion-MNIST that matches the encoder's codes to the prior and the
generator's pictures to the data, sampling of reconstructions, the metrics through evaluation,
and clear errors."""
import numpy as np
import pytest
import torch

import gankit
from gankit.errors import ConfigError
from gankit.metrics.evaluate import evaluate_run
from gankit.metrics.probe import fit_logistic, linear_probe

from test_contract import _tiny_domains


def _blobs(n, seed, d=6, k=3):
    g = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(0, 1.5, size=(k, d))
    y = g.integers(0, k, size=n)
    x = centres[y] + g.normal(0, 1.0, size=(n, d)) * np.array([1, 2, 0.5, 1, 3, 1])[:d] + 10.0
    return x, y


def test_the_linear_probe_is_scikit_learns_logistic_regression():
    sklearn = pytest.importorskip("sklearn.linear_model")
    x, y = _blobs(600, 0)
    xt, yt = _blobs(400, 1)
    l2 = 1e-2
    w, b, mean, std = fit_logistic(x, y, 3, l2=l2)
    z, zt = (x - mean.numpy()) / std.numpy(), (xt - mean.numpy()) / std.numpy()
    ref = sklearn.LogisticRegression(C=1.0 / (2 * l2 * len(x)), tol=1e-10, max_iter=10_000).fit(z, y)
    ours = torch.softmax(torch.as_tensor(zt) @ w + b, 1).numpy()
    np.testing.assert_allclose(ours, ref.predict_proba(zt), atol=2e-4)
    acc = linear_probe(x, y, xt, yt, l2=l2)
    assert acc == pytest.approx(float((ref.predict(zt) == yt).mean()), abs=1e-9)
    assert acc > 0.8
    noise = np.random.default_rng(2).normal(size=(400, 6))        # features that say nothing: about chance
    assert linear_probe(np.random.default_rng(3).normal(size=(600, 6)), y, noise, yt) < 0.5


def _tiny(tmp_path, steps=3, **over):
    a, _ = _tiny_domains(tmp_path)
    cfg = {"method": {"name": "bigan"}, "data": {"name": "array", "path": str(a), "test_fraction": 0.5},
           "generator": {"name": "auto", "width": 8}, "encoder": {"name": "auto", "width": 8},
           "discriminator": {"name": "auto", "width": 8, "hidden": 16},
           "train": {"steps": steps, "batch_size": 16, "log_every": 1, "sample_every": 0, "checkpoint_every": 0,
                     "progress": "none", "seed": 0},
           "runtime": {"threads": 1}, "out": str(tmp_path / "run")}
    for key, value in over.items():
        section, name = key.split("__")
        cfg[section] = {**cfg.get(section, {}), name: value}
    return cfg


def test_each_side_learns_from_its_own_pairs(tmp_path):
    """After the generator phase, the discriminator (held fixed) scores G's pairs higher and E's
    pairs lower than before: E and G minimise its loss with the labels swapped."""
    run = gankit.train(_tiny(tmp_path, steps=2, optim__lr_g=1e-3))
    m = run.method
    D, G, E = m.discriminator, m.generator, m.encoder
    for net in (D, G, E):
        net.eval()
    x = run.data.tensors()["x"][:64].float() / 127.5 - 1
    z = torch.randn(64, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before_fake, before_real = D(G(z), z).mean(), D(x, E(x)).mean()
    d_state = {k: v.clone() for k, v in D.state_dict().items()}
    for _ in range(5):
        D.requires_grad_(False)
        G.train(), E.train()
        m.generator_step([{"x": x}])
        G.eval(), E.eval()
    with torch.no_grad():
        after_fake, after_real = D(G(z), z).mean(), D(x, E(x)).mean()
    assert all(torch.equal(v, D.state_dict()[k]) for k, v in d_state.items())    # D untouched
    assert float(after_fake) > float(before_fake) and float(after_real) < float(before_real)


def test_sampling_reconstructs_given_pictures(tmp_path):
    run = gankit.train(_tiny(tmp_path))
    out = run.generate(10, seed=0)
    assert set(out) == {"x"} and out["x"].shape == (10, 1, 32, 32)
    pictures = run.data.tensors()["x"][:6].float() / 127.5 - 1
    a = run.generate(6, seed=1, given={"input": pictures})
    b = run.generate(6, seed=2, given={"input": pictures})
    assert set(a) == {"x", "input", "sample"}
    torch.testing.assert_close(a["x"], b["x"])            # a reconstruction is a function of its picture
    assert not torch.equal(a["sample"], b["sample"])     # the prior sample follows the seed
    torch.testing.assert_close(a["input"], run.data.tensors()["x"][:6].float() / 255)
    m = run.method
    with torch.no_grad():
        want = m.for_sampling("generator").eval()(m.for_sampling("encoder").eval()(pictures))
    torch.testing.assert_close(a["x"], want.add(1).div(2), atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError, match="'input' must have samples of shape"):
        run.generate(2, given={"input": torch.zeros(2, 3, 32, 32)})

    result = evaluate_run(run, metrics=["linear_probe:n_train=100", "class_kept"], n=100)
    assert {"linear_probe", "linear_probe_random", "linear_probe_pixels", "class_kept", "class_kept_input",
            "class_kept_agreement", "class_kept_chance", "reconstruction_l1", "same_class_l1",
            "other_l1"} <= set(result)
    assert all(np.isfinite(v) for v in result.values())


def test_bad_input_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="judges pictures alone.*discriminator.name=joint"):
        gankit.train({**_tiny(tmp_path), "discriminator": {"name": "dcgan", "width": 8}})
    with pytest.raises(ConfigError, match="encoder.name=encoder"):
        gankit.train({**_tiny(tmp_path), "encoder": {"name": "dcgan", "width": 8}})
    with pytest.raises(ConfigError, match="image"):
        gankit.train({"method": {"name": "bigan"}, "data": {"name": "ring8"}, "out": str(tmp_path / "run")})
    gan_cfg = {**{k: v for k, v in _tiny(tmp_path, method__name="gan").items() if k != "encoder"},
               "discriminator": {"name": "auto", "width": 8}}
    with pytest.raises(ConfigError, match="use it with method bigan"):
        gankit.train({**gan_cfg, "discriminator": {"name": "joint", "width": 8}})
    assert not (tmp_path / "run").exists()
    gan_run = gankit.train({**gan_cfg, "out": str(tmp_path / "gan")})
    with pytest.raises(ConfigError, match="method bigan"):
        evaluate_run(gan_run, metrics=["linear_probe"], n=50)


def _gaussian_kl(codes: torch.Tensor) -> float:
    """KL(N(mean, diag(var)) || N(0, I)) of a Gaussian fitted to codes (N, d), summed over d."""
    mean, var = codes.double().mean(0), codes.double().var(0)
    return float(0.5 * (var + mean.square() - 1 - var.log()).sum())


def test_a_short_run_matches_the_encoders_codes_and_the_generators_pictures_to_the_other_side(tmp_path):
    """The joint discriminator matches P(x, z) with Q(x, z), so each marginal too: after a short run
    the codes E(x) of held-out pictures are distributed nearly as the prior N(0, I) (the KL of a
    Gaussian fit falls by far), and G's pictures are about as bright as real ones."""
    from gankit.api import build_data
    from gankit.methods.bigan import encode_pictures

    def cfg(steps):
        return {"method": {"name": "bigan"}, "data": {"name": "fashion_mnist", "split": "test"},
                "generator": {"name": "auto", "width": 8, "z_dim": 16}, "encoder": {"name": "auto", "width": 8},
                "discriminator": {"name": "auto", "width": 8, "hidden": 64},
                "train": {"steps": steps, "batch_size": 64, "log_every": 20, "sample_every": 0,
                          "checkpoint_every": 0, "progress": "none", "seed": 0},
                "optim": {"lr_g": 1e-3, "lr_d": 2e-4}, "runtime": {"threads": 2},
                "out": str(tmp_path / f"run{steps}")}

    start, run = gankit.train(cfg(1)), gankit.train(cfg(120))
    held = build_data(gankit.api.make_config({"data": {"name": "fashion_mnist", "split": "train"}})).x[:2000]
    pictures = held.float() / 255
    kl = [_gaussian_kl(encode_pictures(r.method, r.method.for_sampling("encoder"), pictures)) for r in (start, run)]
    assert kl[1] < 0.25 * kl[0], kl
    bright = [float(r.sample(1000, seed=0).mean()) for r in (start, run)]
    real = float(pictures.mean())
    assert abs(bright[1] - real) < 0.5 * abs(bright[0] - real), (bright, real)
