"""Every benchmark script still runs, end to end, at a tiny size.

The figures they print are not checked here (speed targets live in the benchmarks, on
quiet machines, not in tests); what is checked is that each one runs to its verdict
lines, so a change to the code they drive cannot leave them broken unnoticed.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
REPROVER_DIR = os.environ.get("REPROVER_DIR")

# (script, arguments, lines its output must hold: regular expressions)
TINY_RUNS = [
    (
        "engine_overhead.py",
        ["--sizes", "1000", "10000", "--merge-sizes", "1000", "--repeats", "1"],
        [
            r"goal ≤ 10 µs per tactic at 10,000 states: [\d.]+ µs \((meets|misses)\)",
            r"goal to_record < 1 ms at 10,000 states: [\d.]+ ms \((meets|misses)\)",
            r"ReProver comparison skipped: pass --reprover DIR",
        ],
    ),
    (
        "policy_batching.py",
        [
            "--states",
            "4",
            "--sizes",
            "1",
            "4",
            "--repeats",
            "1",
            "--beam-ks",
            "2",
            "--beam-states",
            "2",
            "--k",
            "2",
            "--max-new-tokens",
            "4",
        ],
        [r"\n\s+4\s+[\d.]+\s+[\d.]+\s+[\d.]+x\n", r"ceiling of 16 vs 1 state per call"],
    ),
    (
        "expert_iteration.py",
        [
            "--rounds",
            "2",
            "--train",
            "8",
            "--heldout",
            "4",
            "--budget",
            "8",
            "--steps",
            "4",
            "--dpo-steps",
            "2",
            "--curate",
        ],
        [
            r"\n1 +[\d.]+% \(\d/4\) +[\d.]+% \(\d/4\)",
            r"\n2 +[\d.]+% \(\d/4\)",
            r"SFT: round 1 -> round 2: [-+][\d.]+ points",
            r"SFT\+DPO vs SFT at round 2: [-+][\d.]+ points",
        ],
    ),
    (
        "critic.py",
        ["--train", "6", "--heldout", "6", "--round-budget", "4", "--budget", "4", "--steps", "4"],
        [r"with the critic \(--scorer value_mixed --value-weight 1\): +[\d.]+%", r"difference: [-+][\d.]+ points"],
    ),
    (
        "algorithms.py",
        [
            "--heldout",
            "2",
            "--budget",
            "4",
            "--attempts",
            "2",
            "--seeds",
            "1",
            "--train",
            "12",
            "--round-budget",
            "32",
            "--steps",
            "4",
        ],
        [
            r"best_first none +[\d.]+%  \[[\d.]+%, [\d.]+%\] +[\d.]+%",
            r"rmaxts +trained +[\d.]+%",
            r"critic oracle vs none: pass@1 best_first [-+][\d.]+",
        ],
    ),
    (
        "dojo_concurrency.py",
        ["--theorems", "2", "--concurrency", "2", "--startup-delay", "0.1", "--tactic-delay", "0.01"],
        [r"2 processes x 1 thread: +[\d.]+ s, proved 2", r"lock / one search per process: [\d.]+x"],
    ),
    (
        "orchestration.py",
        ["--concurrency", "2", "--expansions", "2", "--workers", "1", "--cpus", "2"],
        [r"single search in-process \(no Ray\): [\d.]+ expansions/s", r"\n\s+2\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+2\.00"],
    ),
    (
        "lean_throughput.py",
        [
            "--theorems",
            "3",
            "--baseline-theorems",
            "2",
            "--dojo-theorems",
            "1",
            "--import-delay",
            "0.2",
            "--tactic-cost",
            "0.01",
            "--command-delay",
            "0.005",
            "--tactic-timeout",
            "0.5",
            "--heartbeat-s",
            "0.2",
            "--kill-theorems",
            "1",
            "--max-expansions",
            "3",
            "--tactics-per-node",
            "2",
        ],
        [
            r"repl, warm pool +3 +\d+ +\d+ +\d+ ",
            r"repl, warm pool, killed at timeouts +1 +\d+ ",
            r"dojo +1 +\d+ ",
            r"pool imports = 2 per worker process \(its search REPL and its checker\) \+ recycles: "
            r"\d+ = 2 \+ \d+\? (meets|misses)",
            r"Lean wall time, process per theorem / pool: [\d.]+x \(goal >= 3x\); "
            r"same theorems proved: (yes|no)",
            r"pool overhead ratio over its 3 theorems: [\d.]+ \(goal <= 0.10: (meets|misses)\)",
        ],
    ),
    (
        "fill.py",
        ["--import-delay", "0.01"],
        [r"--repl-pool +[\d.]+ +\d+ +\d+ +4\n", r"pool / no pool: wall time [\d.]+x, imports \d+/\d+"],
    ),
    (
        "cluster.py",
        ["--replicas", "1", "--concurrency", "2", "--expansions", "2", "--workers", "1", "--skip-failure"],
        [r"one search alone, in-process: [\d.]+ expansions/s", r"\n\s+2\s+1\s+[\d.]+\s+1\.00x"],
    ),
    (
        "sandbox_cost.py",
        ["--sessions", "1", "--rounds", "1", "--import-s", "0", "--tactic-s", "0"],
        [
            r"sandbox off +median +[\d.]+ ms",
            r"sandbox \w+ +median .* cost [-+][\d.]+% of the Lean side's time|no sandbox is available",
        ],
    ),
]


def run_benchmark(script: str, args: list[str], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_every_benchmark_script_is_covered_here():
    assert {script for script, _, _ in TINY_RUNS} == {path.name for path in BENCHMARKS.glob("*.py")}


@pytest.mark.slow
@pytest.mark.parametrize("script, args, expected", TINY_RUNS, ids=[run[0] for run in TINY_RUNS])
def test_benchmark_runs_to_its_verdict_at_a_tiny_size(script, args, expected, tmp_path):
    out = run_benchmark(script, args, tmp_path)
    for pattern in expected:
        assert re.search(pattern, out), f"{script} printed no line matching {pattern!r}:\n{out}"


@pytest.mark.slow
@pytest.mark.skipif(
    not REPROVER_DIR,
    reason="needs a ReProver checkout: set REPROVER_DIR to one (git clone https://github.com/lean-dojo/ReProver)",
)
def test_engine_overhead_runs_reprover_unchanged_on_the_same_transitions(tmp_path):
    out = run_benchmark(
        "engine_overhead.py",
        ["--sizes", "--merge-sizes", "1000", "--repeats", "1", "--reprover", REPROVER_DIR],
        tmp_path,
    )
    row = re.search(r"\n\s+(\d+)\s+(\d+)\s+\d+\s+[\d.]+\s+(\d+)\s+[\d.]+\s+[\d.]+\n", out)
    assert row, out
    ours_states, reprover_states = int(row.group(1)), int(row.group(3))
    assert abs(ours_states - reprover_states) <= 0.01 * ours_states  # the same search, up to ties
    assert re.search(r"goal ≤ 0.8x ReProver's engine time per tactic at 1,000 states: [\d.]+x", out)
