"""Reports on finished runs: pass rate with its uncertainty, the settings that differ
between runs, outcome counts, cost percentiles, plots, per-theorem links to the trees, and
the HTML run browser's data.

    runs = [load_run("runs/a"), load_run("runs/b"), load_run("runs/c")]
    report = write_report(runs, Path("runs/a/report"))   # report.md, report.json, *.png
    write_run_browser(load_run("runs/a"))                 # runs/a/viz/index.html + a page per tree

The pass rate's denominator is the whole theorem set when the run's ``summary.json`` gives
``num_theorems`` (theorems not yet run count against it), else the records on disk; its 95%
interval is Wilson's score interval, which stays inside [0, 1] and is honest for small sets.
Percentiles interpolate linearly between the two nearest values, as numpy's default does.
Reading a run never writes to it, so a report can be made while the run is still going.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

from search import ResultRecord, SearchStatus, SearchTree, TreeFormatError

from prover.errors import ProverError
from prover.run.rundir import RunSummary, Summary, read_records, tree_file, trusted_records, warn_untrusted
from prover.views.viz import error_kind

STATUSES = ("proved", "failed", "open", "rejected", "error")
SETTING_SECTIONS = ("env", "policy", "search", "limits", "theorems")  # what a run was asked to do
# What a tactic application did, as the report counts it: its edge's outcome, with the
# safety filter's refusals (errors that start "refused:") and the replay environment's tactics
# it has no record of ("not recorded": Lean never ran them) told apart (``viz.error_kind``).
TACTIC_OUTCOMES = (
    "new state",
    "closed goal",
    "Lean error",
    "not recorded",
    "refused",
    "timeout",
    "gave up (sorry)",
    "cycle",
)
Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile


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


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson's score interval for a proportion (95% by default); (0, 1) when ``trials`` is 0.

    >>> [round(x, 4) for x in wilson_interval(8, 10)]
    [0.4902, 0.9433]
    """
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


# ---- reading a run ------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """A run directory as read for a report: its records, summary and config (each may be empty)."""

    path: Path
    records: list[ResultRecord]
    summary: RunSummary = field(default_factory=RunSummary)
    config: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.resolve().name

    def tree_path(self, record: ResultRecord) -> Path | None:
        """The record's tree file, if it was saved and is still there."""
        if not record.tree:
            return None
        path = tree_file(self.path, record.tree)  # never a file outside the run directory
        return path if path is not None and path.is_file() else None


