"""Settings: each backend owns one frozen config class, and a run is one ``RunConfig``.

A setting is a dataclass field made with ``setting(default, help, ...)``: its metadata
carries the help text, the command-line flag, the allowed choices or range, and whether
it may change when a run is resumed. Everything else is derived from it, so adding a
setting is one edit in one class:

- ``validate`` checks every field of a config against its metadata (types, ranges,
  choices, no NaN), so every config class validates itself in ``__post_init__``;
- ``prover.cli`` generates its options from the fields (grouped by concern in ``--help``);
- ``RunConfig.to_dict``/``from_dict`` write and read ``config.json`` and ``--config FILE``;
- ``resume_conflicts`` compares flags given with ``--resume`` against the saved run.

    @dataclass(frozen=True)
    class SyntheticConfig(Settings):
        branching: int = setting(4, "Distinct child states per state.", min=1)

A ``RunConfig`` holds the environment and the policy as ``BackendSpec`` (a registered
name plus that backend's own config), the search algorithm and budget, the theorem set,
the safety filter and how the run is spread over Ray.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import typing
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from search import ALGORITHMS, SCORERS, SearchLimits

from prover.errors import ProverError, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib
from prover.registry import ENVS, POLICIES, Backend, resolve_config_class

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
    resumable: bool = False,
    metavar: str | None = None,
) -> Any:
    """A config field with its command-line metadata.

    ``flag`` defaults to ``--`` + the field name with a unit suffix ``_s`` dropped and
    ``_`` as ``-`` (``latency_s`` -> ``--latency``). ``resumable`` settings (how a run is
    spread over machines) may change when a run is resumed; the others may not.
    """
    metadata = {"help": help, "flag": flag, "min": min, "max": max, "min_open": min_open,
                "resumable": resumable, "metavar": metavar,
                "choices": tuple(choices) if choices is not None else None}
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


def _coerce(cls: type, f: dataclasses.Field, value: Any) -> Any:
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


def validate(config: Any) -> None:
    """Check every field of ``config`` against its metadata; a ConfigError names the first
    bad one. Config classes call it from ``__post_init__`` (through ``Settings``)."""
    cls = type(config)
    for f in fields(config):
        value = getattr(config, f.name)
        coerced = _coerce(cls, f, value)
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
            if high is not None and value > high:
                raise ConfigError(f"{where} must be at most {high:g}, not {value:g}")
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
    """A JSON-ready dict of a config's fields (tuples as lists)."""
    return {f.name: (list(v) if isinstance(v := getattr(config, f.name), tuple) else v) for f in fields(config)}


