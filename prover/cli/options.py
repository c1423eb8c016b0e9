"""The command line's options: generated from the ``Settings`` classes (each field's
metadata gives its flag, help, choices and range; ``prover.settings``), grouped by concern
in ``--help``, so a new setting appears on the command line without an edit here.
``--config FILE`` gives the same settings as JSON or TOML (a run's ``config.json`` works),
flags on top; ``RunConfig.assemble`` puts them together.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import click
from click.core import ParameterSource

from search import Registry

from prover.config import SECTIONS, RunConfig, backend_choices, flag_targets
from prover.errors import did_you_mean
from prover.presets import PRESETS, get_preset
from prover.registry import ENVS, POLICIES, backend
from prover.settings import base_type, field_types, flag_of, from_dict, setting_fields

# Exit codes: 0 done (for attack and fill: proved), 1 not proved, 2 bad input or a missing
# dependency (one sentence on stderr), 3 an internal error, 130 interrupted.
EXIT_NOT_PROVED, EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 1, 2, 3, 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process that SIGTERM ended

GROUP_ORDER = (
    "Theorems",
    "Search",
    "Environment",
    "Policy",
    "Safety",
    "Ray (prove-split)",
    "Iteration",
    "Data",
    "Training",
    "Output",
    "Other",
)
SECTION_GROUP = {name: group for name, _, group in SECTIONS} | {"env": "Environment", "policy": "Policy"}


class GroupedCommand(click.Command):
    """A command whose --help lists its options under headings by concern."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        groups: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            if isinstance(param, click.Argument):
                continue  # arguments are shown in the usage line
            record = param.get_help_record(ctx)
            if record is not None:
                groups.setdefault(getattr(param, "group", "Other"), []).append(record)
        for name in sorted(groups, key=lambda g: GROUP_ORDER.index(g) if g in GROUP_ORDER else len(GROUP_ORDER)):
            with formatter.section(f"{name} options"):
                formatter.write_dl(groups[name])


class Choice(click.Choice):
    """``click.Choice`` that answers a typo with the one "did you mean" sentence; given a
    ``Registry``, it offers the registry's names as they are when the command runs."""

    def __init__(self, choices: Any, **kwargs: Any) -> None:
        self.registry = choices if isinstance(choices, Registry) else None
        super().__init__(list(choices.shown() if self.registry is not None else choices), **kwargs)

    @property
    def choices(self) -> Any:
        """The registry's names now (read, never stored), else the fixed list."""
        return tuple(self.registry.shown()) if self.registry is not None else self._fixed

    @choices.setter
    def choices(self, value: Any) -> None:
        self._fixed = tuple(value)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        choices = [str(choice) for choice in self.choices]
        if isinstance(value, str) and value not in choices:
            hint = did_you_mean(value, choices)
            hint = hint if hint.startswith("; did you mean") else ""  # the choices are listed already
            self.fail(f"'{value}' is not one of {', '.join(choices)}{hint}", param, ctx)
        return super().convert(value, param, ctx)


def option(*decls: str, group: str, **attrs: Any) -> Callable:
    """``click.option`` that remembers its --help group."""

    def decorator(function: Callable) -> Callable:
        click.option(*decls, **attrs)(function)
        function.__click_params__[-1].group = group
        return function

    return decorator


def run_directory_options(out_help: str, resume_help: str) -> Callable:
    """``--out DIR`` (a new run directory) and ``--resume DIR`` (an existing one), with each
    command's own help."""

    def decorator(function: Callable) -> Callable:
        function = option(
            "--resume", type=click.Path(file_okay=False, exists=True), default=None, group="Output", help=resume_help
        )(function)
        return option("--out", type=click.Path(file_okay=False), default=None, group="Output", help=out_help)(function)

    return decorator


# ---- options generated from the config classes ---------------------------------------------


def _param_name(flag: str) -> str:
    return "opt_" + flag.lstrip("-").replace("-", "_")


class _OrWord(click.ParamType):
    """A value of ``inner``, or ``word`` for None (``--num-workers auto``)."""

    def __init__(self, inner: click.ParamType, word: str):
        self.inner, self.word = inner, word
        self.name = f"{inner.name}|{word}"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or value == self.word:
            return None
        return self.inner.convert(value, param, ctx)


def _click_type(annotation: Any, metadata: dict) -> Any:
    if metadata.get("none_word"):
        return _OrWord(_click_type(annotation, {**metadata, "none_word": None}), metadata["none_word"])
    kind, _ = base_type(annotation)
    low, high = metadata.get("min"), metadata.get("max")
    open_low, open_high = metadata.get("min_open", False), metadata.get("max_open", False)
    if metadata.get("choices"):
        return Choice(list(metadata["choices"]))
    if kind is int:
        return click.IntRange(min=low, max=high) if low is not None or high is not None else click.INT
    if kind is float:
        if low is not None or high is not None:
            return click.FloatRange(min=low, max=high, min_open=open_low, max_open=open_high)
        return click.FLOAT
    return click.STRING


def _show_default(value: Any) -> str | None:
    if value is None or value == () or value is False:
        return None
    return " ".join(value) if isinstance(value, tuple) else str(value)


