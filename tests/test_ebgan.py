"""Energy-based GAN: auto-encoder discriminators, the margin loss, the pull-away term."""
import math
import os
import signal

import pytest
import torch

import gankit
from gankit import ConfigError
from gankit.methods.ebgan import EBGAN, ebgan_d_loss, ebgan_g_loss, pull_away_term
from gankit.nets.autoencoder import ConvAutoEncoder, MLPAutoEncoder, autoencoder, is_autoencoder
from gankit.registries import DISCRIMINATORS, load_all

from conftest import ring_before_after, toy_config
from test_gan import modes_covered
from test_resume import _assert_same_state


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)   # small networks: one thread is faster, and fair to a shared machine
    yield


def _ebgan_config(out, steps=60, **over):
    cfg = toy_config(out, steps=steps, **over)
    cfg["method"] = {"name": "ebgan", **cfg.get("method", {})}
    cfg["discriminator"] = {"name": "autoencoder", "hidden": 32, "layers": 2, "code": 8}
    return cfg


# ----------------------------------------------------------------------------- closed forms

def test_pull_away_term_closed_form():
    assert pull_away_term(torch.eye(5)).item() == pytest.approx(0.0, abs=1e-7)        # orthogonal
    same = torch.randn(1, 6).repeat(7, 1)
    assert pull_away_term(same).item() == pytest.approx(1.0, abs=1e-6)               # collapsed
    scaled = same * torch.arange(1.0, 8.0)[:, None]                                  # cosine: scale-free
    assert pull_away_term(scaled).item() == pytest.approx(1.0, abs=1e-6)
    sixty = torch.tensor([[1.0, 0.0], [0.5, math.sqrt(3) / 2]])                      # cos 60 = 1/2
    assert pull_away_term(sixty).item() == pytest.approx(0.25, abs=1e-6)
    assert pull_away_term(torch.randn(1, 3)).item() == 0.0                           # no pair
    # a loop over the ordered pairs i != j agrees
    s = torch.randn(6, 4, dtype=torch.float64)
    cos = torch.nn.functional.cosine_similarity
    brute = sum(cos(s[i], s[j], dim=0) ** 2 for i in range(6) for j in range(6) if i != j) / 30
    assert pull_away_term(s).item() == pytest.approx(brute.item(), rel=1e-5)


def test_ebgan_losses_on_known_energies():
    e_real = torch.tensor([0.1, 0.3])
    e_fake = torch.tensor([0.5, 2.0], requires_grad=True)
    # E[D(x)] = 0.2; hinge: max(0, 1 - 0.5) = 0.5 and max(0, 1 - 2) = 0 -> mean 0.25
    loss = ebgan_d_loss(e_real, e_fake, margin=1.0)
    assert loss.item() == pytest.approx(0.45)
    loss.backward()
    # a generated sample above the margin no longer pushes the discriminator
    torch.testing.assert_close(e_fake.grad, torch.tensor([-0.5, 0.0]))
    assert ebgan_d_loss(e_real, torch.tensor([3.0, 4.0]), margin=2.0).item() == pytest.approx(0.2)
    # generator: mean energy + pt_weight * PT; orthogonal codes add nothing, identical ones pt_weight
    e_gen = torch.tensor([0.2, 0.4])
    assert ebgan_g_loss(e_gen, torch.eye(2), 0.5).item() == pytest.approx(0.3)
    assert ebgan_g_loss(e_gen, torch.ones(2, 3), 0.5).item() == pytest.approx(0.8)
    assert ebgan_g_loss(e_gen, torch.ones(2, 3), 0.0).item() == pytest.approx(0.3)


# ----------------------------------------------------------------------------- networks

@pytest.mark.parametrize("shape", [(2,), (1, 28, 28), (3, 32, 32), (3, 64, 64)])
def test_autoencoder_shapes_and_energy(shape):
    ae = autoencoder(shape, code=5, hidden=16, width=4)
    assert isinstance(ae, ConvAutoEncoder if len(shape) == 3 else MLPAutoEncoder) and is_autoencoder(ae)
    x = torch.rand(3, *shape) * 2 - 1
    recon = ae(x)
    assert recon.shape == x.shape and ae.encode(x).shape == (3, 5)
    if len(shape) == 3:
        assert recon.abs().max() <= 1
    energy = ae.energy(x)
    assert energy.shape == (3,) and energy.dtype == torch.float32
    torch.testing.assert_close(energy, ((recon - x) ** 2).flatten(1).mean(1))
    torch.testing.assert_close(ae.decode(ae.encode(x)), recon)


