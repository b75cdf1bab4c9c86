"""Text-to-image: the conditional GAN of :mod:`gankit.methods.cgan` conditioned on a sentence.

"Conditional Generation by GAN" in the lectures: a generator reads a sentence and draws
what it describes, and the discriminator judges the pair (picture, sentence). Everything of
``cgan`` carries over (the discriminator designs, the objectives, penalties, clipping,
spectral norm, the loss of :func:`~gankit.methods.cgan.pair_d_loss`), with the one-hot code
of a class replaced by the code of a learned sentence encoder
(:class:`~gankit.nets.text.SentenceEncoder`: word embeddings averaged over the sentence,
then a linear layer). The generator has its own encoder (part of G, so its moving average
covers it), and so has a discriminator that reads the sentence (``joint``, ``projection``,
``two_branch``); ``acgan``'s discriminator never reads it, and its auxiliary classifier
learns the sentence's class (field ``y``), which the generator's samples must show.

The lecture's mismatched pairs: a real picture with a wrong sentence is to be scored low.
The wrong sentence of a picture is drawn uniformly from the sentences of *other* classes
among the first ``POOL`` training sentences the run saw (the pool, saved in every
checkpoint), so a picture is never paired with another description of its own class as a
"wrong" one. The pool also gives sampling its sentences when none are given, and the
training picture one row per class.

Sampling takes sentences: ``run.sample(n, given={"text": "a pair of sneakers"})`` (one
sentence for all, a list of one per sample, or word numbers); words outside the data's
vocabulary are left out with a warning, and a sentence with no known word is an error.
Evaluation gives the generator the held-out split's sentences (the contract's ``inputs``),
which for ``fashion_mnist_text`` are phrasings it never trained on, and ``text_accuracy``
is the shipped classifier's accuracy on the results.
"""
from __future__ import annotations

import warnings
from typing import Any, Dict, List, Literal, Mapping, Optional, Sequence, Tuple, Union

import torch

from ..config import Config
from ..data.text import encode
from ..errors import ConfigError
from ..metrics import text as _text_metrics  # noqa: F401 - registers text_accuracy
from ..nets.conditional import ConditionalDiscriminator, ConditionalGenerator, Design
from ..nets.text import SentenceEncoder, load_word_vectors
from ..objectives.penalties import clip_weights_, gradient_penalty, r1_penalty
from ..registries import METHODS, OBJECTIVES
from ..train.runtime import Runtime
from .base import Adversarial, Batch, Contract, DataInfo, check_positive, discriminator_logs
from .cgan import judges_mismatch, pair_d_loss, pair_g_loss, realism
from .gan import regularise_discriminator

__all__ = ["TextCGAN", "POOL"]

Tensor = torch.Tensor
ObjectiveSpec = OBJECTIVES.spec_type()

#: how many training sentences (with their classes) the pool keeps
POOL = 1024


