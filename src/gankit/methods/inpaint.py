"""Image completion: fill a masked region of a picture (Iizuka et al. 2017 style).

A picture x loses a region, the mask m (``data.pairs=mask``: a random rectangle,
``mask_centre``: the centred quarter of the area, ``mask_free``: brush strokes; see
:mod:`gankit.data.pairs`); the data's ``input`` is x with the region filled with mid-grey and
``mask`` is m. The generator G (role ``generator``; ``auto``: the dilated-convolution context
encoder of :mod:`gankit.nets.inpaint`, or ``unet``) sees the filled picture with the mask as
one more channel, so it knows where to paint, and returns a whole picture; only the hole is
taken from it, the known pixels are kept as they are:

    completion = m * G(input, m) + (1 - m) * input.

As in Iizuka et al., two discriminators judge the completion: the global one (role
``discriminator``) the whole picture, the local one (role ``local_discriminator``) a crop of
``local_size`` (default: half of each side, the paper's 128 of 256) centred on the box around
the hole (shifted to stay inside the picture; the real picture is cut at the same place).
The local one looks closely at the painted region, the global one at whether it fits the
rest. ``auto`` for both is ``imagegan``, one logit per picture. The generator minimises

    rec_weight * E_hole |G - x| (or squared: ``rec_loss: l2``)
      + outside_weight * E_known |G - x|
      + adv_weight * (L_G(D_global(completion)) + L_G(D_local(crop of completion)))

where E_hole averages over the pixels inside the mask (every image counts by its hole's
area) and E_known over those outside (they never reach the completion; a small weight only
steadies G near the hole's border). ``adv_weight: 0`` is the supervised baseline (the
context encoder's reconstruction loss alone: it averages the plausible fillings into a blur;
the discriminators are then built but never trained). Each discriminator minimises
L_D(D(x), D(completion)) / 2; L is any objective of the ``gan`` method (``objective``,
non-saturating by default). Each iteration runs G once per real batch: the discriminators'
updates see its completion detached, the generator's update (on the last real batch) reuses
it against the updated discriminators, as pix2pix does. Logged: ``masked_l1``, the
generator's error inside the holes of its batch (pixels in [0, 1], as the metric measures
it; training mode), and each discriminator's loss and mean outputs (``_local``: the local one).

Sampling: given ``{"input": pictures, "mask": masks}`` (model space; a mask is +1 inside,
-1 outside, as the data's ``mask`` field) the outputs are ``x`` (the completions), ``input``
and ``mask`` as given; the hole of a given input is filled with mid-grey before G sees it,
so a user's whole picture and the data's holed one give the same completion. Without given
conditions, (input, mask) pairs are drawn from a pool of the first ``pool`` training pairs the
run saw, kept in the checkpoint, so a run samples without its data set and the same way after
a resume. Evaluation completes the held-out split's inputs with their masks: ``masked_l1``
(error inside the hole; beside it ``masked_l1_fill``, the error of filling each hole with the
mean of its picture's known pixels, the trivial baseline) and ``masked_psnr``, and FID ...
of the completions against the held-out pictures.
"""
from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, Tuple, Union

import torch

from ..config import Config
from ..data.base import Field
from ..data.pairs import MASK_FILL
from ..errors import ConfigError
from ..registries import METHODS, OBJECTIVES
from ..train.runtime import Runtime
from .base import Batch, Contract, DataInfo, discriminator_logs, check_positive
from .gan import regularise_discriminator
from ._paired import Paired

__all__ = ["Inpaint", "composite", "hole_boxes", "crop"]

Tensor = torch.Tensor
ObjectiveSpec = OBJECTIVES.spec_type()

#: the fill of a hole in model space (mid-grey, as data.pairs=mask fills it)
FILL = MASK_FILL / 127.5 - 1.0


def composite(generated: Tensor, picture: Tensor, inside: Tensor) -> Tensor:
    """The completion: ``generated`` inside the mask (bool (N, 1, H, W)), ``picture`` outside,
    exactly (a selection, not a blend)."""
    return torch.where(inside, generated.to(picture.dtype), picture)


