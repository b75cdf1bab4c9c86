"""soft_d: the generator's softmax outputs as the discriminator's input, and the lecture's warning
that a standard discriminator tells them from one-hot real words at once."""
import math
import statistics

import pytest
import torch

import gankit
from gankit.errors import ConfigError
from gankit.experiments import soft_onehot
from gankit.methods.soft_d import critic_accuracy, sequence_gradient_penalty, softness


def test_softness_of_one_hot_and_uniform_outputs():
    tokens = torch.tensor([[3, 2, 0, 0], [1, 1, 1, 1]])
    one_hot = torch.nn.functional.one_hot(tokens, 5).float()
    s = softness(one_hot, tokens)
    assert float(s["max_prob"]) == 1.0 and float(s["entropy"]) == 0.0
    uniform = torch.full((2, 4, 5), 0.2)
    s = softness(uniform, tokens)
    assert float(s["max_prob"]) == pytest.approx(0.2) and float(s["entropy"]) == pytest.approx(math.log(5))
    # only the counted positions (up to and including each end) enter the means: 3 + 4 of them
    mixed = one_hot.clone()
    mixed[1] = 0.2
    assert float(softness(mixed, tokens)["max_prob"]) == pytest.approx((3 * 1.0 + 4 * 0.2) / 7)


def test_critic_accuracy():
    real, fake = torch.tensor([2.0, 3.0, -1.0, 4.0]), torch.tensor([0.0, -2.0, 1.0, -3.0])
    assert float(critic_accuracy(real, fake, 0.0)) == pytest.approx(0.5 * (3 / 4 + 2 / 4))   # 0.0 is not below 0
    # at the midpoint of the means (2.0 and -1.0), 0.5
    assert float(critic_accuracy(real, fake)) == pytest.approx(0.5 * (3 / 4 + 3 / 4))
    assert float(critic_accuracy(real + 10, fake)) == 1.0


def test_the_penalty_takes_the_gradient_of_the_whole_sequence():
    """For a linear critic D(x) = <W, x> over (L, V) the gradient is W everywhere, so the penalty
    is weight * (||W||_F - 1)^2, not a norm per position."""
    torch.manual_seed(0)
    W = torch.randn(4, 6)
    D = lambda x: (x * W).sum((1, 2))   # noqa: E731
    real = torch.nn.functional.one_hot(torch.randint(0, 6, (8, 4)), 6).float()
    fake = torch.softmax(torch.randn(8, 4, 6), -1)
    gp = sequence_gradient_penalty(D, real, fake, 10.0)
    assert float(gp) == pytest.approx(10.0 * (float(W.norm()) - 1.0) ** 2, rel=1e-5)


@pytest.fixture(scope="module")
def measured():
    """The soft-onehot experiment at a small size: one MLE start, 40 steps of each critic."""
    torch.set_num_threads(1)
    return soft_onehot.run(steps=40, mle_steps=150, vocab=20, length=8, n_samples=1000, n_eval=500)


def test_a_standard_discriminator_tells_soft_from_one_hot_within_a_few_steps(measured):
    bce = measured["critics"]["bce"]
    assert bce["steps_to_99"] is not None and bce["steps_to_99"] <= 6       # measured: step 3
    assert bce["d_acc_last_tenth"] >= 0.99 and bce["d_loss"][-1] < 0.05        # D has won: its loss near 0
    assert bce["d_loss"][0] > 0.5                                              # it did not start there


def test_with_a_wasserstein_critic_training_goes_on(measured):
    bce, wgan = measured["critics"]["bce"], measured["critics"]["wgan_gp"]
    half = len(bce["g_grad"]) // 2
    # the won bce discriminator drives G with ever larger gradients (towards peaked outputs, not better text);
    # the penalised critic's gradient keeps its scale
    assert statistics.median(bce["g_grad"][half:]) > 3 * statistics.median(wgan["g_grad"][half:])
    assert max(wgan["g_grad"]) < 10
    assert wgan["d_loss"][-1] < 0                      # a positive distance estimate: the critic still ranks them
    # and G's model of the data suffers less: held-out NLL after the run
    start = measured["start"]["nll_test"]
    assert wgan["nll_test_after"] < bce["nll_test_after"] - 0.05, (start, wgan["nll_test_after"],
                                                                     bce["nll_test_after"])


def _cfg(out, steps, **method):
    return {"method": {"name": "soft_d", **method},
            "data": {"name": "oracle", "n_samples": 200, "n_test": 50, "vocab": 12, "length": 5},
            "generator": {"name": "auto"}, "discriminator": {"name": "auto", "filters": 8},
            "train": {"steps": steps, "batch_size": 16, "log_every": 1, "sample_every": 0, "checkpoint_every": 0,
                      "progress": "none", "seed": 0},
            "runtime": {"threads": 1}, "out": str(out)}


def test_logs_noise_option_and_errors(tmp_path):
    import json

    run = gankit.train(_cfg(tmp_path / "noisy", 2, noise=True, d_steps=2, mle_weight=0.5))
    row = json.loads((tmp_path / "noisy" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"d_acc", "w_dist", "gp", "g_grad", "max_prob", "entropy", "nll", "g_loss"} <= set(row)
    assert 0.0 < row["max_prob"] <= 1.0 and row["entropy"] >= 0.0
    assert run.generate(4, seed=0)["x"].shape == (4, 5)
    for bad, match in [({"tau": 0.0}, "tau"), ({"critic": "hinge"}, "critic"), ({"d_steps": 0}, "d_steps"),
                       ({"gp_weight": -1.0}, "gp_weight")]:
        with pytest.raises(ConfigError, match=match):
            gankit.train(_cfg(tmp_path / "bad", 1, **bad))


def test_experiment_command_writes_json_and_png(tmp_path, capsys):
    from gankit.cli import main

    assert main(["experiment", "soft-onehot", "--out", str(tmp_path), "--steps", "3", "--mle-steps", "5",
                 "--vocab", "8", "--length", "4"]) == 0
    assert (tmp_path / "soft_onehot.json").is_file() and (tmp_path / "soft_onehot.png").is_file()
    assert "| bce |" in capsys.readouterr().out
