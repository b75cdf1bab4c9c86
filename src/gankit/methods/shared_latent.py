"""Translation between two unpaired domains through one shared latent space (CoGAN, UNIT, ComboGAN, XGAN).

"Unsupervised Conditional Generation" in the lectures, the second approach: instead of
transforming a picture directly (cyclegan), project both domains into one latent space.
An encoder per domain (E_A, E_B) and a decoder per domain (G_A, G_B) live in the role
``generator`` (:mod:`gankit.nets.shared_latent`); a picture a of domain A (``data``) is
encoded and decoded by B's decoder: G_B(E_A(a)) is its translation into domain B (the
further source ``b``, section ``data_b``; its pictures reach the method as ``batch["b.x"]``).
What ties the two codes into one space is chosen term by term, each a weight (0: off):

* ``generator.shared``: the layers next to the code are one module for both domains
  (CoGAN, UNIT), so both encoders end in, and both decoders start from, the same weights;
* ``recon_weight`` and ``kl_weight`` (always on: the VAE of each domain): E|G_A(z_a) - a| +
  E|G_B(z_b) - b| with z drawn from the encoder's Gaussian N(mu, exp(logvar)), plus the
  KL divergence of that Gaussian from the prior N(0, I), 0.5 (mu^2 + exp(logvar) - 1 -
  logvar), averaged over the code's elements (UNIT's prior);
* ``adv_weight``: a discriminator per domain judges the decoded translations (role
  ``discriminator`` on B: G_B(z_a) against real b; ``discriminator_a`` on A: G_A(z_b)
  against real a);
* ``latent_weight``: a latent domain discriminator (role ``latent_discriminator``) tells the
  codes of A from those of B, and the encoders are trained to make it fail (its labels
  swapped), so the two domains' codes become indistinguishable;
* ``cycle_weight`` (ComboGAN's cycle through the latent space): A -> z -> B -> z -> A, E|G_A(mu_B(G_B(z_a))) - a|,
  and the same from B;
* ``semantic_weight`` (XGAN's semantic consistency): the code of a translation stays the
  code of its input, E|mu_B(G_B(z_a)) - mu_A(a)| and the same from B.

The encoders and decoders minimise

    recon_weight * recon + kl_weight * KL + adv_weight * (L_G(D_B(G_B(z_a))) + L_G(D_A(G_A(z_b))))
      + latent_weight * L_D(D_z(z_b), D_z(z_a)) + cycle_weight * cycle + semantic_weight * semantic

with one optimiser (role ``generator``); each discriminator minimises its objective L_D on
real and translated pictures (the latent one on z_a as "real" and z_b as "generated"). L is
any objective of the ``gan`` method, least squares by default (UNIT's). Each iteration
encodes and translates the batch once: the discriminators' update sees the translations and
codes detached, the generator's update reuses them against the updated discriminators.

Sampling, evaluation and pictures are cyclegan's: the condition ``input`` is a picture of A
(``gankit sample RUN --input FOLDER``), the outputs ``x`` (G_B(mu_A(a))), ``input`` and
``reconstruction`` (the translation translated back, G_A(mu_B(x))); ``input_b`` (``--to A``)
translates pictures of B the way back. Without given inputs they are drawn from a pool of
the first ``input_pool`` training inputs of A kept in the checkpoint. Translations are judged
against domain B's held-out pictures (FID ...); the metrics ``translation_accuracy``,
``cycle_error`` and ``domain_accuracy`` (a classifier of the two domains trained on real
pictures of both puts the translation in B).
"""
from __future__ import annotations

from typing import Any, Dict, List, Union

import torch

from ..config import Config
from ..errors import ConfigError
from ..registries import METHODS, OBJECTIVES
from ..train.runtime import Runtime
from .base import Batch, Contract, DataInfo, discriminator_logs
from .gan import regularise_discriminator
from ._unpaired import TwoDomains

__all__ = ["SharedLatent", "gaussian_kl"]