def hole_boxes(inside: Tensor, size: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
    """(top, left) of the ``size`` crop centred on the box around each mask's hole (bool
    (N, 1, H, W)), shifted to lie inside the picture; an empty mask gets the centred crop."""
    h, w = inside.shape[-2:]
    out = []
    for axis, n, k in ((3, h, size[0]), (2, w, size[1])):
        hit = inside.any(axis).flatten(1)                       # (N, n): rows (columns) the hole touches
        pos = torch.arange(n, device=inside.device).expand_as(hit)
        first = torch.where(hit, pos, n).min(1).values
        last = torch.where(hit, pos, -1).max(1).values
        empty = last < 0
        first, last = torch.where(empty, 0, first), torch.where(empty, n - 1, last)
        start = torch.div(first + last + 1 - k, 2, rounding_mode="floor")
        out.append(start.clamp(0, n - k))
    return out[0], out[1]


def crop(x: Tensor, top: Tensor, left: Tensor, size: Tuple[int, int]) -> Tensor:
    """The ``size`` crop of each picture of ``x`` (N, C, H, W) at (``top``, ``left``) (gradients flow)."""
    rows = top.view(-1, 1, 1) + torch.arange(size[0], device=x.device).view(1, -1, 1)
    cols = left.view(-1, 1, 1) + torch.arange(size[1], device=x.device).view(1, 1, -1)
    n = torch.arange(len(x), device=x.device).view(-1, 1, 1)
    return x[n, :, rows, cols].permute(0, 3, 1, 2)              # advanced indices first: (N, h, w, C)


class Inpaint(Paired):
    contract = Contract(needs=("x", "mask", "input"), conditions=("input", "mask"),
                        roles={"generator": "generator", "discriminator": "discriminator",
                               "local_discriminator": "discriminator"},
                        auto={"generator": "context_encoder", "discriminator": "imagegan",
                              "local_discriminator": "imagegan"},
                        metrics=("masked_l1", "masked_psnr"))
    discriminator_roles = ("discriminator", "local_discriminator")

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, objective: Union[str, Dict[str, Any]],
                 rec_weight: float, adv_weight: float, outside_weight: float, rec_loss: str, d_steps: int,
                 pool: int, local_size: Optional[int], spectral_norm: bool):
        super().__init__(runtime, info, cfg)
        check_positive("method.d_steps", d_steps)
        check_positive("method.pool", pool)
        self.d_steps = self.real_batches_per_step = d_steps
        for key, value in (("rec_weight", rec_weight), ("adv_weight", adv_weight),
                           ("outside_weight", outside_weight)):
            if not value >= 0:
                raise ConfigError(f"method.{key} must not be negative, got {value}")
        if rec_weight == 0 and adv_weight == 0:
            raise ConfigError("method.rec_weight and method.adv_weight are both 0: nothing would tell the generator "
                              "what to paint; set rec_weight (100), adv_weight (1) or both")
        self.rec_weight, self.adv_weight = float(rec_weight), float(adv_weight)
        self.outside_weight, self.rec_loss = float(outside_weight), rec_loss
        self.objective = OBJECTIVES.build_spec(objective, key="method.objective")

        f_x, f_in, f_m = info.fields["x"], info.fields.get("input"), info.fields.get("mask")
        if f_in is None or f_m is None:
            raise ConfigError("method inpaint completes a masked region: it trains on the fields 'input' (the picture "
                              "with a hole) and 'mask'; make them with data.pairs=mask (or mask_centre, mask_free)")
        if f_x.kind != "image":
            raise ConfigError(f"method inpaint completes pictures; this data set holds {f_x.kind} samples")
        c, h, w = f_x.shape
        if tuple(f_in.shape) != (c, h, w) or tuple(f_m.shape) != (1, h, w):
            raise ConfigError(f"method inpaint needs an input of x's shape {(c, h, w)} (the picture with a hole) and a "
                              f"one-channel mask {(1, h, w)}, got {tuple(f_in.shape)} and {tuple(f_m.shape)}; use "
                              "data.pairs=mask (or mask_centre, mask_free)")
        self.shape = (c, h, w)
        if local_size is None:
            self.local = (max(1, h // 2), max(1, w // 2))
        elif not 1 <= local_size <= min(h, w):
            raise ConfigError(f"method.local_size must be between 1 and the shorter side ({min(h, w)}), got "
                              f"{local_size}")
        else:
            self.local = (int(local_size), int(local_size))

        g_info = DataInfo("image", (c, h, w), 0, {"x": f_x, "input": Field("image", (c + 1, h, w))})
        g = self.build_network("generator", g_info)
        name = self.network_name("generator")
        if getattr(g, "z_dim", 0):
            raise ConfigError(f"generator '{name}' maps noise to images; method inpaint needs an image-to-image "
                              "generator: set generator.name=context_encoder, unet or auto")
        if getattr(g, "in_channels", c + 1) != c + 1:
            raise ConfigError(f"generator '{name}' takes {g.in_channels} channels but method inpaint gives it "
                              f"{c + 1} (the picture and its mask)")
        self.add_module("generator", g)
        for role, shape in (("discriminator", (c, h, w)), ("local_discriminator", (c, *self.local))):
            d = self.build_network(role, info.with_shape(shape))
            regularise_discriminator(d, "none", spectral_norm)
            self.add_module(role, d)
        self.opt_g = self.add_optimizer("generator", g.parameters())
        self.opt_d = self.add_optimizer("discriminator", self.modules["discriminator"].parameters())
        self.opt_dl = self.add_optimizer("local_discriminator", self.modules["local_discriminator"].parameters())
        self.enable_ema()
        self.keep_conditions(pool)   # training (input, mask) pairs stacked, for sampling
        self._pending = None    # (batch, inside, completion, output, (top, left)) of the last discriminator update

    # ------------------------------------------------------------------ pieces
    @staticmethod
    def inside(mask: Tensor) -> Tensor:
        """The hole of a model-space mask (+1 inside, -1 outside) as bool (N, 1, H, W)."""
        return mask > 0

    def complete(self, G, picture: Tensor, inside: Tensor) -> Tensor:
        """G's completion of ``picture`` with the hole ``inside``: the hole filled with mid-grey,
        the mask beside it as a channel; returns G's whole output (composite it)."""
        filled = torch.where(inside, torch.full_like(picture, FILL), picture)
        return G(torch.cat([filled, inside.to(picture.dtype) * 2 - 1], 1))

    def generate(self, z: Tensor, given: Dict[str, Tensor]) -> Dict[str, Tensor]:
        if "input" not in given or "mask" not in given:
            raise ConfigError("this inpaint run has no pictures to complete: give them with their masks (gankit "
                              "sample --input FOLDER --mask x,y,w,h, or given={'input': images, 'mask': masks}); "
                              "runs draw their own only after training has begun")
        c, mask = given["input"], given["mask"]
        inside = self.inside(mask)
        out = self.complete(self.for_sampling(), c, inside)
        return {"x": composite(out, c, inside), "input": c, "mask": mask}

    def _rec(self, out: Tensor, x: Tensor, region: Tensor) -> Tensor:
        """The reconstruction error of G's output ``out`` over the pixels of ``region`` (bool
        (N, 1, H, W)), per pixel and channel."""
        diff = out.float() - x.float()
        diff = diff.abs() if self.rec_loss == "l1" else diff.pow(2)
        weight = region.to(diff.dtype)
        return (diff * weight).sum() / (weight.sum() * diff.shape[1]).clamp_min(1.0)

    # ------------------------------------------------------------------ the updates
    def discriminator_step(self, batch: Batch) -> Dict[str, Tensor]:
        if self.adv_weight == 0:        # the reconstruction loss alone: the discriminators play no part
            return {}
        G, rt, obj = self.generator, self.rt, self.objective
        x, c, inside = batch["x"], batch["input"], self.inside(batch["mask"])
        with rt.autocast():
            out = self.complete(G, c, inside)
        fake = composite(out, c, inside)
        top, left = hole_boxes(inside, self.local)
        logs: Dict[str, Tensor] = {}
        for role, opt, real, shown, tag in (
                ("discriminator", self.opt_d, x, fake.detach(), ""),
                ("local_discriminator", self.opt_dl, crop(x, top, left, self.local),
                 crop(fake.detach(), top, left, self.local), "_local")):
            D = self.modules[role]
            with rt.autocast():
                d_real, d_fake = D(real).flatten(), D(shown).flatten()
            loss = 0.5 * obj.d_loss(d_real, d_fake)
            rt.step(loss, opt, role)
            logs.update(discriminator_logs(obj, loss, d_real, d_fake, tag))
        self._pending = (batch, inside, out, fake, (top, left))
        return logs

    def generator_step(self, batches: List[Batch]) -> Dict[str, Tensor]:
        rt, obj = self.rt, self.objective
        batch = batches[-1]
        x, c = batch["x"], batch["input"]
        if self._pending is not None and self._pending[0] is batch:
            _, inside, out, fake, (top, left) = self._pending
        else:
            inside = self.inside(batch["mask"])
            with rt.autocast():
                out = self.complete(self.generator, c, inside)
            fake, (top, left) = None, (None, None)
        rec = self._rec(out, x, inside)
        loss = self.rec_weight * rec
        with torch.no_grad():       # logged in pixels in [0, 1], as the metric masked_l1 measures
            hole_l1 = rec if self.rec_loss == "l1" else self._rec_l1(out, x, inside)
            logs = {"masked_l1": hole_l1.detach() / 2}
            if self.rec_loss == "l2":
                logs["masked_l2"] = rec.detach() / 4
        if self.outside_weight:
            outside = self._rec(out, x, ~inside)
            loss = loss + self.outside_weight * outside
            logs["outside"] = outside.detach() / (2 if self.rec_loss == "l1" else 4)
        if self.adv_weight:
            if fake is None:
                fake = composite(out, c, inside)
                top, left = hole_boxes(inside, self.local)
            with rt.autocast():
                adv_global = obj.g_loss(self.discriminator(fake).flatten())
                adv_local = obj.g_loss(self.modules["local_discriminator"](crop(fake, top, left, self.local)).flatten())
            loss = loss + self.adv_weight * (adv_global + adv_local)
            logs["g_loss"], logs["g_loss_local"] = adv_global.detach(), adv_local.detach()
        rt.step(loss, self.opt_g, "generator")
        return logs

    @staticmethod
    def _rec_l1(out: Tensor, x: Tensor, region: Tensor) -> Tensor:
        weight = region.float()
        return ((out.float() - x.float()).abs() * weight).sum() / (weight.sum() * out.shape[1]).clamp_min(1.0)


@METHODS.register("inpaint")
def inpaint(runtime, info, cfg, /, rec_weight: float = 100.0, adv_weight: float = 1.0, outside_weight: float = 0.0,
            rec_loss: Literal["l1", "l2"] = "l1", objective: ObjectiveSpec = "nonsaturating", d_steps: int = 1,
            pool: int = 256, local_size: Optional[int] = None, spectral_norm: bool = False) -> Inpaint:
    """Image completion (Iizuka et al. 2017 style) on data.pairs=mask|mask_centre|mask_free: G(holed
    picture, mask) fills the hole, the known pixels are kept; a global discriminator on the picture
    and a local one on a local_size crop around the hole (default: half the sides); rec_weight *
    L1 (rec_loss l2: squared) inside the hole + adv_weight * (global + local), adv_weight 0: the
    reconstruction alone; any objective; pool: training pairs kept for sampling."""
    return Inpaint(runtime, info, cfg, objective, rec_weight, adv_weight, outside_weight, rec_loss, d_steps, pool,
                   local_size, spectral_norm)


inpaint.contract = Inpaint.contract
