"""The ``prover`` command line: attack one theorem, prove a set in batch, show a tree.

    prover attack synthetic_0002
    prover prove-split --out runs/demo
    prover viz runs/demo                 # the run as pages: an index and one per search

The options of ``attack`` and ``prove-split`` are generated from the config classes
(``prover.settings``: each field's metadata gives its flag, help, choices and range), so a
new backend setting appears here without an edit. ``--config FILE`` gives the same
settings as JSON or TOML (a run's ``config.json`` works), flags on top.

Exit codes: 0 done (for ``attack``: proved), 1 ``attack`` found no proof, 2 bad input or
a missing dependency (one sentence on stderr), 3 an internal error, 130 interrupted (Ctrl-C), 143
stopped by SIGTERM.
Errors show a traceback only with ``--debug``.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

import click
from click.core import ParameterSource

from search import Registry

from prover.config import SECTIONS, RunConfig, backend_choices, flag_targets
from prover.envs.lean import DEFAULT_LEAN_PROJECT, MINIF2F_COMMIT, MINIF2F_URL
from prover.errors import ProverError, did_you_mean
from prover.learn.iterate import IterateOptions
from prover.learn.training import TrainOptions
from prover.presets import MODEL_POLICIES, PRESETS, get_preset, resolved_settings
from prover.registry import ENVS, POLICIES, backend
from prover.settings import base_type, field_types, flag_of, from_dict, setting_fields

EXIT_NOT_PROVED, EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 1, 2, 3, 130

GROUP_ORDER = ("Theorems", "Search", "Environment", "Policy", "Safety", "Ray (prove-split)", "Iteration", "Data",
               "Training", "Output", "Other")
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

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if self.registry is not None:
            self.choices = self.registry.shown()
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


# ---- options generated from the config classes ---------------------------------------------


def _param_name(flag: str) -> str:
    return "opt_" + flag.lstrip("-").replace("-", "_")


def _click_type(annotation: Any, metadata: dict) -> Any:
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


def _setting_option(flag: str, name: str, annotation: Any, meta: Any, group: str, help_text: str,
                    default_shown: str | None) -> Callable:
    """The click option of one setting (its value None unless given)."""
    kind, _ = base_type(annotation)
    if default_shown is not None and "[default" not in help_text:
        help_text += f" [default: {default_shown}]"
    if kind is bool:
        return option(f"{flag}/--no-{flag[2:]}", name, default=None, group=group, help=help_text)
    if kind is tuple:
        return option(flag, name, multiple=True, group=group, help=help_text)
    return option(flag, name, type=_click_type(annotation, meta), default=None, group=group,
                  metavar=meta.get("metavar"), help=help_text)


def setting_options(include_distributed: bool) -> list[Callable]:
    """One click option per flag of every section and user-facing backend."""
    decorators = [
        option("--env", "env_name", type=Choice(ENVS), default=None, group="Environment",
               help="Proof environment: " + "; ".join(f"{n} ({backend('environment', n).summary})"
                                                      for n in backend_choices("environment")) + " [default: synthetic]."),
        option("--policy", "policy_name", type=Choice(POLICIES), default=None, group="Policy",
               help="Tactic policy: " + "; ".join(f"{n} ({backend('policy', n).summary})"
                                                   for n in backend_choices("policy"))
               + " [default: fixed for synthetic, replay for replay, hf for Lean]."),
        option("--config", "config_file", type=click.Path(dir_okay=False), default=None, group="Other",
               help="Settings from a JSON or TOML file (a run's config.json works); flags given here override it."),
        option("--preset", "preset_name", type=Choice(list(PRESETS)), default=None, group="Policy",
               help="The model, prompt, decoding and search budget of a published system (`prover presets` lists "
                    "them); on top of --config, under the flags given here. The policy is hf unless --policy vllm."),
    ]
    for flag, targets in flag_targets().items():
        first = targets[0]
        if first.section == "distributed" and not include_distributed:
            continue
        if all(t.alias for t in targets):  # an old flag, still taken but not shown
            new_flag = flag_of(first.field)
            decorators.append(option(flag, _param_name(flag), type=_click_type(field_types(first.owner)[first.field.name],
                                     first.field.metadata), default=None, group="Other", hidden=True,
                                     help=f"The old name of {new_flag}."))
            continue
        help_text = first.field.metadata.get("help", "")
        owners = sorted({t.backend for t in targets if t.backend})
        if owners:
            help_text = f"{'/'.join(owners)}: {help_text}"
        defaults = {_show_default(t.field.default) for t in targets}
        decorators.append(_setting_option(flag, _param_name(flag), field_types(first.owner)[first.field.name],
                                          first.field.metadata, SECTION_GROUP[first.section], help_text,
                                          defaults.pop() if len(defaults) == 1 else None))
    return decorators


def class_options(cls: type, prefix: str, group: str, exclude: tuple[str, ...] = (),
                  flags: dict[str, str] | None = None) -> Callable:
    """The click options of a ``Settings`` class's fields (but ``exclude``; ``flags`` renames a
    field's flag); their values are read back with ``class_values``."""
    flags = flags or {}

    def decorator(function: Callable) -> Callable:
        for f in reversed(setting_fields(cls)):
            if f.name in exclude:
                continue
            flag = flags.get(f.name, flag_of(f))
            function = _setting_option(flag, f"{prefix}{f.name}", field_types(cls)[f.name], f.metadata, group,
                                       f.metadata["help"], _show_default(f.default))(function)
        return function

    return decorator


