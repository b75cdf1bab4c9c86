"""What the methods that translate between two unpaired domains share (cyclegan, shared_latent).

Domain A is the data (field ``x``), domain B the second source ``data_b`` (field ``b.x``);
both hold pictures of one size. Sampling translates given pictures of A (``input``) to B, or
of B (``input_b``, ``gankit sample --to A``) to A, and shows the translation beside its input
and the reconstruction that comes back; without given pictures it draws them from a pool of
training pictures of A, which is method state (``extra_state``), so a resumed run samples as
the uninterrupted one would. The subclass says how it translates (:meth:`translate`).
"""
from __future__ import annotations

import abc
from typing import Any, Dict, List, Tuple

import torch

from ..data.base import Field
from ..errors import ConfigError
from .base import Adversarial, Batch, DataInfo
from ._pools import InputPool

__all__ = ["TwoDomains"]

Tensor = torch.Tensor


class TwoDomains(Adversarial):
    """An adversarial method over the domains A (data) and B (data_b)."""

    name = ""   #: the method's registered name, for error messages

    def domains(self, info: DataInfo) -> Tuple[Field, Field]:
        """A's and B's fields, checked (B present, pictures, one size); sets ``shape_a``/``shape_b``."""
        f_a, f_b = info.fields["x"], info.fields.get("b.x")
        if f_b is None:
            raise ConfigError(f"method {self.name} translates between the data (domain A) and a second data set "
                              "(domain B): add a section data_b, e.g. data_b: {name: fashion_mnist_m, half: second}")
        if f_a.kind != "image" or f_b.kind != "image":
            raise ConfigError(f"method {self.name} translates images; domain A (data) holds {f_a.kind} samples and "
                              f"domain B (data_b) {f_b.kind} samples")
        if tuple(f_a.shape[1:]) != tuple(f_b.shape[1:]):
            raise ConfigError(f"method {self.name} needs both domains at one size, got "
                              f"{f_a.shape[1]}x{f_a.shape[2]} (data) and {f_b.shape[1]}x{f_b.shape[2]} (data_b); "
                              "set data.image_size and data_b.image_size alike")
        self.shape_a, self.shape_b = tuple(f_a.shape), tuple(f_b.shape)
        return f_a, f_b

    def keep_inputs(self, size: int) -> None:
        """Keep up to ``size`` training pictures of A for sampling without given ones."""
        if size < 1:
            raise ConfigError(f"method.input_pool must be at least 1, got {size}")
        self.inputs = InputPool(size, self.shape_a)

    @abc.abstractmethod
    def translate(self, x: Tensor, source: str, target: str) -> Tensor:
        """Pictures of domain ``source`` ("a" or "b") translated to ``target`` by the sampling networks."""

    # ------------------------------------------------------------------ sampling
    def generate(self, z: Tensor, given: Dict[str, Tensor]) -> Dict[str, Tensor]:
        if "input" not in given and "input_b" not in given:
            raise ConfigError(f"this {self.name} run has no pictures of domain A to translate: give them (gankit "
                              "sample --input FOLDER, or given={'input': images}); runs draw their own only after "
                              "training has begun")
        if "input_b" in given:      # the way back: pictures of B to A (gankit sample --to A)
            b = given["input_b"]
            x = self.translate(b, "b", "a")
            return {"x": x, "input_b": b, "reconstruction": self.translate(x, "a", "b")}
        a = given["input"]
        x = self.translate(a, "a", "b")
        return {"x": x, "input": a, "reconstruction": self.translate(x, "b", "a")}

    def draw_conditions(self, n: int, generator=None) -> Dict[str, Tensor]:
        """``n`` pictures of A drawn (with replacement) from the pool of training inputs."""
        a = self.inputs.draw(n, generator)
        return {} if a is None else {"input": a}

    # ------------------------------------------------------------------ training
    def train_step(self, batches: List[Batch], step: int) -> Dict[str, Tensor]:
        self.inputs.add(batches[0]["x"])
        try:
            return super().train_step(batches, step)
        finally:
            self._pending = None

    # ------------------------------------------------------------------ state
    def extra_state(self) -> Dict[str, Any]:
        return {"inputs": self.inputs.images.clone()}

    def load_extra_state(self, state: Dict[str, Any]) -> None:
        if "inputs" in state:
            self.inputs.images = state["inputs"].clone()
