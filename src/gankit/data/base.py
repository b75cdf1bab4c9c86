"""The one shape every data source takes: named in-memory tensors plus what is known about them.

A data set holds named *fields* of N samples each: ``x`` (what a generator learns to
produce) always, ``y`` (class labels) where the data has them, and any further named
arrays (an ``.npz`` file's other arrays, say). Each field has a :class:`Field`: its kind,
the shape of one sample, and its class names where it is a label. One seeded permutation
indexes every field of a batch (see :mod:`gankit.data.stream`), so a batch is a dict of
field -> tensor and the data order is still a pair of integers a checkpoint can store.

Image fields are held as ``uint8`` tensors of shape (N, C, H, W) and turned into floats in
[-1, 1] one batch at a time on the training device; vector fields are float32 (N, D);
labels are int64 (N,); multi-labels are 0/1 (N, K); tokens are int64 (N, L).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Literal, Optional, Tuple

import torch

__all__ = ["Dataset", "Field", "FIELD_KINDS", "Batch", "build_data", "build_sources"]

#: the kinds a field can have
FIELD_KINDS = ("image", "vector", "label", "multilabel", "tokens")

#: one minibatch: field name -> tensor (all fields of the same samples)
Batch = Dict[str, torch.Tensor]


@dataclass(frozen=True)
class Field:
    """What is known about one field, without its samples (kept in checkpoints)."""
    kind: str                              #: one of FIELD_KINDS
    shape: Tuple[int, ...]                 #: one sample: (C, H, W), (D,), () for a label, (K,), (L,)
    classes: Optional[Tuple[str, ...]] = None   #: label / multi-label names, index = value
    frequencies: Optional[Tuple[float, ...]] = None  #: how often each class occurs (labels)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "shape": list(self.shape),
                "classes": list(self.classes) if self.classes is not None else None,
                "frequencies": list(self.frequencies) if self.frequencies is not None else None}

    @classmethod
    def from_dict(cls, d: dict) -> "Field":
        return cls(kind=d["kind"], shape=tuple(d["shape"]),
                   classes=tuple(d["classes"]) if d.get("classes") is not None else None,
                   frequencies=tuple(d["frequencies"]) if d.get("frequencies") is not None else None)

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.classes is not None else 0


def _check_field(name: str, t: torch.Tensor, kind: str, n: int) -> torch.Tensor:
    if kind not in FIELD_KINDS:
        raise ValueError(f"field {name!r}: kind must be one of {', '.join(FIELD_KINDS)}, got {kind!r}")
    if len(t) != n:
        raise ValueError(f"field {name!r} has {len(t)} samples, but x has {n}")
    if kind == "image" and (t.dtype != torch.uint8 or t.dim() != 4):
        raise ValueError(f"image field {name!r} must be uint8 (N, C, H, W), got {t.dtype} {tuple(t.shape)}")
    if kind == "vector":
        if t.dim() != 2 or not t.is_floating_point():
            raise ValueError(f"vector field {name!r} must be float (N, D), got {t.dtype} {tuple(t.shape)}")
        return t.float()
    if kind == "label" and (t.dim() != 1 or t.is_floating_point()):
        raise ValueError(f"label field {name!r} must be integers (N,), got {t.dtype} {tuple(t.shape)}")
    if kind == "multilabel" and t.dim() != 2:
        raise ValueError(f"multi-label field {name!r} must be 0/1 values (N, K), got {tuple(t.shape)}")
    if kind == "tokens" and (t.dim() != 2 or t.is_floating_point()):
        raise ValueError(f"token field {name!r} must be integers (N, L), got {t.dtype} {tuple(t.shape)}")
    if kind in ("label", "tokens"):
        return t.long()
    if kind == "multilabel":
        return t.float()
    return t


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
    extra: Dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    #: further named fields beside x and y (N, ...) each
    extra_kinds: Dict[str, str] = field(default_factory=dict)
    #: the kind of each extra field (default: image for uint8 (N, C, H, W), label for integers (N,),
    #: vector for floats (N, D), multilabel for floats (N, K) given as such)

    def __post_init__(self) -> None:
        if self.kind not in ("image", "vector", "tokens"):
            raise ValueError(f"kind must be 'image', 'vector' or 'tokens', got {self.kind!r}")
        self.x = _check_field("x", self.x, self.kind, len(self.x))
        if self.y is not None:
            if len(self.y) != len(self.x):
                raise ValueError(f"{len(self.y)} labels for {len(self.x)} samples")
            self.y = _check_field("y", self.y, "label", len(self.x))
        for name in ("x", "y"):
            if name in self.extra:
                raise ValueError(f"extra field {name!r} clashes with the data set's own {name}")
        for name, t in list(self.extra.items()):
            kind = self.extra_kinds.get(name) or _guess_kind(t)
            self.extra_kinds[name] = kind
            self.extra[name] = _check_field(name, t, kind, len(self.x))

    def __len__(self) -> int:
        return len(self.x)

    @property
    def shape(self) -> Tuple[int, ...]:
        """Shape of one sample: (C, H, W) or (D,)."""
        return tuple(self.x.shape[1:])

    def tensors(self) -> Dict[str, torch.Tensor]:
        """Every field by name: ``x``, ``y`` where there are labels, then the extra fields."""
        out = {"x": self.x}
        if self.y is not None:
            out["y"] = self.y
        out.update(self.extra)
        return out

    def fields(self) -> Dict[str, Field]:
        """What is known about each field (no samples): what a method is built from."""
        out = {"x": Field(self.kind, self.shape)}
        if self.y is not None:
            n = len(self.classes) if self.classes else (int(self.y.max()) + 1 if len(self.y) else 0)
            counts = torch.bincount(self.y.clamp_min(0), minlength=n).double()
            names = tuple(self.classes) if self.classes else tuple(str(i) for i in range(n))
            out["y"] = Field("label", (), names, tuple((counts / counts.sum().clamp_min(1)).tolist()))
        for name, t in self.extra.items():
            kind = self.extra_kinds[name]
            classes = None
            if kind == "label":
                classes = tuple(str(i) for i in range(int(t.max()) + 1 if len(t) else 0))
            elif kind == "multilabel":
                classes = tuple(str(i) for i in range(t.shape[1]))
            out[name] = Field(kind, tuple(t.shape[1:]), classes)
        return out

    def to_model(self, batch):
        """A stored batch -> what a network sees: images as floats in [-1, 1], vectors and
        multi-labels as float32, labels and tokens as int64. A dict of fields (a
        :data:`Batch`) is converted field by field; a plain tensor is taken as ``x``."""
        if isinstance(batch, dict):
            kinds = {"x": self.kind, "y": "label", **self.extra_kinds}
            return {k: convert(v, kinds[k]) for k, v in batch.items()}
        return convert(batch, self.kind)

    @staticmethod
    def image_to_unit(x: torch.Tensor) -> torch.Tensor:
        """Network output in [-1, 1] -> [0, 1] for saving and display."""
        return x.float().add(1.0).div(2.0).clamp_(0.0, 1.0)


def convert(t: torch.Tensor, kind: str) -> torch.Tensor:
    """One stored field -> model space."""
    if kind == "image":
        return t.float().div_(127.5).sub_(1.0)
    if kind in ("label", "tokens"):
        return t.long()
    return t.float()


def _guess_kind(t: torch.Tensor) -> str:
    if t.dtype == torch.uint8 and t.dim() == 4:
        return "image"
    if not t.is_floating_point() and t.dim() == 1:
        return "label"
    if not t.is_floating_point() and t.dim() == 2:
        return "tokens"
    if t.is_floating_point() and t.dim() == 2:
        return "vector"
    raise ValueError(f"cannot tell the kind of a field of {t.dtype} {tuple(t.shape)}; name it in extra_kinds")


def build_data(cfg, split: Optional[str] = None, source: Optional[str] = None) -> Dataset:
    """The data set a config's ``data`` section names (its ``split`` replaced by ``split``);
    with ``source``, the further source of that name (section ``data_SOURCE``)."""
    from ..errors import ConfigError
    from ..registries import DATASETS

    spec = dict(cfg.data if source is None else cfg.sources[source])
    section = "data" if source is None else f"data_{source}"
    name = spec.pop("name")
    if split is not None:
        if "split" not in DATASETS.entry(name).params:
            raise ConfigError(f"{section}: data set '{name}' has no {split} split")
        spec["split"] = split
    return DATASETS.build(name, spec, section=section)


def build_sources(cfg, split: Optional[str] = None) -> Dict[str, Dataset]:
    """The further data sources of a config (source -> data set), none for most methods."""
    return {source: build_data(cfg, split, source) for source in cfg.sources}
