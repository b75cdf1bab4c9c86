"""The training loop. It knows nothing about losses: it feeds real batches to
``method.train_step``, logs what comes back, and saves samples and checkpoints.

Per step there is no host synchronisation: the returned scalars stay on the device until
a log step, where they are stacked, synced once, averaged, and checked for NaN/inf. Right
before a checkpoint or an evaluation (which may write ``best.pt``), whatever the intervals,
the scalars not yet logged are checked as well, together with every parameter and buffer of
the method's networks and of the EMA copy, in one more sync. A non-finite state is never
written: the run stops with :class:`~gankit.errors.NonFiniteLossError`, which names what is
not finite and the last good checkpoint, so every checkpoint holds finite weights that were
trained on finite losses only.

With several processes (torchrun) every process runs this loop in lockstep and only rank 0
writes: metrics, TensorBoard, the progress bar, sample grids, checkpoints and ``best.pt``.
At a log step the pending scalars are averaged across processes in the same single sync,
so the NaN/inf check sees every process's losses and all of them stop together. The check
before a checkpoint or an evaluation averages its losses and per-tensor flags the same way
(every process reaches it at the same step): the processes hold the same weights anyway, and
the averaged values make the decision and the error message the same on all of them even if
they did not. Stopping by signal is agreed on every step without a stall: each process
contributes its signal to an asynchronous all-reduce whose result it reads one step later (see
:class:`~gankit.train.distributed.StopVote`), so all stop after the same step, rank 0 writes
the checkpoint, the others wait for it, and all exit with the same status. Without
``runtime.sync_batchnorm`` each process keeps its own batch-norm running statistics; right
before a sample grid, an evaluation or a checkpoint they are averaged across processes (in
place), so the model drawn, evaluated and saved is one well-defined model.
"""
from __future__ import annotations

import itertools
import signal
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

from ..errors import NonFiniteLossError
from ..report.snapshot import save_points
from ..viz import plot_losses, save_samples
from . import distributed
from .checkpoint import CheckpointManager, atomic_save, rng_state
from .logging import MetricsLog, NullLog, Progress

__all__ = ["Trainer", "FORMAT"]

FORMAT = 1  # checkpoint layout version
TIME_UP = 1  # a process's stop request for train.time_limit: below every signal number, so a signal wins