def class_values(cls: type, prefix: str, options: dict, where: str, **fixed: Any) -> Any:
    """The ``cls`` that the options of ``class_options`` given on the command line make
    (``fixed``: fields set by the command itself)."""
    given = {f.name: options[f"{prefix}{f.name}"] for f in setting_fields(cls)
             if options.get(f"{prefix}{f.name}") not in (None, ())}
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
    given = {flag: options[name] for flag, name in (("--env", "env_name"), ("--policy", "policy_name"))
             if options.get(name) is not None}
    for name, value in options.items():
        if not name.startswith("opt_"):
            continue
        if context.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            given["--" + name[len("opt_"):].replace("_", "-")] = value
    return given


def build_run_config(options: dict) -> RunConfig:
    """The RunConfig of a new run (``RunConfig.assemble``) from the options given."""
    preset = get_preset(options["preset_name"]) if options.get("preset_name") else None
    return RunConfig.assemble(options.get("config_file"), preset, given_flags(options))


# ---- the commands ---------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.version_option(package_name="lean-prover", prog_name="prover")
def cli(debug: bool) -> None:
    """Best-first Lean 4 proof search with a language-model tactic policy."""


@cli.command(cls=GroupedCommand)
@click.argument("theorem", required=False)
@option("--statement", default=None, group="Theorems",
        help='A theorem typed in, e.g. "theorem foo (x : ℕ) : x + 0 = x :=" (THEOREM may then be left out).')
@with_settings(include_distributed=False)
@option("--tree-out", type=click.Path(dir_okay=False), default=None, group="Output",
        help="Where to save the search tree [default: runs/attack/<theorem>-<time>.json, a new file each time].")
def attack(theorem: str | None, statement: str | None, tree_out: str | None, **options) -> None:
    """Search for a proof of THEOREM (or of --statement) and print it."""
    from prover.policies import make_policy
    from prover.run.driver import search_theorem
    from prover.run.rundir import make_record, tree_filename, unique_path
    from prover.statements import parse_statement
    from prover.theorem_sets import find_theorem

    config = build_run_config(options)
    if statement is not None:
        target = parse_statement(statement)
        if theorem and theorem != target.name:
            raise ProverError(f"THEOREM '{theorem}' is not the name in --statement ('{target.name}'); give one of them")
        able = config.env.capabilities
        if not able.typed_statements:
            takers = " or ".join(f"--env {n}" for n in ENVS.shown() if ENVS[n].typed_statements)
            if able.needs_trace:
                raise ProverError(f"--env {config.env.name} proves theorems of a repository traced by `prover "
                                  f"setup-lean`, not typed-in statements; use {takers} for --statement")
            raise ProverError(f"a typed-in statement needs Lean; the {config.env.name} environment has only its "
                              f"own theorems: use {takers}")
    elif theorem:
        target = find_theorem(theorem, config.theorems, config.env)
    else:
        raise ProverError('name a THEOREM, or type one in with --statement "theorem foo ... :="')
    _check_environment(config, [target])
    policy = make_policy(config.policy)
    with SearchProgress(config.limits.max_expansions, sys.stderr.isatty()) as progress:
        result = search_theorem(target, policy, config, on_expansion=progress.on_expansion)
    record = make_record(target, result)
    # Each attack's tree gets a file of its own: a later attack never replaces it.
    path = Path(tree_out) if tree_out else unique_path(Path("runs") / "attack", tree_filename(target.name)[:-5], ".json")
    if result.tree is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProverError(f"cannot write the tree to {path}: {exc.strerror or exc}") from None
        result.tree.save(path, extra=record.to_json())
    stats = (f"{_plural(result.num_expansions, 'expansion')}, {_plural(result.num_tactics, 'tactic')}, "
             f"{_plural(result.num_states, 'state')}, {result.wall_time_s:.2f} s")
    if result.proved:
        click.echo(f"proved {target.name} ({stats}):")
        click.echo(record.proof_text or "\n".join(result.proof or []))
    else:
        reason = result.error or {
            "failed": "every tactic the policy proposed failed",
            "open": f"the budget ran out ({result.stop_reason.value})",
        }.get(result.status.value, result.status.value)
        click.echo(f"no proof of {target.name}: {reason} ({stats})")
    if result.tree is not None:
        click.echo(f"tree saved to {path}")
    if not result.proved:
        sys.exit(EXIT_NOT_PROVED)


