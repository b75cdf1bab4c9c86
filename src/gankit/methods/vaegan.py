"""VAE-GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric").

"Feature Extraction by GAN" in the lectures: a VAE whose decoder is also a GAN's generator.
Three networks: the encoder Enc and the decoder Dec (the ``vae`` generator,
:mod:`gankit.nets.vae`) and a discriminator Dis (DCGAN's by default). For a real batch x:

    z ~ q(z|x) = N(mu(x), exp(logvar(x))) (reparameterised),  x~ = Dec(z)   (reconstructions)
    z_p ~ N(0, I),                                             x_p = Dec(z_p) (samples)

* ``L_prior`` = KL(q(z|x) || N(0, I)) per picture (closed form, summed over the code);
* ``L_llike`` (the paper's L_llike^{Dis_l}): the reconstruction error in the discriminator's
  feature space instead of pixels, -log N(Dis_l(x) | Dis_l(x~), I) = 0.5 ||Dis_l(x) -
  Dis_l(x~)||^2 per picture (summed over the features, constants dropped). Dis_l is the
  discriminator's ``features``: for DCGAN's, the last convolution block's activations, the
  layer its read-out sees;
* ``L_GAN``: the discriminator tells x from both x~ and x_p; with any objective of the ``gan``
  method (``objective``, non-saturating by default) Dis minimises L_D(Dis(x), Dis([x~, x_p]))
  (the two kinds of generated picture together weigh as much as the real ones, as in the
  paper's code) and the decoder L_G(Dis(x~)) + L_G(Dis(x_p)).

Which loss updates which network is the paper's rule (its Algorithm 1):

    Enc <- L_prior + L_llike            (the GAN term does not reach the encoder)
    Dec <- gamma * L_llike + L_GAN      (gamma weighs content against style)
    Dis <- L_GAN                        (Dis is not trained to reconstruct)

Enc and Dec share one optimiser (they are one role), so one backward pass gives each its own
gradient: the decoder runs on z' = z.detach() + (z - z.detach()) / gamma, equal to z but
passing 1/gamma of its gradient to the encoder, and, in a pass of its own (so that batch
norm's statistics carry nothing between them), on [z.detach(), z_p]; the loss L_prior +
gamma * L_llike(Dec(z')) + L_G(Dec(z.detach())) + L_G(Dec(z_p)) then hands the encoder exactly
grad(L_prior + L_llike) and the decoder grad(gamma * L_llike + L_GAN), as the paper's own code
does by scaling gradients (it too decodes twice). The discriminator is updated first on the batch's
pictures (detached), then the encoder and decoder against the updated discriminator, with
the discriminator held fixed (the :class:`~gankit.methods.base.Adversarial` skeleton).

``three_class`` (the lectures' variant): the discriminator is a three-way classifier, real /
generated (x_p) / reconstructed (x~), a linear read-out of three logits on its features (its
own one-logit read-out is then unused). Dis minimises the cross-entropy of the three classes;
the decoder wants both kinds called real: CE(Dis(x~), real) + CE(Dis(x_p), real).

Sampling and the metrics are the VAE's (:class:`gankit.methods.vae.Codes`): prior samples, or
given pictures their reconstructions (``x``) beside the ``input`` and a prior ``sample``;
evaluation's ``fid`` judges reconstructions of the held-out split, ``sample_fid`` the samples.
"""
from __future__ import annotations

from typing import Any, Dict, List, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config
from ..errors import ConfigError
from ..registries import METHODS, OBJECTIVES
from ..train.runtime import Runtime
from .base import Adversarial, Batch, Contract, DataInfo, discriminator_logs
from .vae import Codes, gaussian_kl, reparameterize

__all__ = ["VAEGAN", "feature_reconstruction_error", "three_class_d_loss", "three_class_g_loss",
           "REAL", "GENERATED", "RECONSTRUCTED"]

Tensor = torch.Tensor
ObjectiveSpec = OBJECTIVES.spec_type()

#: the three classes of the lectures' three-way discriminator
REAL, GENERATED, RECONSTRUCTED = 0, 1, 2


def feature_reconstruction_error(f_real: Tensor, f_recon: Tensor) -> Tensor:
    """-log N(f_real | f_recon, I) up to a constant: 0.5 * sum of squared differences of the
    discriminator's features, per picture (N,), float32."""
    return 0.5 * (f_recon.float() - f_real.float()).square().flatten(1).sum(1)


def _ce(logits: Tensor, label: int) -> Tensor:
    return F.cross_entropy(logits.float(), torch.full((len(logits),), label, dtype=torch.long,
                                                      device=logits.device))


def three_class_d_loss(l_real: Tensor, l_generated: Tensor, l_reconstructed: Tensor) -> Tensor:
    """The three-way discriminator's loss: the mean cross-entropy of each set against its own
    class (real, generated, reconstructed), summed over the three sets."""
    return _ce(l_real, REAL) + _ce(l_generated, GENERATED) + _ce(l_reconstructed, RECONSTRUCTED)


def three_class_g_loss(l_generated: Tensor, l_reconstructed: Tensor) -> Tensor:
    """The decoder's loss against a three-way discriminator: both generated and reconstructed
    pictures classified as real (mean cross-entropy of each set, summed)."""
    return _ce(l_generated, REAL) + _ce(l_reconstructed, REAL)


