"""Variational auto-encoder (Kingma & Welling 2014): the baseline the lectures set VAE-GAN against.

An encoder q(z|x) = N(mu(x), diag(exp(logvar(x)))) and a decoder p(x|z) (the generator) are
trained together to maximise the evidence lower bound of each training image x,

    ELBO(x) = E_{q(z|x)}[log p(x|z)] - KL(q(z|x) || N(0, I)) <= log p(x),

with one sample of z per image through the reparameterisation z = mu + exp(logvar / 2) * eps,
eps ~ N(0, I) (the noise is outside the network, so the gradient reaches mu and logvar), and
the KL term in closed form, 0.5 * sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j). The loss is
-ELBO averaged over the batch (nats per image). Both networks are the ``vae`` generator
(:mod:`gankit.nets.vae`: the DCGAN discriminator's body reads the Gaussian, the DCGAN
generator decodes).

The likelihood p(x|z) (``likelihood``):

* ``gaussian`` (the default): a Gaussian around the decoder's output with one learned standard
  deviation per channel, integrated over each pixel's 8-bit bin (the bin of value v is
  [v - 1/2, v + 1/2] / 127.5 - 1; the two end bins reach to -inf and +inf). Pixels are 8-bit
  values, so this is a probability of the stored image and the ELBO a true lower bound on
  its log-probability: nats per image and bits per dimension (-ELBO / (C H W ln 2)) compare
  with any other model of the same 8-bit pictures. The learned scale also sets the balance of
  reconstruction and KL by itself (no weight to tune).
* ``bernoulli``: each pixel's intensity (x + 1) / 2 taken as the probability target of a
  Bernoulli with logits 2a, a the decoder's output before its Tanh (tanh(a) = 2 sigmoid(2a) -
  1, so the decoder's picture is the Bernoulli mean): the cross-entropy that VAEs on MNIST
  often train with. Grey values are not Bernoulli outcomes, so this "ELBO" is a training
  criterion, not a bound on the probability of 8-bit images; compare it only between
  Bernoulli runs.

Sampling (shared with :mod:`gankit.methods.vaegan`, class :class:`Codes`): without a given
picture ``x`` is decoded from the prior, G(z), z ~ N(0, I). Given pictures (``given={"input":
...}``, ``gankit sample RUN --input FILE_OR_FOLDER``) ``x`` is each picture's reconstruction
G(mu(input)) (the mean code, so a reconstruction is a function of its picture), with the
outputs ``input`` and ``sample`` (a decoded prior draw, for comparison) beside it; the VAE also
returns ``elbo``, each picture's ELBO in nats with one draw of z (the sampling noise serves
as eps). Evaluation gives the held-out split's pictures as inputs, so there ``fid`` is the FID
of reconstructions; the metrics ``sample_fid`` and ``sample_sharpness`` judge the prior
samples, ``reconstruction_error`` the reconstructions (``reconstruction_error``: mean absolute
error in [0, 1]; ``reconstruction_sharpness``: the gradient energy of the reconstructions over
that of their inputs, pix2pix's ``sharpness``) and ``elbo`` the held-out ELBO
(``elbo`` in nats per image, ``elbo_bits_per_dim``).
"""
from __future__ import annotations

import math
from typing import Dict, List, Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config
from ..errors import ConfigError
from ..metrics import vae as _vae_metrics  # noqa: F401 - registers elbo, reconstruction_error, sample_fid, sample_sharpness
from ..nets.vae import is_vae
from ..registries import METHODS
from ..train.runtime import Runtime
from .base import Batch, Contract, DataInfo, Method

__all__ = ["VAE", "Codes", "gaussian_kl", "discretized_gaussian_log_likelihood", "bernoulli_log_likelihood",
           "reparameterize", "elbo"]

Tensor = torch.Tensor