class SearchProgress:
    """Live figures of one search: expansions, states, best open score, elapsed time — a
    status line on a terminal (at most 10 updates a second), else a line every 30 s."""

    def __init__(self, max_expansions: int, on_terminal: bool, heartbeat_s: float = 30.0):
        self.max_expansions, self.on_terminal, self.heartbeat_s = max_expansions, on_terminal, heartbeat_s
        self.started = self.last = time.monotonic()
        self.status = None

    def __enter__(self) -> "SearchProgress":
        if self.on_terminal:
            from rich.console import Console

            self.status = Console(stderr=True).status("starting the environment…")
            self.status.__enter__()
        return self

    def on_expansion(self, tree, node) -> None:
        now = time.monotonic()
        if now - self.last < (0.1 if self.on_terminal else self.heartbeat_s):
            return
        self.last = now
        open_scores = [a["priority"] for n, a in tree.graph.nodes(data=True)
                       if n >= 0 and a.get("expanded_order") is None and a.get("priority") is not None
                       and a["status"] == "open"]
        best = f"{max(open_scores):.3g}" if open_scores else "-"
        text = (f"{tree.num_expanded}/{self.max_expansions} expansions, {_plural(tree.num_states, 'state')}, "
                f"best open score {best}, {_duration(now - self.started)}")
        if self.status is not None:
            self.status.update(text)
        else:
            click.echo(f"[{_duration(now - self.started)}] {text}", err=True)

    def __exit__(self, *exc_info) -> None:
        if self.status is not None:
            self.status.__exit__(*exc_info)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@cli.command("prove-split", cls=GroupedCommand)
@with_settings(include_distributed=True)
@option("--out", type=click.Path(file_okay=False), default=None, group="Output",
        help="New run directory [default: runs/<theorem set>-<time>].")
@option("--resume", type=click.Path(file_okay=False, exists=True), default=None, group="Output",
        help="Continue the run in this directory with its saved settings, skipping finished theorems "
             "(only the Ray settings may change).")
@option("--progress/--no-progress", default=True, group="Output",
        help="Show a progress bar on a terminal (the progress lines are written either way).")
