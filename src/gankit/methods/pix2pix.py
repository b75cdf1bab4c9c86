"""pix2pix (Isola et al. 2017): image-to-image translation by a conditional GAN plus an L1 term.

"Conditional Generation by GAN" in the lectures, image-to-image: a network trained only to
regress the target (the "traditional supervised approach") averages the outputs that fit
an input into a blur; a conditional GAN, whose discriminator judges (input, output) pairs,
picks one sharp output but may drift from the target; adding "stay close to the target"
keeps it faithful. The generator G (a U-Net, :mod:`gankit.nets.pix2pix`) maps the data's
``input`` field c to x; the discriminator (a PatchGAN by default) sees c and an image
stacked along the channels and judges every patch. The generator minimises

    adv_weight * L_G(D(c, G(c))) + l1_weight * E|x - G(c)|

(the paper's lambda = 100 is ``l1_weight``), so ``adv_weight: 0`` is the supervised
regressor ("L1 alone"; the discriminator is then not trained), ``l1_weight: 0`` the
conditional GAN alone, and both the paper's "cGAN + L1". The discriminator minimises
L_D(D(c, x), D(c, G(c))) / 2 (the paper halves it to slow D down); L is any objective of the
``gan`` method (``objective``), averaged over the discriminator's patches. As in the paper
there is no noise vector: dropout in the generator is its noise. Each iteration runs G once
per real batch: the discriminator's update sees that output detached, and the generator's
update (on the last real batch) reuses it against the updated discriminator, as the
paper's code does.

Inputs of another size than x (``data.pairs=lowres2``, ``lowres4``) are brought to x's size
by bicubic interpolation before G and D see them.

Sampling: given inputs (``given={"input": ...}``, ``gankit sample --input``) give one
output each; outputs are ``x`` and the ``input`` used. Sampling puts the networks in eval
mode, so dropout is off and an output is a function of its input, unless ``dropout=True``
(``gankit sample --dropout``) keeps it on, as the paper does at test time, so that several
outputs for one input differ. Inputs larger than the training size (or of any other size)
go through in tiles (:mod:`gankit.methods._tiles`). With no inputs given
(the sample grids during training, distribution metrics on generated samples alone) the
inputs are drawn from a pool of the first ``pool`` training inputs the run saw, kept in
the checkpoint (``extra_state``), so a run samples without its data set and the same way
after a resume. Evaluation (:func:`gankit.metrics.evaluate.evaluate_run`) does not draw from
the pool: it translates the held-out split's inputs and compares the outputs with their
targets (``l1``, ``psnr``, ``ssim``, ``sharpness``) and, as distributions, with the
held-out images (FID ...).
"""
from __future__ import annotations

from typing import Any, Dict, List, Union

import torch
import torch.nn.functional as F

from ..config import Config
from ..errors import ConfigError
from ..registries import METHODS, OBJECTIVES
from ..train.runtime import Runtime
from .base import Batch, Contract, DataInfo, discriminator_logs, check_positive
from .gan import regularise_discriminator
from ._paired import Paired, image_fields

__all__ = ["Pix2Pix"]

Tensor = torch.Tensor
ObjectiveSpec = OBJECTIVES.spec_type()