class Trainer:
    def __init__(self, run, stream, start_step: int = 0, elapsed: float = 0.0,
                 evaluator: Optional[Callable[[], Dict[str, float]]] = None, best: Optional[dict] = None):
        self.run = run                      # gankit.api.Run: config, method, data, runtime, path
        self.stream = stream
        self.step = start_step
        self.elapsed = elapsed
        cfg = run.config.train
        self.cfg = cfg
        self.ckpts = CheckpointManager(run.path / "checkpoints", keep=cfg.keep_checkpoints)
        self.stop_signal: Optional[int] = None
        self._pending: List[Dict[str, torch.Tensor]] = []
        self._pending_first = start_step + 1
        self._last_log = (time.perf_counter(), start_step)
        self.last_checkpoint: Optional[Path] = None
        self.evaluator = evaluator            # () -> {metric: value}; run every eval.every steps
        self.best = best                      # {"key", "value", "step"} of checkpoints/best.pt
        self.world = distributed.world_size()  # processes training together
        self.main = distributed.is_main()      # the one that writes files

    # ------------------------------------------------------------------ signals
    def _handle(self, signum, frame) -> None:
        if self.stop_signal is not None:      # a second Ctrl-C stops at once
            if self.world > 1:                # ... but torchrun passes the terminal's Ctrl-C on to its
                return                        # workers again; its own SIGKILL is the hard stop
            raise KeyboardInterrupt
        self.stop_signal = signum

    def _install_signals(self):
        old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                old[sig] = signal.signal(sig, self._handle)
            except ValueError:                # not in the main thread: no handlers
                pass
        return old

    # ------------------------------------------------------------------ the loop
    def fit(self) -> str:
        """Train to ``train.steps``; returns "finished", "time_limit" (``train.time_limit``
        seconds of training in this call reached first; the checkpoint of that step is
        written and ``gankit resume`` continues from it) or "interrupted"."""
        run, cfg = self.run, self.cfg
        method, data = run.method, run.data
        total = cfg.steps
        log = MetricsLog(run.path, resume_step=self.step) if self.main else NullLog()
        progress = Progress(cfg.progress if self.main else "none", total, self.step,
                            desc=f"{run.config.method['name']}:{data.name}")
        vote = distributed.StopVote() if self.world > 1 else None
        old_handlers = self._install_signals()
        t_start = time.perf_counter() - self.elapsed
        t_session = time.perf_counter()  # train.time_limit counts this invocation's training time
        status = "finished"
        try:
            while self.step < total:
                batches = [run.runtime.tensor(self.stream.next())
                           for _ in range(method.real_batches_per_step)]
                out = method.train_step(batches, self.step)
                self.step += 1
                self._pending.append(out)
                progress.update()
                time_up = bool(cfg.time_limit) and time.perf_counter() - t_session >= cfg.time_limit
                stop = self._stop_requested(vote, time_up)  # read once: a later signal waits a step
                last = self.step == total or stop
                if self.step % cfg.log_every == 0 or last:
                    self.elapsed = time.perf_counter() - t_start
                    self._flush(log, progress)
                sample = bool(cfg.sample_every and self.step % cfg.sample_every == 0) or last
                every = run.config.eval.every
                evaluate = self.evaluator is not None and bool(every) and (self.step % every == 0 or last)
                checkpoint = bool(cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0) or last
                if self.world > 1 and (sample or evaluate or checkpoint):
                    distributed.average_batchnorm_stats_(list(method.modules.values()) + list(method.emas.values()))
                if evaluate or checkpoint:   # nothing non-finite reaches a checkpoint or best.pt
                    self._check_finite()
                if sample and self.main:
                    written = self.save_samples()
                    if str(written).endswith(".txt"):    # token samples: their text in TensorBoard too
                        log.text("samples", written.read_text(encoding="utf-8"), self.step)
                if evaluate:
                    self._evaluate(log, progress)
                if checkpoint:
                    self.elapsed = time.perf_counter() - t_start
                    self.save_checkpoint()
                    log.flush()
                if stop:
                    if self.stop_signal is not None:
                        status = "interrupted"
                    elif self.step < total:
                        status = "time_limit"
                    break
        finally:
            if vote is not None:
                vote.close()
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            progress.close()
            log.close()
            if self.main:
                try:
                    plot_losses(log.path, run.path / "loss.png")
                except Exception as exc:  # a plot must never cost a run
                    progress.write(f"could not draw loss.png: {exc}")
        if status == "interrupted":
            name = signal.Signals(self.stop_signal).name
            progress.write(f"{name} received: stopped at step {self.step}, checkpoint {self.last_checkpoint}. "
                           f"Continue with: gankit resume {run.path}")
        return status

    def _stop_requested(self, vote: Optional[distributed.StopVote], time_up: bool = False) -> bool:
        """Whether to stop after this step: a stop signal, or ``train.time_limit`` reached.
        Under torchrun every process takes the same decision (the largest request of any
        process: a signal number, else TIME_UP)."""
        if vote is None:
            return self.stop_signal is not None or time_up
        agreed = vote.poll(self.stop_signal or (TIME_UP if time_up else 0))
        if agreed > TIME_UP:
            self.stop_signal = agreed
        return bool(agreed)

    def _pending_values(self) -> torch.Tensor:
        """The pending scalars as a (steps, keys) tensor on the device (keys: ``_pending[0]``)."""
        if not self._pending:
            return torch.zeros(0, 0, device=self.run.runtime.device)
        keys = list(self._pending[0])
        return torch.stack([torch.stack([o[k].float() for k in keys]) for o in self._pending])

    def _nonfinite(self, what: str) -> NonFiniteLossError:
        last = self.last_checkpoint or (self.ckpts.list() or [None])[-1]
        keep = (f"the last good checkpoint {last} is kept; `gankit resume {self.run.path}` continues from it"
                if last else "no checkpoint was written before it")
        error = NonFiniteLossError(
            f"{what}. Training stopped; {keep}. "
            "Try a lower learning rate (optim.lr_d, optim.lr_g) or runtime.precision=fp32.")
        return distributed.on_every_rank(error) if self.world > 1 else error

    def _check_losses(self, values: torch.Tensor) -> None:
        """Raise for the first non-finite entry of the pending scalars ``values`` (on the CPU)."""
        finite = torch.isfinite(values)
        if not bool(finite.all()):
            row, col = (~finite).nonzero()[0].tolist()
            keys = list(self._pending[0])
            raise self._nonfinite(f"step {self._pending_first + row}: {keys[col]} is {values[row, col].item()}")

    def _named_state(self):
        """(name, tensor) for every floating-point parameter and buffer of the method's
        networks and of the EMA copy (integer buffers such as batch counts are always finite)."""
        method = self.run.method
        modules = list(method.modules.items()) + [("ema" if role == "generator" else f"ema_{role}", m)
                                                  for role, m in method.emas.items()]
        return [(f"{name}.{key}", t.detach()) for name, m in modules
                for key, t in itertools.chain(m.named_parameters(), m.named_buffers()) if t.is_floating_point()]

    def _check_finite(self) -> None:
        """Before a checkpoint or an evaluation: the scalars logged since the last log step and
        every parameter and buffer of the networks and the EMA copy must be finite.

        Each tensor's largest absolute value (one fused ``_foreach_norm``) is NaN for a tensor
        with a NaN and inf for one with an inf; finite ones count as 0. These flags and the
        pending scalars go into one buffer that, with several processes, is averaged in one
        all-reduce, so a non-finite value on any process reaches all of them and every process
        raises the same error. The pending scalars stay pending: the next log step logs them
        as usual."""
        values = self._pending_values()
        named = self._named_state()
        flags = torch.zeros(0, device=values.device)
        if named:
            maxima = torch.stack([m.float() for m in torch._foreach_norm([t for _, t in named], float("inf"))])
            flags = torch.where(torch.isfinite(maxima), torch.zeros_like(maxima), maxima).to(values.device)
        flat = torch.cat([values.reshape(-1), flags])
        if self.world > 1:
            distributed.all_reduce_mean_([flat])
        flat = flat.cpu()
        n = values.numel()
        self._check_losses(flat[:n].reshape(values.shape))
        flags = flat[n:]
        bad = (~torch.isfinite(flags)).nonzero().flatten().tolist()
        if bad:
            shown = ", ".join(f"{named[i][0]} ({flags[i].item()})" for i in bad[:3])
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            raise self._nonfinite(f"step {self.step}: the weights are not finite: {shown}{more}; "
                                  "this state was not saved")

    def _flush(self, log: MetricsLog, progress: Progress) -> None:
        if not self._pending:
            return
        keys = list(self._pending[0])
        values = self._pending_values()
        if self.world > 1:  # means over all processes; a NaN or inf anywhere reaches every process
            distributed.all_reduce_mean_([values])
        values = values.cpu()
        self._check_losses(values)
        means = values.double().mean(0).tolist()
        now = time.perf_counter()
        t_prev, s_prev = self._last_log
        row = {"step": self.step, "time": round(self.elapsed, 3),
               "steps_per_s": round((self.step - s_prev) / max(now - t_prev, 1e-9), 3)}
        row.update({k: float(v) for k, v in zip(keys, means)})
        for name, opt in self.run.method.optimizers.items():
            row[f"lr_{name}"] = opt.param_groups[0]["lr"]
        self._last_log = (now, self.step)
        self._pending = []
        self._pending_first = self.step + 1
        log.write(row)
        progress.log(self.step, row)

    def _evaluate(self, log: MetricsLog, progress: Progress) -> None:
        results = distributed.broadcast_object(self.evaluator())  # every process: rank 0's numbers
        log.write({"step": self.step, **{f"eval_{k}": float(v) for k, v in results.items()}})
        progress.write(f"eval at step {self.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in results.items()))
        key = self.run.config.eval.best or next(iter(results))
        if key not in results:
            return
        value = float(results[key])
        lower = key in getattr(self.evaluator, "lower_is_better", ())
        if self.best is None or (value < self.best["value"] if lower else value > self.best["value"]):
            self.best = {"key": key, "value": value, "step": self.step}
            distributed.run_on_main(self._save_best)

    def _save_best(self) -> None:
        self.ckpts.dir.mkdir(parents=True, exist_ok=True)
        atomic_save(self.state(), self.ckpts.dir / "best.pt")

    # ------------------------------------------------------------------ artefacts
    def save_samples(self) -> Path:
        run = self.run
        g = torch.Generator().manual_seed(run.config.train.seed + 12345)
        if run.info.kind == "tokens":    # token sequences: their text, one a line
            from ..data.sequences import write_text

            out = run.method.sample(self.cfg.n_samples, generator=g)
            return write_text(out["x"], run.info.fields["x"].classes,
                              run.path / "samples" / f"step_{self.step:08d}.txt")
        n = self.cfg.n_samples if run.info.kind == "image" else 2000
        given, nrow = run.method.showcase(n) if run.info.kind == "image" else ({}, None)
        n = len(next(iter(given.values()))) if given else n
        out = run.method.sample(n, given=given, generator=g)
        real = None
        if run.info.kind != "image":
            real = run.data.x[:2000]
            save_points(run.method, out, real, run.path / "samples" / f"step_{self.step:08d}.npz")
        return save_samples(out, run.info, run.path / "samples" / f"step_{self.step:08d}.png", real=real,
                            title=f"step {self.step}", nrow=nrow)

    def state(self) -> dict:
        from ..config import to_dict

        return {
            "format": FORMAT,
            "step": self.step,
            "elapsed": self.elapsed,
            "config": to_dict(self.run.config),
            "info": self.run.info.to_dict(),
            "method": self.run.method.state_dict(),
            "rng": rng_state(),
            "data": self.stream.state_dict(),
            "best": self.best,
        }

    def save_checkpoint(self) -> Path:
        """Rank 0 writes the checkpoint; every process waits for it and gets its path."""
        self.last_checkpoint = distributed.run_on_main(lambda: self.ckpts.save(self.state(), self.step))
        return self.last_checkpoint
