"""Checkpoints that hold everything needed to continue exactly, written atomically.

A checkpoint is written to a temporary file in the same directory, flushed to disk and
renamed over its final name, so a crash or a full disk never leaves a half-written
``step_*.pt`` behind: either the new checkpoint exists whole or the previous ones are
untouched. Only after a successful write are checkpoints beyond ``keep`` removed.

A checkpoint holds only tensors and plain values (dicts, lists, tuples, strings, numbers,
None), and is read with ``torch.load(weights_only=True)``: opening a run (``gankit sample``,
``eval``, ``resume``, :func:`gankit.load_run`) never runs code from it. A file that holds any
other object is refused with a :class:`RefusedCheckpointError`. Checkpoints of older gankit
versions kept NumPy's random state as an ndarray; exactly the NumPy globals that rebuild a
uint32 array are allowed while such a file is read, and nothing else.
"""
from __future__ import annotations

import errno
import os
import pickle
import random
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from ..errors import CheckpointError

__all__ = ["atomic_save", "CheckpointManager", "RefusedCheckpointError", "rng_state", "set_rng_state"]

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
    """The global random states, as tensors and plain values only (see the module docstring):
    NumPy's as ``(name, keys as an int64 tensor, pos, has_gauss, cached_gaussian)``,
    Python's as ``(version, tuple of ints, gauss_next)``."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": (str(name), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss),
                       float(cached)),
             "python": (int(version), tuple(int(v) for v in internal),
                        None if gauss_next is None else float(gauss_next))}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
        from .distributed import world_size

        if world_size() > 1:
            # rank 0 writes the checkpoint and has drawn only on its own GPU; every process drew the
            # same numbers on its own GPU, so that state is the one each process must restore
            state["cuda_own_device"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (or an older gankit's ndarray-based NumPy state)."""
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else keys
    np.random.set_state((str(name), np.asarray(keys).astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    version, internal, gauss_next = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal),
                     None if gauss_next is None else float(gauss_next)))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
        if "cuda_own_device" in state:
            torch.cuda.set_rng_state(state["cuda_own_device"])  # this process's current device


class RefusedCheckpointError(CheckpointError):
    """A checkpoint holds objects other than tensors and plain values; it was not loaded."""


def _older_numpy_globals() -> List[Any]:
    """What ``torch.load(weights_only=True)`` must be allowed to rebuild the uint32 ndarray that
    older gankit versions stored for NumPy's random state: ``ndarray``, ``dtype``, the
    ``_reconstruct`` helper (under its NumPy 1 and NumPy 2 module names) and, from NumPy 1.25
    on, the uint32 dtype's own class, so that a dtype of any other class (and with it an
    array of any other type) cannot be built. Nothing of NumPy is called but these."""
    reconstruct = np.zeros(1, np.uint32).__reduce__()[0]
    allowed: List[Any] = [np.ndarray, np.dtype,
                          (reconstruct, "numpy.core.multiarray._reconstruct"),
                          (reconstruct, "numpy._core.multiarray._reconstruct")]
    uint32 = type(np.dtype(np.uint32))
    if uint32 is not np.dtype:
        allowed.append(uint32)
    already = torch.serialization.get_safe_globals()  # leave what the program allowed itself in place
    return [g for g in allowed if g not in already]


def _refusal_reason(exc: BaseException) -> str:
    text = str(exc)
    found = re.search(r"GLOBAL (\S+)", text)
    if found:
        return f"it refers to {found.group(1)}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    detail = next((line for line in lines if not line.startswith(("Weights only", "Check the documentation",
                                                                  "Please file", "In PyTorch"))), "")
    return detail or "it is not a plain tensor file"


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
        """Read a checkpoint without running anything from it (``weights_only=True``).

        Raises :class:`RefusedCheckpointError` for a file that holds any object other than
        tensors and plain values (nothing from it was run), and :class:`CheckpointError` for
        a missing, truncated or unreadable file or one that is not a gankit checkpoint."""
        try:
            with torch.serialization.safe_globals(_older_numpy_globals()):
                state = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise CheckpointError(f"checkpoint {path} does not exist") from None
        except pickle.UnpicklingError as exc:  # the weights-only reader refused an object
            raise RefusedCheckpointError(
                f"checkpoint {path} holds objects gankit does not load ({_refusal_reason(exc)}); it was "
                "refused and nothing from it was run. gankit writes only tensors and plain values into "
                "its checkpoints, so this file was changed or made elsewhere: check where it came from, "
                "and delete it to open the run from its previous checkpoint.") from None
        except Exception as exc:
            raise CheckpointError(f"checkpoint {path} is unreadable or truncated ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        if not isinstance(state, dict) or "format" not in state:
            raise CheckpointError(f"{path} is not a gankit checkpoint")
        return state

    def latest(self) -> Optional[Dict[str, Any]]:
        """The newest checkpoint that loads, or None when there is none.

        A newer file that is merely damaged (truncated or unreadable, say by a crash while it
        was copied) is skipped with a warning, and the one before it is used. A newer file that
        is refused because it holds objects other than tensors and plain values is not
        skipped: :class:`RefusedCheckpointError` names it. Such a file was put there by someone
        other than gankit, and quietly opening an older checkpoint instead would hide that;
        deleting the file opens the previous checkpoint."""
        import warnings

        for path in reversed(self.list()):
            try:
                state = self.load(path)
            except RefusedCheckpointError:
                raise
            except CheckpointError as exc:
                warnings.warn(f"skipping damaged checkpoint: {exc}")
                continue
            state["path"] = str(path)
            return state
        return None
