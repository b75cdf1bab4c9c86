"""Several processes training one model: the process group and the few collectives gankit uses.

``torchrun --nproc-per-node N -m gankit train ...`` starts N copies of gankit with the
environment variables RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT set.
:func:`session` joins the process group they describe (gloo on the CPU; NCCL with device
``cuda:LOCAL_RANK`` on CUDA, plus a small gloo group for control messages) and leaves it at
the end. Without those variables, or with WORLD_SIZE=1, nothing is initialised and every
helper here is a no-op, so a single process behaves exactly as it always did.

How one model is trained by several processes
---------------------------------------------
Every process holds a full copy of every network and optimiser, starts from rank 0's
weights (:func:`broadcast_modules_`), takes its own slice of each global batch of real data
and of noise, and averages the gradients of each optimiser's parameters across processes
right before that optimiser steps (:func:`all_reduce_grads_`, called by
:meth:`gankit.train.runtime.Runtime.step`, the one function through which every method
steps every optimiser). Identical weights plus identical averaged gradients give identical
updates, so the copies never drift apart.

This is what StyleGAN2-ADA's training loop does instead of wrapping networks in
``DistributedDataParallel``. DDP's reducer assumes one forward and one backward per
iteration, and every parameter that needs a gradient getting one; GAN steps break that: the
discriminator runs frozen (``requires_grad_(False)``) inside the generator step, gradient
penalties differentiate through ``autograd.grad(create_graph=True)`` (double backward,
which DDP does not support), there are several backward passes per iteration (``d_steps``
discriminator steps, then the generator) and methods may unroll steps. Synchronising inside
``Runtime.step`` needs none of those assumptions and leaves every method's code untouched.

Randomness: every process seeds the same global RNG and draws the same global tensors, then
keeps its own slice (:func:`sharded_randn`, :func:`sharded_rand`); the noise of process r
is exactly rows r*b .. (r+1)*b of what one process with the global batch would draw, and
the random state stays identical on every process (so any of them could write it to a
checkpoint).

Only rank 0 writes files; :func:`run_on_main` runs a function there and hands its result,
or its exception, to every process, which doubles as a barrier.
"""
from __future__ import annotations

import contextlib
import os
import pickle
from typing import Any, Callable, Iterable, Optional, Sequence

import torch
from torch import nn

from ..errors import ConfigError, GankitError

__all__ = [
    "session", "init", "destroy", "is_initialized", "world_size", "rank", "local_rank", "is_main",
    "barrier", "all_reduce_mean_", "all_reduce_grads_", "broadcast_module_", "broadcast_modules_",
    "average_batchnorm_stats_", "broadcast_object", "run_on_main", "local_main_first", "agree",
    "all_gather_rows", "all_reduce_sum_np", "sharded_randn", "sharded_rand", "shard_range", "StopVote",
    "on_every_rank",
]

_CPU_GROUP: Any = None        # gloo group for control messages when the main backend is NCCL
_CPU_GROUP_READY = False


# ----------------------------------------------------------------------------------- process group

def _dist():
    import torch.distributed as dist

    return dist


def is_initialized() -> bool:
    if not torch.distributed.is_available():
        return False
    return _dist().is_initialized()


def world_size() -> int:
    """Number of processes training together (1 when no process group is initialised)."""
    return _dist().get_world_size() if is_initialized() else 1


def rank() -> int:
    return _dist().get_rank() if is_initialized() else 0


def local_rank() -> int:
    """This process's index on its machine (torchrun's LOCAL_RANK; 0 in a single process)."""
    return int(os.environ.get("LOCAL_RANK", "0")) if is_initialized() else 0


def is_main() -> bool:
    """True on the process that writes files: rank 0, or the only process."""
    return rank() == 0


def _env_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ConfigError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number") from None


def wants_cuda(device: str) -> bool:
    """Whether ``runtime.device`` puts this run on CUDA."""
    if device == "auto":
        return torch.cuda.is_available()
    return device.startswith("cuda")


def init(device: str = "auto") -> bool:
    """Join the process group that torchrun's environment variables describe.

    Returns True when this call created the group (the caller then destroys it), False when
    there is nothing to do: no torchrun variables, WORLD_SIZE=1, or a group that already
    exists (created by the caller, who keeps it).
    """
    if _env_world_size() <= 1 or is_initialized():
        return False
    if not torch.distributed.is_available():
        raise ConfigError("WORLD_SIZE > 1 asks for several processes, but this PyTorch build has no "
                          "torch.distributed")
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ConfigError(f"WORLD_SIZE is set but {', '.join(missing)} is not: start several processes with "
                          "`torchrun --nproc-per-node N -m gankit train ...`")
    dist = _dist()
    if wants_cuda(device):
        if not torch.cuda.is_available():
            raise ConfigError("runtime.device asks for CUDA but no CUDA device is available; use runtime.device=cpu")
        lr = int(os.environ.get("LOCAL_RANK", "0"))
        if lr >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK {lr} has no GPU: this machine has {torch.cuda.device_count()}; start at "
                              "most that many processes per machine (torchrun --nproc-per-node)")
        torch.cuda.set_device(lr)
        dist.init_process_group("nccl", init_method="env://", device_id=torch.device("cuda", lr))
    else:
        dist.init_process_group("gloo", init_method="env://")
    return True


