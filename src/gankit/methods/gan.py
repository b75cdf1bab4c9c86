"""The GAN of Goodfellow et al. (2014), Algorithm 1, with the lecture's stabilisers.

Each training iteration takes ``d_steps`` (the paper's k; WGAN's n_critic) discriminator
steps, each on a fresh minibatch of m real samples and m generated ones, then one generator
step on m new noise samples. The objective (``minimax``, ``nonsaturating``, ``wasserstein``,
``least_squares``, ``hinge``, ``fgan_*``: any registered one) is a pair of pure loss
functions, see :mod:`gankit.objectives`. Keeping the discriminator smooth is a choice of
``clip`` (WGAN weight clipping), ``penalty`` (WGAN-GP gradient penalty or R1) and
``spectral_norm`` (SNGAN). Against mode collapse, ``pack`` (PacGAN) lets the discriminator
judge ``pack`` samples at once, concatenated along channels (or features), and
``generator_loss: feature_matching`` (Salimans et al. 2016) trains the generator to match
the mean of the discriminator's penultimate features on real data; minibatch
discrimination is a discriminator option (``discriminator.minibatch_kernels``).
"""
from __future__ import annotations

from typing import Dict, List, Literal

import torch

from ..config import Config
from ..errors import ConfigError
from ..objectives.penalties import clip_weights_, gradient_penalty, r1_penalty, spectral_norm_all
from ..registries import DISCRIMINATORS, GENERATORS, METHODS, OBJECTIVES
from ..train.runtime import Runtime
from .base import DataInfo, Method, check_positive

__all__ = ["GAN", "PENALTIES"]

#: discriminator regularisers by name: (D, real, fake, weight) -> scalar added to the D loss
PENALTIES = {
    "gradient": lambda D, real, fake, w: gradient_penalty(D, real, fake, weight=w),   # WGAN-GP
    "r1": lambda D, real, fake, w: r1_penalty(D, real, weight=w),                      # R1
}


class GAN(Method):
    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, d_steps: int, objective: str,
                 penalty: str = "none", penalty_weight: float = 10.0, clip: float = 0.0,
                 spectral_norm: bool = False, pack: int = 1, generator_loss: str = "objective"):
        super().__init__(runtime, info, cfg)
        check_positive("method.d_steps", d_steps)
        if clip < 0 or penalty_weight < 0:
            raise ConfigError(f"method.clip and method.penalty_weight must not be negative, got {clip}, "
                              f"{penalty_weight}")
        self.d_steps = self.real_batches_per_step = d_steps
        self.objective = OBJECTIVES.get(objective, "method.objective")()
        check_positive("method.pack", pack)
        if cfg.train.batch_size % pack:
            raise ConfigError(f"train.batch_size ({cfg.train.batch_size}) must be a multiple of method.pack ({pack})")
        self.penalty, self.penalty_weight, self.clip = penalty, penalty_weight, clip
        self.pack, self.generator_loss = pack, generator_loss
        g_spec, d_spec = dict(cfg.generator), dict(cfg.discriminator)
        g = GENERATORS.build(g_spec.pop("name"), g_spec, info.shape, section="generator")
        packed_shape = (info.shape[0] * pack,) + tuple(info.shape[1:])
        d = DISCRIMINATORS.build(d_spec.pop("name"), d_spec, packed_shape, section="discriminator")
        if spectral_norm:
            spectral_norm_all(d)
        self.add_module("generator", g)
        self.add_module("discriminator", d)
        self.opt_g = self.add_optimizer("generator", g.parameters(), cfg.optim.lr_g)
        self.opt_d = self.add_optimizer("discriminator", d.parameters(), cfg.optim.lr_d)
        self.enable_ema()

    def packed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, ...) -> (N / pack, pack * C, ...): PacGAN's joint samples."""
        if self.pack == 1:
            return x
        return x.reshape(len(x) // self.pack, self.pack * x.shape[1], *x.shape[2:])

    def _generator_loss(self, D, real: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
        if self.generator_loss == "feature_matching":  # Salimans et al. 2016, section 3.1
            return (D.features(real).float().mean(0) - D.features(generated).float().mean(0)).pow(2).sum()
        return self.objective.g_loss(D(generated))

    def train_step(self, batches: List[torch.Tensor], step: int) -> Dict[str, torch.Tensor]:
        G, D, rt = self.generator, self.discriminator, self.rt
        m = len(batches[0])
        D.requires_grad_(True)
        for real in batches:                       # k discriminator steps
            with torch.no_grad(), rt.autocast():
                fake = G(self.noise(m))
            real, fake = self.packed(real), self.packed(fake)
            with rt.autocast():
                d_real, d_fake = D(real), D(fake)
            d_loss = self.objective.d_loss(d_real, d_fake)
            if self.penalty != "none":
                d_loss = d_loss + PENALTIES[self.penalty](D, real, fake, self.penalty_weight)
            rt.step(d_loss, self.opt_d, "discriminator")
            if self.clip:
                clip_weights_(D, self.clip)
        D.requires_grad_(False)                    # one generator step; D is held fixed
        with rt.autocast():
            g_loss = self._generator_loss(D, real, self.packed(G(self.noise(m))))
        rt.step(g_loss, self.opt_g, "generator")
        self.update_ema()
        self.step_schedulers()
        with torch.no_grad():
            # D(x) as a probability for logit outputs; the raw critic score otherwise
            view = torch.sigmoid if self.objective.output == "logit" else (lambda t: t)
            return {
                "d_loss": d_loss.detach(),
                "g_loss": g_loss.detach(),
                "d_real": view(d_real.detach().float()).mean(),
                "d_fake": view(d_fake.detach().float()).mean(),
            }


@METHODS.register("gan")
def gan(runtime, info, cfg, /, d_steps: int = 1, objective: str = "nonsaturating",
        penalty: Literal["none", "gradient", "r1"] = "none", penalty_weight: float = 10.0, clip: float = 0.0,
        spectral_norm: bool = False, pack: int = 1,
        generator_loss: Literal["objective", "feature_matching"] = "objective") -> GAN:
    """Goodfellow et al. 2014: k = d_steps discriminator steps per generator step; with any
    objective, weight clipping (WGAN), a gradient penalty (WGAN-GP, R1), spectral norm (SNGAN),
    packing (PacGAN) or feature matching."""
    return GAN(runtime, info, cfg, d_steps, objective, penalty, penalty_weight, clip, spectral_norm, pack,
               generator_loss)