#: half the width of one 8-bit pixel bin in model space ([-1, 1]: values v / 127.5 - 1)
HALF_BIN = 1.0 / 255.0


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per sample (N,), summed over the code, float32."""
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)


def reparameterize(mu: Tensor, logvar: Tensor, eps: Tensor) -> Tensor:
    """z = mu + exp(logvar / 2) * eps: a draw of q(z|x) that is differentiable in mu and logvar."""
    return mu + torch.exp(0.5 * logvar) * eps.to(mu.dtype)


def discretized_gaussian_log_likelihood(x: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
    """log P(x) per image (N,) of 8-bit pictures ``x`` (model space: v / 127.5 - 1) under a
    Gaussian of ``mean`` (N, C, H, W) and per-channel log standard deviation ``log_scale`` (C,),
    integrated over each pixel's bin (the end bins open to -inf and +inf). float32.

    A bin's probability is a difference of two normal CDFs, taken on the side of the mean
    where both are small (no cancellation near 1); where it falls below 1e-5 the density at
    the bin's centre times the bin's width stands in for it."""
    x, mean = x.float(), mean.float()
    log_scale = log_scale.float().view(1, -1, *([1] * (x.dim() - 2)))
    inv = torch.exp(-log_scale)
    centred = x - mean
    upper, lower = inv * (centred + HALF_BIN), inv * (centred - HALF_BIN)
    right = centred > 0
    mass = torch.where(right, torch.special.ndtr(-lower) - torch.special.ndtr(-upper),
                       torch.special.ndtr(upper) - torch.special.ndtr(lower))
    log_density = (-0.5 * (inv * centred).square() - log_scale - 0.5 * math.log(2 * math.pi)
                   + math.log(2 * HALF_BIN))
    middle = torch.where(mass > 1e-5, torch.log(mass.clamp_min(1e-12)), log_density)
    first = torch.special.log_ndtr(upper)          # value 0: everything below the first bin's upper edge
    last = torch.special.log_ndtr(-lower)          # value 255: everything above the last bin's lower edge
    out = torch.where(x < -1.0 + HALF_BIN, first, torch.where(x > 1.0 - HALF_BIN, last, middle))
    return out.flatten(1).sum(1)


def bernoulli_log_likelihood(x: Tensor, logits: Tensor) -> Tensor:
    """sum over pixels of t log sigmoid(l) + (1 - t) log(1 - sigmoid(l)), t = (x + 1) / 2 the
    intensity in [0, 1], per image (N,), float32."""
    target = x.float().add(1.0).div(2.0)
    return -F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none").flatten(1).sum(1)


def elbo(net: nn.Module, x: Tensor, eps: Tensor, likelihood: str = "gaussian") -> Dict[str, Tensor]:
    """The ELBO of each image of ``x`` (N,) under the VAE ``net`` with one draw of z (noise
    ``eps``, (N, z_dim)), and its parts: ``log_likelihood`` (N,), ``kl`` (N,), ``elbo`` (N,),
    and the decoded ``mean`` (images in [-1, 1])."""
    mu, logvar = net.encode(x)
    z = reparameterize(mu, logvar, eps)
    if likelihood == "gaussian":
        mean = net.decode(z)
        log_lik = discretized_gaussian_log_likelihood(x, mean, net.log_scale)
    else:
        pre = net.decode_pre_tanh(z)
        log_lik = bernoulli_log_likelihood(x, 2.0 * pre)
        mean = torch.tanh(pre)
    kl = gaussian_kl(mu, logvar)
    return {"elbo": log_lik - kl, "log_likelihood": log_lik, "kl": kl, "mean": mean, "mu": mu, "logvar": logvar}


class Codes:
    """Sampling of the auto-encoding methods (vae, vaegan): prior samples without a given
    picture; given pictures, their reconstructions as ``x`` beside the ``input`` and a prior
    ``sample`` (see the module). Mixed into a :class:`~gankit.methods.base.Method`."""

    def build_vae(self) -> nn.Module:
        """The ``generator`` role's network, refused with what to pick unless it is a VAE."""
        net = self.build_noise_generator()
        if not is_vae(net):
            name = self.network_name("generator")
            raise ConfigError(f"method {self.cfg.method['name']} needs an encoder and a decoder in its generator "
                              f"role, but generator '{name}' only decodes; set generator.name=vae (or auto)")
        return net

    def draw_conditions(self, n: int, generator: Optional[torch.Generator] = None) -> Dict[str, Tensor]:
        return {}     # nothing given: samples from the prior

    def generate(self, z: Tensor, given: Dict[str, Tensor]) -> Dict[str, Tensor]:
        net = self.for_sampling()
        if "input" not in given:
            return {"x": net(z)}
        c = given["input"]
        mu, logvar = net.encode(c)
        out = {"x": net.decode(mu), "input": c, "sample": net(z)}
        out.update(self.extra_outputs(net, c, z))
        return out

    def extra_outputs(self, net: nn.Module, c: Tensor, z: Tensor) -> Dict[str, Tensor]:
        """Further per-picture outputs for given pictures ``c`` (the VAE: its ELBO)."""
        return {}


class VAE(Codes, Method):
    contract = Contract(needs=("x",), conditions=("input",), inputs={"input": "x"},
                        roles={"generator": "generator"}, auto={"generator": "vae"},
                        metrics=("elbo", "reconstruction_error", "sample_fid", "sample_sharpness"),
                        optim={"lr_g": 1e-3, "beta1": 0.9}, data_kinds=("image",))

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, likelihood: str):
        super().__init__(runtime, info, cfg)
        if likelihood not in ("gaussian", "bernoulli"):
            raise ConfigError(f"method.likelihood must be gaussian or bernoulli, got {likelihood!r}")
        self.likelihood = likelihood
        net = self.add_module("generator", self.build_vae())
        self.opt = self.add_optimizer("generator", net.parameters())
        self.enable_ema()

    def train_step(self, batches: List[Batch], step: int) -> Dict[str, Tensor]:
        net, rt = self.generator, self.rt
        x = batches[0]["x"]
        eps = rt.randn(len(x), net.z_dim)
        with rt.autocast():
            parts = elbo(net, x, eps, self.likelihood)
        loss = -parts["elbo"].mean()
        rt.step(loss, self.opt, "generator")
        self.update_ema()
        self.step_schedulers()
        with torch.no_grad():
            dims = math.prod(x.shape[1:])
            return {"loss": loss.detach(), "kl": parts["kl"].detach().mean(),
                    "log_likelihood": parts["log_likelihood"].detach().mean(),
                    "bits_per_dim": loss.detach() / (dims * math.log(2.0)),
                    "scale": net.log_scale.detach().exp().mean()}

    def extra_outputs(self, net: nn.Module, c: Tensor, z: Tensor) -> Dict[str, Tensor]:
        return {"elbo": elbo(net, c, z, self.likelihood)["elbo"]}


@METHODS.register("vae")
def vae(runtime, info, cfg, /, likelihood: Literal["gaussian", "bernoulli"] = "gaussian") -> VAE:
    """Variational auto-encoder trained on the ELBO: encoder (DCGAN discriminator body) -> Gaussian
    code -> decoder (DCGAN generator); likelihood: gaussian (learned scale, over 8-bit bins: a true
    bound in nats and bits per dimension) or bernoulli (intensities as probabilities)."""
    return VAE(runtime, info, cfg, likelihood)


vae.contract = VAE.contract