Tensor = torch.Tensor
ObjectiveSpec = OBJECTIVES.spec_type()


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per element, averaged over every element (float32)."""
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).mean()


def _l1(x: Tensor, y: Tensor) -> Tensor:
    return (x.float() - y.float()).abs().mean()


class SharedLatent(TwoDomains):
    name = "shared_latent"
    contract = Contract(
        needs=("x", "b.x"), conditions=("input", "input_b"), inputs={"input": "x", "input_b": "b.x"}, sources=("b",),
        reference="b",
        roles={"generator": "generator", "discriminator": "discriminator", "discriminator_a": "discriminator",
               "latent_discriminator": "discriminator"},
        auto={"generator": "shared_latent", "discriminator": "patchgan", "discriminator_a": "patchgan",
              "latent_discriminator": "latent"},
        ema=("generator",), metrics=("translation_accuracy", "cycle_error", "domain_accuracy"))

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, objective: Union[str, Dict[str, Any]],
                 recon_weight: float, kl_weight: float, adv_weight: float, latent_weight: float,
                 cycle_weight: float, semantic_weight: float, input_pool: int, spectral_norm: bool):
        super().__init__(runtime, info, cfg)
        weights = {"recon_weight": recon_weight, "kl_weight": kl_weight, "adv_weight": adv_weight,
                   "latent_weight": latent_weight, "cycle_weight": cycle_weight, "semantic_weight": semantic_weight}
        for key, value in weights.items():
            if not value >= 0:
                raise ConfigError(f"method.{key} must not be negative (0 switches the term off), got {value}")
        if not recon_weight + cycle_weight > 0:
            raise ConfigError("method shared_latent needs a term that ties a code to its picture: set "
                              "method.recon_weight (default 10) or method.cycle_weight above 0")
        self.w = {k[:-len("_weight")]: float(v) for k, v in weights.items()}
        self.objective = OBJECTIVES.build_spec(objective, key="method.objective")

        f_a, f_b = self.domains(info)
        net = self.build_network("generator", DataInfo("image", self.shape_b, 0, {"x": f_b, "input": f_a}))
        if not all(callable(getattr(net, m, None)) for m in ("encode", "decode")):
            raise ConfigError(f"generator '{self.network_name('generator')}' is not a pair of encoders and decoders; "
                              f"method shared_latent needs generator.name=shared_latent (or auto)")
        G = self.add_module("generator", net)
        self.latent_shape = tuple(net.latent_shape)
        self.discriminator_roles = ("discriminator", "discriminator_a")
        roles = [("discriminator", self.shape_b), ("discriminator_a", self.shape_a)]
        if self.w["latent"]:
            roles.append(("latent_discriminator", self.latent_shape))
            self.discriminator_roles += ("latent_discriminator",)
        for role, shape in roles:
            d = self.build_network(role, info.with_shape(shape))
            regularise_discriminator(d, "none", spectral_norm)
            self.add_module(role, d)
        self.opt_g = self.add_optimizer("generator", G.parameters())
        self.opt_d = {role: self.add_optimizer(role, self.modules[role].parameters()) for role, _ in roles}
        self.enable_ema()
        self.keep_inputs(input_pool)
        self._pending = None     # (batch, forward pass) of the discriminators' update, for the generator's

    def translate(self, x: Tensor, source: str, target: str) -> Tensor:
        return self.for_sampling("generator").translate(x, source, target)

    # ------------------------------------------------------------------ the two updates
    def _forward(self, batch: Batch) -> Dict[str, Tensor]:
        """Both domains' codes (mean, log-variance, a draw) and their translations."""
        G = self.modules["generator"]
        out: Dict[str, Tensor] = {}
        with self.rt.autocast():
            for d, x in (("a", batch["x"]), ("b", batch["b.x"])):
                mu, logvar = G.encode(x, d)
                eps = self.rt.randn(len(x), *self.latent_shape).to(mu.dtype)
                out[f"mu_{d}"], out[f"logvar_{d}"] = mu, logvar
                out[f"z_{d}"] = mu + torch.exp(0.5 * logvar) * eps
            out["fake_b"], out["fake_a"] = G.decode(out["z_a"], "b"), G.decode(out["z_b"], "a")
        return out

    def discriminator_step(self, batch: Batch) -> Dict[str, Tensor]:
        rt, obj = self.rt, self.objective
        f = self._forward(batch)
        pairs = [("discriminator", batch["b.x"], f["fake_b"], "_b"), ("discriminator_a", batch["x"], f["fake_a"], "_a")]
        if self.w["latent"]:        # codes of A are its "real" side, codes of B its "generated" side
            pairs.append(("latent_discriminator", f["z_a"], f["z_b"], "_z"))
        logs: Dict[str, Tensor] = {}
        for role, real, fake, tag in pairs:
            D = self.modules[role]
            with rt.autocast():
                d_real, d_fake = D(real.detach()).flatten(), D(fake.detach()).flatten()
            loss = obj.d_loss(d_real, d_fake)
            rt.step(loss, self.opt_d[role], role)
            logs.update(discriminator_logs(obj, loss, d_real, d_fake, tag))
        self._pending = (batch, f)
        return logs

    def generator_step(self, batches: List[Batch]) -> Dict[str, Tensor]:
        rt, obj, w = self.rt, self.objective, self.w
        G = self.modules["generator"]
        batch = batches[-1]
        a, b = batch["x"], batch["b.x"]
        f = self._pending[1] if self._pending is not None and self._pending[0] is batch else self._forward(batch)
        with rt.autocast():
            rec_a, rec_b = G.decode(f["z_a"], "a"), G.decode(f["z_b"], "b")
            adv_b = obj.g_loss(self.modules["discriminator"](f["fake_b"]).flatten())
            adv_a = obj.g_loss(self.modules["discriminator_a"](f["fake_a"]).flatten())
        recon = _l1(rec_a, a) + _l1(rec_b, b)
        kl = gaussian_kl(f["mu_a"], f["logvar_a"]) + gaussian_kl(f["mu_b"], f["logvar_b"])
        loss = w["recon"] * recon + w["kl"] * kl + w["adv"] * (adv_b + adv_a)
        logs = {"g_loss_b": adv_b.detach(), "g_loss_a": adv_a.detach(), "recon": recon.detach(), "kl": kl.detach()}
        if w["latent"]:             # the encoders swap the latent judge's labels: B's codes "real", A's not
            D_z = self.modules["latent_discriminator"]
            with rt.autocast():
                fool = obj.d_loss(D_z(f["z_b"]).flatten(), D_z(f["z_a"]).flatten())
            loss = loss + w["latent"] * fool
            logs["latent"] = fool.detach()
        if w["cycle"] or w["semantic"]:
            with rt.autocast():
                mu_ab = G.encode(f["fake_b"], "b")[0]       # A -> z -> B -> z
                mu_ba = G.encode(f["fake_a"], "a")[0]       # B -> z -> A -> z
            if w["semantic"]:
                semantic = _l1(mu_ab, f["mu_a"]) + _l1(mu_ba, f["mu_b"])
                loss = loss + w["semantic"] * semantic
                logs["semantic"] = semantic.detach()
            if w["cycle"]:
                with rt.autocast():
                    cyc_a, cyc_b = G.decode(mu_ab, "a"), G.decode(mu_ba, "b")     # ... -> A, ... -> B
                cycle = _l1(cyc_a, a) + _l1(cyc_b, b)
                loss = loss + w["cycle"] * cycle
                logs["cycle"] = cycle.detach()
        rt.step(loss, self.opt_g, "generator")
        return logs


@METHODS.register("shared_latent")
def shared_latent(runtime, info, cfg, /, objective: ObjectiveSpec = "least_squares", recon_weight: float = 10.0,
                  kl_weight: float = 0.01, adv_weight: float = 1.0, latent_weight: float = 0.0,
                  cycle_weight: float = 0.0, semantic_weight: float = 0.0, input_pool: int = 256,
                  spectral_norm: bool = False) -> SharedLatent:
    """Unpaired translation through one latent space (UNIT; domain B is data_b): per-domain encoders
    and decoders with tied layers (generator.shared), the VAE terms recon_weight and kl_weight,
    image discriminators on both domains (adv_weight), and the switches latent_weight (a latent
    domain discriminator), cycle_weight (ComboGAN's cycle A -> z -> B -> z -> A) and
    semantic_weight (XGAN: the translation keeps its input's code); 0 turns a term off."""
    return SharedLatent(runtime, info, cfg, objective, recon_weight, kl_weight, adv_weight, latent_weight,
                        cycle_weight, semantic_weight, input_pool, spectral_norm)


shared_latent.contract = SharedLatent.contract
