"""StarGAN (Choi et al. 2018): one generator translates between many domains, unpaired.

"Unsupervised Conditional Generation" in the lectures, direct transformation with more than
two domains: where CycleGAN needs a generator for every ordered pair of domains, StarGAN has
one generator G(x, c) told the *target* domain c (one-hot planes stacked beside the
picture's channels; the ResNet pads with zeros as StarGAN's does, since constant planes
would otherwise not survive its first instance normalisation), and one discriminator with two heads: a realism score per patch
D_src and a domain classifier D_cls (:mod:`gankit.nets.stargan`). The data set holds
pictures of several domains in one field ``x`` with a label field ``domain`` saying which
(``fashion_mnist_styles``, or a folder with one subfolder per domain and
``data.label_field=domain``). With target domains c drawn uniformly for each picture x of
domain c', the discriminator minimises

    L_D(D_src(x), D_src(G(x, c))) + cls_weight * CE(D_cls(x), c') + GP

(the classifier learns the domains from real pictures only) and the generator minimises

    L_G(D_src(G(x, c))) + cls_weight * CE(D_cls(G(x, c)), c) + rec_weight * E|G(G(x, c), c') - x|

(the translation must look real, belong to c, and lead back to x: the cycle consistency of
CycleGAN, through the same generator). The paper's settings are the defaults: the
Wasserstein objective with the gradient penalty (weight 10) on the realism map, 5
discriminator updates per generator update, cls_weight 1, rec_weight 10, and Adam(1e-4,
0.5, 0.999) (the method's own default learning rates: ``optim.lr_g``/``lr_d`` override them). Any objective of the ``gan`` method works (``penalty: none`` drops the penalty).

Sampling: the conditions are ``input`` (pictures to translate), ``domain`` (the target
domain of each; ``gankit sample RUN --input FOLDER --label 2`` or ``--to inverted``) and
``source`` (the domain each input comes from; when given, the outputs include the
``reconstruction`` G(G(x, c), source)). With no inputs given they are drawn, with their
domains, from the first ``input_pool`` training pictures, kept in the checkpoint; targets
not given are drawn uniformly. The sample grids during training put one row per target
domain under the same inputs. Evaluation translates the held-out pictures to targets drawn
uniformly and judges the translations against the held-out pictures (FID ...), by
``domain_accuracy`` (a classifier of the domains trained on real pictures recognises the
target domain: the style changed), ``translation_accuracy`` (the Fashion-MNIST classifier
still recognises the garment: the content kept) and ``cycle_error``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Literal, Union

import torch
import torch.nn.functional as F

from ..config import Config
from ..data.base import Field
from ..errors import ConfigError
from ..nets.conditional import one_hot
from ..objectives.penalties import gradient_penalty, r1_penalty
from ..registries import METHODS, OBJECTIVES
from ..train.runtime import Runtime
from .base import Adversarial, Batch, Contract, DataInfo, check_positive
from .gan import regularise_discriminator
from ._pools import DomainInputs
from ._voice import voice_contract

__all__ = ["StarGAN"]

Tensor = torch.Tensor
ObjectiveSpec = OBJECTIVES.spec_type()


class StarGAN(DomainInputs, Adversarial):
    contract = Contract(
        needs=("x", "domain"), conditions=("input", "domain", "source"), inputs={"input": "x", "source": "domain"},
        auto={"generator": ("resnet", {"padding": "zero"}), "discriminator": "stargan"},
        metrics=("domain_accuracy", "translation_accuracy", "cycle_error"), optim={"lr_g": 1e-4, "lr_d": 1e-4})

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, objective: Union[str, Dict[str, Any]],
                 d_steps: int, cls_weight: float, rec_weight: float, penalty: str, penalty_weight: float,
                 input_pool: int, spectral_norm: bool):
        super().__init__(runtime, info, cfg)
        self.contract = voice_contract(self.contract, cfg)    # on voices: judged as voice conversion
        check_positive("method.d_steps", d_steps)
        check_positive("method.input_pool", input_pool)
        for key, value in (("cls_weight", cls_weight), ("rec_weight", rec_weight),
                           ("penalty_weight", penalty_weight)):
            if not value >= 0:
                raise ConfigError(f"method.{key} must not be negative, got {value}")
        self.d_steps = self.real_batches_per_step = d_steps
        self.cls_weight, self.rec_weight = float(cls_weight), float(rec_weight)
        self.penalty, self.penalty_weight = penalty, float(penalty_weight)
        self.objective = OBJECTIVES.build_spec(objective, key="method.objective")

        f_x, f_d = info.fields["x"], info.fields.get("domain")
        if f_x.kind != "image":
            raise ConfigError(f"method stargan translates images; this data set holds {f_x.kind} samples")
        if f_d is None or f_d.kind != "label":
            raise ConfigError("method stargan needs a label field 'domain' saying which domain each picture belongs "
                              "to: use data fashion_mnist_styles, or a data set with such a field")
        k = f_d.n_classes
        if k < 2:
            raise ConfigError(f"method stargan translates between at least 2 domains; this data set has {k}")
        self.n_domains, self.domains = k, tuple(f_d.classes)
        c, h, w = f_x.shape
        g_info = DataInfo("image", (c, h, w), k, {"x": f_x, "input": Field("image", (c + k, h, w))})
        g = self.build_network("generator", g_info)
        name = self.network_name("generator")
        if getattr(g, "z_dim", 0):
            raise ConfigError(f"generator '{name}' maps noise to images; method stargan needs an image-to-image "
                              "generator: set generator.name=resnet, unet or auto")
        if getattr(g, "padding", None) == "reflect" and cfg.generator.get("norm") == "instance":
            raise ConfigError("generator: a resnet with reflection padding and instance normalisation cannot see the "
                              "target domain (its constant planes are removed by the first normalisation); set "
                              "generator.padding=zero (StarGAN's, the auto choice) or generator.norm=batch")
        d = self.build_network("discriminator", DataInfo("image", (c, h, w), k, {"x": f_x}))
        if not (hasattr(d, "src") and hasattr(d, "cls")):
            raise ConfigError(f"discriminator '{self.network_name('discriminator')}' has no domain classifier; "
                              "method stargan needs discriminator.name=stargan (or auto)")
        regularise_discriminator(d, penalty, spectral_norm)
        self.opt_g, self.opt_d = self.add_pair(g, d)
        self.init_domain_inputs(input_pool, f_x.shape)

    # ------------------------------------------------------------------ pieces
    def translate(self, G, x: Tensor, domain: Tensor) -> Tensor:
        """G(x, c): the picture with its target domain as one-hot planes beside its channels."""
        planes = one_hot(domain, self.n_domains, x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])
        return G(torch.cat([x, planes], 1))

    def targets(self, n: int) -> Tensor:
        """A target domain for each of ``n`` pictures, uniform over the domains (the global RNG)."""
        return (self.rt.rand(n) * self.n_domains).long().clamp_max(self.n_domains - 1)

    def _penalty(self, D, real: Tensor, fake: Tensor) -> Tensor:
        critic = lambda x: D(x)[0]  # noqa: E731 - the realism map; the penalty sums it per sample
        if self.penalty == "gradient":
            return gradient_penalty(critic, real, fake, weight=self.penalty_weight)
        return r1_penalty(critic, real, weight=self.penalty_weight)

    # ------------------------------------------------------------------ sampling
    def generate(self, z: Tensor, given: Dict[str, Tensor]) -> Dict[str, Tensor]:
        if "input" not in given:
            raise ConfigError("this stargan run has no pictures to translate: give them (gankit sample --input "
                              "FOLDER, or given={'input': images}); runs draw their own only after training has "
                              "begun")
        x, G = given["input"], self.for_sampling()
        target = given["domain"] if "domain" in given else \
            torch.zeros(len(x), dtype=torch.long, device=x.device)
        out = {"x": self.translate(G, x, target), "input": x, "domain": target}
        if "source" in given:
            out["reconstruction"] = self.translate(G, out["x"], given["source"])
            out["source"] = given["source"]
        return out

    # ------------------------------------------------------------------ the two updates
    def train_step(self, batches: List[Batch], step: int) -> Dict[str, Tensor]:
        self.pool_batch(batches[0])
        return super().train_step(batches, step)

    def discriminator_step(self, batch: Batch) -> Dict[str, Tensor]:
        G, D, rt, obj = self.generator, self.discriminator, self.rt, self.objective
        x, source = batch["x"], batch["domain"]
        with torch.no_grad(), rt.autocast():
            fake = self.translate(G, x, self.targets(len(x)))
        with rt.autocast():
            src_real, cls_real = D(x)
            src_fake, _ = D(fake)
        src_real, src_fake = src_real.flatten(), src_fake.flatten()
        adv = obj.d_loss(src_real, src_fake)
        cls = F.cross_entropy(cls_real.float(), source)
        loss = adv + self.cls_weight * cls
        if self.penalty != "none":
            loss = loss + self._penalty(D, x, fake)
        rt.step(loss, self.opt_d, "discriminator")
        with torch.no_grad():
            acc = (cls_real.detach().argmax(1) == source).float().mean()
        return {"d_loss": loss.detach(), "d_adv": adv.detach(), "d_cls": cls.detach(), "d_cls_acc": acc}

    def generator_step(self, batches: List[Batch]) -> Dict[str, Tensor]:
        G, D, rt, obj = self.generator, self.discriminator, self.rt, self.objective
        x, source = batches[-1]["x"], batches[-1]["domain"]
        target = self.targets(len(x))
        with rt.autocast():
            fake = self.translate(G, x, target)
            src_fake, cls_fake = D(fake)
            back = self.translate(G, fake, source)
        adv = obj.g_loss(src_fake.flatten())
        cls = F.cross_entropy(cls_fake.float(), target)
        rec = (back.float() - x.float()).abs().mean()
        loss = adv + self.cls_weight * cls + self.rec_weight * rec
        rt.step(loss, self.opt_g, "generator")
        return {"g_loss": adv.detach(), "g_cls": cls.detach(), "cycle": rec.detach()}



@METHODS.register("stargan")
def stargan(runtime, info, cfg, /, objective: ObjectiveSpec = "wasserstein", d_steps: int = 5,
            cls_weight: float = 1.0, rec_weight: float = 10.0,
            penalty: Literal["none", "gradient", "r1"] = "gradient", penalty_weight: float = 10.0,
            input_pool: int = 256, spectral_norm: bool = False) -> StarGAN:
    """StarGAN: one generator G(x, target domain) (ResNet), a discriminator with a realism map and a
    domain classifier; the data's label field 'domain' names each picture's domain. The paper's
    defaults: Wasserstein + gradient penalty, 5 discriminator updates per generator update,
    cls_weight 1, rec_weight 10 (cycle back to the source domain)."""
    return StarGAN(runtime, info, cfg, objective, d_steps, cls_weight, rec_weight, penalty, penalty_weight,
                   input_pool, spectral_norm)


stargan.contract = StarGAN.contract
