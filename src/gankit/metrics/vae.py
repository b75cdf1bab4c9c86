"""Metrics of auto-encoding runs (methods ``vae`` and ``vaegan``).

Evaluation gives such a run the held-out split's pictures as inputs; each generated sample
then carries the ``input``, its reconstruction (the sample's ``x``), a ``sample`` decoded from
the prior and, for the VAE, its ``elbo`` (nats, one draw of the code). So the default ``fid``
judges reconstructions, and these metrics add the rest:

* ``elbo``: the held-out ELBO, ``elbo`` in nats per image and ``elbo_bits_per_dim``
  (-ELBO / (dimensions * ln 2));
* ``reconstruction_error``: the mean absolute error of reconstructions
  against their inputs (pixels in [0, 1]), and ``reconstruction_sharpness``, their gradient
  energy over the inputs' (pix2pix's ``sharpness``: 1 as much fine detail as the pictures,
  below 1 blur);
* ``sample_fid``: FID of the prior samples against the real pictures;
* ``sample_sharpness``: the prior samples' gradient energy over that of the real pictures.
"""
from __future__ import annotations

import math
from typing import Dict

import numpy as np

from ..errors import ConfigError
from ..registries import METRICS
from .evaluate import EvalSet
from .paired import gradient_energy, l1_error

__all__ = ["elbo_metric", "reconstruction_metric", "sample_fid", "sample_sharpness"]


def _needs(s: EvalSet, name: str, metric: str):
    if name not in s.outputs_local:
        raise ConfigError(f"{metric} needs the output '{name}' of each sample: evaluate a run of method vae"
                          f"{'' if name == 'elbo' else ' or vaegan'} (which reconstructs the held-out pictures)")
    return s.output(name)


def _ratio(a, b) -> float:
    return float(np.mean(gradient_energy(a)) / max(float(np.mean(gradient_energy(b))), 1e-12))


@METRICS.register("elbo")
def elbo_metric(s: EvalSet, /) -> Dict[str, float]:
    """Auto-encoding runs (vae): the held-out pictures' ELBO, in nats per image (elbo) and in bits
    per dimension (elbo_bits_per_dim, -ELBO / (C H W ln 2)); one draw of the code per picture."""
    values = _needs(s, "elbo", "elbo").double()
    dims = math.prod(_needs(s, "input", "elbo").shape[1:])
    mean = float(values.mean())
    return {"elbo": mean, "elbo_bits_per_dim": -mean / (dims * math.log(2.0))}


@METRICS.register("reconstruction_error")
def reconstruction_metric(s: EvalSet, /) -> Dict[str, float]:
    """Auto-encoding runs (vae, vaegan): mean absolute error of the held-out pictures'
    reconstructions (pixels in [0, 1]; reconstruction_error) and their gradient energy over the
    pictures' (reconstruction_sharpness: below 1 is blur)."""
    inputs = _needs(s, "input", "reconstruction_error")
    return {"reconstruction_error": float(l1_error(s.fake, inputs).mean()),
            "reconstruction_sharpness": _ratio(s.fake, inputs)}


@METRICS.register("sample_fid")
def sample_fid(s: EvalSet, /) -> Dict[str, float]:
    """Auto-encoding runs (vae, vaegan): FID of the samples decoded from the prior (the output
    'sample') against the real pictures, in the evaluation's features."""
    from .fid import fid

    samples = _needs(s, "sample", "sample_fid")
    return {"sample_fid": fid(s.real_features, s._features(samples.float()))}


@METRICS.register("sample_sharpness")
def sample_sharpness(s: EvalSet, /) -> Dict[str, float]:
    """Auto-encoding runs (vae, vaegan): gradient energy of the prior samples over that of the
    real pictures (1: as much fine detail; below 1: blur)."""
    return {"sample_sharpness": _ratio(_needs(s, "sample", "sample_sharpness"), s.real)}