def from_dict(cls: type, data: Any, where: str, strict: bool = True) -> Any:
    """``cls(**data)``, checked: an unknown key (when ``strict``) or a bad value is a
    ConfigError that names ``where`` (e.g. "the environment settings in run.json")."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table of settings, not {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = [key for key in data if key not in known]
    if unknown and strict:
        raise ConfigError(f"{where}: unknown setting '{unknown[0]}'{did_you_mean(unknown[0], known)}")
    values = {key: _coerce(cls, known[key], value) for key, value in data.items() if key in known}
    try:
        config = cls(**values)
        if not isinstance(config, Settings):
            validate(config)  # a class of the engine (SearchLimits): the same checks (finite numbers...)
        return config
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


# ---- the parts of a run ---------------------------------------------------------------------


@dataclass(frozen=True)
class BackendSpec:
    """A registered backend (``kind`` "environment" or "policy") and its own settings."""

    kind: str
    name: str
    options: Any

    @classmethod
    def default(cls, kind: str, name: str) -> "BackendSpec":
        return cls(kind, name, resolve_config_class(kind, name)())

    def to_dict(self) -> dict:
        return {"name": self.name, **to_dict(self.options)}

    @classmethod
    def from_dict(cls, kind: str, data: Any, where: str, strict: bool = True) -> "BackendSpec":
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ConfigError(f"{where} must name the {kind} ('name')")
        config_class = resolve_config_class(kind, data["name"])
        options = {key: value for key, value in data.items() if key != "name"}
        return cls(kind, data["name"], from_dict(config_class, options, where, strict))


@dataclass(frozen=True)
class SearchConfig(Settings):
    """Which search algorithm, and how it orders open states (with a value model, if any)."""

    algorithm: str = setting("best_first", "Search algorithm.", choices=ALGORITHMS)
    scorer: str = setting(
        "cumulative",
        "Priority of open states: cumulative (sum of tactic log-probs), length_normalised "
        "(that sum divided by the depth) or value_mixed (that sum plus --value-weight x the --critic's value).",
        choices=SCORERS,
    )
    critic: str | None = setting(
        None, "A value model (a directory written by prover train-critic) that scores every new state; "
        "--scorer value_mixed uses its scores.", metavar="DIR",
    )
    value_weight: float = setting(
        1.0, "value_mixed: weight of the critic's value (the log-probability that a state is provable).", min=0
    )


BENCHMARKS = ("synthetic", "replay", "minif2f")


@dataclass(frozen=True)
class TheoremSetConfig(Settings):
    """Which theorems: a named benchmark (and split), or a file listing them."""

    benchmark: str | None = setting(
        None, "Theorem set [default: the environment's own].", choices=BENCHMARKS
    )
    split: str = setting("valid", "miniF2F split.", choices=("valid", "test"))
    theorems_file: str | None = setting(
        None, "A file listing theorems, one name (or JSON object) per line.", metavar="FILE"
    )
    num_theorems: int = setting(20, "Size of the synthetic theorem set.", min=1)
    limit: int | None = setting(None, "Prove only the first N theorems.", min=1, metavar="N")
    only: str | None = setting(
        None, "With a run's results.jsonl as --theorems-file: only the theorems whose record has this outcome "
        "(unproved: any but proved), to retry a run's failures.",
        choices=("failed", "open", "error", "rejected", "unproved"),
    )


@dataclass(frozen=True)
class SafetyConfig(Settings):
    """What the tactic filter lets through (see ``prover.envs.safety``)."""

    allow_native_decide: bool = setting(
        False,
        "Let tactics use native_decide and other compiler-trusting tactics (results are then "
        "not comparable with kernel-checked ones).",
    )


@dataclass(frozen=True)
class DistributedConfig(Settings):
    """How a batch run is spread over Ray; these settings may change on ``--resume``.

    ``num_workers=0`` means no Ray at all (the in-process executor). ``None`` fields are
    decided from the cluster when the run starts: one worker per ``worker_cpus`` CPUs (of
    the nodes ``worker_node_label`` picks), a GPU for each policy replica where the cluster
    has one, and one replica per ``policy_gpus`` GPUs.
    """

    ray_address: str | None = setting(
        None, "Join a running Ray cluster: auto or HOST:PORT [default: a local Ray on this machine].",
        resumable=True, metavar="ADDRESS",
    )
    num_workers: int | None = setting(
        None, "Ray search workers; 0 runs everything in this process [default: one per --worker-cpus "
        "of the cluster's CPUs].", min=0, resumable=True,
    )
    searches_per_worker: int = setting(4, "Concurrent searches (threads) in each worker.", min=1, resumable=True)
    worker_cpus: float = setting(1.0, "CPUs Ray reserves for each search worker.", min=0, resumable=True)
    lean_memory_gb: float = setting(
        8.0, "Lean environments: memory (GB) Ray reserves for each search; a node runs at most "
        "min(CPUs, its memory / this) Lean searches, and without --num-workers that many, one per worker.",
        min=0, min_open=True, resumable=True,
    )
    policy_gpus: float | None = setting(
        None, "GPUs Ray reserves for each policy replica, all on one node [default: where the cluster has "
        "GPUs, 1, or --tensor-parallel-size for vllm].",
        min=0, resumable=True,
    )
    policy_replicas: int | None = setting(
        None, "Policy servers, each with its own copy of the model; searches go to the least-loaded "
        "[default: one per --policy-gpus GPUs of the cluster, at least 1].",
        min=1, resumable=True, metavar="N",
    )
    worker_node_label: str | None = setting(
        None, "Place search workers only on Ray nodes with this label (started with `ray start --labels "
        "KEY=VALUE`), e.g. to keep Lean off the GPU nodes.",
        resumable=True, metavar="KEY=VALUE",
    )
    max_batch_size: int = setting(32, "Policy server: most states in one batch.", min=1, resumable=True)
    max_wait_ms: float = setting(
        5.0, "Policy server: how long a batch waits for more requests once one arrived.", min=0, resumable=True
    )
    batch_idle_ms: float | None = setting(
        None, "Policy server: also close a batch once requests stop arriving for this long.",
        min=0, min_open=True, resumable=True,
    )
    max_retries: int = setting(
        2, "Extra attempts for a theorem whose worker died, before it is recorded as an error.",
        min=0, resumable=True,
    )
    theorem_timeout_s: float | None = setting(
        None, "Kill a worker whose search runs this long (a hung Lean) [default: 2 x --time-limit + 60].",
        min=0, min_open=True, resumable=True,
    )
    policy_restart_wait_s: float = setting(
        300.0, "How long a search waits for a policy replica to answer (all of them lost or restarting), "
        "or the run for room to place a worker, before the run stops.",
        min=0, resumable=True,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.worker_node_label is not None:
            key, _, value = self.worker_node_label.partition("=")
            if not key.strip() or not value.strip():
                raise ConfigError(
                    f"--worker-node-label must be KEY=VALUE (a label given to `ray start --labels`), "
                    f"not {self.worker_node_label!r}"
                )

    def worker_selector(self) -> dict[str, str] | None:
        """``worker_node_label`` as a Ray label selector: ``{KEY: VALUE}``, or None."""
        if self.worker_node_label is None:
            return None
        key, _, value = self.worker_node_label.partition("=")
        return {key.strip(): value.strip()}


# The sections of a RunConfig that are plain config classes: (attribute, class, --help group).
SECTIONS: tuple[tuple[str, type, str], ...] = (
    ("theorems", TheoremSetConfig, "Theorems"),
    ("limits", SearchLimits, "Search"),
    ("search", SearchConfig, "Search"),
    ("safety", SafetyConfig, "Safety"),
    ("distributed", DistributedConfig, "Ray (prove-split)"),
)


@dataclass(frozen=True)
class RunConfig:
    """Everything a run was asked to do, saved as the run directory's config.json."""

    env: BackendSpec = field(default_factory=lambda: BackendSpec.default("environment", "synthetic"))
    policy: BackendSpec = field(default_factory=lambda: BackendSpec.default("policy", "fixed"))
    theorems: TheoremSetConfig = field(default_factory=TheoremSetConfig)
    limits: SearchLimits = field(default_factory=SearchLimits)
    search: SearchConfig = field(default_factory=SearchConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)

    def to_dict(self) -> dict:
        data: dict[str, Any] = {"env": self.env.to_dict(), "policy": self.policy.to_dict()}
        for name, _, _ in SECTIONS:
            data[name] = to_dict(getattr(self, name))
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str = "the run config", strict: bool = True) -> "RunConfig":
        """Read a config written by ``to_dict`` (or typed by a user); missing sections take
        their defaults. ``strict=False`` skips unknown keys (configs of older versions)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must be a JSON/TOML table, not {type(data).__name__}")
        # "provenance": what produced a saved run (prover.run.provenance), not a setting.
        data = {key: value for key, value in data.items() if key != "provenance"}
        known = ["env", "policy", *(name for name, _, _ in SECTIONS)]  # a list: the same order every time
        unknown = [key for key in data if key not in known]
        if unknown and strict:
            raise ConfigError(f"{where}: unknown section '{unknown[0]}'{_section_hint(unknown[0], data, known)}")
        values: dict[str, Any] = {}
        for kind, key in (("environment", "env"), ("policy", "policy")):
            if key in data:
                values[key] = BackendSpec.from_dict(kind, data[key], f"{where} [{key}]", strict)
        for name, section_class, _ in SECTIONS:
            if data.get(name) is not None:
                values[name] = from_dict(section_class, data[name], f"{where} [{name}]", strict)
        return cls(**values)


def _section_hint(key: str, data: dict, known: list[str]) -> str:
    """The end of an "unknown section" sentence: the sectioned form, when ``key`` is a
    setting (a flat ``{"max_expansions": 5}``), else "did you mean"."""
    owners = [name for name, section_class, _ in SECTIONS if key in {f.name for f in fields(section_class)}]
    if not owners:
        owners = [section for section, kind, table in (("env", "environment", ENVS), ("policy", "policy", POLICIES))
                  if any(key in {f.name for f in fields(resolve_config_class(kind, name))} for name in table)]
    if not owners:
        return did_you_mean(key, known)
    example = json.dumps({owners[0]: {key: data[key]}}, ensure_ascii=False)
    if len(example) > 120:
        example = json.dumps({owners[0]: {key: "..."}})
    return (f"; settings go in sections, so '{key}' is written {example}"
            + (" (beside the backend's 'name')" if owners[0] in ("env", "policy") else ""))


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
        raise ConfigError(f"config file {path} is not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"config file {path} is nested too deeply to be a config (a settings file has "
                          "sections of plain values)") from None


# ---- flags ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a flag's value goes: a section of RunConfig (or a backend's options) and a field."""

    section: str  # "env", "policy", or one of SECTIONS
    backend: str | None  # the backend name for "env"/"policy"
    field: dataclasses.Field
    owner: type


