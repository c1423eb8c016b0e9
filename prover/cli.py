"""The ``prover`` command line: attack one theorem, prove a set in batch, show a tree.

    prover attack synthetic_0002
    prover prove-split --out runs/demo
    prover viz runs/demo/trees/synthetic_0002.json

The options of ``attack`` and ``prove-split`` are generated from the config classes
(``prover.config``: each field's metadata gives its flag, help, choices and range), so a
new backend setting appears here without an edit. ``--config FILE`` gives the same
settings as JSON or TOML (a run's ``config.json`` works), flags on top.

Exit codes: 0 done (for ``attack``: proved), 1 ``attack`` found no proof, 2 bad input or
a missing dependency (one sentence on stderr), 3 an internal error, 130 interrupted.
Errors show a traceback only with ``--debug``.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
import time
from pathlib import Path
from typing import Any, Callable

import click
from click.core import ParameterSource

from prover.config import (
    SECTIONS,
    BackendSpec,
    RunConfig,
    apply_flags,
    backend_choices,
    base_type,
    field_types,
    flag_targets,
    load_config_file,
    resume_conflicts,
)
from prover.envs.lean import DEFAULT_LEAN_PROJECT
from prover.errors import ProverError
from prover.registry import backend

EXIT_NOT_PROVED, EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 1, 2, 3, 130

GROUP_ORDER = ("Theorems", "Search", "Environment", "Policy", "Safety", "Ray (prove-split)", "Output", "Other")
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
    """``click.Choice`` that answers a typo with "did you mean"."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        choices = [str(choice) for choice in self.choices]
        if isinstance(value, str) and value not in choices:
            close = difflib.get_close_matches(value, choices, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
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
    low, high, open_low = metadata.get("min"), metadata.get("max"), metadata.get("min_open", False)
    if metadata.get("choices"):
        return Choice(list(metadata["choices"]))
    if kind is int:
        return click.IntRange(min=low, max=high) if low is not None or high is not None else click.INT
    if kind is float:
        if low is not None or high is not None:
            return click.FloatRange(min=low, max=high, min_open=open_low)
        return click.FLOAT
    return click.STRING


def _show_default(value: Any) -> str | None:
    if value is None or value == () or value is False:
        return None
    return " ".join(value) if isinstance(value, tuple) else str(value)


def setting_options(include_distributed: bool) -> list[Callable]:
    """One click option per flag of every section and user-facing backend."""
    decorators = [
        option("--env", "env_name", type=Choice(backend_choices("environment")), default=None, group="Environment",
               help="Proof environment: " + "; ".join(f"{n} ({backend('environment', n).summary})"
                                                      for n in backend_choices("environment")) + " [default: synthetic]."),
        option("--policy", "policy_name", type=Choice(backend_choices("policy")), default=None, group="Policy",
               help="Tactic policy: " + "; ".join(f"{n} ({backend('policy', n).summary})"
                                                   for n in backend_choices("policy"))
               + " [default: fixed for synthetic, replay for replay, hf for Lean]."),
        option("--config", "config_file", type=click.Path(dir_okay=False), default=None, group="Other",
               help="Settings from a JSON or TOML file (a run's config.json works); flags given here override it."),
    ]
    for flag, targets in flag_targets().items():
        first = targets[0]
        if first.section == "distributed" and not include_distributed:
            continue
        annotation = field_types(first.owner)[first.field.name]
        kind, _ = base_type(annotation)
        meta = first.field.metadata
        help_text = meta.get("help", "")
        owners = sorted({t.backend for t in targets if t.backend})
        if owners:
            help_text = f"{'/'.join(owners)}: {help_text}"
        defaults = {_show_default(t.field.default) for t in targets}
        if len(defaults) == 1 and (shown := defaults.pop()) is not None and "[default" not in help_text:
            help_text += f" [default: {shown}]"
        group = SECTION_GROUP[first.section]
        name = _param_name(flag)
        if kind is bool:
            decorators.append(option(f"{flag}/--no-{flag[2:]}", name, default=None, group=group, help=help_text))
        elif kind is tuple:
            decorators.append(option(flag, name, multiple=True, group=group, help=help_text))
        else:
            decorators.append(option(flag, name, type=_click_type(annotation, meta), default=None, group=group,
                                     metavar=meta.get("metavar"), help=help_text))
    return decorators


def with_settings(include_distributed: bool) -> Callable:
    def decorator(function: Callable) -> Callable:
        for make in reversed(setting_options(include_distributed)):
            function = make(function)
        return function

    return decorator


def given_flags(options: dict) -> dict[str, Any]:
    """flag -> value for every generated option given on the command line."""
    context = click.get_current_context()
    given = {}
    for name, value in options.items():
        if not name.startswith("opt_"):
            continue
        if context.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            given["--" + name[len("opt_"):].replace("_", "-")] = value
    return given


def build_run_config(options: dict) -> RunConfig:
    """The RunConfig of a new run: defaults, then ``--config FILE``, then the flags given."""
    config = RunConfig()
    if options.get("config_file"):
        config = RunConfig.from_dict(load_config_file(options["config_file"]), where=options["config_file"])
    env_name = options.get("env_name") or config.env.name
    if env_name != config.env.name:
        config = dataclasses.replace(config, env=BackendSpec.default("environment", env_name))
    policy_name = options.get("policy_name")
    if policy_name is None and not options.get("config_file"):
        policy_name = backend("environment", env_name).default_policy
    if policy_name is not None and policy_name != config.policy.name:
        config = dataclasses.replace(config, policy=BackendSpec.default("policy", policy_name))
    return apply_flags(config, given_flags(options))


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
        help="Where to save the search tree [default: runs/attack/<theorem>.json].")
