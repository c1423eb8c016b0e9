"""A run is one ``RunConfig``: its sections are ``Settings`` classes (``prover.settings``).

A ``RunConfig`` holds the environment and the policy as ``BackendSpec`` (a registered
name plus that backend's own config), the search algorithm and budget, the theorem set,
the safety filter and how the run is spread over Ray. Two functions are the only places
where a run's settings are put together:

- ``RunConfig.assemble(file, preset, flags)``: a new run, in this order: the defaults,
  then ``--config FILE``, then ``--preset``, then the flags given on the command line;
- ``RunConfig.resume(saved, flags)``: a saved run continued; only the settings marked
  ``resumable`` (how the run is spread over machines) may change, any other flag that
  would change a setting is refused, naming it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from search import ALGORITHMS, SCORERS, SearchLimits

from prover.errors import ProverError, did_you_mean
from prover.registry import ENVS, POLICIES, Backend, backend, build, resolve_config_class
from prover.settings import (
    ConfigError,
    Settings,
    coerce_quietly,
    flag_of,
    from_dict,
    load_config_file,
    setting,
    setting_fields,
    show_value,
    to_dict,
)
from prover.theorem_sets import THEOREM_SETS

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

    @property
    def capabilities(self) -> Backend:
        """The registry's entry of this backend: what it can do (``prover.registry.Backend``)."""
        return backend(self.kind, self.name)

    def build(self) -> Any:
        """The environment or policy itself (``prover.envs.make_env`` and
        ``prover.policies.make_policy`` call this)."""
        return build(self.kind, self.name, self.options)

    @classmethod
    def from_dict(cls, kind: str, data: Any, where: str, strict: bool = True) -> "BackendSpec":
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ConfigError(f"{where} must name the {kind} ('name')")
        config_class = resolve_config_class(kind, data["name"])
        options = {key: value for key, value in data.items() if key != "name"}
        return cls(kind, data["name"], from_dict(config_class, options, where, strict))


def _section_hint(key: str, data: dict, known: list[str]) -> str:
    """The end of an "unknown section" sentence: the sectioned form, when ``key`` is a
    setting (a flat ``{"max_expansions": 5}``), else "did you mean"."""
    owners = [name for name, section_class, _ in SECTIONS if key in {f.name for f in fields(section_class)}]
    if not owners:
        owners = [
            section
            for section, kind, table in (("env", "environment", ENVS), ("policy", "policy", POLICIES))
            if any(key in {f.name for f in fields(resolve_config_class(kind, name))} for name in table)
        ]
    if not owners:
        return did_you_mean(key, known)
    example = json.dumps({owners[0]: {key: data[key]}}, ensure_ascii=False)
    if len(example) > 120:
        example = json.dumps({owners[0]: {key: "..."}})
    return f"; settings go in sections, so '{key}' is written {example}" + (
        " (beside the backend's 'name')" if owners[0] in ("env", "policy") else ""
    )


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
        None,
        "A value model (a directory written by prover train-critic) that scores every new state; "
        "--scorer value_mixed uses its scores.",
        metavar="DIR",
    )
    value_weight: float = setting(
        1.0, "value_mixed: weight of the critic's value (the log-probability that a state is provable).", min=0
    )
    attempts: int = setting(
        1,
        "Independent searches of each theorem (pass@N): the rest are cancelled once one proof passes the "
        "re-check; summary.json and prover report give pass@1..pass@N.",
        min=1,
    )


