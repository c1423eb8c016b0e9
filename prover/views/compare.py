"""The comparison page: several runs of the same theorems side by side, in a browser.

    runs = [load_run("runs/a"), load_run("runs/b")]
    index = write_comparison_page(runs, Path("runs/compare-a-vs-b"))   # index.html

One row per theorem with each run's status, expansions and search time, linked to that
run's tree page (``RUN_DIR/viz/``, written or refreshed here); a filter by who proved what
(every run, none, some but not all, one run only), a search box, each run's pass rate and
the paired test of every run against the first. Self-contained like the run and tree pages;
text from the runs reaches the page as data only.
"""

from __future__ import annotations

import html
import os
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from prover.errors import ProverError
from prover.views.report import Run, _labels, paired_tests, run_stats, tree_page_name, write_run_browser


def comparison_data(runs: Sequence[Run], out_dir: Path) -> dict:
    """What the page shows. ``rows`` are ``[theorem, cells]`` with one cell per run:
    ``[status, expansions, search_time_s, href]`` (href relative to ``out_dir``, or None), or
    None where that run has no record of the theorem."""
    labels = _labels(runs)
    by_run = [{r.theorem: r for r in run.records} for run in runs]
    names = list(dict.fromkeys(name for records in by_run for name in records))
    rows = []
    for name in names:
        cells = []
        for run, records in zip(runs, by_run):
            record = records.get(name)
            if record is None:
                cells.append(None)
                continue
            tree = run.tree_path(record)
            page = run.path / "viz" / tree_page_name(tree) if tree is not None else None
            href = (
                Path(os.path.relpath(page.resolve(), out_dir.resolve())).as_posix()
                if page is not None and page.is_file()
                else None
            )
            cells.append([record.status.value, record.num_expansions, record.wall_time_s, href])
        rows.append([name, cells])
    runs_data = []
    for run, label in zip(runs, labels):
        stats = run_stats(run)
        index = run.path / "viz" / "index.html"
        runs_data.append(
            {
                "label": label,
                "path": str(run.path.resolve()),
                "num_theorems": stats.num_theorems,
                "num_proved": stats.counts.get("proved", 0),
                "pass_rate": stats.pass_rate,
                "pass_rate_ci": list(stats.pass_rate_ci),
                "index": Path(os.path.relpath(index.resolve(), out_dir.resolve())).as_posix()
                if index.is_file()
                else None,
            }
        )
    return {"runs": runs_data, "rows": rows, "paired": [asdict(test) for test in paired_tests(runs, labels)]}


def render_comparison_html(data: dict) -> str:
    from prover.views.viz import _asset, _fill, _script_json

    return _fill(
        "compare_view.html",
        {
            "title": html.escape(" vs ".join(run["label"] for run in data["runs"]) + " — comparison"),
            "css": _asset("run_view.css") + _asset("compare_view.css"),
            "js": _asset("compare_view.js"),
            "data": _script_json(data),
        },
    )


def write_comparison_page(runs: Sequence[Run], out_dir: str | Path) -> tuple[Path, int]:
    """Write ``out_dir/index.html`` comparing ``runs`` (two or more), after bringing each run's
    own pages (``RUN_DIR/viz``) up to date so its links lead somewhere. Returns (the page,
    tree pages rendered)."""
    if len(runs) < 2:
        raise ProverError("a comparison needs two run directories or more")
    out_dir = Path(out_dir)
    rendered = 0
    for run in runs:
        rendered += write_run_browser(run)[1]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProverError(f"cannot write the comparison to {out_dir}: {exc.strerror or exc}") from None
    index = out_dir / "index.html"
    index.write_text(render_comparison_html(comparison_data(runs, out_dir)), encoding="utf-8")
    return index, rendered


def viz_runs(run_dirs: Sequence[str], output_format: str, output: str | None, echo) -> Path:
    """``prover viz RUN_DIR RUN_DIR...``: the comparison page; returns its path."""
    from prover.views.report import default_report_dir, load_run

    if output_format != "html":
        raise ProverError(
            f"several runs are compared on an HTML page, not {output_format}; give one tree file "
            f"for --format {output_format}"
        )
    not_runs = [d for d in run_dirs if not Path(d).is_dir()]
    if not_runs:
        raise ProverError(f"{not_runs[0]} is not a run directory; to compare runs give only run directories")
    runs = [load_run(d) for d in run_dirs]
    index, rendered = write_comparison_page(runs, Path(output) if output else default_report_dir(run_dirs))
    echo(f"wrote {index} ({len(runs)} runs side by side; {rendered} tree pages rendered, unchanged ones kept)")
    return index
