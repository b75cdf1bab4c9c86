import pytest

from gankit import ConfigError
from gankit.api import make_config
from gankit.config import apply_overrides, build_config, dump_yaml, load_yaml, parse_override, to_dict


def test_defaults_are_the_default_run():
    cfg = build_config({})
    assert cfg.method == {"name": "gan", "d_steps": 1, "objective": "nonsaturating", "penalty": "none",
                          "penalty_weight": 10.0, "clip": 0.0, "spectral_norm": False, "pack": 1,
                          "generator_loss": "objective", "unroll": 0}
    assert cfg.data["name"] == "fashion_mnist"
    assert cfg.generator["name"] == "auto"


def test_unknown_key_names_the_closest_valid_key():
    with pytest.raises(ConfigError, match=r"train\.stesp.*did you mean 'steps'"):
        build_config({"train": {"stesp": 10}})
    with pytest.raises(ConfigError, match=r"method\.d_step.*did you mean 'd_steps'"):
        build_config({"method": {"d_step": 2}})
    with pytest.raises(ConfigError, match=r"unknown section 'trian'.*did you mean 'train'"):
        build_config({"trian": {}})


def test_bad_values_name_the_key_and_the_allowed_values():
    with pytest.raises(ConfigError, match=r"train\.steps: expected int, got 'many'"):
        build_config({"train": {"steps": "many"}})
    with pytest.raises(ConfigError, match=r"optim\.schedule: 'cosine' is not allowed; choose one of 'constant', 'linear'"):
        build_config({"optim": {"schedule": "cosine"}})
    with pytest.raises(ConfigError, match=r"train\.batch_size must be positive"):
        build_config({"train": {"batch_size": 0}})
    with pytest.raises(ConfigError, match=r"unknown data set 'ring9'.*did you mean 'ring8'"):
        build_config({"data": "ring9"})
    with pytest.raises(ConfigError, match=r"optim\.beta1 must be in \[0, 1\)"):
        build_config({"optim": {"beta1": 1.5}})


def test_overrides_parse_yaml_values():
    assert parse_override("optim.lr_g=1e-4") == (["optim", "lr_g"], 1e-4)
    assert parse_override("data.means=[[0, 1], [2, 3]]") == (["data", "means"], [[0, 1], [2, 3]])
    assert parse_override("runtime.deterministic=true") == (["runtime", "deterministic"], True)
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_override("optim.lr_g")


def test_changing_a_named_section_drops_the_old_parameters():
    raw = apply_overrides({"data": {"name": "ring8", "radius": 2.0}}, ["data=grid25"])
    cfg = build_config(raw)
    assert cfg.data["name"] == "grid25" and "radius" not in cfg.data
    # but setting a parameter keeps the name
    cfg = build_config(apply_overrides({"data": {"name": "ring8"}}, ["data.radius=2"]))
    assert cfg.data == {**cfg.data, "name": "ring8", "radius": 2.0}


def test_resolved_config_round_trips_through_yaml(tmp_path):
    cfg = build_config({"data": "ring8", "train": {"steps": 7}, "optim": {"lr_g": 3e-4}})
    path = tmp_path / "c.yaml"
    path.write_text(dump_yaml(cfg))
    again = build_config(load_yaml(path))
    assert to_dict(again) == to_dict(cfg)


def test_bad_yaml_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml")


def test_auto_network_keys_are_still_checked():
    with pytest.raises(ConfigError, match=r"generator\.widht.*did you mean 'width'"):
        build_config({"generator": {"widht": 3}})


def test_bare_on_off_in_yaml_means_the_strings(tmp_path):
    # YAML 1.1 reads `off` as False; an on/off choice must still accept it
    path = tmp_path / "c.yaml"
    path.write_text("runtime: {channels_last: off}\n")
    assert make_config(str(path)).runtime.channels_last == "off"
    assert make_config(None, ["runtime.channels_last=on"]).runtime.channels_last == "on"


def test_dotted_overrides_reach_into_a_name_given_alone():
    # a named section or a named parameter written as a plain name takes dotted overrides
    cfg = build_config(apply_overrides({"method": "gan", "data": "ring8"}, ["method.d_steps=2", "data.radius=2"]))
    assert cfg.method["d_steps"] == 2 and cfg.data["radius"] == 2.0
    raw = apply_overrides({"method": {"objective": "fgan_kl"}}, ["method.objective.generator=alternative"])
    assert raw["method"]["objective"] == {"name": "fgan_kl", "generator": "alternative"}
    assert build_config(raw).method["objective"] == {"name": "fgan_kl", "generator": "alternative"}
    with pytest.raises(ConfigError, match=r"'steps' is not a mapping"):
        apply_overrides({}, ["train.steps=3", "train.steps.x=1"])


def test_objective_parameters_round_trip_through_yaml(tmp_path):
    cfg = build_config({"method": {"objective": {"name": "fgan_gan", "generator": "alternative"}}})
    path = tmp_path / "c.yaml"
    path.write_text(dump_yaml(cfg))
    assert "objective: {name: fgan_gan, generator: alternative}" in path.read_text()
    assert to_dict(build_config(load_yaml(path))) == to_dict(cfg)


def test_a_method_brings_its_own_optimiser_defaults():
    from gankit.methods.base import contract_of

    assert contract_of("stargan").optim == {"lr_g": 1e-4, "lr_d": 1e-4}
    cfg = build_config({"method": {"name": "stargan"}, "data": {"name": "fashion_mnist_styles"}})
    assert (cfg.optim.lr_g, cfg.optim.lr_d, cfg.optim.beta1) == (1e-4, 1e-4, 0.5)
    cfg = build_config({"method": {"name": "stargan"}, "data": {"name": "fashion_mnist_styles"},
                        "optim": {"lr_d": 3e-4}})
    assert (cfg.optim.lr_g, cfg.optim.lr_d) == (1e-4, 3e-4)          # what the config sets wins
    assert build_config({}).optim.lr_g == 2e-4                       # methods without their own: unchanged
