"""The one place that decides device, precision and memory format.

Methods stay plain PyTorch: they build their networks through :meth:`Runtime.module`,
run forward passes under :meth:`Runtime.autocast`, and step optimisers through
:meth:`Runtime.step`, and so run unchanged on CPU or CUDA, in fp32, bf16 or fp16.
"""
from __future__ import annotations

import contextlib
import os
from typing import Dict, Optional

import torch
from torch import nn

from ..config import RuntimeConfig
from ..errors import ConfigError

__all__ = ["Runtime"]


class Runtime:
    def __init__(self, cfg: RuntimeConfig, data_kind: str = "image"):
        self.cfg = cfg
        self.device = self._device(cfg.device)
        precision = cfg.precision
        if precision == "auto":
            precision = "bf16" if data_kind == "image" and self._bf16_ok() else "fp32"
        if precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("runtime.precision=fp16 needs a CUDA device; on CPU use bf16 or fp32")
        if precision == "bf16" and not self._bf16_ok():
            raise ConfigError(f"runtime.precision=bf16 is not supported on {self.device}; use fp32")
        self.precision = precision
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
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(name)
        except RuntimeError:
            raise ConfigError(f"runtime.device: {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("runtime.device asks for CUDA but no CUDA device is available; use runtime.device=cpu")
        if device.type not in ("cpu", "cuda"):
            raise ConfigError(f"runtime.device: {name!r} is not supported; use auto, cpu, cuda or cuda:N")
        return device

    def _bf16_ok(self) -> bool:
        if self.device.type == "cuda":
            return torch.cuda.is_bf16_supported()
        return bool(torch.backends.mkldnn.is_available())

    @property
    def dtype(self) -> torch.dtype:
        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]

    # ------------------------------------------------------------------ placement
    def module(self, m: nn.Module) -> nn.Module:
        m = m.to(self.device)
        if self.channels_last:
            m = m.to(memory_format=torch.channels_last)
        return m

    def tensor(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    # ------------------------------------------------------------------ optimisation
    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, name: str) -> None:
        """Backward ``loss`` and step ``optimizer`` (with a gradient scaler under fp16)."""
        optimizer.zero_grad(set_to_none=True)
        if self.precision != "fp16":
            loss.backward()
            optimizer.step()
            return
        scaler = self._scalers.setdefault(name, torch.amp.GradScaler(self.device.type))
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    def state_dict(self) -> Dict[str, dict]:
        return {name: s.state_dict() for name, s in self._scalers.items()}

    def load_state_dict(self, state: Optional[Dict[str, dict]]) -> None:
        for name, s in (state or {}).items():
            scaler = self._scalers.setdefault(name, torch.amp.GradScaler(self.device.type))
            scaler.load_state_dict(s)

    def describe(self) -> str:
        return f"{self.device.type}, {self.precision}" + (", channels_last" if self.channels_last else "")