class VAEGAN(Codes, Adversarial):
    contract = Contract(needs=("x",), conditions=("input",), inputs={"input": "x"},
                        roles={"generator": "generator", "discriminator": "discriminator"},
                        auto={"generator": "vae"},
                        metrics=("reconstruction_error", "sample_fid", "sample_sharpness"), data_kinds=("image",))

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, gamma: float,
                 objective: Union[str, Dict[str, Any]], three_class: bool):
        super().__init__(runtime, info, cfg)
        if not gamma > 0:
            raise ConfigError(f"method.gamma must be positive (the weight of the feature reconstruction error in the "
                              f"decoder's loss against the GAN term), got {gamma}")
        self.gamma, self.three_class = float(gamma), bool(three_class)
        self.objective = OBJECTIVES.build_spec(objective, key="method.objective")
        net, d = self.build_vae(), self.build_network("discriminator")
        if not hasattr(d, "features"):
            raise ConfigError(f"discriminator '{self.network_name('discriminator')}' has no feature layer to measure "
                              "reconstructions in; use discriminator.name=dcgan (or auto)")
        self.add_module("generator", net)
        d = self.add_module("discriminator", d)
        judges = list(d.parameters())
        if self.three_class:
            with torch.no_grad():      # the width of the features, from one pass in eval mode (no statistics move)
                d.eval()
                width = d.features(torch.zeros(2, *info.shape, device=self.rt.device)).shape[1]
                d.train()
            head = self.add_module("classes", nn.Linear(width, 3))
            judges += list(head.parameters())
            self.discriminator_roles = ("discriminator", "classes")
        self.opt_g = self.add_optimizer("generator", net.parameters())
        self.opt_d = self.add_optimizer("discriminator", judges)
        self.enable_ema()
        self._pending = None    # what the discriminator's update decoded for its batch, for the generator's

    # ------------------------------------------------------------------ pieces
    def logits(self, x: Tensor) -> Tensor:
        """The discriminator's verdict: one logit per picture (N,), or three (N, 3) when three_class."""
        D = self.discriminator
        if self.three_class:
            return self.modules["classes"](D.features(x))
        return D(x).flatten()

    def train_step(self, batches: List[Batch], step: int) -> Dict[str, Tensor]:
        try:
            return super().train_step(batches, step)
        finally:
            self._pending = None

    # ------------------------------------------------------------------ the two updates
    def discriminator_step(self, batch: Batch) -> Dict[str, Tensor]:
        G, rt = self.generator, self.rt
        x = batch["x"]
        n = len(x)
        eps = rt.randn(n, G.z_dim)
        with rt.autocast():
            mu, logvar = G.encode(x)
            z = reparameterize(mu, logvar, eps)
            fixed = z.detach()
            to_encoder = fixed + (z - fixed) / self.gamma     # = z; 1/gamma of its gradient reaches the encoder
            recon_enc = G(to_encoder)
            # a pass of its own: batch norm's statistics would otherwise carry the GAN term to the encoder
            recon, prior = G(torch.cat([fixed, self.noise(n)])).split(n)
            l_real = self.logits(x)
            l_fake = self.logits(torch.cat([recon, prior]).detach())
        if self.three_class:
            l_recon, l_prior = l_fake.split(n)
            loss = three_class_d_loss(l_real, l_prior, l_recon)
            with torch.no_grad():
                p = lambda l, k: torch.softmax(l.float(), 1)[:, k].mean()   # noqa: E731
                logs = {"d_loss": loss.detach(), "d_real": p(l_real, REAL), "d_generated": p(l_prior, GENERATED),
                        "d_reconstructed": p(l_recon, RECONSTRUCTED)}
        else:
            loss = self.objective.d_loss(l_real, l_fake)
            logs = discriminator_logs(self.objective, loss, l_real, l_fake)
        rt.step(loss, self.opt_d, "discriminator")
        self._pending = (batch, mu, logvar, recon_enc, recon, prior)
        return logs

    def generator_step(self, batches: List[Batch]) -> Dict[str, Tensor]:
        batch = batches[-1]
        if self._pending is None or self._pending[0] is not batch:
            raise RuntimeError("vaegan's generator update runs after the discriminator's on the same batch")
        _, mu, logvar, recon_enc, recon, prior = self._pending
        D, rt = self.discriminator, self.rt
        x = batch["x"]
        n = len(x)
        with rt.autocast():
            f_recon, f_real = D.features(torch.cat([recon_enc, x])).split(n)
            llike = feature_reconstruction_error(f_real.detach(), f_recon).mean()
            l_recon, l_prior = self.logits(torch.cat([recon, prior])).split(n)
        if self.three_class:
            adv = three_class_g_loss(l_prior, l_recon)
        else:
            adv = self.objective.g_loss(l_recon) + self.objective.g_loss(l_prior)
        kl = gaussian_kl(mu, logvar).mean()
        rt.step(kl + self.gamma * llike + adv, self.opt_g, "generator")
        with torch.no_grad():
            pixels = (recon.detach().float() - x.float()).abs().mean() / 2   # pixels in [0, 1]
        return {"g_loss": adv.detach(), "kl": kl.detach(), "feature_error": llike.detach(),
                "reconstruction_error": pixels}


@METHODS.register("vaegan")
def vaegan(runtime, info, cfg, /, gamma: float = 0.01, objective: ObjectiveSpec = "nonsaturating",
           three_class: bool = False) -> VAEGAN:
    """VAE-GAN (Larsen et al. 2016): encoder <- KL + feature reconstruction error (the discriminator's
    features), decoder <- gamma * feature error + GAN term on reconstructions and prior samples,
    discriminator <- GAN term; three_class: the lectures' real/generated/reconstructed discriminator."""
    return VAEGAN(runtime, info, cfg, gamma, objective, three_class)


vaegan.contract = VAEGAN.contract
