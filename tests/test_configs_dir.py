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


def _data_info(data: dict):
    """The shape a config's data set has, without loading it."""
    from gankit.methods.base import DataInfo

    name = data["name"]
    if name in ("fashion_mnist", "mnist", "stacked", "fashion_mnist_m"):
        from gankit.data.pairs import paired_fields

        channels = 3 if name in ("stacked", "fashion_mnist_m") else data["channels"]
        shape = (channels, data["image_size"], data["image_size"])
        fields = paired_fields(shape, data.get("pairs", "none"))
        if name in ("fashion_mnist", "mnist"):   # ten classes of labels (conditional methods read them)
            from gankit.data.base import Field

            fields = {**fields, "y": Field("label", (), tuple(map(str, range(10))), (0.1,) * 10)}
            return DataInfo(kind="image", shape=shape, n_classes=10, fields=fields)
        return DataInfo(kind="image", shape=shape, fields=fields)
    if name == "fashion_mnist_styles":       # a label field 'domain' beside the pictures
        from gankit.data.base import Field

        shape = (3, data["image_size"], data["image_size"])
        return DataInfo(kind="image", shape=shape, n_classes=10,
                        fields={"x": Field("image", shape), "y": Field("label", (), tuple(map(str, range(10)))),
                                "domain": Field("label", (), tuple(data["styles"]))})
    if name == "moving_fashion":             # the past frames stacked as the channels of 'input'
        from gankit.data.base import Field

        size = data["image_size"]
        return DataInfo(kind="image", shape=(1, size, size),
                        fields={"x": Field("image", (1, size, size)),
                                "input": Field("image", (data["frames"], size, size))})
    if name == "speech":                     # noisy and clean spectrogram segments: (1, bins, frames)
        from gankit.data.base import Field

        shape = (1, data["n_fft"] // 2 + 1, data["frames"])
        return DataInfo(kind="image", shape=shape, fields={"x": Field("image", shape), "input": Field("image", shape)})
    if name == "voices":                     # spectrogram segments (1, bins, frames), the voice a label 'domain'
        from gankit.data.base import Field

        shape = (1, data["n_fft"] // 2 + 1, data["frames"])
        return DataInfo(kind="image", shape=shape,
                        fields={"x": Field("image", shape), "domain": Field("label", (), tuple(data["voices"]))})
    if name in ("ring8", "grid25", "swissroll"):
        return DataInfo(kind="vector", shape=(2,))
    if name == "gaussian1d":
        return DataInfo(kind="vector", shape=(1,))
    if name == "mixture":
        return DataInfo(kind="vector", shape=(len(data["means"][0]),))
    pytest.skip(f"the shape of data set '{name}' is only known once it is loaded")


def _run_info(cfg):
    """The DataInfo a run of ``cfg`` has: its data's, the further sources' fields as SOURCE.FIELD,
    and the method's input conditions."""
    from gankit.methods.base import DataInfo, describe_inputs

    info = _data_info(cfg.data)
    for source, section in cfg.sources.items():
        fields = {f"{source}.{k}": f for k, f in _data_info(section).fields.items()}
        info = DataInfo(info.kind, info.shape, info.n_classes, {**info.fields, **fields})
    return describe_inputs(info, cfg.method["name"])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_builds_its_networks_and_method(path):
    """Everything the method refuses at build time (e.g. a gradient penalty on a batch-norm
    discriminator) is refused for the shipped configs too."""
    from gankit.api import _method

    cfg = build_config(load_yaml(path), origin=str(path))
    cfg.runtime.device = "cpu"
    _, method = _method(cfg, _run_info(cfg))      # a refused combination raises ConfigError
    assert method.generator is not None       # and the discriminator, where the method has one (vae has not)
    assert "discriminator" not in method.contract.roles or method.discriminator is not None


def test_sngan_config_follows_the_paper_no_batch_norm_in_the_discriminator():
    from gankit.api import _method
    from gankit.objectives.penalties import batch_coupling

    path = Path(__file__).parent.parent / "configs" / "sngan_hinge_fashion_mnist.yaml"
    cfg = build_config(load_yaml(path), origin=str(path))
    cfg.runtime.device = "cpu"
    _, method = _method(cfg, _data_info(cfg.data))
    assert cfg.method["spectral_norm"] and cfg.method["objective"] == "hinge"
    assert batch_coupling(method.discriminator) == []


def test_wgan_gp_config_uses_layer_norm_as_gulrajani_et_al():
    path = Path(__file__).parent.parent / "configs" / "wgan_gp_fashion_mnist.yaml"
    cfg = build_config(load_yaml(path), origin=str(path))
    assert cfg.method["penalty"] == "gradient" and cfg.discriminator["norm"] == "layer"