def attack(theorem: str | None, statement: str | None, tree_out: str | None, **options) -> None:
    """Search for a proof of THEOREM (or of --statement) and print it."""
    from prover.policies import make_policy
    from prover.runner import search_theorem
    from prover.runs import make_record, tree_filename
    from prover.statements import parse_statement
    from prover.theorem_sets import find_theorem

    config = build_run_config(options)
    if statement is not None:
        target = parse_statement(statement)
        if theorem and theorem != target.name:
            raise ProverError(f"THEOREM '{theorem}' is not the name in --statement ('{target.name}'); give one of them")
    elif theorem:
        target = find_theorem(theorem, config.theorems, config.env)
    else:
        raise ProverError('name a THEOREM, or type one in with --statement "theorem foo ... :="')
    policy = make_policy(config.policy)
    result = search_theorem(target, policy, config)
    record = make_record(target, result)
    path = Path(tree_out) if tree_out else Path("runs") / "attack" / tree_filename(target.name)
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


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@cli.command("prove-split", cls=GroupedCommand)
@with_settings(include_distributed=True)
@option("--out", type=click.Path(file_okay=False), default=None, group="Output",
        help="New run directory [default: runs/<benchmark>-<time>].")
@option("--resume", type=click.Path(file_okay=False, exists=True), default=None, group="Output",
        help="Continue the run in this directory with its saved settings, skipping finished theorems "
             "(only the Ray settings may change).")
@option("--progress/--no-progress", default=True, group="Output", help="Show a progress bar.")
def prove_split(out: str | None, resume: str | None, progress: bool, **options) -> None:
    """Prove a theorem set in batch into a run directory (resumable)."""
    from prover.runs import RunDir
    from prover.theorem_sets import benchmark_of, load_theorems

    if resume and out:
        raise ProverError("give either --out (a new run) or --resume (an existing run), not both")
    if resume:
        if options.get("config_file"):
            raise ProverError("--config sets up a new run; --resume continues one with its saved settings")
        run = RunDir.open(resume)
        config = _resumed_config(run, options)
        theorems = load_theorems(config.theorems, config.env)
    else:
        config = build_run_config(options)
        theorems = load_theorems(config.theorems, config.env)  # bad input fails before anything is written
        name = benchmark_of(config.theorems, config.env)
        run = RunDir.create(out or Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}", config)
    click.echo(f"run directory: {run.path} ({len(theorems)} theorems)", err=True)
    try:
        summary = _prove(theorems, config, run, progress)
    except KeyboardInterrupt:
        done = len(run.finished())
        click.echo(f"\ninterrupted: {done} of {len(theorems)} theorems are saved in {run.path}; "
                   f"continue with: prover prove-split --resume {run.path}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    click.echo(
        f"proved {summary.num_proved} of {summary.num_theorems} "
        f"(pass rate {summary.pass_rate:.1%}); results in {run.results_path}"
    )