def _setting_option(
    flag: str, name: str, annotation: Any, meta: Any, group: str, help_text: str, default_shown: str | None
) -> Callable:
    """The click option of one setting (its value None unless given)."""
    kind, _ = base_type(annotation)
    if default_shown is not None and "[default" not in help_text:
        help_text += f" [default: {default_shown}]"
    if kind is bool:
        return option(f"{flag}/--no-{flag[2:]}", name, default=None, group=group, help=help_text)
    if kind is tuple:
        return option(flag, name, multiple=True, group=group, help=help_text)
    return option(
        flag,
        name,
        type=_click_type(annotation, meta),
        default=None,
        group=group,
        metavar=meta.get("metavar"),
        help=help_text,
    )


def setting_options(include_distributed: bool) -> list[Callable]:
    """One click option per flag of every section and user-facing backend."""
    decorators = [
        option(
            "--env",
            "env_name",
            type=Choice(ENVS),
            default=None,
            group="Environment",
            help="Proof environment: "
            + "; ".join(f"{n} ({backend('environment', n).summary})" for n in backend_choices("environment"))
            + " [default: synthetic].",
        ),
        option(
            "--policy",
            "policy_name",
            type=Choice(POLICIES),
            default=None,
            group="Policy",
            help="Tactic policy: "
            + "; ".join(f"{n} ({backend('policy', n).summary})" for n in backend_choices("policy"))
            + " [default: fixed for synthetic, replay for replay, hf for Lean].",
        ),
        option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False),
            default=None,
            group="Other",
            help="Settings from a JSON or TOML file (a run's config.json works); flags given here override it.",
        ),
        option(
            "--preset",
            "preset_name",
            type=Choice(list(PRESETS)),
            default=None,
            group="Policy",
            help="The model, prompt, decoding and search budget of a published system (`prover presets` lists "
            "them); on top of --config, under the flags given here. The policy is hf unless --policy vllm.",
        ),
    ]
    for flag, targets in flag_targets().items():
        first = targets[0]
        if first.section == "distributed" and not include_distributed:
            continue
        if all(t.alias for t in targets):  # an old flag, still taken but not shown
            new_flag = flag_of(first.field)
            decorators.append(
                option(
                    flag,
                    _param_name(flag),
                    type=_click_type(field_types(first.owner)[first.field.name], first.field.metadata),
                    default=None,
                    group="Other",
                    hidden=True,
                    help=f"The old name of {new_flag}.",
                )
            )
            continue
        help_text = first.field.metadata.get("help", "")
        owners = sorted({t.backend for t in targets if t.backend})
        if owners:
            help_text = f"{'/'.join(owners)}: {help_text}"
        defaults = {_show_default(t.field.default) for t in targets}
        decorators.append(
            _setting_option(
                flag,
                _param_name(flag),
                field_types(first.owner)[first.field.name],
                first.field.metadata,
                SECTION_GROUP[first.section],
                help_text,
                defaults.pop() if len(defaults) == 1 else None,
            )
        )
    return decorators


def class_options(
    cls: type, prefix: str, group: str, exclude: tuple[str, ...] = (), flags: dict[str, str] | None = None
) -> Callable:
    """The click options of a ``Settings`` class's fields (but ``exclude``; ``flags`` renames a
    field's flag); their values are read back with ``class_values``."""
    flags = flags or {}

    def decorator(function: Callable) -> Callable:
        for f in reversed(setting_fields(cls)):
            if f.name in exclude:
                continue
            flag = flags.get(f.name, flag_of(f))
            function = _setting_option(
                flag,
                f"{prefix}{f.name}",
                field_types(cls)[f.name],
                f.metadata,
                group,
                f.metadata["help"],
                _show_default(f.default),
            )(function)
        return function

    return decorator


def class_values(cls: type, prefix: str, options: dict, where: str, **fixed: Any) -> Any:
    """The ``cls`` that the options of ``class_options`` given on the command line make
    (``fixed``: fields set by the command itself)."""
    given = {
        f.name: options[f"{prefix}{f.name}"]
        for f in setting_fields(cls)
        if options.get(f"{prefix}{f.name}") not in (None, ())
    }
    return dataclasses.replace(from_dict(cls, given, where), **fixed)


def with_settings(include_distributed: bool) -> Callable:
    def decorator(function: Callable) -> Callable:
        for make in reversed(setting_options(include_distributed)):
            function = make(function)
        return function

    return decorator


def given_flags(options: dict) -> dict[str, Any]:
    """flag -> value for every generated option given on the command line (with ``--env``
    and ``--policy``)."""
    context = click.get_current_context()
    given = {
        flag: options[name]
        for flag, name in (("--env", "env_name"), ("--policy", "policy_name"))
        if options.get(name) is not None
    }
    for name, value in options.items():
        if not name.startswith("opt_"):
            continue
        if context.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            given["--" + name[len("opt_") :].replace("_", "-")] = value
    return given


def build_run_config(options: dict) -> RunConfig:
    """The RunConfig of a new run (``RunConfig.assemble``) from the options given."""
    preset = get_preset(options["preset_name"]) if options.get("preset_name") else None
    return RunConfig.assemble(options.get("config_file"), preset, given_flags(options))


# ---- the commands ---------------------------------------------------------------------------


def invocation() -> list[str]:
    """The command line as the user typed it (``main`` keeps it on the click context)."""
    root = click.get_current_context().find_root()
    return list(root.obj.get("argv", [])) if isinstance(root.obj, dict) else ["prover"]
