"""Triple-GAN (Li et al. 2017): a generator, a classifier and a discriminator of (x, y) pairs.

"Feature Extraction by GAN" in the lectures: leave the classifier out and Triple-GAN is a
conditional GAN, a generator G(z, y) and a discriminator D(x, y) of pairs. The classifier
C(y | x) is what it is for: semi-supervised learning from a few labelled pairs and many
unlabelled pictures. D tells the real labelled pairs from two kinds of made-up pairs, G's
(G(z, y), y) and C's (x, y ~ C(x)) for unlabelled x; C learns from the labelled pairs by
cross-entropy, from D (its pairs must pass as real) and from G's pairs (pseudo-labels):

    L_D = E_real[sp(-D(x, y))] + alpha E_C[sp(D(x, y))] + (1 - alpha) E_G[sp(D(G(z, y), y))]
    L_G = (1 - alpha) E[sp(-D(G(z, y), y))]
    L_C = CE(C(x_l), y_l) + alpha adv_weight E_x E_{y ~ C(x)}[sp(-D(x, y))] + pseudo_weight CE(C(G(z, y)), y)

with sp the softplus (the standard GAN's losses on logits, the generator's and the
classifier's non-saturating), alpha the share of C's pairs among D's made-up ones (the
paper's 1/2), ``adv_weight`` the weight of C's adversarial term (the authors' code's 0.01)
and the paper's R_P term ``pseudo_weight`` (0.1) switched on from step ``pseudo_start`` (G's
pictures are noise before that; the authors switch it on after 200 epochs). The expectation over C's labels is
taken exactly, summing over the classes weighted by C's probabilities (the paper samples a
label and uses the score-function gradient): with the ``projection`` discriminator (the
default; Miyato & Koyama's D(x, y) = head(phi(x)) + <e_y, phi(x)>) the scores of all classes
come from one pass, with ``joint`` (the class as one-hot planes beside the picture) from one
pass per class.

The data: the unlabelled pictures are the main data set ``data`` (its labels, where it has
them, are not used for training; evaluation scores the classifier on its held-out split),
the labelled pairs a further source ``data_labelled``; ``data.per_class`` takes a balanced
subset of a labelled data set, so the paper's 100 labels of (Fashion-)MNIST are::

    --data fashion_mnist --set data_labelled.name=fashion_mnist data_labelled.per_class=10

Each source keeps its own order, so the labelled set cycles every few steps while the
unlabelled one is read once an epoch. G's classes are those of the labelled batch.

``d_noise`` and ``d_hidden_noise`` add Gaussian noise to what D reads while it trains (its
input pictures, and the input of each later weighted layer; ``nets.blocks.add_gaussian_noise``),
as the authors' code does (0.3 on the pictures in [0, 1] and 0.5 on the hidden layers for MNIST):
D then cannot learn its few real labelled pairs by heart.

``adv_weight: 0`` and ``pseudo_weight: 0`` give the baseline: the same classifier trained on
the labelled set alone (G and D are built but held still, and nothing but C is computed).
Sampling is G's: ``y`` (``gankit sample --label 3``), drawn by the labelled set's class
frequencies when not given. The metric ``classifier_error`` is C's error on the held-out
split of ``data`` (its labels).
"""
from __future__ import annotations

from typing import Dict, List, Literal, Optional

import torch
import torch.nn.functional as F

from ..config import Config
from ..errors import ConfigError
from ..nets.blocks import add_gaussian_noise
from ..nets.classifier import FeatureClassifier
from ..nets.conditional import ConditionalDiscriminator, ConditionalGenerator
from ..registries import METHODS, METRICS
from ..train.runtime import Runtime
from .base import Adversarial, Batch, Contract, DataInfo

__all__ = ["TripleGAN", "class_scores"]

Tensor = torch.Tensor


def class_scores(D: ConditionalDiscriminator, x: Tensor, n_classes: int) -> Tensor:
    """D(x, y) for every class y: (N, n_classes) logits. The projection design reads them off one
    pass (head(phi) + phi E); the joint design takes one pass per class."""
    if D.design == "projection":
        phi = D.base.features(x)
        return D.base.head(phi)[:, None] + phi @ D.embed.weight
    return torch.stack([D(x, torch.full((len(x),), c, dtype=torch.long, device=x.device))["score"]
                        for c in range(n_classes)], 1)


