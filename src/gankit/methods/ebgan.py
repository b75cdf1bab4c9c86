"""Energy-based GAN (Zhao et al. 2017): the discriminator is an auto-encoder.

The energy of a sample is its reconstruction error, D(x) = mean squared error of the
auto-encoder on x (per sample; see :mod:`gankit.nets.autoencoder`): low for data, high for
anything else. The discriminator lowers the energy of real samples and raises that of
generated ones, but only up to a ``margin`` m, since making a reconstruction bad is far
easier than making one good:

    L_D = E_x[D(x)] + E_z[max(0, m - D(G(z)))]

The generator lowers the energy of its samples, plus the pull-away term (PT) against mode
collapse, which pushes the encoder's embeddings s_i of the generated batch apart:

    L_G = E_z[D(G(z))] + pt_weight * PT,   PT = 1 / (N (N - 1)) sum_{i != j} cos^2(s_i, s_j)

PT is 0 for mutually orthogonal embeddings and 1 when all are parallel (a collapsed batch).
The margin lives on the scale of the energy: per-coordinate squared error, so for data in
[-1, 1] (images, the toy sets) a margin around 0.5-2 is sensible.

With ``discriminator.name: auto`` the method picks the ``autoencoder`` discriminator (an
MLP auto-encoder for vectors, a convolutional one for images).
"""
from __future__ import annotations

from typing import Dict, List

import torch
import torch.nn.functional as F

from ..config import Config
from ..errors import ConfigError
from ..nets.autoencoder import is_autoencoder, reconstruction_energy
from ..registries import METHODS
from ..train.runtime import Runtime
from .base import Adversarial, Batch, DataInfo, check_positive

__all__ = ["EBGAN", "pull_away_term", "ebgan_d_loss", "ebgan_g_loss"]


def pull_away_term(embeddings: torch.Tensor) -> torch.Tensor:
    """PT of a batch of embeddings (N, k): the mean of cos^2 over all ordered pairs i != j.

    Computed in float32; 0 for a batch of one sample (there is no pair).
    """
    s = F.normalize(embeddings.float().flatten(1), dim=1, eps=1e-8)
    n = len(s)
    if n < 2:
        return s.sum() * 0.0
    cos2 = (s @ s.t()).pow(2)
    off_diagonal = cos2.sum() - cos2.diagonal().sum()
    return off_diagonal / (n * (n - 1))


def ebgan_d_loss(e_real: torch.Tensor, e_fake: torch.Tensor, margin: float) -> torch.Tensor:
    """E[D(x)] + E[max(0, margin - D(G(z)))] for energies (N,) of real and generated samples."""
    return e_real.float().mean() + F.relu(margin - e_fake.float()).mean()


def ebgan_g_loss(e_fake: torch.Tensor, embeddings: torch.Tensor, pt_weight: float) -> torch.Tensor:
    """E[D(G(z))] + pt_weight * PT(embeddings of the generated batch)."""
    loss = e_fake.float().mean()
    if pt_weight:
        loss = loss + pt_weight * pull_away_term(embeddings)
    return loss


class EBGAN(Adversarial):
    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, margin: float, pt_weight: float,
                 d_steps: int):
        super().__init__(runtime, info, cfg)
        check_positive("method.d_steps", d_steps)
        if not margin > 0:
            raise ConfigError(f"method.margin must be positive (it bounds the energy the discriminator gives "
                              f"generated samples), got {margin}")
        if pt_weight < 0:
            raise ConfigError(f"method.pt_weight must not be negative, got {pt_weight}")
        self.margin, self.pt_weight = margin, pt_weight
        self.d_steps = self.real_batches_per_step = d_steps
        d_name = self.network_name("discriminator")
        g, d = self.build_noise_generator(), self.build_network("discriminator")
        if not is_autoencoder(d):
            raise ConfigError(f"method 'ebgan' needs an auto-encoder discriminator (its energy is the "
                              f"reconstruction error), got discriminator '{d_name}'; use "
                              "discriminator.name=autoencoder (or auto)")
        self.opt_g, self.opt_d = self.add_pair(g, d)

    @torch.no_grad()
    def critic(self, x: torch.Tensor) -> torch.Tensor:
        """Minus the energy (the reconstruction error): low energy is what D calls real."""
        D = self.discriminator
        return -self.judged(D, x, D.energy).float().reshape(len(x))

    def discriminator_step(self, batch: Batch) -> Dict[str, torch.Tensor]:
        D, rt = self.discriminator, self.rt
        real = batch["x"]
        fake = self.generated(len(real))
        with rt.autocast():
            e_real, e_fake = D.energy(real), D.energy(fake)
        d_loss = ebgan_d_loss(e_real, e_fake, self.margin)
        rt.step(d_loss, self.opt_d, "discriminator")
        return {"d_loss": d_loss.detach(), "energy_real": e_real.detach().mean(),
                "energy_fake": e_fake.detach().mean()}

    def generator_step(self, batches: List[Batch]) -> Dict[str, torch.Tensor]:
        G, D, rt = self.generator, self.discriminator, self.rt
        with rt.autocast():
            fake = G(self.noise(len(batches[0]["x"])))
            code = D.encode(fake)
            e_gen = reconstruction_energy(fake, D.decode(code))
        g_loss = ebgan_g_loss(e_gen, code, self.pt_weight)
        rt.step(g_loss, self.opt_g, "generator")
        with torch.no_grad():
            return {"g_loss": g_loss.detach(), "pull_away": pull_away_term(code.detach())}


@METHODS.register("ebgan")
def ebgan(runtime, info, cfg, /, margin: float = 1.0, pt_weight: float = 0.1, d_steps: int = 1) -> EBGAN:
    """Energy-based GAN (Zhao et al. 2017): auto-encoder discriminator, energy = reconstruction
    error, margin on generated energies, pull-away term for the generator."""
    return EBGAN(runtime, info, cfg, margin, pt_weight, d_steps)


#: with discriminator.name=auto, EBGAN gets the auto-encoder (see resolve_networks)
ebgan.auto_networks = {"discriminator": "autoencoder"}
