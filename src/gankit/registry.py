"""Registries: name -> factory for every pluggable part.

A factory's parameters split in two by Python's own syntax:

* positional-only parameters (before ``/``) are *context* the engine supplies
  (for example the data shape a network must fit), and
* every other parameter is a *config parameter*: it may be set from YAML or
  ``--set`` and is validated against the annotation and default.

So the signature of a factory is its whole configuration schema, and
``gankit list`` can print it.

A parameter annotated with :meth:`Registry.spec_type` picks an entry of another registry
(the ``gan`` method's ``objective``, for one): its value is that entry's name, or a mapping
``{name: NAME, PARAM: VALUE, ...}`` holding the entry's own parameters, validated against
its factory's signature like a section of its own.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
from typing import Any, Callable, Dict, List, Literal, Optional, Union, get_args, get_origin, get_type_hints

from .errors import ConfigError

__all__ = ["Registry", "Param", "EntrySpec", "coerce", "closest"]


def closest(word: str, choices) -> str:
    """A ' (did you mean X?)' suffix, or ''."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


class EntrySpec:
    """Base of the annotation types :meth:`Registry.spec_type` makes: the value names an entry
    of :attr:`registry`, alone or as a mapping with the entry's parameters."""

    registry: "Registry"


def _is_spec(tp) -> bool:
    return isinstance(tp, type) and issubclass(tp, EntrySpec) and hasattr(tp, "registry")


def _type_name(tp) -> str:
    if _is_spec(tp):
        return f"{tp.registry.kind} NAME or {{name: NAME, PARAM: VALUE}} (see {tp.registry.kind}s)"
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin is Union:
        args = [a for a in get_args(tp) if a is not type(None)]
        inner = " or ".join(_type_name(a) for a in args)
        return inner + " or null" if len(args) < len(get_args(tp)) else inner
    if origin in (list, tuple):
        args = get_args(tp)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return f"list of {_type_name(args[0])}"
        if origin is tuple:
            return f"list of {len(args)} ({', '.join(_type_name(a) for a in args)})"
        return f"list of {_type_name(args[0])}" if args else "list"
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp, key: str) -> Any:
    """Check ``value`` against type ``tp`` and convert where it is lossless.

    Raises :class:`ConfigError` naming ``key`` and the expected type.
    """
    def bad() -> ConfigError:
        return ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")

    if tp is Any or tp is inspect.Parameter.empty:
        return value
    if _is_spec(tp):
        return tp.registry.resolve_spec(value, key)
    origin = get_origin(tp)
    if origin is Literal:
        if isinstance(value, bool) and {"on", "off"} <= set(get_args(tp)):
            value = "on" if value else "off"   # YAML 1.1 reads a bare on/off as a boolean
        if value not in get_args(tp):
            raise ConfigError(
                f"{key}: {value!r} is not allowed; choose one of "
                + ", ".join(repr(a) for a in get_args(tp))
                + (closest(str(value), [str(a) for a in get_args(tp)]) if isinstance(value, str) else "")
            )
        return value
    if origin is Union:
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise bad()
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise bad()
    if origin is dict:
        if not isinstance(value, dict):
            raise bad()
        k_type, v_type = (get_args(tp) + (Any, Any))[:2]
        return {coerce(k, k_type, key): coerce(v, v_type, f"{key}.{k}") for k, v in value.items()}
    if origin in (list, tuple):
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise bad()
        args = get_args(tp)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {_type_name(tp)}, got {len(value)} items: {value!r}")
            return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        out = [coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad()
    if tp is int:
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise bad()
    if tp is float:
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, (int, float)):
            return float(value)
        raise bad()
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad()
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise bad()


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    type: Any
    default: Any
    help: str = ""

    @property
    def type_name(self) -> str:
        return _type_name(self.type)


@dataclasses.dataclass
class Entry:
    name: str
    factory: Callable
    params: Dict[str, Param]
    help: str


