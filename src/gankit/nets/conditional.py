"""Conditioning any registered network on a class label.

The generator G(c, z) is the configured generator with a one-hot code of the class appended
to its noise (Mirza & Osindero 2014): the configured network is built for
``z_dim + n_classes`` inputs, so every generator with a ``z_dim`` works. With an ``encoder``
(a module with a ``dim``: the sentence encoder of :mod:`gankit.nets.text`), the encoder's code
of the condition takes the one-hot code's place everywhere below (text-to-image).

The discriminator designs of the lecture and of the two papers users reach for, each
built around the configured discriminator (its penultimate ``features`` and its ``head``):

* ``joint``: one network on the pair (x, c), one score that says both "x is realistic" and
  "x matches c". The class enters as one-hot channels (constant maps) beside the image's
  channels, or one-hot coordinates beside a vector.
* ``two_branch``: the lecture's second design: a realism score from x alone, and a match
  score from x's embedding (the penultimate features) together with c, by a small MLP
  (at most ``MATCH_HIDDEN`` hidden units).
* ``projection`` (Miyato & Koyama 2018): ``head(phi(x)) + <e_c, phi(x)>``, a learned class
  embedding e_c projected onto the features.
* ``acgan`` (Odena et al. 2017): a realism score and class logits, both from phi(x).
* ``image_only``: the discriminator of an unconditional GAN, which never sees c (what the
  lecture warns about: G is then free to ignore its condition).

Every discriminator returns a dict: ``score`` (the one score of ``joint``, ``projection``
and ``image_only``) or ``real`` and ``match`` (``two_branch``) or ``real`` and ``logits``
(``acgan``). Class embeddings are linear layers on one-hot codes, so spectral
normalisation reaches them like every other layer.
"""
from __future__ import annotations

from typing import Dict, Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

__all__ = ["ConditionalGenerator", "ConditionalDiscriminator", "DESIGNS", "Design", "feature_dim"]

Design = Literal["joint", "two_branch", "projection", "acgan", "image_only"]
DESIGNS = ("joint", "two_branch", "projection", "acgan", "image_only")
#: the hidden width of two_branch's match MLP (at most): DCGAN's features are 6,272 wide, and a
#: square first layer on them would cost four times the rest of the discriminator
MATCH_HIDDEN = 256


def one_hot(y: torch.Tensor, n_classes: int, dtype: torch.dtype) -> torch.Tensor:
    return F.one_hot(y.long(), n_classes).to(dtype)


def condition_code(c: torch.Tensor, n_classes: int, encoder: Optional[nn.Module], dtype: torch.dtype) -> torch.Tensor:
    """The code a conditional network reads for condition ``c``: the ``encoder``'s output (a
    sentence encoder for word numbers), or the one-hot code of a class label."""
    return one_hot(c, n_classes, dtype) if encoder is None else encoder(c).to(dtype)


class ConditionalGenerator(nn.Module):
    """G(z, c) = base([z, code(c)]); code(c) is onehot(c) (``base`` takes ``z_dim + n_classes``
    inputs) or, with an ``encoder`` (a module with a ``dim``), encoder(c) (``z_dim + dim`` inputs)."""

    def __init__(self, base: nn.Module, z_dim: int, n_classes: int, encoder: Optional[nn.Module] = None):
        super().__init__()
        width = n_classes if encoder is None else encoder.dim
        if getattr(base, "z_dim", None) != z_dim + width:
            raise ConfigError("the conditional generator's network must take z_dim + the condition code's width "
                              "(n_classes, or the encoder's dim) inputs")
        self.base, self.z_dim, self.n_classes = base, z_dim, n_classes
        self.encoder = encoder

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.base(torch.cat([z, condition_code(y, self.n_classes, self.encoder, z.dtype)], 1))


def feature_dim(base: nn.Module, needs: str = "a conditional discriminator is built around a network with "
                "penultimate features and a read-out head (dcgan, mlp)") -> int:
    """The width of ``base``'s penultimate features (those ``features(x)`` returns, without the
    minibatch-discrimination columns that only the read-out sees); ``needs`` says who needs them
    in the error for a network without such features."""
    head = getattr(base, "head", None)
    if head is None or not hasattr(base, "features"):
        raise ConfigError(f"{needs}; {type(base).__name__} has none")
    mb = head.minibatch
    return head.out.in_features - (mb.n_kernels if hasattr(mb, "n_kernels") else 0)


class ConditionalDiscriminator(nn.Module):
    """One of the designs around ``base``; the condition enters as its one-hot code, or, with an
    ``encoder`` (a module with a ``dim``), as the encoder's code (``acgan`` and ``image_only``
    never read the condition, so they take no encoder)."""

    def __init__(self, design: str, base: nn.Module, n_classes: int, image: bool,
                 encoder: Optional[nn.Module] = None):
        super().__init__()
        if design not in DESIGNS:
            raise ConfigError(f"method.design: {design!r} is not a design; choose one of {', '.join(DESIGNS)}")
        self.design, self.base, self.n_classes, self.image = design, base, n_classes, image
        self.encoder = encoder if design in ("joint", "two_branch", "projection") else None
        code = n_classes if self.encoder is None else self.encoder.dim
        if design != "joint":
            width = feature_dim(base)
        if design == "two_branch":
            hidden = min(width, MATCH_HIDDEN)
            self.match = nn.Sequential(nn.Linear(width + code, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))
        elif design == "projection":
            self.embed = nn.Linear(code, width, bias=False)
        elif design == "acgan":
            self.classify = nn.Linear(width, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.base.features(x)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> Dict[str, torch.Tensor]:
        if self.design == "joint":
            c = condition_code(y, self.n_classes, self.encoder, x.dtype)
            if self.image:
                c = c[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
                c = c.contiguous(memory_format=torch.channels_last) if not x.is_contiguous() else c
            return {"score": self.base(torch.cat([x, c], 1))}
        if self.design == "image_only":
            return {"score": self.base(x)}
        phi = self.base.features(x)
        real = self.base.head(phi)
        if self.design == "two_branch":
            c = condition_code(y, self.n_classes, self.encoder, phi.dtype)
            return {"real": real, "match": self.match(torch.cat([phi, c], 1)).squeeze(1)}
        if self.design == "projection":
            e = self.embed(condition_code(y, self.n_classes, self.encoder, phi.dtype))
            return {"score": real + (e * phi).sum(1)}
        return {"real": real, "logits": self.classify(phi)}