def prove_split(out: str | None, resume: str | None, progress: bool, **options) -> None:
    """Prove a theorem set in batch into a run directory (resumable)."""
    from prover.run.rundir import RunDir
    from prover.theorem_sets import load_theorems, theorem_set_of

    if resume and out:
        raise ProverError("give either --out (a new run) or --resume (an existing run), not both")
    if resume:
        run = RunDir.open(resume)
        run.command_line = _invocation()
        saved = run.config()
        config = RunConfig.resume(saved, given_flags(options), file=options.get("config_file"),
                                  preset=options.get("preset_name"), where=run.path)
        if config != saved:
            run.write_config(config)
        theorems = load_theorems(config.theorems, config.env)
        _check_environment(config, theorems)
    else:
        config = build_run_config(options)
        if config.theorems.lean_file:  # its sorries, in the Lake project that holds it unless --lean-project
            from prover.lean_files import with_file_project

            config = with_file_project(config, config.theorems.lean_file, "--lean-project" in given_flags(options))
        theorems = load_theorems(config.theorems, config.env)  # bad input fails before anything is written
        _check_environment(config, theorems)
        name = Path(config.theorems.lean_file).stem if config.theorems.lean_file else theorem_set_of(config.theorems, config.env)
        run = RunDir.create(out or Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}", config,
                            command_line=_invocation())
    click.echo(f"run directory: {run.path} ({len(theorems)} theorems)", err=True)
    try:
        summary = _prove(theorems, config, run, progress)
    except KeyboardInterrupt:
        if not resume and run.discard_if_empty():
            click.echo("\ninterrupted before any theorem finished; nothing was kept", err=True)
            sys.exit(EXIT_INTERRUPTED)
        done = len(run.finished())
        click.echo(f"\ninterrupted: {done} of {len(theorems)} theorems are saved in {run.path}; "
                   f"continue with: prover prove-split --resume {run.path}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BaseException:
        if not resume:
            run.discard_if_empty()  # a run that could not start leaves nothing behind
        raise
    finally:
        run.close()
    click.echo(
        f"proved {summary.num_proved} of {summary.num_theorems} "
        f"(pass rate {summary.pass_rate:.1%}); results in {run.results_path}"
    )


def _check_environment(config: RunConfig, theorems) -> None:
    """What must hold before any search starts: for --env dojo, LeanDojo has traced every
    theorem's repository (``prover setup-lean``); tracing inside a search would spend its
    budget, and inside Ray it fails."""
    from prover.theorem_sets import check_served

    check_served(config.theorems, config.env)
    if config.env.capabilities.needs_trace:
        from prover.registry import load

        load(config.env.capabilities.module, "require_traced")(theorems)


def _invocation() -> list[str]:
    """The command line as the user typed it (``main`` keeps it on the click context)."""
    root = click.get_current_context().find_root()
    return list(root.obj.get("argv", [])) if isinstance(root.obj, dict) else ["prover"]


def _prove(theorems, config: RunConfig, run, show_progress: bool):
    from prover.run.driver import InProcessExecutor, prove_set

    if config.distributed.num_workers == 0:  # in-process: one search at a time, easy to debug
        executor = InProcessExecutor(config)
        starting = "loading the policy"
    else:
        from prover.run.cluster import RayExecutor

        executor = RayExecutor(config)
        starting = "starting Ray, its search workers and the policy server"
    names = {t.name for t in theorems}
    done = len(run.finished() & names)
    mode = "bar" if show_progress and sys.stderr.isatty() else "log"  # the lines always; the bar on a terminal
    uses_ray = config.distributed.num_workers != 0
    with ray_logs_to(run.path / "ray.log", uses_ray), RunProgress(len(names), done, mode, starting) as progress:

        def started() -> None:
            signal.signal(signal.SIGTERM, _interrupt)  # Ray's start-up put in its own handler
            progress.on_started()

        return prove_set(theorems, run, executor, on_result=progress.on_result, on_started=started)


class ray_logs_to:
    """Send Ray's driver-side log messages (its start-up warnings) to a file, not the terminal."""

    def __init__(self, path: Path, uses_ray: bool):
        self.path = path
        self.uses_ray = uses_ray

    def __enter__(self) -> None:
        import logging

        self.messages = None
        if self.uses_ray:
            import ray  # noqa: F401  (importing Ray sets up its loggers; they are replaced below)

            from prover.run.cluster import ray_messages_to_log

            self.messages = ray_messages_to_log()  # "A worker died ..." too
            self.messages.__enter__()

        self.logger = logging.getLogger("ray")
        self.saved = (self.logger.handlers[:], self.logger.propagate)
        self.handler = logging.FileHandler(self.path, delay=True, encoding="utf-8")
        self.logger.handlers = [self.handler]
        self.logger.propagate = False

    def __exit__(self, *exc_info) -> None:
        if self.messages is not None:
            self.messages.__exit__(*exc_info)
        self.logger.handlers, self.logger.propagate = self.saved
        self.handler.close()


class RunProgress:
    """Progress of a batch run: log lines, and a live bar on top of them on a terminal.

    The lines go to stderr whatever the bar does (``--no-progress`` turns off only the bar):
    one as theorems finish (at most one per ``min_gap_s``) and at least one every
    ``heartbeat_s``. Bar and lines show the same figures: finished, proved, the pass rate
    over the whole set (as summary.json and ``prover report`` count it) and an ETA measured
    from ``on_started`` (Ray's start-up is not a search). ``mode``: ``bar`` (bar and
    lines), ``log`` (lines) or ``off`` (nothing)."""

    def __init__(self, total: int, done: int, mode: str, starting: str,
                 heartbeat_s: float = 30.0, min_gap_s: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.total, self.done_before, self.mode, self.starting = total, done, mode, starting
        self.heartbeat_s, self.min_gap_s, self.clock = heartbeat_s, min_gap_s, clock
        self.finished, self.proved = done, 0
        self.started = self.clock()
        self.proving_since: float | None = None  # when the executor was up (on_started)
        self.last_line = 0.0
        self.bar = None
        self._stop = None

    def __enter__(self) -> "RunProgress":
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[figures]}"), console=Console(stderr=True))
            self.bar.__enter__()
            self.task = self.bar.add_task(self.starting + "…", total=self.total, completed=self.finished,
                                          figures=self.figures())
        if self.mode in ("bar", "log"):
            import threading

            self._line(f"{self.starting}; {self.total} theorems, {self.done_before} already finished")
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._heartbeat, daemon=True)
            self._thread.start()
        return self

    def on_started(self) -> None:
        self.proving_since = self.clock()
        if self.bar is not None:
            self.bar.update(self.task, description="proving")
        if self.mode in ("bar", "log"):
            self._line("started; proving")

    def on_result(self, record, summary) -> None:
        self.finished, self.proved = summary.num_finished, summary.num_proved
        if self.bar is not None:
            self.bar.update(self.task, completed=self.finished, figures=self.figures())
        if self.mode in ("bar", "log") and (self.clock() - self.last_line >= self.min_gap_s
                                            or self.finished == self.total):
            self._status(f"{record.theorem}: {record.status.value}")

    def pass_rate_text(self) -> str:
        """The pass rate over the whole theorem set (unfinished theorems count against it)."""
        return f"{self.proved / self.total:.1%}" if self.total else "-"

    def eta(self) -> float | None:
        """Seconds left at the pace since the executor was up; None before a result of this session."""
        new = self.finished - self.done_before
        if not new or self.finished >= self.total:
            return None
        since = self.proving_since if self.proving_since is not None else self.started
        return (self.clock() - since) / new * (self.total - self.finished)

    def figures(self) -> str:
        eta = self.eta()
        return (f"{self.proved} proved (pass rate {self.pass_rate_text()})"
                + (f", ETA {_duration(eta)}" if eta is not None else ""))

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s / 4):
            if self.clock() - self.last_line >= self.heartbeat_s:
                self._status("still running")

    def _status(self, event: str) -> None:
        self._line(f"{self.finished}/{self.total} finished, {self.figures()}; {event}")

    def _line(self, text: str) -> None:
        self.last_line = self.clock()
        line = f"[{_duration(self.last_line - self.started)}] {text}"
        if self.bar is not None:
            self.bar.console.print(line, highlight=False, markup=False)  # above the bar
        else:
            click.echo(line, err=True)

    def __exit__(self, *exc_info) -> None:
        if self._stop is not None:
            self._stop.set()
        if self.bar is not None:
            self.bar.__exit__(*exc_info)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@cli.command()
