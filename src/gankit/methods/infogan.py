"""InfoGAN (Chen et al. 2016): latent codes that the generator must keep recoverable.

"Feature Extraction by GAN" in the lectures: the generator's input is split into codes c and
noise z; a classifier Q reads the generated x and tries to recover c. Generator and Q together
are an auto-encoder turned round (code -> image -> code), and the discriminator stops the
generator from simply writing c into the picture, so the generator must give each code a
clear, realistic effect on x. Which dimensions become meaningful is decided by calling them c.

The codes here are ``categorical`` (a list: one uniform categorical code per entry, with that
many categories; the paper's MNIST setting is ``[10]``) and ``continuous`` (how many codes
uniform in [-1, 1]; the paper's MNIST setting is 2). G's input is ``[z, one-hot codes,
continuous codes]``; ``generator.z_dim`` is the width of z alone.

Mutual information. For Q(c | x) of any form, I(c; G(z, c)) >= H(c) + E_{c, x=G(z,c)}[log Q(c | x)]
(Barber & Agakov's variational bound; the paper's L_I). For a uniform categorical code of k
values H(c) = log k and log Q is minus the cross-entropy of Q's logits; for a code uniform in
[-1, 1] the (differential) entropy is log 2 and Q is a Gaussian with Q's mean and standard
deviation (fixed at 1 unless ``learn_std``). Both G and Q maximise the bound, i.e. minimise
``-(lambda_categorical * L_cat + lambda_continuous * L_cont)``: Q (with the discriminator's
body it shares, as in the paper's released code) in the discriminator's update, on the
generated batch that update sees, and G in its own update, with D and Q held fixed. The paper
sets lambda to 1 for discrete codes and smaller for continuous ones, "to ensure that
lambda L_I(G, Q), which now involves differential entropy, is on the same scale as GAN
objectives" (section 5); 0.1 is the default here. The logged ``mi_categorical`` and
``mi_continuous`` are the bounds (nats) on the generated batch of the discriminator's update;
``mi_categorical`` approaches log k when Q recovers the code, and ``q_accuracy`` is the share
of that batch whose first categorical code Q recovers. With the standard deviation fixed at 1
the continuous bound is at most log 2 - log(2 pi) / 2 = -0.23 nats per code (a loose bound:
negative, although the information is not), and what it teaches G and Q is the squared error
between Q's mean and the code.

Q is a head on the discriminator's penultimate features (:class:`gankit.nets.infogan.InfoDiscriminator`),
so any discriminator with ``features`` and a read-out head (dcgan, mlp) carries it.

Sampling draws every code from its prior unless given: ``given={"code": 3}`` fixes the first
categorical code (``code_1``, ``code_2`` ... the further ones), ``given={"continuous": [0.5, -1]}``
the continuous codes; ``gankit sample RUN --label 3`` is ``code`` 3. Picture grids during
training show one row per category of the first code; :meth:`InfoGAN.traversal` draws the
paper's latent traversals (one row per category, a continuous code swept from -2 to 2, the
noise fixed). The ``unsupervised_accuracy`` metric reads the first categorical code as a
clustering (:mod:`gankit.metrics.matching`).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from ..config import Config
from ..data.base import Field
from ..errors import ConfigError
from ..metrics import matching
from ..nets.infogan import InfoDiscriminator
from ..registries import METHODS, METRICS, OBJECTIVES
from ..train.runtime import Runtime
from .base import Adversarial, Batch, Contract, DataInfo, check_positive, discriminator_logs
from .gan import regularise_discriminator

__all__ = ["InfoGAN", "information_bound", "categorical_bound", "gaussian_bound", "UNIFORM_ENTROPY"]

Tensor = torch.Tensor
ObjectiveSpec = OBJECTIVES.spec_type()

#: differential entropy of a code uniform in [-1, 1] (nats)
UNIFORM_ENTROPY = math.log(2.0)


def categorical_bound(logits: Tensor, code: Tensor) -> Tensor:
    """H(c) + mean log Q(c | x) for a uniform categorical code of k = logits.shape[1] values:
    log k minus the cross-entropy of Q's logits at the drawn code (nats, float32)."""
    return math.log(logits.shape[1]) - F.cross_entropy(logits.float(), code)


