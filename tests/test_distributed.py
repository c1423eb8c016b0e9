"""The Ray layer: same results as in-process, resumable, and nothing lost to faults.

Ray starts once per session on 2 CPUs (the ``ray_local`` fixture); workers reserve a
fraction of a CPU each, so four of them fit.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest

from search import Proposal, SearchLimits, Theorem

from prover.config import EnvConfig, PolicyConfig, RunConfig, TheoremSetConfig
from prover.distributed import BatchingPolicyServer, DistributedConfig, ProverPool, prove_distributed
from prover.faults import FaultyEnv
from prover.policies.fixed import FixedPolicy
from prover.runner import prove_locally
from prover.runs import RunDir


def synthetic_theorems(count):
    return [Theorem(f"synthetic_{i:04d}") for i in range(count)]


def lines_of(run):
    return [json.loads(line) for line in run.results_path.read_text().splitlines()]


def outcomes(records):
    return {r["theorem"]: (r["status"], r["proof"]) for r in records}


def dist(**overrides):
    settings = dict(num_workers=2, worker_cpus=0.5, searches_per_worker=2, max_wait_ms=2.0)
    return DistributedConfig(**{**settings, **overrides})


# ---- without Ray --------------------------------------------------------------------------


class EchoPolicy:
    """Proposes one tactic naming its state, and notes the size of every batch."""

    def __init__(self):
        self.batch_sizes = []

    def propose(self, states, k):
        self.batch_sizes.append(len(states))
        time.sleep(0.01)
        return [[Proposal(f"tactic for {state}", -1.0)] for state in states]


def test_policy_server_batches_requests_and_answers_each_caller_its_own():
    policy = EchoPolicy()
    server = BatchingPolicyServer(None, max_batch_size=4, max_wait_ms=20, policy_factory=lambda: policy)

    async def main():
        return await asyncio.gather(*(server.propose([f"s{i}"], 1) for i in range(10)))

    answers = asyncio.run(main())
    assert [a[0][0].tactic for a in answers] == [f"tactic for s{i}" for i in range(10)]
    assert sum(policy.batch_sizes) == 10 and max(policy.batch_sizes) == 4
    stats = server.stats.to_dict()
    assert stats["num_batches"] == len(policy.batch_sizes) == 3
    assert stats["mean_batch_size"] == pytest.approx(10 / 3)


def test_policy_server_reports_a_policy_that_cannot_load():
    def broken():
        raise ValueError("no such model")

    server = BatchingPolicyServer(None, policy_factory=broken)
    with pytest.raises(ValueError, match="no such model"):
        asyncio.run(server.ready())


def test_faulty_env_is_seeded_and_injects_the_asked_faults():
    from prover.envs.synthetic import SyntheticEnv
    from search import EnvCrashError, EnvTimeoutError

    def faults(seed):
        env = FaultyEnv(SyntheticEnv(), crash_prob=0.2, timeout_prob=0.2, seed=seed)
        state = env.start(Theorem("synthetic_0000"))
        seen = []
        for i in range(200):
            try:
                env.run_tactic(state, f"t{i}")
                seen.append("ok")
            except EnvCrashError:
                seen.append("crash")
            except EnvTimeoutError:
                seen.append("timeout")
        return seen

    first = faults(seed=1)
    assert first == faults(seed=1) and first != faults(seed=2)
    assert 20 < first.count("crash") < 60 and 20 < first.count("timeout") < 60


def test_importing_the_cli_and_the_distributed_module_does_not_import_ray():
    code = "import sys, prover.cli, prover.distributed; sys.exit('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_the_distributed_settings_are_saved_with_the_run(tmp_path):
    config = RunConfig(distributed=DistributedConfig(num_workers=3, max_batch_size=16, ray_address="auto"))
    assert RunDir.open(RunDir.create(tmp_path / "run", config).path).config() == config


# ---- on Ray --------------------------------------------------------------------------------


def test_one_and_four_workers_give_the_same_results_on_replay(tmp_path, traces_path, ray_local):
    config = RunConfig(
        env=EnvConfig(name="replay", traces=str(traces_path)),
        policy=PolicyConfig(name="replay", traces=str(traces_path)),
        theorems=TheoremSetConfig(benchmark="replay", limit=40),
        limits=SearchLimits(max_expansions=30),
    )
    from prover.benchmarks import load_theorems
    from prover.policies import make_policy

    theorems = load_theorems(config.theorems, config.env)
    results = {}
    for num_workers in (1, 4):
        run = RunDir.create(tmp_path / f"workers-{num_workers}", config)
        prove_distributed(theorems, config, run, dist(num_workers=num_workers, worker_cpus=0.5), show_progress=False)
        records = lines_of(run)
        assert sorted(r["theorem"] for r in records) == sorted(t.name for t in theorems)
        results[num_workers] = outcomes(records)
    local = RunDir.create(tmp_path / "in-process", config)
    prove_locally(theorems, make_policy(config.policy), config, local, show_progress=False)
    assert results[1] == results[4] == outcomes(lines_of(local))
    assert any(status == "proved" for status, _ in results[4].values())


def test_a_killed_workers_theorem_is_retried_and_recorded_once(tmp_path, ray_local):
    # depth 30: no search ends early, so the victim is mid-search when it is killed
    config = RunConfig(
        env=EnvConfig(name="synthetic", depth=30, latency_s=0.03), limits=SearchLimits(max_expansions=6)
    )
    theorems = synthetic_theorems(4)
    victim = theorems[1].name
    submitted = []

    def on_submit(theorem, pid):
        submitted.append(theorem.name)
        if theorem.name == victim and submitted.count(victim) == 1:
            threading.Timer(0.4, os.kill, (pid, signal.SIGKILL)).start()

    run = RunDir.create(tmp_path / "run", config)
    prove_distributed(theorems, config, run, dist(), show_progress=False, on_submit=on_submit)
    records = lines_of(run)
    assert sorted(r["theorem"] for r in records) == [t.name for t in theorems]
    assert submitted.count(victim) == 2  # killed once, retried once
    assert {r["status"] for r in records} == {"open"}  # the retry searched in full


def test_a_worker_that_keeps_dying_gives_an_error_record_after_max_retries(tmp_path, ray_local):
    config = RunConfig(
        env=EnvConfig(name="faulty", fault_inner="synthetic", fault_exit_theorems=("synthetic_0001",)),
        limits=SearchLimits(max_expansions=10),
    )
    submitted = []
    run = RunDir.create(tmp_path / "run", config)
    prove_distributed(synthetic_theorems(3), config, run, dist(max_retries=1), show_progress=False,
                      on_submit=lambda theorem, pid: submitted.append(theorem.name))
    by_name = {r["theorem"]: r for r in lines_of(run)}
    assert len(lines_of(run)) == 3 == len(by_name)
    assert by_name["synthetic_0001"]["status"] == "error"
    assert by_name["synthetic_0001"]["stop_reason"] == "worker_lost"
    assert submitted.count("synthetic_0001") == 2
    assert by_name["synthetic_0000"]["status"] != "error" and by_name["synthetic_0002"]["status"] != "error"


def test_a_policy_server_that_dies_is_restarted_and_no_search_notices(tmp_path, ray_local):
    import ray

    config = RunConfig(env=EnvConfig(name="synthetic", latency_s=0.01), limits=SearchLimits(max_expansions=15))
    theorems = synthetic_theorems(6)
    instant = replace(config, env=replace(config.env, latency_s=0.0))  # the same searches, faster
    expected = RunDir.create(tmp_path / "in-process", instant)
    prove_locally(theorems, FixedPolicy(), instant, expected, show_progress=False)
    with ProverPool(config, dist()) as pool:
        server_pid = ray.get(pool.server.ready.remote())
        threading.Timer(0.5, os.kill, (server_pid, signal.SIGKILL)).start()
        results = {theorem.name: (record["status"], record["proof"]) for theorem, _, record in pool.prove(theorems)}
        assert ray.get(pool.server.ready.remote()) != server_pid  # a new process serves now
    assert results == outcomes(lines_of(expected))


def test_a_hung_search_has_its_worker_killed_and_is_recorded_as_an_error(tmp_path, ray_local):
    config = RunConfig(
        env=EnvConfig(name="faulty", fault_inner="synthetic", fault_hang_prob=1.0, fault_hang_s=600),
        limits=SearchLimits(max_expansions=5),
    )
    run = RunDir.create(tmp_path / "run", config)
    started = time.monotonic()
    prove_distributed(synthetic_theorems(2), config, run, dist(theorem_timeout_s=2.0, max_retries=0),
                      show_progress=False)
    assert time.monotonic() - started < 30
    records = lines_of(run)
    assert sorted(r["theorem"] for r in records) == ["synthetic_0000", "synthetic_0001"]
    assert {(r["status"], r["stop_reason"]) for r in records} == {("error", "worker_lost")}


def test_ten_percent_crashes_and_timeouts_lose_no_theorem(tmp_path, ray_local):
    config = RunConfig(
        env=EnvConfig(
            name="faulty", fault_inner="synthetic", fault_crash_prob=0.1, fault_timeout_prob=0.1, seed=3,
            # and one worker death, retried
            fault_exit_theorems=("synthetic_0005",), fault_exit_marker_dir=str(tmp_path / "exits"),
        ),
        limits=SearchLimits(max_expansions=20),
    )
    theorems = synthetic_theorems(30)
    run = RunDir.create(tmp_path / "run", config)
    summary = prove_distributed(theorems, config, run, dist(searches_per_worker=4), show_progress=False)
    records = lines_of(run)
    assert sorted(r["theorem"] for r in records) == [t.name for t in theorems]  # each exactly once
    assert summary["num_finished"] == 30
    # At 10% per tactic nearly every search meets a crash; each is recorded as what it is.
    crashed = [r for r in records if r["status"] == "error"]
    assert crashed and all("injected fault: the environment crashed" in r["error"] for r in crashed)
    assert all(r["num_expansions"] >= 1 for r in records if r["stop_reason"] != "env_error")
    assert (tmp_path / "exits" / "exited-synthetic_0005").exists()  # that worker died...
    assert {r["theorem"]: r for r in records}["synthetic_0005"]["stop_reason"] != "worker_lost"  # ...and it was retried


@pytest.mark.slow
def test_resume_after_the_driver_is_killed_redoes_nothing_and_loses_nothing(tmp_path, ray_local):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "prover.cli", "prove-split", "--ray-address", ray_local, "--no-progress",
            "--num-workers", "2", "--worker-cpus", "0.25", "--searches-per-worker", "2"]
    problem = ["--num-theorems", "16", "--depth", "30", "--latency", "0.02", "--max-expansions", "8"]
    driver = subprocess.Popen([*args, *problem, "--out", str(out)], stderr=subprocess.PIPE, text=True)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and driver.poll() is None:
        if results.exists() and len(results.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    assert driver.poll() is None, f"the driver ended before it could be killed: {driver.stderr.read()}"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = results.read_text()
    before = before[: before.rfind("\n") + 1]  # a line torn by the kill is dropped on resume
    done_before = [json.loads(line)["theorem"] for line in before.splitlines()]
    assert 4 <= len(done_before) < 16

    resumed = subprocess.run([*args, "--resume", str(out)], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    after = results.read_text()
    assert after.startswith(before)  # earlier lines unchanged
    names = [json.loads(line)["theorem"] for line in after.splitlines()]
    assert sorted(names) == [t.name for t in synthetic_theorems(16)]  # none lost, none twice
