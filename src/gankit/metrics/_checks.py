"""Input checks shared by the metric functions.

Every public metric accepts features as a numpy array, a torch tensor (any device, any
float dtype) or a nested list, shaped (N, D).  The helpers here turn them into numpy
arrays and raise ``ValueError`` with a message that says what is wrong and what to pass
instead.  They never import anything else from gankit.
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["as_features", "check_same_dim", "check_positive_int"]


def _to_numpy(x, name: str) -> np.ndarray:
    """A numpy view or copy of ``x``, without changing float32/float64 data."""
    if type(x).__module__.startswith("torch"):
        import torch  # imported lazily: numpy input must not need torch

        if isinstance(x, torch.Tensor):
            t = x.detach().cpu()
            if t.is_complex():
                raise ValueError(f"{name} must be real-valued, got a complex tensor ({t.dtype})")
            if t.dtype not in (torch.float32, torch.float64):
                # float16 / bfloat16 / integer tensors: widen exactly to float64
                t = t.to(torch.float64)
            return t.numpy()
    try:
        return np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be read as an (N, D) array: {exc}") from None


def as_features(x, name: str = "features", min_samples: int = 2) -> np.ndarray:
    """Check an (N, D) feature array and return it as numpy (dtype kept when floating).

    Raises ``ValueError`` for a wrong number of dimensions, a non-numeric dtype, NaN or
    infinite values, D == 0, or fewer than ``min_samples`` rows.
    """
    a = _to_numpy(x, name)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (N, D) (one row per sample), "
                         f"got an array with {a.ndim} dimension(s) and shape {tuple(a.shape)}")
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    n, d = a.shape
    if d == 0:
        raise ValueError(f"{name} has shape {tuple(a.shape)}: each sample needs at least one feature")
    if n < min_samples:
        raise ValueError(f"{name} has {n} sample(s); at least {min_samples} are needed")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: features contain NaN or infinite values "
                         f"({int(np.isnan(a).sum())} NaN, {int(np.isinf(a).sum())} inf); "
                         "check the generator output and the feature extractor")
    return a


def check_same_dim(a: np.ndarray, b: np.ndarray, name_a: str = "real", name_b: str = "fake") -> None:
    """Raise unless the two (N, D) arrays have the same feature dimension D."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {name_a} has D={a.shape[1]}, "
                         f"{name_b} has D={b.shape[1]}; both sets must come from the same feature extractor")


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int, raising ``ValueError`` unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
