"""Unsupervised text style transfer through a common space (Shen et al. 2017, cross-alignment).

"Unsupervised conditional sequence generation" in the lectures: rewrite a positive sentence
as a negative one (and back) having seen positive and negative sentences but never a pair.
Of the two designs the lecture gives, this is the second, projection to a common space, as
"Style Transfer from Non-Parallel Text by Cross-Alignment" (Shen, Lei, Barzilay and
Jaakkola, 2017) builds it:

* an encoder E(x, s) maps a sentence x of style s to a content code c, and a decoder
  G(c, s') writes c in style s' (the ``style_seq2seq`` network of
  :mod:`gankit.nets.text_style`: :class:`~gankit.nets.seq2seq.SequenceEncoder` and a
  :class:`~gankit.nets.seq2seq.ConditionalLSTM` whose first state is made from c beside an
  embedding of s'). Both learn to reconstruct: the mean per-token cross-entropy of x under
  G(E(x, s), s) by teacher forcing (``rec``).
* for each style k a discriminator D_k (``discriminator`` for the first style,
  ``discriminator_b`` for the second, ``state_cnn``: a CNN over hidden states) tells the
  decoder's teacher-forced hidden states on real sentences of style k from its free-running
  hidden states while writing sentences of the other style in style k, G(E(x, 1 - k), k).
  The free-running decoder feeds back, at each step, the expected embedding of its softmax at
  temperature tau (``SequenceGenerator.relaxed(..., hidden=True)``; Gumbel noise with
  ``noise``), so the judged states are differentiable in E and G: professor forcing (Lamb et
  al. 2016), which the paper uses because the words themselves give no gradient. A
  transferred sentence whose states cannot be told from those of real sentences of style k
  is aligned with them: the content codes of both styles must then share one distribution.
  The loss of E and G is ``rec`` + ``adv_weight`` (the sum over k of the non-saturating
  -log sigmoid D_k(transferred)); as in the paper's code, the adversarial terms join only
  while each discriminator's loss is below ``gate`` (its value at chance is 2 log 2 = 1.39;
  None: always), so a decoder is not pushed by discriminators that have learnt nothing yet,
  and only after the first ``pretrain_steps`` steps, which train the auto-encoder alone (the
  discriminators learn from the first step on): on a few thousand sentences an untrained
  decoder pushed by them from the start collapses onto a few words. The paper's weight is 1
  on a reconstruction loss summed over a sentence's tokens (10 to 20 of them); here it is
  their mean, so ``adv_weight`` 0.1 keeps about the paper's balance.
* optionally (``code_adv_weight`` > 0) the other technique the lecture names: a classifier
  (``code_critic``) learns the style from the content code and the encoder is trained to
  leave it at chance (cross-entropy against 1/2, less log 2: 0 at chance), as ``disentangle``
  does for pictures.

tau follows ``gumbel``'s schedule from ``tau_start`` to ``tau_end`` over ``anneal_steps``
steps (a function of the step, so a resumed run is exact); the paper's code keeps 0.1.

Sampling given sentences (``input``: text or token numbers, ``gankit sample RUN --text
"..." --to positive --n 1 --out out.txt``) and target styles (``domain``) encodes each
sentence with its own style (``source``; when not given, the style that is not the target)
and decodes greedily (``decode``: ``greedy``, or ``sample``: drawn with the noise by the
inverse CDF). Without sentences, sentences of a pool of the first ``input_pool`` training
sentences (kept in the checkpoint) are rewritten, each into the other style, so the
samples the trainer writes and every metric work. Evaluation gives it the held-out
sentences with their styles and judges it with ``style_transfer``
(:mod:`gankit.metrics.style`).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Literal, Mapping, Optional

import torch
import torch.nn.functional as F

from ..config import Config
from ..data.base import Field
from ..errors import ConfigError
from ..metrics import style as _style_metrics  # noqa: F401 - registers style_transfer
from ..nets.sequence import alive_mask
from ..registries import METHODS
from ..train.runtime import Runtime
from ._sequences import token_rows
from .base import Batch, Contract, DataInfo, Method, check_positive
from .gumbel import gumbel_noise, temperature

__all__ = ["TextStyle", "reconstruction_nll"]

Tensor = torch.Tensor


def reconstruction_nll(logits: Tensor, x: Tensor) -> Tensor:
    """The mean cross-entropy per counted token (each sentence's tokens up to and including its
    end) of token numbers ``x`` (N, L) under ``logits`` (N, L, V)."""
    mask = alive_mask(x).float()
    nll = F.cross_entropy(logits.float().transpose(1, 2), x, reduction="none")
    return (nll * mask).sum() / mask.sum().clamp_min(1)


def _weighted_bce(logits: Tensor, target: float, weight: Tensor) -> Tensor:
    """The mean binary cross-entropy of ``logits`` against ``target`` over the samples with
    weight 1 (0 when there are none)."""
    loss = F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits.float(), target),
                                              reduction="none")
    return (loss * weight).sum() / weight.sum().clamp_min(1)


class TextStyle(Method):
    contract = Contract(
        needs=("x", "domain"), conditions=("input", "domain", "source"), inputs={"input": "x", "source": "domain"},
        roles={"generator": "generator", "discriminator": "discriminator", "discriminator_b": "discriminator",
               "code_critic": "discriminator"},
        auto={"generator": "style_seq2seq", "discriminator": "state_cnn", "discriminator_b": "state_cnn",
              "code_critic": ("mlp", {"hidden": 64, "layers": 2})},
        metrics=("style_transfer",), optim={"lr_g": 1e-3, "lr_d": 5e-4}, data_kinds=("tokens",))

    #: the discriminator of each style, in the order of the styles
    judges = ("discriminator", "discriminator_b")

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, adv_weight: float, code_adv_weight: float,
                 gate: Optional[float], pretrain_steps: int, tau_start: float, tau_end: float, anneal_steps: int,
                 noise: bool, decode: str, input_pool: int):
        super().__init__(runtime, info, cfg)
        if not adv_weight >= 0 or not code_adv_weight >= 0:
            raise ConfigError(f"method.adv_weight and method.code_adv_weight must not be negative, got {adv_weight} "
                              f"and {code_adv_weight}")
        if not 0 < tau_end <= tau_start:
            raise ConfigError(f"method.tau_start ({tau_start}) and method.tau_end ({tau_end}) must satisfy "
                              "0 < tau_end <= tau_start")
        if gate is not None and not gate > 0:
            raise ConfigError(f"method.gate must be positive (the discriminators' loss below which the adversarial "
                              f"terms count; null: always), got {gate}")
        if pretrain_steps < 0:
            raise ConfigError(f"method.pretrain_steps must not be negative, got {pretrain_steps}")
        check_positive("method.anneal_steps", anneal_steps)
        check_positive("method.input_pool", input_pool)
        f_d = info.fields.get("domain")
        if f_d is None or f_d.kind != "label":
            raise ConfigError("method text_style needs a label field 'domain' naming each sentence's style: use "
                              "data sentiment")
        if f_d.n_classes != 2:
            raise ConfigError(f"method text_style transfers between two styles; this data set's domain field has "
                              f"{f_d.n_classes} ({', '.join(f_d.classes or ())})")
        self.styles = tuple(f_d.classes)
        self.adv_weight, self.code_adv_weight, self.gate = float(adv_weight), float(code_adv_weight), gate
        self.pretrain_steps = int(pretrain_steps)
        self.tau_start, self.tau_end, self.anneal_steps, self.with_noise = tau_start, tau_end, anneal_steps, noise
        self.decode, self.pool_size = decode, int(input_pool)
        self.tau = tau_start
        G = self.build_network("generator")
        if not all(hasattr(G, a) for a in ("content", "state", "teacher_forced", "decoder")):
            raise ConfigError(f"generator '{self.network_name('generator')}' is no encoder-decoder of styled "
                              "sentences: set generator.name=auto (style_seq2seq)")
        self.add_module("generator", G)
        self.add_optimizer("generator", G.parameters())
        length = int(info.shape[0])
        states = DataInfo("vector", (length, G.hidden_dim), 0, {"x": Field("vector", (length, G.hidden_dim))})
        for role in self.judges:
            D = self.build_network(role, states)
            self.add_module(role, D)
            self.add_optimizer(role, D.parameters())
        if self.code_adv_weight > 0:
            critic = self.build_network("code_critic", DataInfo("vector", (G.content_dim,)))
            self.add_module("code_critic", critic)
            self.add_optimizer("code_critic", critic.parameters())
        self.enable_ema()
        self.pool = torch.empty(0, length, dtype=torch.long)          # the first training sentences
        self.pool_styles = torch.empty(0, dtype=torch.long)           # and their styles
        self.draws_sources = True      # sampling: pooled sentences come with their styles
        self.targets_given = True      # sampling: the target styles were given, not drawn

    # ------------------------------------------------------------------ training
    def pool_batch(self, batch: Batch) -> None:
        room = self.pool_size - len(self.pool)
        if room > 0:
            self.pool = torch.cat([self.pool, batch["x"][:room].cpu()])
            self.pool_styles = torch.cat([self.pool_styles, batch["domain"][:room].cpu()])

    def train_step(self, batches: List[Batch], step: int) -> Dict[str, Tensor]:
        batch = batches[0]
        self.pool_batch(batch)
        self.tau = temperature(step - self.pretrain_steps, self.tau_start, self.tau_end, self.anneal_steps)
        G, rt = self.generator, self.rt
        x, s = batch["x"], batch["domain"]
        t = 1 - s                                            # each sentence is rewritten in the other style
        n, length = x.shape
        shape = (n, length, G.vocab)
        g = gumbel_noise(rt.rand(*shape)) if self.with_noise else torch.zeros(shape, device=x.device)
        with rt.autocast():
            c = G.content(x, s)
            h_real = G.teacher_forced(x, G.state(c, s))
            rec = reconstruction_nll(G.decoder.head(h_real), x)
            _, _, h_fake = G.decoder.relaxed(g, self.tau, state=G.state(c, t), hidden=True)
        # every position's state, as in the paper: after a sentence's end both decoders go on reading the
        # padding token (zeroing them instead lets a discriminator count positions, and G then learns to stop early)
        real, fake = h_real.float(), h_fake.float()
        logs: Dict[str, Tensor] = {"rec": rec.detach(), "tau": torch.tensor(self.tau)}

        # the discriminators: D_k, real states of style k against states written into style k
        d_losses = []
        for k, role in enumerate(self.judges):
            D = self.modules[role]
            D.requires_grad_(True)
            is_real, is_fake = (s == k).float(), (t == k).float()
            with rt.autocast():
                d_real, d_fake = D(real.detach()).float(), D(fake.detach()).float()
            loss = _weighted_bce(d_real, 1.0, is_real) + _weighted_bce(d_fake, 0.0, is_fake)
            rt.step(loss, self.optimizers[role], role)
            D.requires_grad_(False)
            d_losses.append(loss.detach())
            suffix = "" if k == 0 else "_b"
            with torch.no_grad():
                right = ((d_real > 0).float() * is_real).sum() + ((d_fake < 0).float() * is_fake).sum()
                logs[f"d_loss{suffix}"] = loss.detach()
                logs[f"d_acc{suffix}"] = right / (is_real.sum() + is_fake.sum()).clamp_min(1)
        if self.code_adv_weight > 0:
            critic = self.modules["code_critic"]
            critic.requires_grad_(True)
            with rt.autocast():
                guess = critic(c.detach().float()).float()
            loss = F.binary_cross_entropy_with_logits(guess, s.float())
            rt.step(loss, self.optimizers["code_critic"], "code_critic")
            critic.requires_grad_(False)
            logs["critic_loss"] = loss.detach()
            logs["critic_acc"] = ((guess > 0).long() == s).float().mean()

        # the encoder and decoder
        loss = rec
        open_ = step >= self.pretrain_steps and (self.gate is None or all(float(d) < self.gate for d in d_losses))
        logs["adv_on"] = torch.tensor(float(open_))
        if self.adv_weight > 0:
            adv = torch.zeros((), device=x.device)
            with rt.autocast():
                for k, role in enumerate(self.judges):
                    adv = adv + _weighted_bce(self.modules[role](fake).float(), 1.0, (t == k).float())
            logs["g_adv"] = adv.detach()
            if open_:
                loss = loss + self.adv_weight * adv
        if self.code_adv_weight > 0:
            with rt.autocast():
                guess = self.modules["code_critic"](c.float()).float()
            confusion = F.binary_cross_entropy_with_logits(guess, torch.full_like(guess, 0.5)) - math.log(2.0)
            loss = loss + self.code_adv_weight * confusion
            logs["confusion"] = confusion.detach()
        rt.step(loss, self.optimizers["generator"], "generator")
        self.update_ema()
        self.step_schedulers()
        return logs

    # ------------------------------------------------------------------ sampling
    @property
    def vocabulary(self):
        return self.info.fields["x"].classes

    def style_index(self, value) -> int:
        """A style given by name or number -> its number; a ConfigError naming the styles."""
        if isinstance(value, str):
            if value in self.styles:
                return self.styles.index(value)
            if value.strip().isdigit() and int(value) < len(self.styles):
                return int(value)
            raise ConfigError(f"unknown style {value!r}: this run's styles are {', '.join(self.styles)}")
        return int(value)

    def check_given(self, given: Mapping[str, Any], n: int, any_size: bool = False) -> Dict[str, Tensor]:
        """Sentences as text (one, or one a sample) or token numbers (N, L) (shorter rows padded
        with 0); styles by name or number."""
        given = dict(given)
        length = int(self.info.shape[0])
        for name in ("domain", "source"):
            v = given.get(name)
            if isinstance(v, str) or (isinstance(v, (list, tuple)) and any(isinstance(e, str) for e in v)):
                given[name] = ([self.style_index(v)] if isinstance(v, str) else [self.style_index(e) for e in v])
        v = given.get("input")
        if v is not None:
            t = token_rows(v, self.vocabulary, length, "a sentence to rewrite")
            if len(t) == 1 and n != 1:
                t = t.expand(n, -1)
            given["input"] = t
        return super().check_given(given, n, any_size)

    def draw_conditions(self, n: int, generator: Optional[torch.Generator] = None) -> Dict[str, Tensor]:
        """Target styles drawn uniformly (used for sentences whose own style is unknown), and
        sentences drawn (with replacement) from the pool of training sentences, with their
        styles as ``source`` (once the pool holds any)."""
        out = {"domain": torch.randint(len(self.styles), (n,), generator=generator)}
        if not len(self.pool):
            return out
        idx = torch.randint(len(self.pool), (n,), generator=generator)
        out["input"] = self.pool[idx]
        if self.draws_sources:
            out["source"] = self.pool_styles[idx]
        return out

    def sample(self, n: int, given=None, generator: Optional[torch.Generator] = None, *args, **kwargs):
        """:meth:`Method.sample`. A sentence whose own style (``source``) is known and whose
        target is not given is rewritten in the other style; a sentence given without its style
        is taken to be of the style that is not its target (drawn uniformly when not given); a
        ``source`` given without sentences takes pooled training sentences of those styles."""
        given = dict(given or {})
        if "source" in given and "input" not in given:
            source = self.check_given({"source": given["source"]}, n)["source"]
            given["input"] = self.pooled_of(source, generator)
        self.draws_sources, self.targets_given = "input" not in given, "domain" in given
        try:
            return super().sample(n, given, generator, *args, **kwargs)
        finally:
            self.draws_sources, self.targets_given = True, True

    def pooled_of(self, styles: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """For each style of ``styles``, a pooled training sentence of that style."""
        out = torch.zeros(len(styles), self.pool.shape[1], dtype=torch.long)
        for k in styles.unique().tolist():
            have = (self.pool_styles == k).nonzero().flatten()
            if not len(have):
                raise ConfigError(f"this run's pool of training sentences holds none of style {self.styles[k]!r}: "
                                  "give the sentences to rewrite")
            rows = (styles == k).nonzero().flatten()
            out[rows] = self.pool[have[torch.randint(len(have), (len(rows),), generator=generator)]]
        return out

    def generate(self, z: Tensor, given: Dict[str, Tensor]) -> Dict[str, Tensor]:
        x = given.get("input")
        if x is None:
            raise ConfigError("this text_style run has no sentences to rewrite: give them (gankit sample RUN --text "
                              "'...' --to STYLE, or given={'input': ...}); a run pools training sentences only once "
                              "training has begun")
        source, target = given.get("source"), given.get("domain")
        if target is None or (source is not None and not self.targets_given):
            if source is None:
                raise ConfigError(f"say which style to write in: --to {' or --to '.join(self.styles)} "
                                  "(given={'domain': ...}), or give each sentence's own style as 'source'")
            target = 1 - source
        if source is None:
            source = 1 - target
        G = self.for_sampling()
        state = G.state(G.content(x, source), target)
        if self.decode == "greedy":
            out = G.greedy(state)
        else:
            out = G.decoder.complete(None, None, z, state=state)
        return {"x": out, "input": x, "source": source, "domain": target}

    @torch.no_grad()
    def transfer(self, x: Tensor, source: Tensor, target: Tensor, batch: int = 500) -> Tensor:
        """Sentences ``x`` (N, L) of styles ``source`` rewritten greedily in styles ``target``, by
        the sampling network in eval mode, on the CPU."""
        G = self.for_sampling()
        mode = G.training
        G.eval()
        try:
            parts = []
            for i in range(0, len(x), batch):
                sl = slice(i, i + batch)
                with self.rt.autocast():
                    state = G.state(G.content(self.rt.tensor(x[sl]), self.rt.tensor(source[sl])),
                                    self.rt.tensor(target[sl]))
                    parts.append(G.greedy(state).cpu())
            return torch.cat(parts) if parts else x[:0].clone()
        finally:
            G.train(mode)

    @torch.no_grad()
    def reconstruction_loss(self, x: Tensor, style: Tensor) -> float:
        """The mean per-token cross-entropy of sentences ``x`` rebuilt from their content codes in
        their own styles (teacher forcing; the sampling network in eval mode)."""
        G = self.for_sampling()
        mode = G.training
        G.eval()
        try:
            x, style = self.rt.tensor(x), self.rt.tensor(style)
            h = G.teacher_forced(x, G.state(G.content(x, style), style))
            return float(reconstruction_nll(G.decoder.head(h), x))
        finally:
            G.train(mode)

    # ------------------------------------------------------------------ state
    def extra_state(self) -> Dict[str, Any]:
        return {"pool": self.pool.clone(), "pool_styles": self.pool_styles.clone()}

    def load_extra_state(self, state: Dict[str, Any]) -> None:
        if "pool" in state:
            self.pool = state["pool"].clone().long()
            self.pool_styles = state["pool_styles"].clone().long()


@METHODS.register("text_style")
def text_style(runtime, info, cfg, /, adv_weight: float = 0.1, code_adv_weight: float = 0.0,
               gate: Optional[float] = 1.2, pretrain_steps: int = 500, tau_start: float = 0.1, tau_end: float = 0.1,
               anneal_steps: int = 1000, noise: bool = False, decode: Literal["greedy", "sample"] = "greedy",
               input_pool: int = 256) -> TextStyle:
    """Unsupervised text style transfer by cross-alignment (Shen et al. 2017): an encoder to a
    content code and a decoder given a style (generator style_seq2seq), reconstruction by teacher
    forcing, and per style a discriminator (state_cnn) of the decoder's teacher-forced hidden
    states on real sentences against its free-running ones (softmax feedback at temperature tau)
    on sentences rewritten into that style; the adversarial terms count while each
    discriminator's loss is below gate, after pretrain_steps of reconstruction alone;
    code_adv_weight > 0 adds a classifier of the content code (code_critic) that the encoder
    fools. Data with a label field domain of two styles (sentiment). Sample with --text '...'
    --to STYLE --n 1 --out FILE.txt."""
    return TextStyle(runtime, info, cfg, adv_weight, code_adv_weight, gate, pretrain_steps, tau_start, tau_end,
                     anneal_steps, noise, decode, input_pool)


text_style.contract = TextStyle.contract
