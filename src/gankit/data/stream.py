"""An exactly resumable stream of shuffled minibatches over an in-memory data set.

The stream runs over one tensor or over a dict of named fields of the same N samples; one
permutation indexes them all, so a batch of fields is a dict of the same samples' fields.

Each epoch is a permutation drawn from a generator seeded with (seed, epoch), so the whole
data order is the pair (epoch, position): a checkpoint stores it and a resumed run draws
the very batches the uninterrupted run would have drawn. Incomplete last batches are
dropped, as usual for GAN training (batch norm sees full batches).

With several processes (``world_size`` > 1) ``batch_size`` is the per-process batch: a
global batch is ``batch_size * world_size`` consecutive indices of the permutation and
process ``rank`` takes its ``rank``-th slice, so the processes together see exactly the
batches one process with the global batch would. (epoch, position) count global batches
and are the same on every process.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Union

import torch

__all__ = ["BatchStream", "Sources"]


class BatchStream:
    def __init__(self, x: Union[torch.Tensor, Dict[str, torch.Tensor]], batch_size: int, seed: int = 0,
                 device: Optional[torch.device] = None, rank: int = 0, world_size: int = 1):
        self.fields = dict(x) if isinstance(x, dict) else None
        if self.fields is not None:
            if "x" not in self.fields:
                raise ValueError(f"a stream of fields needs an 'x' field, got {', '.join(self.fields)}")
            sizes = {k: len(v) for k, v in self.fields.items()}
            if len(set(sizes.values())) > 1:
                raise ValueError(f"the fields hold different numbers of samples: {sizes}")
            x = self.fields["x"]
        if len(x) < batch_size * world_size:
            what = (f"one batch of {batch_size}" if world_size == 1 else
                    f"one global batch of {batch_size * world_size} ({world_size} processes x train.batch_size "
                    f"{batch_size}, the per-process batch)")
            raise ValueError(f"the data set has {len(x)} samples, fewer than {what}; "
                             "lower train.batch_size or add data")
        self.x = x
        self.batch_size = batch_size
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.device = device
        self.epoch = 0
        self.position = 0
        self._perm: Optional[torch.Tensor] = None
        self.batches_per_epoch = len(x) // (batch_size * world_size)

    def _permutation(self) -> torch.Tensor:
        if self._perm is None:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            self._perm = torch.randperm(len(self.x), generator=g)
        return self._perm

    def next(self) -> torch.Tensor:
        if self.position >= self.batches_per_epoch:
            self.epoch += 1
            self.position = 0
            self._perm = None
        global_bs = self.batch_size * self.world_size
        start = self.position * global_bs + self.rank * self.batch_size
        idx = self._permutation()[start:start + self.batch_size]
        self.position += 1
        if self.fields is not None:
            return {k: self._take(v, idx) for k, v in self.fields.items()}
        return self._take(self.x, idx)

    def _take(self, t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        batch = t[idx]
        if self.device is not None and batch.device != self.device:
            batch = batch.to(self.device, non_blocking=True)
        return batch

    def state_dict(self) -> Dict[str, int]:
        state = {"epoch": self.epoch, "position": self.position, "seed": self.seed,
                 "batch_size": self.batch_size, "n": len(self.x)}
        if self.world_size > 1:
            state["world_size"] = self.world_size
        return state

    def load_state_dict(self, state: Dict[str, int]) -> None:
        if state["n"] != len(self.x) or state["batch_size"] != self.batch_size:
            raise ValueError(
                f"the checkpoint's data order was for {state['n']} samples in batches of {state['batch_size']}, "
                f"but this data set has {len(self.x)} samples in batches of {self.batch_size}")
        saved = state.get("world_size", 1)
        if saved != self.world_size:
            raise ValueError(
                f"the checkpoint was written by {saved} process(es) and this run has {self.world_size}: the global "
                f"batch (train.batch_size x processes) would change; resume with the same number of processes "
                f"(torchrun --nproc-per-node ... for several, plain `gankit resume` for one)")
        self.epoch, self.position, self.seed = state["epoch"], state["position"], state["seed"]
        self._perm = None


class Sources:
    """The batches of a run: the main data set's and, for a method that trains on further
    sources, each source's, every one from its own :class:`BatchStream` (its own permutation
    and position, so the sources advance independently), merged into one batch in model
    space whose further sources' fields are named ``SOURCE.FIELD``.

    ``datasets`` maps source -> data set, the main one under ``""``. The state of the main
    stream is stored as it always was, the others' under ``sources``, so single-source
    checkpoints keep their form."""

    def __init__(self, datasets: Mapping[str, object], batch_size: int, seed: int = 0,
                 device: Optional[torch.device] = None, rank: int = 0, world_size: int = 1):
        self.datasets = dict(datasets)
        self.streams: Dict[str, BatchStream] = {}
        for i, (name, data) in enumerate(self.datasets.items()):
            try:
                self.streams[name] = BatchStream(data.tensors(), batch_size, seed=seed + 7919 * i, device=device,
                                                 rank=rank, world_size=world_size)
            except ValueError as exc:
                raise ValueError(f"data_{name}: {exc}" if name else str(exc)) from None

    def next(self) -> Dict[str, torch.Tensor]:
        out: Dict[str, torch.Tensor] = {}
        for name, stream in self.streams.items():
            batch = self.datasets[name].to_model(stream.next())
            out.update(batch if not name else {f"{name}.{k}": v for k, v in batch.items()})
        return out

    def state_dict(self) -> dict:
        state = dict(self.streams[""].state_dict())
        others = {name: s.state_dict() for name, s in self.streams.items() if name}
        if others:
            state["sources"] = others
        return state

    def load_state_dict(self, state: dict) -> None:
        self.streams[""].load_state_dict(state)
        saved = state.get("sources") or {}
        for name, stream in self.streams.items():
            if not name:
                continue
            if name not in saved:
                raise ValueError(f"the checkpoint holds no position for the data source '{name}'")
            try:
                stream.load_state_dict(saved[name])
            except ValueError as exc:
                raise ValueError(f"data_{name}: {exc}") from None
