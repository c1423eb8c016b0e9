"""``prover viz`` and ``prover report``: pages, pictures and tables of saved searches."""

from __future__ import annotations

from pathlib import Path

import click

from prover.errors import ProverError


@click.command()
@click.argument("targets", nargs=-1, required=True, type=click.Path(), metavar="TREE_FILE|RUN_DIR...")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["html", "text", "svg", "png", "graphml"]),
    default="html",
    show_default=True,
    help="html: a page to explore in a browser (offline); text: an outline here; svg/png: a picture; "
    "graphml: for other graph tools. A RUN_DIR gets HTML only.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(),
    default=None,
    help="Where to write [default: TREE_FILE with the format's suffix; RUN_DIR/viz/ for a run; "
    "compare-A-vs-B-... beside the first for several runs; text is printed].",
)
@click.option("--open", "open_page", is_flag=True, help="Open what was written in a web browser.")
@click.option(
    "--max-nodes",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="svg/png: most states drawn (the proof path, or the frontier and deepest states, and the first expanded).",
)
@click.option("--show-failed", is_flag=True, help="text: list every failed tactic instead of counting them.")
@click.option("--max-lines", type=click.IntRange(min=1), default=400, show_default=True, help="text: most lines.")
def viz(
    targets: tuple[str, ...],
    output_format: str,
    output: str | None,
    open_page: bool,
    max_nodes: int,
    show_failed: bool,
    max_lines: int,
) -> None:
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
            raise ProverError(
                f"a run directory gets HTML pages, not {output_format}; give one tree file "
                f"(e.g. {Path(target) / 'trees'}/NAME.json.gz) for --format {output_format}"
            )
        from prover.views.report import load_run, write_run_browser

        run = load_run(target)
        index, rendered = write_run_browser(run, output)
        click.echo(f"wrote {index} ({len(run.records)} theorems; {rendered} tree pages rendered, unchanged ones kept)")
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


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False), metavar="RUN_DIR...")
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False),
    default=None,
    help="Directory for report.md, report.json and the plots [default: RUN_DIR/report for one run; for several, "
    "compare-A-vs-B-... beside the first].",
)
def report(run_dirs: tuple[str, ...], output: str | None) -> None:
    """Summarise one run directory or compare several: the settings that differ, pass rates with
    95% intervals, outcome counts, costs, plots, and every theorem linked to its tree."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from prover.views.report import (
        comparison_lines,
        default_report_dir,
        load_run,
        outcome_rows,
        table_rows,
        write_report,
    )

    runs = [load_run(run_dir) for run_dir in run_dirs]
    out_dir = Path(output) if output else default_report_dir(run_dirs)
    written = write_report(runs, out_dir)
    labels = written.labels
    console = Console()

    def show(title: str, rows, bold: str | None = None) -> None:
        table = Table(title=escape(title))
        table.add_column("")
        for label in labels:
            table.add_column(escape(label), justify="right")
        for label, cells in rows:  # values are data (settings hold lists in brackets), not markup
            table.add_row(escape(label), *map(escape, cells), style="bold" if label == bold else None)
        console.print(table)

    settings = written.settings
    if len(runs) > 1 and settings:
        show(f"Settings that differ ({written.settings_same} others the same)", settings)
    elif len(runs) > 1:
        console.print(f"All {written.settings_same} settings are the same in every run.", highlight=False)
    show("Run report", table_rows(written.runs), bold="pass rate (95% interval)")
    show("Outcomes", outcome_rows(written.runs))
    for line in comparison_lines(written):
        console.print(line, highlight=False, markup=False)
    click.echo(f"report written to {out_dir / 'report.md'} (with report.json and {len(written.plots)} plots)")
