"""Checkpoints that hold everything needed to continue exactly, written atomically.

A checkpoint is written to a temporary file in the same directory, flushed to disk and
renamed over its final name, so a crash or a full disk never leaves a half-written
``step_*.pt`` behind: either the new checkpoint exists whole or the previous ones are
untouched. Only after a successful write are checkpoints beyond ``keep`` removed.
"""
from __future__ import annotations

import errno
import os
import random
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from ..errors import CheckpointError

__all__ = ["atomic_save", "CheckpointManager", "rng_state", "set_rng_state"]

_NAME = re.compile(r"^step_(\d{8,})\.pt$")


def atomic_save(obj: Any, path: Path) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(exc, OSError):
            what = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
            raise CheckpointError(
                f"could not write checkpoint {path}: {what}. Nothing was overwritten: the previous "
                f"checkpoints in {path.parent} are intact. Free space (or fix permissions) and run "
                f"`gankit resume {path.parent.parent}`.") from exc
        raise


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def rng_state() -> Dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
        from .distributed import world_size

        if world_size() > 1:
            # rank 0 writes the checkpoint and has drawn only on its own GPU; every process drew the
            # same numbers on its own GPU, so that state is the one each process must restore
            state["cuda_own_device"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
        if "cuda_own_device" in state:
            torch.cuda.set_rng_state(state["cuda_own_device"])  # this process's current device


class CheckpointManager:
    """``step_XXXXXXXX.pt`` files in one directory; the newest readable one is the latest."""

    def __init__(self, directory: Path, keep: int = 3):
        self.dir = Path(directory)
        self.keep = keep

    def path(self, step: int) -> Path:
        return self.dir / f"step_{step:08d}.pt"

    def list(self) -> List[Path]:
        if not self.dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.dir.iterdir() if (m := _NAME.match(p.name))]
        return [p for _, p in sorted(found)]

    def save(self, state: Dict[str, Any], step: int) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.path(step)
        atomic_save(state, path)
        for old in self.list()[:-self.keep]:
            try:
                old.unlink()
            except OSError:
                pass
        return path

    @staticmethod
    def load(path: Path) -> Dict[str, Any]:
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except FileNotFoundError:
            raise CheckpointError(f"checkpoint {path} does not exist") from None
        except Exception as exc:
            raise CheckpointError(f"checkpoint {path} is unreadable or truncated ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        if not isinstance(state, dict) or "format" not in state:
            raise CheckpointError(f"{path} is not a gankit checkpoint")
        return state

    def latest(self) -> Optional[Dict[str, Any]]:
        """The newest checkpoint that loads; a damaged newer file is skipped with a warning."""
        import warnings

        for path in reversed(self.list()):
            try:
                state = self.load(path)
            except CheckpointError as exc:
                warnings.warn(f"skipping damaged checkpoint: {exc}")
                continue
            state["path"] = str(path)
            return state
        return None
