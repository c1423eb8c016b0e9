"""The ``prover`` command line: attack one theorem, prove a set in batch, show a tree.

    prover attack synthetic_0002
    prover prove-split --out runs/demo
    prover viz runs/demo                 # the run as pages: an index and one per search

One module per job, each command parsing its options, calling one function and printing:
``prove`` (attack, prove-split, fill, repair), ``views`` (viz, report), ``learn`` (export,
train-policy, train-critic, iterate), ``lean`` (setup-lean, presets, doctor); ``options`` generates
the options from the ``Settings`` classes. ``python -m prover.cli`` runs it too.

Exit codes: 0 done (for ``attack``: proved), 1 ``attack`` found no proof, 2 bad input or
a missing dependency (one sentence on stderr), 3 an internal error, 130 interrupted (Ctrl-C),
143 stopped by SIGTERM (results kept, as for Ctrl-C).
Errors show a traceback only with ``--debug``.
"""

from __future__ import annotations

import sys

import click

from prover.cli import lean, learn, prove, views
from prover.cli.options import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_TERMINATED
from prover.errors import ProverError
from prover.run.batch import stop_on_sigterm, stopped_by_sigterm


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.version_option(package_name="lean-prover", prog_name="prover")
def cli(debug: bool) -> None:
    """Best-first Lean 4 proof search with a language-model tactic policy."""


for command in (
    prove.attack,
    prove.prove_split,
    views.viz,
    views.report,
    prove.repair,
    lean.presets,
    lean.setup_lean,
    lean.doctor,
    learn.export,
    learn.train_policy,
    learn.train_critic,
    learn.iterate,
    prove.fill,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the CLI and turns errors into one sentence and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    if argv is None:
        stop_on_sigterm()
    try:
        cli.main(args=args, prog_name="prover", standalone_mode=False, obj={"argv": ["prover", *args]})
    except SystemExit as exc:
        if exc.code == EXIT_INTERRUPTED and stopped_by_sigterm():
            sys.exit(EXIT_TERMINATED)
        raise
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_TERMINATED if stopped_by_sigterm() else EXIT_INTERRUPTED)
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
        sys.exit(EXIT_TERMINATED if stopped_by_sigterm() else EXIT_INTERRUPTED)
    except Exception as exc:
        if debug:
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
        sys.exit(EXIT_INTERNAL)