def _read_json_object(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise ProverError(f"{path} is not valid JSON ({why}); delete it to report on the records alone") from None
    return data if isinstance(data, dict) else {}


def load_run(path: str | Path) -> Run:
    """Read the run directory at ``path`` (results.jsonl, summary.json, config.json).

    A directory without finished theorems is refused with one sentence: there is nothing
    to report, and a table of zeros would hide why.
    """
    path = Path(path)
    results_path = path / "results.jsonl"
    started = (path / "config.json").is_file()
    if not results_path.is_file() and not started:
        raise ProverError(
            f"{path} is not a run directory (it has no results.jsonl); give a directory made by prover prove-split"
        )
    records = read_records(results_path) if results_path.is_file() else []
    records, untrusted = trusted_records(path, records)  # a record's word is checked against its tree
    warn_untrusted(path, untrusted, "are left out")
    if not records:
        raise ProverError(
            f"{path} has no finished theorem: the run failed at start or has not finished one yet, "
            "so there is nothing to report"
        )
    return Run(
        path=path,
        records=records,
        summary=RunSummary.from_json(_read_json_object(path / "summary.json")),
        config=_read_json_object(path / "config.json"),
    )


def flat_settings(config: dict) -> dict[str, str]:
    """The settings a run was asked for, as ``section.name -> value text`` (env, policy,
    search, limits, theorems; Ray and provenance are left out: they do not change results)."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}", inner)
        else:
            flat[prefix] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    for section in SETTING_SECTIONS:
        if section in config:
            walk(section, config[section])
    return flat


def settings_rows(runs: Sequence[Run]) -> tuple[list[tuple[str, list[str]]], int]:
    """(setting, one value per run) for every setting that differs between ``runs`` (every
    setting, for one run), and how many settings are the same in all runs."""
    settings = [flat_settings(run.config) for run in runs]
    keys = list(dict.fromkeys(key for flat in settings for key in flat))
    rows = [(key, [flat.get(key, "–") for flat in settings]) for key in keys]
    if len(runs) == 1:
        return rows, 0
    differ = [(key, values) for key, values in rows if len(set(values)) > 1]
    return differ, len(rows) - len(differ)


def provenance_of(run: Run) -> dict[str, str]:
    """Where and how the run was made, from config.json's ``provenance``, flattened:
    ``started_at``, ``git_commit``, ``command_line``, ``libraries.torch``, ``hardware.cpus``…
    (libraries that are not installed are left out)."""
    found = run.config.get("provenance")
    flat: dict[str, str] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        elif value is not None and value != []:
            flat[prefix] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    if isinstance(found, dict):
        walk("", found)
    return flat


def provenance_rows(runs: Sequence[Run]) -> list[tuple[str, list[str]]]:
    """(field, one value per run) of every run's provenance."""
    found = [provenance_of(run) for run in runs]
    keys = list(dict.fromkeys(key for flat in found for key in flat))
    return [(key, [flat.get(key, "–") for flat in found]) for key in keys]


# ---- the numbers --------------------------------------------------------------------------


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
    pass_rate_ci: tuple[float, float]  # Wilson's 95% interval
    stop_reasons: dict[str, int]
    expansions: dict[str, float | None]  # per finished theorem: p50, p90, max
    expansions_to_proof: dict[str, float | None]  # per proved theorem
    tactics: dict[str, float | None]  # tactic applications per finished theorem
    wall_time_s: dict[str, float | None]  # search time per finished theorem
    total_search_time_s: float  # summed over theorems; not the run's wall-clock time
    proved: list[str]
    tactic_outcomes: dict[str, int]  # TACTIC_OUTCOMES counted over the saved trees
    num_trees: int  # trees read for tactic_outcomes
    session_wall_time_s: float | None = None  # the last session's own clock, from summary.json
    theorems_per_hour: float | None = None  # the last session's throughput, from summary.json
    time_split: dict = field(default_factory=dict)  # summed over theorems: policy_s, env_s, engine_s
    sessions_wall_time_s: list = field(default_factory=list)  # each session's clock, oldest first


def tactic_outcomes(run: Run) -> tuple[dict[str, int], int]:
    """Tactic applications by outcome (``TACTIC_OUTCOMES``) over the run's saved trees, and
    how many trees were read (a missing or unreadable tree is skipped)."""
    counts = dict.fromkeys(TACTIC_OUTCOMES, 0)
    read = 0
    for record in run.records:
        path = run.tree_path(record)
        if path is None:
            continue
        try:
            tree = SearchTree.load(path)
        except TreeFormatError:
            continue
        read += 1
        for _, _, attrs in tree.graph.edges(data=True):
            if "outcome" not in attrs:
                continue
            outcome = attrs["outcome"]
            name = {"state": "new state", "proved": "closed goal"}.get(outcome) or error_kind(outcome, attrs["error"])
            counts[name] = counts.get(name, 0) + 1
    return counts, read


def time_split(record: ResultRecord) -> dict[str, float]:
    """Where a search's time went: in the policy (and value model), in the environment
    (Lean, the re-check included) and in the engine (the rest: the search's own work)."""
    policy, env = max(record.policy_time_s, 0.0), max(record.env_time_s, 0.0)
    return {"policy_s": policy, "env_s": env, "engine_s": max(record.wall_time_s - policy - env, 0.0)}


def _summed_split(records: Sequence[ResultRecord]) -> dict[str, float]:
    total = {"policy_s": 0.0, "env_s": 0.0, "engine_s": 0.0}
    for record in records:
        for key, value in time_split(record).items():
            total[key] += value
    return total


def split_text(split: dict[str, float]) -> str:
    """``12.3 (40%) / 15.1 (49%) / 3.4 (11%)``: policy / Lean / engine seconds and shares."""
    total = sum(split.values())
    return " / ".join(
        f"{_fmt(split[k], 3)}" + (f" ({split[k] / total:.0%})" if total > 0 else "")
        for k in ("policy_s", "env_s", "engine_s")
    )


# ---- a paired test of two runs --------------------------------------------------------------


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """McNemar's exact test: the two-sided p-value of ``only_first`` against ``only_second``
    discordant pairs (theorems one run proved and the other did not) if each discordant
    theorem were equally likely to go either way (a binomial with p = 1/2), computed exactly
    with integers, so it holds for small counts too.

    >>> round(mcnemar_exact(1, 9), 4)
    0.0215
    >>> mcnemar_exact(3, 3)
    1.0
    """
    n = only_first + only_second
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(only_first, only_second) + 1))
    return min(1.0, 2 * tail / 2**n)


