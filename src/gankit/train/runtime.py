"""The one place that decides device, precision, memory format and gradient averaging.

Methods stay plain PyTorch: they build their networks through :meth:`Runtime.module`,
run forward passes under :meth:`Runtime.autocast`, and step optimisers through
:meth:`Runtime.step`, and so run unchanged on CPU or CUDA, in fp32, bf16 or fp16, and in one
process or several (``torchrun``).

With several processes, :meth:`Runtime.step` averages the gradients of the optimiser's
parameters across processes between backward and the optimiser step, in one flat buffer:
this replaces ``DistributedDataParallel``, whose reducer does not fit GAN steps (a frozen
discriminator inside the generator step, double backward for gradient penalties, several
backward passes per iteration); see :mod:`gankit.train.distributed`. Under fp16 the
gradients are averaged while still scaled: every process holds the same scale, so the
averaged gradients, the scaler's inf/NaN check on them and its next scale are the same on
every process, and all of them skip (or take) the same steps. Random draws inside methods
go through :meth:`Runtime.randn` / :meth:`Runtime.rand` so that each process gets its slice
of the global batch's draw.
"""
from __future__ import annotations

import contextlib
import os
from typing import Dict, Optional

import torch
from torch import nn

from ..config import RuntimeConfig
from ..errors import ConfigError
from ..hardware import cpu_has_bf16
from . import distributed

__all__ = ["Runtime", "prefer_huge_pages", "plain_environment", "HUGE_PAGES"]

#: PyTorch's switch that backs CPU tensors of 2 MB and more with transparent huge pages
HUGE_PAGES = "THP_MEM_ALLOC_ENABLE"
_huge_pages_set_here = False


def prefer_huge_pages() -> bool:
    """Switch on PyTorch's transparent-huge-page allocation for CPU tensors of 2 MB and more
    (``THP_MEM_ALLOC_ENABLE=1``) unless the environment already chose; returns whether
    this call set it.

    With 4 KB pages the default image GAN's step spends part of its time on page faults and
    TLB misses in its few-MB activation buffers, which the allocator hands back to the system
    and takes again every step; with huge pages it runs about 5 % faster on the CPU
    (benchmarks/README.md). PyTorch reads the switch at its first allocation of that size and
    keeps the answer, so this must run before any: the ``gankit`` command calls it first
    thing; programs that import gankit set the variable themselves before they start.
    ``THP_MEM_ALLOC_ENABLE=0`` in the environment keeps 4 KB pages.
    """
    global _huge_pages_set_here
    if HUGE_PAGES in os.environ:
        return False
    os.environ[HUGE_PAGES] = "1"
    _huge_pages_set_here = True
    return True


def plain_environment() -> Dict[str, str]:
    """The process environment without what :func:`prefer_huge_pages` added: for baselines
    that must run as plain PyTorch with its defaults."""
    env = dict(os.environ)
    if _huge_pages_set_here:
        env.pop(HUGE_PAGES, None)
    return env