@dataclass(frozen=True)
class TheoremSetConfig(Settings):
    """Which theorems: a named theorem set (and split), or a file listing them."""

    theorem_set: str | None = setting(
        None, "Theorem set [default: the environment's own].", choices=THEOREM_SETS, aliases=("benchmark",)
    )
    split: str = setting("valid", "miniF2F split.", choices=("valid", "test"))
    theorems_file: str | None = setting(
        None, "A file listing theorems, one name (or JSON object) per line.", metavar="FILE"
    )
    lean_file: str | None = setting(
        None, "A Lean file whose `sorry`s are the theorem set (needs --env repl).", metavar="FILE"
    )
    num_theorems: int = setting(20, "Size of the synthetic theorem set.", min=1)
    limit: int | None = setting(None, "Prove only the first N theorems.", min=1, metavar="N")
    only: str | None = setting(
        None,
        "With a run's results.jsonl as --theorems-file: only the theorems whose record has this outcome "
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

    ``num_workers=0`` means no Ray at all (the in-process executor), ``None`` ("auto") that
    ``prover.run.batch.choose_executor`` decides. The other ``None`` fields are decided
    from the cluster when the run starts: one worker per ``worker_cpus`` CPUs (of
    the nodes ``worker_node_label`` picks), a GPU for each policy replica where the cluster
    has one, and one replica per ``policy_gpus`` GPUs.
    """

    ray_address: str | None = setting(
        None,
        "Join a running Ray cluster: auto or HOST:PORT [default: a local Ray on this machine].",
        resumable=True,
        metavar="ADDRESS",
    )
    num_workers: int | None = setting(
        None,
        "Ray search workers; 0 runs everything in this process; auto runs a small job with a cheap "
        "environment and policy in this process and anything else on Ray, with one worker per --worker-cpus of "
        "the cluster's CPUs (prover.run.batch) [default: auto].",
        min=0,
        resumable=True,
        none_word="auto",
        metavar="N|auto",
    )
    searches_per_worker: int = setting(4, "Concurrent searches (threads) in each worker.", min=1, resumable=True)
    worker_cpus: float = setting(1.0, "CPUs Ray reserves for each search worker.", min=0, resumable=True)
    lean_memory_gb: float = setting(
        8.0,
        "Lean environments: memory (GB) Ray reserves for each search; a node runs at most "
        "min(CPUs, its memory / this) Lean searches, and without --num-workers that many, one per worker.",
        min=0,
        min_open=True,
        resumable=True,
    )
    policy_gpus: float | None = setting(
        None,
        "GPUs Ray reserves for each policy replica, all on one node [default: where the cluster has "
        "GPUs, 1, or --tensor-parallel-size for vllm].",
        min=0,
        resumable=True,
    )
    policy_replicas: int | None = setting(
        None,
        "Policy servers, each with its own copy of the model; searches go to the least-loaded "
        "[default: one per --policy-gpus GPUs of the cluster, at least 1].",
        min=1,
        resumable=True,
        metavar="N",
    )
    worker_node_label: str | None = setting(
        None,
        "Place search workers only on Ray nodes with this label (started with `ray start --labels "
        "KEY=VALUE`), e.g. to keep Lean off the GPU nodes.",
        resumable=True,
        metavar="KEY=VALUE",
    )
    max_batch_size: int = setting(32, "Policy server: most states in one batch.", min=1, resumable=True)
    max_wait_ms: float = setting(
        5.0, "Policy server: how long a batch waits for more requests once one arrived.", min=0, resumable=True
    )
    batch_idle_ms: float | None = setting(
        None,
        "Policy server: also close a batch once requests stop arriving for this long.",
        min=0,
        min_open=True,
        resumable=True,
    )
    max_retries: int = setting(
        2,
        "Extra attempts for a theorem whose worker died, before it is recorded as an error.",
        min=0,
        resumable=True,
    )
    theorem_timeout_s: float | None = setting(
        None,
        "Kill a worker whose search runs this long (a hung Lean) [default: 2 x --time-limit + 60].",
        min=0,
        min_open=True,
        resumable=True,
    )
    policy_restart_wait_s: float = setting(
        300.0,
        "How long a search waits for a policy replica to answer (all of them lost or restarting), "
        "or the run for room to place a worker, before the run stops.",
        min=0,
        resumable=True,
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

    @classmethod
    def assemble(
        cls, file: str | Path | None = None, preset: Any = None, flags: dict[str, Any] | None = None
    ) -> "RunConfig":
        """The config of a new run, in this order: the defaults, then the settings of
        ``file`` (``--config``: JSON or TOML), then ``preset`` (a ``prover.presets.Preset``),
        then ``flags`` (flag -> value, as given on the command line; ``--env`` and
        ``--policy`` name the backends). Without a file or a preset, the policy is the
        environment's default one."""
        flags = dict(flags or {})
        env_name, policy_name = flags.pop("--env", None), flags.pop("--policy", None)
        config = cls() if file is None else cls.from_dict(load_config_file(file), where=str(file))
        if env_name is not None and env_name != config.env.name:
            config = dataclasses.replace(config, env=BackendSpec.default("environment", env_name))
        if preset is not None and policy_name is not None and policy_name not in preset.policies:
            raise ProverError(
                f"--preset {preset.name} sets up a model policy ({' or '.join(preset.policies)}), "
                f"not --policy {policy_name}"
            )
        if policy_name is None and file is None and preset is None:
            policy_name = backend("environment", config.env.name).default_policy
        if policy_name is not None and policy_name != config.policy.name:
            config = dataclasses.replace(config, policy=BackendSpec.default("policy", policy_name))
        if preset is not None:
            config = preset.apply(config)
        return apply_flags(config, flags)

    @classmethod
    def resume(
        cls,
        saved: "RunConfig",
        flags: dict[str, Any] | None = None,
        *,
        file: Any = None,
        preset: Any = None,
        where: str | Path = "the run",
    ) -> "RunConfig":
        """The config of a saved run continued: ``saved`` with the ``resumable`` flags given
        now applied. A config file, a preset, or any other flag that would change a setting
        is refused in one sentence naming what differs (``where`` names the run)."""
        if file is not None or preset is not None:
            which = "--config" if file is not None else "--preset"
            raise ProverError(f"{which} sets up a new run; --resume continues one with its saved settings")
        flags = dict(flags or {})
        names = {"--env": flags.pop("--env", None), "--policy": flags.pop("--policy", None)}
        conflicts = resume_conflicts(saved, flags, names)
        if conflicts:
            raise ProverError(
                f"--resume keeps the settings of the run in {where}, but these differ: {'; '.join(conflicts)}; "
                "leave them out, or start a new run with --out"
            )
        targets = flag_targets(include_hidden=True)
        resumable = {
            flag: value
            for flag, value in flags.items()
            if all(t.field.metadata.get("resumable") for t in targets.get(flag, []))
        }
        return apply_flags(saved, resumable)


# ---- flags ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a flag's value goes: a section of RunConfig (or a backend's options) and a field."""

    section: str  # "env", "policy", or one of SECTIONS
    backend: str | None  # the backend name for "env"/"policy"
    field: dataclasses.Field
    owner: type
    alias: bool = False  # an old flag of the setting, still taken (``--benchmark``), not shown


def flag_targets(include_hidden: bool = False) -> dict[str, list[Target]]:
    """Every flag of every section and registered backend, with the fields it sets.

    A flag shared by several backends (``--model`` of hf and vllm) sets the field of
    whichever of them the run uses.
    """
    targets: dict[str, list[Target]] = {}
    for name, section_class, _ in SECTIONS:
        for f in setting_fields(section_class):
            targets.setdefault(flag_of(f), []).append(Target(name, None, f, section_class))
            for alias in f.metadata.get("aliases") or ():
                targets.setdefault("--" + alias.replace("_", "-"), []).append(
                    Target(name, None, f, section_class, True)
                )
    for section, kind, table in (("env", "environment", ENVS), ("policy", "policy", POLICIES)):
        for entry in table.values():
            if entry.hidden and not include_hidden:
                continue
            config_class = resolve_config_class(kind, entry.name)
            for f in setting_fields(config_class):
                targets.setdefault(flag_of(f), []).append(Target(section, entry.name, f, config_class))
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
            owners = sorted(
                {
                    f"the {t.backend} {'environment' if t.section == 'env' else 'policy'}"
                    for t in targets.get(flag, [])
                    if t.backend
                }
            )
            raise ConfigError(
                f"{flag} is a setting of {' and '.join(owners) or 'no backend'}, which this run does not use"
            )
    updated = {}
    for section, values in changes.items():
        current = getattr(config, section)
        if isinstance(current, BackendSpec):
            options = from_dict(
                type(current.options),
                {**to_dict(current.options), **values},
                f"the {current.name} {current.kind} settings",
            )
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
            if coerce_quietly(target.owner, target.field, value) != saved_value:
                conflicts.append(f"{flag} {show_value(value)} (the run used {show_value(saved_value)})")
            break
    return conflicts


def backend_choices(kind: str) -> list[str]:
    """The names of the user-facing backends of ``kind``."""
    table: dict[str, Backend] = ENVS if kind == "environment" else POLICIES
    return [name for name, backend in table.items() if not backend.hidden]