@click.argument("targets", nargs=-1, required=True, type=click.Path(), metavar="TREE_FILE|RUN_DIR...")
@click.option("--format", "output_format", type=click.Choice(["html", "text", "svg", "png", "graphml"]),
              default="html", show_default=True,
              help="html: a page to explore in a browser (offline); text: an outline here; svg/png: a picture; "
                   "graphml: for other graph tools. A RUN_DIR gets HTML only.")
@click.option("--output", "-o", type=click.Path(), default=None,
              help="Where to write [default: TREE_FILE with the format's suffix; RUN_DIR/viz/ for a run; "
                   "compare-A-vs-B-... beside the first for several runs; text is printed].")
@click.option("--open", "open_page", is_flag=True, help="Open what was written in a web browser.")
@click.option("--max-nodes", type=click.IntRange(min=1), default=200, show_default=True,
              help="svg/png: most states drawn (the proof path, or the frontier and deepest states, "
                   "and the first expanded).")
@click.option("--show-failed", is_flag=True, help="text: list every failed tactic instead of counting them.")
@click.option("--max-lines", type=click.IntRange(min=1), default=400, show_default=True, help="text: most lines.")
def viz(targets: tuple[str, ...], output_format: str, output: str | None, open_page: bool, max_nodes: int,
        show_failed: bool, max_lines: int) -> None:
    """Show a saved search tree (an HTML page, text, an SVG/PNG picture or GraphML), or a whole
    run: RUN_DIR/viz/index.html lists every theorem and links to a page per tree; several
    runs: a page with their theorems side by side, linked to each run's trees."""
    from search import SearchTree, TreeFormatError

    from prover.views.viz import render_html, render_text, write_graphml

    if len(targets) > 1:
        from prover.views.compare import viz_runs

        index = viz_runs(targets, output_format, output, echo=click.echo)
        _show_link(index, open_page)
        return
    target = targets[0]

    if Path(target).is_dir():
        if output_format != "html":
            raise ProverError(f"a run directory gets HTML pages, not {output_format}; give one tree file "
                              f"(e.g. {Path(target) / 'trees'}/NAME.json.gz) for --format {output_format}")
        from prover.views.report import load_run, write_run_browser

        run = load_run(target)
        index, rendered = write_run_browser(run, output)
        click.echo(f"wrote {index} ({len(run.records)} theorems; {rendered} tree pages rendered, "
                   "unchanged ones kept)")
        _show_link(index, open_page)
        return
    try:
        tree = SearchTree.load(target)
    except TreeFormatError as exc:
        raise ProverError(str(exc)) from None
    if output_format == "text" and output is None:
        click.echo(render_text(tree, show_failed=show_failed, max_lines=max_lines))
        return
    path = Path(output) if output else _beside(Path(target), output_format)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if output_format == "text":
            path.write_text(render_text(tree, show_failed=show_failed, max_lines=max_lines) + "\n", encoding="utf-8")
        elif output_format == "html":
            path.write_text(render_html(tree), encoding="utf-8")
        elif output_format == "graphml":
            write_graphml(tree, path)
        else:
            from prover.views.plots import draw_tree

            draw_tree(tree, path, max_nodes=max_nodes, image_format=output_format)
    except OSError as exc:
        raise ProverError(f"cannot write {path}: {exc.strerror or exc}") from None
    click.echo(f"wrote {path}")
    _show_link(path, open_page)


def _beside(tree_file: Path, suffix: str) -> Path:
    """``trees/a.json.gz`` -> ``trees/a.<suffix>``."""
    name = tree_file.name
    for known in (".json.gz", ".json"):
        if name.endswith(known):
            return tree_file.with_name(name[: -len(known)] + "." + suffix)
    return tree_file.with_suffix("." + suffix)


def _show_link(path: Path, open_page: bool) -> None:
    uri = path.resolve().as_uri()
    click.echo(uri)
    if open_page:
        import webbrowser

        if not webbrowser.open(uri):
            click.echo("no web browser could be started here; open the link above", err=True)


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False), metavar="RUN_DIR...")
@click.option("--output", "-o", type=click.Path(file_okay=False), default=None,
              help="Directory for report.md, report.json and the plots [default: RUN_DIR/report for one run; for several, "
                   "compare-A-vs-B-... beside the first].")