def flag_targets(include_hidden: bool = False) -> dict[str, list[Target]]:
    """Every flag of every section and registered backend, with the fields it sets.

    A flag shared by several backends (``--model`` of hf and vllm) sets the field of
    whichever of them the run uses.
    """
    targets: dict[str, list[Target]] = {}
    for name, section_class, _ in SECTIONS:
        for f in fields(section_class):
            targets.setdefault(flag_of(f), []).append(Target(name, None, f, section_class))
    for section, kind, table in (("env", "environment", ENVS), ("policy", "policy", POLICIES)):
        for backend in table.values():
            if backend.hidden and not include_hidden:
                continue
            config_class = resolve_config_class(kind, backend.name)
            for f in fields(config_class):
                targets.setdefault(flag_of(f), []).append(Target(section, backend.name, f, config_class))
    return targets


def apply_flags(config: RunConfig, given: dict[str, Any]) -> RunConfig:
    """``config`` with the values of the given flags (flag -> value) set.

    A flag that none of the run's backends or sections takes is a ConfigError naming
    the backends that do take it (``--branching`` with ``--env replay``).
    """
    targets = flag_targets(include_hidden=True)
    changes: dict[str, dict[str, Any]] = {}
    for flag, value in given.items():
        applied = False
        for target in targets.get(flag, []):
            spec = getattr(config, target.section) if target.backend else None
            if target.backend is not None and spec.name != target.backend:
                continue
            changes.setdefault(target.section, {})[target.field.name] = value
            applied = True
        if not applied:
            owners = sorted({f"the {t.backend} {'environment' if t.section == 'env' else 'policy'}"
                             for t in targets.get(flag, []) if t.backend})
            raise ConfigError(
                f"{flag} is a setting of {' and '.join(owners) or 'no backend'}, which this run does not use"
            )
    updated = {}
    for section, values in changes.items():
        current = getattr(config, section)
        if isinstance(current, BackendSpec):
            options = from_dict(type(current.options), {**to_dict(current.options), **values},
                                f"the {current.name} {current.kind} settings")
            updated[section] = BackendSpec(current.kind, current.name, options)
        else:
            updated[section] = from_dict(type(current), {**to_dict(current), **values}, f"the {section} settings")
    return dataclasses.replace(config, **updated)