@dataclass(frozen=True)
class PairedTest:
    """One run against the first, on the theorems both recorded: how many only one of the
    two proved, and McNemar's exact p-value of that difference."""

    first: str
    second: str
    theorems: int
    only_first: int
    only_second: int
    p_value: float


@dataclass(frozen=True)
class OnlyProved:
    """The theorems that the run ``label`` alone proved."""

    label: str
    theorems: list[str]


@dataclass(frozen=True)
class Comparison:
    """Which theorems every run proved, and which only one run proved (among all recorded)."""

    proved_by_all: int
    proved_by_any: int
    recorded_by_all: int
    only: list[OnlyProved]


@dataclass(frozen=True)
class Report:
    """What ``prover report`` found; report.json is ``to_json()``. ``settings`` holds the
    settings that differ between the runs (every setting, for one run), one value per run."""

    labels: list[str]
    runs: list[RunStats]
    settings: list[tuple[str, list[str]]]
    settings_same: int
    provenance: list[tuple[str, list[str]]]
    comparison: Comparison | None = None
    paired: list[PairedTest] = field(default_factory=list)
    pass_at_k: list[dict] | None = None  # per run, for runs with several searches per theorem
    plots: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        data: dict = {
            "runs": [dict(asdict(s), label=label) for s, label in zip(self.runs, self.labels)],
            "settings": [{"setting": key, "values": values} for key, values in self.settings],
            "settings_same": self.settings_same,
            "provenance": [{"field": key, "values": values} for key, values in self.provenance],
        }
        if self.comparison is not None:
            data["comparison"] = asdict(self.comparison)
            data["paired"] = [asdict(test) for test in self.paired]
        if self.pass_at_k:
            data["pass_at_k"] = self.pass_at_k
        data["plots"] = self.plots
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Report":
        """A report.json read back (one this version wrote)."""
        runs = [
            RunStats(
                **{**{k: v for k, v in entry.items() if k != "label"}, "pass_rate_ci": tuple(entry["pass_rate_ci"])}
            )
            for entry in data["runs"]
        ]
        comparison = data.get("comparison")
        return cls(
            labels=[entry["label"] for entry in data["runs"]],
            runs=runs,
            settings=[(s["setting"], s["values"]) for s in data.get("settings", [])],
            settings_same=data.get("settings_same", 0),
            provenance=[(p["field"], p["values"]) for p in data.get("provenance", [])],
            comparison=Comparison(**{**comparison, "only": [OnlyProved(**o) for o in comparison["only"]]})
            if comparison
            else None,
            paired=[PairedTest(**test) for test in data.get("paired", [])],
            pass_at_k=data.get("pass_at_k"),
            plots=data.get("plots", []),
        )


def paired_tests(runs: Sequence[Run], labels: Sequence[str]) -> list[PairedTest]:
    """Every run against the first, on the theorems both recorded: how many only one of the
    two proved, and McNemar's exact p-value of that difference."""
    first = {r.theorem: r.status is SearchStatus.PROVED for r in runs[0].records}
    tests = []
    for run, label in zip(runs[1:], labels[1:]):
        other = {r.theorem: r.status is SearchStatus.PROVED for r in run.records}
        both = [name for name in first if name in other]
        only_first = sum(1 for name in both if first[name] and not other[name])
        only_other = sum(1 for name in both if other[name] and not first[name])
        tests.append(
            PairedTest(labels[0], label, len(both), only_first, only_other, mcnemar_exact(only_first, only_other))
        )
    return tests