def destroy() -> None:
    global _CPU_GROUP, _CPU_GROUP_READY
    if is_initialized():
        _dist().destroy_process_group()
    _CPU_GROUP, _CPU_GROUP_READY = None, False


@contextlib.contextmanager
def session(device: str = "auto"):
    """Inside: the process group torchrun asked for (if any). On a normal exit every process
    waits for the others (so none leaves while rank 0 still writes), then the group is
    destroyed if this session created it."""
    created = init(device)
    try:
        yield
        if created:
            barrier()
    finally:
        if created:
            destroy()


def _cpu_group():
    """The group for CPU tensors: the default one under gloo, a gloo side group under NCCL.
    Created on first use, which every process reaches at the same point of the program."""
    global _CPU_GROUP, _CPU_GROUP_READY
    if not _CPU_GROUP_READY:
        dist = _dist()
        _CPU_GROUP = None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")
        _CPU_GROUP_READY = True
    return _CPU_GROUP


def _device_for_collectives() -> torch.device:
    if _dist().get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    if world_size() > 1:
        _dist().barrier(group=_cpu_group())


# ----------------------------------------------------------------------------------- tensors

def _flat_groups(tensors: Sequence[torch.Tensor]):
    """Tensors grouped by (device, dtype), so each group travels as one flat buffer."""
    groups = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t)
    return groups.values()


def all_reduce_mean_(tensors: Iterable[torch.Tensor]) -> None:
    """Average tensors across processes, in place, one flattened buffer per dtype."""
    tensors = list(tensors)
    n = world_size()
    if n == 1 or not tensors:
        return
    dist = _dist()
    for group in _flat_groups(tensors):
        flat = torch.cat([t.detach().reshape(-1) for t in group])
        on = flat.to(_device_for_collectives())
        dist.all_reduce(on)
        on.div_(n)
        flat = on.to(flat.device)
        offset = 0
        for t in group:
            t.detach().copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()


def all_reduce_grads_(params: Iterable[torch.nn.Parameter]) -> None:
    """Average the gradients of ``params`` across processes, in one flat buffer per dtype.

    A missing gradient (None) counts as zeros, so every process issues the same collective
    whatever its graph; a parameter that has no gradient on any process keeps None (an
    optimiser then skips it, as it would in a single process).
    """
    params = [p for p in params if p.requires_grad]
    n = world_size()
    if n == 1 or not params:
        return
    dist = _dist()
    device = _device_for_collectives()
    for group in _flat_groups(params):
        parts = [p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), dtype=p.dtype, device=p.device)
                 for p in group]
        has = torch.tensor([p.grad is not None for p in group], dtype=group[0].dtype, device=group[0].device)
        flat = torch.cat(parts + [has]).to(device)
        dist.all_reduce(flat)
        flat = flat.to(group[0].device)
        seen = flat[-len(group):]
        flat = flat[:-len(group)].div_(n)
        offset = 0
        for i, p in enumerate(group):
            chunk = flat[offset:offset + p.numel()].view(p.shape)
            offset += p.numel()
            if p.grad is not None:
                p.grad.copy_(chunk)
            elif seen[i] > 0:
                p.grad = chunk.clone()


