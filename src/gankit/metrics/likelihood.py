"""Exact likelihood of held-out pictures, for models that have one (method ``pixelcnn``).

``bits_per_dim``: the negative log-likelihood of every picture of the split the run never
trained on, in bits per dimension, -log2 p(x) / (C H W), and in nats per picture
(``nll_nats``), with the standard error of the bits per dimension over the pictures. Pictures
are 8-bit, so p(x) is a probability (not a density) and the number compares with any other
model of the same stored pictures (a VAE's ``elbo_bits_per_dim`` is an upper bound of it).
A GAN has no such number: the Parzen-window estimate of :mod:`gankit.metrics.parzen` is what
stands in for it, and ``gankit experiment likelihood-vs-quality --pixelcnn RUN`` sets the two
side by side.
"""
from __future__ import annotations

import math
from typing import Dict

import torch

from ..errors import ConfigError
from ..registries import METRICS
from .evaluate import EvalSet

__all__ = ["bits_per_dim_metric", "bits_per_dim"]


def bits_per_dim(log_prob: torch.Tensor, dims: int) -> torch.Tensor:
    """Per-picture bits per dimension, -log_prob / (dims ln 2), from log-probabilities in nats."""
    return -log_prob.double() / (dims * math.log(2.0))


@METRICS.register("bits_per_dim")
def bits_per_dim_metric(s: EvalSet, /, n: int = 0) -> Dict[str, float]:
    """Autoregressive runs (pixelcnn): exact negative log-likelihood of the held-out split's
    pictures (the first n; 0: all of them) in bits per dimension (bits_per_dim, with its
    standard error bits_per_dim_stderr) and in nats per picture (nll_nats)."""
    method = s.method
    if method is None or not hasattr(method, "log_prob"):
        raise ConfigError("bits_per_dim needs a run of a model with an exact likelihood (method pixelcnn); a GAN "
                          "has none: use the parzen metric for its Parzen-window estimate")
    if n < 0:
        raise ConfigError(f"bits_per_dim.n must be 0 (the whole held-out split) or positive, got {n}")
    images = s.heldout
    if n:
        images = images[:n]
    if s.kind != "image" or len(images) == 0:
        raise ConfigError("bits_per_dim needs held-out pictures (an image data set with a test split)")
    x = images.float().mul(2.0).sub(1.0)            # [0, 1] -> model space; 8-bit values are kept exactly
    log_prob = method.log_prob(x)
    dims = math.prod(x.shape[1:])
    bpd = bits_per_dim(log_prob, dims)
    stderr = float(bpd.std(unbiased=True) / math.sqrt(len(bpd))) if len(bpd) > 1 else 0.0
    return {"bits_per_dim": float(bpd.mean()), "bits_per_dim_stderr": stderr,
            "nll_nats": float(-log_prob.mean()), "bits_per_dim_n": float(len(bpd))}
