"""CycleGAN (Zhu et al. 2017): translation between two image domains without paired data.

"Unsupervised Conditional Generation" in the lectures, direct transformation: a generator
G_AB (role ``generator``) turns a picture of domain A (the ``data`` section) into one of
domain B (the further source ``b``: section ``data_b``; its images reach the method as
``batch["b.x"]``), and a discriminator D_B (role ``discriminator``) judges whether a picture
looks like B. That alone lets G_AB ignore its input and draw any B picture; the cycle
consistency asks a second generator G_BA (role ``generator_ba``) to turn the translation
back into the input, ``G_BA(G_AB(a)) ~ a``, and likewise ``G_AB(G_BA(b)) ~ b`` with a
discriminator D_A (role ``discriminator_a``) for the way back. The generators minimise

    L_G(D_B(G_AB(a))) + L_G(D_A(G_BA(b)))
      + cycle_weight * (E|G_BA(G_AB(a)) - a| + E|G_AB(G_BA(b)) - b|)
      + identity_weight * (E|G_AB(b) - b| + E|G_BA(a) - a|)

(the paper's lambda = 10 is ``cycle_weight``; the identity term, the paper's 0.5 lambda by
default, keeps a picture that already belongs to the target domain as it is, which keeps
colours from drifting), with one optimiser over both generators as in the paper's code
(so they share ``optim.lr.generator``). Each discriminator minimises L_D(real, shown) / 2,
where ``shown`` comes from a history pool of the last ``pool`` (50) generated images
(:class:`~gankit.methods._pools.HistoryPool`; ``pool: 0`` shows only the newest). L is any
objective of the ``gan`` method, least squares by default as in the paper, averaged over
the PatchGAN's patches. ``optim.schedule: linear`` decays the learning rates linearly to 0.

The networks: ``auto`` is the paper's ResNet generator (:mod:`gankit.nets.resnet_translator`)
and a PatchGAN discriminator (:mod:`gankit.nets.pix2pix`); ``generator.name: unet`` is the
U-Net. Both domains must have images of one size; different channel counts need
``identity_weight: 0`` (the identity term feeds a B picture to G_AB).

Each iteration runs G_AB(a) and G_BA(b) once: the discriminators' update sees them
detached (through the pools), the generators' update reuses them against the updated
discriminators, as pix2pix does.

Sampling: the condition ``input`` is a picture of domain A (``given={"input": ...}``,
``gankit sample RUN --input FOLDER``); the outputs are ``x`` (its translation into B),
``input`` and ``reconstruction`` (G_BA of the translation), which pictures show side by side.
The condition ``input_b`` (``gankit sample RUN --input FOLDER --to A``) is a picture of
domain B to translate the way back: ``x`` = G_BA(b), ``input_b`` and ``reconstruction``
G_AB(G_BA(b)).
With no inputs given, they are drawn from a pool of the first ``input_pool`` training
inputs of A kept in the checkpoint (as pix2pix does). Evaluation translates domain A's
held-out split and compares the translations with domain B's held-out images (the
contract's ``reference``: FID ...); the method's metrics are ``translation_accuracy`` (the
Fashion-MNIST classifier still recognises the garment in the translation) and
``cycle_error`` (mean |a - G_BA(G_AB(a))| on held-out A) and ``domain_accuracy`` (a classifier
of the two domains, trained on real training pictures of both, puts the translation in B).
"""
from __future__ import annotations

import itertools
from typing import Any, Dict, List, Optional, Union

import torch

from ..config import Config
from ..errors import ConfigError
from ..registries import METHODS, OBJECTIVES
from ..train.runtime import Runtime
from .base import Batch, Contract, DataInfo, discriminator_logs
from .gan import regularise_discriminator
from ._pools import HistoryPool
from ._unpaired import TwoDomains
from ._voice import voice_contract

__all__ = ["CycleGAN"]

Tensor = torch.Tensor
ObjectiveSpec = OBJECTIVES.spec_type()


