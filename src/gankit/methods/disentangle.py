"""Feature disentanglement: a content code that an adversary cannot read the factor from.

"Feature Extraction by GAN" in the lectures, the voice-conversion example: a phonetic
encoder and a speaker encoder, a decoder that rebuilds the utterance from both codes, and a
speaker classifier that tries to tell the speaker from the phonetic code while the phonetic
encoder learns to defeat it (domain-adversarial training; the classifier is the
discriminator, the encoder the generator). Here on pictures: the *content* is the garment,
the *factor* the domain (style) of the picture, a label field ``domain`` (data
``fashion_mnist_styles``, or any data set with such a field, as StarGAN takes).

The ``generator`` role is one module (:mod:`gankit.nets.disentangle`) holding the content
encoder E_c (a map), the factor encoder E_f (a vector) and the decoder Dec; the
``discriminator`` role is the adversary A, a classifier of content maps. Each step:

* the adversary learns the factor from the content code: minimise CE(A(E_c(x)), domain), on
  ``d_steps`` batches of its own (3: an adversary kept close to its best gives the encoder a
  gradient that removes the factor, rather than one that fools a stale adversary);
* the encoders and the decoder minimise

      E|Dec(E_c(x), E_f(x')) - x| + adv_weight * CE(A(E_c(x)), uniform)

  where x' is *another* picture of x's domain from the same batch (the notes' assumption
  that it is known which utterances one speaker said): the factor code cannot carry x's
  own garment, so the content must pass through E_c, and what E_f keeps is what the
  pictures of a domain share. The second term (cross-entropy against the uniform
  distribution, less its minimum log K, so 0 means the adversary is at chance) pushes A's
  guesses on the content code towards chance: the content encoder drops the factor. Its
  weight trades the two aims: on four styles of Fashion-MNIST (benchmarks/README.md) 0.05,
  the default, keeps the garment, while from 0.2 up the content code loses the garment
  along with the style within a few hundred steps (the decoder then draws each domain's
  average picture).

Sampling given pictures (``input``) and target factors (``domain``; ``gankit sample RUN
--input FOLDER --to inverted``) decodes each picture's content with the target's factor
code: the mean factor code of the pooled training pictures of that domain (the first
``input_pool`` training pictures, kept in the checkpoint). Given ``source`` (each input's own
domain) the outputs add the ``reconstruction`` Dec(E_c(x), factor of its own domain). With
no pictures given they are drawn, with their domains, from the pool. Evaluation swaps
held-out pictures to targets drawn uniformly and reports ``domain_accuracy`` (a classifier of
the domains recognises the target: the style changed), ``translation_accuracy`` (the
Fashion-MNIST classifier still recognises the garment), ``content_domain_accuracy`` (how
well the factor can still be read from the content code: the adversary's accuracy on
held-out codes, and a fresh probe's; chance beside them) and ``reconstruction_l1``.
"""
from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F

from ..config import Config
from ..data.base import Field
from ..errors import ConfigError
from ..registries import METHODS, METRICS
from ..train.runtime import Runtime
from .base import Adversarial, Batch, Contract, DataInfo, check_positive
from ._pools import DomainInputs
from ._voice import voice_contract

__all__ = ["Disentangle", "partners"]

Tensor = torch.Tensor


def partners(domain: Tensor, u: Tensor) -> Tensor:
    """For each sample, another sample of the same domain (itself when it is its domain's only
    one): the next one in an order of the samples by domain, shuffled within each domain by
    the uniform numbers ``u``, wrapping round within the domain."""
    n = len(domain)
    order = torch.argsort(domain.double() * 2 + u.double())
    d = domain[order]
    first = torch.searchsorted(d, d)                 # where each sample's domain starts in that order
    nxt = torch.arange(1, n + 1, device=domain.device)
    wrap = (nxt >= n) | (d[nxt.clamp_max(n - 1)] != d)
    pos = torch.where(wrap, first, nxt)
    out = torch.empty_like(order)
    out[order] = order[pos]
    return out


