"""Stopping by signal and resuming gives bit-identical weights to an uninterrupted run (CPU, same seed)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import gankit
from gankit.methods.gan import GAN
from gankit.train.checkpoint import CheckpointManager

from conftest import toy_config


def _assert_same_state(a, b):
    for name in a.method.modules:
        sa, sb = a.method.modules[name].state_dict(), b.method.modules[name].state_dict()
        for key in sa:
            assert torch.equal(sa[key], sb[key]), f"{name}.{key} differs"
    for name in a.method.optimizers:
        oa = a.method.optimizers[name].state_dict()["state"]
        ob = b.method.optimizers[name].state_dict()["state"]
        for idx in oa:
            for key in oa[idx]:
                assert torch.equal(oa[idx][key], ob[idx][key]), f"{name} optimiser {idx}.{key} differs"


def _interrupt_at(monkeypatch, at_step, sig=signal.SIGINT):
    real = GAN.train_step

    def interrupting(self, batches, step):
        out = real(self, batches, step)
        if step + 1 == at_step:
            os.kill(os.getpid(), sig)
        return out

    monkeypatch.setattr(GAN, "train_step", interrupting)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_then_resume_is_bit_identical(tmp_path, monkeypatch, sig):
    reference = gankit.train(toy_config(tmp_path / "a", steps=60, optim__schedule="linear", method__d_steps=2))
    _interrupt_at(monkeypatch, 23, sig)
    stopped = gankit.train(toy_config(tmp_path / "b", steps=60, optim__schedule="linear", method__d_steps=2))
    assert stopped.status == "interrupted" and stopped.step == 23 and stopped.stop_signal == sig
    assert CheckpointManager(tmp_path / "b" / "checkpoints").latest()["step"] == 23
    monkeypatch.undo()
    resumed = gankit.resume(tmp_path / "b")
    assert resumed.status == "finished" and resumed.step == 60
    _assert_same_state(reference, resumed)
    # metrics were not duplicated by the restart
    steps = [int(line.split('"step": ')[1].split(",")[0])
             for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))


def test_image_run_with_batchnorm_ema_and_bf16_resumes_bit_identically(tmp_path, monkeypatch, image_npz):
    def cfg(out):
        return {"data": {"name": "array", "path": str(image_npz)},
                "generator": {"name": "dcgan", "width": 8, "z_dim": 16},
                "discriminator": {"name": "dcgan", "width": 8},
                "train": {"steps": 12, "batch_size": 16, "log_every": 3, "sample_every": 5,
                          "checkpoint_every": 4, "progress": "none", "ema_decay": 0.9},
                "runtime": {"precision": "bf16", "channels_last": "on"}, "out": str(out)}

    reference = gankit.train(cfg(tmp_path / "a"))
    _interrupt_at(monkeypatch, 7)
    stopped = gankit.train(cfg(tmp_path / "b"))
    assert stopped.step == 7
    monkeypatch.undo()
    resumed = gankit.resume(tmp_path / "b")
    _assert_same_state(reference, resumed)
    for pa, pb in zip(reference.method.ema.state_dict().values(), resumed.method.ema.state_dict().values()):
        assert torch.equal(pa, pb)


def test_resume_further_with_more_steps(tmp_path):
    run = gankit.train(toy_config(tmp_path / "r", steps=20))
    with pytest.raises(gankit.RunDirError, match="already finished at step 20"):
        gankit.resume(run.path)
    more = gankit.resume(run.path, steps=30)
    assert more.step == 30
    assert gankit.load_run(run.path).config.train.steps == 30


def _cli(*args, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "gankit", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, **kw)


def test_sigterm_to_the_command_line_then_resume_matches(tmp_path):
    """A real process, a real SIGTERM at an arbitrary moment, and `gankit resume`."""
    common = ["--data", "ring8", "--steps", "3000", "--seed", "1", "--set", "train.progress=lines",
              "train.log_every=100", "train.checkpoint_every=1000", "data.n_samples=5000",
              "generator.hidden=32", "discriminator.hidden=32"]
    proc = _cli("train", *common, "--out", str(tmp_path / "b"))
    deadline = time.time() + 120
    for line in proc.stdout:                 # wait until training is under way
        if line.startswith("step 300/") or time.time() > deadline:
            break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, out
    assert "SIGTERM received" in out and "gankit resume" in out
    stopped_at = CheckpointManager(tmp_path / "b" / "checkpoints").latest()["step"]
    assert 300 <= stopped_at < 3000
    done = _cli("resume", str(tmp_path / "b"))
    assert done.wait(timeout=300) == 0, done.stdout.read()
    ref = _cli("train", *common, "--out", str(tmp_path / "a"))
    assert ref.wait(timeout=300) == 0, ref.stdout.read()
    a = CheckpointManager(tmp_path / "a" / "checkpoints").latest()
    b = CheckpointManager(tmp_path / "b" / "checkpoints").latest()
    assert a["step"] == b["step"] == 3000
    for key, value in a["method"]["modules"]["generator"].items():
        assert torch.equal(value, b["method"]["modules"]["generator"][key]), key


def test_full_disk_during_training_keeps_the_last_checkpoint_and_resume_works(tmp_path, monkeypatch):
    from gankit import CheckpointError
    from gankit.train import checkpoint as ck

    real_save = torch.save
    calls = {"n": 0}

    def save_then_fill_disk(obj, f):
        calls["n"] += 1
        if calls["n"] == 2:
            f.write(b"half a checkpoint")
            raise OSError(28, "No space left on device")
        return real_save(obj, f)

    monkeypatch.setattr(ck.torch, "save", save_then_fill_disk)
    with pytest.raises(CheckpointError, match="disk is full"):
        gankit.train(toy_config(tmp_path / "b", steps=60, train__checkpoint_every=20))
    monkeypatch.undo()
    assert [p.name for p in (tmp_path / "b" / "checkpoints").iterdir()] == ["step_00000020.pt"]
    resumed = gankit.resume(tmp_path / "b")
    reference = gankit.train(toy_config(tmp_path / "a", steps=60, train__checkpoint_every=20))
    assert resumed.step == 60
    _assert_same_state(reference, resumed)


def test_time_limit_stops_with_a_checkpoint_and_resume_continues_exactly(tmp_path):
    """train.time_limit ends the call at the first step past the limit, writes that step's
    checkpoint and reports it; resume trains for another limit, and the weights equal an
    uninterrupted run to the same step."""
    cfg = toy_config(tmp_path / "r", steps=100000, train__time_limit=0.4, train__checkpoint_every=0)
    run = gankit.train(cfg)
    first = run.step
    assert run.status == "time_limit" and 0 < first < 100000
    assert (run.path / "checkpoints" / f"step_{first:08d}.pt").is_file()
    more = gankit.resume(run.path)
    assert more.status == "time_limit" and more.step > first
    ref = gankit.train(toy_config(tmp_path / "ref", steps=more.step, train__checkpoint_every=0))
    assert ref.status == "finished"
    _assert_same_state(gankit.load_run(run.path), ref)


def test_time_limit_on_the_command_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gankit", "train", "--data", "ring8", "--out", str(tmp_path / "cli"),
                           "--set", "train.steps=100000", "--set", "train.time_limit=0.3",
                           "--set", "train.progress=none"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "time limit of 0.3 s reached: run stopped at step" in proc.stdout
    for bad in ("-1", ".nan"):  # YAML's NaN
        proc = subprocess.run([sys.executable, "-m", "gankit", "train", "--data", "ring8", "--out",
                               str(tmp_path / "bad"), "--set", f"train.time_limit={bad}"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and "train.time_limit must not be negative" in proc.stderr, proc.stderr


def test_a_run_written_before_a_key_existed_still_loads_and_resumes(tmp_path):
    """Keys added to gankit later (here train.time_limit and method.unroll) are absent from an
    older run's config.yaml and checkpoint; their defaults fill in, and nothing counts as changed."""
    import yaml

    run = gankit.train(toy_config(tmp_path / "r", steps=10, train__checkpoint_every=5))
    cfg = yaml.safe_load((run.path / "config.yaml").read_text())
    del cfg["train"]["time_limit"], cfg["method"]["unroll"]
    (run.path / "config.yaml").write_text(yaml.safe_dump(cfg))
    for ckpt in (run.path / "checkpoints").glob("step_*.pt"):
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        del state["config"]["train"]["time_limit"], state["config"]["method"]["unroll"]
        torch.save(state, ckpt)
    assert gankit.load_run(run.path).step == 10
    assert gankit.resume(run.path, steps=12).step == 12
