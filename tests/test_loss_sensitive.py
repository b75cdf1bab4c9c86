"""Loss-sensitive GAN: the data-dependent margin, the loss on known values, learning."""
import pytest
import torch

import gankit
from gankit import ConfigError
from gankit.methods.loss_sensitive import loss_sensitive_d_loss, pair_distance
from gankit.objectives.penalties import lipschitz_margin_penalty

from conftest import ring_before_after, toy_config
from test_gan import modes_covered


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)   # small networks: one thread is faster, and fair to a shared machine
    yield


def _ls_config(out, steps=60, **over):
    cfg = toy_config(out, steps=steps, **over)
    cfg["method"] = {"name": "loss_sensitive", **cfg.get("method", {})}
    return cfg


def test_pair_distance_by_hand():
    real = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    fake = torch.tensor([[1.0, -1.0], [1.0, 1.5]])
    torch.testing.assert_close(pair_distance(real, fake, "l1"), torch.tensor([1.0, 0.25]))
    torch.testing.assert_close(pair_distance(real, fake, "l2"), torch.tensor([1.0, (0.125) ** 0.5]))
    # per-sample means: images of any size give distances on the same scale
    img_a, img_b = torch.zeros(3, 1, 8, 8), torch.full((3, 1, 8, 8), 0.5)
    torch.testing.assert_close(pair_distance(img_a, img_b, "l1"), torch.full((3,), 0.5))
    with pytest.raises(ValueError, match="pair up"):
        pair_distance(real, fake[:1])
    with pytest.raises(ValueError, match="unknown distance"):
        pair_distance(real, fake, "linf")


def test_loss_sensitive_loss_by_hand():
    l_real = torch.tensor([0.0, 1.0], requires_grad=True)
    l_fake = torch.tensor([0.5, 3.0], requires_grad=True)
    delta = torch.tensor([1.0, 0.25])
    # E[L(x)] = 0.5; slack: relu(1 + 0 - 0.5) = 0.5, relu(0.25 + 1 - 3) = 0 -> mean 0.25
    loss = loss_sensitive_d_loss(l_real, l_fake, delta, slack_weight=2.0)
    assert loss.item() == pytest.approx(0.5 + 2.0 * 0.25)
    loss.backward()
    # only the pair inside its margin is pushed apart; every real loss is pushed down
    torch.testing.assert_close(l_fake.grad, torch.tensor([-1.0, 0.0]))
    torch.testing.assert_close(l_real.grad, torch.tensor([1.5, 0.5]))
    # a generated sample close to its real partner needs a smaller gap than a far one
    near, far = torch.tensor([0.1]), torch.tensor([2.0])
    same = (torch.tensor([0.0]), torch.tensor([1.0]))
    assert loss_sensitive_d_loss(*same, near, 1.0).item() == 0.0
    assert loss_sensitive_d_loss(*same, far, 1.0).item() == pytest.approx(1.0)


def test_slack_term_is_the_lipschitz_margin_penalty_in_one_dimension():
    torch.manual_seed(0)
    real, fake = torch.randn(16, 1), torch.randn(16, 1)
    l_real, l_fake = torch.randn(16), torch.randn(16)
    ours = loss_sensitive_d_loss(l_real, l_fake, pair_distance(real, fake, "l1"), slack_weight=1.0) - l_real.mean()
    assert ours.item() == pytest.approx(lipschitz_margin_penalty(l_real, l_fake, real, fake, p=1).item(), abs=1e-6)


def test_bad_loss_sensitive_configs(tmp_path):
    with pytest.raises(ConfigError, match=r"method\.distance: 'l3' is not allowed; choose one of 'l1', 'l2'"):
        gankit.train(_ls_config(tmp_path / "a", method__distance="l3"))
    with pytest.raises(ConfigError, match="method.slack_weight must be positive"):
        gankit.train(_ls_config(tmp_path / "b", method__slack_weight=0.0))
    with pytest.raises(ConfigError, match="method.penalty_weight must not be negative"):
        gankit.train(_ls_config(tmp_path / "c", method__penalty_weight=-1.0))
    cfg = _ls_config(tmp_path / "d")
    cfg["discriminator"] = {"name": "autoencoder"}
    with pytest.raises(ConfigError, match="one output per sample.*an auto-encoder"):
        gankit.train(cfg)
    assert not any((tmp_path / n).exists() for n in "abcd")


@pytest.mark.parametrize("method", [{"distance": "l2"}, {"penalty_weight": 1.0, "d_steps": 2}])
def test_options_train_and_log(tmp_path, method):
    run = gankit.train(_ls_config(tmp_path / "r", steps=4, **{f"method__{k}": v for k, v in method.items()}))
    assert run.config.method == {"name": "loss_sensitive", "slack_weight": 100.0, "distance": "l1",
                                 "penalty_weight": 0.0, "d_steps": 1, **method}
    last = (tmp_path / "r" / "metrics.jsonl").read_text().strip().splitlines()[-1]
    for key in ("d_loss", "g_loss", "loss_real", "loss_fake", "delta"):
        assert f'"{key}"' in last


def test_loss_sensitive_learns_the_ring(tmp_path):
    # learning rates of 2e-3: at 1e-3 these 600 steps collapse onto one mode on seed 0 (6 and
    # 8 modes on seeds 3 and 1)
    cfg = toy_config(tmp_path / "run", steps=600, train__batch_size=256, train__checkpoint_every=0,
                     generator__hidden=128, discriminator__hidden=128, optim__lr_g=2e-3, optim__lr_d=2e-3,
                     optim__beta1=0.0)
    cfg["data"] = {"name": "ring8", "n_samples": 20000}
    # the L2 margin: with L1 the 600-step outcome depends on the seed far more (measured on seeds 0-3)
    cfg["method"] = {"name": "loss_sensitive", "slack_weight": 100.0, "distance": "l2"}
    (d0, s0), (d1, s1), run = ring_before_after(cfg, tmp_path)
    near0, near1 = s0["within_0.1"], s1["within_0.1"]
    assert d1 < 0.5 * d0, (d0, d1)
    assert near0 < 0.01 and near1 > 0.03, (near0, near1)
    assert s0["modes_captured"] == 0, s0
    # modes covered (tests/test_gan.py::modes_covered) after these 600 steps: 6 on seed 3 (the
    # test's), 8, 7, 8 and 3 on seeds 0, 1, 2 and 4. The bar is the fewest measured: this
    # method's coverage at this budget depends on the seed, and one or two modes fail it
    covered, counts = modes_covered(run)
    assert covered >= 3, counts
    # the learned loss is non-negative and rates real data lower than generated samples
    l_real, l_fake = run.method.loss(run.data.x[:2000]), run.method.loss(run.sample(2000, seed=1))
    assert l_real.min() >= 0 and l_real.mean() < l_fake.mean()
