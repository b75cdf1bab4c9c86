"""The Gumbel-softmax sequence GAN, and the lecture's claim that sampled tokens pass no gradient."""
import math

import pytest
import torch

import gankit
from conftest import mostly_a_lines, share_of_a
from gankit.errors import ConfigError
from gankit.experiments import argmax_gradient
from gankit.methods.gumbel import gumbel_noise, temperature
from gankit.nets.sequence import LSTMGenerator, SequenceCNN


def test_argmax_sampling_passes_exactly_zero_gradient_and_gumbel_softmax_does_not():
    res = argmax_gradient.run(vocab=12, length=6, n=16, directions=4, eps=(1e-2, 1e-4, 1e-6))
    assert res["grad_norm_argmax"] == 0.0 and not res["argmax_has_graph"]
    assert res["fd_max_abs_argmax"] == 0.0                    # moving theta does not move the score at all
    assert res["grad_norm_gumbel"] > 1e-6
    assert res["fd_rel_error_gumbel"] < 1e-5                  # autograd's gradient is the true derivative
    assert any(abs(v) > 1e-8 for v in res["autograd_directional"])


def test_experiment_command_writes_json_and_png(tmp_path):
    from gankit.cli import main

    assert main(["experiment", "argmax-gradient", "--out", str(tmp_path), "--vocab", "8", "--length", "4"]) == 0
    assert (tmp_path / "argmax_gradient.json").is_file() and (tmp_path / "argmax_gradient.png").is_file()


def test_relaxed_draws_are_gumbel_max_draws_and_straight_through_is_one_hot():
    torch.manual_seed(0)
    G = LSTMGenerator(7, 5).double()
    g = gumbel_noise(torch.rand(32, 5, 7, dtype=torch.float64))
    soft, tokens = G.relaxed(g, tau=0.5)
    assert torch.allclose(soft.sum(-1), torch.ones(32, 5, dtype=torch.float64))
    # step 1 does not depend on what came before: its argmax is the Gumbel-max draw of p(x_1)
    first = G.head(G._body(G.embed(torch.full((32, 1), 7)), None)[0][:, 0]) + g[:, 0]
    assert torch.equal(tokens[:, 0], torch.where(first.argmax(-1) == 0, 0, first.argmax(-1)))
    assert bool((tokens[alive_after(tokens)] == 0).all())
    hard, _ = G.relaxed(g, tau=0.5, hard=True)
    assert set(hard.detach().unique().tolist()) <= {0.0, 1.0}
    D = SequenceCNN(7, 5, embed=8, widths=[2], filters=4, dropout=0.0).double()
    (grad,) = torch.autograd.grad(D(hard).sum(), [G.head.weight])
    assert float(grad.abs().max()) > 0                         # straight-through: a gradient all the same
    tok = torch.randint(1, 7, (4, 5))
    torch.testing.assert_close(D(tok), D(torch.nn.functional.one_hot(tok, 7).double()))   # one-hot = tokens


def alive_after(tokens):
    """Positions after a sequence's end."""
    ended = torch.cumsum((tokens == 0).long(), 1) - (tokens == 0).long()
    return ended > 0


def test_temperature_anneals_geometrically():
    assert temperature(0, 1.0, 0.1, 100) == 1.0
    assert temperature(50, 1.0, 0.1, 100) == pytest.approx(math.sqrt(0.1))
    assert temperature(100, 1.0, 0.1, 100) == pytest.approx(0.1) == temperature(500, 1.0, 0.1, 100)


def _cfg(out, data, steps, **method):
    return {"method": {"name": "gumbel", "tau_start": 1.0, "tau_end": 0.3, "anneal_steps": 150, **method},
            "data": data, "generator": {"name": "auto"}, "discriminator": {"name": "auto", "filters": 16},
            "train": {"steps": steps, "batch_size": 32, "log_every": 50, "sample_every": 0, "checkpoint_every": 0,
                      "progress": "none", "seed": 0},
            "optim": {"lr_g": 1e-2, "lr_d": 1e-3}, "runtime": {"threads": 1}, "out": str(out)}


@pytest.mark.parametrize("hard", [False, True])
def test_the_adversarial_generator_moves_towards_the_data(tmp_path, hard):
    data = {"name": "text", "path": str(mostly_a_lines(tmp_path / "lines.txt")), "max_length": 6}

    before = share_of_a(gankit.train(_cfg(tmp_path / "start", data, 1, hard=hard)))
    after = share_of_a(gankit.train(_cfg(tmp_path / "run", data, 150, hard=hard)))
    assert before < 0.15 and after > before + 0.2              # 'a' is 80% of the real words


def test_initialised_from_an_mle_run_and_refused_on_other_data(tmp_path):
    oracle = {"name": "oracle", "n_samples": 300, "n_test": 50, "vocab": 20, "length": 6}
    mle_cfg = {k: v for k, v in _cfg(tmp_path / "mle", oracle, 30).items() if k != "discriminator"}
    mle = gankit.train({**mle_cfg, "method": {"name": "mle"}})
    from gankit.api import _method

    _, method = _method(gankit.api.make_config(_cfg(tmp_path / "gan", oracle, 1, init=str(mle.path))), mle.info)
    for k, v in mle.method.for_sampling().state_dict().items():     # the generator starts as the mle run's
        assert torch.equal(method.generator.state_dict()[k], v)
    other = {**oracle, "vocab": 21}
    with pytest.raises(ConfigError, match="another vocabulary"):
        gankit.train(_cfg(tmp_path / "bad", other, 1, init=str(mle.path)))
    with pytest.raises(ConfigError, match="cannot open the run"):
        gankit.train(_cfg(tmp_path / "bad2", oracle, 1, init=str(tmp_path / "nowhere")))
    with pytest.raises(ConfigError, match="tau_end"):
        gankit.train(_cfg(tmp_path / "bad3", oracle, 1, tau_end=2.0))


def test_pretraining_steps_are_maximum_likelihood(tmp_path):
    oracle = {"name": "oracle", "n_samples": 600, "n_test": 200, "vocab": 30, "length": 6}
    run = gankit.train(_cfg(tmp_path / "pre", oracle, 60, pretrain_steps=60))
    import json

    rows = [json.loads(l) for l in (tmp_path / "pre" / "metrics.jsonl").read_text().splitlines()]
    assert all("nll" in r and "g_loss" not in r for r in rows if "nll" in r or "g_loss" in r)
    start = gankit.train(_cfg(tmp_path / "pre0", oracle, 1, pretrain_steps=60))
    from gankit.metrics.evaluate import evaluate_run

    assert evaluate_run(run, ["nll_oracle"], n=500)["nll_oracle"] < \
        evaluate_run(start, ["nll_oracle"], n=500)["nll_oracle"] - 0.2
