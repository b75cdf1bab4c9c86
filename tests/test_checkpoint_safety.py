"""Opening a run never runs code from it, and no checkpoint (nor best.pt) ever holds a
non-finite state, whatever the log, checkpoint and evaluation intervals."""
import os
import random
import shlex
import subprocess
import sys

import numpy as np
import pytest
import torch

import gankit
from gankit import CheckpointError, NonFiniteLossError
from gankit.cli import main
from gankit.methods.gan import GAN
from gankit.train import checkpoint as ck
from gankit.train.checkpoint import CheckpointManager, RefusedCheckpointError

from conftest import toy_config


class _Planted:
    """Pickles as a call that runs a shell command creating ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(self.marker)}",)


def _unsafe_load(path):
    """What gankit did before: a full unpickle (only for the tests' own files)."""
    return torch.load(path, map_location="cpu", weights_only=False)


@pytest.fixture
def trained(tmp_path):
    """A ring8 run trained for 4 steps, with checkpoints at steps 2 and 4."""
    return gankit.train(toy_config(tmp_path / "run", steps=4, train__checkpoint_every=2))


def _plant(path, marker):
    state = CheckpointManager.load(path)
    state["info"]["note"] = _Planted(marker)
    torch.save(state, path)


# ------------------------------------------------------------------ opening a run runs nothing

def test_the_planted_object_does_run_when_unpickled_in_full(tmp_path):
    """Control: the payload used below really runs its command under a full unpickle."""
    path, marker = tmp_path / "evil.pt", tmp_path / "ran"
    torch.save({"format": 1, "x": _Planted(marker)}, path)
    _unsafe_load(path)
    assert marker.exists()


def test_gankit_sample_refuses_a_planted_checkpoint_and_runs_nothing(trained, tmp_path):
    marker = tmp_path / "ran"
    newest = trained.path / "checkpoints" / "step_00000004.pt"
    _plant(newest, marker)
    out = tmp_path / "x.png"
    proc = subprocess.run([sys.executable, "-m", "gankit", "sample", str(trained.path), "--n", "4", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert not marker.exists()
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr
    assert "gankit sample: error:" in err and str(newest) in err
    assert "holds objects gankit does not load" in err and "nothing from it was run" in err
    assert "posix.system" in err or "os.system" in err
    assert not out.exists()


def test_every_way_of_opening_a_run_refuses_it_and_none_falls_back_silently(trained, tmp_path, capsys):
    marker = tmp_path / "ran"
    newest = trained.path / "checkpoints" / "step_00000004.pt"
    _plant(newest, marker)
    for argv in (["resume", str(trained.path), "--steps", "6"],
                 ["eval", str(trained.path), "--metrics", "modes", "--n", "100"],
                 ["sample", str(trained.path), "--n", "4", "--out", str(tmp_path / "y.npz")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "holds objects gankit does not load" in err and str(newest) in err, argv
    with pytest.raises(RefusedCheckpointError, match="nothing from it was run"):
        gankit.load_run(trained.path)
    # the manager names the refused newest file instead of quietly opening step 2
    with pytest.raises(RefusedCheckpointError, match="step_00000004.pt"):
        CheckpointManager(trained.path / "checkpoints").latest()
    assert isinstance(RefusedCheckpointError("x"), CheckpointError)
    assert not marker.exists()
    # once the file is removed, the run opens from its previous checkpoint
    newest.unlink()
    assert gankit.load_run(trained.path).step == 2


def test_a_truncated_newest_checkpoint_is_still_skipped_with_a_warning(trained):
    newest = trained.path / "checkpoints" / "step_00000004.pt"
    newest.write_bytes(newest.read_bytes()[:200])
    with pytest.warns(UserWarning, match="damaged"):
        assert CheckpointManager(trained.path / "checkpoints").latest()["step"] == 2


def test_checkpoints_hold_only_tensors_and_plain_values(trained):
    """Today's checkpoints load with torch's weights-only reader without any NumPy global allowed."""
    assert not any("numpy" in repr(g) for g in torch.serialization.get_safe_globals())
    for path in CheckpointManager(trained.path / "checkpoints").list():
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert state["step"] in (2, 4)


def _old_rng_state():
    """The random state as gankit versions before this layout stored it (NumPy's as an ndarray)."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def test_an_older_checkpoint_with_a_numpy_random_state_still_loads_and_resumes_exactly(tmp_path, monkeypatch):
    reference = gankit.train(toy_config(tmp_path / "ref", steps=12, train__checkpoint_every=6))
    run = gankit.train(toy_config(tmp_path / "old", steps=6, train__checkpoint_every=6))
    path = run.path / "checkpoints" / "step_00000006.pt"
    state = CheckpointManager.load(path)
    new_rng = state["rng"]
    # rewrite it as an older gankit wrote it: the same states, NumPy's keys as a uint32 ndarray
    ck.set_rng_state(new_rng)
    state["rng"] = _old_rng_state()
    assert isinstance(state["rng"]["numpy"][1], np.ndarray)
    torch.save(state, path)
    before = torch.serialization.get_safe_globals()
    loaded = CheckpointManager.load(path)
    # the NumPy globals were allowed for that call only (PyTorch may add globals of its own when a
    # lazily imported part of it loads, so only NumPy's are compared)
    left = [g for g in torch.serialization.get_safe_globals() if g not in before]
    assert not [g for g in left if "numpy" in getattr(g, "__module__", repr(g))], left
    assert loaded["rng"]["numpy"][1].dtype == np.uint32
    ck.set_rng_state(loaded["rng"])
    assert torch.equal(torch.from_numpy(np.random.get_state()[1].astype(np.int64)), new_rng["numpy"][1])
    assert random.getstate() == new_rng["python"]
    resumed = gankit.resume(run.path, steps=12)
    assert resumed.step == 12
    for name, module in reference.method.modules.items():
        for key, value in module.state_dict().items():
            assert torch.equal(value, resumed.method.modules[name].state_dict()[key]), f"{name}.{key}"


def test_an_older_checkpoint_may_hold_no_other_numpy_object(tmp_path):
    path = tmp_path / "step_00000001.pt"
    torch.save({"format": 1, "rng": {"numpy": ("MT19937", np.arange(3.0), 0, 0, 0.0)}}, path)
    with pytest.raises(RefusedCheckpointError, match="holds objects gankit does not load"):
        CheckpointManager.load(path)


def test_rng_state_round_trip_through_a_file(tmp_path):
    np.random.seed(5)
    random.seed(6)
    random.gauss(0, 1)           # a cached Gaussian in Python's state
    np.random.standard_normal()  # ... and in NumPy's
    state = ck.rng_state()
    path = tmp_path / "rng.pt"
    torch.save({"format": 1, "rng": state}, path)
    expected = (torch.rand(3), np.random.rand(3), random.random(), random.gauss(0, 1), np.random.standard_normal())
    ck.set_rng_state(CheckpointManager.load(path)["rng"])
    again = (torch.rand(3), np.random.rand(3), random.random(), random.gauss(0, 1), np.random.standard_normal())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2:] == again[2:]


# ------------------------------------------------------------------ no non-finite state is saved

def _poison_after(monkeypatch, at_step, module, seen):
    """After step ``at_step``, set the first parameter of the method's ``module`` ("generator"
    or "ema") to NaN; its name goes into ``seen``."""
    real = GAN.train_step

    def poisoning(self, batches, step):
        out = real(self, batches, step)
        if step + 1 == at_step:
            net = self.ema if module == "ema" else self.modules[module]
            name, param = next(iter(net.named_parameters()))
            seen.append(f"{module}.{name}")
            with torch.no_grad():
                param.fill_(float("nan"))
        return out

    monkeypatch.setattr(GAN, "train_step", poisoning)


def _assert_all_finite(run_dir):
    files = sorted((run_dir / "checkpoints").glob("*.pt"))
    for path in files:
        def walk(obj, where):
            if isinstance(obj, torch.Tensor):
                if obj.is_floating_point():
                    assert bool(torch.isfinite(obj).all()), f"{path.name}: {where} is not finite"
            elif isinstance(obj, dict):
                for k, v in obj.items():
                    walk(v, f"{where}.{k}")
            elif isinstance(obj, (list, tuple)):
                for i, v in enumerate(obj):
                    walk(v, f"{where}[{i}]")

        walk(CheckpointManager.load(path), "")
    return [p.name for p in files]


def _same_networks(a, b):
    for name, module in a.method.modules.items():
        for key, value in module.state_dict().items():
            assert torch.equal(value, b.method.modules[name].state_dict()[key]), f"{name}.{key}"


def test_nan_loss_between_log_steps_never_reaches_a_checkpoint(tmp_path, monkeypatch):
    """log_every=10, checkpoint_every=5: the generator goes NaN after step 12. Step 15 is a
    checkpoint step but no log step; it must not be written, and the error must name step 10."""
    cfg = dict(steps=20, train__log_every=10, train__checkpoint_every=5)
    seen = []
    _poison_after(monkeypatch, 12, "generator", seen)
    with pytest.raises(NonFiniteLossError) as info:
        gankit.train(toy_config(tmp_path / "b", **cfg))
    message = str(info.value)
    assert "step 13: " in message and "is nan" in message
    good = tmp_path / "b" / "checkpoints" / "step_00000010.pt"
    assert f"the last good checkpoint {good} is kept" in message
    assert _assert_all_finite(tmp_path / "b") == ["step_00000005.pt", "step_00000010.pt"]
    monkeypatch.undo()
    assert gankit.load_run(tmp_path / "b").step == 10
    resumed = gankit.resume(tmp_path / "b")
    assert resumed.status == "finished" and resumed.step == 20
    _same_networks(gankit.train(toy_config(tmp_path / "a", **cfg)), resumed)


def test_non_finite_weights_with_finite_losses_are_never_saved(tmp_path, monkeypatch):
    """The moving-average generator takes no part in the losses: only the check of the
    weights themselves sees it go NaN. The error names the tensor and the last good checkpoint."""
    cfg = dict(steps=20, train__log_every=10, train__checkpoint_every=5, train__ema_decay=0.9)
    seen = []
    _poison_after(monkeypatch, 7, "ema", seen)
    with pytest.raises(NonFiniteLossError) as info:
        gankit.train(toy_config(tmp_path / "b", **cfg))
    message = str(info.value)
    assert f"step 10: the weights are not finite: {seen[0]} (nan)" in message
    assert f"the last good checkpoint {tmp_path / 'b' / 'checkpoints' / 'step_00000005.pt'} is kept" in message
    assert _assert_all_finite(tmp_path / "b") == ["step_00000005.pt"]
    monkeypatch.undo()
    resumed = gankit.resume(tmp_path / "b")
    assert resumed.step == 20
    assert all(bool(torch.isfinite(t).all()) for t in resumed.method.ema.state_dict().values())


def test_a_non_finite_state_never_becomes_best_pt(tmp_path, monkeypatch):
    """Evaluation every 5 steps, checkpoints every 3, logs every 10; the moving average goes
    NaN after step 4, so the first evaluation (step 5) would write best.pt from NaN weights."""
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    cfg = toy_config(tmp_path / "b", steps=20, train__log_every=10, train__checkpoint_every=3,
                     train__ema_decay=0.9)
    cfg["eval"] = {"every": 5, "metrics": ["modes"], "n": 200}
    seen = []
    _poison_after(monkeypatch, 4, "ema", seen)
    with pytest.raises(NonFiniteLossError) as info:
        gankit.train(cfg)
    message = str(info.value)
    assert f"step 5: the weights are not finite: {seen[0]} (nan)" in message
    assert f"the last good checkpoint {tmp_path / 'b' / 'checkpoints' / 'step_00000003.pt'} is kept" in message
    assert not (tmp_path / "b" / "checkpoints" / "best.pt").exists()
    assert _assert_all_finite(tmp_path / "b") == ["step_00000003.pt"]
    monkeypatch.undo()
    assert gankit.resume(tmp_path / "b").step == 20
    assert "best.pt" in _assert_all_finite(tmp_path / "b")  # written after the resume, finite


# Runs `gankit train` as one of torchrun's processes; rank 1 alone sets its moving-average
# generator to NaN after step POISON_AT, so only a decision taken together stops both processes.
_LAUNCHER = '''
import os, sys, torch
from gankit.methods.gan import GAN
rank, at = os.environ["RANK"], int(os.environ["POISON_AT"])
real = GAN.train_step
def train_step(self, batches, step):
    out = real(self, batches, step)
    if rank == "1" and step + 1 == at:
        with torch.no_grad():
            next(self.ema.parameters()).fill_(float("nan"))
    return out
GAN.train_step = train_step
from gankit.cli import main
code = main(sys.argv[2:])
open(os.path.join(sys.argv[1], "exit" + rank), "w").write(str(code))
sys.exit(code)
'''


@pytest.mark.skipif(not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
                    reason="needs torch.distributed with gloo")
def test_every_process_takes_the_same_decision(tmp_path):
    import yaml

    cfg = toy_config(None, steps=20, train__log_every=10, train__checkpoint_every=5, train__ema_decay=0.9,
                     train__batch_size=16, runtime__precision="fp32")
    cfg.pop("out")
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "launch.py").write_text(_LAUNCHER)
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(tmp_path / "launch.py"), str(tmp_path), "train", str(tmp_path / "cfg.yaml"),
                           "--out", str(out)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "POISON_AT": "7"})
    assert proc.returncode != 0
    assert [(tmp_path / f"exit{r}").read_text() for r in (0, 1)] == ["2", "2"], proc.stderr[-3000:]
    assert "step 10: the weights are not finite: ema." in proc.stderr, proc.stderr[-3000:]
    assert f"the last good checkpoint {out / 'checkpoints' / 'step_00000005.pt'} is kept" in proc.stderr
    assert _assert_all_finite(out) == ["step_00000005.pt"]