def report(run_dirs: tuple[str, ...], output: str | None) -> None:
    """Summarise one run directory or compare several: the settings that differ, pass rates with
    95% intervals, outcome counts, costs, plots, and every theorem linked to its tree."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from prover.views.report import (comparison_lines, default_report_dir, load_run, outcome_rows, stats_of, table_rows,
                                     write_report)

    runs = [load_run(run_dir) for run_dir in run_dirs]
    out_dir = Path(output) if output else default_report_dir(run_dirs)
    written = write_report(runs, out_dir)
    labels = [entry["label"] for entry in written["runs"]]
    console = Console()

    def show(title: str, rows, bold: str | None = None) -> None:
        table = Table(title=escape(title))
        table.add_column("")
        for label in labels:
            table.add_column(escape(label), justify="right")
        for label, cells in rows:  # values are data (settings hold lists in brackets), not markup
            table.add_row(escape(label), *map(escape, cells), style="bold" if label == bold else None)
        console.print(table)

    settings = [(entry["setting"], entry["values"]) for entry in written["settings"]]
    if len(runs) > 1 and settings:
        show(f"Settings that differ ({written['settings_same']} others the same)", settings)
    elif len(runs) > 1:
        console.print(f"All {written['settings_same']} settings are the same in every run.", highlight=False)
    show("Run report", table_rows(stats_of(written)), bold="pass rate (95% interval)")
    show("Outcomes", outcome_rows(stats_of(written)))
    for line in comparison_lines(written):
        console.print(line, highlight=False, markup=False)
    click.echo(f"report written to {out_dir / 'report.md'} (with report.json and {len(written['plots'])} plots)")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
def repair(run_dir: str) -> None:
    """Keep every readable result of RUN_DIR and move damaged lines to results.bad.jsonl."""
    from prover.run.rundir import repair_results

    kept, moved, where = repair_results(run_dir)
    if not moved:
        click.echo(f"{run_dir}: all {kept} results are readable; nothing to repair")
        return
    click.echo(f"{run_dir}: kept {kept} results, moved {moved} damaged line{'s' * (moved > 1)} to {where}; "
               f"continue with: prover prove-split --resume {run_dir}")


@cli.command()
@click.argument("name", required=False)
@click.option("--policy", "policy_name", type=Choice(list(MODEL_POLICIES)), default=MODEL_POLICIES[0], show_default=True,
              help="Show the settings as this policy gets them (vllm adds its own: dtype, tensor parallelism).")
def presets(name: str | None, policy_name: str) -> None:
    """List the presets, or print preset NAME's resolved settings as JSON (use one with --preset NAME)."""
    import json

    if name is None:
        width = max(map(len, PRESETS))
        for preset in PRESETS.values():
            click.echo(f"{preset.name:<{width}}  {preset.summary}")
        return
    click.echo(json.dumps(resolved_settings(name, policy_name), indent=2, ensure_ascii=False))


@cli.command("setup-lean")
@click.option("--lean-project", type=click.Path(file_okay=False), default=DEFAULT_LEAN_PROJECT,
              help="The Lake project to set up [default: the repository's lean_project/].")
@click.option("--skip-repl", is_flag=True, help="Do not fetch and build the Lean REPL (needed only by --env repl).")
@click.option("--skip-trace", is_flag=True, help="Do not trace miniF2F with LeanDojo (needed only by --env dojo).")
@click.option("--minif2f-url", envvar="PROVER_MINIF2F_URL", default=MINIF2F_URL, show_default=True,
              help="Where to clone miniF2F from (a mirror, or a local git repository) [env: PROVER_MINIF2F_URL].")
@click.option("--minif2f-commit", envvar="PROVER_MINIF2F_COMMIT", default=MINIF2F_COMMIT, show_default=True,
              help="The miniF2F commit to check out [env: PROVER_MINIF2F_COMMIT].")
@click.option("--repl-path", type=click.Path(file_okay=False), default=None,
              help="A checkout of the Lean REPL to build instead of fetching lean-interact's (as for --env repl).")
@click.option("--lake-path", default="lake", show_default=True, help="The `lake` that builds the Lean REPL.")
def setup_lean(lean_project: str, skip_repl: bool, skip_trace: bool, minif2f_url: str, minif2f_commit: str,
               repl_path: str | None, lake_path: str) -> None:
    """Make Lean ready: Mathlib's cache and the project build (`lake exe cache get`, `lake build`), the Lean
    REPL, a miniF2F checkout in the project, and LeanDojo's trace of it (tens of minutes); needs elan."""
    from prover.envs.lean import prepare_repl, setup_lean_project

    trace = None
    if not skip_trace:
        from prover.envs import dojo

        trace = lambda checkout: dojo.trace_checkout(checkout, echo=click.echo)  # noqa: E731
    repl = None if skip_repl else lambda project: prepare_repl(project, repl_path, lake_path, echo=click.echo)
    setup_lean_project(lean_project, repl=repl, echo=click.echo,
                       minif2f_url=minif2f_url, minif2f_commit=minif2f_commit, trace=trace)


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True),
                metavar="RUN_DIR...")
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Data directory to write: train.jsonl, valid.jsonl and export.json.")
@click.option("--valid-fraction", type=click.FloatRange(min=0, max=1, max_open=True), default=0.0, show_default=True,
              help="Share of the theorems whose records go to valid.jsonl (split by theorem).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the train/valid split.")
@click.option("--all-proving-edges", is_flag=True,
              help="Every tactic that led to a proved state, not only those on shortest proofs.")
def export(run_dirs: tuple[str, ...], out: str, valid_fraction: float, seed: int, all_proving_edges: bool) -> None:
    """Training data from the saved trees of runs: proof steps, preference pairs, failed states."""
    from prover.learn.export import export_runs

    stats = export_runs(run_dirs, out, valid_fraction=valid_fraction, seed=seed, all_proving_edges=all_proving_edges)
    for line in stats.lines():
        click.echo(line)
    click.echo(f"wrote {Path(out) / 'train.jsonl'} and valid.jsonl (format: prover/learn/export.py)")


