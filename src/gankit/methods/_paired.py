"""What the methods that learn from (condition, target) pairs of images share (pix2pix,
srgan, inpaint): :class:`Paired`, an :class:`~gankit.methods.base.Adversarial` skeleton
that keeps a pool of training conditions and may train without its discriminators.

* The pool (:class:`~gankit.methods._pools.InputPool`): the contract's conditions of the
  first ``pool`` training examples the run saw (pix2pix and srgan: ``input``; inpaint:
  ``input`` and ``mask``), stacked along the channels in the contract's order, uint8 on the
  CPU. Sampling without given conditions (the sample grids during training, distribution
  metrics on generated samples alone) draws them from it, so a run samples without its data
  set; it is saved in every checkpoint (``extra_state``, key ``pool``), so a resumed run
  samples the same way.
* ``_pending``: what a discriminator update computed for its real batch (the generator's
  output), which the generator's update reuses for the same batch; cleared after every
  training step.
* Without the adversarial term (``adv_weight`` 0: the supervised regressor each method
  compares itself with) the discriminators are built but never trained, and their
  learning-rate schedules never step.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch

from ..errors import ConfigError
from .base import Adversarial, Batch, DataInfo
from ._pools import InputPool

__all__ = ["Paired", "image_fields"]


def image_fields(info: DataInfo, method: str, does: str, missing: str):
    """The ``Field``s of ``input`` and ``x`` of a method that makes pictures from pictures, or a
    ``ConfigError``: "method METHOD MISSING" when the data has no ``input`` (``missing`` says how
    to get one), "method METHOD DOES; ..." when either is not an image."""
    if "input" not in info.fields:
        raise ConfigError(f"method {method} {missing}")
    f_in, f_x = info.fields["input"], info.fields["x"]
    if f_in.kind != "image" or f_x.kind != "image":
        raise ConfigError(f"method {method} {does}; this data set's x is {f_x.kind} and its input {f_in.kind}")
    return f_in, f_x

Tensor = torch.Tensor


class Paired(Adversarial):
    """An adversarial method conditioned on images, with a pool of training conditions (see
    the module). A subclass sets ``adv_weight``, calls :meth:`keep_conditions` once its data
    is checked, and writes the two updates."""

    inputs: InputPool
    #: the last discriminator update's work on its batch, for the generator's update
    _pending: Optional[tuple] = None

    def keep_conditions(self, size: int) -> None:
        """Start the pool of the first ``size`` training conditions (none yet)."""
        shapes = [tuple(self.info.fields[name].shape) for name in self.contract.conditions]
        self.inputs = InputPool(size, (sum(s[0] for s in shapes), *shapes[0][1:]))

    @property
    def adversarial(self) -> bool:
        """Whether the discriminators take part (``adv_weight`` > 0)."""
        return self.adv_weight > 0

    # ------------------------------------------------------------------ the pool
    def draw_conditions(self, n: int, generator=None) -> Dict[str, Tensor]:
        """``n`` conditions drawn (with replacement) from the pool of training conditions; none
        before the run has seen any (then they must be given)."""
        drawn = self.inputs.draw(n, generator)
        if drawn is None:
            return {}
        channels = [self.info.fields[name].shape[0] for name in self.contract.conditions]
        return dict(zip(self.contract.conditions, drawn.split(channels, 1)))

    @property
    def pool(self) -> Tensor:
        """The pool of training conditions, uint8 (P, C, H, W) at the conditions' size: their
        channels stacked in the contract's order."""
        return self.inputs.images

    @pool.setter
    def pool(self, images: Tensor) -> None:
        self.inputs.images = images

    # ------------------------------------------------------------------ training
    def train_step(self, batches: List[Batch], step: int) -> Dict[str, Tensor]:
        first = [batches[0][name] for name in self.contract.conditions]
        self.inputs.add(first[0] if len(first) == 1 else torch.cat(first, 1))
        try:
            return super().train_step(batches, step)
        finally:
            self._pending = None

    def step_schedulers(self) -> None:
        for role, s in self.schedulers.items():
            if role not in self.discriminator_roles or self.adversarial:   # else the discriminators never step
                s.step()

    # ------------------------------------------------------------------ state
    def extra_state(self) -> Dict[str, Any]:
        return {"pool": self.pool.clone()}

    def load_extra_state(self, state: Dict[str, Any]) -> None:
        if "pool" in state:
            self.pool = state["pool"].clone()