def paired_lines(report: Report) -> list[str]:
    """The paired tests, a sentence each (the terminal and report.md)."""
    lines = []
    for test in report.paired:
        verdict = (
            "a difference this large would be rare if the runs were equally good"
            if test.p_value < 0.05
            else "no evidence that one run proves more than the other"
        )
        lines.append(
            f"{test.first} vs {test.second}: of {test.theorems} theorems both ran, "
            f"{test.only_first} proved by {test.first} only and {test.only_second} by "
            f"{test.second} only; McNemar's exact p = {test.p_value:.3g} ({verdict})"
        )
    return lines


def _session_figure(summary: RunSummary, key: str) -> float | None:
    """A figure of the last session (its clock), None before any."""
    return float(getattr(summary.session, key)) if summary.session is not None else None


def run_stats(run: Run) -> RunStats:
    """Pass rate, its interval, outcome counts and cost percentiles of ``run``."""
    records = run.records
    summary = Summary.of((r.theorem for r in records), records)
    counts = {status: 0 for status in STATUSES}
    counts.update(summary.status_counts)
    num_theorems = max(run.summary.num_theorems, summary.num_finished)
    proved = [r for r in records if r.status is SearchStatus.PROVED]
    stop_reasons: dict[str, int] = {}
    for record in records:
        stop_reasons[record.stop_reason.value] = stop_reasons.get(record.stop_reason.value, 0) + 1
    outcomes, num_trees = tactic_outcomes(run)
    return RunStats(
        name=run.name,
        path=str(run.path),
        num_theorems=num_theorems,
        num_finished=summary.num_finished,
        counts=counts,
        num_unfinished=num_theorems - summary.num_finished,
        pass_rate=summary.num_proved / num_theorems if num_theorems else 0.0,
        pass_rate_ci=wilson_interval(summary.num_proved, num_theorems),
        stop_reasons=dict(sorted(stop_reasons.items(), key=lambda kv: -kv[1])),
        expansions=spread([r.num_expansions for r in records]),
        expansions_to_proof=spread([r.num_expansions for r in proved]),
        tactics=spread([r.num_tactics for r in records]),
        wall_time_s=spread([r.wall_time_s for r in records]),
        total_search_time_s=summary.total_search_time_s,
        proved=sorted(r.theorem for r in proved),
        tactic_outcomes=outcomes,
        num_trees=num_trees,
        session_wall_time_s=_session_figure(run.summary, "wall_time_s"),
        theorems_per_hour=_session_figure(run.summary, "theorems_per_hour"),
        time_split=_summed_split(records),
        sessions_wall_time_s=[s.wall_time_s for s in run.summary.sessions],
    )


def compare(runs: Sequence[Run], labels: Sequence[str]) -> Comparison:
    """Which theorems every run proved, and which only one run proved (among all recorded)."""
    proved = [{r.theorem for r in run.records if r.status is SearchStatus.PROVED} for run in runs]
    recorded = [{r.theorem for r in run.records} for run in runs]
    only = []
    for i, label in enumerate(labels):
        others = set().union(*(p for j, p in enumerate(proved) if j != i))
        only.append(OnlyProved(label, sorted(proved[i] - others)))
    return Comparison(
        proved_by_all=len(set.intersection(*proved)),
        proved_by_any=len(set.union(*proved)),
        recorded_by_all=len(set.intersection(*recorded)),
        only=only,
    )


def _labels(runs: Sequence[Run]) -> list[str]:
    names = [run.name for run in runs]
    # Two runs in folders of the same name are told apart by their paths.
    return [str(run.path) for run in runs] if len(set(names)) < len(names) else names


def default_report_dir(run_dirs: Sequence[str | Path]) -> Path:
    """Where ``prover report`` writes by default: ``RUN_DIR/report`` for one run; for several,
    a folder of its own beside the first, named from the runs (``compare-a-vs-b``), so a
    comparison never replaces a run's own report."""
    paths = [Path(d) for d in run_dirs]
    if len(paths) == 1:
        return paths[0] / "report"
    import hashlib
    import re

    names = [re.sub(r"[^A-Za-z0-9_.-]+", "_", p.resolve().name).strip("_.") or "run" for p in paths]
    name = "compare-" + "-vs-".join(names)
    if len(name) > 80:  # many runs: the first two, how many more, and a digest of them all
        digest = hashlib.blake2b("\0".join(str(p.resolve()) for p in paths).encode(), digest_size=4).hexdigest()
        name = f"compare-{names[0][:25]}-vs-{names[1][:25]}-and-{len(names) - 2}-more-{digest}"
    return paths[0].resolve().parent / name