@cli.command("train-policy", cls=GroupedCommand)
@option("--out", type=click.Path(file_okay=False), required=True, group="Output",
        help="Directory for the trained model.")
@option("--data", type=click.Path(exists=True), default=None, group="Data",
        help="A data directory written by prover export (its proof steps) [default: --traces].")
@option("--traces", type=click.Path(dir_okay=False), default=None, group="Data",
        help="Trace file of (state, tactic) pairs [default: the shipped miniF2F traces].")
@class_options(TrainOptions, "train_", "Training")
@option("--eval/--no-eval", "evaluate", default=None, group="Output",
        help="Afterwards, count the replay theorems the trained policy proves [default: on with --traces "
             "or the shipped traces, off with --data].")
def train_policy(out: str, data: str | None, traces: str | None, evaluate: bool | None, **options) -> None:
    """Train a tactic policy: a tiny Llama on the CPU, or --model fine-tuned (on a GPU where there is one;
    several GPUs: accelerate launch -m prover.cli train-policy ...)."""
    from prover.learn.training import evaluate_on_replay, train_policy as train

    if data and traces:
        raise ProverError("give --data (an export) or --traces (a trace file), not both")
    settings = class_values(TrainOptions, "train_", options, "the training settings")
    model_dir = train(data or traces, out, settings, progress=click.echo)
    click.echo(f"trained policy saved to {model_dir}")
    if evaluate if evaluate is not None else not data:
        proved, total = evaluate_on_replay(model_dir, data and Path(data) / "train.jsonl" or traces)
        click.echo(f"it proves {proved} of {total} replay theorems (beam of 8, 32 expansions)")
    click.echo(f"use it with: prover attack THEOREM --policy hf --model {model_dir}")


@cli.command("train-critic", cls=GroupedCommand)
@option("--out", type=click.Path(file_okay=False), required=True, group="Output",
        help="Directory for the trained model.")
@option("--data", type=click.Path(exists=True), required=True, group="Data",
        help="A data directory written by prover export: its provable and failed states.")
@class_options(TrainOptions, "train_", "Training", exclude=("prompt",))
def train_critic(out: str, data: str, **options) -> None:
    """Train a value model (provable or not) on exported searches, for --critic and --scorer value_mixed."""
    from prover.learn.training import train_critic as train

    settings = class_values(TrainOptions, "train_", options, "the training settings")
    model_dir = train(data, out, settings, progress=click.echo)
    click.echo(f"value model saved to {model_dir}")
    click.echo(f"use it with: prover prove-split ... --critic {model_dir} --scorer value_mixed --value-weight 1")


@cli.command("iterate", cls=GroupedCommand)
@with_settings(include_distributed=True)
@option("--rounds", type=click.IntRange(min=1), required=True, group="Iteration",
        help="Rounds of prove, export, train (finished rounds of --out are skipped).")
@option("--out", type=click.Path(file_okay=False), required=True, group="Iteration",
        help="Iteration directory: round-1/, round-2/, ... (run directories) and iterate.json.")
@option("--heldout-file", type=click.Path(dir_okay=False, exists=True), default=None, group="Iteration",
        help="Theorems each round's policy is also evaluated on, never trained on (a list, as --theorems-file).")
@option("--num-heldout", type=click.IntRange(min=1), default=None, group="Iteration",
        help="synthetic: evaluate on this many held-out theorems (synthetic_heldout_0000, ...).")
@class_options(IterateOptions, "iter_", "Iteration")
@class_options(TrainOptions, "train_", "Training", exclude=IterateOptions.TRAIN_FIXED, flags=IterateOptions.train_flags())
@option("--progress/--no-progress", default=True, group="Output",
        help="Show a progress bar while proving, on a terminal (the progress lines are written either way).")
def iterate(rounds: int, out: str, heldout_file: str | None, num_heldout: int | None, progress: bool,
            **options) -> None:
    """Expert iteration: each round proves the theorem set, exports the proofs and trains the next policy."""
    from prover.learn.iterate import iterate as run_iteration
    from prover.theorem_sets import THEOREM_SETS, load_theorems, theorem_set_of, theorems_from_file

    config = build_run_config(options)
    theorems = load_theorems(config.theorems, config.env)
    heldout = None
    if heldout_file and num_heldout:
        raise ProverError("give --heldout-file or --num-heldout, not both")
    if heldout_file:
        heldout = theorems_from_file(heldout_file, config.theorems, config.env)
    elif num_heldout:
        make_heldout = THEOREM_SETS[theorem_set_of(config.theorems, config.env)].heldout
        if make_heldout is None or config.theorems.theorems_file:
            raise ProverError("--num-heldout makes held-out theorems of the synthetic set; with another theorem set "
                              "give --heldout-file")
        heldout = make_heldout(num_heldout)
    train = class_values(TrainOptions, "train_", options, "the training settings")
    settings = class_values(IterateOptions, "iter_", options, "the iteration settings", train=train)
    results = run_iteration(config, theorems, out, rounds, settings, heldout,
                            prove=lambda ts, cfg, run: _prove(ts, cfg, run, progress), echo=click.echo)
    click.echo("round  policy" + " " * 34 + "train" + " " * 10 + ("held-out" if heldout else ""))
    for result in results:
        model = result.policy.get("model") or result.policy["name"]
        held = f"{result.heldout['pass_rate']:6.1%}" if result.heldout else ""
        click.echo(f"{result.round:>5}  {str(model)[-38:]:<38}  {result.train['pass_rate']:6.1%}  "
                   f"{' ' * 7}{held}")
    click.echo(f"the curve: prover report {Path(out) / 'round-*'}"
               + (f" (held-out: {Path(out) / 'round-*' / 'heldout'})" if heldout else ""))


