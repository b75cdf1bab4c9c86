"""What every method over token sequences shares: sampling given a prefix, the token data check.

A sequence method's generator is a :class:`~gankit.nets.sequence.SequenceGenerator`; its
samples ``x`` are token numbers (N, L). Sampling can be given ``prefix``: text (a string, or
one per sample), or token numbers (N, P) or (N, L) padded with 0; each sample then starts
with its prefix and the generator writes the rest (``gankit sample RUN --prefix 床前``). The
prefix is a condition of the method's own, not a data field (like InfoGAN's codes), so
evaluation draws whole sequences.

:class:`Reinforce` is what the policy-gradient methods (``seqgan``, ``pg``) share: the
generator as a policy, REINFORCE's surrogate loss with a moving-average baseline of the
rewards (kept in the checkpoint), and the optional maximum-likelihood term beside it.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import torch

from ..data.base import Field
from ..data.sequences import encode, lengths
from ..errors import ConfigError
from ..metrics import sequences as _sequence_metrics  # noqa: F401 - registers bleu, self_bleu, nll_oracle, nll_test
from ..nets.sequence import SequenceGenerator, alive_mask
from .base import Contract, Method, Samples

__all__ = ["SequenceMethod", "Reinforce", "SEQUENCE_METRICS", "ADVERSARIAL_SEQUENCE_CONTRACT", "policy_gradient_loss",
           "token_rows"]

#: metrics every sequence method is judged by (nll_oracle where the data is the oracle)
SEQUENCE_METRICS = ("nll_oracle", "nll_test", "bleu", "self_bleu")

#: the contract of the adversarial sequence methods (gumbel, seqgan, soft_d): an LSTM generator, SeqGAN's
#: CNN discriminator, the paper's learning rates, token data only
ADVERSARIAL_SEQUENCE_CONTRACT = Contract(auto={"generator": "lstm", "discriminator": "seq_cnn"},
                                         metrics=SEQUENCE_METRICS, optim={"lr_g": 1e-3, "lr_d": 1e-4},
                                         data_kinds=("tokens",))


def token_rows(value: Any, vocabulary, length: int, what: str,
               encode_text: Optional[Callable[[str], List[int]]] = None) -> torch.Tensor:
    """Token numbers (N, ``length``), padded with 0, of a condition given as text (a string, or one
    per row; ``encode_text`` turns one into word numbers, by default :func:`encode` at ``length``) or
    as token numbers (P,) or (N, P) with P <= ``length``. ``what`` names the rows in the errors
    ("a prefix", "a document", ...): out-of-range numbers, fractions and wrong shapes are
    ConfigErrors."""
    if isinstance(value, str) or (isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value)):
        texts = [value] if isinstance(value, str) else list(value)
        encode_text = encode_text or (lambda s: encode(s, vocabulary, length))
        rows = [list(encode_text(s)) for s in texts]
        if any(len(r) > length for r in rows):
            raise ConfigError(f"{what} holds more than {length} tokens, the most this run reads: shorten it")
        return torch.tensor([r + [0] * (length - len(r)) for r in rows], dtype=torch.long)
    t = torch.as_tensor(value)
    if t.is_floating_point():
        raise ConfigError(f"{what} must be text or token numbers (whole numbers), got {t.dtype}")
    t = t.long()
    if t.dim() == 1:
        t = t.unsqueeze(0)
    if t.dim() != 2 or t.shape[1] > length:
        raise ConfigError(f"{what} must be text or token numbers (N, P) with P <= {length}, got {tuple(t.shape)}")
    if len(t) and (int(t.min()) < 0 or int(t.max()) >= len(vocabulary)):
        raise ConfigError(f"a token of {what} is out of range: this run's vocabulary has {len(vocabulary)} tokens")
    return torch.cat([t, t.new_zeros(len(t), length - t.shape[1])], 1)


class SequenceMethod(Method):
    """A method whose generator writes token sequences."""

    def build_sequence_generator(self) -> SequenceGenerator:
        net = self.build_network("generator")
        if not isinstance(net, SequenceGenerator):
            raise ConfigError(f"generator '{self.network_name('generator')}' does not write token sequences: "
                              "set generator.name=auto (or lstm, transformer)")
        return net

    def build_sequence_discriminator(self):
        net = self.build_network("discriminator")
        if not hasattr(net, "vocab"):
            raise ConfigError(f"discriminator '{self.network_name('discriminator')}' does not read token sequences: "
                              "set discriminator.name=auto (or seq_cnn)")
        return net

    def build_sequence_pair(self, init: Optional[str]) -> Tuple[torch.optim.Optimizer, ...]:
        """The generator (started from the ``mle`` run at ``init`` when given) and the
        discriminator of an adversarial sequence method, added as a pair (``add_pair``): their
        optimisers."""
        G = self.build_sequence_generator()
        if init:
            self.load_pretrained(G, init)
        return self.add_pair(G, self.build_sequence_discriminator())

    def load_pretrained(self, G, path: str) -> None:
        """Start generator ``G`` as the sampling generator of the run at ``path`` (an ``mle`` run on
        the same data: the vocabulary, the length and the generator's settings must agree)."""
        from ..api import load_run

        try:
            run = load_run(path)
        except Exception as exc:   # noqa: BLE001 - any failure to open it is the user's path
            raise ConfigError(f"method.init: cannot open the run {path} ({exc}); give the directory of an mle run "
                              "on the same data") from None
        if run.info.fields["x"].classes != self.info.fields["x"].classes or run.info.shape != self.info.shape:
            raise ConfigError(f"method.init: the run {path} was trained on another vocabulary or sequence length; "
                              "pre-train on the same data (the same data.* settings)")
        source = run.method.for_sampling()
        try:
            G.load_state_dict(source.state_dict())
        except RuntimeError:
            raise ConfigError(f"method.init: the generator of {path} ({run.config.network('generator')['name']}) "
                              "differs from this run's; use the same generator.* settings") from None

    @property
    def vocabulary(self):
        return self.info.fields["x"].classes

    def condition_fields(self) -> Dict[str, Field]:
        f = self.info.fields["x"]
        return {"prefix": Field("tokens", tuple(f.shape), f.classes)}

    def check_given(self, given: Mapping[str, Any], n: int, any_size: bool = False) -> Dict[str, torch.Tensor]:
        out = {}
        length = int(self.info.shape[0])
        for name, value in given.items():
            if name != "prefix":
                raise ConfigError(f"this {type(self).__name__} run takes a prefix (text its samples start with); "
                                  f"it cannot be given '{name}'")
            t = token_rows(value, self.vocabulary, length, "a prefix")
            if len(t) == 1 and n != 1:
                t = t.expand(n, -1)
            if len(t) != n:
                raise ConfigError(f"{len(t)} prefixes given for {n} samples")
            out[name] = t
        return out

    def generate(self, z: torch.Tensor, given: Dict[str, torch.Tensor]) -> Samples:
        G = self.for_sampling()
        prefix = given.get("prefix")
        if prefix is None:
            return {"x": G(z)}
        return {"x": G.complete(prefix, lengths(prefix).to(prefix.device), z)}


def policy_gradient_loss(token_log_probs: torch.Tensor, advantage: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """-sum_t log p(x_t | x_<t) A_t over the counted positions, divided by their number:
    REINFORCE's surrogate, whose gradient is the policy gradient (``advantage`` is a constant)."""
    mask = mask.to(token_log_probs.dtype)
    return -(token_log_probs * advantage.detach() * mask).sum() / mask.sum().clamp_min(1)


class Reinforce(SequenceMethod):
    """A sequence method whose generator is a policy trained by REINFORCE with a baseline.

    A subclass calls :meth:`setup_policy` once its generator and the generator's optimiser
    ``self.opt_g`` exist, draws sequences with :meth:`draw`, scores them (per token, (N, L))
    and updates the generator with :meth:`reinforce_step`. The baseline b is a moving average
    of the mean reward (decay ``baseline``), started at the first batch's mean; the advantage
    of a token is its reward minus b. :meth:`anchor` adds terms to the loss (here
    ``mle_weight`` times the NLL of the real batch; a subclass may add its own)."""

    def setup_policy(self, baseline: float, mle_weight: float) -> None:
        if not 0.0 <= baseline < 1.0:
            raise ConfigError(f"method.baseline (the decay of the reward's moving average) must be in [0, 1), "
                              f"got {baseline}")
        if mle_weight < 0:
            raise ConfigError(f"method.mle_weight must not be negative, got {mle_weight}")
        self.decay, self.mle_weight = baseline, mle_weight
        self.b = torch.zeros((), dtype=torch.float64)   # the reward's moving average
        self.b_updates = 0

    def draw(self, n: int) -> torch.Tensor:
        """n sequences of the generator being trained (not its moving average), no gradient."""
        with torch.no_grad(), self.rt.autocast():
            return self.generator(self.rt.randn(n, self.info.shape[0]))

    def anchor(self, x: torch.Tensor, real: Optional[torch.Tensor]) -> Tuple[Optional[torch.Tensor], Dict]:
        """(a term added to the policy-gradient loss or None, what to log of it)."""
        if self.mle_weight > 0 and real is not None:
            from .mle import sequence_nll

            nll = sequence_nll(self.generator, real)
            return self.mle_weight * nll, {"nll": nll.detach()}
        return None, {}

    def reinforce_step(self, x: torch.Tensor, q: torch.Tensor, real: Optional[torch.Tensor] = None,
                       mean_reward: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """One update of the generator on its sequences ``x`` (N, L) with per-token rewards ``q``
        (N, L); ``mean_reward`` (default: q's mean over the counted tokens) feeds the baseline."""
        mask = alive_mask(x)
        if mean_reward is None:
            mean_reward = (q * mask).sum() / mask.sum().clamp_min(1)
        mean_reward = mean_reward.detach()
        if self.b_updates == 0:
            self.b = mean_reward.double().cpu()
        advantage = q - self.b.to(q.device, torch.float32)
        with self.rt.autocast():
            loss = policy_gradient_loss(self.generator.token_log_probs(x), advantage, mask)
            logs = {"pg_loss": loss.detach(), "reward": mean_reward, "baseline": self.b.clone().float()}
            extra, more = self.anchor(x, real)
            if extra is not None:
                loss = loss + extra
                logs.update(more)
        self.rt.step(loss, self.opt_g, "generator")
        self.b = self.decay * self.b + (1 - self.decay) * mean_reward.double().cpu()
        self.b_updates += 1
        return logs

    def extra_state(self):
        return {"baseline": self.b.clone(), "baseline_updates": self.b_updates}

    def load_extra_state(self, state) -> None:
        if "baseline" in state:
            self.b = state["baseline"].clone().double()
            self.b_updates = int(state["baseline_updates"])
