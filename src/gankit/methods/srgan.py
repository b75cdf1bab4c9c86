"""SRGAN (Ledig et al. 2017): x2 and x4 super-resolution by a residual generator, a pixel
loss, a feature ("perceptual") loss and an adversarial term.

The lectures' point about conditional generation applies in full: many sharp pictures
shrink to the same small one, so a network trained only to regress the target (the
pixel-only SRResNet, the "traditional supervised approach") answers with their average,
a blur that scores the best PSNR; a discriminator that has learnt what sharp pictures
look like pushes the output towards one of them, which is sharper but, as it need not be
the target, scores a lower PSNR. The generator G (SRResNet, :mod:`gankit.nets.srresnet`)
takes the low-resolution input c (``data.pairs=lowres2`` or ``lowres4``: the factor is read
off the data) and minimises

    pixel_weight * pixel(G(c), x) + perceptual_weight * |phi(G(c)) - phi(x)|^2
        + adv_weight * L_G(D(G(c)))

where ``pixel`` is the mean squared error (``pixel_loss: mse``, the paper's SRResNet) or
the mean absolute error (``l1``), phi a feature map (below), and L any objective of the
``gan`` method (``objective``; the paper's is the non-saturating one) with its weight
(the paper's 1e-3). The discriminator (SRGAN's own by default, a strided convolution stack
with a dense head) judges the high-resolution image alone, not (input, image) pairs as
pix2pix's does, and minimises L_D(D(x), D(G(c))). ``adv_weight: 0`` with
``perceptual_weight: 0`` is the pixel-only SRResNet: the discriminator is then built but
never trained or stepped (as pix2pix's with adv_weight 0). Each iteration runs G once per
real batch: the discriminator's update sees that output detached and the generator's
update (on the last real batch) reuses it against the updated discriminator.

The feature loss (``feature_net``)
----------------------------------
The paper's phi is VGG19's 4th convolution of its 5th block, an ImageNet classifier's
deep feature maps; VGG's weights cannot be had offline, so gankit uses what it has without
a download:

* ``classifier``: the feature maps of gankit's shipped Fashion-MNIST classifier
  (:class:`~gankit.metrics.classifier.SmallCNN`, ``gankit/assets``), after its convolution
  ``feature_layer`` (1: 32 x 28 x 28, 2 and 3: 64 x 14 x 14, 4: 128 x 7 x 7, the deepest
  map, VGG54's counterpart), its weights frozen and batch norm in eval mode. It is the one
  network at hand that was trained to recognise what the pictures show, which is the
  reason the paper's perceptual loss works (its features separate what matters to a
  viewer from pixel noise). It takes grey 28x28 pictures only: other data is refused
  with what to choose instead. Caveat: the ``fashion_mnist`` feature extractor that FID
  uses on Fashion-MNIST is the same network (its dense layer on these maps), so a run with
  this loss is partly trained towards that FID's feature space; compare runs with FID on
  other features too (``--features pixels``) or with ``perceptual_weight: 0``.
* ``discriminator``: the discriminator's own feature maps (its ``features``, the maps its
  read-out sees), matched per pair: |D_f(G(c)) - D_f(x)|^2. They are learnt only through
  the adversarial term, so this needs ``adv_weight`` > 0. It works on any image data
  (colour ``photos`` patches), which the classifier does not.
* ``auto`` (the default): ``classifier`` for grey 28x28 pictures (Fashion-MNIST, MNIST),
  ``discriminator`` otherwise. With ``perceptual_weight: 0`` no feature network is used.

Sampling and evaluation
-----------------------
Given inputs (``given={"input": ...}``, ``gankit sample --input``: low-resolution pictures
of the data's input size) give one output each; outputs are ``x`` and the ``input`` used.
With no inputs given they are drawn from a pool of the first ``pool`` training inputs the
run saw, kept in the checkpoint, as pix2pix does. ``gankit eval`` enlarges the held-out
split's inputs and compares the outputs with their targets (``l1``, ``psnr``, ``ssim``,
``sharpness``, the metrics this method declares) and, as distributions, with the held-out
images (FID ...); the metric ``bicubic`` scores bicubic upsampling of the same inputs the
same way (the baseline a learnt upsampler must beat).
"""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Literal, Union

import torch
from torch import nn

from ..config import Config
from ..errors import ConfigError
from ..nets.srresnet import upscale_factor
from ..registries import METHODS, OBJECTIVES
from ..train.runtime import Runtime
from .base import Batch, Contract, DataInfo, discriminator_logs, check_positive
from .gan import regularise_discriminator
from ._paired import Paired, image_fields

__all__ = ["SRGAN", "ClassifierFeatures", "CLASSIFIER_LAYERS"]

