"""The one shape every data source takes: an in-memory tensor plus what is known about it.

Image data sets are held as ``uint8`` tensors of shape (N, C, H, W) and turned into floats
in [-1, 1] one batch at a time on the training device; vector (toy) data sets are float32
(N, D). Holding data in memory keeps Python out of the hot loop and makes the data order
a pair of integers that a checkpoint can store (see :mod:`gankit.data.stream`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Literal, Optional, Tuple

import torch

__all__ = ["Dataset"]


@dataclass
class Dataset:
    x: torch.Tensor                                   #: (N, C, H, W) uint8 or (N, D) float32
    kind: Literal["image", "vector"]
    name: str
    y: Optional[torch.Tensor] = None                  #: (N,) int64 class labels, if any
    classes: Optional[List[str]] = None               #: class names, index = label
    modes: Optional[torch.Tensor] = None              #: (K, D) true mixture means (toy data)
    mode_stds: Optional[torch.Tensor] = None          #: (K, D) per-axis standard deviations
    mode_weights: Optional[torch.Tensor] = None       #: (K,) mixture weights
    log_prob: Optional[Callable[[torch.Tensor], torch.Tensor]] = field(default=None, repr=False)
    #: exact log density of the data distribution (toy data), float64 per sample

    def __post_init__(self) -> None:
        if self.kind == "image":
            if self.x.dtype != torch.uint8 or self.x.dim() != 4:
                raise ValueError(f"image data must be uint8 (N, C, H, W), got {self.x.dtype} {tuple(self.x.shape)}")
        elif self.kind == "vector":
            if self.x.dim() != 2 or not self.x.is_floating_point():
                raise ValueError(f"vector data must be float (N, D), got {self.x.dtype} {tuple(self.x.shape)}")
            self.x = self.x.float()
        else:
            raise ValueError(f"kind must be 'image' or 'vector', got {self.kind!r}")
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"{len(self.y)} labels for {len(self.x)} samples")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def shape(self) -> Tuple[int, ...]:
        """Shape of one sample: (C, H, W) or (D,)."""
        return tuple(self.x.shape[1:])

    def to_model(self, batch: torch.Tensor) -> torch.Tensor:
        """Stored batch -> the float tensor a network sees (images in [-1, 1])."""
        if self.kind == "image":
            return batch.float().div_(127.5).sub_(1.0)
        return batch.float()

    @staticmethod
    def image_to_unit(x: torch.Tensor) -> torch.Tensor:
        """Network output in [-1, 1] -> [0, 1] for saving and display."""
        return x.float().add(1.0).div(2.0).clamp_(0.0, 1.0)
