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

import abc
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Literal, Optional, Tuple

import numpy as np
import torch

__all__ = ["Dataset", "Field", "FIELD_KINDS", "Batch", "LazyImages", "build_data", "build_sources"]

#: the kinds a field can have
FIELD_KINDS = ("image", "vector", "label", "multilabel", "tokens")

#: one minibatch: field name -> tensor (all fields of the same samples)
Batch = Dict[str, torch.Tensor]


@dataclass(frozen=True)
class Field:
    """What is known about one field, without its samples (kept in checkpoints)."""
    kind: str                              #: one of FIELD_KINDS
    shape: Tuple[int, ...]                 #: one sample: (C, H, W), (D,), () for a label, (K,), (L,)
    classes: Optional[Tuple[str, ...]] = None   #: label / multi-label names, index = value; a tokens field's vocabulary
    frequencies: Optional[Tuple[float, ...]] = None  #: how often each class occurs (labels)
    frames: int = 1                        #: an image field stacking this many frames along its channels (a clip's past)

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "shape": list(self.shape),
               "classes": list(self.classes) if self.classes is not None else None,
               "frequencies": list(self.frequencies) if self.frequencies is not None else None}
        if self.frames != 1:
            out["frames"] = self.frames
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Field":
        return cls(kind=d["kind"], shape=tuple(d["shape"]),
                   classes=tuple(d["classes"]) if d.get("classes") is not None else None,
                   frequencies=tuple(d["frequencies"]) if d.get("frequencies") is not None else None,
                   frames=int(d.get("frames", 1)))

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


class LazyImages(abc.ABC):
    """A ``uint8`` (N, C, H, W) image field whose samples are made when indexed (crops of
    photographs, images paired on the fly), never held whole.

    It answers what the engine asks of an image field, as a tensor would: ``len``,
    ``shape``, ``dtype``, ``dim()``, and indexing the samples with an integer, a slice, a
    range, a list, an array or a tensor of indices (or a boolean mask), which returns a plain
    ``uint8`` tensor. ``float()`` and ``numpy()`` make every sample (the whole field at once:
    mind the memory). A subclass gives :attr:`shape` and :meth:`_take`."""

    dtype = torch.uint8
    device = torch.device("cpu")

    @property
    @abc.abstractmethod
    def shape(self) -> torch.Size:
        """(N, C, H, W)."""

    @abc.abstractmethod
    def _take(self, idx: torch.Tensor) -> torch.Tensor:
        """The samples at ``idx`` (a 1-D int64 tensor of valid, non-negative indices) as uint8
        (len(idx), C, H, W)."""

    def __len__(self) -> int:
        return self.shape[0]

    def size(self, dim: Optional[int] = None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return 4

    @property
    def ndim(self) -> int:
        return 4

    def numel(self) -> int:
        return int(np.prod(self.shape))

    def is_floating_point(self) -> bool:
        return False

    def __getitem__(self, index):
        n, sample = len(self), tuple(self.shape[1:])
        if isinstance(index, tuple):
            if not index:
                return self[:]
            head, rest = index[0], index[1:]
            whole = self[head]
            return whole[rest] if _is_int(head) else whole[(slice(None),) + rest]
        if _is_int(index):
            i = int(index)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of range for {n} samples")
            return self._take(torch.tensor([i % n]))[0]
        if isinstance(index, slice):
            return self._take(torch.arange(*index.indices(n)))
        if isinstance(index, range):
            index = list(index)
        idx = torch.as_tensor(index)
        if idx.dtype == torch.bool:
            if idx.shape != (n,):
                raise IndexError(f"a boolean mask must have {n} entries, got shape {tuple(idx.shape)}")
            return self._take(idx.nonzero().flatten())
        if idx.is_floating_point() or idx.is_complex():
            raise IndexError(f"indices must be integers, got {idx.dtype}")
        idx = idx.long()
        if idx.numel() and ((idx < -n).any() or (idx >= n).any()):
            raise IndexError(f"an index is out of range for {n} samples")
        flat = torch.where(idx < 0, idx + n, idx).flatten()
        return self._take(flat).reshape(*idx.shape, *sample)

    def float(self) -> torch.Tensor:
        """Every sample as float32 (0..255), as ``tensor.float()`` gives."""
        return self[:].float()

    def numpy(self) -> np.ndarray:
        return self[:].numpy()

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)


