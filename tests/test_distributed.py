"""Several processes (torchrun, gloo on the CPU) train the same model as one process with the
global batch; only rank 0 writes; a signal stops every process at the same step; a resumed
two-process run ends where the uninterrupted one ends; sharded evaluation equals the
single-process one."""
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import gankit
from gankit.errors import RunDirError
from gankit.metrics.evaluate import evaluate_run
from gankit.metrics.fid import feature_stats, fid, fid_from_stats, reduced_stats
from gankit.train import distributed

from conftest import toy_config

pytestmark = pytest.mark.skipif(not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
                                reason="needs torch.distributed with gloo")

STEPS, BATCH = 30, 16          # per-process batch 16 on 2 processes = one process with 32
EVAL_N = 1200                  # 3 sampling batches of 500: rank 0 gets one, rank 1 two (uneven shares)
METRICS = ["fid", "pr", "modes"]

# Runs gankit's command line in the directory BASE/rank<RANK>, so that anything a process writes
# through a relative path lands in its own folder; records the exit status of each process.
# With STOP_AT set, rank 1 alone receives SIGTERM right after that training step.
LAUNCHER = '''
import os, signal, sys
base, args = sys.argv[1], sys.argv[2:]
rank = os.environ["RANK"]
os.makedirs(os.path.join(base, "rank" + rank), exist_ok=True)
os.chdir(os.path.join(base, "rank" + rank))
stop_at = int(os.environ.get("STOP_AT", "0"))
if stop_at and rank == "1":
    from gankit.methods.gan import GAN
    real = GAN.train_step
    def train_step(self, batches, step):
        out = real(self, batches, step)
        if step + 1 == stop_at:
            os.kill(os.getpid(), signal.SIGTERM)
        return out
    GAN.train_step = train_step
from gankit.cli import main
code = main(args)
with open(os.path.join(base, "exit" + rank), "w") as f:
    f.write(str(code))
sys.exit(code)
'''


def _config(batch_size):
    cfg = toy_config(None, steps=STEPS, method__d_steps=2, method__penalty="gradient", train__batch_size=batch_size,
                     train__checkpoint_every=10, train__log_every=5, runtime__precision="fp32", eval__every=STEPS, eval__n=EVAL_N, eval__metrics=METRICS)
    cfg.pop("out")
    return cfg


def _torchrun(tmp_path, base, args, env=None, expect_ok=True):
    script = tmp_path / "launch.py"
    script.write_text(LAUNCHER)
    base.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(script), str(base), *args]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=full_env)
    if expect_ok:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    codes = {r: int((base / f"exit{r}").read_text()) for r in (0, 1) if (base / f"exit{r}").exists()}
    return proc, codes


def _weights(checkpoint):
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    return state, state["method"]["modules"]


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    """One uninterrupted two-process run, started by torchrun with a relative --out."""
    tmp = tmp_path_factory.mktemp("dist")
    (tmp / "cfg.yaml").write_text(yaml.safe_dump(_config(BATCH)))
    base = tmp / "a"
    proc, codes = _torchrun(tmp, base, ["train", str(tmp / "cfg.yaml"), "--out", "run"])
    return tmp, base, proc, codes


