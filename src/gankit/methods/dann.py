"""Domain-adversarial training (Ganin et al. 2016, "DANN"): features that do not tell domains apart.

A classifier trained on labelled pictures of one domain (the source: ``data``, with ``y``)
is to work on another (the target: ``data_b``, whose labels training never reads). Three
networks (:mod:`gankit.nets.dann`): a feature extractor F (the role ``generator``: the lecture
calls it DANN's generator), a label classifier C on F's features (role ``classifier``) and a
domain classifier D on the same features (role ``discriminator``: the lecture's "domain
classifier, which is the discriminator"). One loss,

    L = CE(C(F(x_s)), y_s) + BCE(D(R(F(x_s))), 0) + BCE(D(R(F(x_t))), 1),

is minimised by all three in one backward pass, where R is the gradient-reversal layer: the
identity going forward, minus ``lambda_p`` times the gradient going back. So C and D learn to
classify, and F learns to serve C while making D's task hard: its gradient is that of the
label loss minus ``lambda_p`` times that of the domain loss, the saddle point of the paper.
The paper's schedules, with p = min(step / ``horizon``, 1) the training progress:

* ``lambda_p = domain_weight * (2 / (1 + exp(-10 p)) - 1)``, from 0 (D's early, noisy signal
  does not disturb F) up to ``domain_weight``;
* the learning rate ``mu_p = mu_0 / (1 + 10 p)^0.75`` (``anneal``; mu_0 is ``optim.lr_g``);
  without ``anneal`` the config's ``optim.schedule``.

``domain_weight=0`` is source-only training with the same networks and data: F never hears
from D, and D still learns to tell the domains apart from F's features (so its accuracy
measures how domain-specific they are). All three networks share one optimiser (the paper's
single learning rate, ``optim.lr_g``), stepped once per iteration on a batch of each domain.

DANN is a classifier, not a generator. Sampling classifies pictures of the target domain:
given pictures (``given={"input": ...}``, ``gankit sample RUN --input FOLDER``) or, without,
pictures drawn from a pool of the first ``input_pool`` target training pictures the run saw
(method state, so a resumed run samples alike); ``x`` and ``input`` are the pictures,
``label`` the predicted class and ``target_prob`` D's probability that the picture is of the
target domain. An evaluation without ``--metrics`` computes only the method's metric,
``target_accuracy`` (registered here): the classifier's accuracy on the target's held-out
split with its labels (``target_accuracy``, the number DANN is judged by), on the source's
held-out split (``source_accuracy``), and the domain classifier's balanced accuracy at telling
the two held-out sets apart (``domain_classifier_accuracy``: 0.5 is features that carry no
domain).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config
from ..errors import ConfigError
from ..registries import DATASETS, METHODS, METRICS
from ..train.runtime import Runtime
from ._pools import InputPool
from .base import Batch, Contract, DataInfo, Method, check_positive

__all__ = ["DANN", "reverse_gradient", "reversal_coefficient", "annealed_rate"]

Tensor = torch.Tensor


class _Reversal(torch.autograd.Function):
    """The identity forward, the gradient times ``-coefficient`` backward."""

    @staticmethod
    def forward(ctx, x: Tensor, coefficient: float) -> Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad * -ctx.coefficient, None


def reverse_gradient(x: Tensor, coefficient: float) -> Tensor:
    """The gradient-reversal layer R: ``x`` unchanged, its gradient multiplied by ``-coefficient``."""
    return _Reversal.apply(x, float(coefficient))


def reversal_coefficient(p: float) -> float:
    """The paper's lambda_p = 2 / (1 + exp(-10 p)) - 1 at training progress p in [0, 1]."""
    return 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0


def annealed_rate(p: float) -> float:
    """The paper's learning-rate factor 1 / (1 + 10 p)^0.75 at training progress p in [0, 1]."""
    return 1.0 / (1.0 + 10.0 * p) ** 0.75


