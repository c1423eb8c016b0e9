"""Run reports: every number checked against one computed here from results.jsonl."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from search import ResultRecord, SearchStatus, StopReason

from prover.cli import main
from prover.errors import ProverError
from prover.report import build_report, load_run, percentile, run_stats, stats_of, table_rows, write_report

STOP_REASONS = {"proved": StopReason.PROVED, "failed": StopReason.EXHAUSTED, "open": StopReason.MAX_EXPANSIONS,
                "rejected": StopReason.PROVED, "error": StopReason.ENV_ERROR}


def record(theorem: str, status: str, expansions: int, wall_time_s: float) -> dict:
    """A line of results.jsonl, as a run writes it."""
    return ResultRecord(
        theorem, SearchStatus(status), STOP_REASONS[status],
        proof=("simp",) if status in ("proved", "rejected") else None,
        num_expansions=expansions, num_tactics=expansions * 8, num_states=expansions * 3, wall_time_s=wall_time_s,
        error="the environment could not start" if status == "error" else None,
    ).to_json()


def write_run(path, records, num_theorems=None):
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if num_theorems is not None:
        (path / "summary.json").write_text(json.dumps({"num_theorems": num_theorems}))
    return path


MIXED = [
    record("t1", "proved", 3, 0.5), record("t2", "proved", 17, 2.0), record("t3", "failed", 9, 1.0),
    record("t4", "open", 100, 7.5), record("t5", "rejected", 12, 1.5), record("t6", "error", 0, 0.1),
    record("t7", "proved", 40, 3.0), record("t8", "open", 100, 8.0),
]


def expected_from(results_path, num_theorems=None) -> dict:
    """The report's numbers, computed independently (numpy percentiles, Counter)."""
    records = [json.loads(line) for line in results_path.read_text().splitlines() if line.strip()]
    statuses = Counter(r["status"] for r in records)
    expansions = [r["num_expansions"] for r in records]
    proof_expansions = [r["num_expansions"] for r in records if r["status"] == "proved"]
    times = [r["wall_time_s"] for r in records]
    total = num_theorems if num_theorems is not None else len(records)
    return {
        "pass_rate": statuses["proved"] / total,
        "num_theorems": total,
        "counts": {s: statuses[s] for s in ("proved", "failed", "open", "rejected", "error")},
        "expansions": [float(np.percentile(expansions, 50)), float(np.percentile(expansions, 90)), max(expansions)],
        "proof": [float(np.percentile(proof_expansions, 50)), float(np.percentile(proof_expansions, 90)),
                  max(proof_expansions)] if proof_expansions else [None, None, None],
        "time": [float(np.percentile(times, 50)), float(np.percentile(times, 90)), max(times)],
        "proved": sorted(r["theorem"] for r in records if r["status"] == "proved"),
    }


def assert_matches(stats: dict, expected: dict) -> None:
    assert stats["pass_rate"] == pytest.approx(expected["pass_rate"])
    assert stats["num_theorems"] == expected["num_theorems"]
    assert {k: stats["counts"][k] for k in expected["counts"]} == expected["counts"]
    for key, name in (("expansions", "expansions"), ("expansions_to_proof", "proof"), ("wall_time_s", "time")):
        got = [stats[key][q] for q in ("p50", "p90", "max")]
        assert got == pytest.approx(expected[name]), key
    assert stats["proved"] == expected["proved"]