class Disentangle(DomainInputs, Adversarial):
    contract = Contract(
        needs=("x", "domain"), conditions=("input", "domain", "source"), inputs={"input": "x", "source": "domain"},
        auto={"generator": "disentangler", "discriminator": "code_classifier"}, data_kinds=("image",),
        metrics=("domain_accuracy", "translation_accuracy", "content_domain_accuracy", "reconstruction_l1"),
        optim={"lr_g": 1e-3, "lr_d": 1e-3})

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, adv_weight: float, d_steps: int,
                 input_pool: int):
        super().__init__(runtime, info, cfg)
        self.contract = voice_contract(self.contract, cfg)    # on voices: judged as voice conversion
        check_positive("method.input_pool", input_pool)
        check_positive("method.d_steps", d_steps)
        self.d_steps = self.real_batches_per_step = int(d_steps)
        if not adv_weight >= 0:
            raise ConfigError(f"method.adv_weight must not be negative, got {adv_weight}")
        self.adv_weight = float(adv_weight)
        f_x, f_d = info.fields["x"], info.fields.get("domain")
        if f_d is None or f_d.kind != "label":
            raise ConfigError("method disentangle needs a label field 'domain' naming each picture's factor (its "
                              "style): use data fashion_mnist_styles, or a data set with such a field")
        k = f_d.n_classes
        if k < 2:
            raise ConfigError(f"method disentangle separates at least 2 factors; this data set has {k}")
        self.n_domains, self.domains = k, tuple(f_d.classes)
        g = self.build_network("generator")
        if not all(hasattr(g, a) for a in ("content", "factor", "decode")):
            raise ConfigError(f"generator '{self.network_name('generator')}' has no content and factor encoders; "
                              "method disentangle needs generator.name=disentangler (or auto)")
        code = tuple(g.code_shape)
        a = self.build_network("discriminator", DataInfo("image", code, k, {"x": Field("image", code)}))
        self.opt_g, self.opt_d = self.add_pair(g, a)
        self.init_domain_inputs(input_pool, f_x.shape)

    # ------------------------------------------------------------------ pieces
    def targets(self, n: int) -> Tensor:
        return (self.rt.rand(n) * self.n_domains).long().clamp_max(self.n_domains - 1)

    def confusion(self, logits: Tensor) -> Tensor:
        """Cross-entropy of the adversary's guesses against the uniform distribution, less log K:
        0 when it guesses every factor alike."""
        return -F.log_softmax(logits.float(), 1).mean(1).mean() - math.log(self.n_domains)

    @torch.no_grad()
    def factor_codes(self, net=None) -> Tensor:
        """The factor code of each domain (K, factor): the mean of the pooled training pictures'."""
        net = self.for_sampling() if net is None else net
        if not len(self.inputs.images):
            raise ConfigError("this disentangle run has no training pictures yet to take the factors' codes from; "
                              "train it first")
        missing = [self.domains[d] for d in range(self.n_domains) if not bool((self.sources == d).any())]
        if missing:
            raise ConfigError(f"the pool of training pictures holds no picture of domain {missing[0]!r}; raise "
                              "method.input_pool")
        x = self.rt.tensor(self.inputs.images.float().div(127.5).sub(1.0))
        f = net.factor(x).float()
        src = self.sources.to(f.device)
        return torch.stack([f[src == d].mean(0) for d in range(self.n_domains)])

    @torch.no_grad()
    def content_codes(self, x: Tensor, net=None, batch: int = 500) -> Tensor:
        """E_c of pictures ``x`` (model space) in eval mode, on the CPU (float32)."""
        net = self.for_sampling() if net is None else net
        mode = net.training
        net.eval()
        try:
            return torch.cat([net.content(self.rt.tensor(x[s:s + batch])).float().cpu()
                              for s in range(0, len(x), batch)])
        finally:
            net.train(mode)

    # ------------------------------------------------------------------ sampling
    def generate(self, z: Tensor, given: Dict[str, Tensor]) -> Dict[str, Tensor]:
        if "input" not in given:
            raise ConfigError("this disentangle run has no pictures to change: give them (gankit sample --input "
                              "FOLDER, or given={'input': images}); runs draw their own only after training has "
                              "begun")
        x, net = given["input"], self.for_sampling()
        target = given["domain"] if "domain" in given else torch.zeros(len(x), dtype=torch.long, device=x.device)
        codes = self.factor_codes(net).to(x.device)
        content = net.content(x)
        out = {"x": net.decode(content, codes[target]), "input": x, "domain": target}
        if "source" in given:
            out["reconstruction"] = net.decode(content, codes[given["source"]])
            out["source"] = given["source"]
        return out

    def sample(self, n: int, given=None, *args, **kwargs):
        """:meth:`Method.sample`; pictures given without their domains (``source``) get no
        reconstruction (the pooled pictures' domains belong to other pictures)."""
        given = given or {}
        self.draws_sources = "input" not in given or "source" in given
        try:
            return super().sample(n, given, *args, **kwargs)
        finally:
            self.draws_sources = True

    # ------------------------------------------------------------------ the two updates
    def train_step(self, batches: List[Batch], step: int) -> Dict[str, Tensor]:
        self.pool_batch(batches[0])
        return super().train_step(batches, step)

    def discriminator_step(self, batch: Batch) -> Dict[str, Tensor]:
        G, A, rt = self.generator, self.discriminator, self.rt
        x, domain = batch["x"], batch["domain"]
        with torch.no_grad(), rt.autocast():
            code = G.content(x)
        with rt.autocast():
            logits = A(code).float()
        loss = F.cross_entropy(logits, domain)
        rt.step(loss, self.opt_d, "discriminator")
        with torch.no_grad():
            acc = (logits.argmax(1) == domain).float().mean()
        return {"d_loss": loss.detach(), "adversary_acc": acc}

    def generator_step(self, batches: List[Batch]) -> Dict[str, Tensor]:
        G, A, rt = self.generator, self.discriminator, self.rt
        x, domain = batches[-1]["x"], batches[-1]["domain"]
        other = partners(domain, self.rt.rand(len(x)))
        with rt.autocast():
            code = G.content(x)
            rec = G.decode(code, G.factor(x[other]))
            logits = A(code) if self.adv_weight else None
        rec_loss = (rec.float() - x.float()).abs().mean()
        loss, logs = rec_loss, {"reconstruction": rec_loss.detach()}
        if logits is not None:
            confusion = self.confusion(logits)
            loss = loss + self.adv_weight * confusion
            logs["confusion"] = confusion.detach()
        rt.step(loss, self.opt_g, "generator")
        return logs



