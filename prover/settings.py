"""The settings framework: a setting is a dataclass field with its command-line metadata.

A setting is a field made with ``setting(default, help, ...)``: its metadata carries the
help text, the command-line flag, the allowed choices or range, and whether it may change
when a run is resumed. Everything else is derived from it, so adding a setting is one edit
in one class:

- ``validate`` checks every field of a config against its metadata (types, ranges,
  choices, no NaN), so every ``Settings`` class validates itself in ``__post_init__``;
- ``prover.cli`` generates its options from the fields (grouped by concern in ``--help``);
- ``to_dict``/``from_dict`` write and read ``config.json`` and ``--config FILE``;
- ``prover.config`` assembles a run's config and checks a resume against the fields.

    @dataclass(frozen=True)
    class SyntheticConfig(Settings):
        branching: int = setting(4, "Distinct child states per state.", min=1)

This module sits low in the house: the backends' config classes import it, and it imports
nothing of ``prover`` but its errors, so the registry can load backend modules by name
without a loop back to the run config.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import typing
from dataclasses import field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from prover.errors import ProverError, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# The repository (or installed package's parent): default paths of settings are relative to it.
REPO_ROOT = Path(__file__).resolve().parents[1]


class ConfigError(ProverError, ValueError):
    """A setting with a value it cannot take, or a config file that cannot be read."""


# ---- one setting ----------------------------------------------------------------------------


def setting(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    choices: Iterable[str] | None = None,
    min: float | None = None,
    max: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    resumable: bool = False,
    metavar: str | None = None,
    aliases: Iterable[str] = (),
    none_word: str | None = None,
) -> Any:
    """A config field with its command-line metadata.

    ``flag`` defaults to ``--`` + the field name with a unit suffix ``_s`` dropped and
    ``_`` as ``-`` (``latency_s`` -> ``--latency``). ``resumable`` settings (how a run is
    spread over machines) may change when a run is resumed; the others may not.
    ``none_word`` is what a user types for None (``--num-workers auto``). ``aliases`` are
    old names of the field, still read from config files (and, as flags,
    from the command line) so that saved configs keep working.
    """
    metadata = {
        "help": help,
        "flag": flag,
        "min": min,
        "max": max,
        "min_open": min_open,
        "max_open": max_open,
        "resumable": resumable,
        "metavar": metavar,
        "aliases": tuple(aliases),
        "none_word": none_word,
        "choices": tuple(choices) if choices is not None else None,
    }
    return field(default=default, metadata=metadata)


def flag_of(f: dataclasses.Field) -> str:
    """The command-line flag of a field (see ``setting``)."""
    explicit = f.metadata.get("flag")
    if explicit:
        return explicit
    name = f.name[: -len("_s")] if f.name.endswith("_s") else f.name
    return "--" + name.replace("_", "-")


@lru_cache(maxsize=None)
def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotations of a dataclass's fields."""
    return typing.get_type_hints(cls)


def base_type(annotation: Any) -> tuple[Any, bool]:
    """``(type, optional)``: ``int | None`` -> ``(int, True)``; ``tuple[str, ...]`` -> ``(tuple, False)``."""
    args = typing.get_args(annotation)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return base_type(rest[0])[0], True
    origin = typing.get_origin(annotation)
    return (origin or annotation), False


