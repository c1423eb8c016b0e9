"""Reports on finished runs: pass rate, outcome counts, cost percentiles, plots, and a
comparison of two runs.

    report = write_report([load_run("runs/a"), load_run("runs/b")], Path("runs/a/report"))
    # runs/a/report/report.md, report.json, pass_rate_vs_expansions.png, time_per_theorem.png

The pass rate's denominator is the whole theorem set when the run's ``summary.json`` gives
``num_theorems`` (theorems not yet run count against it), else the records on disk.
Percentiles interpolate linearly between the two nearest values, as numpy's default does.
Reading a run never writes to it, so a report can be made while the run is still going.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from search import ResultRecord, SearchStatus

from prover.errors import ProverError
from prover.runs import Summary, read_records

STATUSES = ("proved", "failed", "open", "rejected", "error")
PASS_RATE_PLOT = "pass_rate_vs_expansions.png"
TIME_PLOT = "time_per_theorem.png"


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of ``values`` by linear interpolation; None if empty.

    >>> percentile([1, 2, 3, 4], 50)
    2.5
    """
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def spread(values: Sequence[float]) -> dict[str, float | None]:
    """p50, p90 and max of ``values`` (each None when there are none)."""
    return {"p50": percentile(values, 50), "p90": percentile(values, 90), "max": max(values) if values else None}


@dataclass(frozen=True)
class Run:
    """A run directory as read for a report: its records and, if written, its summary."""

    path: Path
    records: list[ResultRecord]
    summary: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.resolve().name


def load_run(path: str | Path) -> Run:
    """Read the run directory at ``path`` (its results.jsonl and summary.json)."""
    path = Path(path)
    results_path = path / "results.jsonl"
    if not results_path.is_file():
        raise ProverError(f"{path} is not a run directory (it has no results.jsonl); "
                          "give a directory made by prover prove-split")
    summary: dict = {}
    summary_path = path / "summary.json"
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ProverError(f"{summary_path} is not valid JSON ({exc}); delete it to count records only") from None
    return Run(path=path, records=read_records(results_path), summary=summary)


@dataclass(frozen=True)
class RunStats:
    """The numbers a report shows for one run."""

    name: str
    path: str
    num_theorems: int  # the pass rate's denominator
    num_finished: int
    counts: dict[str, int]  # every status in STATUSES, plus any other status seen
    num_unfinished: int
    pass_rate: float
    expansions: dict[str, float | None]  # per finished theorem: p50, p90, max
    expansions_to_proof: dict[str, float | None]  # per proved theorem
    wall_time_s: dict[str, float | None]  # per finished theorem
    total_wall_time_s: float
    proved: list[str]


def run_stats(run: Run) -> RunStats:
    """Pass rate, outcome counts and cost percentiles of ``run``."""
    records = run.records
    summary = Summary(r.theorem for r in records)
    for record in records:
        summary.add(record)
    counts = {status: 0 for status in STATUSES}
    counts.update(summary.status_counts)
    num_theorems = run.summary.get("num_theorems")
    if not isinstance(num_theorems, int) or num_theorems < summary.num_finished:
        num_theorems = summary.num_finished
    proved = [r for r in records if r.status is SearchStatus.PROVED]
    return RunStats(
        name=run.name,
        path=str(run.path),
        num_theorems=num_theorems,
        num_finished=summary.num_finished,
        counts=counts,
        num_unfinished=num_theorems - summary.num_finished,
        pass_rate=summary.num_proved / num_theorems if num_theorems else 0.0,
        expansions=spread([r.num_expansions for r in records]),
        expansions_to_proof=spread([r.num_expansions for r in proved]),
        wall_time_s=spread([r.wall_time_s for r in records]),
        total_wall_time_s=summary.total_search_time_s,
        proved=sorted(r.theorem for r in proved),
    )


def compare(first: Run, second: Run) -> dict:
    """Which theorems one run proved and the other did not (among all either recorded)."""
    proved = [{r.theorem for r in run.records if r.status is SearchStatus.PROVED} for run in (first, second)]
    recorded = [{r.theorem for r in run.records} for run in (first, second)]
    return {
        "proved_by_both": len(proved[0] & proved[1]),
        "only_first": sorted(proved[0] - proved[1]),
        "only_second": sorted(proved[1] - proved[0]),
        "recorded_by_both": len(recorded[0] & recorded[1]),
    }


def _labels(runs: Sequence[Run]) -> list[str]:
    names = [run.name for run in runs]
    # Two runs in folders of the same name are told apart by their paths.
    return [str(run.path) for run in runs] if len(set(names)) < len(names) else names


# ---- the report ---------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.{digits}g}"


