"""Run reports: every number checked against one computed here from results.jsonl or the
tree files; settings that differ, Wilson intervals, plots, links to the trees."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from search import ROOT, ProofFinished, ResultRecord, SearchStatus, SearchTree, StopReason

from prover.cli import main
from prover.errors import ProverError
from prover.views.report import (
    Report,
    build_report,
    load_run,
    percentile,
    run_stats,
    settings_rows,
    table_rows,
    wilson_interval,
    write_report,
)

STOP_REASONS = {
    "proved": StopReason.PROVED,
    "failed": StopReason.EXHAUSTED,
    "open": StopReason.MAX_EXPANSIONS,
    "rejected": StopReason.PROVED,
    "error": StopReason.ENV_ERROR,
}


def record(theorem: str, status: str, expansions: int, wall_time_s: float) -> dict:
    """A line of results.jsonl, as a run writes it."""
    return ResultRecord(
        theorem,
        SearchStatus(status),
        STOP_REASONS[status],
        proof=("simp",) if status in ("proved", "rejected") else None,
        num_expansions=expansions,
        num_tactics=expansions * 8,
        num_states=expansions * 3,
        wall_time_s=wall_time_s,
        error="the environment could not start" if status == "error" else None,
    ).to_json()


def proof_tree(theorem: str) -> SearchTree:
    """The tree of a one-step proof by ``simp`` (a proved record is verified against its tree)."""
    tree = SearchTree(theorem, "⊢ goal")
    tree.add_outcome(ROOT, "simp", -0.1, ProofFinished())
    tree.mark_expanded(ROOT)
    return tree


def write_run(path, records, num_theorems=None, config=None):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config or {}))
    records = [dict(data) for data in records]
    for index, data in enumerate(records):
        if data["status"] == "proved" and data.get("tree") is None:
            (path / "trees").mkdir(exist_ok=True)
            proof_tree(data["theorem"]).save(path / "trees" / f"proof-{index}.json")
            data["tree"] = f"trees/proof-{index}.json"
    (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if num_theorems is not None:
        (path / "summary.json").write_text(json.dumps({"num_theorems": num_theorems}))
    return path


MIXED = [
    record("t1", "proved", 3, 0.5),
    record("t2", "proved", 17, 2.0),
    record("t3", "failed", 9, 1.0),
    record("t4", "open", 100, 7.5),
    record("t5", "rejected", 12, 1.5),
    record("t6", "error", 0, 0.1),
    record("t7", "proved", 40, 3.0),
    record("t8", "open", 100, 8.0),
]


@pytest.fixture
def no_drawing(monkeypatch):
    """Reports that name their plots without drawing them: a plot takes ~0.4 s to draw, and
    ``test_report_plots_are_real_images`` draws every kind."""
    import prover.views.plots

    def names_only(runs, stats, labels, out_dir):
        keys = [k for k in prover.views.plots.PLOT_FILES if k != "scatter" or len(runs) > 1]
        return [out_dir / prover.views.plots.PLOT_FILES[k] for k in keys]

    monkeypatch.setattr(prover.views.plots, "write_report_plots", names_only)


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
        "proof": [
            float(np.percentile(proof_expansions, 50)),
            float(np.percentile(proof_expansions, 90)),
            max(proof_expansions),
        ]
        if proof_expansions
        else [None, None, None],
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


def test_report_numbers_equal_those_from_results_jsonl(tmp_path, no_drawing):
    run = write_run(tmp_path / "mixed", MIXED, num_theorems=10)
    report = write_report([load_run(run)], tmp_path / "out").to_json()
    assert_matches(report["runs"][0], expected_from(run / "results.jsonl", num_theorems=10))
    stats = report["runs"][0]
    assert stats["pass_rate"] == pytest.approx(3 / 10)  # the two theorems not yet run count against it
    assert stats["num_unfinished"] == 2
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["runs"][0]["counts"] == stats["counts"]
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "| pass rate (95% interval) | 30.0% (10.8%–60.3%) |" in markdown
    assert stats["pass_rate_ci"] == pytest.approx(wilson_interval(3, 10))
    assert "| expansions (p50 / p90 / max) | 14.5 / 100 / 100 |" in markdown
    assert "| not yet run | 2 |" in markdown
    assert "![pass rate vs expansions](pass_rate_vs_expansions.png)" in markdown


def test_wilson_interval_matches_published_values():
    # Newcombe (1998), Table I: 81/263 -> 0.2553-0.3662; 15/148 -> 0.0624-0.1605; 0/20 -> 0-0.1611.
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson_interval(15, 148) == pytest.approx((0.0624, 0.1605), abs=1e-4)
    assert wilson_interval(0, 20) == pytest.approx((0.0, 0.1611), abs=1e-4)
    low, high = wilson_interval(20, 20)
    assert high == 1.0 and low == pytest.approx(1 - 0.1611, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_without_a_summary_the_records_are_the_denominator(tmp_path):
    run = write_run(tmp_path / "bare", MIXED)
    stats = build_report([load_run(run)]).to_json()["runs"][0]
    assert_matches(stats, expected_from(run / "results.jsonl"))
    assert stats["pass_rate"] == pytest.approx(3 / 8)


def test_report_of_a_real_run_matches_its_results(tmp_path, no_drawing, capsys):
    run = tmp_path / "synthetic-run"
    main(
        [
            "prove-split",
            "--out",
            str(run),
            "--num-workers",
            "0",
            "--no-progress",
            "--num-theorems",
            "8",
            "--max-expansions",
            "30",
        ]
    )
    capsys.readouterr()
    main(["report", str(run)])
    printed = capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    report = json.loads((run / "report" / "report.json").read_text())
    assert_matches(report["runs"][0], expected_from(run / "results.jsonl", summary["num_theorems"]))
    assert report["runs"][0]["pass_rate"] == pytest.approx(summary["pass_rate"])
    assert f"{summary['pass_rate']:.1%}" in printed and "Run report" in printed
    # One run: its settings in full, as config.json holds them.
    config = json.loads((run / "config.json").read_text())
    settings = {entry["setting"]: entry["values"][0] for entry in report["settings"]}
    assert settings["limits.max_expansions"] == "30" and settings["env.name"] == config["env"]["name"]
    assert not any(key.startswith("distributed.") for key in settings)


def test_two_runs_are_compared_side_by_side(tmp_path, no_drawing, capsys):
    first = write_run(tmp_path / "a" / "run", MIXED, num_theorems=8)
    changed = [
        record("t1", "failed", 100, 4.0),
        record("t2", "proved", 5, 0.3),
        record("t3", "proved", 2, 0.2),
        record("t9", "proved", 1, 0.1),
    ]
    second = write_run(tmp_path / "b" / "run", changed)
    out = tmp_path / "cmp"
    main(["report", str(first), str(second), "--output", str(out)])
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert [entry["theorems"] for entry in report["comparison"]["only"]] == [["t1", "t7"], ["t3", "t9"]]
    assert report["comparison"]["proved_by_all"] == 1
    # Same folder name: the runs are labelled by their paths.
    assert [r["label"] for r in report["runs"]] == [str(first), str(second)]
    assert_matches(report["runs"][1], expected_from(second / "results.jsonl"))
    markdown = (out / "report.md").read_text()
    assert "## Proved by " + str(first) + " only (2)" in markdown and "- `t9`" in markdown
    assert "proved by all 2 runs: 1" in printed
    assert "![expansions scatter](expansions_scatter.png)" in markdown


def run_with(tmp_path, name: str, *flags: str):
    run = tmp_path / name
    main(["prove-split", "--out", str(run), "--num-workers", "0", "--no-progress", "--num-theorems", "8", *flags])
    return run


def test_three_runs_show_only_the_settings_that_differ_and_an_interval_each(tmp_path, no_drawing, capsys):
    runs = [
        run_with(tmp_path, "a", "--max-expansions", "20"),
        run_with(tmp_path, "b", "--max-expansions", "60"),
        run_with(tmp_path, "c", "--max-expansions", "60", "--scorer", "length_normalised"),
    ]
    capsys.readouterr()
    out = tmp_path / "abc"
    main(["report", *map(str, runs), "-o", str(out)])
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    differ = {entry["setting"]: entry["values"] for entry in report["settings"]}
    assert differ == {
        "limits.max_expansions": ["20", "60", "60"],
        "search.scorer": ["cumulative", "cumulative", "length_normalised"],
    }
    configs = [json.loads((run / "config.json").read_text()) for run in runs]
    assert report["settings_same"] == len(settings_rows([load_run(runs[0])])[0]) - 2
    assert configs[0]["env"] == configs[2]["env"]
    for run, stats in zip(runs, report["runs"]):
        summary = json.loads((run / "summary.json").read_text())
        assert stats["pass_rate_ci"] == pytest.approx(wilson_interval(summary["num_proved"], summary["num_theorems"]))
        low, high = stats["pass_rate_ci"]
        assert f"{stats['pass_rate']:.1%} ({low:.1%}–{high:.1%})" in (out / "report.md").read_text()
    assert "Settings that differ" in printed and "limits.max_expansions" in printed and "length_normalised" in printed
    assert "| `search.scorer` | `cumulative` | `cumulative` | `length_normalised` |" in (out / "report.md").read_text()
    assert len(report["comparison"]["only"]) == 3


def test_outcomes_count_refused_tactics_from_the_trees(tmp_path, no_drawing, capsys):
    run = run_with(
        tmp_path,
        "refusing",
        "--max-expansions",
        "20",
        "--tactic",
        "sorry",
        "--tactic",
        "simp",
        "--tactic",
        "norm_num",
        "--tactic",
        "linarith",
    )
    capsys.readouterr()
    stats = run_stats(load_run(run))
    expected = Counter()
    for record in load_run(run).records:
        tree = SearchTree.load(run / record.tree)
        for _, _, attrs in tree.graph.edges(data=True):
            refused = attrs["error"].startswith("refused:")
            expected["refused" if refused else attrs["outcome"]] += 1
    assert expected["refused"] > 0
    assert stats.tactic_outcomes["refused"] == expected["refused"]
    assert stats.tactic_outcomes["Lean error"] == expected["error"]
    assert stats.tactic_outcomes["new state"] == expected["state"]
    assert sum(stats.tactic_outcomes.values()) == sum(expected.values())
    assert stats.num_trees == stats.num_finished
    main(["report", str(run)])
    assert "tactics: refused" in capsys.readouterr().out
    markdown = (run / "report" / "report.md").read_text()
    assert f"| tactics: refused | {expected['refused']} |" in markdown


def test_report_md_links_each_theorem_to_its_tree_and_then_to_its_page(tmp_path, no_drawing, capsys):
    run = run_with(tmp_path, "linked", "--max-expansions", "20")
    main(["report", str(run)])
    records = load_run(run).records

    def links() -> list[Path]:
        markdown = (run / "report" / "report.md").read_text()
        targets = re.findall(r"\[tree\]\(([^)]+)\)", markdown)
        return [(run / "report" / target).resolve() for target in targets]

    assert links() == [(run / r.tree).resolve() for r in records]  # before `prover viz`: the tree files
    main(["viz", str(run)])
    main(["report", str(run)])
    capsys.readouterr()
    pages = links()
    assert len(pages) == len(records)
    assert all(page.parent == (run / "viz").resolve() and page.suffix == ".html" and page.is_file() for page in pages)


def test_a_run_that_failed_at_start_is_reported_in_one_sentence(tmp_path, capsys):
    run = tmp_path / "failed-start"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"env": {"name": "dojo"}}))
    for results in (None, ""):
        if results is not None:
            (run / "results.jsonl").write_text(results)
        with pytest.raises(SystemExit) as exit_info:
            main(["report", str(run)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "has no finished theorem: the run failed at start or has not finished one yet" in err
        assert err.count("\n") == 1 and "theorems 0" not in err
    assert not (run / "report").exists()


def test_report_json_reads_back_as_the_stats_and_report_md_shows_the_table_rows(tmp_path, no_drawing):
    run = load_run(write_run(tmp_path / "r", MIXED, num_theorems=10))
    report = write_report([run], tmp_path / "out")
    saved = Report.from_json(json.loads((tmp_path / "out" / "report.json").read_text()))
    assert saved == report and saved.runs == [run_stats(run)]
    markdown = (tmp_path / "out" / "report.md").read_text().splitlines()
    for label, cells in table_rows(saved.runs):
        assert f"| {label} | " + " | ".join(cells) + " |" in markdown


def test_report_plots_are_real_images(tmp_path):
    runs = [load_run(write_run(tmp_path / "r", MIXED)), load_run(write_run(tmp_path / "s", MIXED[:4]))]
    report = write_report(runs, tmp_path / "out")
    names = [Path(plot).name for plot in report.plots]
    assert names == [
        "pass_rate_vs_expansions.png",
        "pass_rate_vs_tactics.png",
        "pass_rate_vs_time.png",
        "time_to_proof_cdf.png",
        "proof_length.png",
        "expansions_scatter.png",
        "outcomes.png",
    ]
    for plot in report.plots:
        with Image.open(plot) as image:
            assert image.format == "PNG" and image.width >= 500 and image.height >= 300
            assert len(image.convert("RGB").getcolors(maxcolors=1_000_000)) > 20


def test_a_torn_last_line_is_skipped_and_left_in_place(tmp_path):
    run = write_run(tmp_path / "live", MIXED[:2])
    results = run / "results.jsonl"
    with open(results, "a") as handle:
        handle.write('{"theorem": "t3", "sta')  # a write still in progress
    before = results.read_bytes()
    stats = build_report([load_run(run)]).to_json()["runs"][0]
    assert stats["num_finished"] == 2
    assert results.read_bytes() == before


def test_a_directory_without_results_is_refused_with_one_sentence(tmp_path, capsys):
    with pytest.raises(ProverError, match="not a run directory"):
        load_run(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "not a run directory" in capsys.readouterr().err