def test_autoencoder_is_registered_and_fits_flattened_images():
    load_all()
    assert "autoencoder" in DISCRIMINATORS.names()
    ae = DISCRIMINATORS.build("autoencoder", {"kind": "mlp", "hidden": 8, "code": 3}, (1, 8, 8))
    assert isinstance(ae, MLPAutoEncoder) and ae(torch.randn(2, 1, 8, 8)).shape == (2, 1, 8, 8)
    with_bn = autoencoder((1, 16, 16), width=4, batch_norm=True)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in with_bn.modules())
    with pytest.raises(ConfigError, match="code must be positive"):
        autoencoder((2,), code=0)
    with pytest.raises(ConfigError, match="square images"):
        autoencoder((1, 28, 32))


# ----------------------------------------------------------------------------- the method

def test_auto_discriminator_is_the_autoencoder(tmp_path):
    cfg = _ebgan_config(tmp_path / "auto", steps=3)
    cfg["discriminator"] = {"name": "auto", "hidden": 16, "code": 4}
    run = gankit.train(cfg)
    assert run.config.discriminator["name"] == "autoencoder" and run.config.discriminator["code"] == 4
    assert isinstance(run.discriminator, MLPAutoEncoder)
    assert "name: autoencoder" in (tmp_path / "auto" / "config.yaml").read_text()
    # other methods keep their usual auto networks
    assert gankit.train(toy_config(tmp_path / "gan", steps=1) | {"discriminator": {"name": "auto"}}
                        ).config.discriminator["name"] == "mlp"


def test_bad_ebgan_configs(tmp_path):
    cfg = _ebgan_config(tmp_path / "mlp", steps=2)
    cfg["discriminator"] = {"name": "mlp"}
    with pytest.raises(ConfigError, match="auto-encoder discriminator.*got discriminator 'mlp'; use "
                                          "discriminator.name=autoencoder"):
        gankit.train(cfg)
    with pytest.raises(ConfigError, match="method.margin must be positive.*got -1.0"):
        gankit.train(_ebgan_config(tmp_path / "neg", method__margin=-1.0))
    with pytest.raises(ConfigError, match="method.pt_weight must not be negative"):
        gankit.train(_ebgan_config(tmp_path / "pt", method__pt_weight=-0.1))
    with pytest.raises(ConfigError, match="method.d_steps must be at least 1"):
        gankit.train(_ebgan_config(tmp_path / "k", method__d_steps=0))
    gan_with_ae = toy_config(tmp_path / "gan")
    gan_with_ae["discriminator"] = {"name": "autoencoder"}
    with pytest.raises(ConfigError, match="is an auto-encoder.*method.name=ebgan"):
        gankit.train(gan_with_ae)
    assert not any((tmp_path / name).exists() for name in ("mlp", "neg", "pt", "k", "gan"))


def test_ebgan_step_logs_energies_and_trains_d_steps(tmp_path):
    run = gankit.train(_ebgan_config(tmp_path / "r", steps=4, method__d_steps=2))
    assert run.method.real_batches_per_step == 2
    last = (tmp_path / "r" / "metrics.jsonl").read_text().strip().splitlines()[-1]
    for key in ("d_loss", "g_loss", "energy_real", "energy_fake", "pull_away"):
        assert f'"{key}"' in last


def test_resume_is_exact(tmp_path, monkeypatch):
    reference = gankit.train(_ebgan_config(tmp_path / "a", steps=30))
    real_step = EBGAN.train_step

    def interrupting(self, batches, step):
        out = real_step(self, batches, step)
        if step + 1 == 13:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(EBGAN, "train_step", interrupting)
    assert gankit.train(_ebgan_config(tmp_path / "b", steps=30)).step == 13
    monkeypatch.undo()
    _assert_same_state(reference, gankit.resume(tmp_path / "b"))


def test_ebgan_learns_the_ring(tmp_path):
    cfg = toy_config(tmp_path / "run", steps=500, train__batch_size=256, train__checkpoint_every=0,
                     generator__hidden=128, optim__lr_g=1e-3, optim__lr_d=1e-3, optim__beta1=0.0)
    cfg["data"] = {"name": "ring8", "n_samples": 20000}
    cfg["method"] = {"name": "ebgan", "margin": 1.0, "pt_weight": 0.1}
    cfg["discriminator"] = {"name": "autoencoder", "hidden": 128, "layers": 2, "code": 32}
    (d0, s0), (d1, s1), run = ring_before_after(cfg, tmp_path)
    assert d1 < 0.4 * d0, (d0, d1)
    assert s0["modes_captured"] == 0, s0
    # these 500 steps cover 6, 6 and 5 of the 8 modes on seeds 3 (the test's), 0 and 1
    # (tests/test_gan.py::modes_covered): a margin of one mode below the fewest
    covered, counts = modes_covered(run)
    assert covered >= 4, counts
    # the auto-encoder tells data from generated samples: low energy on real data
    x_real = run.data.x[:2000]
    e_real, e_fake = run.discriminator.energy(x_real), run.discriminator.energy(run.sample(2000, seed=1))
    assert e_real.mean() < e_fake.mean()
