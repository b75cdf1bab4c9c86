"""Maximum-likelihood training of sequence generators: it learns the oracle, samples draw from the
learned distribution, prefixes are continued, and `gankit sample` writes text."""
import math

import pytest
import torch

import gankit
from gankit.cli import main
from gankit.data.sequences import decode_all
from gankit.errors import ConfigError
from gankit.metrics.evaluate import evaluate_run
from gankit.nets.sequence import LSTMGenerator, TransformerGenerator, alive_mask

ORACLE = {"name": "oracle", "n_samples": 2000, "n_test": 500, "vocab": 60, "length": 10}


def _cfg(out, steps, generator=None, **data):
    return {"method": {"name": "mle"}, "data": {**ORACLE, **data}, "generator": generator or {"name": "auto"},
            "train": {"steps": steps, "batch_size": 64, "log_every": 20, "sample_every": 0, "checkpoint_every": 0,
                      "progress": "none", "seed": 1},
            "runtime": {"threads": 1}, "out": str(out)}


def test_mle_lowers_the_oracle_nll_and_the_held_out_nll(tmp_path):
    start = gankit.train(_cfg(tmp_path / "start", 1))
    trained = gankit.train(_cfg(tmp_path / "trained", 150))
    metrics = ["nll_oracle", "nll_test"]
    before, after = evaluate_run(start, metrics, n=1000), evaluate_run(trained, metrics, n=1000)
    assert before["nll_oracle"] > math.log(60) - 0.3       # a random generator: about uniform over the vocabulary
    assert after["nll_oracle"] < before["nll_oracle"] - 0.5
    assert after["nll_test"] < before["nll_test"] - 0.5
    # the oracle's own held-out samples: its entropy rate, the floor no generator goes below on average
    floor = -float(trained.data.log_prob(trained.data.x[:1000]).sum()) / (1000 * 10)
    assert floor < after["nll_oracle"]
    assert (tmp_path / "trained" / "samples" / "step_00000150.txt").is_file()


def test_sampling_draws_from_the_generator_distribution():
    torch.manual_seed(0)
    G = LSTMGenerator(vocab=6, length=3)
    z = torch.randn(20000, 3, generator=torch.Generator().manual_seed(1))
    x = G(z)
    p = torch.softmax(G.logits(x[:1])[0, 0].detach().double(), -1)   # the first step does not depend on x
    freq = torch.bincount(x[:, 0], minlength=6).double() / len(x)
    assert float((freq - p).abs().max()) < 4 * math.sqrt(0.25 / len(x))
    assert torch.equal(G(z[:50]), x[:50])                      # a function of its noise
    after_end = alive_mask(x) == 0
    assert bool((x[after_end] == 0).all())                     # after the first 0 only 0s


@pytest.mark.parametrize("net", [LSTMGenerator(7, 5), TransformerGenerator(7, 5, embed=16, heads=2, layers=1)])
def test_log_prob_is_the_teacher_forced_chain_rule(net):
    torch.manual_seed(0)
    x = torch.tensor([[3, 4, 0, 0, 0], [1, 2, 3, 4, 5]])
    logp, count = net.log_prob(x)
    assert count.tolist() == [3, 5]                            # the end (first 0) is counted
    with torch.no_grad():                                      # step by step from the start token
        for i, row in enumerate(x):
            want, prev, state = 0.0, net.start, None
            for t in range(int(count[i])):
                h, state = net._body(net.embed(torch.tensor([[prev]])), state)
                want += float(torch.log_softmax(net.head(h[0, -1]).double(), -1)[row[t]])
                prev = int(row[t])
            assert float(logp[i]) == pytest.approx(want, abs=1e-4)


def test_complete_keeps_a_prefix_and_continues_it():
    torch.manual_seed(0)
    G = TransformerGenerator(9, 6, embed=16, heads=2, layers=1)
    z = torch.randn(4, 6)
    prefix = torch.tensor([[3, 4, 0, 0, 0, 0], [5, 0, 0, 0, 0, 0], [0] * 6, [1, 2, 3, 4, 5, 6]])
    keep = torch.tensor([2, 1, 0, 6])
    out = G.complete(prefix, keep, z)
    assert out[0, :2].tolist() == [3, 4] and out[1, 0] == 5 and torch.equal(out[3], prefix[3])
    assert torch.equal(out[2], G(z[2:3])[0])                   # nothing kept: a plain draw with the same noise


def test_sample_command_writes_text_and_continues_a_prefix(tmp_path, capsys):
    path = tmp_path / "lines.txt"
    path.write_text("".join(f"the {a} {b} sat\n" for a in ("cat", "dog", "cow", "hen") for b in ("big", "old")))
    cfg = _cfg(tmp_path / "run", 40)
    cfg["data"] = {"name": "text", "path": str(path), "max_length": 4, "test_fraction": 0.25}
    cfg["train"]["batch_size"] = 4
    run = gankit.train(cfg)
    out = tmp_path / "s.txt"
    assert main(["sample", str(run.path), "--n", "5", "--out", str(out), "--prefix", "the cow",
                 "--prefix", "the"]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 10 and all(l.startswith("the cow") for l in lines[:5]) and all(
        l.startswith("the") for l in lines[5:])
    assert main(["sample", str(run.path), "--n", "3", "--out", str(tmp_path / "s.png")]) == 2
    assert "use a .txt" in capsys.readouterr().err
    given = run.generate(3, seed=0, given={"prefix": "the zebra"})          # unknown words become <unk>
    assert decode_all(given["x"], run.info.fields["x"].classes)[0].startswith("the <unk>")
    with pytest.raises(ConfigError, match="cannot be given 'y'"):
        run.generate(3, seed=0, given={"y": 1})
    with pytest.raises(ConfigError, match="at most 4"):
        run.generate(3, seed=0, given={"prefix": "the cat sat down now"})
