"""gankit bench: FLOP counting, the plain baseline doing the same work, the command line."""
from __future__ import annotations

import json

import pytest
import torch

from gankit.bench import count_flops, main, matmul_peak, run_case

TINY = ["data.image_size=16", "generator.width=8", "discriminator.width=8", "generator.z_dim=16",
        "train.batch_size=8", "runtime.threads=1"]


def test_count_flops_of_a_linear_layer_forward_and_backward():
    lin = torch.nn.Linear(32, 16)
    x = torch.randn(10, 32)
    assert count_flops(lambda: lin(x)) == 2 * 10 * 32 * 16
    # backward adds the weight gradient (and none for the input, which needs no gradient)
    assert count_flops(lambda: lin(x).sum().backward()) == 2 * (2 * 10 * 32 * 16)


def test_matmul_peak_is_a_positive_rate():
    assert matmul_peak(torch.float32, size=128, repeats=2) > 0.01


@pytest.mark.parametrize("extra", [[], ["method.objective=wasserstein", "method.penalty=gradient",
                                        "method.d_steps=2", "discriminator.norm=layer"]])
def test_plain_loop_does_the_same_work_as_the_method(extra):
    over = TINY + extra
    fast = run_case("gankit", None, over, steps=2, warmup=1, blocks=1)
    plain = run_case("plain", None, over, steps=2, warmup=1, blocks=1)
    # same networks, same algorithm: the same matrix-product and convolution FLOPs per step
    assert fast["gflop_per_step"] == pytest.approx(plain["gflop_per_step"], rel=1e-6)
    assert fast["gflop_per_step"] > 0 and fast["steps_per_s"] > 0 and plain["steps_per_s"] > 0
    assert fast["images_per_s"] == pytest.approx(fast["steps_per_s"] * 8 * (2 if extra else 1))


def test_plain_loop_rejects_what_it_does_not_cover():
    with pytest.raises(ValueError, match="plain loop covers"):
        run_case("plain", None, TINY + ["method.objective=hinge"], steps=1, warmup=0, blocks=1)


def test_command_line_table_and_json(tmp_path, capsys, monkeypatch):
    from gankit.train import runtime

    monkeypatch.delenv(runtime.HUGE_PAGES, raising=False)
    monkeypatch.setattr(runtime, "_huge_pages_set_here", False)
    out = tmp_path / "bench.json"
    assert main(["--steps", "1", "--blocks", "1", "--warmup", "0", "--peak-size", "128", "--json", str(out),
                 *sum((["--set", o] for o in TINY), []), "--sweep", "train.batch_size=4"]) == 0
    text = capsys.readouterr().out
    assert "matrix-product peak" in text and "speed-up over the plain fp32 loop" in text
    rows = json.loads(out.read_text())["rows"]
    assert [r["case"] for r in rows] == ["gankit", "plain", "gankit"]
    # gankit's case runs with the huge pages its command chooses, the plain loop without
    assert "huge pages" in rows[0]["what"] and rows[0]["huge_pages"] and not rows[1]["huge_pages"]
    assert rows[2]["label"].endswith("train.batch_size=4")
    assert all(len(r["repeats_steps_per_s"]) == 1 for r in rows)


def test_repeats_report_each_case_s_fastest_run(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--steps", "1", "--blocks", "1", "--warmup", "0", "--peak-size", "128", "--json", str(out),
                 "--repeats", "2", *sum((["--set", o] for o in TINY), [])]) == 0
    assert "fastest of 2 runs" in capsys.readouterr().out
    for row in json.loads(out.read_text())["rows"]:
        assert len(row["repeats_steps_per_s"]) == 2
        assert row["steps_per_s"] == max(row["repeats_steps_per_s"])
    with pytest.raises(SystemExit, match="--repeats must be at least 1"):
        main(["--repeats", "0"])
    with pytest.raises(SystemExit, match="unknown case"):
        main(["--cases", "fast"])


def test_gankit_bench_passes_every_option_to_the_benchmark(capsys):
    from gankit.cli import main as cli_main

    with pytest.raises(SystemExit, match="--steps must be at least 1"):
        cli_main(["bench", "--steps", "0", "--json", "unused.json"])