class Pix2Pix(Paired):
    contract = Contract(needs=("x", "input"), conditions=("input",),
                        auto={"generator": "unet", "discriminator": "patchgan"},
                        metrics=("l1", "psnr", "ssim", "sharpness"))

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, objective: Union[str, Dict[str, Any]],
                 l1_weight: float, adv_weight: float, d_steps: int, pool: int, spectral_norm: bool):
        super().__init__(runtime, info, cfg)
        check_positive("method.d_steps", d_steps)
        check_positive("method.pool", pool)
        self.d_steps = self.real_batches_per_step = d_steps
        for key, value in (("l1_weight", l1_weight), ("adv_weight", adv_weight)):
            if not value >= 0:
                raise ConfigError(f"method.{key} must not be negative, got {value}")
        if l1_weight == 0 and adv_weight == 0:
            raise ConfigError("method.l1_weight and method.adv_weight are both 0: the generator would learn nothing; "
                              "set l1_weight (100 in the paper), adv_weight (1) or both")
        self.l1_weight, self.adv_weight, self.pool_size = float(l1_weight), float(adv_weight), pool
        self.objective = OBJECTIVES.build_spec(objective, key="method.objective")

        f_in, f_x = image_fields(info, "pix2pix", "translates images to images",
                                 "trains on a field 'input' (the picture to translate); pair the data with "
                                 "data.pairs (edges, grey, mask, lowres2, lowres4)")
        (c_in, h_in, w_in), (c_x, h, w) = f_in.shape, f_x.shape
        if h % h_in or w % w_in or h // h_in != w // w_in:
            raise ConfigError(f"method pix2pix needs inputs of x's size ({h}x{w}) or that size divided by a whole "
                              f"factor, got {h_in}x{w_in}")
        self.size, self.factor = (h, w), h // h_in     # low-resolution inputs: enlarged by the factor
        g = self.build_network("generator")
        if getattr(g, "z_dim", 0):
            raise ConfigError(f"generator '{self.network_name('generator')}' maps noise to images; method pix2pix "
                              "needs an image-to-image generator: set generator.name=unet (or auto)")
        if getattr(g, "in_channels", c_in) != c_in:
            raise ConfigError(f"generator '{self.network_name('generator')}' takes {g.in_channels} channels but the "
                              f"inputs have {c_in}")
        d = self.build_network("discriminator", info.with_shape((c_in + c_x, h, w)))
        regularise_discriminator(d, "none", spectral_norm)
        self.opt_g, self.opt_d = self.add_pair(g, d)
        self.keep_conditions(pool)   # training inputs, for sampling without given ones
        self._pending = None    # (batch, c, G(c)) of the last discriminator update, for the generator's

    # ------------------------------------------------------------------ pieces
    def condition(self, c: Tensor) -> Tensor:
        """The input at x's size (bicubic upsampling of low-resolution inputs by the data's
        factor, so pictures of any size, or tiles of them, are enlarged alike), model space."""
        if self.factor != 1:
            size = (c.shape[-2] * self.factor, c.shape[-1] * self.factor)
            c = F.interpolate(c.float(), size=size, mode="bicubic", align_corners=False).clamp_(-1, 1)
        return c

    def translate(self, net, c: Tensor) -> Tensor:
        """The output for the input ``c`` (model space) by the generator ``net``: ``net(c)``;
        subclasses may build the output from the input and the network's (a mask, a correction)."""
        return net(c)

    def pair(self, c: Tensor, x: Tensor) -> Tensor:
        """What the discriminator judges: the input and an image stacked along the channels."""
        return torch.cat([c.to(x.dtype), x], 1)

    def generate(self, z: Tensor, given: Dict[str, Tensor]) -> Dict[str, Tensor]:
        if "input" not in given:
            raise ConfigError("this pix2pix run has no inputs to translate: give them (gankit sample --input FOLDER, "
                              "or given={'input': images}); runs draw their own only after training has begun")
        c = given["input"]
        return {"x": self.translate(self.for_sampling(), self.condition(c)), "input": c}

    # ------------------------------------------------------------------ the two updates
    def discriminator_step(self, batch: Batch) -> Dict[str, Tensor]:
        if self.adv_weight == 0:       # L1 alone: the discriminator plays no part
            return {}
        G, D, rt, obj = self.generator, self.discriminator, self.rt, self.objective
        c, x = self.condition(batch["input"]), batch["x"]
        with rt.autocast():
            fake = self.translate(G, c)
            d_real = D(self.pair(c, x)).flatten()
            d_fake = D(self.pair(c, fake.detach())).flatten()
        loss = 0.5 * obj.d_loss(d_real, d_fake)
        rt.step(loss, self.opt_d, "discriminator")
        self._pending = (batch, c, fake)
        return discriminator_logs(obj, loss, d_real, d_fake)

    def generator_step(self, batches: List[Batch]) -> Dict[str, Tensor]:
        G, D, rt = self.generator, self.discriminator, self.rt
        batch = batches[-1]
        x = batch["x"]
        if self._pending is not None and self._pending[0] is batch:
            _, c, fake = self._pending
        else:
            c = self.condition(batch["input"])
            with rt.autocast():
                fake = self.translate(G, c)
        l1 = (fake.float() - x.float()).abs().mean()
        loss = self.l1_weight * l1
        logs = {"l1": l1.detach()}
        if self.adv_weight:
            with rt.autocast():
                adv = self.objective.g_loss(D(self.pair(c, fake)).flatten())
            loss = loss + self.adv_weight * adv
            logs["g_loss"] = adv.detach()
        rt.step(loss, self.opt_g, "generator")
        return logs


@METHODS.register("pix2pix")
def pix2pix(runtime, info, cfg, /, l1_weight: float = 100.0, adv_weight: float = 1.0,
            objective: ObjectiveSpec = "nonsaturating", d_steps: int = 1, pool: int = 256,
            spectral_norm: bool = False) -> Pix2Pix:
    """pix2pix: U-Net G(input) and a PatchGAN on (input, image) pairs; l1_weight (paper: 100) and
    adv_weight make L1 alone, GAN alone or GAN + L1; any objective; pool: training inputs kept
    for sampling without given inputs."""
    return Pix2Pix(runtime, info, cfg, objective, l1_weight, adv_weight, d_steps, pool, spectral_norm)


pix2pix.contract = Pix2Pix.contract