def _is_int(index) -> bool:
    if isinstance(index, bool):
        return False
    if isinstance(index, (int, np.integer)):
        return True
    return isinstance(index, torch.Tensor) and index.dim() == 0 and not index.is_floating_point() \
        and index.dtype != torch.bool


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
    label_scores: Optional[Callable[[torch.Tensor], torch.Tensor]] = field(default=None, repr=False)
    #: where the labels are computed from the samples themselves (photos' colour classes): scores
    #: (N, K) of each class for samples in data space (images in [0, 1]), whose argmax is the label
    #: the data set gives; the closed-form classifier that conditional_accuracy uses
    extra: Dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    #: further named fields beside x and y (N, ...) each
    extra_kinds: Dict[str, str] = field(default_factory=dict)
    #: the kind of each extra field (default: image for uint8 (N, C, H, W), label for integers (N,),
    #: vector for floats (N, D), multilabel for floats (N, K) given as such)
    extra_classes: Dict[str, List[str]] = field(default_factory=dict)
    #: names of the classes of an extra label field, index = value (default: "0", "1", ...); for a
    #: tokens field, its vocabulary (index = word number)
    vocabulary: Optional[List[str]] = None
    #: the vocabulary of a tokens x (index = token number, 0 = padding): the ``classes`` of x's Field
    extra_frames: Dict[str, int] = field(default_factory=dict)
    #: image fields that stack several frames along their channels (a clip's past frames): how many

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
        out = {"x": Field(self.kind, self.shape, tuple(self.vocabulary) if self.vocabulary is not None else None)}
        if self.y is not None:
            n = len(self.classes) if self.classes else (int(self.y.max()) + 1 if len(self.y) else 0)
            counts = torch.bincount(self.y.clamp_min(0), minlength=n).double()
            names = tuple(self.classes) if self.classes else tuple(str(i) for i in range(n))
            out["y"] = Field("label", (), names, tuple((counts / counts.sum().clamp_min(1)).tolist()))
        for name, t in self.extra.items():
            kind = self.extra_kinds[name]
            classes = None
            if kind == "label" and name in self.extra_classes:
                classes = tuple(self.extra_classes[name])
            elif kind == "label":
                classes = tuple(str(i) for i in range(int(t.max()) + 1 if len(t) else 0))
            elif kind == "multilabel":
                classes = tuple(str(i) for i in range(t.shape[1]))
            elif kind == "tokens" and name in self.extra_classes:   # the vocabulary, index = word number
                classes = tuple(self.extra_classes[name])
            out[name] = Field(kind, tuple(t.shape[1:]), classes, frames=int(self.extra_frames.get(name, 1)))
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
    with ``source``, the further source of that name (section ``data_SOURCE``). The section's
    ``half`` keeps one of two disjoint halves (:mod:`gankit.data.domains`), then ``pairs`` (every
    image data set takes it) adds the paired fields of :mod:`gankit.data.pairs`."""
    from ..errors import ConfigError
    from ..registries import DATASETS

    spec = dict(cfg.data if source is None else cfg.sources[source])
    section = "data" if source is None else f"data_{source}"
    name = spec.pop("name")
    pairs = spec.pop("pairs", "none")      # an option of every image data set (gankit.data.pairs)
    half = spec.pop("half", "all")         # an option of every data set (gankit.data.domains)
    per_class = spec.pop("per_class", 0)   # an option of every labelled data set (gankit.data.subset)
    if split is not None:
        if "split" not in DATASETS.entry(name).params:
            raise ConfigError(f"{section}: data set '{name}' has no {split} split")
        spec["split"] = split
    data = DATASETS.build(name, spec, section=section)
    if half != "all":
        from .domains import take_half

        data = take_half(data, half, section)
    if per_class:
        from .subset import take_per_class

        data = take_per_class(data, per_class, section)
    if pairs != "none":
        from .pairs import apply_pairs

        data = apply_pairs(data, pairs, section)
    return data


def build_sources(cfg, split: Optional[str] = None) -> Dict[str, Dataset]:
    """The further data sources of a config (source -> data set), none for most methods."""
    return {source: build_data(cfg, split, source) for source in cfg.sources}
