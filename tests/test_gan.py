"""The `gan` method: Algorithm 1 of Goodfellow et al. learns, with either generator objective."""
import pytest
import torch

import gankit
from gankit import NonFiniteLossError
from gankit.errors import ConfigError
from gankit.methods.gan import GAN
from gankit.metrics.modes import toy_mode_stats

from conftest import toy_config


def _mean_distance_to_modes(run, n=2000):
    x = run.sample(n, seed=0)
    return torch.cdist(x.double(), run.data.modes.double()).min(1).values.mean().item()


def modes_covered(run, n=2500, n_sigma=10.0, min_samples=5):
    """How many modes of the run's toy mixture are covered, and the per-mode counts: a sample
    is high quality when it lies within ``n_sigma`` standard deviations of its nearest mode
    (toy_mode_stats' rule), and a mode is covered when at least ``min_samples`` of ``n``
    samples are high-quality samples of it. The benchmark protocol's 3 sigma (0.03 on ring8)
    suits long runs; after the few hundred steps of a test only 1-4 % of the samples lie that
    close, so single stray samples decide its count. 10 sigma (0.1 on ring8: an eighth of the
    0.77 between neighbouring modes) and 5 samples count the modes the generator actually puts
    mass on."""
    x = run.sample(n, seed=0)
    counts = toy_mode_stats(x, run.data.modes, run.data.mode_stds, n_sigma=n_sigma)["counts"]
    return sum(c >= min_samples for c in counts), counts


@pytest.mark.parametrize("objective", ["nonsaturating", "minimax"])
def test_short_toy_run_moves_samples_to_the_data(tmp_path, objective):
    cfg = toy_config(tmp_path / "run", steps=1000, method__objective=objective, train__batch_size=256,
                     train__checkpoint_every=0, generator__hidden=128, discriminator__hidden=128,
                     optim__lr_g=1e-3, optim__lr_d=1e-3, optim__beta1=0.0)
    cfg["data"] = {"name": "ring8", "n_samples": 20000}
    # the untrained generator of the same seed and architecture is the starting point
    untrained = gankit.train({**cfg, "train": {**cfg["train"], "steps": 1}, "out": str(tmp_path / "start")})
    before = _mean_distance_to_modes(untrained)
    run = gankit.train(cfg)
    after = _mean_distance_to_modes(run)
    assert run.status == "finished" and run.step == 1000
    assert after < 0.5 * before, (before, after)
    # and onto every mode: both objectives cover all 8 after these 1,000 steps on seeds 3 (the
    # test's), 0 and 1 (at least 21 samples each); a margin of one mode
    covered, counts = modes_covered(run)
    assert covered >= 7, counts


def test_d_steps_takes_k_discriminator_steps_per_generator_step(tmp_path):
    run = gankit.train(toy_config(tmp_path / "run", steps=5, method__d_steps=3))
    assert isinstance(run.method, GAN) and run.method.real_batches_per_step == 3
    state_d = run.method.optimizers["discriminator"].state_dict()["state"]
    state_g = run.method.optimizers["generator"].state_dict()["state"]
    assert int(state_d[0]["step"]) == 15 and int(state_g[0]["step"]) == 5
    # 5 steps x 3 batches of 64 from the data order
    assert run.method.cfg.train.steps == 5


def test_nan_loss_stops_with_step_and_name_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real_step = GAN.train_step

    def poisoned(self, batches, step):
        out = real_step(self, batches, step)
        if step + 1 >= 27:
            out["g_loss"] = out["g_loss"] * float("nan")
        return out

    monkeypatch.setattr(GAN, "train_step", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"step 27: g_loss is nan.*step_00000020\.pt"):
        gankit.train(toy_config(tmp_path / "run", steps=60, train__checkpoint_every=20, train__log_every=10))
    ckpts = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert ckpts == ["step_00000020.pt"]


def test_linear_schedule_decays_to_zero(tmp_path):
    run = gankit.train(toy_config(tmp_path / "run", steps=40, optim__schedule="linear"))
    assert run.method.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_linear_decay_after_a_constant_start(tmp_path):
    """CycleGAN's schedule: the full rate for the first half, then linearly down to 0."""
    from gankit.config import build_config
    from gankit.methods.base import build_scheduler

    cfg = build_config({"train": {"steps": 100}, "optim": {"schedule": "linear", "decay_start": 0.5}})
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = build_scheduler(opt, cfg)
    rates = []
    for _ in range(100):
        opt.step()
        sched.step()
        rates.append(opt.param_groups[0]["lr"])
    assert rates[:50] == [1.0] * 50                       # after steps 1..50: the full rate
    assert rates[59] == pytest.approx(0.8) and rates[74] == pytest.approx(0.5) and rates[99] == 0.0
    with pytest.raises(ConfigError, match="decay_start"):
        build_config({"optim": {"decay_start": 1.0}})


def test_ema_generator_is_used_for_sampling(tmp_path):
    run = gankit.train(toy_config(tmp_path / "run", steps=30, train__ema_decay=0.9))
    assert run.method.ema is not None
    g, ema = run.method.generator, run.method.ema
    diff = sum((a - b).abs().sum().item() for a, b in zip(g.parameters(), ema.parameters()))
    assert diff > 0
    loaded = gankit.load_run(run.path)
    torch.testing.assert_close(loaded.sample(10, seed=1), run.sample(10, seed=1))


def test_ema_warms_up_then_uses_the_configured_decay(tmp_path):
    import torch

    run = gankit.train(toy_config(tmp_path / "run", steps=5, train__ema_decay=0.999))
    m = run.method
    assert m.ema_updates == 5
    assert m.ema_decay_now() == pytest.approx(6 / 15)          # (1 + t) / (10 + t) while below 0.999
    m.ema_updates = 10_000
    assert m.ema_decay_now() == 0.999
    # one update moves the average by (1 - decay) of the way to the generator
    m.ema_updates = 0
    before = [p.clone() for p in m.ema.parameters()]
    with torch.no_grad():
        for p in m.generator.parameters():
            p.add_(1.0)
    m.update_ema()
    for b, e, g in zip(before, m.ema.parameters(), m.generator.parameters()):
        torch.testing.assert_close(e, b + (1 - 0.1) * (g - b))
