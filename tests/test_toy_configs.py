"""The toy configs with each method's published settings: they load, build, and say exactly
what the ``*_published`` settings of the modes experiment train (so the two cannot drift)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gankit import ConfigError
from gankit.api import _method, make_config
from gankit.config import build_config, load_yaml
from gankit.experiments import modes
from gankit.methods.base import DataInfo
from gankit.registries import load_all

load_all()

CONFIGS = Path(__file__).parent.parent / "configs"
DATA = ("ring8", "grid25")
PUBLISHED = [(s, d) for s in modes.PUBLISHED_SETTINGS for d in DATA]


def _settings(cfg) -> dict:
    """What a toy run's outcome depends on: everything but the budget, seed and logging."""
    return {"method": dict(cfg.method), "data": dict(cfg.data), "generator": dict(cfg.generator),
            "discriminator": dict(cfg.discriminator), "optim": cfg.optim,
            "batch_size": cfg.train.batch_size, "ema_decay": cfg.train.ema_decay,
            "precision": cfg.runtime.precision}


@pytest.mark.parametrize("setting,data", PUBLISHED, ids=lambda x: x)
def test_published_config_loads_builds_and_matches_the_experiment(setting, data):
    path = CONFIGS / modes.config_file(setting, data)
    assert path.is_file(), f"{path.name} is missing"
    assert path.read_text().startswith("# "), f"{path.name} must say whose settings it holds"
    from_file = build_config(load_yaml(path), origin=str(path))
    assert from_file.data["name"] == data
    from_experiment = make_config(modes.config_for(data, f"{setting}_published", 0, 10, "unused"))
    assert _settings(from_file) == _settings(from_experiment)

    from_file.runtime.device = "cpu"
    _, method = _method(from_file, DataInfo(kind="vector", shape=(2,)))
    x = method.generator(torch.randn(4, from_file.generator["z_dim"]))
    assert x.shape == (4, 2)


def test_every_published_setting_replaces_the_shared_protocol():
    """A published overlay sets networks, optimiser, batch and averaging itself, so nothing of
    the shared protocol (3 x 256 MLPs, Adam 1e-3 with beta1 0, linear decay, batch 256,
    moving average 0.999) leaks into it unnoticed."""
    for setting, (source, stem, overlay) in modes.PUBLISHED_SETTINGS.items():
        assert source and stem and setting in modes.SETTINGS
        assert set(overlay) == {"method", "generator", "discriminator", "optim", "train"}, setting
        assert set(overlay["train"]) == {"batch_size", "ema_decay"}, setting
        assert {"optimizer", "lr_g", "lr_d", "beta1", "beta2", "schedule"} <= set(overlay["optim"]), setting
        assert "name" in overlay["method"] and "name" in overlay["generator"], setting
    wgan_gp = make_config(modes.config_for("ring8", "wgan_gp_published", 0, 10, "u"))
    assert wgan_gp.method["penalty_weight"] == 0.1 and wgan_gp.method["d_steps"] == 5
    assert (wgan_gp.optim.lr_g, wgan_gp.optim.beta1, wgan_gp.optim.beta2) == (1e-4, 0.5, 0.9)
    assert wgan_gp.generator["hidden"] == 512 and wgan_gp.train.batch_size == 256
    assert wgan_gp.train.ema_decay == 0.0 and wgan_gp.optim.schedule == "constant"


def test_no_stray_published_config():
    """Every config named after a published setting belongs to one (a renamed setting leaves
    no file behind that nothing checks)."""
    stems = {stem for _, stem, _ in modes.PUBLISHED_SETTINGS.values()}
    for path in CONFIGS.glob("*.yaml"):
        for data in DATA:
            if path.name.endswith(f"_{data}.yaml") and path.name[:-len(f"_{data}.yaml")] in stems:
                break
        else:
            continue
        assert path.name in {modes.config_file(s, d) for s, d in PUBLISHED}


def test_published_variants_and_table_column():
    assert modes.published_variants(["gan", "fgan_kl"], "no") == ["gan", "fgan_kl"]
    assert modes.published_variants(["gan", "fgan_kl"], "only") == ["gan_published", "fgan_kl"]
    assert modes.published_variants(["wgan_gp", "ebgan"], "both") == ["wgan_gp", "wgan_gp_published", "ebgan"]
    assert modes.published_variants(["wgan_gp_published", "wgan_gp"], "both") == ["wgan_gp_published", "wgan_gp"]
    with pytest.raises(ConfigError, match="no, only or both"):
        modes.published_variants(["gan"], "yes")
    assert modes.config_file("wgan_gp_published", "grid25") == "wgan_gp_grid25.yaml"
    with pytest.raises(ConfigError, match="no published variant"):
        modes.config_file("fgan_kl", "ring8")

    row = {"modes": [8.0, 0.0], "high_quality": [0.5, 0.1], "reverse_kl": [0.01, 0.0], "runs": []}
    res = {"data": "ring8", "steps": 10, "seeds": 1, "published": [],
           "rows": {"wgan_gp": {**row, "what": modes.SETTINGS["wgan_gp"][0]},
                    "wgan_gp_published": {**row, "what": modes.SETTINGS["wgan_gp_published"][0]}}}
    text = modes.table(res)
    assert "| settings |" in text
    assert "| gankit: WGAN-GP (5 critic steps) | shared | 8.00" in text
    assert "| gankit: WGAN-GP (5 critic steps) | published | 8.00" in text
    del res["rows"]["wgan_gp_published"]
    assert "settings" not in modes.table(res)