@METHODS.register("disentangle")
def disentangle(runtime, info, cfg, /, adv_weight: float = 0.05, d_steps: int = 3, input_pool: int = 256) -> Disentangle:
    """Feature disentanglement (the lectures' voice-conversion example on pictures): content and
    factor encoders and a decoder (generator disentangler) rebuild each picture from its content
    and another same-domain picture's factor; an adversary (discriminator code_classifier)
    guesses the domain from the content code (d_steps updates, each on a batch of its own, per
    update of the rest), which adv_weight pushes to chance. Sample with
    --input FOLDER --to DOMAIN: the picture's content with the target domain's factor."""
    return Disentangle(runtime, info, cfg, adv_weight, d_steps, input_pool)


disentangle.contract = Disentangle.contract


# ----------------------------------------------------------------------------------- metrics

def _method(s, metric: str) -> Disentangle:
    method = getattr(s, "method", None)
    if not isinstance(method, Disentangle):
        raise ConfigError(f"{metric} scores a disentangle run (method disentangle); evaluate such a run")
    return method


def probe_accuracy(codes: Tensor, labels: Tensor, n_classes: int, steps: int = 300, seed: int = 0) -> Tuple[float, float]:
    """(accuracy, majority share) of a fresh classifier of content maps (the ``code_classifier``
    design), trained with Adam on the first half of ``codes`` and tested on the second half
    (seeded, float32, on the CPU): how much of the factor a new adversary can still read."""
    from ..nets.disentangle import CodeClassifier

    n = len(codes)
    half = n // 2
    if half < 2:
        raise ConfigError(f"content_domain_accuracy needs more held-out pictures, got {n}")
    train_x, train_y, test_x, test_y = codes[:half], labels[:half], codes[half:], labels[half:]
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = CodeClassifier(tuple(codes.shape[1:]), n_classes, 32, 128)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(steps):
        idx = torch.randint(half, (min(128, half),), generator=g)
        loss = F.cross_entropy(net(train_x[idx]), train_y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = float((net(test_x).argmax(1) == test_y).double().mean())
    majority = float(torch.bincount(test_y, minlength=n_classes).max()) / len(test_y)
    return acc, majority


@METRICS.register("content_domain_accuracy")
def _content_domain_accuracy(s, /, probe_steps: int = 300) -> Dict[str, float]:
    """Disentangle runs: how well the factor (domain) of held-out pictures can be read from
    their content codes. content_domain_accuracy: the run's adversary on the codes of its
    content encoder; content_domain_probe: a fresh classifier of the same design trained on
    half of the held-out codes (of the sampling encoder) and tested on the other half;
    content_domain_chance: the majority share of that half (what guessing scores); 1/K for
    balanced domains."""
    method = _method(s, "content_domain_accuracy")
    x, source = s.output("input") * 2 - 1, s.output("source").long()
    live = method.content_codes(x, method.generator)
    A = method.discriminator
    mode = A.training
    A.eval()
    try:
        with torch.no_grad():
            guess = torch.cat([A(method.rt.tensor(live[i:i + 500])).float().argmax(1).cpu()
                               for i in range(0, len(live), 500)])
    finally:
        A.train(mode)
    probe, chance = probe_accuracy(method.content_codes(x), source, method.n_domains, probe_steps)
    return {"content_domain_accuracy": float((guess == source).double().mean()), "content_domain_probe": probe,
            "content_domain_chance": chance}


@METRICS.register("reconstruction_l1")
def _reconstruction_l1(s, /) -> Dict[str, float]:
    """Disentangle runs: the mean absolute error (pixels in [0, 1]) of held-out pictures decoded
    from their content code and their own domain's factor code."""
    _method(s, "reconstruction_l1")
    return {"reconstruction_l1": float((s.output("reconstruction") - s.output("input")).abs().mean())}
