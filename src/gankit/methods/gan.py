"""The GAN of Goodfellow et al. (2014), Algorithm 1.

Each training iteration takes ``d_steps`` (the paper's k) discriminator steps, each on a
fresh minibatch of m real samples and m generated ones, then one generator step on m new
noise samples. The objective (``minimax`` or ``nonsaturating``, or any registered one)
is a pair of pure loss functions, see :mod:`gankit.objectives`.
"""
from __future__ import annotations

from typing import Dict, List

import torch

from ..config import Config
from ..registries import DISCRIMINATORS, GENERATORS, METHODS, OBJECTIVES
from ..train.runtime import Runtime
from .base import DataInfo, Method, check_positive

__all__ = ["GAN"]


class GAN(Method):
    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, d_steps: int, objective: str):
        super().__init__(runtime, info, cfg)
        check_positive("method.d_steps", d_steps)
        self.d_steps = self.real_batches_per_step = d_steps
        self.objective = OBJECTIVES.get(objective, "method.objective")()
        g_spec, d_spec = dict(cfg.generator), dict(cfg.discriminator)
        g = GENERATORS.build(g_spec.pop("name"), g_spec, info.shape, section="generator")
        d = DISCRIMINATORS.build(d_spec.pop("name"), d_spec, info.shape, section="discriminator")
        self.add_module("generator", g)
        self.add_module("discriminator", d)
        self.opt_g = self.add_optimizer("generator", g.parameters(), cfg.optim.lr_g)
        self.opt_d = self.add_optimizer("discriminator", d.parameters(), cfg.optim.lr_d)
        self.enable_ema()

    def train_step(self, batches: List[torch.Tensor], step: int) -> Dict[str, torch.Tensor]:
        G, D, rt = self.generator, self.discriminator, self.rt
        m = len(batches[0])
        D.requires_grad_(True)
        for real in batches:                       # k discriminator steps
            with torch.no_grad(), rt.autocast():
                fake = G(self.noise(m))
            with rt.autocast():
                d_real, d_fake = D(real), D(fake)
            d_loss = self.objective.d_loss(d_real, d_fake)
            rt.step(d_loss, self.opt_d, "discriminator")
        D.requires_grad_(False)                    # one generator step; D is held fixed
        with rt.autocast():
            d_gen = D(G(self.noise(m)))
        g_loss = self.objective.g_loss(d_gen)
        rt.step(g_loss, self.opt_g, "generator")
        self.update_ema()
        self.step_schedulers()
        with torch.no_grad():
            return {
                "d_loss": d_loss.detach(),
                "g_loss": g_loss.detach(),
                "d_real": torch.sigmoid(d_real.detach().float()).mean(),
                "d_fake": torch.sigmoid(d_fake.detach().float()).mean(),
            }


@METHODS.register("gan")
def gan(runtime, info, cfg, /, d_steps: int = 1, objective: str = "nonsaturating") -> GAN:
    """Goodfellow et al. 2014: k = d_steps discriminator steps per generator step."""
    return GAN(runtime, info, cfg, d_steps, objective)
