"""Strict, typed configuration: declared defaults, YAML overlays and dotted overrides.

A config has two kinds of sections:

* *fixed* sections (``train``, ``optim``, ``runtime``) declared below as dataclasses, and
* *named* sections (``method``, ``data``, and one per network role of the method:
  ``generator``, ``discriminator``, and the further roles a method declares in its
  contract, e.g. ``discriminator_b``) whose ``name`` picks a registry entry and whose other
  keys are that entry's parameters, validated against the factory's signature (see
  :mod:`gankit.registry`). A role section the chosen method does not declare is an error;
  ``generator``/``discriminator`` are always present, so every older config loads. A parameter
  that picks an entry of another registry (``method.objective``) is a named section of
  its own: a name, or a mapping ``{name: fgan_kl, generator: alternative}``, so that
  ``--set method.objective.generator=alternative`` reaches the objective's parameter.

Every key that is not declared is an error naming the key, the allowed keys and
the closest one. :func:`resolve` fills in every default, so the saved
``config.yaml`` reproduces a run on its own.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Sequence, Union, get_type_hints

import yaml

from .errors import ConfigError
from .registry import closest, coerce

__all__ = [
    "TrainConfig", "OptimConfig", "RuntimeConfig", "EvalConfig", "Config", "NAMED_SECTIONS",
    "load_yaml", "apply_overrides", "parse_override", "build_config", "to_dict", "dump_yaml",
]


@dataclass
class TrainConfig:
    steps: int = 3000                 #: generator updates in the whole run
    batch_size: int = 64              #: real samples per discriminator step (m in Algorithm 1)
    seed: int = 0
    log_every: int = 50               #: steps between log lines, metric syncs and NaN checks
    sample_every: int = 500           #: steps between sample grids (0: only at the end)
    checkpoint_every: int = 500       #: steps between checkpoints (0: only at the end)
    keep_checkpoints: int = 3         #: how many step checkpoints to keep (newest first)
    n_samples: int = 64               #: images in each sample grid
    ema_decay: float = 0.0            #: generator moving average (0 disables, 0.999 is typical)
    time_limit: float = 0.0           #: seconds of training per train/resume call (0: none); stops with a checkpoint
    progress: Literal["auto", "bar", "lines", "none"] = "auto"


@dataclass
class OptimConfig:
    optimizer: Literal["adam", "rmsprop"] = "adam"  #: rmsprop is the WGAN paper's choice
    lr_g: float = 2e-4                #: learning rate of the generator roles
    lr_d: float = 2e-4                #: learning rate of every other role (discriminators, encoders ...)
    lr: Dict[str, float] = field(default_factory=dict)  #: per role, overriding the two above: lr.encoder=1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 0.0
    schedule: Literal["constant", "linear"] = "constant"  #: linear decays to 0 at the last step
    decay_start: float = 0.0          #: linear: the share of the steps at the full rate before the decay (CycleGAN: 0.5)


@dataclass
class RuntimeConfig:
    device: str = "auto"              #: auto, cpu, cuda or cuda:N
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  #: auto: bf16 autocast for images where bf16 is native, else fp32
    channels_last: Literal["auto", "on", "off"] = "auto"         #: auto: on for images
    threads: int = 0                  #: CPU threads for PyTorch (0: PyTorch's default)
    deterministic: bool = False       #: ask PyTorch for deterministic kernels
    sync_batchnorm: bool = False      #: with several processes (torchrun, CUDA): batch norm over the global batch


@dataclass
class EvalConfig:
    every: int = 0                    #: steps between evaluations during training (0: none)
    metrics: List[str] = field(default_factory=lambda: ["fid"])  #: see `gankit list` (metrics)
    n: int = 2000                     #: generated samples per evaluation
    features: str = "auto"            #: feature extractor, NAME or NAME:KEY=VALUE (auto: the data set's classifier)
    split: Literal["train", "test"] = "test"  #: real data to compare with
    best: Optional[str] = None        #: metric key that picks checkpoints/best.pt (default: the first)


FIXED_SECTIONS = {"train": TrainConfig, "optim": OptimConfig, "runtime": RuntimeConfig, "eval": EvalConfig}
NAMED_SECTIONS = ("method", "data", "generator", "discriminator")
DEFAULT_NAMES = {"method": "gan", "data": "fashion_mnist", "generator": "auto", "discriminator": "auto"}
TOP_LEVEL = set(FIXED_SECTIONS) | set(NAMED_SECTIONS) | {"out"}


@dataclass
class Config:
    method: Dict[str, Any] = field(default_factory=lambda: {"name": "gan"})
    data: Dict[str, Any] = field(default_factory=lambda: {"name": "fashion_mnist"})
    generator: Dict[str, Any] = field(default_factory=lambda: {"name": "auto"})
    discriminator: Dict[str, Any] = field(default_factory=lambda: {"name": "auto"})
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    out: Optional[str] = None
    networks: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    #: the sections of the method's network roles beyond generator and discriminator
    sources: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    #: the further data sources the method trains on: source -> its ``data_SOURCE`` section

    def network(self, role: str) -> Dict[str, Any]:
        """The section of network role ``role`` (``generator``, ``discriminator`` or a further role)."""
        if role in ("generator", "discriminator"):
            return getattr(self, role)
        return self.networks[role]

    def set_network(self, role: str, spec: Dict[str, Any]) -> None:
        if role in ("generator", "discriminator"):
            setattr(self, role, spec)
        else:
            self.networks[role] = spec


def source_section(source: str) -> str:
    """The config section of a further data source: ``data_b`` for source ``b``."""
    return f"data_{source}"


def role_sections() -> set:
    """Sections that some registered method declares beyond the fixed ones: its network roles
    beyond generator/discriminator and its further data sources (``data_SOURCE``)."""
    from . import registries
    from .methods.base import contract_of

    registries.load_all()
    out = set()
    for name in registries.METHODS.names():
        contract = contract_of(name)
        out |= set(contract.roles) | {source_section(s) for s in contract.sources}
    return out - set(NAMED_SECTIONS)


def _known_sections() -> set:
    return TOP_LEVEL | role_sections()


def _is_named(key: str) -> bool:
    return key in NAMED_SECTIONS or key in role_sections()


# ----------------------------------------------------------------------------------- raw dicts

def load_yaml(path: Union[str, Path]) -> Dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections, got {type(raw).__name__}")
    return raw


def parse_override(text: str) -> tuple:
    """``'a.b=3'`` -> ``(['a', 'b'], 3)``; the value is parsed as YAML (so 1e-4, true, [1, 2] work)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. --set optim.lr_g=1e-4")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: the key must be dotted names, e.g. train.steps")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    if isinstance(parsed, str) and _looks_like_float(parsed):
        parsed = float(parsed)  # YAML 1.1 reads 1e-4 as a string
    return key.split("."), parsed