@torch.no_grad()
def broadcast_module_(module: Optional[nn.Module], src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers into ``module`` on every process."""
    if module is None or world_size() == 1:
        return
    tensors = [t for t in list(module.parameters()) + list(module.buffers())]
    dist = _dist()
    device = _device_for_collectives()
    for group in _flat_groups(tensors):
        flat = torch.cat([t.detach().reshape(-1) for t in group]).to(device)
        dist.broadcast(flat, src=src)
        flat = flat.to(group[0].device)
        offset = 0
        for t in group:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()


def broadcast_modules_(method) -> None:
    """Rank 0's networks and moving average on every process (after building or loading)."""
    for m in method.modules.values():
        broadcast_module_(m)
    broadcast_module_(getattr(method, "ema", None))


def average_batchnorm_stats_(modules: Iterable[Optional[nn.Module]]) -> None:
    """Average the running means and variances of (non-synchronised) batch-norm layers across
    processes, in place, so that the model written or evaluated is one well-defined model.

    Each process's running statistics come from its own slice of the batches; their mean is
    what the saved model keeps. SyncBatchNorm layers are left alone: theirs are identical.
    """
    if world_size() == 1:
        return
    from torch.nn.modules.batchnorm import _BatchNorm

    buffers = []
    for module in modules:
        if module is None:
            continue
        for m in module.modules():
            if isinstance(m, _BatchNorm) and not isinstance(m, nn.SyncBatchNorm) and m.track_running_stats:
                buffers += [b for b in (m.running_mean, m.running_var) if b is not None]
    all_reduce_mean_(buffers)


def all_reduce_sum_np(x):
    """The sum over processes of a numpy array (float64 on the wire)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    if world_size() == 1:
        return x
    t = torch.from_numpy(np.ascontiguousarray(x)).clone()
    _dist().all_reduce(t, group=_cpu_group())
    return t.numpy()


def all_gather_rows(x: torch.Tensor) -> torch.Tensor:
    """Concatenate along dim 0, in rank order, CPU tensors whose first size may differ."""
    if world_size() == 1:
        return x
    dist = _dist()
    group = _cpu_group()
    x = x.detach().cpu().contiguous()
    n = world_size()
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(n)]
    dist.all_gather(sizes, torch.tensor([len(x)], dtype=torch.int64), group=group)
    sizes = [int(s) for s in sizes]
    longest = max(sizes)
    padded = torch.zeros((longest,) + tuple(x.shape[1:]), dtype=x.dtype)
    padded[:len(x)] = x
    out = [torch.empty_like(padded) for _ in range(n)]
    dist.all_gather(out, padded, group=group)
    return torch.cat([o[:s] for o, s in zip(out, sizes)])


# ----------------------------------------------------------------------------------- objects

def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every process (pickled)."""
    if world_size() == 1:
        return obj
    box = [obj]
    _dist().broadcast_object_list(box, src=src, group=_cpu_group())
    return box[0]


def on_every_rank(exc: BaseException) -> BaseException:
    """Mark an error that every process raises alike, so only rank 0 prints it."""
    exc.on_every_rank = True
    return exc


def _portable(exc: BaseException) -> BaseException:
    try:
        pickle.dumps(exc)
        return exc
    except Exception:
        return GankitError(f"{type(exc).__name__}: {exc}")


def run_on_main(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on rank 0 only; every process returns its result or raises its exception.

    Doubles as a barrier: no process goes on before rank 0 has finished (say, writing a
    checkpoint), and if rank 0 fails every process stops with the same error.
    """
    if world_size() == 1:
        return fn()
    if is_main():
        try:
            payload = (True, fn())
        except Exception as exc:
            broadcast_object((False, _portable(exc)))
            raise
        return broadcast_object(payload)[1]
    ok, value = broadcast_object(None)
    if not ok:
        raise on_every_rank(value)
    return value


def agree(flag: bool) -> bool:
    """True on every process if ``flag`` is True on any."""
    if world_size() == 1:
        return bool(flag)
    t = torch.tensor([int(bool(flag))])
    _dist().all_reduce(t, op=_dist().ReduceOp.MAX, group=_cpu_group())
    return bool(t.item())


def local_main_first(fn: Callable[[], Any], what: str = "preparing the run") -> Any:
    """Run ``fn`` on each machine's first process, then on the others: a data set that is
    downloaded or unpacked on first use is fetched once per machine, not by every process."""
    if world_size() == 1:
        return fn()
    first = local_rank() == 0
    error = None
    result = None
    if first:
        try:
            result = fn()
        except Exception as exc:
            error = exc
    if agree(error is not None):
        if error is not None:
            raise error
        raise on_every_rank(GankitError(f"another process failed while {what}; its message is above"))
    return result if first else fn()


# ----------------------------------------------------------------------------------- randomness

def shard_range(n: int) -> range:
    """Rows of a global batch of ``n * world_size`` that this process keeps."""
    r = rank()
    return range(r * n, (r + 1) * n)


def _sharded(draw, shape: Sequence[int], **kw) -> torch.Tensor:
    shape = tuple(shape)
    n = world_size()
    if n == 1:
        return draw(shape, **kw)
    full = draw((shape[0] * n,) + shape[1:], **kw)
    rows = shard_range(shape[0])
    return full[rows.start:rows.stop]


def sharded_randn(shape: Sequence[int], **kw) -> torch.Tensor:
    """``torch.randn(shape, **kw)`` from the global RNG; with several processes, this process's
    rows of the draw for the global batch (shape[0] * world_size rows)."""
    return _sharded(torch.randn, shape, **kw)


def sharded_rand(shape: Sequence[int], **kw) -> torch.Tensor:
    """``torch.rand`` counterpart of :func:`sharded_randn`."""
    return _sharded(torch.rand, shape, **kw)


# ----------------------------------------------------------------------------------- stopping

class StopVote:
    """All processes agree on stopping at the same step, without a stall per step.

    Each step, :meth:`poll` starts an asynchronous all-reduce (max) of this process's
    stop request (the signal number, 0 for none) on the CPU group and returns the result
    of the previous step's one, which has long arrived. Every process sees the same
    results in the same order, so all stop at the same step, one step after the first
    signal reaches any of them.
    """

    def __init__(self):
        self._work = None
        self._buf: Optional[torch.Tensor] = None

    def poll(self, signum: int) -> int:
        agreed = self._collect()
        self._buf = torch.tensor([int(signum)], dtype=torch.int64)
        self._work = _dist().all_reduce(self._buf, op=_dist().ReduceOp.MAX, group=_cpu_group(), async_op=True)
        return agreed

    def _collect(self) -> int:
        if self._work is None:
            return 0
        self._work.wait()
        self._work = None
        return int(self._buf.item())

    def close(self) -> int:
        """Wait for the last vote (every process must call this at the same point)."""
        return self._collect()
