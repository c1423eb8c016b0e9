"""``prover prove-split --env dojo`` on Ray, through the real ``lean_dojo`` on the stand-in
Lean toolchain, and how Lean searches are laid out on a cluster.

The runs start their own local Ray in the CLI's process (LeanDojo's cache, the stand-in's
``lake`` on PATH and its knobs reach the workers through that process's environment;
workers of the session's Ray would not have them), 2 workers x 2 searches each. The
fault run injects Lean crashes and tactic timeouts at random (10% of tactic requests
each) and must lose nothing and prove nearly all that the fault-free run proves.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prover.config import BackendSpec, DistributedConfig, RunConfig
from prover.errors import ProverError
from prover.run.cluster import GIB, WorkerPlan, default_theorem_timeout_s, plan_workers
from prover.settings import REPO_ROOT

GB = float(GIB)
DOJO = BackendSpec.default("environment", "dojo")


# -- the layout of Lean searches (no Ray) ----------------------------------------------------------


def test_each_node_runs_min_of_cpus_and_memory_over_lean_memory_searches_one_per_worker():
    nodes = [{"CPU": 16.0, "memory": 64 * GB}, {"CPU": 4.0, "memory": 100 * GB}, {"CPU": 8.0, "memory": 7 * GB}]
    plan = plan_workers(DOJO, DistributedConfig(), nodes)
    assert plan == WorkerPlan(
        num_workers=8 + 4 + 0, searches_per_worker=1, cpus_per_worker=1.0, memory_per_worker=8 * GIB
    )
    halved = plan_workers(DOJO, DistributedConfig(lean_memory_gb=4), nodes)
    assert halved.num_workers == 16 + 4 + 1 and halved.memory_per_worker == 4 * GIB


def test_given_workers_run_searches_per_worker_at_most_what_one_node_holds():
    nodes = [{"CPU": 2.0, "memory": 17 * GB}]
    plan = plan_workers(
        DOJO, DistributedConfig(num_workers=2, searches_per_worker=2, worker_cpus=0.5, lean_memory_gb=0.5), nodes
    )
    assert plan == WorkerPlan(2, 2, 1.0, GIB)
    clamped = plan_workers(DOJO, DistributedConfig(num_workers=1, searches_per_worker=4), nodes)
    assert (clamped.searches_per_worker, clamped.memory_per_worker) == (2, 16 * GIB)  # 2 of 8 GB fit in 17 GB
    with pytest.raises(ProverError, match="reserve 32 GB, but the Ray cluster offers 17.0 GB"):
        plan_workers(DOJO, DistributedConfig(num_workers=2, searches_per_worker=2), nodes)
    with pytest.raises(ProverError, match="no node of the Ray cluster can hold a Lean search.*--lean-memory-gb"):
        plan_workers(DOJO, DistributedConfig(lean_memory_gb=32), nodes)


def test_offline_environments_keep_one_worker_per_cpu_of_four_searches():
    nodes = [{"CPU": 16.0, "memory": 8 * GB}]
    synthetic = BackendSpec.default("environment", "synthetic")
    assert plan_workers(synthetic, DistributedConfig(), nodes) == WorkerPlan(16, 4, 1.0, 0)


def test_a_lean_worker_is_given_three_startup_allowances_beyond_twice_the_budget():
    config = RunConfig(env=DOJO)
    assert default_theorem_timeout_s(config) == 2 * 600 + 60 + 3 * 600
    assert default_theorem_timeout_s(RunConfig()) == 2 * 600 + 60


# -- prove-split on Ray, through the stand-in -------------------------------------------------------

pytest.importorskip("lean_dojo")

from prover.data import traces_path  # noqa: E402
from prover.traces import load_traces  # noqa: E402

from tests.lean_standin import install, lean_dojo_env, read_log  # noqa: E402
from tests.test_dojo_standin import lean_project_copy, prover, standin_minif2f  # noqa: E402

RAY_LAYOUT = ["--num-workers", "2", "--searches-per-worker", "2", "--worker-cpus", "0.5", "--lean-memory-gb", "0.5"]
FAULTS = {
    "LEAN_STANDIN_CRASH_PROB": "0.1",
    "LEAN_STANDIN_SLOW_PROB": "0.1",
    "LEAN_STANDIN_TACTIC_DELAY_S": "2",
    "LEAN_STANDIN_FAULT_SEED": "7",
}


@pytest.fixture(scope="module")
def recorded_minif2f(tmp_path_factory, minif2f_path) -> dict:
    """24 recorded test theorems in a stand-in miniF2F, set up with ``prover setup-lean``."""
    root = tmp_path_factory.mktemp("dojo-ray")
    names = [name for name in load_traces(None).names() if "@" not in name][:24]
    source, commit = standin_minif2f(root, minif2f_path, names)
    env = {
        **install(root, traces=traces_path()),
        **lean_dojo_env(root),
        "PYTHONPATH": str(REPO_ROOT),
        "PROVER_MINIF2F_URL": str(source),
        "PROVER_MINIF2F_COMMIT": commit,
    }
    project = lean_project_copy(root / "lean_project")
    setup = prover(env, "setup-lean", "--lean-project", str(project), "--skip-repl", shim=True)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    return {"root": root, "env": env, "project": project, "names": names}


def prove_split(setup: dict, out: str, **knobs: str) -> tuple[list[dict], dict, list[dict]]:
    """A prove-split run on its own local Ray: (results, summary, stand-in calls it made)."""
    before = len(read_log(setup["env"]))
    done = prover(
        {**setup["env"], **knobs},
        "prove-split",
        "--env",
        "dojo",
        "--lean-project",
        str(setup["project"]),
        "--benchmark",
        "minif2f",
        "--split",
        "test",
        "--policy",
        "replay",
        "--tactic-timeout",
        "0.5",
        *RAY_LAYOUT,
        "--no-progress",
        "--out",
        str(setup["root"] / out),
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run = setup["root"] / out
    results = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    return results, json.loads((run / "summary.json").read_text()), read_log(setup["env"])[before:]


@pytest.fixture(scope="module")
def fault_free_run(recorded_minif2f) -> tuple[list[dict], dict, list[dict]]:
    return prove_split(recorded_minif2f, "fault-free")


@pytest.mark.standin
@pytest.mark.slow
def test_prove_split_on_ray_proves_recorded_theorems_each_rechecked_from_scratch(recorded_minif2f, fault_free_run):
    results, summary, calls = fault_free_run
    assert sorted(r["theorem"] for r in results) == sorted(recorded_minif2f["names"])
    assert all(r["status"] == "proved" for r in results), [r for r in results if r["status"] != "proved"]
    assert summary["workers"]["num_workers"] == 2
    config = json.loads((recorded_minif2f["root"] / "fault-free" / "config.json").read_text())
    assert config["distributed"]["searches_per_worker"] == 2 and config["distributed"]["lean_memory_gb"] == 0.5
    # Each proof: its search's Dojo, then the whole file compiled with `#print axioms` (no re-check Dojo).
    compiled = [Path(c["argv"][-1]).name for c in calls if c["tool"] == "lean" and "_check_" in c["argv"][-1]]
    dojos = [c for c in calls if c["tool"] == "lean" and "_check_" not in c["argv"][-1]]
    assert len(compiled) == len(results) and len(dojos) == len(results)


@pytest.mark.standin
@pytest.mark.slow
def test_prove_split_under_lean_crashes_and_timeouts_loses_nothing_and_proves_nearly_as_much(
    recorded_minif2f, fault_free_run
):
    clean, _, _ = fault_free_run
    faulty, _, calls = prove_split(recorded_minif2f, "faulty", **FAULTS)
    proved_clean = sum(r["status"] == "proved" for r in clean)
    proved_faulty = sum(r["status"] == "proved" for r in faulty)
    counts = f"proved {proved_faulty} with faults, {proved_clean} without"
    names = [r["theorem"] for r in faulty]
    assert sorted(names) == sorted(recorded_minif2f["names"]), counts  # none lost, none recorded twice
    assert proved_faulty >= 0.9 * proved_clean, counts
    # The faults happened: Dojo processes beyond one search Dojo per theorem (the re-check compiles).
    dojos = [c for c in calls if c["tool"] == "lean" and "_check_" not in c["argv"][-1]]
    assert len(dojos) > len(faulty), counts
