"""What the real Lean path needs beyond the stand-in's answers: ``iterate --env dojo`` checks
LeanDojo's trace before any round; ``GITHUB_ACCESS_TOKEN`` makes no search process call
GitHub; the replay policy finds recorded tactics at states the pinned Lean prints in its
newer notation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from search import SearchLimits, Theorem

from prover.config import BackendSpec, RunConfig
from prover.errors import ProverError
from prover.policies.replay import ReplayPolicy
from prover.traces import NOTATION_CHANGES, TraceSet, pinned_notation

ROOT = Path(__file__).resolve().parents[1]


def test_iterate_with_dojo_checks_the_trace_before_any_round(tmp_path, monkeypatch):
    pytest.importorskip("lean_dojo")
    from prover.envs.dojo import DojoConfig
    from prover.learn.iterate import iterate

    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))  # read by LeanDojo at import (fresh here or not)
    bin_dir = tmp_path / "bin"  # a `lake`, so the trace is what is missing
    bin_dir.mkdir()
    (bin_dir / "lake").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "lake").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    config = RunConfig(env=BackendSpec("environment", "dojo", DojoConfig()), limits=SearchLimits(max_expansions=2))
    theorems = [
        Theorem("t", repo_url=str(tmp_path / "miniF2F"), commit="0" * 40, file_path="MiniF2F/Test.lean", full_name="t")
    ]
    proved = []
    with pytest.raises(ProverError, match="run `prover setup-lean` first"):
        iterate(config, theorems, tmp_path / "it", rounds=1, prove=lambda *args: proved.append(args))
    assert proved == []


IMPORT_SCRIPT = """
import os
from prover.envs.dojo import github_for_tracing, import_lean_dojo
import_lean_dojo()
print("token kept:", os.environ.get("GITHUB_ACCESS_TOKEN"))
print("tracing client authenticated:", github_for_tracing().requester.auth is not None)
"""


def test_a_github_token_makes_no_search_process_call_github():
    """LeanDojo logs in to GitHub when it is imported with GITHUB_ACCESS_TOKEN set; offline
    (here: every request goes to a proxy that refuses) the import failed."""
    pytest.importorskip("lean_dojo")
    refused = "http://127.0.0.1:9"
    env = {
        **os.environ,
        "GITHUB_ACCESS_TOKEN": "a-token",
        "HTTPS_PROXY": refused,
        "https_proxy": refused,
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_SCRIPT], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "token kept: a-token" in done.stdout  # tracing, in set-up, still uses it
    assert "tracing client authenticated: True" in done.stdout


# -- the recorded Lean's notation and the pinned one's ------------------------------------------

NOTATION_CASES = [
    ("⊢ (∑ x in Finset.range 10, (x + 1) ^ 2) % 10 = 5", "⊢ (∑ x ∈ Finset.range 10, (x + 1) ^ 2) % 10 = 5"),
    ("⊢ ∏ k in Finset.Icc 1 n, (k : ℝ) ≠ 0", "⊢ ∏ k ∈ Finset.Icc 1 n, (k : ℝ) ≠ 0"),
    (
        "x : ℝ\nh : 0 ≤ x\n⊢ Real.sqrt x * Real.sqrt (x + 1) = Real.sqrt (x * (x + 1))",
        "x : ℝ\nh : 0 ≤ x\n⊢ √x * √(x + 1) = √(x * (x + 1))",
    ),
]


@pytest.mark.parametrize("old, pinned", NOTATION_CASES, ids=["sum", "prod", "sqrt"])
def test_the_replay_policy_finds_a_recorded_tactic_at_the_state_in_the_pinned_notation(old, pinned):
    assert pinned_notation(old) == pinned
    traces = TraceSet.from_records(
        [{"theorem": "t", "state_before": old, "tactic": "norm_num", "state_after": "no goals", "step": 0}]
    )
    [proposals] = ReplayPolicy(traces).propose([pinned], 4)
    assert "norm_num" in [p.tactic for p in proposals]
    assert traces.tactics_at(old) == traces.tactics_at(pinned) == {"norm_num"}


def test_every_notation_change_is_tested_and_leaves_other_text_alone():
    assert len(NOTATION_CHANGES) == len(NOTATION_CASES)
    untouched = "⊢ NNReal.sqrt x = y ∧ (∑ x ∈ s, f x) = 0 ∧ ∀ i in_range, True"
    assert pinned_notation(untouched) == untouched


# -- cluster nodes ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_lean_node_without_the_project_stops_the_ray_run_naming_the_node_and_what_it_lacks(ray_local, tmp_path):
    """The nodes share no file system: a node where `prover setup-lean` did not run (here:
    the Lean project is not at the driver's path) is found before any search starts."""
    pytest.importorskip("lean_interact")
    from prover.config import DistributedConfig
    from prover.envs.repl import ReplConfig
    from prover.policies.fixed import FixedConfig
    from prover.run.cluster import RayExecutor

    missing = tmp_path / "lean_project"
    config = RunConfig(
        env=BackendSpec("environment", "repl", ReplConfig(lean_project=str(missing), lake_path=sys.executable)),
        policy=BackendSpec("policy", "fixed", FixedConfig(tactics=("simp",))),
        limits=SearchLimits(max_expansions=2),
        distributed=DistributedConfig(num_workers=1, searches_per_worker=1, worker_cpus=0.5, lean_memory_gb=0.5),
    )
    theorem = Theorem("t", statement="theorem t : True :=", header="import Mathlib\n")
    with RayExecutor(config) as executor:
        with pytest.raises(ProverError, match=rf"the Lean node [\d.]+ lacks the Lean project {missing} "):
            list(executor.prove([theorem]))