class DANN(Method):
    contract = Contract(needs=("x", "y", "b.x"), conditions=("input",), inputs={"input": "b.x"},
                        roles={"generator": "generator", "classifier": "discriminator",
                               "discriminator": "discriminator"},
                        auto={"generator": "dann_features", "classifier": "label_classifier",
                              "discriminator": "domain_classifier"},
                        ema=(), metrics=("target_accuracy",), sources=("b",), reference="b",
                        optim={"lr_g": 1e-3, "beta1": 0.9}, data_kinds=("image",))
    #: a classifier: evaluation without a list of metrics computes the method's own only
    generates = False

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, domain_weight: float, horizon: int,
                 anneal: bool, input_pool: int):
        super().__init__(runtime, info, cfg)
        if not domain_weight >= 0:
            raise ConfigError(f"method.domain_weight must not be negative, got {domain_weight} (0: source only)")
        check_positive("method.horizon", horizon)
        check_positive("method.input_pool", input_pool)
        f_s, f_t = info.fields["x"], info.fields.get("b.x")
        if f_t is None:
            raise ConfigError("method dann adapts a classifier from the data (source) to a second data set (target): "
                              "add a section data_b, e.g. --set data_b.name=fashion_mnist_m")
        if tuple(f_s.shape) != tuple(f_t.shape):
            raise ConfigError(f"method dann needs source and target pictures of one shape, got {tuple(f_s.shape)} "
                              f"(data) and {tuple(f_t.shape)} (data_b); set data.channels=3 for a grey source and a "
                              "colour target (or data.image_size and data_b.image_size alike)")
        shared = sorted(set(cfg.optim.lr) & {"classifier", "discriminator"})
        if shared:
            raise ConfigError(f"optim.lr.{shared[0]}: method dann steps its three networks with one optimiser at the "
                              "generator's learning rate (the paper's single rate); set optim.lr_g instead")
        self.domain_weight, self.horizon, self.anneal = float(domain_weight), int(horizon), bool(anneal)
        extractor = self.build_network("generator")
        dim = getattr(extractor, "features_dim", 0)
        if not dim:
            raise ConfigError(f"generator '{self.network_name('generator')}' is no feature extractor; method dann "
                              "needs generator.name=dann_features (or auto)")
        features = info.with_shape((dim,))
        classifier = self.build_network("classifier", features)
        domain = self.build_network("discriminator", features)
        if getattr(classifier, "outputs", 0) != info.n_classes or getattr(domain, "outputs", 0) != 1:
            raise ConfigError("method dann needs classifier.name=label_classifier and discriminator.name="
                              "domain_classifier (or auto)")
        nets = [self.add_module(role, net) for role, net in (("generator", extractor), ("classifier", classifier),
                                                             ("discriminator", domain))]
        self.opt = self.add_optimizer("generator", [p for net in nets for p in net.parameters()])
        if self.anneal:
            self.schedulers["generator"] = torch.optim.lr_scheduler.LambdaLR(
                self.opt, lambda step: annealed_rate(self.progress(step)))
        self.inputs = InputPool(input_pool, tuple(f_t.shape))

    @property
    def classifier(self) -> nn.Module:
        return self.modules["classifier"]

    def progress(self, step: int) -> float:
        """The training progress p of the paper's schedules after ``step`` steps."""
        return min(step / self.horizon, 1.0)

    # ------------------------------------------------------------------ training
    def train_step(self, batches: List[Batch], step: int) -> Dict[str, Tensor]:
        rt = self.rt
        batch = batches[0]
        source, labels, target = batch["x"], batch["y"], batch["b.x"]
        self.inputs.add(target)
        coefficient = self.domain_weight * reversal_coefficient(self.progress(step))
        n = len(source)
        with rt.autocast():
            f = self.generator(torch.cat([source, target]))
            logits = self.classifier(f[:n])
            domain = self.discriminator(reverse_gradient(f, coefficient))
        is_target = torch.cat([torch.zeros(n, device=f.device), torch.ones(len(target), device=f.device)])
        label_loss = F.cross_entropy(logits.float(), labels)
        domain_loss = F.binary_cross_entropy_with_logits(domain.float(), is_target)
        loss = label_loss + domain_loss
        rt.step(loss, self.opt, "generator")
        self.step_schedulers()
        with torch.no_grad():
            return {"loss": loss.detach(), "label_loss": label_loss.detach(), "domain_loss": domain_loss.detach(),
                    "label_accuracy": (logits.argmax(1) == labels).float().mean(),
                    "domain_accuracy": ((domain.detach().float() > 0).float() == is_target).float().mean(),
                    "lambda": torch.tensor(coefficient)}

    # ------------------------------------------------------------------ sampling: classified pictures
    def noise(self, n: int, generator=None) -> Tensor:
        return torch.empty(n, 0, device=self.rt.device)     # nothing is drawn from noise

    def draw_conditions(self, n: int, generator=None) -> Dict[str, Tensor]:
        """``n`` target pictures drawn (with replacement) from the pool of training pictures."""
        drawn = self.inputs.draw(n, generator)
        return {} if drawn is None else {"input": drawn}

    def generate(self, z: Tensor, given: Dict[str, Tensor]) -> Dict[str, Tensor]:
        if "input" not in given:
            raise ConfigError("this dann run has no target pictures to classify: give them (gankit sample RUN --input "
                              "FOLDER, or given={'input': pictures}); runs keep their own only after training has "
                              "begun")
        c = given["input"]
        f = self.generator(c)
        return {"x": c, "input": c, "label": self.classifier(f).argmax(1),
                "target_prob": torch.sigmoid(self.discriminator(f).float())}

    @torch.no_grad()
    def classify(self, pictures: Tensor, batch_size: int = 500) -> Dict[str, Tensor]:
        """The predicted class and D's target-domain logit of pictures in data space ([0, 1]), on
        the CPU; the networks in eval mode for the call."""
        nets = list(self.modules.values())
        modes = [net.training for net in nets]
        for net in nets:
            net.eval()
        labels, domain = [], []
        try:
            for start in range(0, len(pictures), batch_size):
                x = pictures[start:start + batch_size].float().to(self.rt.device).mul(2.0).sub(1.0)
                with self.rt.autocast():
                    f = self.generator(x)
                    labels.append(self.classifier(f).argmax(1).cpu())
                    domain.append(self.discriminator(f).float().cpu())
        finally:
            for net, mode in zip(nets, modes):
                net.train(mode)
        if not labels:
            return {"label": torch.empty(0, dtype=torch.long), "domain": torch.empty(0)}
        return {"label": torch.cat(labels), "domain": torch.cat(domain)}

    # ------------------------------------------------------------------ state
    def extra_state(self) -> Dict[str, Any]:
        return {"inputs": self.inputs.images.clone()}

    def load_extra_state(self, state: Dict[str, Any]) -> None:
        if "inputs" in state:
            self.inputs.images = state["inputs"].clone()