@cli.command(cls=GroupedCommand)
@click.argument("file", type=click.Path(dir_okay=False))
@with_settings(include_distributed=True)
@option("--write", is_flag=True, group="Output", help="Fill FILE in place, after a backup FILE.bak [default: write "
        "FILE.filled.lean beside it].")
@option("--output", type=click.Path(dir_okay=False), default=None, group="Output",
        help="Where to write the filled file [default: FILE.filled.lean].")
@option("--overwrite", is_flag=True, group="Output", help="Replace an existing output file or backup.")
@option("--out", type=click.Path(file_okay=False), default=None, group="Output",
        help="New run directory for the searches [default: runs/fill-<file>-<time>].")
@option("--resume", type=click.Path(file_okay=False, exists=True), default=None, group="Output",
        help="Continue the fill run in this directory (the file must be unchanged), skipping finished holes.")
@option("--json", "as_json", is_flag=True, group="Output", help="Print the result as JSON (for editors and scripts).")
def fill(file: str, write: bool, output: str | None, overwrite: bool, out: str | None, resume: str | None,
         as_json: bool, **options) -> None:
    """Prove the `sorry`s of a Lean FILE (--env repl) and write the proofs back, re-checked in Lean."""
    from prover.fill import FillRequest, fill_file
    from prover.lean_files import with_file_project
    from prover.run.rundir import RunDir

    if write and output:
        raise ProverError("give --write (fill FILE in place) or --output PATH, not both")
    if resume and out:
        raise ProverError("give either --out (a new run) or --resume (an existing run), not both")
    if resume:
        run = RunDir.open(resume)
        saved = run.config()
        config = RunConfig.resume(saved, given_flags(options), file=options.get("config_file"),
                                  preset=options.get("preset_name"), where=run.path)
        if config != saved:
            run.write_config(config)
    else:
        options["env_name"] = options.get("env_name") or "repl"
        config = with_file_project(build_run_config(options), file, "--lean-project" in given_flags(options))
    request = FillRequest(Path(file), write=write, output=Path(output) if output else None, overwrite=overwrite,
                          out=Path(out) if out else None, resume=Path(resume) if resume else None,
                          command_line=_invocation())
    def prove(theorems, config: RunConfig, run) -> None:
        if len(theorems) == 1:  # one hole: in this process
            config = dataclasses.replace(config, distributed=dataclasses.replace(config.distributed, num_workers=0))
        _prove(theorems, config, run, show_progress=True)

    report = fill_file(request, config, echo=lambda line: click.echo(line, err=True), prove=prove)
    if as_json:
        import json

        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        _show_fill(report)
    if report.num_filled < len(report.holes):
        sys.exit(EXIT_NOT_PROVED)


def _show_fill(report) -> None:
    if not report.holes:
        click.echo(f"{report.file} has no `sorry`; nothing was written")
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(f"{report.num_filled} of {len(report.holes)} holes filled in {report.file.name}"))
    for column, justify in (("declaration", "left"), ("line", "right"), ("status", "left"), ("tactics", "right"),
                            ("time", "right")):
        table.add_column(column, justify=justify)
    for row in report.rows():
        table.add_row(*map(escape, row))
    Console().print(table)
    click.echo(f"check: {report.check}")
    if report.written:
        click.echo(f"wrote {report.written}" + (f" (the original is kept in {report.backup})" if report.backup else ""))
    else:
        click.echo("nothing was written: no proof passed the check")
    if report.run is not None:
        from prover.views.report import load_run, write_run_browser

        index, _ = write_run_browser(load_run(report.run), None)
        click.echo(f"run page: {index.resolve().as_uri()}")


EXIT_TERMINATED = 128 + signal.SIGTERM  # 143, as the shell reports a process SIGTERM ended
_terminated = False


def _interrupt(signum, frame) -> None:
    global _terminated
    _terminated = True
    raise KeyboardInterrupt  # SIGTERM (kill, SLURM's time limit) stops like Ctrl-C: results kept, exit 143


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the CLI and turns errors into one sentence and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    if argv is None:
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        cli.main(args=args, prog_name="prover", standalone_mode=False, obj={"argv": ["prover", *args]})
    except SystemExit as exc:
        if exc.code == EXIT_INTERRUPTED and _terminated:
            sys.exit(EXIT_TERMINATED)
        raise
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_TERMINATED if _terminated else EXIT_INTERRUPTED)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_BAD_INPUT)
    except ProverError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_TERMINATED if _terminated else EXIT_INTERRUPTED)
    except Exception as exc:
        if debug:
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