class Runtime:
    def __init__(self, cfg: RuntimeConfig, data_kind: str = "image"):
        self.cfg = cfg
        self.device = self._device(cfg.device)
        precision = cfg.precision
        if precision == "auto":
            precision = "bf16" if data_kind == "image" and self._bf16_fast() else "fp32"
        if precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("runtime.precision=fp16 needs a CUDA device; on CPU use bf16 or fp32")
        if precision == "bf16" and not self._bf16_ok():
            raise ConfigError(f"runtime.precision=bf16 is not supported on {self.device}; use fp32")
        self.precision = precision
        if cfg.sync_batchnorm and distributed.world_size() > 1 and self.device.type != "cuda":
            raise distributed.on_every_rank(ConfigError(
                "runtime.sync_batchnorm needs CUDA (PyTorch's SyncBatchNorm does not run on the CPU); "
                "set runtime.sync_batchnorm=false: each process then normalises by its own batch"))
        self.channels_last = cfg.channels_last == "on" or (cfg.channels_last == "auto" and data_kind == "image")
        self._scalers: Dict[str, torch.amp.GradScaler] = {}
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)

    @staticmethod
    def _device(name: str) -> torch.device:
        if name == "auto":
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        else:
            try:
                device = torch.device(name)
            except RuntimeError:
                raise ConfigError(f"runtime.device: {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("runtime.device asks for CUDA but no CUDA device is available; use runtime.device=cpu")
        if device.type not in ("cpu", "cuda"):
            raise ConfigError(f"runtime.device: {name!r} is not supported; use auto, cpu, cuda or cuda:N")
        if device.type == "cuda" and distributed.world_size() > 1:
            local = distributed.local_rank()
            if device.index is not None and device.index != local:
                raise ConfigError(f"runtime.device={name}: with several processes each one uses cuda:LOCAL_RANK "
                                  f"(here cuda:{local}); set runtime.device=cuda or auto")
            device = torch.device("cuda", local)
        return device

    def _bf16_ok(self) -> bool:
        """bf16 runs here at all (on a CPU without bf16 instructions oneDNN emulates it)."""
        if self.device.type == "cuda":
            return torch.cuda.is_bf16_supported()
        return bool(torch.backends.mkldnn.is_available())

    def _bf16_fast(self) -> bool:
        """bf16 is faster than fp32 here: on CUDA wherever it runs, on a CPU only with bf16
        instructions (AVX-512 BF16 or AMX tiles). Without them oneDNN emulates bf16 and a
        matrix product runs at a fraction of its fp32 speed, so ``auto`` keeps fp32."""
        if self.device.type == "cuda":
            return self._bf16_ok()
        return self._bf16_ok() and cpu_has_bf16()

    @property
    def world_size(self) -> int:
        """Processes training together (1 unless started by torchrun)."""
        return distributed.world_size()

    @property
    def rank(self) -> int:
        return distributed.rank()

    @property
    def dtype(self) -> torch.dtype:
        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]

    # ------------------------------------------------------------------ placement
    def module(self, m: nn.Module) -> nn.Module:
        if self.cfg.sync_batchnorm and self.world_size > 1:
            m = nn.SyncBatchNorm.convert_sync_batchnorm(m)  # keeps the Parameter objects
        m = m.to(self.device)
        if self.channels_last:
            m = m.to(memory_format=torch.channels_last)
        return m

    def tensor(self, x):
        """A tensor (or a dict of them: a batch of fields) on the device, images in the
        runtime's memory format."""
        if isinstance(x, dict):
            return {k: self.tensor(v) for k, v in x.items()}
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    # ------------------------------------------------------------------ randomness
    def randn(self, n: int, *shape: int) -> torch.Tensor:
        """``torch.randn(n, *shape)`` on the device from the global RNG. With several
        processes, ``n`` is this process's share: the draw is made for the global batch
        (n * world_size rows, the same on every process) and this process keeps its rows."""
        return distributed.sharded_randn((n,) + shape, device=self.device)

    def rand(self, n: int, *shape: int) -> torch.Tensor:
        """Uniform counterpart of :meth:`randn`."""
        return distributed.sharded_rand((n,) + shape, device=self.device)

    # ------------------------------------------------------------------ optimisation
    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, name: str) -> None:
        """Backward ``loss`` and step ``optimizer`` (with a gradient scaler under fp16); with
        several processes the gradients are averaged across them in between."""
        optimizer.zero_grad(set_to_none=True)
        sync = self.world_size > 1
        if self.precision != "fp16":
            loss.backward()
            if sync:
                distributed.all_reduce_grads_(p for g in optimizer.param_groups for p in g["params"])
            optimizer.step()
            return
        scaler = self._scalers.setdefault(name, torch.amp.GradScaler(self.device.type))
        scaler.scale(loss).backward()
        if sync:  # scaled gradients: the scale is the same everywhere, see the module docstring
            distributed.all_reduce_grads_(p for g in optimizer.param_groups for p in g["params"])
        scaler.step(optimizer)
        scaler.update()

    def state_dict(self) -> Dict[str, dict]:
        return {name: s.state_dict() for name, s in self._scalers.items()}

    def load_state_dict(self, state: Optional[Dict[str, dict]]) -> None:
        for name, s in (state or {}).items():
            scaler = self._scalers.setdefault(name, torch.amp.GradScaler(self.device.type))
            scaler.load_state_dict(s)

    def describe(self) -> str:
        out = f"{self.device.type}, {self.precision}" + (", channels_last" if self.channels_last else "")
        if self.device.type == "cpu" and os.environ.get(HUGE_PAGES) == "1":
            out += ", huge pages"
        if self.world_size > 1:
            out += f", {self.world_size} processes"
        return out