@METHODS.register("dann")
def dann(runtime, info, cfg, /, domain_weight: float = 1.0, horizon: int = 10000, anneal: bool = True,
         input_pool: int = 500) -> DANN:
    """Domain-adversarial training (Ganin et al. 2016): feature extractor (generator), label classifier
    (classifier) on the labelled source (data), domain classifier (discriminator) behind a
    gradient-reversal layer on source and unlabelled target (data_b); lambda_p = domain_weight (2 / (1 +
    exp(-10 p)) - 1) and, with anneal, the rate lr_g / (1 + 10 p)^0.75, p = step / horizon (at most 1);
    domain_weight 0: source only. Samples are target pictures with their predicted label; the metric
    target_accuracy."""
    return DANN(runtime, info, cfg, domain_weight, horizon, anneal, input_pool)


dann.contract = DANN.contract


# ----------------------------------------------------------------------------------- the metric

def _source_heldout(cfg: Config):
    """The source's (``data``) split that the run did not train on, or None when it has no splits."""
    from ..data.base import build_data

    section = cfg.data
    if "split" not in DATASETS.entry(section["name"]).params:
        return None
    other = "test" if str(section.get("split", "train")) == "train" else "train"
    try:
        return build_data(cfg, split=other)
    except ConfigError:
        return None


@METRICS.register("target_accuracy")
def _target_accuracy(s, /) -> Dict[str, float]:
    """Domain adaptation runs (dann): the classifier's accuracy on the target's (data_b) held-out
    pictures with their labels (target_accuracy) and on as many of the source's held-out pictures
    (source_accuracy), and the domain classifier's balanced accuracy at telling the two apart
    (domain_classifier_accuracy; 0.5: the features carry no domain)."""
    method = getattr(s, "method", None)
    if not isinstance(method, DANN):
        raise ConfigError("target_accuracy scores the classifier of a domain adaptation run (method dann); evaluate "
                          "such a run")
    if s.real_labels is None:
        raise ConfigError("target_accuracy needs the target's held-out labels, and data_b has none: evaluate on a "
                          "labelled target (fashion_mnist_m, an .npz with 'y', a folder of class subfolders)")
    target = method.classify(s.real)
    labels = s.real_labels[:len(s.real)].long()
    out = {"target_accuracy": float((target["label"] == labels).double().mean())}
    data = _source_heldout(method.cfg)
    if data is not None and data.y is not None and len(data):
        n = min(len(s.real), len(data))
        source = method.classify(data.x[:n].float().div(255.0))
        out["source_accuracy"] = float((source["label"] == data.y[:n].long()).double().mean())
        out["domain_classifier_accuracy"] = 0.5 * (float((source["domain"] <= 0).double().mean())
                                                   + float((target["domain"] > 0).double().mean()))
    return out
