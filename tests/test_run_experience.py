"""What a user of a batch run sees: progress off a terminal, provenance, and bad input that
gets one sentence, exit 2 and leaves everything on disk as it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prover.cli import main
from prover.run.progress import RunProgress


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "prover.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )


def exit_code(args: list[str]) -> int:
    """The exit code of ``prover ARGS`` run in this process (0 when it returns normally)."""
    try:
        main(args)
    except SystemExit as stopped:
        return stopped.code or 0
    return 0


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# ---- progress ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_logged_to_a_file_writes_progress_lines_before_its_last_line(tmp_path):
    log = tmp_path / "log"
    with open(log, "w") as handle:  # `prover prove-split --out R > log 2>&1`
        subprocess.run(
            [
                sys.executable,
                "-m",
                "prover.cli",
                "prove-split",
                "--out",
                str(tmp_path / "run"),
                "--num-theorems",
                "12",
                "--latency",
                "0.01",
                "--max-expansions",
                "10",
                "--num-workers",
                "0",
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=120,
        )
    lines = log.read_text().splitlines()
    assert lines[-1].startswith("proved ")
    progress = [line for line in lines[:-1] if " finished, " in line and "pass rate" in line]
    assert len(progress) >= 3, lines
    assert "12/12 finished" in progress[-1]


def test_log_progress_gives_a_heartbeat_when_theorems_are_slow(capsys):
    with RunProgress(total=3, done=0, mode="log", starting="loading", heartbeat_s=0.2, min_gap_s=0.0) as progress:
        progress.on_started()
        time.sleep(0.35)
    err = capsys.readouterr().err
    assert "loading; 3 theorems, 0 already finished" in err
    assert "0/3 finished, 0 proved (pass rate 0.0%); still running" in err


def test_log_progress_counts_the_whole_set_and_gives_an_eta(capsys):
    from search import ResultRecord, SearchStatus, StopReason

    from prover.run.rundir import Summary

    summary = Summary(["a", "b", "c", "d"])
    with RunProgress(total=4, done=0, mode="log", starting="loading", min_gap_s=0.0) as progress:
        for name, status in (("a", SearchStatus.PROVED), ("b", SearchStatus.OPEN)):
            record = ResultRecord(
                name, status, StopReason.PROVED if status is SearchStatus.PROVED else StopReason.MAX_EXPANSIONS
            )
            summary.add(record)
            progress.on_result(record, summary)
    err = capsys.readouterr().err
    assert "1/4 finished, 1 proved (pass rate 25.0%), ETA" in err
    assert "2/4 finished, 1 proved (pass rate 25.0%), ETA" in err and "b: open" in err


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _result(progress, summary, name, status):
    from search import ResultRecord, SearchStatus, StopReason

    record = ResultRecord(
        name, SearchStatus(status), StopReason.PROVED if status == "proved" else StopReason.MAX_EXPANSIONS
    )
    summary.add(record)
    progress.on_result(record, summary)


def test_the_eta_starts_when_the_executor_is_up_not_at_ray_start_up(capsys):
    from prover.run.rundir import Summary

    clock = FakeClock()
    summary = Summary(["a", "b", "c", "d", "e"])
    with RunProgress(total=5, done=0, mode="log", starting="starting Ray", min_gap_s=0.0, clock=clock) as progress:
        clock.now += 300  # five minutes of start-up
        progress.on_started()
        clock.now += 10
        _result(progress, summary, "a", "proved")
        # 10 s per theorem since the start: 4 left, 40 s; counting start-up would say 20m40s.
        assert progress.eta() == pytest.approx(40.0)
    err = capsys.readouterr().err
    assert "1/5 finished, 1 proved (pass rate 20.0%), ETA 40s; a: proved" in err


def test_bar_and_lines_give_one_pass_rate_over_the_whole_set(capsys):
    from prover.run.rundir import Summary

    clock = FakeClock()
    summary = Summary(["a", "b", "c", "d"])
    with RunProgress(total=4, done=0, mode="bar", starting="loading", min_gap_s=0.0, clock=clock) as progress:
        progress.on_started()
        _result(progress, summary, "a", "proved")
        _result(progress, summary, "b", "open")
        bar_figures = progress.bar.tasks[0].fields["figures"]
    # The bar once said 1/2 (of the finished), the lines 25% (of the set): now both say 25%.
    assert bar_figures.startswith("1 proved (pass rate 25.0%)")
    err = capsys.readouterr().err
    assert "2/4 finished, 1 proved (pass rate 25.0%)" in err  # the lines are there beside the bar


def test_no_progress_keeps_the_log_lines(tmp_path, capsys):
    run = tmp_path / "run"
    assert exit_code(["prove-split", "--out", str(run), "--limit", "3", "--num-workers", "0", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "3/3 finished, " in err and "pass rate" in err


# ---- provenance ----------------------------------------------------------------------------------


def test_config_and_summary_say_what_produced_the_run(tmp_path):
    run = tmp_path / "run"
    assert exit_code(["prove-split", "--out", str(run), "--limit", "2", "--num-workers", "0", "--no-progress"]) == 0
    config = json.loads((run / "config.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    for origin in (config["provenance"], summary["provenance"]):
        assert origin["tool_version"] and origin["started_at"]
        assert "prove-split" in origin["command_line"]
        assert {"torch", "ray", "lean-dojo", "lean-interact", "transformers", "vllm"} <= set(origin["libraries"])
        assert origin["hardware"]["cpus"] >= 1
    session = summary["session"]
    assert session["theorems_finished"] == 2 and session["ended_at"] and session["wall_time_s"] > 0
    assert summary["total_search_time_s"] <= session["wall_time_s"]
    # A run's config.json is a valid --config: provenance is not a setting.
    again = tmp_path / "again"
    assert exit_code(["prove-split", "--config", str(run / "config.json"), "--out", str(again), "--no-progress"]) == 0


# ---- bad input loses nothing ------------------------------------------------------------------


def test_out_into_a_directory_that_is_not_a_run_changes_nothing(tmp_path, capsys):
    mine = tmp_path / "mine"
    (mine / "trees").mkdir(parents=True)
    (mine / "summary.json").write_text('{"my": "numbers"}')
    (mine / "trees" / "notes.json").write_text("[1, 2, 3]")
    before = snapshot(mine)
    assert exit_code(["prove-split", "--out", str(mine), "--num-workers", "0"]) == 2
    assert "not an empty directory" in capsys.readouterr().err
    assert snapshot(mine) == before


def test_a_run_that_cannot_start_leaves_no_directory_behind(tmp_path, capsys):
    run = tmp_path / "run"
    args = [
        "prove-split",
        "--out",
        str(run),
        "--env",
        "replay",
        "--policy",
        "hf",
        "--model",
        str(tmp_path / "none"),
        "--num-workers",
        "0",
        "--no-progress",
    ]
    assert exit_code(args) == 2
    assert "cannot load model" in capsys.readouterr().err
    assert not run.exists()
    assert exit_code(["prove-split", "--out", str(run), "--limit", "1", "--num-workers", "0", "--no-progress"]) == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["attack", "synthetic_0001", "--latency", "nan"], "--latency must be a finite number"),
        (["attack", "--statement", "theorem t (x : ℕ) : x = x :="], "a typed-in statement needs Lean"),
        (["attack", "--statement", "theorem t (x : ℕ) : x = x :=", "--env", "replay"], "use --env repl"),
    ],
)
def test_bad_settings_get_one_sentence_and_exit_2(args, message, capsys):
    assert exit_code(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_damaged_files_get_one_sentence_and_exit_2(tmp_path, capsys):
    tree = tmp_path / "tree.json"
    tree.write_text('{"nodes": "x"}')
    assert exit_code(["viz", str(tree)]) == 2
    a_file = tmp_path / "afile"
    a_file.write_text("")
    good_tree = tmp_path / "good.json"
    assert exit_code(["attack", "synthetic_0002", "--tree-out", str(good_tree)]) == 0
    assert exit_code(["viz", str(good_tree), "-o", str(a_file / "x.html")]) == 2
    assert exit_code(["prove-split", "--out", str(a_file / "run"), "--num-workers", "0"]) == 2
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("[]")
    (run / "results.jsonl").write_text("")
    assert exit_code(["prove-split", "--resume", str(run)]) == 2
    errors = capsys.readouterr().err
    assert "internal error" not in errors and "Traceback" not in errors


def test_a_damaged_results_file_says_how_to_recover_and_repair_keeps_every_good_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert exit_code(["prove-split", "--out", str(run), "--limit", "3", "--num-workers", "0", "--no-progress"]) == 0
    results = run / "results.jsonl"
    good = results.read_text().splitlines()
    results.write_text("\n".join(good[:2] + ["garbage", '{"theorem": "x"}'] + good[2:]) + "\n")
    assert exit_code(["prove-split", "--resume", str(run), "--no-progress"]) == 2
    assert f"prover repair {run}" in capsys.readouterr().err
    assert exit_code(["repair", str(run)]) == 0
    assert results.read_text().splitlines() == good
    assert (run / "results.bad.jsonl").read_text().splitlines() == ["garbage", '{"theorem": "x"}']
    assert exit_code(["prove-split", "--resume", str(run), "--no-progress"]) == 0


@pytest.mark.slow
def test_sigterm_stops_a_run_like_ctrl_c_and_keeps_its_results(tmp_path):
    run = tmp_path / "run"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prover.cli",
            "prove-split",
            "--out",
            str(run),
            "--num-theorems",
            "40",
            "--latency",
            "0.01",
            "--max-expansions",
            "10",
            "--num-workers",
            "0",
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        (run / "results.jsonl").exists() and (run / "results.jsonl").read_text().count("\n") >= 2
    ):
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 143  # SIGTERM: 128 + 15
    assert "interrupted:" in err and f"prover prove-split --resume {run}" in err
    assert "SIGTERM received" not in err and "Traceback" not in err
    kept = (run / "results.jsonl").read_text().count("\n")
    assert kept >= 2


# ---- Ray goes down with its driver ---------------------------------------------------------------


def test_the_watchdog_kills_what_outlives_the_driver_in_that_session_only(tmp_path):
    from prover.run.watchdog import main as watchdog

    session = tmp_path / "session_2026-01-01_00-00-00_000000_1"
    other = tmp_path / "session_2026-01-01_00-00-00_000000_2"
    sleeper = "import sys, time; time.sleep(60)"
    straggler = subprocess.Popen([sys.executable, "-c", sleeper, f"--session-dir={session}"])
    bystander = subprocess.Popen([sys.executable, "-c", sleeper, f"--session-dir={other}"])
    driver = subprocess.Popen([sys.executable, "-c", "pass"])
    driver.wait()
    try:
        watchdog([str(driver.pid), str(session)])
        assert straggler.wait(timeout=5) != 0
        assert bystander.poll() is None
    finally:
        for process in (straggler, bystander):
            process.kill()
            process.wait()


@pytest.mark.slow
def test_the_local_ray_of_a_killed_driver_is_gone_within_10_s(tmp_path):
    import glob
    import shutil
    import tempfile

    # Ray of its own (RAY_TMPDIR): other Ray sessions on the machine, of other tests or other
    # people, are never counted. A short path: Ray's sockets live under it (107 bytes at most).
    ray_tmp = tempfile.mkdtemp(prefix="rk", dir="/tmp")
    run = tmp_path / "run"
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prover.cli",
            "prove-split",
            "--out",
            str(run),
            "--num-theorems",
            "40",
            "--latency",
            "0.05",
            "--num-workers",
            "2",
            "--no-progress",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RAY_TMPDIR": ray_tmp},
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (
            (run / "results.jsonl").exists() and (run / "results.jsonl").read_text().count("\n") >= 1
        ):
            time.sleep(0.5)
        sessions = glob.glob(f"{ray_tmp}/ray/session_2*")
        assert len(sessions) == 1, sessions
        name = Path(sessions[0]).name
        driver.kill()
        driver.wait()

        def left() -> list[str]:
            listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
            return [
                line
                for line in listing.splitlines()
                if (name in line or ray_tmp in line) and "prover.run.watchdog" not in line
            ]

        deadline = time.monotonic() + 10
        while left() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not left()
    finally:
        driver.kill()
        shutil.rmtree(ray_tmp, ignore_errors=True)
