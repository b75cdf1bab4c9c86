import errno

import pytest
import torch

from gankit import CheckpointError
from gankit.train import checkpoint as ck
from gankit.train.checkpoint import CheckpointManager, atomic_save


def _state(v):
    return {"format": 1, "w": torch.full((3,), float(v))}


def test_keeps_the_newest_n(tmp_path):
    m = CheckpointManager(tmp_path, keep=2)
    for step in (10, 20, 30):
        m.save(_state(step), step)
    assert [p.name for p in m.list()] == ["step_00000020.pt", "step_00000030.pt"]
    assert m.latest()["w"][0].item() == 30


def test_full_disk_leaves_previous_checkpoints_intact(tmp_path, monkeypatch):
    m = CheckpointManager(tmp_path, keep=3)
    m.save(_state(1), 1)
    real_save = torch.save

    def failing_save(obj, f):
        f.write(b"partial bytes")  # half a file, then the disk fills up
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck.torch, "save", failing_save)
    with pytest.raises(CheckpointError, match="disk is full.*previous checkpoints.*intact.*gankit resume"):
        m.save(_state(2), 2)
    monkeypatch.setattr(ck.torch, "save", real_save)
    assert [p.name for p in tmp_path.iterdir()] == ["step_00000001.pt"]  # no temp file, no step 2
    assert m.latest()["w"][0].item() == 1


def test_unwritable_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CheckpointError, match="could not write checkpoint"):
        atomic_save(_state(0), blocker / "step_00000001.pt")


def test_damaged_latest_falls_back_to_previous(tmp_path):
    m = CheckpointManager(tmp_path)
    m.save(_state(1), 1)
    m.save(_state(2), 2)
    m.path(2).write_bytes(m.path(2).read_bytes()[:50])  # truncated by hand
    with pytest.warns(UserWarning, match="damaged"):
        state = m.latest()
    assert state["w"][0].item() == 1
    with pytest.raises(CheckpointError, match="unreadable or truncated"):
        m.load(m.path(2))


def test_rng_state_round_trip():
    state = ck.rng_state()
    a = torch.rand(3)
    ck.set_rng_state(state)
    assert torch.equal(a, torch.rand(3))
