"""Conditional GAN: G(c, z) and a discriminator that judges x together with its condition c.

"Conditional Generation by GAN" in the lectures: a discriminator that sees x alone lets the
generator ignore c (any realistic x passes), so the discriminator must see the pair and
learn two things at once, whether x is realistic and whether x matches c. It is trained to
give low scores to two kinds of pairs: a generated x with its c, and a *real* x with a
mismatched c (a good image with the wrong label). ``mismatch_weight`` w sets the share of
the mismatched pairs on the low-score side:

    L_D = [L(real x with its c, G(c, z) with c) + w L(real x with its c, real x with a wrong c)] / (1 + w)

where L(., .) is the objective's discriminator loss on (high-score, low-score) pairs. Every
objective here is a sum of a term on the high side and a term on the low side, so this is
the high-side term plus (generated + w mismatched) / (1 + w) on the low side: Reed et al.'s
GAN-CLS at w = 1, the plain (condition-only) loss at w = 0.

The discriminator is one of the designs of :mod:`gankit.nets.conditional`: ``joint`` (one
network on (x, c)), ``two_branch`` (the lecture's second design: realism from x, match from
x's embedding and c; the match branch is trained on real x with its own and with a wrong c,
weighted by ``mismatch_weight``, and the generator is trained to pass both), ``projection``
(Miyato & Koyama 2018), ``acgan`` (Odena et al. 2017: an auxiliary classifier on x's
features; it learns the classes from real samples, and with ``ac_generated`` (the paper's
rule) also from generated ones; the generator minimises its cross-entropy on G(c, z) with c;
both terms weighted by ``ac_weight``) and ``image_only`` (an unconditional discriminator: what the lecture warns
against; the ``condition-ignored`` experiment shows its effect).

The defaults are what reaches the highest conditional accuracy on Fashion-MNIST in five
minutes on two CPU cores (benchmarks/README.md): ``acgan`` with the classifier trained on
real samples only (so the generator must make pictures that a classifier of *real* pictures
recognises, rather than ones the classifier has learnt from the generator), and the
method's own learning rates of 4e-4 (``optim.lr_g``/``lr_d`` override them). The lecture's
``joint`` design is a setting away: ``--set method.design=joint``.

Any objective of the ``gan`` method works, with weight clipping, the gradient penalty or R1
(on the realism score, at the real samples' conditions) and spectral normalisation. In the
discriminator step the generated samples use the real batch's conditions; in the generator
step, the conditions of a real batch of this iteration (so conditions follow the data's
class frequencies).
"""
from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, Union

import torch
import torch.nn.functional as F

from ..config import Config
from ..errors import ConfigError
from ..nets.conditional import ConditionalDiscriminator, ConditionalGenerator, Design
from ..objectives.penalties import clip_weights_, gradient_penalty, r1_penalty
from ..registries import METHODS, OBJECTIVES
from ..train.runtime import Runtime
from .base import Adversarial, Batch, Contract, DataInfo, discriminator_logs, check_positive
from .gan import regularise_discriminator

__all__ = ["CGAN", "realism", "wrong_labels", "judges_mismatch", "pair_d_loss", "pair_g_loss"]

Tensor = torch.Tensor
ObjectiveSpec = OBJECTIVES.spec_type()


def realism(out: Dict[str, Tensor]) -> Tensor:
    """The realism score of a conditional discriminator's outputs (``score`` or ``real``)."""
    return out["score"] if "score" in out else out["real"]


def wrong_labels(rt: Runtime, y: Tensor, n_classes: int) -> Tensor:
    """A label other than y for every sample, uniform over the other classes (drawn through the
    runtime, so several processes stay in lockstep)."""
    u = rt.rand(len(y))
    return (y + 1 + (u * (n_classes - 1)).long().clamp_max(n_classes - 2)) % n_classes


def judges_mismatch(design: str, mismatch_weight: float) -> bool:
    """Whether a discriminator of ``design`` is shown real samples with wrong conditions."""
    return bool(mismatch_weight) and design in ("joint", "projection", "two_branch")


def pair_d_loss(obj, design: str, out_real: Dict[str, Tensor], out_fake: Dict[str, Tensor],
                out_wrong: Optional[Dict[str, Tensor]], y: Tensor, mismatch_weight: float, ac_weight: float,
                ac_generated: bool) -> Tensor:
    """The discriminator's loss on (real x, its c), (generated x, its c) and, where the design
    takes them (``out_wrong`` not None), (real x, a wrong c): see the module's formula."""
    w = mismatch_weight
    d_real, d_fake = realism(out_real), realism(out_fake)
    if design in ("joint", "projection"):
        loss = obj.d_loss(d_real, d_fake)
        if out_wrong is not None:
            loss = (loss + w * obj.d_loss(d_real, out_wrong["score"])) / (1 + w)
        return loss
    loss = obj.d_loss(d_real, d_fake)
    if design == "two_branch" and out_wrong is not None:
        loss = loss + w * obj.d_loss(out_real["match"], out_wrong["match"])
    elif design == "acgan":
        ce = F.cross_entropy(out_real["logits"].float(), y)
        if ac_generated:
            ce = ce + F.cross_entropy(out_fake["logits"].float(), y)
        loss = loss + ac_weight * ce
    return loss


def pair_g_loss(obj, design: str, out: Dict[str, Tensor], y: Tensor, mismatch_weight: float,
                ac_weight: float) -> Tensor:
    """The generator's loss on the discriminator's outputs for (G(c, z), c)."""
    loss = obj.g_loss(realism(out))
    if design == "two_branch" and mismatch_weight:
        loss = loss + mismatch_weight * obj.g_loss(out["match"])
    elif design == "acgan":
        loss = loss + ac_weight * F.cross_entropy(out["logits"].float(), y)
    return loss


