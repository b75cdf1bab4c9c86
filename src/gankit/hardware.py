"""What the processor can do, asked once where a choice depends on it."""
from __future__ import annotations

import platform
from pathlib import Path

import torch

__all__ = ["cpu_has_bf16", "cpu_name"]


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 matrix instructions (AVX-512 BF16 or AMX tiles).

    Without them oneDNN still runs bf16, emulated, and a matrix product then runs at a
    fraction of its fp32 speed (about 60 against 200 GFLOP/s on an AVX-512 Xeon without
    AMX), so bf16 autocast pays only where this is true."""
    cpu = getattr(torch, "cpu", None)
    return any(bool(getattr(cpu, probe, lambda: False)())
               for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo; else what the platform says), for the
    machine line of benchmark records."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"