class TripleGAN(Adversarial):
    contract = Contract(
        needs=("x", "labelled.x", "labelled.y"), conditions=("y",), inputs={"y": "labelled.y"},
        roles={"generator": "generator", "discriminator": "discriminator", "classifier": "discriminator"},
        sources=("labelled",), metrics=("classifier_error",), optim={"lr_g": 3e-4, "lr_d": 3e-4})

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, design: str, alpha: float,
                 adv_weight: float, pseudo_weight: float, pseudo_start: int, d_noise: float = 0.0,
                 d_hidden_noise: float = 0.0):
        super().__init__(runtime, info, cfg)
        for key, value in (("adv_weight", adv_weight), ("pseudo_weight", pseudo_weight),
                           ("pseudo_start", pseudo_start)):
            if not value >= 0:
                raise ConfigError(f"method.{key} must not be negative, got {value}")
        if not 0 < alpha < 1:
            raise ConfigError(f"method.alpha is the share of the classifier's pairs among the discriminator's "
                              f"made-up ones, strictly between 0 and 1 (the paper's 0.5), got {alpha}")
        f_x, f_xl, f_yl = info.fields["x"], info.fields.get("labelled.x"), info.fields.get("labelled.y")
        if f_xl is None or f_yl is None or f_yl.kind != "label":
            raise ConfigError("method triplegan learns from labelled pairs in a further data set data_labelled with "
                              "labels, e.g. --set data_labelled.name=fashion_mnist data_labelled.per_class=10")
        if tuple(f_xl.shape) != tuple(f_x.shape) or f_xl.kind != f_x.kind:
            raise ConfigError(f"method triplegan needs labelled samples like the unlabelled ones: data holds "
                              f"{f_x.kind} {tuple(f_x.shape)}, data_labelled {f_xl.kind} {tuple(f_xl.shape)}; "
                              "use the same data set for both (data_labelled.per_class picks its labels)")
        k = f_yl.n_classes
        if k < 2:
            raise ConfigError(f"method triplegan needs at least 2 classes of labels; data_labelled has {k}")
        self.n_classes, self.design = k, design
        self.alpha, self.adv_weight = float(alpha), float(adv_weight)
        self.pseudo_weight, self.pseudo_start = float(pseudo_weight), int(pseudo_start)

        if "z_dim" not in cfg.generator:
            raise ConfigError(f"generator '{self.network_name('generator')}' has no z_dim; method triplegan "
                              "conditions a generator of noise")
        z_dim = cfg.generator["z_dim"]
        g = ConditionalGenerator(self.build_noise_generator("generator", z_dim=z_dim + k), z_dim, k)
        d_info = info if design == "projection" else info.with_shape((info.shape[0] + k,) + tuple(info.shape[1:]))
        d = ConditionalDiscriminator(design, self.build_network("discriminator", d_info), k, info.kind == "image")
        self.opt_g, self.opt_d = self.add_pair(g, d)
        if d_noise or d_hidden_noise:
            add_gaussian_noise(d.base, d_noise, d_hidden_noise)
        c = self.add_module("classifier", FeatureClassifier(self.build_network("classifier"), k))
        self.opt_c = self.add_optimizer("classifier", c.parameters())

    @property
    def classifier(self):
        return self.modules["classifier"]

    @property
    def semi_supervised(self) -> bool:
        """Whether C learns from anything but the labelled pairs (else G and D are held still)."""
        return bool(self.adv_weight or self.pseudo_weight)

    # ------------------------------------------------------------------ sampling and classifying
    def generate(self, z: Tensor, given: Dict[str, Tensor]) -> Dict[str, Tensor]:
        return {"x": self.for_sampling()(z, given["y"]), "y": given["y"]}

    @torch.no_grad()
    def classify(self, x: Tensor, batch: int = 1000) -> Tensor:
        """C's class of each of ``x`` (model space, CPU or device), in eval mode, on the CPU."""
        C = self.classifier
        mode = C.training
        C.eval()
        try:
            out = []
            for start in range(0, len(x), batch):
                xb = self.rt.tensor(x[start:start + batch])
                with self.rt.autocast():
                    out.append(C(xb).float().argmax(1).cpu())
        finally:
            C.train(mode)
        return torch.cat(out) if out else torch.empty(0, dtype=torch.long)

    # ------------------------------------------------------------------ the updates
    def train_step(self, batches: List[Batch], step: int) -> Dict[str, Tensor]:
        self._step = step
        if not self.semi_supervised:      # the labelled-only baseline: C alone
            logs = self._classifier_step(batches[-1], step)
            self.schedulers["classifier"].step()
            return logs
        return super().train_step(batches, step)

    def discriminator_step(self, batch: Batch) -> Dict[str, Tensor]:
        D, C, rt, a, k = self.discriminator, self.classifier, self.rt, self.alpha, self.n_classes
        xl, yl, xu = batch["labelled.x"], batch["labelled.y"], batch["x"]
        fake = self.generated(len(yl), yl)
        with torch.no_grad(), rt.autocast():
            p_c = F.softmax(C(xu).float(), 1)
        with rt.autocast():
            d_real = D(xl, yl)["score"].float()
            d_fake = D(fake, yl)["score"].float()
            d_c = class_scores(D, xu, k).float()
        loss = (F.softplus(-d_real).mean() + (1 - a) * F.softplus(d_fake).mean()
                + a * (p_c * F.softplus(d_c)).sum(1).mean())
        rt.step(loss, self.opt_d, "discriminator")
        with torch.no_grad():
            return {"d_loss": loss.detach(), "d_real": torch.sigmoid(d_real).mean(),
                    "d_fake": torch.sigmoid(d_fake).mean(), "d_classifier": (p_c * torch.sigmoid(d_c)).sum(1).mean()}

    def generator_step(self, batches: List[Batch]) -> Dict[str, Tensor]:
        G, D, rt = self.generator, self.discriminator, self.rt
        y = batches[-1]["labelled.y"]
        with rt.autocast():
            fake = G(self.noise(len(y)), y)
            d_fake = D(fake, y)["score"].float()
        loss = (1 - self.alpha) * F.softplus(-d_fake).mean()
        rt.step(loss, self.opt_g, "generator")
        logs = {"g_loss": loss.detach()}
        logs.update(self._classifier_step(batches[-1], self._step, fake.detach()))
        return logs

    def _classifier_step(self, batch: Batch, step: int, fake: Optional[Tensor] = None) -> Dict[str, Tensor]:
        C, rt, k = self.classifier, self.rt, self.n_classes
        xl, yl = batch["labelled.x"], batch["labelled.y"]
        with rt.autocast():
            logits_l = C(xl).float()
        supervised = F.cross_entropy(logits_l, yl)
        loss, logs = supervised, {"c_supervised": supervised.detach()}
        if self.adv_weight:
            xu = batch["x"]
            with rt.autocast():
                p_c = F.softmax(C(xu).float(), 1)
            with torch.no_grad(), rt.autocast():      # D is held still: only C's probabilities learn
                d_c = class_scores(self.discriminator, xu, k).float()
            adv = (p_c * F.softplus(-d_c)).sum(1).mean()
            loss = loss + self.alpha * self.adv_weight * adv
            logs["c_adversarial"] = adv.detach()
        if self.pseudo_weight and fake is not None and step >= self.pseudo_start:
            with rt.autocast():
                pseudo = F.cross_entropy(C(fake).float(), yl)
            loss = loss + self.pseudo_weight * pseudo
            logs["c_pseudo"] = pseudo.detach()
        rt.step(loss, self.opt_c, "classifier")
        with torch.no_grad():
            logs["c_train_acc"] = (logits_l.argmax(1) == yl).float().mean()
        return logs