# ---- the report ---------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.{digits}g}"


def _spread_text(values: dict, unit: str = "") -> str:
    return " / ".join(_fmt(values[k]) for k in ("p50", "p90", "max")) + unit


def pass_rate_text(rate: float, interval: Sequence[float]) -> str:
    """``56.7% (44.1–68.4%)``: the rate and its 95% interval."""
    return f"{rate:.1%} ({interval[0]:.1%}–{interval[1]:.1%})"


def table_rows(stats: Sequence[RunStats]) -> list[tuple[str, list[str]]]:
    """(label, one cell per run) for the summary table, shared by the terminal and report.md."""
    rows = [
        ("theorems", [str(s.num_theorems) for s in stats]),
        ("pass rate (95% interval)", [pass_rate_text(s.pass_rate, s.pass_rate_ci) for s in stats]),
    ]
    rows += [(status, [str(s.counts.get(status, 0)) for s in stats]) for status in STATUSES]
    extra = sorted({k for s in stats for k in s.counts} - set(STATUSES))
    rows += [(status, [str(s.counts.get(status, 0)) for s in stats]) for status in extra]
    if any(s.num_unfinished for s in stats):
        rows.append(("not yet run", [str(s.num_unfinished) for s in stats]))
    rows += [
        ("expansions (p50 / p90 / max)", [_spread_text(s.expansions) for s in stats]),
        ("expansions to proof (p50 / p90 / max)", [_spread_text(s.expansions_to_proof) for s in stats]),
        ("tactic applications (p50 / p90 / max)", [_spread_text(s.tactics) for s in stats]),
        ("search time, s (p50 / p90 / max)", [_spread_text(s.wall_time_s) for s in stats]),
        ("search time summed over theorems, s", [_fmt(s.total_search_time_s, 4) for s in stats]),
        ("of which policy / Lean / engine, s", [split_text(s.time_split) if s.time_split else "–" for s in stats]),
    ]
    if any(s.session_wall_time_s is not None for s in stats):
        rows.append(("wall-clock time of the last session, s", [_fmt(s.session_wall_time_s, 4) for s in stats]))
        if any(len(s.sessions_wall_time_s) > 1 for s in stats):
            rows.append(
                (
                    "sessions: how many, wall-clock time summed, s",
                    [f"{len(s.sessions_wall_time_s)}, {_fmt(sum(s.sessions_wall_time_s), 4)}" for s in stats],
                )
            )
        rows.append(("theorems per hour (last session)", [_fmt(s.theorems_per_hour, 4) for s in stats]))
    return rows


def outcome_rows(stats: Sequence[RunStats]) -> list[tuple[str, list[str]]]:
    """Why searches stopped, and what the tactics tried did (from the saved trees)."""
    reasons = list(dict.fromkeys(r for s in stats for r in s.stop_reasons))
    rows = [(f"stopped: {reason}", [str(s.stop_reasons.get(reason, 0)) for s in stats]) for reason in reasons]
    rows.append(("trees read", [f"{s.num_trees} of {s.num_finished}" for s in stats]))
    for name in TACTIC_OUTCOMES:
        if any(s.tactic_outcomes.get(name) for s in stats):
            rows.append((f"tactics: {name}", [str(s.tactic_outcomes.get(name, 0)) for s in stats]))
    return rows


def build_report(runs: Sequence[Run]) -> Report:
    """The report: one ``RunStats`` per run, the settings that differ and, for several runs,
    which theorems only one of them proved and the paired tests."""
    if not runs:
        raise ProverError("a report needs at least one run directory")
    labels = _labels(runs)
    settings, num_same = settings_rows(runs)
    several = len(runs) > 1
    return Report(
        labels=labels,
        runs=[run_stats(run) for run in runs],
        settings=settings,
        settings_same=num_same,
        provenance=provenance_rows(runs),
        comparison=compare(runs, labels) if several else None,
        paired=paired_tests(runs, labels) if several else [],
        pass_at_k=[run.summary.pass_at_k or {} for run in runs] if any(run.summary.pass_at_k for run in runs) else None,
    )