def _looks_like_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return any(c in text.lower() for c in "e.") and not text.lower() in ("nan", "inf", "-inf")


def _normalise(raw: Dict[str, Any], origin: str) -> Dict[str, Any]:
    """Check top-level keys and expand ``method: gan`` to ``method: {name: gan}``."""
    out = {}
    known = _known_sections() if set(raw) - TOP_LEVEL else TOP_LEVEL
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(
                f"{origin}: unknown section '{key}'{closest(str(key), known)}; "
                f"allowed: {', '.join(sorted(TOP_LEVEL))} and a method's further network roles"
            )
        named = _is_named(key)
        if named and isinstance(value, str):
            value = {"name": value}
        if named or key in FIXED_SECTIONS:
            if value is None:
                value = {}
            if not isinstance(value, dict):
                raise ConfigError(f"{origin}: section '{key}' must be a mapping, got {value!r}")
        out[key] = copy.deepcopy(value)
    return out


def merge(base: Dict[str, Any], overlay: Dict[str, Any]) -> Dict[str, Any]:
    """Overlay section by section. A named section whose ``name`` changes starts afresh,
    so parameters of the previous entry do not leak into the new one."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if key not in FIXED_SECTIONS and key != "out":   # a named section (method, data or a network role)
            old = out.get(key, {})
            if "name" in value and value["name"] != old.get("name"):
                out[key] = dict(value)
            else:
                out[key] = {**old, **value}
        elif key in FIXED_SECTIONS:
            out[key] = {**out.get(key, {}), **value}
        else:
            out[key] = value
    return out


def apply_overrides(raw: Dict[str, Any], overrides: Sequence[str]) -> Dict[str, Any]:
    """Apply ``--set key=value`` overrides to a raw config dict."""
    out = copy.deepcopy(raw)
    for text in overrides:
        path, value = parse_override(text)
        if len(path) == 1:
            out = merge(out, _normalise({path[0]: value}, f"--set {text}"))
            continue
        section, rest = path[0], path[1:]
        known = _known_sections() - {"out"}
        if section not in known:
            raise ConfigError(
                f"--set {text}: unknown section '{section}'{closest(section, known)}; "
                f"allowed: {', '.join(sorted(TOP_LEVEL - {'out'}))} and a method's further network roles"
            )
        if isinstance(out.get(section), str) and _is_named(section):
            out[section] = {"name": out[section]}
        node = out.setdefault(section, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {text}: '{section}' is not a mapping")
        for part in rest[:-1]:
            if isinstance(node.get(part), str):
                # a name that takes parameters, e.g. method.objective: fgan_kl, refined by
                # --set method.objective.generator=alternative
                node[part] = {"name": node[part]}
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {text}: '{part}' is not a mapping")
        node[rest[-1]] = value
    return out


# ----------------------------------------------------------------------------------- typed config

def _fixed(section: str, cls, raw: Dict[str, Any]):
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in raw.items():
        if key not in hints:
            raise ConfigError(
                f"{section}.{key}: unknown key{closest(key, names)}; allowed: {', '.join(names)}"
            )
        values[key] = coerce(value, hints[key], f"{section}.{key}")
    obj = cls(**values)
    _check_ranges(section, obj)
    return obj


_POSITIVE = {"train": ("steps", "batch_size", "log_every", "n_samples", "keep_checkpoints"),
             "optim": ("lr_g", "lr_d"), "eval": ("n",)}
_NON_NEGATIVE = {"train": ("sample_every", "checkpoint_every", "time_limit"), "runtime": ("threads",),
                 "optim": ("weight_decay",), "eval": ("every",)}


def _check_ranges(section: str, obj) -> None:
    for key in _POSITIVE.get(section, ()):
        if getattr(obj, key) <= 0:
            raise ConfigError(f"{section}.{key} must be positive, got {getattr(obj, key)}")
    for key in _NON_NEGATIVE.get(section, ()):
        if not getattr(obj, key) >= 0:  # NaN fails too
            raise ConfigError(f"{section}.{key} must not be negative, got {getattr(obj, key)}")
    if section == "optim":
        for key in ("beta1", "beta2"):
            if not 0.0 <= getattr(obj, key) < 1.0:
                raise ConfigError(f"optim.{key} must be in [0, 1), got {getattr(obj, key)}")
    if section == "optim" and not 0.0 <= obj.decay_start < 1.0:
        raise ConfigError(f"optim.decay_start must be in [0, 1) (the share of the steps before the linear decay "
                          f"begins), got {obj.decay_start}")
    if section == "optim":
        for role, value in obj.lr.items():
            if not value > 0:
                raise ConfigError(f"optim.lr.{role} must be positive, got {value}")
    if section == "train" and not 0.0 <= obj.ema_decay < 1.0:
        raise ConfigError(f"train.ema_decay must be in [0, 1), got {obj.ema_decay}")


def build_config(raw: Dict[str, Any], origin: str = "config") -> Config:
    """Validate a raw dict (defaults already merged or not) into a :class:`Config`.

    Named sections are checked against their registries, with every default filled in,
    except network roles named ``auto``, which are resolved once the data is known (see
    :func:`gankit.methods.base.resolve_networks`).
    """
    from . import registries  # late import: registries import the modules that register

    raw = merge(default_raw(), _normalise(raw, origin))
    kwargs: Dict[str, Any] = {}
    for section, cls in FIXED_SECTIONS.items():
        kwargs[section] = _fixed(section, cls, raw.get(section, {}))
    for section in ("method", "data"):
        value = dict(raw[section])
        name = _name_of(section, value)
        value, options = _data_options(value, section) if section == "data" else (value, {})
        kwargs[section] = {"name": name, **registries.for_section(section).resolve_params(name, value, section),
                           **options}
    method = kwargs["method"]["name"]
    from .methods.base import contract_of

    own = dict(contract_of(method).optim)
    if own:     # the method's defaults for the optim keys this config leaves unset
        kwargs["optim"] = _fixed("optim", OptimConfig, {**own, **raw.get("optim", {})})
    roles, sources = _method_sections(method, raw)
    for source in sources:
        section = source_section(source)
        data = kwargs["data"]
        if section not in raw and source == "b" and data["name"] == "unpaired" and data["domain"] == "all":
            # two folders in one section: the first is the data, the second the source b (data_b)
            raw[section] = {**data, "domain": "b"}
            data["domain"] = "a"
        if section not in raw:
            raise ConfigError(f"method {method} trains on a further data source '{source}' beside `data`; give it "
                              f"as section {section} (e.g. --set {section}.name=fashion_mnist, or "
                              f"{section}: {{name: folder, root: DIR}} in the config; two folders: --data unpaired "
                              f"--set data.a=DIR_A data.b=DIR_B)")
        value = dict(raw[section])
        name = _name_of(section, value)
        value, options = _data_options(value, section)
        sources[source] = {"name": name, **registries.for_section("data").resolve_params(name, value, section),
                           **options}
    networks = {}
    for role in list(NAMED_SECTIONS[2:]) + [r for r in roles if r not in NAMED_SECTIONS]:
        value = dict(raw.get(role) or {"name": "auto"})
        name = _name_of(role, value)
        registry = registries.network_registry(roles.get(role, role))
        if name == "auto":
            # parameters are validated against the concrete network once it is chosen;
            # the keys must still exist in at least one network.
            known = set()
            for n in registry.names():
                known |= set(registry.entry(n).params)
            for key in value:
                if key not in known:
                    raise ConfigError(f"{role}.{key}: not a parameter of any {registry.kind}"
                                      f"{closest(key, known)}")
            spec = {"name": "auto", **value}
        else:
            spec = {"name": name, **registry.resolve_params(name, value, role)}
        if role in NAMED_SECTIONS:
            kwargs[role] = spec
        else:
            networks[role] = spec
    out = raw.get("out")
    if out is not None and not isinstance(out, str):
        raise ConfigError(f"out: expected a directory path, got {out!r}")
    _check_roles(method, kwargs["optim"])
    return Config(out=out, networks=networks, sources=sources, **kwargs)


def _data_options(value: Dict[str, Any], section: str) -> tuple:
    """A data section's parameters without the options that every data set takes (``pairs``:
    see :mod:`gankit.data.pairs`; ``half``: see :mod:`gankit.data.domains`; ``per_class``: see
    :mod:`gankit.data.subset`), and those
    options, validated; ``pairs: none`` and ``half: all`` (the defaults) are left out, so
    configs without them read as before."""
    from .data.domains import half_option
    from .data.pairs import split_data_options
    from .data.subset import per_class_option

    value, pairs = split_data_options(value, section)
    half = half_option(value.pop("half"), section) if "half" in value else "all"
    per_class = per_class_option(value.pop("per_class"), section) if "per_class" in value else 0
    return value, {**({"pairs": pairs} if pairs not in (None, "none") else {}),
                   **({"half": half} if half != "all" else {}),
                   **({"per_class": per_class} if per_class else {})}


def _name_of(section: str, value: Dict[str, Any]) -> str:
    name = value.pop("name", DEFAULT_NAMES.get(section, "auto"))
    if not isinstance(name, str):
        raise ConfigError(f"{section}.name must be a string, got {name!r}")
    return name


def _method_sections(method: str, raw: Dict[str, Any]) -> tuple:
    """The method's network roles (role -> network kind) and further data sources (source ->
    None, filled by the caller); a section of a role or source it does not declare is an
    error, except generator/discriminator left at their defaults."""
    from .methods.base import contract_of

    contract = contract_of(method)
    roles = dict(contract.roles)
    sources = {s: None for s in contract.sources}
    allowed = set(roles) | {source_section(s) for s in sources}
    for key, value in raw.items():
        if key in FIXED_SECTIONS or key in ("method", "data", "out") or key in allowed:
            continue
        if key in NAMED_SECTIONS and value == {"name": "auto"}:
            continue
        if key.startswith("data_"):
            has = ", ".join(source_section(s) for s in sources) or "none"
            raise ConfigError(f"section '{key}': method {method} trains on no further data source "
                              f"'{key[5:]}'{closest(key, allowed)}; its further sources: {has}")
        raise ConfigError(f"section '{key}': method {method} has no network role '{key}'{closest(key, roles)}; "
                          f"its roles: {', '.join(roles)}")
    return roles, sources


def _check_roles(method: str, optim: "OptimConfig") -> None:
    """``optim.lr`` may name only roles the method declares."""
    if not optim.lr:
        return
    from .methods.base import contract_of

    roles = list(contract_of(method).roles)
    for role in optim.lr:
        if role not in roles:
            raise ConfigError(f"optim.lr.{role}: method {method} has no network role '{role}'{closest(role, roles)}; "
                              f"its roles: {', '.join(roles)}")


def default_raw() -> Dict[str, Any]:
    return {section: {"name": name} for section, name in DEFAULT_NAMES.items()}


def to_dict(cfg: Config) -> Dict[str, Any]:
    out = {}
    for section in NAMED_SECTIONS:
        out[section] = dict(getattr(cfg, section))
    for role, spec in cfg.networks.items():
        out[role] = dict(spec)
    for source, spec in cfg.sources.items():
        out[source_section(source)] = dict(spec)
    for section in FIXED_SECTIONS:
        out[section] = dataclasses.asdict(getattr(cfg, section))
    out["out"] = cfg.out
    return _plain(out)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def dump_yaml(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)


def diff(a: Dict[str, Any], b: Dict[str, Any], prefix: str = "") -> List[str]:
    """Dotted keys whose values differ between two plain config dicts."""
    keys = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        name = f"{prefix}{key}"
        if isinstance(va, dict) and isinstance(vb, dict):
            keys += diff(va, vb, name + ".")
        elif va != vb:
            keys.append(name)
    return keys
