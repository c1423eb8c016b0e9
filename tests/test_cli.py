"""The ``prover`` command end to end, as a user runs it: a subprocess, exit codes, messages."""

import json
import os
import subprocess
import sys

import pytest

from search import SearchTree

# Batch runs in these tests stay in-process; the Ray path has its own tests.
IN_PROCESS = ["--num-workers", "0"]


def prover(*args, cwd=None, check_clean=True):
    result = subprocess.run(
        [sys.executable, "-m", "prover.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        timeout=120,
    )
    if check_clean:
        assert "Traceback" not in result.stderr, result.stderr
    return result


def test_attack_prints_the_proof_and_saves_the_tree(tmp_path):
    tree_path = tmp_path / "tree.json"
    result = prover("attack", "synthetic_0002", "--tree-out", str(tree_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("proved synthetic_0002")
    tree = SearchTree.load(tree_path)
    assert tree.proof_tactics() == tree.graph.graph["result"]["proof"]
    for tactic in tree.proof_tactics():
        assert tactic in result.stdout


def test_attack_without_a_proof_exits_1_and_says_why(tmp_path):
    result = prover(
        "attack", "synthetic_0000", "--depth", "30", "--max-expansions", "3", "--tree-out", str(tmp_path / "t.json")
    )
    assert result.returncode == 1
    assert "no proof of synthetic_0000: the budget ran out (max_expansions)" in result.stdout


def test_attack_on_replay_proves_a_recorded_theorem(tmp_path, traces_path):
    from prover.envs.replay import ReplayEnv, load_traces
    from search import Theorem

    result = prover("attack", "mathd_algebra_478", "--env", "replay", "--tree-out", str(tmp_path / "t.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    proof = SearchTree.load(tmp_path / "t.json").proof_tactics()
    assert proof and all(tactic in result.stdout for tactic in proof)
    assert ReplayEnv(load_traces(str(traces_path))).check_proof(Theorem("mathd_algebra_478"), proof) is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["attack", "mathd_algebra_47", "--env", "replay"], "did you mean 'mathd_algebra_478'"),
        (["attack", "x", "--env", "synthetc"], "unknown environment 'synthetc'; did you mean 'synthetic'"),
        (["attack", "synthetic_0000", "--policy", "fixd"], "unknown policy 'fixd'; did you mean 'fixed'"),
        (["attack", "synthetic_0000", "--max-expansions", "0"], "Invalid value for '--max-expansions'"),
        (["attack", "synthetic_0000", "--error-rate", "2"], "Invalid value for '--error-rate'"),
        (["attack", "nothing", "--benchmark", "minif2"], "did you mean 'minif2f'"),
        (["viz", "missing.json"], "cannot read tree file missing.json"),
    ],
)
def test_bad_input_gets_one_clear_sentence_and_exit_2(args, message):
    result = prover(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith(("error", "Error"))]) == 1


def test_a_malformed_trace_or_tree_file_is_refused(tmp_path):
    traces = tmp_path / "traces.jsonl"
    traces.write_text('{"theorem": "t"}\n')
    result = prover("attack", "t", "--env", "replay", "--traces", str(traces))
    assert result.returncode == 2
    assert "line 1 of" in result.stderr and "lacks state_before, tactic" in result.stderr
    tree = tmp_path / "tree.json"
    tree.write_text('{"nodes": []}')
    result = prover("viz", str(tree))
    assert result.returncode == 2 and "not a search tree" in result.stderr


def test_debug_shows_the_traceback():
    result = prover("--debug", "attack", "nope", check_clean=False)
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_prove_split_writes_a_run_directory_and_resumes(tmp_path):
    out = tmp_path / "run"
    result = prover("prove-split", "--num-theorems", "8", "--out", str(out), "--no-progress", *IN_PROCESS)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["theorem"] for r in records] == [f"synthetic_{i:04d}" for i in range(8)]
    summary = json.loads((out / "summary.json").read_text())
    proved = sum(r["status"] == "proved" for r in records)
    assert summary["num_theorems"] == 8 and summary["pass_rate"] == proved / 8
    assert f"proved {proved} of 8" in result.stdout
    assert len(list((out / "trees").glob("*.json"))) == 8
    # the same directory again as a new run is refused; --resume redoes nothing
    assert prover("prove-split", "--out", str(out), *IN_PROCESS).returncode == 2
    lines = (out / "results.jsonl").read_text().splitlines()
    (out / "results.jsonl").write_text("\n".join(lines[:5]) + "\n")
    result = prover("prove-split", "--resume", str(out), "--no-progress", *IN_PROCESS)
    assert result.returncode == 0, result.stderr
    assert (out / "results.jsonl").read_text().splitlines()[:5] == lines[:5]
    assert [json.loads(line)["theorem"] for line in (out / "results.jsonl").read_text().splitlines()] == [
        r["theorem"] for r in records
    ]


def test_viz_renders_a_saved_tree_as_text(tmp_path):
    tree_path = tmp_path / "tree.json"
    prover("attack", "synthetic_0002", "--tree-out", str(tree_path))
    result = prover("viz", str(tree_path), "--format", "text")
    assert result.returncode == 0, result.stderr
    tree = SearchTree.load(tree_path)
    assert result.stdout.startswith(f"theorem synthetic_0002: proved, {tree.num_states} states")
    assert result.stdout.count("*") == len(tree.proof_tactics())
