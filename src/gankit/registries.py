"""The registries of every pluggable part, filled by importing the modules that register."""
from __future__ import annotations

from .registry import Registry

METHODS = Registry("method")
DATASETS = Registry("data set")
GENERATORS = Registry("generator network")
DISCRIMINATORS = Registry("discriminator network")
OBJECTIVES = Registry("objective")
FEATURES = Registry("feature extractor")
METRICS = Registry("metric")

_SECTIONS = {"method": METHODS, "data": DATASETS, "generator": GENERATORS, "discriminator": DISCRIMINATORS}
_loaded = False


def load_all() -> None:
    """Import every module that registers something (idempotent)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from .data import toy, images, stacked  # noqa: F401
    from .nets import mlp, dcgan, autoencoder  # noqa: F401
    from .objectives import adversarial, fgan  # noqa: F401
    from .methods import gan, ebgan, loss_sensitive  # noqa: F401
    from .metrics import evaluate, features  # noqa: F401


def for_section(section: str) -> Registry:
    load_all()
    return _SECTIONS[section]


def all_registries() -> dict:
    load_all()
    return {"methods": METHODS, "data": DATASETS, "generators": GENERATORS,
            "discriminators": DISCRIMINATORS, "objectives": OBJECTIVES, "features": FEATURES, "metrics": METRICS}