def _resumed_config(run, options: dict) -> RunConfig:
    """The saved run's config with the resumable flags given now applied; any other flag
    that would change a setting is refused, before anything on disk changes."""
    saved = run.config()
    given = given_flags(options)
    names = {"--env": options.get("env_name"), "--policy": options.get("policy_name")}
    conflicts = resume_conflicts(saved, given, names)
    if conflicts:
        raise ProverError(
            f"--resume keeps the settings of the run in {run.path}, but these differ: {'; '.join(conflicts)}; "
            "leave them out, or start a new run with --out"
        )
    targets = flag_targets(include_hidden=True)
    resumable = {flag: value for flag, value in given.items()
                 if all(t.field.metadata.get("resumable") for t in targets.get(flag, []))}
    config = apply_flags(saved, resumable)
    if config != saved:
        run.write_config(config)
    return config


def _prove(theorems, config: RunConfig, run, show_progress: bool):
    from prover.runner import InProcessExecutor, prove_set

    if config.distributed.num_workers == 0:  # in-process: one search at a time, easy to debug
        executor = InProcessExecutor(config)
    else:
        from prover.distributed import RayExecutor

        executor = RayExecutor(config)
    finished = run.finished()
    names = {t.name for t in theorems}
    with progress_bar(len(names), len(finished & names), show_progress) as on_result:
        return prove_set(theorems, run, executor, on_result=on_result)


class progress_bar:
    """A progress bar with ETA and the running pass rate; an ``on_result`` callback."""

    def __init__(self, total: int, done: int, enabled: bool):
        self.total, self.done, self.enabled = total, done, enabled
        self.progress = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("[bold]proving"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("pass {task.fields[rate]}"), TimeRemainingColumn())
        self.progress.__enter__()
        self.task = self.progress.add_task("prove", total=self.total, completed=self.done, rate="-")
        return self.advance

    def advance(self, record, summary) -> None:
        self.progress.update(self.task, completed=summary.num_finished,
                             rate=f"{summary.num_proved}/{summary.num_finished}")

    def __exit__(self, *exc_info) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc_info)


@cli.command()
@click.argument("tree_file", type=click.Path(dir_okay=False))
@click.option("--format", "output_format", type=click.Choice(["html", "text", "svg", "png", "graphml"]),
              default="html", show_default=True,
              help="html: a page to explore in a browser (offline); text: an outline here; svg/png: a picture; "
                   "graphml: for other graph tools.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Where to write [default: TREE_FILE with the format's suffix; text is printed].")
@click.option("--max-nodes", type=click.IntRange(min=1), default=200, show_default=True,
              help="svg/png: most states drawn (the proof path and the first expanded).")
@click.option("--show-failed", is_flag=True, help="text: list every failed tactic instead of counting them.")
@click.option("--max-lines", type=click.IntRange(min=1), default=400, show_default=True, help="text: most lines.")
def viz(tree_file: str, output_format: str, output: str | None, max_nodes: int, show_failed: bool,
        max_lines: int) -> None:
    """Show a saved search tree: an HTML page (default), text, an SVG/PNG picture or GraphML."""
    from search import SearchTree, TreeFormatError

    from prover.viz import render_html, render_text, write_graphml

    try:
        tree = SearchTree.load(tree_file)
    except TreeFormatError as exc:
        raise ProverError(str(exc)) from None
    if output_format == "text" and output is None:
        click.echo(render_text(tree, show_failed=show_failed, max_lines=max_lines))
        return
    path = Path(output) if output else Path(tree_file).with_suffix("." + output_format)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if output_format == "text":
            path.write_text(render_text(tree, show_failed=show_failed, max_lines=max_lines) + "\n", encoding="utf-8")
        elif output_format == "html":
            path.write_text(render_html(tree), encoding="utf-8")
        elif output_format == "graphml":
            write_graphml(tree, path)
        else:
            from prover.plots import draw_tree

            draw_tree(tree, path, max_nodes=max_nodes, image_format=output_format)
    except OSError as exc:
        raise ProverError(f"cannot write {path}: {exc.strerror or exc}") from None
    click.echo(f"wrote {path}")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("other_run_dir", type=click.Path(file_okay=False), required=False)
