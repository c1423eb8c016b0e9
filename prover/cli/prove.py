"""``prover attack``, ``prove-split``, ``fill`` and ``repair``: each parses its options,
calls one function of ``prover.run`` (or ``prover.fill``), and prints."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from prover.cli.options import (
    EXIT_INTERRUPTED,
    EXIT_NOT_PROVED,
    GroupedCommand,
    build_run_config,
    given_flags,
    invocation,
    option,
    run_directory_options,
    with_settings,
)
from prover.config import RunConfig
from prover.errors import ProverError
from prover.registry import envs_with


@click.command(cls=GroupedCommand)
@click.argument("theorem", required=False)
@option(
    "--statement",
    default=None,
    group="Theorems",
    help='A theorem typed in, e.g. "theorem foo (x : ℕ) : x + 0 = x :=" (THEOREM may then be left out).',
)
@with_settings(include_distributed=False)
@option(
    "--tree-out",
    type=click.Path(dir_okay=False),
    default=None,
    group="Output",
    help="Where to save the search tree [default: runs/attack/<theorem>-<time>.json, a new file each time].",
)
def attack(theorem: str | None, statement: str | None, tree_out: str | None, **options) -> None:
    """Search for a proof of THEOREM (or of --statement) and print it."""
    from prover.policies import make_policy
    from prover.run.batch import check_environment
    from prover.run.driver import search_theorem
    from prover.run.progress import SearchProgress, plural
    from prover.run.rundir import make_record, tree_filename, unique_path
    from prover.theorem_sets import attack_target

    config = build_run_config(options)
    target = attack_target(theorem, statement, config.theorems, config.env)
    check_environment(config, [target])
    policy = make_policy(config.policy)
    with SearchProgress(config.limits.max_expansions, sys.stderr.isatty()) as progress:
        result = search_theorem(target, policy, config, on_expansion=progress.on_expansion)
    record = make_record(target, result)
    # Each attack's tree gets a file of its own: a later attack never replaces it.
    path = (
        Path(tree_out) if tree_out else unique_path(Path("runs") / "attack", tree_filename(target.name)[:-5], ".json")
    )
    if result.tree is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProverError(f"cannot write the tree to {path}: {exc.strerror or exc}") from None
        result.tree.save(path, extra=record.to_json())
    stats = (
        f"{plural(result.num_expansions, 'expansion')}, {plural(result.num_tactics, 'tactic')}, "
        f"{plural(result.num_states, 'state')}, {result.wall_time_s:.2f} s"
    )
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


@click.command("prove-split", cls=GroupedCommand)
@with_settings(include_distributed=True)
@run_directory_options(
    "New run directory [default: runs/<theorem set>-<time>].",
    "Continue the run in this directory with its saved settings, skipping finished theorems "
    "(only the Ray settings may change).",
)
@option(
    "--progress/--no-progress",
    default=True,
    group="Output",
    help="Show a progress bar on a terminal (the progress lines are written either way).",
)
def prove_split(out: str | None, resume: str | None, progress: bool, **options) -> None:
    """Prove a theorem set in batch into a run directory (resumable)."""
    from prover.run.batch import check_environment, prove_batch
    from prover.run.rundir import RunDir
    from prover.theorem_sets import load_theorems, theorem_set_of

    if resume and out:
        raise ProverError("give either --out (a new run) or --resume (an existing run), not both")
    if resume:
        run = RunDir.open(resume)
        run.command_line = invocation()
        saved = run.config()
        config = RunConfig.resume(
            saved,
            given_flags(options),
            file=options.get("config_file"),
            preset=options.get("preset_name"),
            where=run.path,
        )
        if config != saved:
            run.write_config(config)
        theorems = load_theorems(config.theorems, config.env)
        check_environment(config, theorems)
    else:
        config = build_run_config(options)
        if config.theorems.lean_file:  # its sorries, in the Lake project that holds it unless --lean-project
            from prover.lean_files import with_file_project

            config = with_file_project(config, config.theorems.lean_file, "--lean-project" in given_flags(options))
        theorems = load_theorems(config.theorems, config.env)  # bad input fails before anything is written
        check_environment(config, theorems)
        name = (
            Path(config.theorems.lean_file).stem
            if config.theorems.lean_file
            else theorem_set_of(config.theorems, config.env)
        )
        run = RunDir.create(
            out or Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}", config, command_line=invocation()
        )
    click.echo(f"run directory: {run.path} ({len(theorems)} theorems)", err=True)
    try:
        summary = prove_batch(theorems, config, run, progress, echo=lambda line: click.echo(line, err=True))
    except KeyboardInterrupt:
        if not resume and run.discard_if_empty():
            click.echo("\ninterrupted before any theorem finished; nothing was kept", err=True)
            sys.exit(EXIT_INTERRUPTED)
        done = len(run.finished())
        click.echo(
            f"\ninterrupted: {done} of {len(theorems)} theorems are saved in {run.path}; "
            f"continue with: prover prove-split --resume {run.path}",
            err=True,
        )
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


@click.command(cls=GroupedCommand)
@click.argument("file", type=click.Path(dir_okay=False))
@with_settings(include_distributed=True)
@option(
    "--write",
    is_flag=True,
    group="Output",
    help="Fill FILE in place, after a backup FILE.bak [default: write FILE.filled.lean beside it].",
)
@option(
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    group="Output",
    help="Where to write the filled file [default: FILE.filled.lean].",
)
@option("--overwrite", is_flag=True, group="Output", help="Replace an existing output file or backup.")
@run_directory_options(
    "New run directory for the searches [default: runs/fill-<file>-<time>].",
    "Continue the fill run in this directory (the file must be unchanged), skipping finished holes.",
)
@option("--json", "as_json", is_flag=True, group="Output", help="Print the result as JSON (for editors and scripts).")
def fill(
    file: str,
    write: bool,
    output: str | None,
    overwrite: bool,
    out: str | None,
    resume: str | None,
    as_json: bool,
    **options,
) -> None:
    """Prove the `sorry`s of a Lean FILE (--env repl) and write the proofs back, re-checked in Lean."""
    from prover.fill import FillRequest, fill_file
    from prover.lean_files import with_file_project
    from prover.run.batch import prove_batch
    from prover.run.rundir import RunDir

    if write and output:
        raise ProverError("give --write (fill FILE in place) or --output PATH, not both")
    from prover.config import flag_targets

    picks_theorems = [
        flag for flag in given_flags(options) if any(t.section == "theorems" for t in flag_targets().get(flag, []))
    ]
    if picks_theorems:
        raise ProverError(
            f"{picks_theorems[0]} chooses a theorem set; prover fill proves the `sorry`s of FILE "
            "(for a file as a theorem set: prover prove-split --lean-file FILE)"
        )
    if resume and out:
        raise ProverError("give either --out (a new run) or --resume (an existing run), not both")
    if resume:
        run = RunDir.open(resume)
        saved = run.config()
        config = RunConfig.resume(
            saved,
            given_flags(options),
            file=options.get("config_file"),
            preset=options.get("preset_name"),
            where=run.path,
        )
        if config != saved:
            run.write_config(config)
    else:
        options["env_name"] = options.get("env_name") or envs_with("lean_files")[0]
        config = with_file_project(build_run_config(options), file, "--lean-project" in given_flags(options))
    request = FillRequest(
        Path(file),
        write=write,
        output=Path(output) if output else None,
        overwrite=overwrite,
        out=Path(out) if out else None,
        resume=Path(resume) if resume else None,
        command_line=invocation(),
    )

    def prove(theorems, config: RunConfig, run) -> None:
        prove_batch(theorems, config, run, show_bar=True, echo=lambda line: click.echo(line, err=True))

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
    for column, justify in (
        ("declaration", "left"),
        ("line", "right"),
        ("status", "left"),
        ("tactics", "right"),
        ("time", "right"),
    ):
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


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
def repair(run_dir: str) -> None:
    """Keep every readable result of RUN_DIR and move damaged lines to results.bad.jsonl."""
    from prover.run.rundir import repair_results

    kept, moved, where = repair_results(run_dir)
    if not moved:
        click.echo(f"{run_dir}: all {kept} results are readable; nothing to repair")
        return
    click.echo(
        f"{run_dir}: kept {kept} results, moved {moved} damaged line{'s' * (moved > 1)} to {where}; "
        f"continue with: prover prove-split --resume {run_dir}"
    )
