"""Every config shipped in configs/ is valid, so the docs' commands cannot rot."""
from pathlib import Path

import pytest

from gankit.config import build_config, load_yaml
from gankit.registries import METHODS, load_all

load_all()

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


def test_there_are_configs():
    assert len(CONFIGS) >= 3


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_is_valid(path):
    cfg = build_config(load_yaml(path), origin=str(path))
    assert cfg.method["name"] in METHODS.names()