class CycleGAN(TwoDomains):
    name = "cyclegan"
    contract = Contract(
        needs=("x", "b.x"), conditions=("input", "input_b"), inputs={"input": "x", "input_b": "b.x"}, sources=("b",),
        reference="b",
        roles={"generator": "generator", "generator_ba": "generator",
               "discriminator": "discriminator", "discriminator_a": "discriminator"},
        auto={"generator": "resnet", "generator_ba": "resnet",
              "discriminator": "patchgan", "discriminator_a": "patchgan"},
        ema=("generator", "generator_ba"), metrics=("translation_accuracy", "cycle_error", "domain_accuracy"))
    discriminator_roles = ("discriminator", "discriminator_a")

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, objective: Union[str, Dict[str, Any]],
                 cycle_weight: float, identity_weight: Optional[float], pool: int, input_pool: int,
                 spectral_norm: bool):
        super().__init__(runtime, info, cfg)
        self.contract = voice_contract(self.contract, cfg)    # on voices: judged as voice conversion
        if identity_weight is None:
            identity_weight = 0.5 * cycle_weight
        for key, value in (("cycle_weight", cycle_weight), ("identity_weight", identity_weight)):
            if not value >= 0:
                raise ConfigError(f"method.{key} must not be negative, got {value}")
        if pool < 0:
            raise ConfigError(f"method.pool must not be negative (0: no history of generated images), got {pool}")
        lrs = getattr(cfg.optim, "lr", None) or {}
        if "generator_ba" in lrs:
            raise ConfigError("method cyclegan trains both generators with one optimiser (as the paper does); set "
                              "optim.lr.generator (or optim.lr_g), not optim.lr.generator_ba")
        self.cycle_weight, self.identity_weight = float(cycle_weight), float(identity_weight)
        self.objective = OBJECTIVES.build_spec(objective, key="method.objective")

        f_a, f_b = self.domains(info)
        c_a, c_b = f_a.shape[0], f_b.shape[0]
        if c_a != c_b and self.identity_weight:
            raise ConfigError(f"domain A has {c_a} channels and domain B {c_b}: the identity term feeds pictures of B "
                              f"to the A->B generator, so it needs equal channels; give both domains the same "
                              f"channels (e.g. data.channels=3) or set method.identity_weight=0")

        def translator(role: str, src, dst) -> torch.nn.Module:
            net = self.build_network(role, DataInfo("image", tuple(dst.shape), 0, {"x": dst, "input": src}))
            name = self.network_name(role)
            if getattr(net, "z_dim", 0):
                raise ConfigError(f"{role} '{name}' maps noise to images; method cyclegan needs image-to-image "
                                  f"generators: set {role}.name=resnet, unet or auto")
            if getattr(net, "in_channels", src.shape[0]) != src.shape[0]:
                raise ConfigError(f"{role} '{name}' takes {net.in_channels} channels but its inputs have "
                                  f"{src.shape[0]}")
            return self.add_module(role, net)

        g_ab, g_ba = translator("generator", f_a, f_b), translator("generator_ba", f_b, f_a)
        for role, shape in (("discriminator", self.shape_b), ("discriminator_a", self.shape_a)):
            d = self.build_network(role, info.with_shape(shape))
            regularise_discriminator(d, "none", spectral_norm)
            self.add_module(role, d)
        self.opt_g = self.add_optimizer("generator", itertools.chain(g_ab.parameters(), g_ba.parameters()))
        self.opt_d = self.add_optimizer("discriminator", self.modules["discriminator"].parameters())
        self.opt_da = self.add_optimizer("discriminator_a", self.modules["discriminator_a"].parameters())
        self.enable_ema()
        self.pools = {"discriminator": HistoryPool(pool), "discriminator_a": HistoryPool(pool)}
        self.keep_inputs(input_pool)
        self._pending = None     # (batch, G_AB(a), G_BA(b)) of the discriminators' update, for the generators'

    def translate(self, x: Tensor, source: str, target: str) -> Tensor:
        return self.for_sampling("generator" if source == "a" else "generator_ba")(x)

    # ------------------------------------------------------------------ the two updates
    def discriminator_step(self, batch: Batch) -> Dict[str, Tensor]:
        rt, obj = self.rt, self.objective
        a, b = batch["x"], batch["b.x"]
        with rt.autocast():
            fake_b, fake_a = self.modules["generator"](a), self.modules["generator_ba"](b)
        logs: Dict[str, Tensor] = {}
        for role, opt, real, fake, tag in (("discriminator", self.opt_d, b, fake_b, "b"),
                                           ("discriminator_a", self.opt_da, a, fake_a, "a")):
            D = self.modules[role]
            shown = self.pools[role].query(fake)
            with rt.autocast():
                d_real, d_fake = D(real).flatten(), D(shown).flatten()
            loss = 0.5 * obj.d_loss(d_real, d_fake)
            rt.step(loss, opt, role)
            logs.update(discriminator_logs(obj, loss, d_real, d_fake, "_" + tag))
        self._pending = (batch, fake_b, fake_a)
        return logs

    def generator_step(self, batches: List[Batch]) -> Dict[str, Tensor]:
        rt, obj = self.rt, self.objective
        G, F_ = self.modules["generator"], self.modules["generator_ba"]
        D_b, D_a = self.modules["discriminator"], self.modules["discriminator_a"]
        batch = batches[-1]
        a, b = batch["x"], batch["b.x"]
        if self._pending is not None and self._pending[0] is batch:
            _, fake_b, fake_a = self._pending
        else:
            with rt.autocast():
                fake_b, fake_a = G(a), F_(b)
        with rt.autocast():
            rec_a, rec_b = F_(fake_b), G(fake_a)
            adv_b, adv_a = obj.g_loss(D_b(fake_b).flatten()), obj.g_loss(D_a(fake_a).flatten())
        cycle = (rec_a.float() - a.float()).abs().mean() + (rec_b.float() - b.float()).abs().mean()
        loss = adv_b + adv_a + self.cycle_weight * cycle
        logs = {"g_loss_b": adv_b.detach(), "g_loss_a": adv_a.detach(), "cycle": cycle.detach()}
        if self.identity_weight:
            with rt.autocast():
                idt_b, idt_a = G(b), F_(a)
            identity = (idt_b.float() - b.float()).abs().mean() + (idt_a.float() - a.float()).abs().mean()
            loss = loss + self.identity_weight * identity
            logs["identity"] = identity.detach()
        rt.step(loss, self.opt_g, "generator")
        return logs

    # ------------------------------------------------------------------ state
    def extra_state(self) -> Dict[str, Any]:
        return {**super().extra_state(), **{f"history_{role}": pool.state() for role, pool in self.pools.items()}}

    def load_extra_state(self, state: Dict[str, Any]) -> None:
        super().load_extra_state(state)
        for role, pool in self.pools.items():
            if f"history_{role}" in state:
                pool.load(state[f"history_{role}"], self.rt.device)


@METHODS.register("cyclegan")
def cyclegan(runtime, info, cfg, /, objective: ObjectiveSpec = "least_squares", cycle_weight: float = 10.0,
             identity_weight: Optional[float] = None, pool: int = 50, input_pool: int = 256,
             spectral_norm: bool = False) -> CycleGAN:
    """CycleGAN: generators A->B (generator) and B->A (generator_ba), PatchGANs on B (discriminator)
    and A (discriminator_a); domain B is data_b. Least squares by default (any objective),
    cycle_weight (paper: 10), identity_weight (default: half the cycle weight), a history pool
    of pool generated images per discriminator (paper: 50), input_pool training inputs kept for
    sampling without given inputs."""
    return CycleGAN(runtime, info, cfg, objective, cycle_weight, identity_weight, pool, input_pool, spectral_norm)


cyclegan.contract = CycleGAN.contract