class TextCGAN(Adversarial):
    contract = Contract(needs=("x", "y", "text"), conditions=("text",), inputs={"text": "text"},
                        metrics=("text_accuracy",), optim={"lr_g": 4e-4, "lr_d": 4e-4})

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, d_steps: int,
                 objective: Union[str, Dict[str, Any]], design: str, mismatch_weight: float, ac_weight: float,
                 ac_generated: bool, penalty: str, penalty_weight: float, clip: float, spectral_norm: bool,
                 code_dim: int, embedding_dim: int, word_vectors: str):
        super().__init__(runtime, info, cfg)
        check_positive("method.d_steps", d_steps)
        check_positive("method.code_dim", code_dim)
        check_positive("method.embedding_dim", embedding_dim)
        self.d_steps = self.real_batches_per_step = d_steps
        text = info.fields.get("text")
        if text is None or text.kind != "tokens" or not text.classes:
            raise ConfigError("method cgan_text reads sentences: its data needs a field 'text' of word numbers with "
                              "a vocabulary, e.g. --data fashion_mnist_text")
        k = info.n_classes
        if k < 2:
            raise ConfigError(f"method cgan_text needs sentences of at least 2 classes; this data set has {k}")
        for key, value in (("mismatch_weight", mismatch_weight), ("ac_weight", ac_weight),
                           ("penalty_weight", penalty_weight), ("clip", clip)):
            if not value >= 0:
                raise ConfigError(f"method.{key} must not be negative, got {value}")
        self.vocabulary, self.length = tuple(text.classes), int(text.shape[0])
        self.n_classes, self.design = k, design
        self.mismatch_weight, self.ac_weight, self.ac_generated = mismatch_weight, ac_weight, ac_generated
        self.penalty, self.penalty_weight, self.clip = penalty, penalty_weight, clip
        self.objective = OBJECTIVES.build_spec(objective, key="method.objective")

        if "z_dim" not in cfg.generator:
            raise ConfigError(f"generator '{self.network_name('generator')}' has no z_dim; method cgan_text "
                              "conditions a generator of noise")
        vectors = load_word_vectors(word_vectors, self.vocabulary)[0] if word_vectors else None

        def encoder() -> SentenceEncoder:
            return SentenceEncoder(len(self.vocabulary), code_dim, embedding_dim, vectors)

        z_dim = cfg.generator["z_dim"]
        g = ConditionalGenerator(self.build_network("generator", z_dim=z_dim + code_dim), z_dim, k, encoder())
        d_info = info
        if design == "joint":   # the sentence's code enters beside the image's channels / the vector
            d_info = info.with_shape((info.shape[0] + code_dim,) + tuple(info.shape[1:]))
        reads = design in ("joint", "projection", "two_branch")
        d = ConditionalDiscriminator(design, self.build_network("discriminator", d_info), k, info.kind == "image",
                                     encoder() if reads else None)
        regularise_discriminator(d, penalty, spectral_norm)
        self.opt_g, self.opt_d = self.add_pair(g, d)
        self.pool_text = torch.zeros(0, self.length, dtype=torch.long, device=runtime.device)
        self.pool_y = torch.zeros(0, dtype=torch.long, device=runtime.device)

    # ------------------------------------------------------------------ the pool of sentences
    def remember(self, text: Tensor, y: Tensor) -> None:
        """Keep the first training sentences and their classes while the pool is not full."""
        room = POOL - len(self.pool_y)
        if room > 0:
            self.pool_text = torch.cat([self.pool_text, text[:room].long()])
            self.pool_y = torch.cat([self.pool_y, y[:room].long()])

    def wrong_text(self, y: Tensor) -> Tensor:
        """For every sample, a pool sentence of a class other than y, uniform among them (one
        uniform draw per sample through the runtime: no host sync, processes in lockstep).
        Only while the pool holds no sentence of another class is the last one taken."""
        other = (self.pool_y[None, :] != y[:, None]).float()            # (n, P)
        cdf = other.cumsum(1)
        u = self.rt.rand(len(y)).float()[:, None] * cdf[:, -1:]
        idx = torch.searchsorted(cdf, u, right=True).clamp_max(len(self.pool_y) - 1).squeeze(1)
        return self.pool_text[idx]

    def extra_state(self) -> Dict[str, Any]:
        return {"pool_text": self.pool_text.cpu().clone(), "pool_y": self.pool_y.cpu().clone()}

    def load_extra_state(self, state: Dict[str, Any]) -> None:
        if "pool_text" in state:
            self.pool_text = state["pool_text"].to(self.rt.device).long()
            self.pool_y = state["pool_y"].to(self.rt.device).long()

    # ------------------------------------------------------------------ sampling
    def generate(self, z: Tensor, given: Dict[str, Tensor]) -> Dict[str, Tensor]:
        return {"x": self.for_sampling()(z, given["text"]), "text": given["text"]}

    def draw_conditions(self, n: int, generator: Optional[torch.Generator] = None) -> Dict[str, Tensor]:
        """Sentences of the pool, drawn with replacement (so as often as the training data has them)."""
        if len(self.pool_y) == 0:
            raise ConfigError("this cgan_text run has read no training sentence yet: give sentences, e.g. "
                              "given={'text': 'a pair of sneakers'} or gankit sample --text 'a pair of sneakers'")
        idx = torch.randint(len(self.pool_y), (n,), generator=generator)
        return {"text": self.pool_text.cpu()[idx]}

    def showcase(self, n: int) -> Tuple[Dict[str, Tensor], Optional[int]]:
        """One row per class, each the first pool sentence of the class (classes the pool lacks
        left out)."""
        y = self.pool_y.cpu()
        firsts = [int((y == c).nonzero()[0]) for c in range(self.n_classes) if bool((y == c).any())]
        if not firsts or len(firsts) > n:
            return {}, None
        per = n // len(firsts)
        return {"text": self.pool_text.cpu()[torch.tensor(firsts)].repeat_interleave(per, 0)}, per

    def sentences(self, value: Union[str, Sequence[str]], n: int) -> Tensor:
        """Sentences (one for all ``n`` samples, or one each) as word numbers padded with 0 to the
        data's length (or to the longest sentence); unknown words are left out with a warning."""
        texts = [value] if isinstance(value, str) else list(value)
        if len(texts) == 1 and n != 1:
            texts = texts * n
        if len(texts) != n:
            raise ConfigError(f"{len(texts)} sentences given for {n} samples")
        rows, cache = [], {}
        for sentence in texts:
            if sentence not in cache:
                known, unknown = encode(sentence, self.vocabulary)
                if not known:
                    examples = ", ".join(w for w in self.vocabulary[1:9])
                    raise ConfigError(f"none of the words of {sentence!r} is in this run's vocabulary of "
                                      f"{len(self.vocabulary) - 1} words ({examples} ...); describe the picture "
                                      "with words of the training sentences")
                if unknown:
                    warnings.warn(f"words not in this run's vocabulary left out of {sentence!r}: "
                                  f"{', '.join(unknown)}", stacklevel=3)
                cache[sentence] = known
            rows.append(cache[sentence])
        width = max(self.length, max(len(r) for r in rows))
        return torch.tensor([r + [0] * (width - len(r)) for r in rows], dtype=torch.long)

    def check_given(self, given: Mapping[str, Any], n: int, **options) -> Dict[str, Tensor]:
        rest = {k: v for k, v in given.items() if k != "text"}
        out = super().check_given(rest, n, **options)
        if "text" not in given:
            return out
        value = given["text"]
        if isinstance(value, str) or (isinstance(value, (list, tuple)) and value and isinstance(value[0], str)):
            out["text"] = self.sentences(value, n)
            return out
        t = torch.as_tensor(value)
        if t.is_floating_point() or t.dim() != 2:
            raise ConfigError(f"'text' must be sentences (a string, or one per sample) or word numbers (N, L), got "
                              f"{t.dtype} of shape {tuple(t.shape)}")
        if len(t) == 1 and n != 1:
            t = t.expand(n, -1)
        if len(t) != n:
            raise ConfigError(f"{len(t)} sentences given for {n} samples")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= len(self.vocabulary)):
            raise ConfigError(f"word numbers must be in 0..{len(self.vocabulary) - 1} (this run's vocabulary)")
        out["text"] = t.long()
        return out

    # ------------------------------------------------------------------ the two updates
    def _penalty(self, D, real: Tensor, fake: Tensor, t: Tensor) -> Tensor:
        critic = lambda x: realism(D(x, t))  # noqa: E731 - the penalty differentiates D at a fixed sentence
        if self.penalty == "gradient":
            return gradient_penalty(critic, real, fake, weight=self.penalty_weight)
        return r1_penalty(critic, real, weight=self.penalty_weight)

    def discriminator_step(self, batch: Batch) -> Dict[str, Tensor]:
        D, rt, obj = self.discriminator, self.rt, self.objective
        x, y, t = batch["x"], batch["y"], batch["text"]
        self.remember(t, y)
        fake = self.generated(len(x), t)
        with rt.autocast():
            out_real, out_fake = D(x, t), D(fake, t)
            out_wrong = D(x, self.wrong_text(y)) if judges_mismatch(self.design, self.mismatch_weight) else None
        loss = pair_d_loss(obj, self.design, out_real, out_fake, out_wrong, y, self.mismatch_weight, self.ac_weight,
                           self.ac_generated)
        if self.penalty != "none":
            loss = loss + self._penalty(D, x, fake, t)
        rt.step(loss, self.opt_d, "discriminator")
        if self.clip:
            clip_weights_(D, self.clip)
        return discriminator_logs(obj, loss, realism(out_real), realism(out_fake))

    def generator_step(self, batches: List[Batch]) -> Dict[str, Tensor]:
        G, D, rt, obj = self.generator, self.discriminator, self.rt, self.objective
        t, y = batches[-1]["text"], batches[-1]["y"]
        with rt.autocast():
            out = D(G(self.noise(len(y)), t), t)
        loss = pair_g_loss(obj, self.design, out, y, self.mismatch_weight, self.ac_weight)
        rt.step(loss, self.opt_g, "generator")
        return {"g_loss": loss.detach()}


@METHODS.register("cgan_text")
def cgan_text(runtime, info, cfg, /, design: Design = "acgan", mismatch_weight: float = 1.0, ac_weight: float = 1.0,
              ac_generated: bool = False, d_steps: int = 1, objective: ObjectiveSpec = "nonsaturating",
              penalty: Literal["none", "gradient", "r1"] = "none", penalty_weight: float = 10.0, clip: float = 0.0,
              spectral_norm: bool = False, code_dim: int = 16, embedding_dim: int = 32,
              word_vectors: str = "") -> TextCGAN:
    """Text-to-image: cgan conditioned on a sentence (data field text, e.g. data fashion_mnist_text)
    through a learned sentence encoder (word embeddings of embedding_dim averaged, then a code of
    code_dim) in G and in a discriminator that reads it; cgan's designs and settings, the
    mismatched pairs a real picture with a sentence of another class; word_vectors: a plain-text
    word-vector file (GloVe's format) to start the embeddings from (read whenever the run is built)."""
    return TextCGAN(runtime, info, cfg, d_steps, objective, design, mismatch_weight, ac_weight, ac_generated,
                    penalty, penalty_weight, clip, spectral_norm, code_dim, embedding_dim, word_vectors)


cgan_text.contract = TextCGAN.contract
