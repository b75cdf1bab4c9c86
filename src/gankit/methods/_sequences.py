"""What every method over token sequences shares: sampling given a prefix, the token data check.

A sequence method's generator is a :class:`~gankit.nets.sequence.SequenceGenerator`; its
samples ``x`` are token numbers (N, L). Sampling can be given ``prefix``: text (a string, or
one per sample), or token numbers (N, P) or (N, L) padded with 0; each sample then starts
with its prefix and the generator writes the rest (``gankit sample RUN --prefix 床前``). The
prefix is a condition of the method's own, not a data field (like InfoGAN's codes), so
evaluation draws whole sequences.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping

import torch

from ..data.base import Field
from ..data.sequences import encode, lengths
from ..errors import ConfigError
from ..metrics import sequences as _sequence_metrics  # noqa: F401 - registers bleu, self_bleu, nll_oracle, nll_test
from ..nets.sequence import SequenceGenerator
from .base import Method, Samples

__all__ = ["SequenceMethod", "SEQUENCE_METRICS"]

#: metrics every sequence method is judged by (nll_oracle where the data is the oracle)
SEQUENCE_METRICS = ("nll_oracle", "nll_test", "bleu", "self_bleu")


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
            if isinstance(value, str) or (isinstance(value, (list, tuple)) and value and
                                          all(isinstance(v, str) for v in value)):
                texts = [value] if isinstance(value, str) else list(value)
                t = torch.tensor([encode(s, self.vocabulary, length) for s in texts], dtype=torch.long)
            else:
                t = torch.as_tensor(value).long()
                if t.dim() == 1:
                    t = t.unsqueeze(0)
                if t.dim() != 2 or t.shape[1] > length:
                    raise ConfigError(f"a prefix must be token numbers (N, P) with P <= {length}, got "
                                      f"{tuple(t.shape)}")
                if len(t) and (int(t.min()) < 0 or int(t.max()) >= len(self.vocabulary)):
                    raise ConfigError(f"a prefix token is out of range: this run's vocabulary has "
                                      f"{len(self.vocabulary)} tokens")
                t = torch.cat([t, t.new_zeros(len(t), length - t.shape[1])], 1)
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
