"""BiGAN (Donahue et al. 2017), also ALI (Dumoulin et al. 2017): a GAN that learns an encoder.

Three networks: an encoder E (pictures -> codes), a generator G (codes -> pictures) and a
discriminator D that judges (picture, code) pairs. E and G are never chained in training.
Each iteration D learns to tell the encoder's pairs (x, E(x)), x a real picture, from the
generator's pairs (G(z), z), z ~ N(0, I); then E and G, with D held fixed, minimise D's own
loss with the labels swapped (which side is called real does not matter, the lecture says),
so that the two joint distributions P(x, z) = p_data(x) delta(z - E(x)) and Q(x, z) =
p(z) delta(x - G(z)) become one. At the optimum E and G invert each other, E = G^-1; short
of it, G(E(x)) keeps what the joint distribution makes matter most, the kind of thing x
is, rather than x's pixels: a garment comes back as another garment of its class.

For the logistic objectives the swapped loss is the non-saturating loss of both sides (G:
-log D(G(z), z), E: -log(1 - D(x, E(x)))), BiGAN's own choice. The gradient of that one loss
reaches G only through the generator's pairs and E only through the encoder's, so each is
stepped with its own optimiser (roles ``generator`` and ``encoder``, each with its learning
rate) from the part of the loss that depends on it, the other side's outputs detached:
exactly the gradients of the whole loss.

Networks (:mod:`gankit.nets.bigan`): ``auto`` is the DCGAN generator (``z_dim`` 50, the BiGAN
paper's for MNIST), the ``encoder`` network (the DCGAN discriminator's body and a linear
read-out of ``z_dim`` numbers) and the ``joint`` discriminator; the encoder's and the
discriminator's code size is the generator's ``z_dim``.

Sampling: without a given picture ``x`` is G(z), z ~ N(0, I). Given pictures (``given={"input":
...}``, ``gankit sample RUN --input FOLDER``) ``x`` is each one's reconstruction G(E(input)),
with ``input`` and a prior ``sample`` G(z) beside it (as :mod:`gankit.methods.vae`).
Evaluation gives the held-out split's pictures as inputs (the contract's ``inputs``); the
method's metrics, registered here:

* ``linear_probe``: a logistic regression (:mod:`gankit.metrics.probe`) on the codes E(x) of
  the first ``n_train`` labelled training pictures, scored on the evaluation's held-out
  pictures (``linear_probe``), beside the same probe on the codes of an untrained encoder of
  the same architecture (``linear_probe_random``: the network's prior, built from the run's
  config with seed ``seed``) and on the raw pixels (``linear_probe_pixels``);
* ``class_kept``: the share of the held-out pictures' reconstructions G(E(x)) that the shipped
  Fashion-MNIST classifier (``classifier``) puts in the input's class (``class_kept``), beside
  its accuracy on the inputs themselves (``class_kept_input``, the ceiling), the agreement of
  its classes for input and reconstruction (``class_kept_agreement``) and the chance level,
  each reconstruction against another input's class (``class_kept_chance``); and the pixel
  error, the mean absolute difference (pixels in [0, 1]) between a picture and its
  reconstruction (``reconstruction_l1``), between a picture and another held-out picture of
  its class (``same_class_l1``) and any other held-out picture (``other_l1``): a
  reconstruction that keeps the class but not the picture is about as far from its input
  as another garment of the class is.
"""
from __future__ import annotations

from typing import Any, Dict, List, Union

import torch
from torch import nn

from ..config import Config
from ..data.base import Field
from ..errors import ConfigError
from ..metrics import vae as _vae_metrics  # noqa: F401 - reconstruction_error, sample_fid for this method's outputs
from ..metrics.probe import linear_probe
from ..registries import METHODS, METRICS, OBJECTIVES
from ..train.runtime import Runtime
from .base import Adversarial, Batch, Contract, DataInfo, discriminator_logs

__all__ = ["BiGAN", "encode_pictures"]

Tensor = torch.Tensor
ObjectiveSpec = OBJECTIVES.spec_type()