@METHODS.register("triplegan")
def triplegan(runtime, info, cfg, /, design: Literal["projection", "joint"] = "projection", alpha: float = 0.5,
              adv_weight: float = 0.01, pseudo_weight: float = 0.1, pseudo_start: int = 1000,
              d_noise: float = 0.0, d_hidden_noise: float = 0.0) -> TripleGAN:
    """Triple-GAN: G(z, y), a classifier C(y | x) (role classifier, any discriminator network with
    features) and D(x, y) (design projection or joint) on real labelled pairs (data_labelled,
    e.g. data_labelled.per_class=10) against G's pairs and C's pairs on the unlabelled data;
    alpha: C's share of D's made-up pairs; adv_weight: C's adversarial term (times alpha); pseudo_weight: C's
    cross-entropy on G's pairs from step pseudo_start; d_noise, d_hidden_noise: standard deviations of
    Gaussian noise on D's input pictures (in [-1, 1]) and on what its later layers read, while it trains
    (the authors' 0.3 and 0.5 on MNIST in [0, 1]: d_noise 0.6 here). adv_weight=0 pseudo_weight=0: C on the
    labelled set alone. The metric classifier_error."""
    return TripleGAN(runtime, info, cfg, design, alpha, adv_weight, pseudo_weight, pseudo_start, d_noise,
                     d_hidden_noise)


triplegan.contract = TripleGAN.contract


@METRICS.register("classifier_error")
def _classifier_error(s, /) -> Dict[str, float]:
    """Semi-supervised runs (triplegan): the share of the held-out real samples whose class the
    run's classifier C gets wrong (the paper's error rate, as a fraction)."""
    method = getattr(s, "method", None)
    if not isinstance(method, TripleGAN):
        raise ConfigError("classifier_error scores the classifier of a triplegan run; evaluate such a run")
    if s.real_labels is None:
        raise ConfigError("classifier_error needs held-out data with labels: the run's data set has none")
    real = s.real * 2 - 1 if s.kind == "image" else s.real
    pred = method.classify(real)
    return {"classifier_error": float((pred != s.real_labels.long()).double().mean())}
