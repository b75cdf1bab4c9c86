"""``data.per_class``: a small balanced labelled subset of any labelled data set.

Semi-supervised learning (Triple-GAN) trains on a few labelled samples beside many
unlabelled ones. ``per_class: N`` (an option of every data set, like ``half`` and ``pairs``;
taken out of the section by :mod:`gankit.config` and applied by
:func:`~gankit.data.base.build_data` after ``half``) keeps the first ``N`` samples of each
class of ``y``, in the data set's own order, every field alike; the samples keep that order.
The subset is a function of the data set alone, so it is the same in every run and after
every resume: ``data_labelled: {name: fashion_mnist, per_class: 10}`` is Fashion-MNIST's 100
labels (the first ten shirts, the first ten trousers ...). ``0`` (default) keeps everything.
"""
from __future__ import annotations

import torch

from ..errors import ConfigError, DataError
from .base import Dataset

__all__ = ["per_class_option", "take_per_class"]


def per_class_option(value, section: str = "data") -> int:
    """A validated ``per_class``: a whole number, 0 (every sample) or more."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{section}.per_class must be a whole number of samples per class, 0 for all (e.g. "
                          f"{section}.per_class=10 for 100 labels of 10 classes), got {value!r}")
    return int(value)


def per_class_indices(y: torch.Tensor, n: int, n_classes: int, what: str = "data") -> torch.Tensor:
    """The indices of the first ``n`` samples of each of ``n_classes`` classes of labels ``y``, in
    increasing order; a DataError naming the class that has fewer."""
    counts = torch.bincount(y, minlength=n_classes)
    short = (counts < n).nonzero().flatten()
    if len(short):
        c = int(short[0])
        raise DataError(f"{what}.per_class={n}: class {c} has only {int(counts[c])} samples; lower per_class")
    # rank of each sample within its class: its position among the earlier samples of that class
    order = torch.argsort(y, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(y)
    rank[order] = torch.arange(len(y)) - starts[y[order]]
    return (rank < n).nonzero().flatten()


def take_per_class(data: Dataset, n: int, section: str = "data") -> Dataset:
    """``data`` with the first ``n`` samples of each class (every field alike); ``n`` 0 returns it."""
    n = per_class_option(n, section)
    if n == 0:
        return data
    if data.y is None:
        raise ConfigError(f"{section}.per_class keeps samples by their labels, but data set '{data.name}' has none; "
                          "use a labelled data set (fashion_mnist, mnist, ring8 ...)")
    k = len(data.classes) if data.classes else int(data.y.max()) + 1
    idx = per_class_indices(data.y.long(), n, k, section)

    def cut(t):
        out = t[idx]
        return out.clone() if torch.is_tensor(out) else out

    return Dataset(x=cut(data.x), kind=data.kind, name=data.name, y=cut(data.y), classes=data.classes,
                   modes=data.modes, mode_stds=data.mode_stds, mode_weights=data.mode_weights,
                   log_prob=data.log_prob, extra={k_: cut(v) for k_, v in data.extra.items()},
                   extra_kinds=dict(data.extra_kinds), extra_classes=dict(data.extra_classes),
                   vocabulary=getattr(data, "vocabulary", None), extra_frames=dict(data.extra_frames))