class Registry:
    """A named collection of factories of one kind (methods, data sets, ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: Dict[str, Entry] = {}
        self._spec_type: Optional[type] = None

    def register(self, name: str, help: Optional[str] = None):
        def decorator(factory: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            doc = help if help is not None else (inspect.getdoc(factory) or "").split("\n")[0]
            self._entries[name] = Entry(name, factory, _config_params(factory), doc)
            return factory

        return decorator

    def names(self) -> List[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def entry(self, name: str, key: Optional[str] = None) -> Entry:
        if name not in self._entries:
            where = f"{key}: " if key else ""
            raise ConfigError(
                f"{where}unknown {self.kind} '{name}'{closest(str(name), self._entries)}; "
                f"registered: {', '.join(self.names())}"
            )
        return self._entries[name]

    def get(self, name: str, key: Optional[str] = None) -> Callable:
        return self.entry(name, key).factory

    def resolve_params(self, name: str, params: Dict[str, Any], section: str) -> Dict[str, Any]:
        """Validate ``params`` for entry ``name`` and fill in defaults."""
        entry = self.entry(name, f"{section}.name")
        out = {}
        for key, value in params.items():
            if key in entry.params and _is_spec(entry.params[key].type) and isinstance(value, dict) \
                    and "name" not in value and isinstance(entry.params[key].default, str):
                # {PARAM: VALUE} alone (e.g. from --set method.objective.generator=...) refines the default entry
                value = {"name": entry.params[key].default, **value}
            if key not in entry.params:
                allowed = ", ".join(entry.params) or "none"
                raise ConfigError(
                    f"{section}.{key}: unknown parameter of {self.kind} '{name}'"
                    f"{closest(key, entry.params)}; allowed: {allowed}"
                )
            out[key] = coerce(value, entry.params[key].type, f"{section}.{key}")
        for key, param in entry.params.items():
            if key not in out:
                if param.default is inspect.Parameter.empty:
                    raise ConfigError(f"{section}.{key} is required by {self.kind} '{name}' ({param.type_name})")
                out[key] = param.default
        return out

    def build(self, name: str, params: Dict[str, Any], *context, section: str = ""):
        params = self.resolve_params(name, params, section or self.kind)
        return self._entries[name].factory(*context, **params)

    # ------------------------------------------------------------------ entries as parameters
    def spec_type(self) -> type:
        """The annotation for a parameter of another factory that picks one of these entries:
        its value is a name or a mapping ``{name: NAME, PARAM: VALUE, ...}`` (see :meth:`resolve_spec`)."""
        if self._spec_type is None:
            self._spec_type = type(f"{self.kind.title().replace(' ', '')}Spec", (EntrySpec,), {"registry": self})
        return self._spec_type

    def resolve_spec(self, value: Any, key: str) -> Union[str, Dict[str, Any]]:
        """Validate a name or ``{name: NAME, PARAM: VALUE, ...}`` naming one of these entries, with
        the entry's parameters checked against its factory's signature and defaults filled in.

        Returns the full mapping, or the plain name for an entry without parameters (so that
        configs written before the entry's registry took parameters read the same).
        """
        if isinstance(value, str):
            self.entry(value, key)
            name, params = value, {}
        elif isinstance(value, dict):
            params = dict(value)
            name = params.pop("name", None)
            if name is None:
                raise ConfigError(f"{key}.name is missing: name the {self.kind}; registered: {', '.join(self.names())}")
            if not isinstance(name, str):
                raise ConfigError(f"{key}.name must be a string, got {name!r}")
        else:
            raise ConfigError(f"{key}: expected the name of {_a(self.kind)} or a mapping {{name: NAME, PARAM: VALUE}}, "
                              f"got {value!r}; registered: {', '.join(self.names())}")
        resolved = self.resolve_params(name, params, key)
        return {"name": name, **resolved} if resolved else name

    def build_spec(self, value: Any, *context, key: str = ""):
        """Build the entry that a name or ``{name: NAME, PARAM: VALUE, ...}`` describes."""
        spec = self.resolve_spec(value, key or self.kind)
        if isinstance(spec, str):
            return self._entries[spec].factory(*context)
        params = dict(spec)
        return self._entries[params.pop("name")].factory(*context, **params)


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _config_params(factory: Callable) -> Dict[str, Param]:
    target = factory.__init__ if inspect.isclass(factory) else factory
    sig = inspect.signature(target)
    try:
        hints = get_type_hints(target)
    except Exception:  # pragma: no cover - annotations that cannot be evaluated
        hints = {}
    params = {}
    for p in sig.parameters.values():
        if p.name == "self" or p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        params[p.name] = Param(p.name, hints.get(p.name, Any), p.default)
    return params