def resume_conflicts(saved: RunConfig, given: dict[str, Any], names: dict[str, str | None]) -> list[str]:
    """What the flags given with ``--resume`` would change that a resumed run must keep.

    ``names`` holds ``--env``/``--policy`` as given (None when not given). Returns one
    phrase per conflict; settings marked ``resumable`` are never conflicts.
    """
    conflicts = []
    for flag, spec in (("--env", saved.env), ("--policy", saved.policy)):
        if names.get(flag) is not None and names[flag] != spec.name:
            conflicts.append(f"{flag} {names[flag]} (the run used {spec.name})")
    targets = flag_targets(include_hidden=True)
    for flag, value in given.items():
        for target in targets.get(flag, []):
            current = getattr(saved, target.section)
            if target.backend is not None:
                if current.name != target.backend:
                    continue
                current = current.options
            if target.field.metadata.get("resumable"):
                continue
            saved_value = getattr(current, target.field.name)
            if _coerce_quietly(target.owner, target.field, value) != saved_value:
                conflicts.append(f"{flag} {_show(value)} (the run used {_show(saved_value)})")
            break
    return conflicts


def _coerce_quietly(cls: type, f: dataclasses.Field, value: Any) -> Any:
    try:
        return _coerce(cls, f, value)
    except ConfigError:
        return value


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return " ".join(map(str, value)) or "(none)"
    return "(none)" if value is None else str(value)


def backend_choices(kind: str) -> list[str]:
    """The names of the user-facing backends of ``kind``."""
    table: dict[str, Backend] = ENVS if kind == "environment" else POLICIES
    return [name for name, backend in table.items() if not backend.hidden]
