"""PixelCNN (van den Oord et al. 2016): the autoregressive baseline with an exact likelihood.

The lectures set GANs beside models that give the probability of a picture (PixelRNN and its
convolutional sibling): such a model writes p(x) = prod_i p(x_i | x_1 .. x_{i-1}) over the
pixels in raster order and can be trained by maximum likelihood directly, with no
discriminator. Here each 8-bit channel value is a 256-way categorical, given by the gated
PixelCNN of :mod:`gankit.nets.pixelcnn` (vertical and horizontal stacks, no blind spot) in
the ``generator`` role. The loss is the exact negative log-likelihood of the training pictures
(cross-entropy of every pixel's categorical at its stored value), logged per dimension in
nats (``loss``) and in bits (``bits_per_dim`` = NLL / (C H W ln 2)), with ``nll``, nats per
picture.

Sampling draws the pixels one by one for the whole batch at once; the noise of a sample is one
standard normal number per pixel and channel (``z_dim`` = C H W), turned into a uniform number
through the normal distribution function and into a value through the inverse of the pixel's
categorical distribution function, so a seed fixes the pictures as for any other method. Each
sample's exact log-probability comes with it as the output ``log_prob`` (nats).

Evaluation adds the metric ``bits_per_dim`` (:mod:`gankit.metrics.likelihood`): the exact NLL
of the held-out split's pictures in bits per dimension and nats per picture, the number that
the lectures' likelihood-based models are compared by and that a GAN cannot give (its
Parzen-window estimate stands in; see ``gankit experiment likelihood-vs-quality --pixelcnn
RUN``).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config
from ..errors import ConfigError
from ..metrics import likelihood as _likelihood_metrics  # noqa: F401 - registers bits_per_dim
from ..nets.pixelcnn import from_levels, is_pixelcnn, to_levels
from ..registries import METHODS
from ..train.runtime import Runtime
from .base import Batch, Contract, DataInfo, Method

__all__ = ["PixelCNN", "nll_per_image"]

Tensor = torch.Tensor


def nll_per_image(net: nn.Module, x: Tensor) -> Tensor:
    """Exact negative log-likelihood in nats (N,) of pictures ``x`` in model space (8-bit
    values v / 127.5 - 1) under the autoregressive ``net``; differentiable."""
    levels = to_levels(x)
    logits = net(from_levels(levels)).float()
    return F.cross_entropy(logits, levels, reduction="none").flatten(1).sum(1)


class PixelCNN(Method):
    contract = Contract(needs=("x",), roles={"generator": "generator"}, auto={"generator": "pixelcnn"},
                        metrics=("bits_per_dim",), optim={"lr_g": 1e-3, "beta1": 0.9}, data_kinds=("image",))

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, temperature: float):
        super().__init__(runtime, info, cfg)
        if not temperature > 0:
            raise ConfigError(f"method.temperature must be positive (1: the model's own distribution), got {temperature}")
        self.temperature = float(temperature)
        net = self.build_network("generator")
        if not is_pixelcnn(net):
            raise ConfigError(f"method pixelcnn needs an autoregressive pixel model in its generator role, but "
                              f"generator '{self.network_name('generator')}' is not one; set generator.name=pixelcnn "
                              "(or auto)")
        net = self.add_module("generator", net)
        self.opt = self.add_optimizer("generator", net.parameters())
        self.enable_ema()

    def train_step(self, batches: List[Batch], step: int) -> Dict[str, Tensor]:
        net, rt = self.generator, self.rt
        x = batches[0]["x"]
        dims = math.prod(x.shape[1:])
        with rt.autocast():
            nll = nll_per_image(net, x)
        loss = nll.mean() / dims           # nats per dimension: a scale-free step for the optimiser
        rt.step(loss, self.opt, "generator")
        self.update_ema()
        self.step_schedulers()
        with torch.no_grad():
            return {"loss": loss.detach(), "bits_per_dim": loss.detach() / math.log(2.0),
                    "nll": nll.detach().mean()}

    def draw_conditions(self, n: int, generator: Optional[torch.Generator] = None) -> Dict[str, Tensor]:
        return {}

    def generate(self, z: Tensor, given: Dict[str, Tensor]) -> Dict[str, Tensor]:
        levels, log_prob = self.for_sampling().sample(z, self.temperature)
        return {"x": from_levels(levels), "log_prob": log_prob.float()}

    @torch.no_grad()
    def log_prob(self, x: Tensor, batch_size: int = 500) -> Tensor:
        """Exact log-probability in nats (N,) of pictures ``x`` (model space, on any device),
        under the sampling network (the moving average when kept), batch by batch, float64."""
        net = self.for_sampling()
        mode = net.training
        net.eval()
        try:
            parts = [-nll_per_image(net, x[i:i + batch_size].to(self.rt.device)).double().cpu()
                     for i in range(0, len(x), batch_size)]
        finally:
            net.train(mode)
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


@METHODS.register("pixelcnn")
def pixelcnn(runtime, info, cfg, /, temperature: float = 1.0) -> PixelCNN:
    """Gated PixelCNN trained by exact maximum likelihood (each pixel a 256-way categorical given
    the pixels before it); samples drawn pixel by pixel; temperature divides the logits when
    sampling (1: the model's distribution). Reports bits per dimension."""
    return PixelCNN(runtime, info, cfg, temperature)


pixelcnn.contract = PixelCNN.contract