def test_two_processes_train_the_single_process_model(two_process_run, tmp_path):
    tmp, base, proc, codes = two_process_run
    assert codes == {0: 0, 1: 0}
    state, modules = _weights(base / "rank0" / "run" / "checkpoints" / f"step_{STEPS:08d}.pt")
    assert state["step"] == STEPS and state["data"]["world_size"] == 2
    cfg = _config(2 * BATCH)
    cfg["eval"]["every"] = 0                  # evaluation does not change the weights
    single = gankit.train({**cfg, "out": str(tmp_path / "single")})
    for name in ("generator", "discriminator"):
        ref = single.method.modules[name].state_dict()
        assert set(ref) == set(modules[name])
        for key, value in ref.items():
            err = (modules[name][key] - value).abs().max().item()
            assert err <= 1e-5 * max(value.abs().max().item(), 1e-3), f"{name}.{key}: {err}"
    # the logged losses are means over both processes, so they match the single process too
    rows2 = [json.loads(line) for line in (base / "rank0" / "run" / "metrics.jsonl").read_text().splitlines()]
    rows1 = [json.loads(line) for line in (tmp_path / "single" / "metrics.jsonl").read_text().splitlines()]
    losses2 = [(r["step"], r["d_loss"], r["g_loss"]) for r in rows2 if "d_loss" in r]
    losses1 = [(r["step"], r["d_loss"], r["g_loss"]) for r in rows1 if "d_loss" in r]
    assert [s for s, *_ in losses2] == [s for s, *_ in losses1] == list(range(5, STEPS + 1, 5))
    assert np.allclose([v for _, *v in losses2], [v for _, *v in losses1], rtol=1e-4, atol=1e-6)


def test_only_rank_zero_writes(two_process_run):
    tmp, base, proc, codes = two_process_run
    assert _files(base / "rank1") == []        # rank 1 wrote nothing, not even through a relative path
    written = _files(base / "rank0" / "run")
    for expected in ("config.yaml", "metrics.jsonl", "loss.png", "checkpoints/best.pt",
                     f"checkpoints/step_{STEPS:08d}.pt", f"samples/step_{STEPS:08d}.png"):
        assert expected in written
    assert proc.stdout.count("run finished at step") == 1   # printed by rank 0 only


def test_sharded_evaluation_equals_single_process(two_process_run):
    tmp, base, proc, codes = two_process_run
    rows = [json.loads(line) for line in (base / "rank0" / "run" / "metrics.jsonl").read_text().splitlines()]
    logged = next(r for r in rows if "eval_fid" in r)
    assert logged["step"] == STEPS
    run = gankit.load_run(base / "rank0" / "run")
    single = evaluate_run(run, METRICS, n=EVAL_N, split="test", seed=0)
    for key, value in single.items():
        assert logged[f"eval_{key}"] == pytest.approx(value, rel=1e-8, abs=1e-12, nan_ok=True), key


def test_signal_stops_every_process_at_one_step_and_resume_matches(two_process_run, tmp_path):
    tmp, base, proc, codes = two_process_run
    out = tmp_path / "b" / "run"
    proc, codes = _torchrun(tmp_path, tmp_path / "b", ["train", str(tmp / "cfg.yaml"), "--out", str(out)],
                            env={"STOP_AT": "13"}, expect_ok=False)
    # rank 1 alone got SIGTERM after step 13; both agree one step later and exit alike
    assert codes == {0: 143, 1: 143}, proc.stdout[-3000:] + proc.stderr[-3000:]
    steps = sorted(p.name for p in (out / "checkpoints").glob("step_*.pt"))
    assert steps == ["step_00000010.pt", "step_00000014.pt"]

    shutil.rmtree(tmp_path / "c", ignore_errors=True)
    proc, codes = _torchrun(tmp_path, tmp_path / "c", ["resume", str(out)])
    assert codes == {0: 0, 1: 0}
    _, resumed = _weights(out / "checkpoints" / f"step_{STEPS:08d}.pt")
    _, reference = _weights(base / "rank0" / "run" / "checkpoints" / f"step_{STEPS:08d}.pt")
    for name in ("generator", "discriminator"):
        for key, value in reference[name].items():
            assert torch.equal(resumed[name][key], value), f"{name}.{key} differs after resume"
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)


def test_time_limit_stops_every_process_at_one_step(two_process_run, tmp_path):
    tmp, base, proc, codes = two_process_run
    cfg = yaml.safe_load((tmp / "cfg.yaml").read_text())
    cfg["train"].update(steps=100000, time_limit=2.0, checkpoint_every=0)
    cfg["eval"]["every"] = 0
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "t" / "run"
    proc, codes = _torchrun(tmp_path, tmp_path / "t", ["train", str(tmp_path / "cfg.yaml"), "--out", str(out)])
    assert codes == {0: 0, 1: 0}
    (ckpt,) = (out / "checkpoints").glob("step_*.pt")   # rank 0 wrote the one step both stopped at
    step = int(ckpt.stem.split("_")[1])
    assert 0 < step < 100000 and f"run stopped at step {step} of 100000" in proc.stdout