def coerce(cls: type, f: dataclasses.Field, value: Any) -> Any:
    """``value`` as the field's type (JSON lists become tuples, ints may stand for floats);
    a ConfigError names the setting when it cannot be."""
    kind, optional = base_type(field_types(cls)[f.name])
    where = f"{flag_of(f)} ({f.name})"
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where} needs a value")
    if kind is tuple:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, not {value!r}")
        return tuple(str(item) for item in value)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, not {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, not {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be text, not {value!r}")
        return value
    return value


def setting_fields(cls_or_config: Any) -> list[dataclasses.Field]:
    """The fields of a config class made with ``setting`` (a plain field, such as a test's
    model shape, is not a setting: it has no flag and is not saved)."""
    return [f for f in fields(cls_or_config) if "help" in f.metadata]


def validate(config: Any) -> None:
    """Check every setting of ``config`` against its metadata; a ConfigError names the first
    bad one. Config classes call it from ``__post_init__`` (through ``Settings``)."""
    cls = type(config)
    for f in setting_fields(config):
        value = getattr(config, f.name)
        coerced = coerce(cls, f, value)
        if coerced is not value:
            object.__setattr__(config, f.name, coerced)  # frozen: set once, while validating
            value = coerced
        if value is None or isinstance(value, (bool, tuple)):
            continue
        where = f"{flag_of(f)}"
        meta = f.metadata
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number, not {value}")
        low, high = meta.get("min"), meta.get("max")
        if isinstance(value, (int, float)):
            if low is not None and (value < low or (meta.get("min_open") and value == low)):
                bound = f"greater than {low:g}" if meta.get("min_open") else f"at least {low:g}"
                raise ConfigError(f"{where} must be {bound}, not {value:g}")
            if high is not None and (value > high or (meta.get("max_open") and value == high)):
                bound = f"less than {high:g}" if meta.get("max_open") else f"at most {high:g}"
                raise ConfigError(f"{where} must be {bound}, not {value:g}")
        choices = meta.get("choices")
        if choices and isinstance(value, str) and value not in choices:
            raise ConfigError(f"{where} cannot be '{value}'{did_you_mean(value, choices)}")


class Settings:
    """Base of the config classes: validated on creation, read from and written to dicts."""

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict:
        return to_dict(self)


def to_dict(config: Any) -> dict:
    """A JSON-ready dict of a config's settings (tuples as lists)."""
    return {f.name: (list(v) if isinstance(v := getattr(config, f.name), tuple) else v) for f in setting_fields(config)}


def from_dict(cls: type, data: Any, where: str, strict: bool = True) -> Any:
    """``cls(**data)``, checked: an unknown key (when ``strict``) or a bad value is a
    ConfigError that names ``where`` (e.g. "the environment settings in run.json")."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table of settings, not {type(data).__name__}")
    known = {f.name: f for f in setting_fields(cls)}
    renamed = {alias: f.name for f in known.values() for alias in f.metadata.get("aliases") or ()}
    data = {renamed.get(key, key): value for key, value in data.items()}
    unknown = [key for key in data if key not in known]
    if unknown and strict:
        raise ConfigError(f"{where}: unknown setting '{unknown[0]}'{did_you_mean(unknown[0], known)}")
    values = {key: coerce(cls, known[key], value) for key, value in data.items() if key in known}
    try:
        config = cls(**values)
        if not isinstance(config, Settings):
            validate(config)  # a class of the engine (SearchLimits): the same checks (finite numbers...)
        return config
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_config_file(path: str | Path) -> dict:
    """The settings in a JSON or TOML file (by suffix; JSON otherwise), as a dict."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(text)
        return json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"config file {path} is not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}"
        ) from None
    except RecursionError:
        raise ConfigError(
            f"config file {path} is nested too deeply to be a config (a settings file has sections of plain values)"
        ) from None


def with_values(config: Any, values: dict[str, Any], where: str) -> Any:
    """``config`` with the settings in ``values`` (field name -> value) changed, checked."""
    if not values:
        return config
    plain = {f.name: getattr(config, f.name) for f in fields(config) if f not in setting_fields(config)}
    return dataclasses.replace(from_dict(type(config), {**to_dict(config), **values}, where), **plain)


def differences(saved: Any, current: Any, flags: dict[str, str] | None = None) -> list[str]:
    """One phrase per setting whose value differs between two configs of one class:
    ``--steps 20 (it was 150)``; ``flags`` renames a field's flag (field name -> flag)."""
    flags = flags or {}
    phrases = []
    for f in setting_fields(current):
        old, new = getattr(saved, f.name), getattr(current, f.name)
        if old != new:
            phrases.append(f"{flags.get(f.name, flag_of(f))} {show_value(new)} (it was {show_value(old)})")
    return phrases


def coerce_quietly(cls: type, f: dataclasses.Field, value: Any) -> Any:
    try:
        return coerce(cls, f, value)
    except ConfigError:
        return value


def show_value(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return " ".join(map(str, value)) or "(none)"
    return "(none)" if value is None else str(value)
