"""runtime.precision=auto: bf16 autocast only where the processor runs bf16 natively."""
import pytest
import torch

from gankit.config import RuntimeConfig
from gankit.hardware import cpu_has_bf16
from gankit.train.runtime import Runtime


def _cpu(monkeypatch, avx512_bf16: bool, amx: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)


@pytest.mark.parametrize("avx512_bf16,amx,expected", [(False, False, "fp32"), (True, False, "bf16"),
                                                      (False, True, "bf16"), (True, True, "bf16")])
def test_auto_precision_follows_the_bf16_instructions(monkeypatch, avx512_bf16, amx, expected):
    _cpu(monkeypatch, avx512_bf16, amx)
    assert cpu_has_bf16() is (expected == "bf16")
    assert Runtime(RuntimeConfig(device="cpu"), data_kind="image").precision == expected
    assert Runtime(RuntimeConfig(device="cpu"), data_kind="vector").precision == "fp32"


def test_explicit_bf16_still_runs_without_the_instructions(monkeypatch):
    _cpu(monkeypatch, False, False)
    rt = Runtime(RuntimeConfig(device="cpu", precision="bf16"), data_kind="image")
    assert rt.precision == "bf16"
    with rt.autocast():
        out = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16
