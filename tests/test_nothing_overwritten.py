"""Nothing a user made is replaced without a word: a comparison report goes to a folder of
its own, summary.json keeps every session's figures (and a resume that does nothing adds
nothing), and each ``prover attack`` saves its tree under a new name."""

from __future__ import annotations

import json
import re

import pytest

from prover.cli import main

IN_PROCESS = ["--num-workers", "0", "--no-progress"]


def cli(*args) -> int:
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return exc.code or 0
    return 0


@pytest.fixture
def no_drawing(monkeypatch):
    import prover.views.plots

    monkeypatch.setattr(prover.views.plots, "write_report_plots", lambda runs, stats, labels, out_dir: [])


def test_a_comparison_never_replaces_a_runs_own_report(tmp_path, no_drawing, capsys):
    runs = []
    for name, budget in (("a", "10"), ("b", "30"), ("c", "60")):
        runs.append(tmp_path / name)
        assert cli("prove-split", "--out", runs[-1], "--limit", "4", "--max-expansions", budget, *IN_PROCESS) == 0
    assert cli("report", runs[0]) == 0
    own = (runs[0] / "report" / "report.md").read_bytes()
    capsys.readouterr()
    assert cli("report", *runs) == 0
    printed = capsys.readouterr().out
    # Before: the comparison was written into a/report/, replacing a's own report.
    assert (runs[0] / "report" / "report.md").read_bytes() == own
    folder = tmp_path / "compare-a-vs-b-vs-c"
    report = json.loads((folder / "report.json").read_text())
    assert [r["label"] for r in report["runs"]] == ["a", "b", "c"]
    assert f"report written to {folder / 'report.md'}" in printed
    # -o still decides.
    assert cli("report", runs[0], runs[1], "-o", tmp_path / "mine") == 0
    assert (tmp_path / "mine" / "report.json").is_file()


def test_a_comparison_of_many_runs_gets_a_short_unique_name(tmp_path):
    from prover.views.report import default_report_dir

    many = [tmp_path / f"a-run-with-a-rather-long-name-{i}" for i in range(6)]
    first, second = default_report_dir(many), default_report_dir(many[:5])
    assert first != second and len(first.name) <= 100 and first.parent == tmp_path
    assert default_report_dir([many[0]]) == many[0] / "report"


def test_summary_keeps_every_session_and_a_no_op_resume_adds_nothing(tmp_path):
    run = tmp_path / "run"
    assert cli("prove-split", "--out", run, "--limit", "3", *IN_PROCESS) == 0
    # Take the last theorem out, so that a resume has one to do: a second session.
    lines = (run / "results.jsonl").read_text().splitlines(keepends=True)
    (run / "results.jsonl").write_text("".join(lines[:-1]))
    first = json.loads((run / "summary.json").read_text())
    assert len(first["sessions"]) == 1 and first["session"] == first["sessions"][0]
    assert cli("prove-split", "--resume", run, "--no-progress") == 0
    second = json.loads((run / "summary.json").read_text())
    assert [s["theorems_finished"] for s in second["sessions"]] == [3, 1]
    assert second["sessions"][0] == first["sessions"][0]  # the first session's figures are kept
    assert second["session"] == second["sessions"][1]
    # A resume of the finished run: nothing to do, and summary.json says what it said.
    # (Before, its wall time, throughput and Ray sections were replaced by an empty session's.)
    assert cli("prove-split", "--resume", run, "--no-progress") == 0
    third = json.loads((run / "summary.json").read_text())
    assert third == second
    assert third["session"]["theorems_per_hour"] > 0
    # The report counts both sessions' clocks.
    from prover.views.report import load_run, run_stats, table_rows

    stats = run_stats(load_run(run))
    assert stats.sessions_wall_time_s == [s["wall_time_s"] for s in third["sessions"]]
    rows = dict(table_rows([stats]))
    assert rows["sessions: how many, wall-clock time summed, s"][0].startswith("2, ")


def test_no_op_resume_keeps_the_executors_sections(tmp_path):
    from prover.run.rundir import RunDir

    run = tmp_path / "run"
    assert cli("prove-split", "--out", run, "--limit", "2", *IN_PROCESS) == 0
    summary = json.loads((run / "summary.json").read_text())
    summary["policy"] = {"replicas": 1, "batches": 7}  # as a Ray run writes it
    (run / "summary.json").write_text(json.dumps(summary))
    opened = RunDir.open(run)
    opened.begin([r.theorem for r in opened.records()])
    opened.write_summary(final=True)
    assert json.loads((run / "summary.json").read_text())["policy"] == {"replicas": 1, "batches": 7}


def test_each_attack_saves_its_tree_under_a_new_name_and_prints_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    saved = []
    for _ in range(2):
        assert cli("attack", "synthetic_0002") == 0
        printed = capsys.readouterr().out
        match = re.search(r"tree saved to (\S+)", printed)
        assert match, printed
        saved.append(tmp_path / match.group(1))
    assert saved[0] != saved[1] and all(path.is_file() for path in saved)
    assert saved[0].parent == tmp_path / "runs" / "attack" and saved[0].name.startswith("synthetic_0002-")
    assert len(list((tmp_path / "runs" / "attack").iterdir())) == 2  # the first attack's tree is still there
