"""SeqGAN: the policy gradient, the per-token rewards (Monte Carlo rollouts or a D of prefixes),
and short runs that move the generator towards the data."""

import pytest
import torch

import gankit
from conftest import mostly_a_lines, share_of_a
from gankit.errors import ConfigError
from gankit.methods.seqgan import cut_prefixes, policy_gradient_loss


def test_policy_gradient_is_reinforce():
    """For one categorical step the surrogate's gradient is -A (onehot(k) - softmax(theta)),
    the score-function estimator, and nothing flows through the advantage."""
    torch.manual_seed(0)
    theta = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    k = torch.tensor([0, 3, 6, 2, 2])
    adv = torch.tensor([[0.5], [-1.0], [2.0], [0.0], [0.25]], dtype=torch.float64, requires_grad=True)
    logp = torch.log_softmax(theta, -1).gather(1, k.unsqueeze(1))       # (N, 1): one token per sequence
    mask = torch.ones(5, 1, dtype=torch.bool)
    loss = policy_gradient_loss(logp, adv, mask)
    loss.backward()
    p = torch.softmax(theta.detach(), -1)
    want = -adv.detach() * (torch.nn.functional.one_hot(k, 7).double() - p) / 5
    torch.testing.assert_close(theta.grad, want)
    assert adv.grad is None or float(adv.grad.abs().max()) == 0.0
    # positions outside the mask count for nothing
    masked = policy_gradient_loss(torch.ones(2, 3, dtype=torch.float64), torch.ones(2, 3, dtype=torch.float64),
                                  torch.tensor([[True, False, False], [True, True, False]]))
    assert float(masked) == -1.0


def test_cut_prefixes():
    x = torch.tensor([[5, 6, 7, 8], [1, 2, 0, 0]])
    assert torch.equal(cut_prefixes(x, torch.tensor([2, 4])), torch.tensor([[5, 6, 0, 0], [1, 2, 0, 0]]))
    assert torch.equal(cut_prefixes(x, torch.tensor([0, 1])), torch.tensor([[0, 0, 0, 0], [1, 0, 0, 0]]))


def _cfg(out, data, steps, **method):
    return {"method": {"name": "seqgan", "rollouts": 4, "d_steps": 1, **method},
            "data": data, "generator": {"name": "auto"}, "discriminator": {"name": "auto", "filters": 16},
            "train": {"steps": steps, "batch_size": 32, "log_every": 25, "sample_every": 0, "checkpoint_every": 0,
                      "progress": "none", "seed": 0},
            "optim": {"lr_g": 1e-2, "lr_d": 1e-3}, "runtime": {"threads": 1}, "out": str(out)}


ORACLE = {"name": "oracle", "n_samples": 300, "n_test": 50, "vocab": 20, "length": 6}


@pytest.mark.parametrize("reward", ["rollout", "prefix"])
def test_token_rewards(tmp_path, reward):
    run = gankit.train(_cfg(tmp_path / reward, ORACLE, 3, reward=reward))
    m = run.method
    m.discriminator.eval()   # no dropout: D is a fixed function here
    torch.manual_seed(1)
    x = m.draw(12)
    x[0, 2:] = 0                                    # a sequence that ends at its third token
    q = m.token_rewards(x)
    assert q.shape == (12, 6) and bool(((q >= 0) & (q <= 1)).all())
    with torch.no_grad():
        whole = torch.sigmoid(m.discriminator(x))
        torch.testing.assert_close(q[:, -1], whole)                     # Q_L: D's probability of x itself
        if reward == "prefix":
            for t in range(1, 7):
                torch.testing.assert_close(q[:, t - 1], torch.sigmoid(m.discriminator(cut_prefixes(
                    x, torch.full((12,), t)))))
        else:
            # once a sequence has ended every completion is the sequence itself
            torch.testing.assert_close(q[0, 2:], whole[0].expand(4))


@pytest.mark.parametrize("reward", ["rollout", "prefix"])
def test_the_policy_gradient_moves_the_generator_towards_the_data(tmp_path, reward):
    data = {"name": "text", "path": str(mostly_a_lines(tmp_path / "lines.txt")), "max_length": 6}

    before = share_of_a(gankit.train(_cfg(tmp_path / "start", data, 1, reward=reward)))
    after = share_of_a(gankit.train(_cfg(tmp_path / "run", data, 150, reward=reward)))
    assert before < 0.15 and after > before + 0.2              # 'a' is 80% of the real words


def test_baseline_is_kept_in_the_checkpoint(tmp_path):
    run = gankit.train(_cfg(tmp_path / "b", ORACLE, 4))
    state = run.method.extra_state()
    assert state["baseline_updates"] == 4 and 0.0 < float(state["baseline"]) < 1.0
    again = gankit.load_run(tmp_path / "b")
    assert float(again.method.b) == float(state["baseline"]) and again.method.b_updates == 4


def test_pretraining_and_errors(tmp_path):
    run = gankit.train(_cfg(tmp_path / "pre", ORACLE, 5, pretrain_steps=5))
    import json

    rows = [json.loads(line) for line in (tmp_path / "pre" / "metrics.jsonl").read_text().splitlines()]
    assert rows and all("nll" in r and "pg_loss" not in r for r in rows)
    assert run.method.b_updates == 0
    for bad, match in [({"rollouts": 0}, "rollouts"), ({"baseline": 1.0}, "baseline"),
                       ({"pretrain_steps": -1}, "pretrain_steps"), ({"reward": "oracle"}, "reward")]:
        with pytest.raises(ConfigError, match=match):
            gankit.train(_cfg(tmp_path / "bad", ORACLE, 1, **bad))
    with pytest.raises(ConfigError, match="token"):
        gankit.train({**_cfg(tmp_path / "img", ORACLE, 1), "data": {"name": "ring8"}})


def test_starts_from_an_mle_run(tmp_path):
    mle_cfg = {k: v for k, v in _cfg(tmp_path / "mle", ORACLE, 20).items() if k != "discriminator"}
    mle = gankit.train({**mle_cfg, "method": {"name": "mle"}})
    from gankit.api import _method, make_config

    _, method = _method(make_config(_cfg(tmp_path / "gan", ORACLE, 1, init=str(mle.path))), mle.info)
    for k, v in mle.method.for_sampling().state_dict().items():
        assert torch.equal(method.generator.state_dict()[k], v)
    with pytest.raises(ConfigError, match="another vocabulary"):
        gankit.train(_cfg(tmp_path / "bad", {**ORACLE, "vocab": 21}, 1, init=str(mle.path)))
