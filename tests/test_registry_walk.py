"""Every option `gankit list` shows can be set from the command line.

The walk goes over every entry of every registry that `gankit list` prints and, for each of
its parameters, sets a value other than the default with `--set` syntax through
:func:`gankit.api.make_config`, the code path of `gankit train`, and checks that the value
arrives where it is used: in the resolved config for the config's sections (and
``method.objective``), and in the call that builds the feature extractor or computes the
metric for ``eval.features`` / ``eval.metrics`` (written ``NAME:PARAM=VALUE``, as
``gankit eval --features/--metrics`` take them). A registry, entry or parameter that no
command reaches makes a case here fail.
"""
import inspect
import json
from typing import Any, Literal, Union, get_args, get_origin

import pytest

from gankit.api import make_config
from gankit.cli import main
from gankit.registries import all_registries
from gankit.registry import coerce


def _other_value(tp, default):
    """A valid value of type ``tp`` that differs from ``default``."""
    if isinstance(tp, type) and hasattr(tp, "registry"):     # picks an entry of another registry
        return next(n for n in tp.registry.names() if n != default)
    origin = get_origin(tp)
    if origin is Literal:
        return next(a for a in get_args(tp) if a != default)
    if origin is Union:
        inner = [a for a in get_args(tp) if a is not type(None)]
        return _other_value(inner[0], None if default is None else default)
    if origin in (list, tuple):
        args = get_args(tp)
        inner = args[0] if args else float
        if get_origin(inner) in (list, tuple):
            return [[1.5, -2.0]]
        return [_other_value(inner, None)]
    if tp is bool:
        return not default
    if tp is int:
        return (default or 0) + 3
    if tp is float:
        return (default or 0.0) + 0.25
    if tp is str or tp is Any or tp is inspect.Parameter.empty:
        return "elsewhere" if default != "elsewhere" else "other"
    raise AssertionError(f"the walk does not know how to make a value of type {tp!r}")


def _text(value) -> str:
    """A value as `--set key=VALUE` takes it (parsed as YAML)."""
    return value if isinstance(value, str) else json.dumps(value)


# registry title in `gankit list` -> (overrides that pick entry NAME, overrides that set its PARAM to
# VALUE, and reach(cfg, name, monkeypatch): the entry's name and parameters where they are used)

def _named_section(section):
    return (lambda name: [f"{section}.name={name}"],
            lambda name, param, value: [f"{section}.name={name}", f"{section}.{param}={_text(value)}"],
            lambda cfg, name, monkeypatch: getattr(cfg, section))


def _method_section():
    """As :func:`_named_section`, with a data section for each further source the method trains on
    (cyclegan's ``data_b``), without which its config is refused."""
    from gankit.methods.base import contract_of

    def sources(name):
        return [f"data_{source}.name=ring8" for source in contract_of(name).sources]

    return (lambda name: [f"method.name={name}", *sources(name)],
            lambda name, param, value: [f"method.name={name}", f"method.{param}={_text(value)}", *sources(name)],
            lambda cfg, name, monkeypatch: cfg.method)


def _objective(cfg, name, monkeypatch):
    spec = cfg.method["objective"]
    return spec if isinstance(spec, dict) else {"name": spec}


def _recorder(registry, monkeypatch, result):
    """Replace every factory of ``registry`` by one that records the name and parameters it gets."""
    calls = []
    for name in registry.names():
        def record(*context, _name=name, **params):
            calls.append({"name": _name, **params})
            return result
        monkeypatch.setattr(registry.entry(name), "factory", record)
    return calls


def _feature(cfg, name, monkeypatch):
    # what periodic evaluation (and `gankit eval --features`) does with eval.features
    from gankit.metrics import evaluate, features
    from gankit.registries import FEATURES

    monkeypatch.setattr(features, "_CACHE", {})      # extractors built here stay here
    calls = _recorder(FEATURES, monkeypatch, object())
    evaluate.get_extractor(cfg.eval.features)
    assert len(calls) == 1
    return calls[0]


def _metric(cfg, name, monkeypatch):
    # what periodic evaluation (and `gankit eval --metrics`) does with eval.metrics
    from gankit.metrics import evaluate
    from gankit.registries import METRICS

    calls = _recorder(METRICS, monkeypatch, {})
    evaluate.evaluate(None, cfg.eval.metrics)
    assert len(calls) == 1
    return calls[0]


PATHS = {
    "methods": _method_section(),
    "data": _named_section("data"),
    "generators": _named_section("generator"),
    "discriminators": _named_section("discriminator"),
    "objectives": (lambda name: ["method.name=gan", f"method.objective={name}"],
                   lambda name, param, value: ["method.name=gan", f"method.objective.name={name}",
                                               f"method.objective.{param}={_text(value)}"],
                   _objective),
    "features": (lambda name: [f"eval.features={name}"],
                 lambda name, param, value: [f"eval.features={name}:{param}={_text(value)}"],
                 _feature),
    "metrics": (lambda name: [f"eval.metrics=[{name}]"],
                lambda name, param, value: [f"eval.metrics=[\"{name}:{param}={_text(value)}\"]"],
                _metric),
}


def _cases():
    entries, params = [], []
    for title, registry in all_registries().items():
        for name in registry.names():
            entries.append(pytest.param(title, name, id=f"{title}:{name}"))
            for param in registry.entry(name).params.values():
                params.append(pytest.param(title, name, param.name, id=f"{title}:{name}.{param.name}"))
    return entries, params


ENTRIES, PARAMS = _cases()


def test_every_registry_that_list_prints_has_a_path_from_the_command_line(capsys):
    assert set(all_registries()) == set(PATHS)
    assert main(["list"]) == 0
    headers = [line for line in capsys.readouterr().out.splitlines() if line[:1].isalpha()]
    for title in all_registries():          # `gankit list` says how each one is set
        assert any(h.startswith(f"{title}:  (") and "NAME" in h for h in headers), title


@pytest.mark.parametrize("title,name", ENTRIES)
def test_every_entry_can_be_picked(title, name, monkeypatch):
    pick, _, reach = PATHS[title]
    cfg = make_config(None, pick(name))
    assert reach(cfg, name, monkeypatch)["name"] == name


@pytest.mark.parametrize("title,name,param", PARAMS)
def test_every_parameter_can_be_set(title, name, param, monkeypatch):
    registry = all_registries()[title]
    p = registry.entry(name).params[param]
    default = None if p.default is inspect.Parameter.empty else p.default
    value = _other_value(p.type, default)
    _, set_param, reach = PATHS[title]
    cfg = make_config(None, set_param(name, param, value))
    spec = reach(cfg, name, monkeypatch)
    assert spec["name"] == name
    expected = coerce(value, p.type, param)
    assert spec[param] == (list(expected) if isinstance(expected, tuple) else expected)
    assert spec[param] != default