class CGAN(Adversarial):
    contract = Contract(needs=("x", "y"), conditions=("y",), metrics=("conditional_accuracy", "intra_fid"),
                        optim={"lr_g": 4e-4, "lr_d": 4e-4})

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, d_steps: int,
                 objective: Union[str, Dict[str, Any]], design: str, mismatch_weight: float, ac_weight: float,
                 ac_generated: bool,
                 penalty: str, penalty_weight: float, clip: float, spectral_norm: bool):
        super().__init__(runtime, info, cfg)
        check_positive("method.d_steps", d_steps)
        self.d_steps = self.real_batches_per_step = d_steps
        k = info.n_classes
        if k < 2:
            raise ConfigError(f"method cgan needs at least 2 classes of labels; this data set has {k}")
        for key, value in (("mismatch_weight", mismatch_weight), ("ac_weight", ac_weight),
                           ("penalty_weight", penalty_weight), ("clip", clip)):
            if not value >= 0:
                raise ConfigError(f"method.{key} must not be negative, got {value}")
        self.n_classes, self.design = k, design
        self.mismatch_weight, self.ac_weight, self.ac_generated = mismatch_weight, ac_weight, ac_generated
        self.penalty, self.penalty_weight, self.clip = penalty, penalty_weight, clip
        self.objective = OBJECTIVES.build_spec(objective, key="method.objective")

        if "z_dim" not in cfg.generator:
            raise ConfigError(f"generator '{self.network_name('generator')}' has no z_dim; method cgan conditions "
                              "a generator of noise")
        z_dim = cfg.generator["z_dim"]
        g = ConditionalGenerator(self.build_network("generator", z_dim=z_dim + k), z_dim, k)
        image = info.kind == "image"
        d_info = info
        if design == "joint":   # the one-hot code enters beside the image's channels / the vector
            d_info = info.with_shape((info.shape[0] + k,) + tuple(info.shape[1:]))
        d = ConditionalDiscriminator(design, self.build_network("discriminator", d_info), k, image)
        regularise_discriminator(d, penalty, spectral_norm)
        self.opt_g, self.opt_d = self.add_pair(g, d)

    # ------------------------------------------------------------------ pieces
    def generate(self, z: Tensor, given: Dict[str, Tensor]) -> Dict[str, Tensor]:
        return {"x": self.for_sampling()(z, given["y"]), "y": given["y"]}

    def wrong_labels(self, y: Tensor) -> Tensor:
        """A label other than y for every sample, uniform over the other classes."""
        return wrong_labels(self.rt, y, self.n_classes)

    def _realism(self, out: Dict[str, Tensor]) -> Tensor:
        return realism(out)

    def _penalty(self, D, real: Tensor, fake: Tensor, y: Tensor) -> Tensor:
        critic = lambda x: self._realism(D(x, y))  # noqa: E731 - the penalty differentiates D at fixed c
        if self.penalty == "gradient":
            return gradient_penalty(critic, real, fake, weight=self.penalty_weight)
        return r1_penalty(critic, real, weight=self.penalty_weight)

    # ------------------------------------------------------------------ the two updates
    def discriminator_step(self, batch: Batch) -> Dict[str, Tensor]:
        D, rt, obj = self.discriminator, self.rt, self.objective
        x, y = batch["x"], batch["y"]
        fake = self.generated(len(x), y)
        with rt.autocast():
            out_real, out_fake = D(x, y), D(fake, y)
            out_wrong = D(x, self.wrong_labels(y)) if judges_mismatch(self.design, self.mismatch_weight) else None
        d_real, d_fake = realism(out_real), realism(out_fake)
        loss = pair_d_loss(obj, self.design, out_real, out_fake, out_wrong, y, self.mismatch_weight, self.ac_weight,
                           self.ac_generated)
        if self.penalty != "none":
            loss = loss + self._penalty(D, x, fake, y)
        rt.step(loss, self.opt_d, "discriminator")
        if self.clip:
            clip_weights_(D, self.clip)
        return discriminator_logs(obj, loss, d_real, d_fake)

    def generator_step(self, batches: List[Batch]) -> Dict[str, Tensor]:
        G, D, rt, obj = self.generator, self.discriminator, self.rt, self.objective
        y = batches[-1]["y"]
        with rt.autocast():
            out = D(G(self.noise(len(y)), y), y)
        loss = pair_g_loss(obj, self.design, out, y, self.mismatch_weight, self.ac_weight)
        rt.step(loss, self.opt_g, "generator")
        return {"g_loss": loss.detach()}


@METHODS.register("cgan")
def cgan(runtime, info, cfg, /, design: Design = "acgan", mismatch_weight: float = 1.0, ac_weight: float = 1.0,
         ac_generated: bool = False, d_steps: int = 1, objective: ObjectiveSpec = "nonsaturating",
         penalty: Literal["none", "gradient", "r1"] = "none", penalty_weight: float = 10.0, clip: float = 0.0,
         spectral_norm: bool = False) -> CGAN:
    """Conditional GAN on class labels: G(c, z), a discriminator design (acgan, the default; joint,
    the lecture's; two_branch, projection, image_only), the mismatched-pair term
    (mismatch_weight), the auxiliary classifier's weight (ac_weight) and whether it also learns
    from generated samples (ac_generated, the AC-GAN paper's rule), and any objective with
    clipping, a penalty or spectral norm; learning rates 4e-4 unless the config sets them."""
    return CGAN(runtime, info, cfg, d_steps, objective, design, mismatch_weight, ac_weight, ac_generated, penalty,
                penalty_weight, clip, spectral_norm)


cgan.contract = CGAN.contract
