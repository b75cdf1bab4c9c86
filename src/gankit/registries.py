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
#: network kinds a method's role can name in its contract -> the registry that builds them
NETWORKS = {"generator": GENERATORS, "discriminator": DISCRIMINATORS}
_loaded = False


#: the packages whose modules register parts: every module in them is imported, so a new
#: method, data set, network or objective is one new file (no list to extend)
_PACKAGES = ("data", "nets", "objectives", "methods")


def load_all() -> None:
    """Import every module that registers something (idempotent)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib
    import pkgutil

    for package in _PACKAGES:
        pkg = importlib.import_module(f"{__package__}.{package}")
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if not info.name.startswith("_"):
                importlib.import_module(f"{pkg.__name__}.{info.name}")
    from .metrics import evaluate, features  # noqa: F401


def for_section(section: str) -> Registry:
    load_all()
    return _SECTIONS[section]


def network_registry(kind: str) -> Registry:
    """The registry that builds networks of ``kind`` (a value of a method contract's ``roles``)."""
    load_all()
    return NETWORKS[kind]


def all_registries() -> dict:
    load_all()
    return {"methods": METHODS, "data": DATASETS, "generators": GENERATORS,
            "discriminators": DISCRIMINATORS, "objectives": OBJECTIVES, "features": FEATURES, "metrics": METRICS}
