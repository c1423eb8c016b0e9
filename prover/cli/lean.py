"""``prover setup-lean`` and ``prover presets``: making Lean ready, and the published systems' settings."""

from __future__ import annotations

import click

from prover.cli.options import Choice
from prover.envs.lean import DEFAULT_LEAN_PROJECT, MINIF2F_COMMIT, MINIF2F_URL
from prover.presets import MODEL_POLICIES, PRESETS, resolved_settings


@click.command()
@click.argument("name", required=False)
@click.option(
    "--policy",
    "policy_name",
    type=Choice(list(MODEL_POLICIES)),
    default=MODEL_POLICIES[0],
    show_default=True,
    help="Show the settings as this policy gets them (vllm adds its own: dtype, tensor parallelism).",
)
def presets(name: str | None, policy_name: str) -> None:
    """List the presets, or print preset NAME's resolved settings as JSON (use one with --preset NAME)."""
    import json

    if name is None:
        width = max(map(len, PRESETS))
        for preset in PRESETS.values():
            click.echo(f"{preset.name:<{width}}  {preset.summary}")
        return
    click.echo(json.dumps(resolved_settings(name, policy_name), indent=2, ensure_ascii=False))


@click.command("setup-lean")
@click.option(
    "--lean-project",
    type=click.Path(file_okay=False),
    default=DEFAULT_LEAN_PROJECT,
    help="The Lake project to set up [default: the repository's lean_project/].",
)
@click.option("--skip-repl", is_flag=True, help="Do not fetch and build the Lean REPL (needed only by --env repl).")
@click.option("--skip-trace", is_flag=True, help="Do not trace miniF2F with LeanDojo (needed only by --env dojo).")
@click.option(
    "--minif2f-url",
    envvar="PROVER_MINIF2F_URL",
    default=MINIF2F_URL,
    show_default=True,
    help="Where to clone miniF2F from (a mirror, or a local git repository) [env: PROVER_MINIF2F_URL].",
)
@click.option(
    "--minif2f-commit",
    envvar="PROVER_MINIF2F_COMMIT",
    default=MINIF2F_COMMIT,
    show_default=True,
    help="The miniF2F commit to check out [env: PROVER_MINIF2F_COMMIT].",
)
@click.option(
    "--repl-path",
    type=click.Path(file_okay=False),
    default=None,
    help="A checkout of the Lean REPL to build instead of fetching lean-interact's (as for --env repl).",
)
@click.option("--lake-path", default="lake", show_default=True, help="The `lake` that builds the Lean REPL.")
def setup_lean(
    lean_project: str,
    skip_repl: bool,
    skip_trace: bool,
    minif2f_url: str,
    minif2f_commit: str,
    repl_path: str | None,
    lake_path: str,
) -> None:
    """Make Lean ready: Mathlib's cache and the project build (`lake exe cache get`, `lake build`), the Lean
    REPL, a miniF2F checkout in the project, and LeanDojo's trace of it (tens of minutes); needs elan."""
    from prover.envs.lean import prepare_repl, setup_lean_project

    trace = None
    if not skip_trace:
        from prover.envs import dojo

        trace = lambda checkout: dojo.trace_checkout(checkout, echo=click.echo)  # noqa: E731
    repl = None if skip_repl else lambda project: prepare_repl(project, repl_path, lake_path, echo=click.echo)
    setup_lean_project(
        lean_project, repl=repl, echo=click.echo, minif2f_url=minif2f_url, minif2f_commit=minif2f_commit, trace=trace
    )


@click.command()
@click.option(
    "--sandbox",
    type=Choice(["auto", "bwrap", "landlock", "off"]),
    default="auto",
    show_default=True,
    help="The sandbox to ask about (as --sandbox of the Lean backends).",
)
@click.option(
    "--lean-project",
    type=click.Path(file_okay=False),
    default=DEFAULT_LEAN_PROJECT,
    help="The Lake project to look at [default: the repository's lean_project/].",
)
@click.option(
    "--repl-path", type=click.Path(file_okay=False), default=None, help="A built Lean REPL checkout to look at."
)
@click.option("--lake-path", default="lake", show_default=True, help="The `lake` to look at.")
def doctor(sandbox: str, lean_project: str, repl_path: str | None, lake_path: str) -> None:
    """Which sandbox confines Lean here, and what Lean, lake, REPL, GPU and libraries this machine has."""
    from prover.doctor import diagnose

    for check in diagnose(sandbox, lean_project, repl_path, lake_path):
        click.echo(check.line())
