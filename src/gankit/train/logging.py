"""Where metrics go: ``metrics.jsonl``, TensorBoard (when installed) and the terminal."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Dict

__all__ = ["MetricsLog", "NullLog", "Progress", "truncate_metrics"]


def truncate_metrics(path: Path, last_step: int) -> None:
    """Drop rows logged after ``last_step`` (work lost in a crash, about to be redone)."""
    path = Path(path)
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row.get("step", 0) <= last_step:
            keep.append(line)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in keep))
    os.replace(tmp, path)


class MetricsLog:
    """Appends one JSON object per log step; mirrors scalars to TensorBoard if available."""

    def __init__(self, run_dir: Path, resume_step: int = 0, tensorboard: bool = True):
        self.path = Path(run_dir) / "metrics.jsonl"
        truncate_metrics(self.path, resume_step)
        self._file = open(self.path, "a", buffering=1)
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except Exception:  # tensorboard is optional
                SummaryWriter = None
            if SummaryWriter is not None:
                self._tb = SummaryWriter(str(Path(run_dir) / "events"), purge_step=resume_step or None)

    def write(self, row: Dict[str, float]) -> None:
        self._file.write(json.dumps(row) + "\n")
        if self._tb is not None:
            step = int(row["step"])
            for key, value in row.items():
                if key != "step":
                    self._tb.add_scalar(key, value, step)

    def text(self, tag: str, text: str, step: int) -> None:
        """Text for TensorBoard's text tab (token samples, one a line); nothing without TensorBoard."""
        if self._tb is not None:
            # TensorBoard renders Markdown: indent by four spaces so each line shows as written
            self._tb.add_text(tag, "".join("    " + line + "\n" for line in text.splitlines()), step)

    def flush(self) -> None:
        self._file.flush()
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        self.flush()
        self._file.close()
        if self._tb is not None:
            self._tb.close()


class NullLog:
    """What processes other than rank 0 log to: nothing (they write no files)."""

    path = None

    def write(self, row: Dict[str, float]) -> None:
        pass

    def text(self, tag: str, text: str, step: int) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class Progress:
    """A tqdm bar on a terminal, plain log lines otherwise (CI, files), or nothing."""

    def __init__(self, mode: str, total: int, initial: int, desc: str = "train"):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "lines"
        self.mode, self.total = mode, total
        self._bar = None
        self._t0, self._s0 = time.perf_counter(), initial
        if mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def log(self, step: int, row: Dict[str, float]) -> None:
        losses = {k: v for k, v in row.items() if k not in ("step", "time", "steps_per_s") and not k.startswith("lr_")}
        if self._bar is not None:
            self._bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
        elif self.mode == "lines":
            rate = row.get("steps_per_s", 0.0)
            eta = (self.total - step) / rate if rate > 0 else float("nan")
            parts = " ".join(f"{k} {v:.4g}" for k, v in losses.items())
            print(f"step {step}/{self.total} | {parts} | {rate:.2f} steps/s | eta {_clock(eta)}", flush=True)

    def write(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text)
        elif self.mode != "none":
            print(text, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _clock(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"
