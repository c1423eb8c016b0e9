"""The defects of the fault audit (issue 21) and records verified on read (issue 25): two
drivers on one run directory, a full disk, records that lie, and hostile paths in records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search import SearchLimits, SearchStatus, Theorem

from prover.config import BackendSpec, RunConfig, TheoremSetConfig
from prover.errors import ProverError
from prover.run.driver import InProcessExecutor, prove_set
from prover.run.rundir import RunDir, read_records, repair_results

REPO = Path(__file__).resolve().parents[1]


def _config(num_theorems: int = 6) -> RunConfig:
    return RunConfig(
        env=BackendSpec.default("environment", "synthetic"),
        policy=BackendSpec.default("policy", "fixed"),
        theorems=TheoremSetConfig(theorem_set="synthetic", num_theorems=num_theorems),
        limits=SearchLimits(max_expansions=20),
    )


def _env() -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def exit_code(args: list[str]) -> int:
    from prover.cli import main

    try:
        main(args)
    except SystemExit as stopped:
        return stopped.code or 0
    return 0


def proved_run(tmp_path: Path, count: int = 6) -> RunDir:
    run = RunDir.create(tmp_path / "run", _config(count))
    prove_set([Theorem(f"synthetic_{i:04d}") for i in range(count)], run, InProcessExecutor(run.config()))
    assert any(r.proved for r in run.records())
    run.close()  # this process is no driver of it any more
    return run


# ---- defect 1: one driver per run directory -------------------------------------------------------

HOLDER = """
import sys, time
from prover.run.rundir import RunDir
run = RunDir.open(sys.argv[1])
print("holding", flush=True)
time.sleep(60)
"""


def _hold(run_path: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_path)], stdout=subprocess.PIPE, text=True,
                              env=_env())
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_a_second_driver_on_a_run_directory_is_refused_naming_the_first(tmp_path, capsys):
    run = proved_run(tmp_path, 3)
    before = run.results_path.read_bytes()
    holder = _hold(run.path)
    try:
        assert exit_code(["prove-split", "--resume", str(run.path), "--num-workers", "0", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"process {holder.pid}" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
        with pytest.raises(ProverError, match=f"process {holder.pid}"):
            RunDir.open(run.path)
    finally:
        holder.kill()
        holder.wait()
    assert run.results_path.read_bytes() == before


def test_the_lock_of_a_killed_driver_does_not_block_the_next(tmp_path):
    run = proved_run(tmp_path, 3)
    holder = _hold(run.path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (run.path / ".lock").read_text().strip() == str(holder.pid)  # stale: its process is gone
    reopened = RunDir.open(run.path)
    assert reopened.finished() == {f"synthetic_{i:04d}" for i in range(3)}


def test_one_process_may_open_its_own_run_directory_again(tmp_path):
    run = RunDir.create(tmp_path / "run", _config())
    assert RunDir.open(run.path).config() == run.config()


# ---- issue 25 item 3: records verified on read ----------------------------------------------------


def _append_line(run: RunDir, data: dict) -> None:
    with open(run.results_path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(data) + "\n")


def test_a_hand_written_proved_record_is_not_trusted_and_is_searched_again(tmp_path):
    run = RunDir.create(tmp_path / "run", _config(12))
    prove_set([Theorem(f"synthetic_{i:04d}") for i in range(10)], run, InProcessExecutor(run.config()))
    _append_line(run, {"theorem": "synthetic_0010", "status": "proved"})  # no proof, no tree
    reopened = RunDir.open(run.path)
    assert "synthetic_0010" not in reopened.finished()
    true_proved = sum(r.proved for r in reopened.records())
    searched = []

    class Recording(InProcessExecutor):
        def prove(self, todo):
            searched.extend(t.name for t in todo)
            yield from super().prove(todo)

    summary = prove_set([Theorem(f"synthetic_{i:04d}") for i in range(12)], reopened, Recording(run.config()))
    assert searched == ["synthetic_0010", "synthetic_0011"]
    again = RunDir.open(run.path)
    assert summary.num_proved == sum(r.proved for r in again.records())
    assert summary.num_proved <= true_proved + 2


@pytest.mark.parametrize("damage", ["no proof", "no tree", "missing tree file", "other proof", "tree outside"])
def test_a_proved_record_needs_its_proof_and_a_tree_whose_proof_path_matches(tmp_path, damage):
    run = proved_run(tmp_path)
    lines = run.results_path.read_text().splitlines()
    index, data = next((i, json.loads(line)) for i, line in enumerate(lines) if json.loads(line)["status"] == "proved")
    if damage == "no proof":
        data.pop("proof")
    elif damage == "no tree":
        data.pop("tree")
    elif damage == "missing tree file":
        (run.path / data["tree"]).unlink()
    elif damage == "other proof":
        data["proof"] = ["sorry"]
    else:
        outside = tmp_path / "elsewhere.json.gz"
        outside.write_bytes((run.path / data["tree"]).read_bytes())
        data["tree"] = "../elsewhere.json.gz"
    lines[index] = json.dumps(data)
    run.results_path.write_text("\n".join(lines) + "\n")
    assert data["theorem"] not in RunDir.open(run.path).finished()
    kept, moved, where = repair_results(run.path)
    assert (kept, moved) == (len(lines) - 1, 1)
    assert json.loads(where.read_text().splitlines()[0])["theorem"] == data["theorem"]
    assert [r.theorem for r in read_records(run.results_path)] == [
        json.loads(line)["theorem"] for i, line in enumerate(lines) if i != index]


def test_every_record_of_a_real_run_verifies(tmp_path):
    run = proved_run(tmp_path)
    assert repair_results(run.path)[1] == 0
    assert len(RunDir.open(run.path).finished()) == 6


def test_repair_moves_a_proved_record_without_a_proof_aside(tmp_path, capsys):
    run = proved_run(tmp_path, 3)
    _append_line(run, {"theorem": "synthetic_0010", "status": "proved"})
    assert exit_code(["repair", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert "moved 1" in out
    assert "synthetic_0010" in (run.path / "results.bad.jsonl").read_text()
    assert "synthetic_0010" not in run.results_path.read_text()