# Characters a report must not copy from a name: controls (NUL...) and the bidirectional
# overrides and isolates that make text read in another order than it is stored.
_HIDDEN = dict.fromkeys(
    [*range(0x20), 0x7F, *range(0x80, 0xA0), 0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)


def printable(text: str) -> str:
    """``text`` without control, bidi-override and bidi-isolate characters (tabs and
    newlines become spaces)."""
    return text.translate({**_HIDDEN, 0x09: " ", 0x0A: " ", 0x0D: " "})


def pass_at_k_lines(report: Report) -> list[str]:
    """report.md's pass@k section (runs with several searches per theorem), or nothing."""
    curves = report.pass_at_k
    if not curves:
        return []
    labels = report.labels
    ks = sorted({int(k) for curve in curves for k in curve})
    shown = [k for k in ks if k & (k - 1) == 0 or k == ks[-1]]  # 1, 2, 4, ... and N
    lines = ["", "## pass@k", "", "| k | " + " | ".join(labels) + " |", "|---:|" + "---:|" * len(labels)]
    for k in shown:
        cells = []
        for curve in curves:
            entry = curve.get(str(k))
            cells.append(f"{entry['estimate']:.1%} [{entry['low']:.1%}, {entry['high']:.1%}]" if entry else "")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "pass@k is Chen et al.'s (2021) unbiased estimator over each theorem's searches, averaged over "
        "the theorem set, with a 95% bootstrap interval over theorems. Searches cancelled once another "
        "had proved the theorem are left out, which makes the estimate for k < N an upper one; pass@N "
        "is exact.",
    ]
    return lines


def _one_line(name: str, width: int = 70) -> str:
    # Some theorem names are whole statements, with newlines; a listing shows one line each.
    text = " ".join(printable(name).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _md_name(name: str, width: int = 120) -> str:
    text = _one_line(name, width).replace("|", "\\|")  # a bare | would end a table cell
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _md_code(text: str) -> str:
    """``text`` as inline code fit for a table cell."""
    text = " ".join(printable(text).split()).replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _md_link(text: str, target: str) -> str:
    return f"[{text}](<{target}>)" if any(c in target for c in " ()<>") else f"[{text}]({target})"


def tree_page_name(tree_file: str | Path) -> str:
    """The run browser's page for a tree file: ``trees/a.json.gz`` -> ``a.html``."""
    name = Path(tree_file).name
    for suffix in (".json.gz", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)] + ".html"
    return name + ".html"


def tree_link(run: Run, record: ResultRecord, from_dir: Path) -> str | None:
    """A relative link from ``from_dir`` to the record's tree page (written by ``prover viz
    RUN_DIR``) when it exists, else to the tree file; None without a tree."""
    tree = run.tree_path(record)
    if tree is None:
        return None
    page = run.path / "viz" / tree_page_name(tree)
    target = page if page.is_file() else tree
    return Path(os.path.relpath(target.resolve(), from_dir.resolve())).as_posix()


def theorem_rows(runs: Sequence[Run], out_dir: Path) -> list[tuple[str, list[str]]]:
    """(theorem, one markdown cell per run: status, expansions, time, link to its tree)."""
    by_run = [{r.theorem: r for r in run.records} for run in runs]
    names = list(dict.fromkeys(name for records in by_run for name in records))
    rows = []
    for name in names:
        cells = []
        for run, records in zip(runs, by_run):
            record = records.get(name)
            if record is None:
                cells.append("–")
                continue
            split = time_split(record)
            cell = (
                f"{record.status.value}, {record.num_expansions} exp, {_fmt(record.wall_time_s)} s "
                f"(policy {_fmt(split['policy_s'])}, Lean {_fmt(split['env_s'])}, "
                f"engine {_fmt(split['engine_s'])})"
            )
            link = tree_link(run, record, out_dir)
            cells.append(cell + (" · " + _md_link("tree", link) if link else ""))
        rows.append((name, cells))
    return rows


