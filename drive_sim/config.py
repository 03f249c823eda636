"""Typed, validated configuration: nested frozen dataclasses built from plain dicts.

``build(cls, data)`` deep-merges ``data`` over the dataclass defaults and rejects unknown keys
with the dotted path of the bad key and the allowed keys (HighwayEnv's shallow ``dict.update``
dropped nested defaults, #723; MetaDrive rejects unknown keys, which is the behaviour copied here).
Field validation lives in each dataclass's ``__post_init__`` and raises ``ConfigError``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value or key is not allowed. The message names the field."""


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return build(tp, value, path=path)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _convert(non_none[0], value, path)
        return value
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise ConfigError(f"{path}: expected {len(args)} values, got {len(value)}")
        return tuple(_convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=False)))
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not allowed; allowed: {', '.join(map(repr, args))}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ConfigError(f"{path}: expected a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {_short(value)}")
        return value
    if origin is list or tp is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {_short(value)}")
        if args:
            return [_convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def build(cls: type[T], data: Mapping[str, Any] | None = None, *, path: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, filling missing fields with defaults.

    Args:
        cls: a (frozen) dataclass type.
        data: overrides; nested mappings build nested dataclasses.
        path: dotted prefix used in error messages.

    Raises:
        ConfigError: on an unknown key (naming its dotted path and the allowed keys) or a value
            of the wrong type.
    """
    data = dict(data or {})
    hints = _field_types(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    unknown = [k for k in data if k not in names]
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise ConfigError(f"unknown config key '{where}'; allowed: {', '.join(names)}")
    required = [
        f.name for f in dataclasses.fields(cls) if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]  # type: ignore[arg-type]
    absent = [k for k in required if k not in data]
    if absent:
        where = f"{path}.{absent[0]}" if path else absent[0]
        raise ConfigError(f"{where}: missing (required)")
    kwargs = {k: _convert(hints[k], v, f"{path}.{k}" if path else k) for k, v in data.items()}
    return cls(**kwargs)


def merge(base: T, overrides: Mapping[str, Any] | None, *, path: str = "") -> T:
    """Deep-merge ``overrides`` into the dataclass instance ``base`` and return a new instance."""
    if not overrides:
        return base
    cls = type(base)
    names = [f.name for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    unknown = [k for k in overrides if k not in names]
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise ConfigError(f"unknown config key '{where}'; allowed: {', '.join(names)}")
    hints = _field_types(cls)
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        sub = f"{path}.{key}" if path else key
        current = getattr(base, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            changes[key] = merge(current, value, path=sub)
        else:
            changes[key] = _convert(hints[key], value, sub)
    return dataclasses.replace(base, **changes)  # type: ignore[type-var]


def to_dict(obj: Any) -> Any:
    """Plain-data (JSON/YAML-ready) copy of a dataclass tree; tuples become lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def require(condition: bool, field: str, message: str) -> None:
    """Raise ``ConfigError("<field>: <message>")`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"{field}: {message}")
