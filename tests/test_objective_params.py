"""Objective parameters (method.objective as a name or a mapping) reach the losses training uses."""
import pytest
import torch
import yaml

import gankit
from gankit.api import _method, make_config
from gankit.cli import main
from gankit.errors import ConfigError
from gankit.methods.base import DataInfo
from gankit.objectives.fgan import F_DIVERGENCES, fgan_alternative_g_loss, fgan_saddle_g_loss

from conftest import toy_config

FGAN = {"fgan_kl": "kl", "fgan_reverse_kl": "reverse_kl", "fgan_pearson": "pearson", "fgan_neyman": "neyman",
        "fgan_hellinger": "hellinger", "fgan_js": "jensen_shannon", "fgan_gan": "gan"}
TOY_NETS = ["generator.name=mlp", "generator.hidden=8", "generator.layers=1",
            "discriminator.name=mlp", "discriminator.hidden=8", "discriminator.layers=1", "runtime.device=cpu"]
#: discriminator outputs at which the generator losses are compared
V = torch.linspace(-3.0, 3.0, 13)


def _built(overrides):
    """The `gan` method as training builds it, for 2-d vectors (no data needed)."""
    cfg = make_config(None, TOY_NETS + list(overrides))
    _, method = _method(cfg, DataInfo(kind="vector", shape=(2,)))
    return cfg, method


@pytest.mark.parametrize("overrides", [
    ["method.objective.name={name}", "method.objective.generator=alternative"],
    ["method.objective={name}", "method.objective.generator=alternative"],
    ["method.objective={{name: {name}, generator: alternative}}"],
], ids=["dotted", "name-then-parameter", "mapping"])
@pytest.mark.parametrize("name", sorted(FGAN))
def test_fgan_generator_alternative_is_the_loss_training_uses(name, overrides):
    cfg, method = _built([o.format(name=name) for o in overrides])
    assert cfg.method["objective"] == {"name": name, "generator": "alternative"}
    used = method.objective.g_loss(V)
    assert torch.allclose(used, fgan_alternative_g_loss(FGAN[name], V))
    # and it is what the generator step minimises
    D = lambda x: V  # noqa: E731  - a discriminator that scores every sample at V
    torch.testing.assert_close(method._generator_loss(D, None, V), fgan_alternative_g_loss(FGAN[name], V))
    assert not torch.allclose(used, fgan_saddle_g_loss(FGAN[name], V))


@pytest.mark.parametrize("name", sorted(FGAN))
def test_fgan_generator_defaults_to_saddle_and_the_resolved_config_says_so(name):
    cfg, method = _built([f"method.objective={name}"])
    assert cfg.method["objective"] == {"name": name, "generator": "saddle"}
    torch.testing.assert_close(method.objective.g_loss(V), fgan_saddle_g_loss(FGAN[name], V))


def test_fgan_gan_alternative_is_the_non_saturating_loss_and_saddle_the_minimax_one():
    from gankit.objectives.adversarial import minimax_g_loss, nonsaturating_g_loss

    _, saddle = _built(["method.objective=fgan_gan"])
    _, alternative = _built(["method.objective=fgan_gan", "method.objective.generator=alternative"])
    torch.testing.assert_close(saddle.objective.g_loss(V), minimax_g_loss(V))
    torch.testing.assert_close(alternative.objective.g_loss(V), nonsaturating_g_loss(V))


def test_objectives_without_parameters_stay_plain_names():
    assert make_config(None, []).method["objective"] == "nonsaturating"
    assert make_config(None, ["method.objective=hinge"]).method["objective"] == "hinge"
    assert make_config(None, ["method.objective={name: wasserstein}"]).method["objective"] == "wasserstein"


def test_objective_errors_name_the_key_the_closest_key_and_the_allowed_values():
    with pytest.raises(ConfigError, match=r"method\.objective\.generatr: unknown parameter of objective 'fgan_kl' "
                                          r"\(did you mean 'generator'\?\); allowed: generator"):
        make_config(None, ["method.objective=fgan_kl", "method.objective.generatr=alternative"])
    with pytest.raises(ConfigError, match=r"method\.objective\.generator: 'alternativ' is not allowed; choose one of "
                                          r"'saddle', 'alternative' \(did you mean 'alternative'\?\)"):
        make_config(None, ["method.objective={name: fgan_gan, generator: alternativ}"])
    with pytest.raises(ConfigError, match=r"method\.objective: unknown objective 'wasserstien' "
                                          r"\(did you mean 'wasserstein'\?\)"):
        make_config(None, ["method.objective=wasserstien"])
    with pytest.raises(ConfigError, match=r"method\.objective\.name: unknown objective 'fgan_kll'"):
        make_config(None, ["method.objective.name=fgan_kll"])
    # a parameter with no objective named refines the default one, which has none
    with pytest.raises(ConfigError, match=r"method\.objective\.generator: unknown parameter of objective "
                                          r"'nonsaturating'; allowed: none"):
        make_config(None, ["method.objective.generator=alternative"])
    with pytest.raises(ConfigError, match=r"method\.objective: expected the name of an objective or a mapping"):
        make_config(None, ["method.objective=[fgan_kl]"])


def test_a_new_objective_name_drops_the_old_ones_parameters():
    cfg = make_config({"method": {"objective": {"name": "fgan_kl", "generator": "alternative"}}},
                      ["method.objective=hinge"])
    assert cfg.method["objective"] == "hinge"


def test_cli_run_keeps_the_full_mapping_in_config_yaml_and_trains_with_it(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--data", "ring8", "--steps", "4", "--out", str(out), "--set", "data.n_samples=500",
                 "generator.hidden=8", "discriminator.hidden=8", "train.progress=none", "train.batch_size=32",
                 "method.objective.name=fgan_gan", "method.objective.generator=alternative"]) == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["method"]["objective"] == {"name": "fgan_gan", "generator": "alternative"}
    run = gankit.load_run(out)
    torch.testing.assert_close(run.method.objective.g_loss(V), fgan_alternative_g_loss("gan", V))


def test_old_configs_with_a_plain_objective_name_still_load_and_resume(tmp_path):
    out = tmp_path / "run"
    run = gankit.train(toy_config(out, steps=10, method__objective="fgan_kl", train__checkpoint_every=10))
    assert run.config.method["objective"] == {"name": "fgan_kl", "generator": "saddle"}
    # a run written before objectives took parameters: the name alone, in config.yaml and checkpoint
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    cfg["method"]["objective"] = "fgan_kl"
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    ckpt = sorted((out / "checkpoints").glob("step_*.pt"))[-1]
    state = torch.load(ckpt, weights_only=True)
    state["config"]["method"]["objective"] = "fgan_kl"
    torch.save(state, ckpt)
    resumed = gankit.resume(out, steps=12)
    assert resumed.step == 12
    assert resumed.config.method["objective"] == {"name": "fgan_kl", "generator": "saddle"}


def test_experiment_settings_that_set_the_objective_still_build():
    from gankit.experiments import modes

    for setting, (_, overlay) in modes.SETTINGS.items():
        if "objective" in overlay.get("method", {}):
            cfg = make_config(modes.config_for("ring8", setting, 0, 10, "unused"))
            name = overlay["method"]["objective"]
            assert cfg.method["objective"] in (name, {"name": name, **({"generator": "saddle"}
                                                                         if name in FGAN else {})})


def test_the_fgan_table_and_the_registered_objectives_agree():
    assert set(FGAN.values()) == set(F_DIVERGENCES)