def gaussian_bound(mean: Tensor, log_std: Tensor, code: Tensor) -> Tensor:
    """Sum over the continuous codes (each uniform in [-1, 1], entropy log 2) of H(c_j) plus the
    mean Gaussian log-likelihood log N(c_j; mean_j, exp(log_std_j)^2) (nats, float32)."""
    mean, log_std, code = mean.float(), log_std.float(), code.float()
    loglik = -0.5 * math.log(2 * math.pi) - log_std - 0.5 * ((code - mean) * torch.exp(-log_std)) ** 2
    return (UNIFORM_ENTROPY + loglik).sum(1).mean()


def information_bound(out: Dict[str, Any], codes: Sequence[Tensor], continuous: Tensor) -> Tuple[Tensor, Tensor]:
    """(L_cat, L_cont): the variational lower bounds on the mutual information between the
    categorical codes (summed over codes) and the continuous codes, and the samples Q saw."""
    zero = out["mean"].new_zeros((), dtype=torch.float32)
    cat = sum((categorical_bound(lg, c) for lg, c in zip(out["logits"], codes)), zero)
    cont = gaussian_bound(out["mean"], out["log_std"], continuous) if continuous.shape[1] else zero
    return cat, cont


class InfoGAN(Adversarial):
    contract = Contract(metrics=("unsupervised_accuracy",), optim={"lr_g": 1e-3, "lr_d": 2e-4})

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, categorical: Sequence[int], continuous: int,
                 lambda_categorical: float, lambda_continuous: float, learn_std: bool, q_hidden: int, d_steps: int,
                 objective: Union[str, Dict[str, Any]], spectral_norm: bool):
        super().__init__(runtime, info, cfg)
        check_positive("method.d_steps", d_steps)
        self.d_steps = self.real_batches_per_step = d_steps
        categorical = [int(k) for k in categorical]
        if any(k < 2 for k in categorical):
            raise ConfigError(f"method.categorical lists the number of categories of each categorical code; each must "
                              f"be at least 2, got {categorical}")
        if continuous < 0:
            raise ConfigError(f"method.continuous (the number of continuous codes) must not be negative, got {continuous}")
        if not categorical and not continuous:
            raise ConfigError("method infogan needs at least one latent code: set method.categorical (e.g. [10]) or "
                              "method.continuous (e.g. 2); without codes it is method gan")
        for key, value in (("lambda_categorical", lambda_categorical), ("lambda_continuous", lambda_continuous)):
            if not value >= 0:
                raise ConfigError(f"method.{key} must not be negative, got {value}")
        self.categories, self.n_continuous = tuple(categorical), int(continuous)
        self.lambda_categorical, self.lambda_continuous = lambda_categorical, lambda_continuous
        self.objective = OBJECTIVES.build_spec(objective, key="method.objective")
        if "z_dim" not in cfg.generator:
            raise ConfigError(f"generator '{self.network_name('generator')}' has no z_dim; method infogan feeds the "
                              "generator noise and codes (use generator.name=auto, dcgan or mlp)")
        self.z_dim = int(cfg.generator["z_dim"])
        g = self.build_noise_generator(z_dim=self.z_dim + sum(self.categories) + self.n_continuous)
        d = InfoDiscriminator(self.build_network("discriminator"), self.categories, self.n_continuous, learn_std,
                              q_hidden)
        regularise_discriminator(d, "none", spectral_norm)
        self.opt_g, self.opt_d = self.add_pair(g, d)

    # ------------------------------------------------------------------ the latent vector
    @property
    def code_names(self) -> List[str]:
        """The names under which the categorical codes are given and returned."""
        return ["code"] + [f"code_{i}" for i in range(1, len(self.categories))] if self.categories else []

    def compose(self, z: Tensor, codes: Sequence[Tensor], continuous: Tensor) -> Tensor:
        """G's input ``[z, one-hot codes, continuous codes]``."""
        parts = [z] + [F.one_hot(c.long(), k).to(z.dtype) for c, k in zip(codes, self.categories)]
        return torch.cat(parts + [continuous.to(z.dtype)], 1)

    def split(self, latent: Tensor) -> Tuple[Tensor, List[Tensor], Tensor]:
        """(z, the categorical codes as indices, the continuous codes) of G's inputs."""
        z = latent[:, :self.z_dim]
        codes, at = [], self.z_dim
        for k in self.categories:
            codes.append(latent[:, at:at + k].argmax(1))
            at += k
        return z, codes, latent[:, at:]

    def noise(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """G's whole input for ``n`` samples: z ~ N(0, I), each categorical code uniform over its
        categories, each continuous code uniform in [-1, 1] (from the global RNG through the
        runtime, sharded like the noise of every method, or from ``generator``)."""
        m = len(self.categories) + self.n_continuous
        if generator is None:
            z, u = self.rt.randn(n, self.z_dim), self.rt.rand(n, m)
        else:
            z = torch.randn(n, self.z_dim, generator=generator).to(self.rt.device)
            u = torch.rand(n, m, generator=generator).to(self.rt.device)
        codes = [(u[:, i] * k).long().clamp_max(k - 1) for i, k in enumerate(self.categories)]
        return self.compose(z, codes, u[:, len(self.categories):] * 2 - 1)

    # ------------------------------------------------------------------ conditions
    def condition_fields(self) -> Dict[str, Field]:
        """The codes sampling can be given: ``code`` (``code_1`` ...) as labels of their
        categories and ``continuous`` as a vector."""
        fields = {name: Field("label", (), classes=tuple(str(i) for i in range(k)), frequencies=(1.0 / k,) * k)
                  for name, k in zip(self.code_names, self.categories)}
        if self.n_continuous:
            fields["continuous"] = Field("vector", (self.n_continuous,))
        return fields

    def check_given(self, given, n: int, any_size: bool = False) -> Dict[str, Tensor]:
        fields = self.condition_fields()
        out = {}
        for name, value in given.items():
            if name not in fields:
                raise ConfigError(f"this InfoGAN run takes the codes {', '.join(fields)}; it cannot be given '{name}'")
            f = fields[name]
            if f.kind == "label":
                t = torch.as_tensor(value).reshape(-1).long()
                if len(t) == 1 and n != 1:
                    t = t.expand(n)
                k = f.n_classes
                if len(t) and (int(t.min()) < 0 or int(t.max()) >= k):
                    bad = int(t.max()) if int(t.max()) >= k else int(t.min())
                    raise ConfigError(f"{name} {bad} is out of range: this run's categorical code '{name}' has {k} "
                                      f"categories (0..{k - 1})")
            else:
                t = torch.as_tensor(value, dtype=torch.float32)
                if t.dim() == 1 and len(t) == self.n_continuous:
                    t = t.expand(n, -1)
                if t.dim() != 2 or t.shape[1] != self.n_continuous:
                    raise ConfigError(f"'continuous' takes {self.n_continuous} values per sample (this run's continuous "
                                      f"codes), got shape {tuple(t.shape)}")
            if len(t) != n:
                raise ConfigError(f"{len(t)} values of '{name}' given for {n} samples")
            out[name] = t
        return out

    def showcase(self, n: int) -> Tuple[Dict[str, Tensor], Optional[int]]:
        """One row per category of the first categorical code."""
        if self.categories and self.categories[0] <= n:
            k = self.categories[0]
            return {"code": torch.arange(k).repeat_interleave(n // k)}, n // k
        return {}, None

    def generate(self, z: Tensor, given: Dict[str, Tensor]) -> Dict[str, Tensor]:
        noise, codes, continuous = self.split(z)
        codes = [given.get(name, c) for name, c in zip(self.code_names, codes)]
        continuous = given.get("continuous", continuous)
        x = self.for_sampling()(self.compose(noise, codes, continuous.to(z.device)))
        out = {"x": x, **{name: c.long() for name, c in zip(self.code_names, codes)}}
        if self.n_continuous:
            out["continuous"] = continuous.float()
        return out

    @torch.no_grad()
    def traversal(self, code: int = 0, steps: int = 9, low: float = -2.0, high: float = 2.0, seed: int = 0
                  ) -> Tuple[Tensor, int]:
        """The paper's latent traversal: one row per category of the first categorical code (one
        row without one), the continuous code ``code`` swept from ``low`` to ``high`` in
        ``steps`` columns, the other continuous codes at 0 and one noise vector z for the whole
        grid; returns (samples in model space, row length)."""
        if not 0 <= code < self.n_continuous:
            raise ConfigError(f"this run has {self.n_continuous} continuous codes; code {code} is not one of them")
        check_positive("steps", steps)
        g = torch.Generator().manual_seed(seed)
        rows = self.categories[0] if self.categories else 1
        values = torch.linspace(low, high, steps)
        cont = torch.zeros(rows * steps, self.n_continuous)
        cont[:, code] = values.repeat(rows)
        given = {"continuous": cont}
        if self.categories:
            given["code"] = torch.arange(rows).repeat_interleave(steps)
        latent = self.noise(1, g).expand(rows * steps, -1)
        nets = list(self.modules.values()) + list(self.emas.values())
        modes = [net.training for net in nets]
        for net in nets:
            net.eval()
        try:
            with self.rt.autocast():
                x = self.generate(latent, {k: v.to(self.rt.device) for k, v in given.items()})["x"]
        finally:
            for net, mode in zip(nets, modes):
                net.train(mode)
        return x.float().cpu(), steps

    # ------------------------------------------------------------------ Q as an encoder
    @torch.no_grad()
    def classify(self, x: Tensor, batch_size: int = 500) -> Tensor:
        """Q's most likely category of the first categorical code for each sample of ``x`` (data
        space: images in [0, 1], vectors as they are), on the CPU; Q in eval mode."""
        if not self.categories:
            raise ConfigError("this InfoGAN run has no categorical code (method.categorical is empty)")
        D = self.discriminator
        mode = D.training
        D.eval()
        out = []
        try:
            for lo in range(0, len(x), batch_size):
                xb = x[lo:lo + batch_size].float()
                xb = self.rt.tensor(xb * 2 - 1 if self.info.kind == "image" else xb)
                with self.rt.autocast():
                    out.append(D.recognise(xb)["logits"][0].argmax(1).cpu())
        finally:
            D.train(mode)
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)

    # ------------------------------------------------------------------ the two updates
    def _information(self, out: Dict[str, Any], latent: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """(the weighted information loss, L_cat, L_cont) of D/Q's outputs on G(latent)."""
        _, codes, continuous = self.split(latent)
        cat, cont = information_bound(out, codes, continuous)
        return -(self.lambda_categorical * cat + self.lambda_continuous * cont), cat, cont

    def discriminator_step(self, batch: Batch) -> Dict[str, Tensor]:
        D, rt, obj = self.discriminator, self.rt, self.objective
        x = batch["x"]
        latent = self.noise(len(x))
        with torch.no_grad(), rt.autocast():
            fake = self.generator(latent)
        with rt.autocast():
            out_real, out_fake = D(x), D(fake)
        info_loss, cat, cont = self._information(out_fake, latent)
        loss = obj.d_loss(out_real["score"], out_fake["score"]) + info_loss
        rt.step(loss, self.opt_d, "discriminator")
        logs = discriminator_logs(obj, loss, out_real["score"], out_fake["score"])
        with torch.no_grad():
            if self.categories:
                logs["mi_categorical"] = cat.detach()
                code = self.split(latent)[1][0]
                logs["q_accuracy"] = (out_fake["logits"][0].argmax(1) == code).float().mean()
            if self.n_continuous:
                logs["mi_continuous"] = cont.detach()
        return logs

    def generator_step(self, batches: List[Batch]) -> Dict[str, Tensor]:
        G, D, rt, obj = self.generator, self.discriminator, self.rt, self.objective
        latent = self.noise(len(batches[-1]["x"]))
        with rt.autocast():
            out = D(G(latent))
        info_loss, _, _ = self._information(out, latent)
        loss = obj.g_loss(out["score"]) + info_loss
        rt.step(loss, self.opt_g, "generator")
        return {"g_loss": loss.detach()}


@METHODS.register("infogan")
def infogan(runtime, info, cfg, /, categorical: List[int] = (10,), continuous: int = 2,
            lambda_categorical: float = 1.0, lambda_continuous: float = 0.1, learn_std: bool = False,
            q_hidden: int = 128, d_steps: int = 1, objective: ObjectiveSpec = "nonsaturating",
            spectral_norm: bool = False) -> InfoGAN:
    """InfoGAN (Chen et al. 2016): G(z, c) with categorical codes (categorical: the number of
    categories of each; the paper's MNIST setting [10]) and continuous codes uniform in [-1, 1]
    (continuous: how many; 2), Q a head on D's features (q_hidden units; learn_std: a learned
    Gaussian standard deviation, else fixed at 1); the mutual-information bound weighted by
    lambda_categorical (1) and lambda_continuous (0.1), minimised by G and Q. Sample with
    given={"code": 3} / --label 3; the metric unsupervised_accuracy."""
    return InfoGAN(runtime, info, cfg, list(categorical), continuous, lambda_categorical, lambda_continuous, learn_std,
                   q_hidden, d_steps, objective, spectral_norm)


infogan.contract = InfoGAN.contract


# ----------------------------------------------------------------------------------- the metric

@METRICS.register("unsupervised_accuracy")
def _unsupervised_accuracy(s, /) -> Dict[str, float]:
    """InfoGAN runs: the first categorical code read as a clustering, scored against the labels
    under the best one-to-one matching of categories to classes (Hungarian).
    ``unsupervised_accuracy``: Q's category of each real held-out sample against its label (the
    paper's measure); ``unsupervised_accuracy_generated``: the category each generated sample
    was drawn with against the class the data set's classifier (toy data: the nearest mode)
    gives it."""
    method = getattr(s, "method", None)
    if not isinstance(method, InfoGAN):
        raise ConfigError("unsupervised_accuracy scores the categorical code of an InfoGAN run (method infogan); "
                          "evaluate such a run")
    if not method.categories:
        raise ConfigError("unsupervised_accuracy needs a categorical code: this InfoGAN run has none "
                          "(method.categorical is empty)")
    if s.real_labels is None:
        raise ConfigError("unsupervised_accuracy needs real data with labels (fashion_mnist, mnist, the toy mixtures)")
    k = method.categories[0]
    labels = s.real_labels.long().numpy()
    n_classes = max(method.info.n_classes, int(labels.max()) + 1)
    real = matching.matched_accuracy(method.classify(s.real).numpy(), labels, k, n_classes)[0]
    code = s.output("code").long().numpy()
    if s.kind == "vector":
        if s.modes is None:
            raise ConfigError("unsupervised_accuracy on vectors needs data whose modes are its classes (the toy "
                              "mixtures)")
        judged = torch.cdist(s.fake.double(), s.modes.double()).argmin(1).numpy()
        n_judged = len(s.modes)
    else:
        probs = s.fake_probs
        judged, n_judged = probs.argmax(1), probs.shape[1]
    generated = matching.matched_accuracy(code, judged, k, n_judged)[0]
    return {"unsupervised_accuracy": real, "unsupervised_accuracy_generated": generated}