def test_resume_with_another_number_of_processes_is_refused(two_process_run, tmp_path):
    tmp, base, proc, codes = two_process_run
    run_dir = tmp_path / "copy"
    shutil.copytree(base / "rank0" / "run", run_dir)
    (run_dir / "checkpoints" / f"step_{STEPS:08d}.pt").unlink()
    with pytest.raises(RunDirError, match="same number of processes"):
        gankit.resume(run_dir)


def _threads_as_processes(parts, fn):
    """Run fn(part, all_sum) in one thread per part, all_sum summing over the threads."""
    n = len(parts)
    barrier = threading.Barrier(n)
    slots, results = [None] * n, [None] * n

    def worker(i):
        calls = 0

        def all_sum(x):
            nonlocal calls
            slots[i] = (calls, np.asarray(x, dtype=np.float64))
            barrier.wait()
            total = sum(s[1] for s in slots)
            barrier.wait()
            calls += 1
            return total

        results[i] = fn(parts[i], all_sum)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_reduced_feature_stats_equal_the_one_process_stats():
    rng = np.random.default_rng(0)
    real = rng.normal(3.0, 1.0, size=(500, 16)).astype(np.float32)
    fake = (rng.normal(3.2, 1.1, size=(700, 16)) @ rng.normal(size=(16, 16)) * 0.3).astype(np.float32)
    parts = [fake[:300], fake[300:301], fake[301:], fake[:0]]   # uneven, one row, empty
    out = _threads_as_processes(parts, reduced_stats)
    mu, cov = feature_stats(fake)
    for mu_r, cov_r in out:
        np.testing.assert_allclose(mu_r, mu, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(cov_r, cov, rtol=1e-10, atol=1e-12)
    assert fid_from_stats(*feature_stats(real), *out[0]) == pytest.approx(fid(real, fake), rel=1e-10)


def test_single_process_helpers_are_no_ops():
    assert not distributed.is_initialized() and distributed.world_size() == 1 and distributed.is_main()
    t = torch.arange(4.0)
    distributed.all_reduce_mean_([t])
    assert torch.equal(t, torch.arange(4.0))
    torch.manual_seed(0)
    a = distributed.sharded_randn((3, 2))
    torch.manual_seed(0)
    assert torch.equal(a, torch.randn(3, 2))
    assert distributed.run_on_main(lambda: 7) == 7 and distributed.agree(False) is False


def test_a_conditional_method_on_two_processes_equals_one_process(tmp_path):
    """The conditional GAN (labels in every batch, mismatched labels drawn per sample, a
    gradient penalty at the real samples' labels) on two processes trains the model one
    process trains with the global batch."""
    def config(batch_size):
        cfg = toy_config(None, steps=12, train__batch_size=batch_size, train__checkpoint_every=12,
                         train__log_every=4, runtime__precision="fp32")
        cfg["method"] = {"name": "cgan", "design": "projection", "penalty": "gradient", "mismatch_weight": 0.5}
        cfg.pop("out")
        return cfg

    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config(BATCH)))
    base = tmp_path / "two"
    _, codes = _torchrun(tmp_path, base, ["train", str(tmp_path / "cfg.yaml"), "--out", "run"])
    assert codes == {0: 0, 1: 0}
    _, modules = _weights(base / "rank0" / "run" / "checkpoints" / "step_00000012.pt")
    single = gankit.train({**config(2 * BATCH), "out": str(tmp_path / "single")})
    for name in ("generator", "discriminator"):
        for key, value in single.method.modules[name].state_dict().items():
            err = (modules[name][key] - value).abs().max().item()
            assert err <= 1e-5 * max(value.abs().max().item(), 1e-3), f"{name}.{key}: {err}"