def render_markdown(report: Report, plots: Sequence[str], theorems: Sequence[tuple[str, list[str]]] = ()) -> str:
    """report.md: settings, the summary table, outcomes, the theorems only one run proved,
    the plots, and every theorem linked to its tree."""
    runs = report.runs
    labels = report.labels

    def table(first: str, rows: Iterable[tuple[str, list[str]]]) -> list[str]:
        lines = [f"| {first} | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
        return lines + [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]

    lines = [f"# Run report: {' vs '.join(labels)}", ""]
    lines += [f"- `{label}`: {s.path}" for label, s in zip(labels, runs)]
    settings = report.settings
    same = report.settings_same
    lines += ["", "## Settings", ""]
    if settings:
        lines += table("setting", [(f"`{k}`", [_md_code(v) for v in values]) for k, values in settings])
    if len(labels) > 1:
        lines += [
            "",
            f"{same} other setting{'s are' if same != 1 else ' is'} the same in every run."
            if settings
            else f"All {same} settings are the same in every run.",
        ]
    elif not settings:
        lines += ["(the run's config.json gives no settings)"]
    lines += ["", "## Results", ""]
    lines += table("", table_rows(runs))
    lines += [
        "",
        "Pass rates count the whole theorem set; the interval is Wilson's 95% score interval. "
        "A search's time splits into the policy's (and value model's), Lean's (the environment's, "
        "the re-check included) and the engine's (the rest).",
    ]
    provenance = report.provenance
    if provenance:
        lines += ["", "## Provenance", ""]
        lines += table("", [(f"`{k}`", [_md_code(v) for v in values]) for k, values in provenance])
    lines += ["", "## Outcomes", ""]
    lines += table("", outcome_rows(runs))
    lines += [
        "",
        "Refused tactics are those the safety filter stopped before Lean saw them; "
        "not recorded: the replay environment has no record of the tactic, so Lean never ran it.",
    ]
    if report.paired:
        lines += ["", "## Paired test", ""]
        lines += [f"- {line}" for line in paired_lines(report)]
        lines += [
            "",
            "On the theorems both runs recorded, only those one run proved and the other did not "
            "count; the test asks how likely so lopsided a split is if each could go either way.",
        ]
    comparison = report.comparison
    if comparison:
        lines += [
            "",
            f"Proved by all {len(labels)} runs: {comparison.proved_by_all}; "
            f"by at least one: {comparison.proved_by_any}.",
        ]
        for entry in comparison.only:
            names = entry.theorems
            lines += ["", f"## Proved by {entry.label} only ({len(names)})", ""]
            lines += [f"- {_md_name(name)}" for name in names] or ["(none)"]
    lines += pass_at_k_lines(report)
    lines += ["", "## Plots", ""]
    lines += [f"![{Path(plot).stem.replace('_', ' ')}]({Path(plot).name})" for plot in plots]
    if theorems:
        lines += ["", "## Theorems", ""]
        lines += ["Each links to its tree: the page `prover viz RUN_DIR` writes, else the tree file.", ""]
        lines += table("theorem", [(_md_name(name, 80), cells) for name, cells in theorems])
    return "\n".join(lines) + "\n"


def write_report(runs: Sequence[Run], out_dir: str | Path) -> Report:
    """Write report.json, report.md and the plots into ``out_dir``; return the report."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProverError(f"cannot write the report to {out_dir}: {exc.strerror or exc}") from None
    report = build_report(runs)
    labels = report.labels
    from prover.views.plots import write_report_plots

    plots = write_report_plots(runs, report.runs, labels, out_dir)
    if report.pass_at_k:
        from prover.views.plots import plot_labels, plot_pass_at_k

        plots.append(plot_pass_at_k(report.pass_at_k, plot_labels(labels), out_dir / "pass_at_k.png"))
    report = replace(report, plots=[str(p) for p in plots])
    (out_dir / "report.json").write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False), encoding="utf-8")
    markdown = render_markdown(report, report.plots, theorem_rows(runs, out_dir))
    (out_dir / "report.md").write_text(markdown, encoding="utf-8")
    return report


def comparison_lines(report: Report, limit: int = 20) -> list[str]:
    """The theorems only one run proved, for the terminal (at most ``limit`` names each)."""
    comparison = report.comparison
    if not comparison:
        return []
    lines = [f"proved by all {len(report.runs)} runs: {comparison.proved_by_all}"] + paired_lines(report)
    for entry in comparison.only:
        names = entry.theorems
        shown = ", ".join(_one_line(name) for name in names[:limit])
        if len(names) > limit:
            shown += f", … ({len(names) - limit} more)"
        lines.append(f"proved by {entry.label} only ({len(names)}): {shown or '(none)'}")
    return lines


# ---- the run browser ----------------------------------------------------------------------


def run_page_data(run: Run, pages: dict[str, str]) -> dict:
    """What the run browser's page shows: the run's figures and one row per theorem.

    ``pages`` maps a theorem to its tree page's file name. Each row is ``[theorem, status,
    stop_reason, proof_length, expansions, tactics, states, search_time_s, error, page,
    policy_time_s, lean_time_s]``.
    """
    stats = run_stats(run)
    rows = [
        [
            r.theorem,
            r.status.value,
            r.stop_reason.value,
            len(r.proof) if r.proof else None,
            r.num_expansions,
            r.num_tactics,
            r.num_states,
            r.wall_time_s,
            r.error or "",
            pages.get(r.theorem),
            time_split(r)["policy_s"],
            time_split(r)["env_s"],
        ]
        for r in run.records
    ]
    settings, _ = settings_rows([run])
    return {
        "name": run.name,
        "path": str(run.path.resolve()),
        "num_theorems": stats.num_theorems,
        "num_finished": stats.num_finished,
        "num_unfinished": stats.num_unfinished,
        "counts": {k: v for k, v in stats.counts.items() if v},
        "pass_rate": stats.pass_rate,
        "pass_rate_ci": list(stats.pass_rate_ci),
        "total_search_time_s": stats.total_search_time_s,
        "time_split": stats.time_split,
        "session_wall_time_s": stats.session_wall_time_s,
        "provenance": provenance_of(run),
        "settings": [[key, values[0]] for key, values in settings],
        "rows": rows,
    }


def write_run_browser(run: Run, out_dir: str | Path | None = None) -> tuple[Path, int]:
    """Write the run's browser: ``index.html`` (every theorem: sort, filter, search) and one
    page per saved tree beside it, in ``out_dir`` (default ``RUN_DIR/viz``).

    A tree page newer than its tree file and than the viewer's code is kept, so running it
    again on a growing run only renders the new trees. Returns (index path, pages written).
    """
    from prover.views.viz import render_html, render_run_html, viewer_mtime

    out_dir = Path(out_dir) if out_dir else run.path / "viz"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProverError(f"cannot write the run's pages to {out_dir}: {exc.strerror or exc}") from None
    with_trees = [(r, run.tree_path(r)) for r in run.records]
    with_trees = [(r, p) for r, p in with_trees if p is not None]
    names = [tree_page_name(tree_file) for _, tree_file in with_trees]
    code_mtime = viewer_mtime()
    stale = {
        i
        for i, (_, tree_file) in enumerate(with_trees)
        if not (out_dir / names[i]).is_file()
        or (out_dir / names[i]).stat().st_mtime < max(tree_file.stat().st_mtime, code_mtime)
    }
    stale |= {i - 1 for i in stale if i > 0}  # the page before a new one gains its "next" link
    pages: dict[str, str] = {}
    written = 0
    for index, (record, tree_path) in enumerate(with_trees):
        if index in stale:
            nav = {
                "index": "index.html",
                "prev": names[index - 1] if index > 0 else None,
                "next": names[index + 1] if index + 1 < len(names) else None,
            }
            try:
                tree = SearchTree.load(tree_path)
            except TreeFormatError:
                continue  # a damaged tree gets no page; the index row says it has none
            (out_dir / names[index]).write_text(render_html(tree, nav=nav), encoding="utf-8")
            written += 1
        pages[record.theorem] = names[index]
    index_path = out_dir / "index.html"
    index_path.write_text(render_run_html(run_page_data(run, pages)), encoding="utf-8")
    return index_path, written
