"""Unsupervised abstractive summarisation: a seq2seq2seq auto-encoder whose middle reads like people.

"Unsupervised Abstractive Summarization" in the lectures (CycleGAN's idea on text): no
document comes with its summary. Three networks:

* the **generator** G (``encoder_decoder`` with ``copy``: a bidirectional LSTM encoder and
  an LSTM pointer-generator decoder, which may copy words of the document, as the
  lecture's summariser does) reads a document x and writes a short word sequence y = G(x)
  of at most ``summary_length`` tokens;
* the **reconstructor** R (another ``encoder_decoder``) reads y and writes the document
  back; its teacher-forced negative log-likelihood -log p_R(x | y) per token is the
  reconstruction loss. G and R together are a seq2seq2seq auto-encoder whose code is a
  word sequence: y must carry what R needs of x. An LSTM decoder can model a document well
  without reading y at all (and then G gets no gradient to make y informative), so the
  words R is fed while teacher forcing are replaced by ``<unk>`` with probability
  ``word_dropout`` (Bowman et al. 2016; ``gumbel``: ``reinforce`` feeds them whole, its reward
  being the plain likelihood);
* the **discriminator** D (SeqGAN's ``seq_cnn``) tells short sentences written by people
  (the data's ``sentence`` field: short quotations, *not* summaries of these documents)
  from the summaries, so that y reads like them. Without it (``adv_weight`` 0) G and R
  may agree on a code no person can read (the lecture's 台湾大学 -> 湾学).

A summary is discrete, so D's score and R's loss reach G through an estimator
(``estimator``):

* ``gumbel``: straight-through Gumbel-softmax (Jang et al. 2017). G writes the one-hot rows
  of argmax((logits + g) / tau) forward and passes the softmax's gradient back; R's encoder
  and D read those rows (their expected embeddings), so both losses are differentiable in
  G's parameters. tau is annealed from ``tau_start`` to ``tau_end`` over ``anneal_steps``
  steps (:func:`~gankit.methods.gumbel.temperature`). With ``hard`` false R reads the
  relaxed rows themselves (more of G's distribution reaches it, and G's decoder is fed
  their expected embeddings) while D still reads the one-hot rows. G and R minimise
  ``NLL_R(x | y) + adv_weight * g_loss(D(y))``.
* ``reinforce``: what the lecture reports worked best. G draws y as a policy; its reward
  is the log-likelihood per token R gives the document, -NLL_R(x | y), plus
  ``adv_weight`` times log D(y) (D's logit through log-sigmoid); REINFORCE with a baseline,
  the moving average of the rewards (decay ``baseline``, kept in the checkpoint;
  :func:`~gankit.methods._sequences.policy_gradient_loss`). R learns from (y, x) by
  maximum likelihood.

The first ``warmup`` steps train G and R on reconstruction alone (D already learns, so it
is ready when its term starts). D's loss is any registered objective (``nonsaturating``);
D reads sentences and summaries padded with 0 to the longer of the two lengths.

Sampling: given documents (``document``: text or token numbers; ``gankit sample RUN --text
"a long document ..." --out summary.txt``) the generator's moving average writes each
one's summary by greedy decoding (the most likely word at each step); ``x`` is the summary
(padded with 0 to the document length), beside it the ``document`` and R's greedy
``reconstruction``. Without documents it summarises documents drawn from a pool of the
first ``pool`` training documents (kept in the checkpoint). Evaluation gives it the held-out
documents (the contract's ``inputs``) and scores the summaries with ``summary_quality``
(:mod:`gankit.metrics.summaries`).
"""
from __future__ import annotations

from typing import Any, Dict, List, Literal, Mapping, Optional

import torch
import torch.nn.functional as F

from ..config import Config
from ..data.base import Field
from ..data.sequences import encode
from ..errors import ConfigError
from ..metrics import summaries as _summary_metrics  # noqa: F401 - registers summary_quality
from ..nets.seq2seq import sequence_lengths
from ..nets.sequence import alive_mask
from ..registries import METHODS, OBJECTIVES
from ..train.runtime import Runtime
from ._sequences import policy_gradient_loss, token_rows
from .base import Adversarial, Batch, Contract, DataInfo, Samples, check_positive, discriminator_logs
from .gumbel import gumbel_noise, temperature

__all__ = ["Summarize", "pad_to"]

ObjectiveSpec = OBJECTIVES.spec_type()
Tensor = torch.Tensor


def pad_to(x: Tensor, length: int) -> Tensor:
    """Token numbers (N, L) padded with 0, or distributions (N, L, V) padded with the one-hot
    of 0, to ``length`` positions (cut when longer)."""
    if x.shape[1] >= length:
        return x[:, :length]
    if x.is_floating_point():
        pad = x.new_zeros(len(x), length - x.shape[1], x.shape[2])
        pad[..., 0] = 1
    else:
        pad = x.new_zeros(len(x), length - x.shape[1])
    return torch.cat([x, pad], 1)


