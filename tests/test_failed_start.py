"""A run that fails before its first checkpoint leaves nothing behind that blocks the same
command, corrected, from running again."""
import numpy as np
import pytest
from PIL import Image

import gankit
from gankit.cli import main
from gankit.errors import DataError
from gankit.methods.gan import GAN

from conftest import toy_config


def _folder(root, n):
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / f"{i}.png")
    return root


def test_too_few_images_for_a_batch_leaves_no_run_directory(tmp_path, capsys):
    pics, out = _folder(tmp_path / "pics", 10), tmp_path / "run"
    args = ["train", "--data", "folder", "--set", f"data.root={pics}", "data.image_size=16",
            "train.progress=none", "train.sample_every=0", "--steps", "2", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "10 samples, fewer than one batch of 64" in err and "lower train.batch_size" in err
    assert not out.exists()
    # the same command with a smaller batch is accepted, into the same --out
    assert main(args + ["--set", "train.batch_size=8"]) == 0
    assert (out / "checkpoints" / "step_00000002.pt").is_file()


def _fail_at_step(monkeypatch, failing_step):
    plain = GAN.train_step

    def train_step(self, batches, step):
        if step + 1 == failing_step:
            raise DataError("a batch could not be read")
        return plain(self, batches, step)

    monkeypatch.setattr(GAN, "train_step", train_step)


def test_a_failure_during_training_before_the_first_checkpoint_removes_the_directory(tmp_path, monkeypatch):
    out = tmp_path / "run"
    cfg = toy_config(out, steps=40, train__sample_every=5)     # samples and logs exist when it fails
    _fail_at_step(monkeypatch, 12)                             # first checkpoint would be step 20
    with pytest.raises(DataError):
        gankit.train(cfg)
    assert not out.exists()
    monkeypatch.undo()
    assert gankit.train(cfg).step == 40


def test_a_directory_the_user_made_keeps_what_it_held(tmp_path, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    _fail_at_step(monkeypatch, 3)
    with pytest.raises(DataError):
        gankit.train(toy_config(out, steps=40, train__sample_every=1))
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_a_failure_after_a_checkpoint_keeps_the_run_for_resume(tmp_path, monkeypatch):
    out = tmp_path / "run"
    cfg = toy_config(out, steps=40)
    _fail_at_step(monkeypatch, 25)
    with pytest.raises(DataError):
        gankit.train(cfg)
    assert (out / "checkpoints" / "step_00000020.pt").is_file()
    monkeypatch.undo()
    assert gankit.resume(out).step == 40


def test_a_run_killed_before_its_first_checkpoint_is_started_again_in_place(tmp_path, capsys):
    out = tmp_path / "run"
    cfg = toy_config(out, steps=40)
    gankit.train(cfg)
    # what a run killed hard (SIGKILL, power loss) before its first checkpoint leaves behind
    for ckpt in (out / "checkpoints").iterdir():
        ckpt.unlink()
    (out / "metrics.jsonl").write_text('{"step": 35, "d_loss": 9.0}\n')
    assert main(["resume", str(out)]) == 2
    assert "no readable checkpoint" in capsys.readouterr().err
    run = gankit.train(cfg)
    assert run.step == 40
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert '"d_loss": 9.0' not in "".join(rows)            # the old run's log went with it