@click.option("--output", "-o", type=click.Path(file_okay=False), default=None,
              help="Directory for report.md, report.json and the plots [default: RUN_DIR/report].")
def report(run_dir: str, other_run_dir: str | None, output: str | None) -> None:
    """Summarise a run directory, or compare it with OTHER_RUN_DIR: pass rate, counts, costs, plots."""
    from rich.console import Console
    from rich.table import Table

    from prover.report import comparison_lines, load_run, stats_of, table_rows, write_report

    runs = [load_run(run_dir)] + ([load_run(other_run_dir)] if other_run_dir else [])
    out_dir = Path(output) if output else Path(run_dir) / "report"
    written = write_report(runs, out_dir)
    table = Table(title="Run report")
    table.add_column("")
    for entry in written["runs"]:
        table.add_column(entry["label"], justify="right")
    for label, cells in table_rows(stats_of(written)):
        table.add_row(label, *cells, style="bold" if label == "pass rate" else None)
    console = Console()
    console.print(table)
    for line in comparison_lines(written):
        console.print(line, highlight=False, markup=False)
    click.echo(f"report written to {out_dir / 'report.md'} (with report.json and plots)")


@cli.command("setup-lean")
@click.option("--lean-project", type=click.Path(file_okay=False), default=DEFAULT_LEAN_PROJECT,
              help="The Lake project to set up [default: the repository's lean_project/].")
@click.option("--skip-repl", is_flag=True, help="Do not fetch and build the Lean REPL (needed only by --env repl).")
def setup_lean(lean_project: str, skip_repl: bool) -> None:
    """Get Mathlib's cache and build lean_project/ (runs `lake exe cache get`, `lake build`); needs elan."""
    from prover.envs.lean import prepare_repl, setup_lean_project

    setup_lean_project(lean_project, repl=None if skip_repl else prepare_repl, echo=click.echo)


@cli.command("train-policy")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Directory for the trained model.")
@click.option("--traces", type=click.Path(dir_okay=False), default=None,
              help="Trace file of (state, tactic) pairs [default: the shipped miniF2F traces].")
@click.option("--steps", type=click.IntRange(min=1), default=1200, show_default=True, help="Optimiser steps.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the initial weights and batches.")
@click.option("--prompt", type=click.Choice(["goal_proofstep", "llemma"]), default="goal_proofstep",
              show_default=True, help="Prompt format to train on (the model directory remembers it).")
@click.option("--eval/--no-eval", "evaluate", default=True,
              help="Afterwards, count the replay theorems the trained policy proves.")
def train_policy(out: str, traces: str | None, steps: int, seed: int, prompt: str, evaluate: bool) -> None:
    """Train a tiny Llama policy on a trace file, on the CPU, for offline runs with --policy hf."""
    from prover.training import evaluate_on_replay, train_tiny_policy

    model_dir = train_tiny_policy(traces, out, steps=steps, seed=seed, prompt=prompt, progress=click.echo)
    click.echo(f"trained policy saved to {model_dir}")
    if evaluate:
        proved, total = evaluate_on_replay(model_dir, traces)
        click.echo(f"it proves {proved} of {total} replay theorems (beam of 8, 32 expansions)")
    click.echo(f"use it with: prover attack THEOREM --env replay --policy hf --model {model_dir}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the CLI and turns errors into one sentence and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="prover", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
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
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        if debug:
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