class BiGAN(Adversarial):
    contract = Contract(needs=("x",), conditions=("input",), inputs={"input": "x"},
                        roles={"generator": "generator", "encoder": "generator", "discriminator": "discriminator"},
                        auto={"generator": ("dcgan", {"z_dim": 50}), "encoder": "encoder", "discriminator": "joint"},
                        ema=("generator", "encoder"), metrics=("linear_probe", "class_kept"),
                        optim={"lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5}, data_kinds=("image",))

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, objective: Union[str, Dict[str, Any]]):
        super().__init__(runtime, info, cfg)
        self.objective = OBJECTIVES.build_spec(objective, key="method.objective")
        g = self.build_noise_generator()
        #: the data's description with the code's size (field z), which the encoder and D are built for
        self.code_info = DataInfo(info.kind, info.shape, info.n_classes,
                                  {**info.fields, "z": Field("vector", (int(g.z_dim),))})
        e = self.build_network("encoder", self.code_info)
        if getattr(e, "code_dim", None) != g.z_dim:
            raise ConfigError(f"encoder '{self.network_name('encoder')}' does not map pictures to codes; method bigan "
                              "needs encoder.name=encoder (or auto)")
        d = self.build_network("discriminator", self.code_info)
        if not getattr(d, "joint", False):
            raise ConfigError(f"discriminator '{self.network_name('discriminator')}' judges pictures alone; method "
                              "bigan's discriminator judges (picture, code) pairs: set discriminator.name=joint "
                              "(or auto)")
        self.add_module("generator", g)
        self.add_module("encoder", e)
        self.add_module("discriminator", d)
        self.opt_g = self.add_optimizer("generator", g.parameters())
        self.opt_e = self.add_optimizer("encoder", e.parameters())
        self.opt_d = self.add_optimizer("discriminator", d.parameters())
        self.enable_ema()

    @property
    def encoder(self) -> nn.Module:
        return self.modules["encoder"]

    # ------------------------------------------------------------------ training
    def discriminator_step(self, batch: Batch) -> Dict[str, Tensor]:
        rt, obj = self.rt, self.objective
        x = batch["x"]
        with torch.no_grad(), rt.autocast():
            code = self.encoder(x)
            z = self.noise(len(x))
            fake = self.generator(z)
        with rt.autocast():
            d_real, d_fake = self.discriminator(x, code), self.discriminator(fake, z)
        loss = obj.d_loss(d_real, d_fake)
        rt.step(loss, self.opt_d, "discriminator")
        return discriminator_logs(obj, loss, d_real, d_fake)

    def generator_step(self, batches: List[Batch]) -> Dict[str, Tensor]:
        rt, obj = self.rt, self.objective
        x = batches[-1]["x"]
        z = self.noise(len(x))
        with rt.autocast():
            d_fake = self.discriminator(self.generator(z), z)     # reaches G
            d_real = self.discriminator(x, self.encoder(x))       # reaches E
        # E and G minimise D's loss with the labels swapped, each through its own pairs
        g_loss = obj.d_loss(d_fake, d_real.detach())
        e_loss = obj.d_loss(d_fake.detach(), d_real)
        rt.step(g_loss, self.opt_g, "generator")
        rt.step(e_loss, self.opt_e, "encoder")
        return {"g_loss": g_loss.detach()}

    # ------------------------------------------------------------------ sampling
    def draw_conditions(self, n: int, generator=None) -> Dict[str, Tensor]:
        return {}     # nothing given: samples of the generator

    def generate(self, z: Tensor, given: Dict[str, Tensor]) -> Dict[str, Tensor]:
        g = self.for_sampling("generator")
        if "input" not in given:
            return {"x": g(z)}
        c = given["input"]
        return {"x": g(self.for_sampling("encoder")(c)), "input": c, "sample": g(z)}


@METHODS.register("bigan")
def bigan(runtime, info, cfg, /, objective: ObjectiveSpec = "nonsaturating") -> BiGAN:
    """BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017): an encoder E, a generator G and a
    discriminator on (picture, code) pairs, (x, E(x)) against (G(z), z); E and G minimise its loss
    with the labels swapped (objective: any of gan's). Sample with given={"input": pictures} for
    the reconstructions G(E(x)); the metrics linear_probe and class_kept."""
    return BiGAN(runtime, info, cfg, objective)


bigan.contract = BiGAN.contract


# ----------------------------------------------------------------------------------- the metrics

@torch.no_grad()
def encode_pictures(method: BiGAN, net: nn.Module, pictures: Tensor, batch_size: int = 500) -> Tensor:
    """Codes (N, z_dim) of ``net`` (an encoder, in eval mode for the call) for pictures in data
    space ([0, 1]), float32 on the CPU."""
    rt, mode = method.rt, net.training
    net.eval()
    out = []
    try:
        for start in range(0, len(pictures), batch_size):
            x = pictures[start:start + batch_size].float().to(rt.device).mul(2.0).sub(1.0)
            with rt.autocast():
                out.append(net(x).float().cpu())
    finally:
        net.train(mode)
    return torch.cat(out) if out else torch.empty(0, method.code_info.fields["z"].shape[0])


def _bigan_of(s, metric: str) -> BiGAN:
    method = getattr(s, "method", None)
    if not isinstance(method, BiGAN):
        raise ConfigError(f"{metric} judges the encoder of a BiGAN run (method bigan); evaluate such a run")
    return method


@METRICS.register("linear_probe")
def _linear_probe(s, /, n_train: int = 5000, l2: float = 1e-3, seed: int = 0) -> Dict[str, float]:
    """BiGAN runs: test accuracy of a logistic regression on the encoder's codes of the first n_train
    labelled training pictures (linear_probe), beside the same on an untrained encoder of the same
    architecture (linear_probe_random, seeded by seed) and on raw pixels (linear_probe_pixels);
    scored on the evaluation's held-out pictures; l2: the weights' penalty on standardised features."""
    method = _bigan_of(s, "linear_probe")
    if n_train < 2:
        raise ConfigError(f"linear_probe:n_train must be at least 2, got {n_train}")
    if not l2 >= 0:
        raise ConfigError(f"linear_probe:l2 must not be negative, got {l2}")
    _, data = s.train_data
    if data.y is None or s.real_labels is None:
        raise ConfigError("linear_probe needs labelled pictures (fashion_mnist, mnist, a folder with one subfolder "
                          "per class): the probe learns the classes from the codes")
    train_x, train_y = data.x[:n_train].float().div(255.0), data.y[:n_train]
    test_x, test_y = s.real, s.real_labels[:len(s.real)]
    with torch.random.fork_rng(devices=[]):   # the untrained encoder: the run's config, a seed of its own
        torch.manual_seed(seed)
        fresh = method.rt.module(method.build_network("encoder", method.code_info))

    def probe(features) -> float:
        return linear_probe(features(train_x), train_y, features(test_x), test_y, l2=l2)

    return {"linear_probe": probe(lambda x: encode_pictures(method, method.for_sampling("encoder"), x)),
            "linear_probe_random": probe(lambda x: encode_pictures(method, fresh, x)),
            "linear_probe_pixels": probe(lambda x: x.flatten(1))}


def _pair_l1(a: Tensor, b: Tensor) -> Tensor:
    return (a.float() - b.float()).abs().flatten(1).mean(1)


def _distinct_mean(a: Tensor, b: Tensor) -> float:
    """Mean absolute difference of the pairs (a[i], b[i]) that are two different pictures."""
    d = _pair_l1(a, b)
    d = d[d > 0]
    return float(d.double().mean()) if len(d) else 0.0


@METRICS.register("class_kept")
def _class_kept(s, /, classifier: str = "fashion_mnist") -> Dict[str, float]:
    """BiGAN runs: the share of the held-out pictures' reconstructions G(E(x)) that the classifier
    (default: the shipped Fashion-MNIST one) puts in the input's class (class_kept), its accuracy on
    the inputs (class_kept_input), input/reconstruction agreement (class_kept_agreement), chance
    (class_kept_chance: another input's class); mean absolute pixel difference of a picture from its
    reconstruction (reconstruction_l1), from another picture of its class (same_class_l1) and from
    any other picture (other_l1)."""
    from ..metrics.evaluate import get_extractor

    _bigan_of(s, "class_kept")
    if s.fake_labels_local is None:
        raise ConfigError("class_kept needs labelled held-out pictures to reconstruct (fashion_mnist, mnist ...)")
    recon, inputs, labels = s.fake, s.output("input"), s.fake_labels.long()
    ext = s.extractor
    if ext is None or getattr(ext, "name", None) != classifier or not getattr(ext, "num_classes", 0):
        ext = get_extractor(classifier, "class_kept:classifier")
    if len(labels) and int(labels.max()) >= ext.num_classes:
        raise ConfigError(f"the classifier '{classifier}' has {ext.num_classes} classes but the pictures have label "
                          f"{int(labels.max())}: choose the classifier of the data (class_kept:classifier=NAME)")
    pred_r = torch.as_tensor(ext.logits(recon)).argmax(1)
    pred_i = torch.as_tensor(ext.logits(inputs)).argmax(1)
    mean = lambda t: float(t.double().mean())  # noqa: E731
    # each picture's partner of the same class: the next picture of its class (cyclically)
    partner = torch.arange(len(labels))
    for c in labels.unique():
        idx = (labels == c).nonzero().flatten()
        partner[idx] = idx.roll(-1)
    return {"class_kept": mean(pred_r == labels), "class_kept_input": mean(pred_i == labels),
            "class_kept_agreement": mean(pred_r == pred_i), "class_kept_chance": mean(pred_r == labels.roll(1)),
            "reconstruction_l1": mean(_pair_l1(recon, inputs)),
            "same_class_l1": _distinct_mean(inputs, inputs[partner]),
            "other_l1": _distinct_mean(inputs, inputs.roll(1, 0))}