def _spread_text(values: dict, unit: str = "") -> str:
    return " / ".join(_fmt(values[k]) for k in ("p50", "p90", "max")) + unit


def table_rows(stats: Sequence[RunStats]) -> list[tuple[str, list[str]]]:
    """(label, one cell per run) for the summary table, shared by the terminal and report.md."""
    rows = [
        ("theorems", [str(s.num_theorems) for s in stats]),
        ("pass rate", [f"{s.pass_rate:.1%}" for s in stats]),
    ]
    rows += [(status, [str(s.counts.get(status, 0)) for s in stats]) for status in STATUSES]
    extra = sorted({k for s in stats for k in s.counts} - set(STATUSES))
    rows += [(status, [str(s.counts.get(status, 0)) for s in stats]) for status in extra]
    if any(s.num_unfinished for s in stats):
        rows.append(("not yet run", [str(s.num_unfinished) for s in stats]))
    rows += [
        ("expansions (p50 / p90 / max)", [_spread_text(s.expansions) for s in stats]),
        ("expansions to proof (p50 / p90 / max)", [_spread_text(s.expansions_to_proof) for s in stats]),
        ("time, s (p50 / p90 / max)", [_spread_text(s.wall_time_s) for s in stats]),
        ("total time, s", [_fmt(s.total_wall_time_s, 4) for s in stats]),
    ]
    return rows


def build_report(runs: Sequence[Run]) -> dict:
    """The report as a JSON-ready dict: one ``RunStats`` per run and, for two, a comparison."""
    if not 1 <= len(runs) <= 2:
        raise ProverError(f"a report covers one run or compares two, not {len(runs)}")
    labels = _labels(runs)
    stats = [run_stats(run) for run in runs]
    report = {"runs": [dict(asdict(s), label=label) for s, label in zip(stats, labels)]}
    if len(runs) == 2:
        report["comparison"] = compare(*runs)
    return report


def _one_line(name: str, width: int = 70) -> str:
    # Some theorem names are whole statements, with newlines; a listing shows one line each.
    text = " ".join(name.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _md_name(name: str) -> str:
    text = _one_line(name, 120)
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def stats_of(report: dict) -> list[RunStats]:
    return [RunStats(**{k: v for k, v in r.items() if k != "label"}) for r in report["runs"]]


def render_markdown(report: dict, plots: Sequence[str]) -> str:
    """report.md: the summary table, the theorems only one run proved, and the plots."""
    runs = stats_of(report)
    labels = [r["label"] for r in report["runs"]]
    title = " vs ".join(labels)
    lines = [f"# Run report: {title}", ""]
    lines += [f"- `{label}`: {s.path}" for label, s in zip(labels, runs)]
    lines += ["", "| | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in table_rows(runs)]
    comparison = report.get("comparison")
    if comparison:
        lines += ["", f"Proved by both: {comparison['proved_by_both']}."]
        for key, label in (("only_first", labels[0]), ("only_second", labels[1])):
            names = comparison[key]
            lines += ["", f"## Proved by {label} only ({len(names)})", ""]
            lines += [f"- {_md_name(name)}" for name in names] or ["(none)"]
    lines += [""]
    lines += [f"![{Path(plot).stem.replace('_', ' ')}]({Path(plot).name})" for plot in plots]
    return "\n".join(lines) + "\n"


def write_report(runs: Sequence[Run], out_dir: str | Path) -> dict:
    """Write report.json, report.md and the two plots into ``out_dir``; return the report."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = build_report(runs)
    labels = [r["label"] for r in report["runs"]]
    stats = stats_of(report)
    from prover.plots import plot_pass_rate, plot_time_histogram

    plots = [
        plot_pass_rate(runs, stats, labels, out_dir / PASS_RATE_PLOT),
        plot_time_histogram(runs, labels, out_dir / TIME_PLOT),
    ]
    report["plots"] = [str(p) for p in plots]
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    (out_dir / "report.md").write_text(render_markdown(report, report["plots"]), encoding="utf-8")
    return report


def comparison_lines(report: dict, limit: int = 20) -> list[str]:
    """The theorems only one run proved, for the terminal (at most ``limit`` names each)."""
    comparison = report.get("comparison")
    if not comparison:
        return []
    labels = [r["label"] for r in report["runs"]]
    lines = [f"proved by both: {comparison['proved_by_both']}"]
    for key, label in (("only_first", labels[0]), ("only_second", labels[1])):
        names = comparison[key]
        shown = ", ".join(_one_line(name) for name in names[:limit]) + (f", … ({len(names) - limit} more)" if len(names) > limit else "")
        lines.append(f"proved by {label} only ({len(names)}): {shown or '(none)'}")
    return lines
