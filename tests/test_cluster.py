"""prove-split across a multi-node Ray cluster: placement, results, and nodes lost mid-run.

The cluster is ``ray.cluster_utils.Cluster`` on this machine, one raylet per node, run by
the helper process of ``tests/cluster_nodes.py`` (a cluster cannot share a process with
the session's ``ray_local``, and nothing here starts Ray in the test process). Its nodes:

    head     1 CPU                          where the driver joins (and nothing is asked to run)
    gpu × 2  1 CPU, 1 GPU, prover-role=gpu  one policy replica each (Ray counts the GPU; no CUDA
                                            is used: the policy is `fixed`)
    lean × 2 2 CPUs, prover-role=lean       the search workers (--worker-node-label prover-role=lean)

Every run is ``prover prove-split --ray-address ...`` in a subprocess, as a user runs it,
and its placement is read from the run's summary.json (the ``policy`` and ``workers``
sections: the node of each replica over its restarts, the nodes workers started on).
Tests that lose nodes put them back for the next test (``Nodes.ensure``). Every process
of the cluster and the drivers runs ``tests/cluster_audit/sitecustomize.py``, which notes
each write under the runs directory, so a test can check that only the driver wrote it.

These tests run in the default test command; the cluster starts once for the module
(about 15 s on 2 cores) and each test costs 10 to 30 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from search import SearchLimits, Theorem

from prover.config import BackendSpec, RunConfig
from prover.envs.synthetic import SyntheticConfig
from prover.run.driver import InProcessExecutor, prove_set
from prover.run.rundir import RunDir

from tests.cluster_nodes import ClusterNodes

pytest.importorskip("ray", reason="the cluster tests need Ray (pip install 'ray[default]')")

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
ROLE = "prover-role"


class Nodes:
    """The test cluster, with the ids of its live nodes by role; see the module docstring."""

    SHAPES = {
        "gpu": dict(num_cpus=1, num_gpus=1, labels={ROLE: "gpu"}),
        "lean": dict(num_cpus=2, labels={ROLE: "lean"}),
    }

    def __init__(self, cluster: ClusterNodes, runs: Path, audit_log: Path):
        self.cluster = cluster
        self.address = cluster.address
        self.runs = runs
        self.audit_log = audit_log
        self.live: dict[str, list[str]] = {"gpu": [], "lean": []}

    def ensure(self, gpu: int = 2, lean: int = 2) -> None:
        """Add nodes until there are ``gpu`` GPU nodes and ``lean`` Lean nodes."""
        for role, wanted in (("gpu", gpu), ("lean", lean)):
            while len(self.live[role]) < wanted:
                self.add(role)

    def add(self, role: str) -> str:
        node_id = self.cluster.add_node(**self.SHAPES[role])
        self.live[role].append(node_id)
        return node_id

    def remove(self, node_id: str) -> None:
        for ids in self.live.values():
            if node_id in ids:
                ids.remove(node_id)
        self.cluster.remove_node(node_id)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    base = tmp_path_factory.mktemp("cluster")
    runs, audit_log = base / "runs", base / "writes.tsv"
    runs.mkdir()
    env = {
        "PYTHONPATH": os.pathsep.join([str(TESTS / "cluster_audit"), str(TESTS.parent)]),
        "PROVER_AUDIT_WATCH": str(runs),
        "PROVER_AUDIT_LOG": str(audit_log),
    }
    with ClusterNodes(env=env, log=base / "ray.log") as cluster:
        cluster_nodes = Nodes(cluster, runs, audit_log)
        cluster_nodes.ensure()
        yield cluster_nodes


# ---- helpers -------------------------------------------------------------------------------

# Searches that never end early (depth 30) and take their time (50 ms a tactic), so a
# node can be lost mid-run: each is 5 expansions of up to 8 tactics, 1 to 2 s.
SLOW_PROBLEM = ["--depth", "30", "--latency", "0.05", "--max-expansions", "5"]


def prove_split(nodes: Nodes, *args: str, out: Path | None = None, resume: Path | None = None, wait: bool = True):
    """``prover prove-split`` on the cluster, workers on the Lean nodes: the finished
    process, or (``wait=False``) the running one."""
    command = [
        sys.executable,
        "-m",
        "prover.cli",
        "prove-split",
        "--ray-address",
        nodes.address,
        "--no-progress",
        "--worker-node-label",
        f"{ROLE}=lean",
        *args,
    ]
    command += ["--resume", str(resume)] if resume else ["--out", str(out)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS / "cluster_audit"), str(TESTS.parent)]),
        "PROVER_AUDIT_WATCH": str(nodes.runs),
        "PROVER_AUDIT_LOG": str(nodes.audit_log),
    }
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if wait:
        process.stdout_text, process.stderr_text = process.communicate(timeout=180)
    return process


def finish(process, timeout_s: float = 180) -> subprocess.Popen:
    process.stdout_text, process.stderr_text = process.communicate(timeout=timeout_s)
    return process


def results(out: Path) -> list[dict]:
    """The whole lines of results.jsonl (a torn last line is not a result yet)."""
    path = out / "results.jsonl"
    if not path.exists():
        return []
    text = path.read_text()
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]


def wait_for_results(out: Path, count: int, process, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while len(results(out)) < count:
        assert process.poll() is None, f"the run ended before {count} results: {process.stderr.read()}"
        assert time.monotonic() < deadline, f"fewer than {count} results after {timeout_s} s"
        time.sleep(0.05)


def names_once(out: Path, count: int) -> list[str]:
    """The theorems of results.jsonl, checked to be synthetic_0000 .. count-1, each once."""
    names = [record["theorem"] for record in results(out)]
    assert sorted(names) == [f"synthetic_{i:04d}" for i in range(count)], Counter(names).most_common(3)
    return names


def summary_of(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


# ---- placement and results -----------------------------------------------------------------


def test_prove_split_on_the_cluster_places_replicas_on_gpu_nodes_and_workers_on_lean_nodes(nodes, tmp_path):
    nodes.ensure()
    out = nodes.runs / "placement"
    run = prove_split(
        nodes,
        "--num-workers",
        "2",
        "--worker-cpus",
        "1",
        "--searches-per-worker",
        "2",
        "--num-theorems",
        "8",
        "--max-expansions",
        "20",
        out=out,
    )
    assert run.returncode == 0, run.stderr_text

    # the results of one process, searching one theorem at a time
    config = RunConfig(
        env=BackendSpec("environment", "synthetic", SyntheticConfig()), limits=SearchLimits(max_expansions=20)
    )
    local = RunDir.create(tmp_path / "in-process", config)
    prove_set([Theorem(f"synthetic_{i:04d}") for i in range(8)], local, InProcessExecutor(config))
    expected = {r.theorem: (r.status.value, list(r.proof or [])) for r in local.records()}
    names_once(out, 8)
    assert {r["theorem"]: (r["status"], r["proof"] or []) for r in results(out)} == expected
    assert any(status == "proved" for status, _ in expected.values())

    summary = summary_of(out)
    policy, workers = summary["policy"], summary["workers"]
    # one replica per GPU of the cluster by default, each on its own GPU node
    assert policy["num_replicas"] == 2 and policy["gpus_per_replica"] == 1.0
    assert sorted(replica["node_ids"][0] for replica in policy["replicas"]) == sorted(nodes.live["gpu"])
    assert all(replica["num_states"] > 0 for replica in policy["replicas"])  # both served
    assert policy["num_states"] == sum(replica["num_states"] for replica in policy["replicas"])
    assert set(workers["started_on_nodes"]) <= set(nodes.live["lean"])
    assert sum(workers["started_on_nodes"].values()) == 2

    # only the driver wrote the run directory, though processes on four nodes took part
    writes = [line.split("\t") for line in nodes.audit_log.read_text().splitlines()]
    assert any(event == "start" and path.endswith("default_worker.py") for _, event, path in writes)  # Ray's too
    writers = {int(pid) for pid, event, path in writes if event != "start" and Path(path).is_relative_to(out)}
    assert writers == {run.pid}
    assert {Path(path).name for pid, _, path in writes if int(pid) == run.pid} >= {"results.jsonl", "summary.json"}


def test_a_policy_that_asks_for_more_gpus_than_a_node_has_is_refused_in_one_sentence(nodes):
    nodes.ensure()
    out = nodes.runs / "too-many-gpus"
    run = prove_split(nodes, "--num-theorems", "2", "--policy-gpus", "2", out=out)
    assert run.returncode == 2
    assert "a policy replica asks for 2 GPUs on one node" in run.stderr_text
    assert "lower --policy-gpus" in run.stderr_text


# ---- nodes lost mid-run --------------------------------------------------------------------


def test_a_lost_lean_node_loses_no_theorem_and_records_none_twice(nodes):
    nodes.ensure()
    out = nodes.runs / "lost-lean-node"
    # four workers of one CPU: two on each Lean node
    run = prove_split(
        nodes,
        "--num-workers",
        "4",
        "--worker-cpus",
        "1",
        "--searches-per-worker",
        "2",
        "--num-theorems",
        "20",
        *SLOW_PROBLEM,
        out=out,
        wait=False,
    )
    wait_for_results(out, 3, run)
    nodes.remove(nodes.live["lean"][-1])
    finish(run)
    assert run.returncode == 0, run.stderr_text
    names_once(out, 20)
    assert {r["status"] for r in results(out)} == {"open"}  # every search ran in full, none an error
    workers = summary_of(out)["workers"]
    assert workers["num_lost"] >= 2  # the lost node's two workers...
    assert workers["attempts_resent_after_node_loss"] >= 1  # ...whose searches went to the others


def test_a_lost_gpu_node_moves_its_replica_to_a_free_gpu_while_the_other_replica_serves(nodes):
    nodes.ensure()
    out = nodes.runs / "lost-gpu-node"
    run = prove_split(
        nodes,
        "--num-workers",
        "2",
        "--worker-cpus",
        "1",
        "--searches-per-worker",
        "4",
        "--num-theorems",
        "24",
        *SLOW_PROBLEM,
        out=out,
        wait=False,
    )
    wait_for_results(out, 2, run)
    lost, kept = nodes.live["gpu"]
    spare = nodes.add("gpu")  # a free GPU for the lost replica
    nodes.remove(lost)
    finish(run)
    assert run.returncode == 0, run.stderr_text
    names_once(out, 24)
    assert {r["status"] for r in results(out)} == {"open"}
    replicas = summary_of(out)["policy"]["replicas"]
    moved = next(replica for replica in replicas if replica["node_ids"][0] == lost)
    stayed = next(replica for replica in replicas if replica["node_ids"][0] == kept)
    assert moved["node_ids"] == [lost, spare] and moved["restarts"] == 1
    assert stayed["node_ids"] == [kept] and stayed["restarts"] == 0


def test_losing_every_replica_stops_the_run_in_one_sentence_and_resume_finishes_it(nodes):
    nodes.ensure()
    out = nodes.runs / "lost-every-replica"
    args = ["--num-workers", "2", "--worker-cpus", "1", "--searches-per-worker", "4", "--policy-restart-wait", "3"]
    run = prove_split(nodes, *args, "--num-theorems", "16", *SLOW_PROBLEM, out=out, wait=False)
    wait_for_results(out, 2, run)
    for node_id in list(nodes.live["gpu"]):
        nodes.remove(node_id)
    finish(run, timeout_s=60)
    assert run.returncode == 2
    errors = [line for line in run.stderr_text.splitlines() if line.startswith("error:")]  # Ray may say more
    assert len(errors) == 1
    message = errors[0]
    assert message.startswith("error: no policy replica answered for 3 s")
    done = len(results(out))
    assert f"the run stopped with {done} finished theorems saved" in message
    assert message.endswith(f"continue it with: prover prove-split --resume {out}")
    assert done < 16 and len({r["theorem"] for r in results(out)}) == done
    assert all(r["status"] == "open" for r in results(out))  # no search was recorded as an error

    nodes.ensure(gpu=1)
    before = (out / "results.jsonl").read_text()
    resumed = prove_split(nodes, *args, resume=out)
    assert resumed.returncode == 0, resumed.stderr_text
    assert (out / "results.jsonl").read_text().startswith(before)
    names_once(out, 16)


def test_losing_every_lean_node_stops_the_run_in_one_sentence_once_no_worker_can_be_placed(nodes):
    nodes.ensure(gpu=1)
    out = nodes.runs / "lost-every-lean-node"
    run = prove_split(
        nodes,
        "--num-workers",
        "2",
        "--worker-cpus",
        "1",
        "--searches-per-worker",
        "4",
        "--policy-restart-wait",
        "3",
        "--num-theorems",
        "16",
        *SLOW_PROBLEM,
        out=out,
        wait=False,
    )
    wait_for_results(out, 2, run)
    for node_id in list(nodes.live["lean"]):
        nodes.remove(node_id)
    finish(run, timeout_s=60)
    assert run.returncode == 2
    errors = [line for line in run.stderr_text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: no search worker could be placed for 3 s")
    assert errors[0].endswith(f"continue it with: prover prove-split --resume {out}")
    names = [r["theorem"] for r in results(out)]
    assert len(names) == len(set(names)) < 16


def test_a_driver_killed_on_the_cluster_resumes_without_redoing_or_losing_a_theorem(nodes):
    nodes.ensure(gpu=1, lean=1)
    out = nodes.runs / "killed-driver"
    args = ["--num-workers", "2", "--worker-cpus", "1", "--searches-per-worker", "4"]
    run = prove_split(nodes, *args, "--num-theorems", "16", *SLOW_PROBLEM, out=out, wait=False)
    wait_for_results(out, 3, run)
    run.send_signal(signal.SIGKILL)
    run.wait()
    before = (out / "results.jsonl").read_text()
    before = before[: before.rfind("\n") + 1]  # a line torn by the kill is dropped on resume
    assert 3 <= len(before.splitlines()) < 16

    resumed = prove_split(nodes, *args, resume=out)
    assert resumed.returncode == 0, resumed.stderr_text
    assert (out / "results.jsonl").read_text().startswith(before)
    names_once(out, 16)
    summary = summary_of(out)
    assert summary["num_theorems"] == summary["num_finished"] == 16