def test_percentile_interpolates_like_numpy():
    values = [7, 1, 3, 100, 12, 40]
    for q in (0, 10, 50, 90, 99, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert percentile([], 50) is None


def test_report_numbers_equal_those_from_results_jsonl(tmp_path):
    run = write_run(tmp_path / "mixed", MIXED, num_theorems=10)
    report = write_report([load_run(run)], tmp_path / "out")
    assert_matches(report["runs"][0], expected_from(run / "results.jsonl", num_theorems=10))
    stats = report["runs"][0]
    assert stats["pass_rate"] == pytest.approx(3 / 10)  # the two theorems not yet run count against it
    assert stats["num_unfinished"] == 2
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["runs"][0]["counts"] == stats["counts"]
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "| pass rate | 30.0% |" in markdown
    assert "| expansions (p50 / p90 / max) | 14.5 / 100 / 100 |" in markdown
    assert "| not yet run | 2 |" in markdown
    assert "![pass rate vs expansions](pass_rate_vs_expansions.png)" in markdown


def test_without_a_summary_the_records_are_the_denominator(tmp_path):
    run = write_run(tmp_path / "bare", MIXED)
    stats = build_report([load_run(run)])["runs"][0]
    assert_matches(stats, expected_from(run / "results.jsonl"))
    assert stats["pass_rate"] == pytest.approx(3 / 8)


def test_report_of_a_real_run_matches_its_results(tmp_path, capsys):
    run = tmp_path / "synthetic-run"
    main(["prove-split", "--out", str(run), "--num-workers", "0", "--no-progress",
          "--num-theorems", "8", "--max-expansions", "30"])
    capsys.readouterr()
    main(["report", str(run)])
    printed = capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    report = json.loads((run / "report" / "report.json").read_text())
    assert_matches(report["runs"][0], expected_from(run / "results.jsonl", summary["num_theorems"]))
    assert report["runs"][0]["pass_rate"] == pytest.approx(summary["pass_rate"])
    assert f"{summary['pass_rate']:.1%}" in printed and "Run report" in printed


def test_two_runs_are_compared_side_by_side(tmp_path, capsys):
    first = write_run(tmp_path / "a" / "run", MIXED, num_theorems=8)
    changed = [record("t1", "failed", 100, 4.0), record("t2", "proved", 5, 0.3), record("t3", "proved", 2, 0.2),
               record("t9", "proved", 1, 0.1)]
    second = write_run(tmp_path / "b" / "run", changed)
    out = tmp_path / "cmp"
    main(["report", str(first), str(second), "--output", str(out)])
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["comparison"]["only_first"] == ["t1", "t7"]
    assert report["comparison"]["only_second"] == ["t3", "t9"]
    assert report["comparison"]["proved_by_both"] == 1
    # Same folder name: the runs are labelled by their paths.
    assert [r["label"] for r in report["runs"]] == [str(first), str(second)]
    assert_matches(report["runs"][1], expected_from(second / "results.jsonl"))
    markdown = (out / "report.md").read_text()
    assert "## Proved by " + str(first) + " only (2)" in markdown and "- `t9`" in markdown
    assert "proved by both: 1" in printed


def test_report_json_reads_back_as_the_stats_and_report_md_shows_the_table_rows(tmp_path):
    run = load_run(write_run(tmp_path / "r", MIXED, num_theorems=10))
    report = write_report([run], tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert stats_of(saved) == stats_of(report) == [run_stats(run)]
    markdown = (tmp_path / "out" / "report.md").read_text().splitlines()
    for label, cells in table_rows(stats_of(saved)):
        assert f"| {label} | " + " | ".join(cells) + " |" in markdown


def test_report_plots_are_real_images(tmp_path):
    report = write_report([load_run(write_run(tmp_path / "r", MIXED))], tmp_path / "out")
    assert len(report["plots"]) == 2
    for plot in report["plots"]:
        with Image.open(plot) as image:
            assert image.format == "PNG" and image.width >= 500 and image.height >= 300
            assert len(image.convert("RGB").getcolors(maxcolors=1_000_000)) > 20


def test_a_torn_last_line_is_skipped_and_left_in_place(tmp_path):
    run = write_run(tmp_path / "live", MIXED[:2])
    results = run / "results.jsonl"
    with open(results, "a") as handle:
        handle.write('{"theorem": "t3", "sta')  # a write still in progress
    before = results.read_bytes()
    stats = build_report([load_run(run)])["runs"][0]
    assert stats["num_finished"] == 2
    assert results.read_bytes() == before


def test_a_directory_without_results_is_refused_with_one_sentence(tmp_path, capsys):
    with pytest.raises(ProverError, match="not a run directory"):
        load_run(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "not a run directory" in capsys.readouterr().err