class Summarize(Adversarial):
    contract = Contract(
        needs=("x", "sentence"), conditions=("document",), inputs={"document": "x"},
        roles={"generator": "generator", "reconstructor": "generator", "discriminator": "discriminator"},
        auto={"generator": ("encoder_decoder", {"copy": True}), "reconstructor": "encoder_decoder",
              "discriminator": "seq_cnn"},
        metrics=("summary_quality",), optim={"lr_g": 1e-3, "lr_d": 1e-4}, data_kinds=("tokens",))

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, estimator: str, summary_length: int,
                 adv_weight: float, objective, tau_start: float, tau_end: float, anneal_steps: int, hard: bool,
                 word_dropout: float, warmup: int, baseline: float, pool: int):
        super().__init__(runtime, info, cfg)
        check_positive("method.summary_length", summary_length)
        check_positive("method.pool", pool)
        check_positive("method.anneal_steps", anneal_steps)
        if estimator not in ("gumbel", "reinforce"):
            raise ConfigError(f"method.estimator must be gumbel or reinforce, got {estimator!r}")
        if not adv_weight >= 0 or warmup < 0:
            raise ConfigError(f"method.adv_weight and method.warmup must not be negative, got {adv_weight}, {warmup}")
        if not 0 < tau_end <= tau_start:
            raise ConfigError(f"method.tau_start ({tau_start}) and method.tau_end ({tau_end}) must satisfy "
                              "0 < tau_end <= tau_start")
        if not 0.0 <= word_dropout < 1.0:
            raise ConfigError(f"method.word_dropout must be in [0, 1), got {word_dropout}")
        self.word_dropout = float(word_dropout)
        if not 0.0 <= baseline < 1.0:
            raise ConfigError(f"method.baseline (the decay of the reward's moving average) must be in [0, 1), "
                              f"got {baseline}")
        f_x, f_s = info.fields["x"], info.fields.get("sentence")
        if f_s is None or f_s.kind != "tokens":
            raise ConfigError("method summarize needs a tokens field 'sentence' of short human sentences beside the "
                              "documents: use --data documents")
        if f_s.classes != f_x.classes:
            raise ConfigError("the documents (x) and the sentences must share one vocabulary; use --data documents")
        self.doc_length = int(f_x.shape[0])
        if summary_length >= self.doc_length:
            raise ConfigError(f"method.summary_length ({summary_length}) must be shorter than the documents "
                              f"({self.doc_length} tokens)")
        self.vocab = tuple(f_x.classes)
        self.estimator, self.summary_length, self.adv_weight = estimator, int(summary_length), float(adv_weight)
        self.tau_start, self.tau_end, self.anneal_steps, self.hard = tau_start, tau_end, anneal_steps, bool(hard)
        self.warmup, self.decay, self.pool_size = int(warmup), float(baseline), int(pool)
        self.objective = OBJECTIVES.build_spec(objective, key="method.objective")
        self.judge_length = max(self.summary_length, int(f_s.shape[0]))
        G = self.build_network("generator", self.tokens_info(self.summary_length))
        R = self.build_network("reconstructor", self.tokens_info(self.doc_length))
        for role, net in (("generator", G), ("reconstructor", R)):
            if not hasattr(net, "relaxed") or not hasattr(net, "encoder"):
                raise ConfigError(f"{role} '{self.network_name(role)}' does not read one sequence and write another: "
                                  f"set {role}.name=auto (or encoder_decoder)")
        D = self.build_network("discriminator", self.tokens_info(self.judge_length))
        if not hasattr(D, "vocab"):
            raise ConfigError(f"discriminator '{self.network_name('discriminator')}' does not read token sequences: "
                              "set discriminator.name=auto (or seq_cnn)")
        self.add_module("generator", G)
        self.add_module("reconstructor", R)
        self.add_module("discriminator", D)
        self.opt_g = self.add_optimizer("generator", list(G.parameters()) + list(R.parameters()))
        self.opt_d = self.add_optimizer("discriminator", D.parameters())
        self.enable_ema()
        self.tau = tau_start
        self.step_now = 0
        self.b = torch.zeros((), dtype=torch.float64)   # REINFORCE's baseline: the rewards' moving average
        self.b_updates = 0
        self.pool = torch.zeros(0, self.doc_length, dtype=torch.long)

    def tokens_info(self, length: int) -> DataInfo:
        """The data's description with x a token sequence of ``length`` over the same vocabulary."""
        f = Field("tokens", (length,), self.vocab)
        return DataInfo("tokens", (length,), 0, {"x": f})

    @property
    def reconstructor(self):
        return self.modules["reconstructor"]

    # ------------------------------------------------------------------ training
    def adversarial_now(self) -> bool:
        return self.adv_weight > 0 and self.step_now >= self.warmup

    def relaxed_summaries(self, x: Tensor):
        """(the rows R reads (N, S, V), the one-hot rows D reads, the tokens (N, S)) of G's
        Gumbel-softmax draw: with ``hard`` both the straight-through one-hot rows; without, R
        reads the relaxed rows themselves and D their straight-through one-hot."""
        g = gumbel_noise(self.rt.rand(len(x), self.summary_length, len(self.vocab)))
        soft, tokens = self.generator.relaxed(x, g, self.tau, hard=self.hard)
        if self.hard:
            return soft, soft, tokens
        one_hot = F.one_hot(tokens, len(self.vocab)).to(soft.dtype)
        return soft, one_hot - soft.detach() + soft, tokens

    def drawn_summaries(self, x: Tensor) -> Tensor:
        """Token summaries (N, S) drawn from G (the policy), no gradient."""
        with torch.no_grad():
            return self.generator(x, self.rt.randn(len(x), self.summary_length))

    def discriminator_step(self, batch: Batch) -> Dict[str, Tensor]:
        x = batch["x"]
        with torch.no_grad(), self.rt.autocast():
            fake = self.relaxed_summaries(x)[1] if self.estimator == "gumbel" else self.drawn_summaries(x)
        D = self.discriminator
        with self.rt.autocast():
            d_real = D(pad_to(batch["sentence"], self.judge_length))
            d_fake = D(pad_to(fake, self.judge_length))
            loss = self.objective.d_loss(d_real, d_fake)
        self.rt.step(loss, self.opt_d, "discriminator")
        return discriminator_logs(self.objective, loss, d_real, d_fake)

    def generator_step(self, batches: List[Batch]) -> Dict[str, Tensor]:
        x = batches[0]["x"]
        self.remember(x)
        if self.estimator == "gumbel":
            return self.gumbel_step(x)
        return self.reinforce_step(x)

    def gumbel_step(self, x: Tensor) -> Dict[str, Tensor]:
        with self.rt.autocast():
            soft, one_hot, tokens = self.relaxed_summaries(x)
            rec = self.reconstructor.nll(soft, x, lengths=sequence_lengths(tokens), word_dropout=self.word_dropout)
            loss, logs = rec, {"rec_nll": rec.detach()}
            if self.adversarial_now():
                g = self.objective.g_loss(self.discriminator(pad_to(one_hot, self.judge_length)))
                loss = loss + self.adv_weight * g
                logs["g_loss"] = g.detach()
        self.rt.step(loss, self.opt_g, "generator")
        logs["summary_length"] = sequence_lengths(tokens).float().mean()
        return logs

    def reinforce_step(self, x: Tensor) -> Dict[str, Tensor]:
        y = self.drawn_summaries(x)
        with self.rt.autocast():
            logp, count = self.reconstructor.log_prob(y, x)
            per_doc = logp / count.clamp_min(1)              # log-likelihood per token of each document
            rec = -logp.sum() / count.sum().clamp_min(1)
            reward = per_doc.detach().float()
            logs = {"rec_nll": rec.detach()}
            if self.adversarial_now():
                d = self.discriminator(pad_to(y, self.judge_length)).float().detach()
                score = F.logsigmoid(d) if self.objective.output == "logit" else d
                reward = reward + self.adv_weight * score
                logs["d_score"] = score.mean()
            mean = reward.mean()
            if self.b_updates == 0:
                self.b = mean.double().cpu()
            advantage = (reward - self.b.to(reward.device, torch.float32)).unsqueeze(1).expand_as(y)
            pg = policy_gradient_loss(self.generator.token_log_probs(x, y), advantage, alive_mask(y))
            loss = rec + pg
        self.rt.step(loss, self.opt_g, "generator")
        self.b = self.decay * self.b + (1 - self.decay) * mean.detach().double().cpu()
        self.b_updates += 1
        logs.update({"pg_loss": pg.detach(), "reward": mean.detach(), "baseline": self.b.clone().float(),
                     "summary_length": sequence_lengths(y).float().mean()})
        return logs

    def train_step(self, batches: List[Batch], step: int) -> Dict[str, Tensor]:
        self.step_now = step
        self.tau = temperature(step, self.tau_start, self.tau_end, self.anneal_steps)
        logs = super().train_step(batches, step)
        if self.estimator == "gumbel":
            logs["tau"] = torch.tensor(self.tau)
        return logs

    def remember(self, x: Tensor) -> None:
        """Keep the first ``pool`` training documents (sampling without given documents)."""
        if len(self.pool) < self.pool_size:
            self.pool = torch.cat([self.pool, x[:self.pool_size - len(self.pool)].detach().cpu()])

    # ------------------------------------------------------------------ sampling
    def condition_fields(self) -> Dict[str, Field]:
        return {"document": Field("tokens", (self.doc_length,), self.vocab)}

    def check_given(self, given: Mapping[str, Any], n: int, any_size: bool = False) -> Dict[str, Tensor]:
        out = {}
        for name, value in given.items():
            if name != "document":
                raise ConfigError(f"this summarize run takes documents to summarise ('document'); it cannot be given "
                                  f"'{name}'")
            t = token_rows(value, self.vocab, self.doc_length, "a document", self.encode_document)
            if len(t) == 1 and n != 1:
                t = t.expand(n, -1)
            if len(t) != n:
                raise ConfigError(f"{len(t)} documents given for {n} samples")
            out[name] = t
        return out

    def encode_document(self, text: str) -> List[int]:
        tokens = encode(text, self.vocab)
        if not tokens:
            raise ConfigError("an empty document: give the text to summarise")
        if len(tokens) > self.doc_length:
            raise ConfigError(f"the document has {len(tokens)} tokens; this run reads documents of at most "
                              f"{self.doc_length} (data.max_words): shorten it")
        return tokens + [0] * (self.doc_length - len(tokens))

    def draw_conditions(self, n: int, generator: Optional[torch.Generator] = None) -> Dict[str, Tensor]:
        if not len(self.pool):
            raise ConfigError("this summarize run has no training documents yet to summarise; train it first, or "
                              "give documents (--text)")
        idx = torch.randint(len(self.pool), (n,), generator=generator)
        return {"document": self.pool[idx]}

    def noise(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        if generator is None:
            return self.rt.randn(n, self.summary_length)
        return torch.randn(n, self.summary_length, generator=generator).to(self.rt.device)

    def summarise(self, documents: Tensor, batch: int = 500) -> Tensor:
        """Greedy summaries (N, summary_length) of token documents (N, L) by the sampling
        generator, in eval mode, on the CPU."""
        G = self.for_sampling()
        out = []
        with torch.no_grad():
            for s in range(0, len(documents), batch):
                d = self.rt.tensor(pad_to(documents[s:s + batch].long(), self.doc_length))
                with self.rt.autocast():
                    out.append(self.judged(G, d, G.greedy).cpu())
        return torch.cat(out) if out else torch.zeros(0, self.summary_length, dtype=torch.long)

    def judge(self, summaries: Tensor) -> Tensor:
        """D's probability (or raw score, for an objective on scores) that each token sequence
        (N, L) is a person's sentence, in eval mode, on the CPU."""
        D = self.discriminator
        with torch.no_grad():
            d = self.judged(D, self.rt.tensor(pad_to(summaries.long(), self.judge_length))).float().cpu()
        return torch.sigmoid(d) if self.objective.output == "logit" else d

    def generate(self, z: Tensor, given: Dict[str, Tensor]) -> Samples:
        doc = given["document"]
        y = self.for_sampling().greedy(doc)
        rec = self.reconstructor.greedy(y)
        return {"x": pad_to(y, self.doc_length), "document": doc, "reconstruction": rec}

    # ------------------------------------------------------------------ state
    def extra_state(self):
        return {"baseline": self.b.clone(), "baseline_updates": self.b_updates, "pool": self.pool.clone()}

    def load_extra_state(self, state) -> None:
        if "baseline" in state:
            self.b = state["baseline"].clone().double()
            self.b_updates = int(state["baseline_updates"])
        if "pool" in state:
            self.pool = state["pool"].clone().long()


@METHODS.register("summarize")
def summarize(runtime, info, cfg, /, estimator: Literal["gumbel", "reinforce"] = "gumbel", summary_length: int = 10,
              adv_weight: float = 1.0, objective: ObjectiveSpec = "nonsaturating", tau_start: float = 1.0,
              tau_end: float = 0.3, anneal_steps: int = 2000, hard: bool = True, word_dropout: float = 0.5,
              warmup: int = 200, baseline: float = 0.9, pool: int = 256) -> Summarize:
    """Unsupervised summarisation: G (document -> summary of at most summary_length tokens, a
    copying decoder), R (summary -> document, teacher-forced NLL; with gumbel its fed words
    replaced by <unk> with probability word_dropout), D (short human sentences vs summaries);
    the discrete summary by straight-through Gumbel-softmax (tau_start -> tau_end over
    anneal_steps; hard: R reads the one-hot rows too, else the relaxed ones) or REINFORCE
    (reward -NLL_R + adv_weight log D, moving-average baseline); adv_weight 0: the plain
    seq2seq2seq auto-encoder; warmup steps of reconstruction alone."""
    return Summarize(runtime, info, cfg, estimator, summary_length, adv_weight, objective, tau_start, tau_end,
                     anneal_steps, hard, word_dropout, warmup, baseline, pool)


summarize.contract = Summarize.contract