Tensor = torch.Tensor
ObjectiveSpec = OBJECTIVES.spec_type()

#: feature_layer -> how many modules of the classifier's body lead to that convolution's maps
CLASSIFIER_LAYERS = {1: 1, 2: 3, 3: 4, 4: 6}
#: the pictures the shipped classifier takes
CLASSIFIER_SHAPE = (1, 28, 28)


class ClassifierFeatures(nn.Module):
    """The shipped Fashion-MNIST classifier's maps after its convolution ``layer`` (frozen, eval
    mode), for images in model space [-1, 1] (the classifier's own input scaling)."""

    def __init__(self, layer: int):
        super().__init__()
        from ..metrics.features import fashion_mnist

        net = copy.deepcopy(fashion_mnist(device="cpu").net)
        # the body up to the chosen convolution's maps (before any pooling after it)
        self.body = nn.Sequential(*list(net.body)[:CLASSIFIER_LAYERS[layer]]).requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "ClassifierFeatures":
        return super().train(False)           # batch norm keeps the classifier's statistics

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class SRGAN(Paired):
    contract = Contract(needs=("x", "input"), conditions=("input",),
                        auto={"generator": "srresnet", "discriminator": "srgan"},
                        metrics=("l1", "psnr", "ssim", "sharpness"))

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, objective: Union[str, Dict[str, Any]],
                 pixel_weight: float, pixel_loss: str, perceptual_weight: float, feature_net: str,
                 feature_layer: int, adv_weight: float, d_steps: int, pool: int, spectral_norm: bool):
        super().__init__(runtime, info, cfg)
        check_positive("method.d_steps", d_steps)
        check_positive("method.pool", pool)
        self.d_steps = self.real_batches_per_step = d_steps
        weights = {"pixel_weight": pixel_weight, "perceptual_weight": perceptual_weight, "adv_weight": adv_weight}
        for key, value in weights.items():
            if not value >= 0:
                raise ConfigError(f"method.{key} must not be negative, got {value}")
        if not any(weights.values()):
            raise ConfigError("method.pixel_weight, perceptual_weight and adv_weight are all 0: the generator would "
                              "learn nothing; set pixel_weight (1), perceptual_weight and adv_weight (1e-3 in the "
                              "paper)")
        self.pixel_weight, self.perceptual_weight, self.adv_weight = (float(pixel_weight), float(perceptual_weight),
                                                                      float(adv_weight))
        self.pixel_loss, self.pool_size = pixel_loss, pool
        self.objective = OBJECTIVES.build_spec(objective, key="method.objective")

        f_in, f_x = image_fields(info, "srgan", "enlarges images",
                                 "enlarges the data's field 'input' (a low-resolution picture of x); pair the "
                                 "images with data.pairs=lowres2 or lowres4")
        self.factor, c_in = upscale_factor(info, "method srgan")
        if c_in != f_x.shape[0]:
            raise ConfigError(f"method srgan enlarges a picture of x's channels ({f_x.shape[0]}), but the data's "
                              f"input has {c_in}; pair the images with data.pairs=lowres2 or lowres4")
        g = self.build_network("generator")
        if getattr(g, "z_dim", 0) or getattr(g, "factor", None) != self.factor:
            raise ConfigError(f"generator '{self.network_name('generator')}' does not enlarge the low-resolution "
                              f"input by {self.factor}; method srgan needs a super-resolution generator: set "
                              "generator.name=srresnet (or auto)")
        d = self.build_network("discriminator")
        regularise_discriminator(d, "none", spectral_norm)
        self.opt_g, self.opt_d = self.add_pair(g, d)
        self.feature_net = self._feature_net(feature_net, feature_layer, d)
        self.phi = None
        if self.feature_net == "classifier":
            self.phi = self.rt.module(ClassifierFeatures(feature_layer))
        self.keep_conditions(pool)   # low-resolution training inputs, for sampling without given ones
        self._pending = None    # (batch, G(c)) of the last discriminator update, for the generator's

    def _feature_net(self, name: str, layer: int, d: nn.Module) -> str:
        """The feature network the perceptual loss uses ('none' without one); refuses a choice
        that cannot take this data, with what to choose instead."""
        if self.perceptual_weight == 0:
            return "none"
        shape = tuple(self.info.fields["x"].shape)
        if name == "auto":
            name = "classifier" if shape == CLASSIFIER_SHAPE else "discriminator"
            if name == "discriminator" and self.adv_weight == 0:
                raise ConfigError(f"method.perceptual_weight > 0 needs a feature network: the shipped classifier takes "
                                  f"grey 28x28 pictures, not {shape}, and the discriminator's features are learnt "
                                  "only through the adversarial term, but method.adv_weight is 0; set "
                                  "method.perceptual_weight=0 (the pixel-only SRResNet) or method.adv_weight > 0")
        if name == "classifier":
            if shape != CLASSIFIER_SHAPE:
                raise ConfigError(f"method.feature_net=classifier uses the shipped Fashion-MNIST classifier, which "
                                  f"takes grey 28x28 pictures, but this data's are {shape[0]}x{shape[1]}x{shape[2]}; "
                                  "set method.feature_net=discriminator (the discriminator's features, with "
                                  "adv_weight > 0) or method.perceptual_weight=0")
        else:
            if self.adv_weight == 0:
                raise ConfigError("method.feature_net=discriminator matches the discriminator's features, which are "
                                  "learnt only through the adversarial term, but method.adv_weight is 0; set "
                                  "adv_weight > 0, feature_net=classifier (grey 28x28 data) or perceptual_weight=0")
            if not callable(getattr(d, "features", None)):
                raise ConfigError(f"discriminator '{self.network_name('discriminator')}' has no feature maps to "
                                  "match; set discriminator.name=srgan (or auto) or method.feature_net=classifier")
        return name

    # ------------------------------------------------------------------ pieces
    def features(self, x: Tensor) -> Tensor:
        """phi(x): the maps the perceptual loss compares."""
        if self.feature_net == "classifier":
            return self.phi(x)
        return self.discriminator.features(x)

    def generate(self, z: Tensor, given: Dict[str, Tensor]) -> Dict[str, Tensor]:
        if "input" not in given:
            raise ConfigError("this srgan run has no inputs to enlarge: give them (gankit sample --input FOLDER, or "
                              "given={'input': images}); runs draw their own only after training has begun")
        c = given["input"]
        return {"x": self.for_sampling()(c), "input": c}

    # ------------------------------------------------------------------ the two updates
    def discriminator_step(self, batch: Batch) -> Dict[str, Tensor]:
        if not self.adversarial:       # the pixel-only SRResNet: the discriminator plays no part
            return {}
        G, D, rt, obj = self.generator, self.discriminator, self.rt, self.objective
        with rt.autocast():
            fake = G(batch["input"])
            d_real = D(batch["x"]).flatten()
            d_fake = D(fake.detach()).flatten()
        loss = obj.d_loss(d_real, d_fake)
        rt.step(loss, self.opt_d, "discriminator")
        self._pending = (batch, fake)
        return discriminator_logs(obj, loss, d_real, d_fake)

    def generator_step(self, batches: List[Batch]) -> Dict[str, Tensor]:
        G, D, rt = self.generator, self.discriminator, self.rt
        batch = batches[-1]
        x = batch["x"]
        if self._pending is not None and self._pending[0] is batch:
            fake = self._pending[1]
        else:
            with rt.autocast():
                fake = G(batch["input"])
        diff = fake.float() - x.float()
        pixel = diff.pow(2).mean() if self.pixel_loss == "mse" else diff.abs().mean()
        loss = self.pixel_weight * pixel
        logs = {"pixel": pixel.detach()}
        if self.perceptual_weight:
            with rt.autocast():
                with torch.no_grad():
                    target = self.features(x)
                mine = self.features(fake)
            perceptual = (mine.float() - target.float()).pow(2).mean()
            loss = loss + self.perceptual_weight * perceptual
            logs["perceptual"] = perceptual.detach()
        if self.adv_weight:
            with rt.autocast():
                adv = self.objective.g_loss(D(fake).flatten())
            loss = loss + self.adv_weight * adv
            logs["g_loss"] = adv.detach()
        rt.step(loss, self.opt_g, "generator")
        return logs


@METHODS.register("srgan")
def srgan(runtime, info, cfg, /, pixel_weight: float = 1.0, pixel_loss: Literal["mse", "l1"] = "mse",
          perceptual_weight: float = 0.01, feature_net: Literal["auto", "classifier", "discriminator"] = "auto",
          feature_layer: Literal[1, 2, 3, 4] = 4, adv_weight: float = 1e-3,
          objective: ObjectiveSpec = "nonsaturating", d_steps: int = 1, pool: int = 256,
          spectral_norm: bool = False) -> SRGAN:
    """SRGAN: SRResNet G(low-resolution input) (data.pairs=lowres2, lowres4), pixel loss (mse, l1),
    feature loss (the shipped classifier's maps or the discriminator's) and adversarial term
    (paper: 1e-3) against a discriminator on the image alone; adv_weight=0, perceptual_weight=0:
    the pixel-only SRResNet; any objective; pool: training inputs kept for sampling."""
    return SRGAN(runtime, info, cfg, objective, pixel_weight, pixel_loss, perceptual_weight, feature_net,
                 feature_layer, adv_weight, d_steps, pool, spectral_norm)


srgan.contract = SRGAN.contract
