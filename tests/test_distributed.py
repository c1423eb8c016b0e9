"""Batch proving off and on Ray: the batching server, and the Ray executor giving the same
results as the in-process one, resumable, with nothing lost to faults.

Every batch run goes through ``prover.run.driver.prove_set``; only the executor differs. Ray
starts once per session on 2 CPUs (the ``ray_local`` fixture); workers reserve a
fraction of a CPU each, so four of them fit. The tests on Ray are in the slow tier.
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

from search import EnvTimeoutError, Proposal, SearchLimits, Theorem

from prover.config import BackendSpec, DistributedConfig, RunConfig, TheoremSetConfig
from prover.envs.faulty import FaultyConfig, FaultyEnv
from prover.envs.replay import ReplayConfig
from prover.envs.synthetic import SyntheticConfig, SyntheticEnv
from prover.errors import ProverError
from prover.policies.fixed import FixedConfig
from prover.policies.replay import ReplayPolicyConfig
from prover.run.driver import InProcessExecutor, prove_set
from prover.run.rundir import RunDir
from prover.run.serving import BatchingServer


def synthetic_theorems(count):
    return [Theorem(f"synthetic_{i:04d}") for i in range(count)]


def synthetic(**options):
    return BackendSpec("environment", "synthetic", SyntheticConfig(**options))


def faulty(**options):
    return BackendSpec("environment", "faulty", FaultyConfig(**options))


def on_ray(config, **overrides):
    """``config`` spread over 2 workers of half a CPU, 2 searches each (fits the 2-CPU Ray)."""
    settings = dict(num_workers=2, worker_cpus=0.5, searches_per_worker=2, max_wait_ms=2.0)
    return replace(config, distributed=DistributedConfig(**{**settings, **overrides}))


def outcomes(records):
    return {r.theorem: (r.status.value, r.proof) for r in records}


def lines_of(run):
    return [json.loads(line) for line in run.results_path.read_text().splitlines()]


def prove_in_process(theorems, config, path):
    run = RunDir.create(path, config)
    prove_set(theorems, run, InProcessExecutor(config))
    return run


# ---- the batching server, without Ray -----------------------------------------------------


class EchoPolicy:
    """Proposes one tactic naming its state, and notes every call it serves."""

    def __init__(self):
        self.calls = []

    def propose(self, states, k):
        self.calls.append(("propose", len(states), k))
        time.sleep(0.01)
        return [[Proposal(f"tactic {i} for {state}", -1.0) for i in range(k)] for state in states]


class Critic(EchoPolicy):
    """A target with a second batched method: ``score``, one number per state."""

    def score(self, states):
        self.calls.append(("score", len(states)))
        time.sleep(0.01)
        return [float(state.removeprefix("s")) for state in states]


def serve(server, *calls):
    """Send the coroutines of ``calls`` concurrently; their answers, in order."""

    async def main():
        return await asyncio.gather(*calls)

    return asyncio.run(main())


def test_batching_server_batches_requests_and_answers_each_caller_its_own():
    policy = EchoPolicy()
    server = BatchingServer(max_batch_size=4, max_wait_ms=20, target=policy)
    answers = serve(server, *(server.propose([f"s{i}"], 1) for i in range(10)))
    assert [a[0][0].tactic for a in answers] == [f"tactic 0 for s{i}" for i in range(10)]
    assert [size for _, size, _ in policy.calls] == [4, 4, 2]
    stats = server.stats.to_dict()
    assert stats["num_batches"] == 3 and stats["num_requests"] == 10 and stats["largest_batch"] == 4
    assert stats["mean_batch_size"] == pytest.approx(10 / 3)


def test_batching_server_coalesces_calls_with_the_same_arguments_into_one_model_call():
    policy = Critic()
    server = BatchingServer(max_batch_size=16, max_wait_ms=20, target=policy)
    answers = serve(
        server,
        server.propose(["s1", "s2"], 1),
        server.score(["s3"]),
        server.propose(["s4"], 2),
        server.propose(["s5"], 1),
        server.score(["s6", "s7"]),
    )
    # one batch; within it one model call per (method, arguments), each caller its own slice
    assert server.stats.num_batches == 1 and server.stats.num_states == 7
    assert server.stats.to_dict()["states_by_method"] == {"propose": 4, "score": 3}
    assert sorted(policy.calls) == [("propose", 1, 2), ("propose", 3, 1), ("score", 3)]
    assert [[p.tactic for p in ps] for ps in answers[0]] == [["tactic 0 for s1"], ["tactic 0 for s2"]]
    assert answers[1] == [3.0]
    assert [p.tactic for p in answers[2][0]] == ["tactic 0 for s4", "tactic 1 for s4"]
    assert [p.tactic for p in answers[3][0]] == ["tactic 0 for s5"]
    assert answers[4] == [6.0, 7.0]


def test_batching_server_batches_score_for_a_target_that_has_one():
    critic = Critic()
    server = BatchingServer(max_batch_size=4, max_wait_ms=20, target=critic)
    answers = serve(server, *(server.score([f"s{i}"]) for i in range(10)))
    assert answers == [[float(i)] for i in range(10)]
    assert critic.calls == [("score", 4), ("score", 4), ("score", 2)]
    assert server.stats.num_batches == 3


def test_batching_server_closes_a_batch_once_requests_stop_arriving():
    server = BatchingServer(max_batch_size=64, max_wait_ms=5_000, batch_idle_ms=20, target=EchoPolicy())
    started = time.perf_counter()
    serve(server, server.propose(["s0"], 1), server.propose(["s1"], 1))
    assert time.perf_counter() - started < 1.0  # the idle gap closed it, not the 5 s wait
    assert server.stats.num_batches == 1


def test_batching_server_hands_a_model_error_to_its_callers_and_keeps_serving():
    class Flaky(EchoPolicy):
        def propose(self, states, k):
            if any(state == "bad" for state in states):
                raise RuntimeError("out of memory")
            return super().propose(states, k)

    server = BatchingServer(max_batch_size=1, max_wait_ms=1, target=Flaky())

    async def main():
        with pytest.raises(RuntimeError, match="out of memory"):
            await server.propose(["bad"], 1)
        return await server.propose(["good"], 1)

    assert asyncio.run(main())[0][0].tactic == "tactic 0 for good"


def test_batching_server_reports_a_policy_that_cannot_load_from_ready():
    # a fixed tactic with a positive log-prob: building the policy fails
    spec = BackendSpec("policy", "fixed", FixedConfig(tactics=("simp:1",)))
    server = BatchingServer(spec)  # the constructor keeps the error (Ray would restart it in a loop)
    with pytest.raises(ProverError, match="bad fixed tactic"):
        asyncio.run(server.ready())
    with pytest.raises(ProverError, match="bad fixed tactic"):
        asyncio.run(server.propose(["s"], 1))


def test_batching_server_builds_the_policy_its_spec_names():
    server = BatchingServer(BackendSpec("policy", "fixed", FixedConfig(tactics=("ring:-0.5",))), max_wait_ms=1)

    async def main():  # one event loop, as in the Ray actor
        return await server.ready(), await server.propose(["⊢ 1 = 1"], 4)

    pid, proposals = asyncio.run(main())
    assert pid == os.getpid() and [p.tactic for p in proposals[0]] == ["ring"]


# ---- other pieces without Ray --------------------------------------------------------------


def test_faulty_env_is_seeded_and_injects_the_asked_faults():
    def faults(seed):
        env = FaultyEnv(SyntheticEnv(), crash_prob=0.2, timeout_prob=0.2, seed=seed)
        state = env.start(Theorem("synthetic_0000"))
        seen = []
        for i in range(200):
            try:
                env.run_tactic(state, f"t{i}")
                seen.append("ok")  # a crash is restarted and retried: the search sees no fault
            except EnvTimeoutError:
                seen.append("timeout")
        return seen, env.num_injected

    first, injected = faults(seed=1)
    assert (first, injected) == faults(seed=1) and first != faults(seed=2)[0]
    crashes = injected - first.count("timeout")
    assert 20 < crashes < 60 and 20 < first.count("timeout") < 60


def test_importing_the_cli_and_the_distributed_module_does_not_import_ray():
    code = "import sys, prover.cli, prover.run.cluster, prover.run.serving; sys.exit('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_the_distributed_settings_are_saved_with_the_run(tmp_path):
    config = RunConfig(distributed=DistributedConfig(num_workers=3, max_batch_size=16, ray_address="auto"))
    assert RunDir.open(RunDir.create(tmp_path / "run", config).path).config() == config


# ---- on Ray --------------------------------------------------------------------------------

# Every test here is in the slow tier: starting Ray takes 4 to 8 s on 2 CPUs, and each
# test starts its own actors (a second or more). The quick tier covers the Ray-free parts.


@pytest.mark.slow
@pytest.mark.parametrize("num_workers", [1, 4])
def test_ray_workers_give_the_in_process_results_on_replay(num_workers, tmp_path, traces_path, ray_local):
    from prover.run.cluster import RayExecutor
    from prover.theorem_sets import load_theorems

    config = RunConfig(
        env=BackendSpec("environment", "replay", ReplayConfig(traces=str(traces_path))),
        policy=BackendSpec("policy", "replay", ReplayPolicyConfig(traces=str(traces_path))),
        theorems=TheoremSetConfig(theorem_set="replay", limit=40),
        limits=SearchLimits(max_expansions=2, tactics_per_node=4),  # some proofs need more: a mix
    )
    theorems = load_theorems(config.theorems, config.env)
    expected = outcomes(prove_in_process(theorems, config, tmp_path / "in-process").records())
    assert any(status == "proved" for status, _ in expected.values())
    assert any(status != "proved" for status, _ in expected.values())
    ray_config = on_ray(config, num_workers=num_workers)
    run = RunDir.create(tmp_path / "on-ray", ray_config)
    summary = prove_set(theorems, run, RayExecutor(ray_config))
    assert sorted(r["theorem"] for r in lines_of(run)) == sorted(t.name for t in theorems)  # each once
    assert outcomes(run.records()) == expected
    assert summary.num_finished == len(theorems) and RunDir.open(run.path).config() == ray_config


@pytest.mark.slow
def test_a_policy_that_cannot_load_stops_the_ray_run_with_its_message(ray_local):
    from prover.run.cluster import RayExecutor

    config = on_ray(RunConfig(policy=BackendSpec("policy", "fixed", FixedConfig(tactics=("simp:1",)))))
    with pytest.raises(ProverError, match="bad fixed tactic"):
        with RayExecutor(config):
            pass


@pytest.mark.slow
def test_a_killed_workers_theorem_is_retried_and_recorded_once(tmp_path, ray_local):
    from prover.run.cluster import RayExecutor

    # depth 30: no search ends early, so the victim is mid-search when it is killed
    config = on_ray(RunConfig(env=synthetic(depth=30, latency_s=0.03), limits=SearchLimits(max_expansions=6)))
    theorems = synthetic_theorems(4)
    victim = theorems[1].name
    submitted = []

    def on_submit(theorem, pid):
        submitted.append(theorem.name)
        if theorem.name == victim and submitted.count(victim) == 1:
            threading.Timer(0.4, os.kill, (pid, signal.SIGKILL)).start()

    run = RunDir.create(tmp_path / "run", config)
    executor = RayExecutor(config, on_submit=on_submit)
    prove_set(theorems, run, executor)
    records = lines_of(run)
    assert sorted(r["theorem"] for r in records) == [t.name for t in theorems]
    assert submitted.count(victim) == 2  # killed once, retried once
    assert executor.num_workers_lost == 1
    assert {r["status"] for r in records} == {"open"}  # the retry searched in full


@pytest.mark.slow
def test_a_worker_that_keeps_dying_gives_an_error_record_after_max_retries(tmp_path, ray_local):
    from prover.run.cluster import RayExecutor

    config = on_ray(
        RunConfig(
            env=faulty(inner="synthetic", exit_theorems=("synthetic_0001",)), limits=SearchLimits(max_expansions=10)
        ),
        max_retries=1,
    )
    submitted = []
    run = RunDir.create(tmp_path / "run", config)
    prove_set(
        synthetic_theorems(3), run, RayExecutor(config, on_submit=lambda theorem, pid: submitted.append(theorem.name))
    )
    by_name = {r["theorem"]: r for r in lines_of(run)}
    assert len(lines_of(run)) == 3 == len(by_name)
    assert by_name["synthetic_0001"]["status"] == "error"
    assert by_name["synthetic_0001"]["stop_reason"] == "worker_lost"
    assert "died on each of 2 attempts" in by_name["synthetic_0001"]["error"]
    assert submitted.count("synthetic_0001") == 2
    assert by_name["synthetic_0000"]["status"] != "error" and by_name["synthetic_0002"]["status"] != "error"


@pytest.mark.slow
def test_a_policy_server_that_dies_is_restarted_and_no_search_notices(tmp_path, ray_local):
    import ray

    from prover.run.cluster import RayExecutor

    config = on_ray(RunConfig(env=synthetic(latency_s=0.01), limits=SearchLimits(max_expansions=15)))
    theorems = synthetic_theorems(6)
    instant = replace(config, env=synthetic(latency_s=0.0))  # the same searches, faster
    expected = outcomes(prove_in_process(theorems, instant, tmp_path / "in-process").records())
    with RayExecutor(config) as executor:
        server_pid = ray.get(executor.server.ready.remote())
        threading.Timer(0.5, os.kill, (server_pid, signal.SIGKILL)).start()
        results = {theorem.name: result.to_record() for theorem, result in executor.prove(theorems)}
        assert ray.get(executor.server.ready.remote()) != server_pid  # a new process serves now
    assert outcomes(results.values()) == expected


@pytest.mark.slow
def test_a_hung_search_has_its_worker_killed_and_is_recorded_as_an_error(tmp_path, ray_local):
    from prover.run.cluster import RayExecutor

    config = on_ray(
        RunConfig(env=faulty(inner="synthetic", hang_prob=1.0, hang_s=600), limits=SearchLimits(max_expansions=5)),
        theorem_timeout_s=2.0,
        max_retries=0,
    )
    run = RunDir.create(tmp_path / "run", config)
    started = time.monotonic()
    prove_set(synthetic_theorems(2), run, RayExecutor(config))
    assert time.monotonic() - started < 30
    records = lines_of(run)
    assert sorted(r["theorem"] for r in records) == ["synthetic_0000", "synthetic_0001"]
    assert {(r["status"], r["stop_reason"]) for r in records} == {("error", "worker_lost")}


@pytest.mark.slow
def test_ten_percent_crashes_and_timeouts_lose_no_theorem_and_change_no_result(tmp_path, ray_local):
    from prover.run.cluster import RayExecutor

    config = RunConfig(
        env=faulty(
            inner="synthetic",
            crash_prob=0.1,
            timeout_prob=0.1,
            seed=3,
            # and one worker death, retried
            exit_theorems=("synthetic_0005",),
            exit_marker_dir=str(tmp_path / "exits"),
        ),
        limits=SearchLimits(max_expansions=20),
    )
    theorems = synthetic_theorems(30)
    # The faults are drawn per theorem from the seed, so the in-process run (which never
    # lets a theorem kill its process) meets the same crashes and timeouts.
    expected = outcomes(prove_in_process(theorems, config, tmp_path / "in-process").records())
    ray_config = on_ray(config, searches_per_worker=4)
    run = RunDir.create(tmp_path / "run", ray_config)
    executor = RayExecutor(ray_config)
    summary = prove_set(theorems, run, executor)
    records = run.records()
    assert sorted(r["theorem"] for r in lines_of(run)) == [t.name for t in theorems]  # each exactly once
    assert summary.num_finished == 30
    assert (tmp_path / "exits" / "exited-synthetic_0005").exists()  # that worker died...
    assert executor.num_workers_lost == 1
    assert {r.theorem: r for r in records}["synthetic_0005"].stop_reason.value != "worker_lost"  # ...and was retried
    # A crash costs a restart of the session, not the search; a timeout is a failed edge.
    assert not [r for r in records if r.status.value == "error"]
    assert outcomes(records) == expected


@pytest.mark.slow
def test_resume_after_the_driver_is_killed_redoes_nothing_and_loses_nothing(tmp_path, ray_local):
    out = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "prover.cli",
        "prove-split",
        "--ray-address",
        ray_local,
        "--no-progress",
        "--num-workers",
        "2",
        "--worker-cpus",
        "0.25",
        "--searches-per-worker",
        "2",
    ]
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
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_theorems"] == summary["num_finished"] == 16


# ---- policy replicas: planning and routing (issue 13; the cluster itself: test_cluster.py) --


def test_one_policy_replica_per_gpu_by_default_and_what_does_not_fit_is_refused():
    from prover.policies.vllm import VLLMConfig
    from prover.run.cluster import plan_replicas

    fixed = BackendSpec("policy", "fixed", FixedConfig())
    assert plan_replicas(fixed, DistributedConfig(), [0.0, 0.0]) == (1, 0.0)  # no GPU: one, without
    assert plan_replicas(fixed, DistributedConfig(), [4.0, 2.0, 0.0]) == (6, 1.0)  # one per GPU
    assert plan_replicas(fixed, DistributedConfig(policy_gpus=2), [4.0, 3.0]) == (3, 2.0)  # each within a node
    assert plan_replicas(fixed, DistributedConfig(policy_replicas=2), [4.0]) == (2, 1.0)
    split = BackendSpec("policy", "vllm", VLLMConfig(tensor_parallel_size=2))
    assert plan_replicas(split, DistributedConfig(), [4.0, 2.0]) == (3, 2.0)  # as many GPUs as the split
    with pytest.raises(ProverError, match="3 policy replicas of 2 GPUs do not fit: the Ray cluster's nodes hold 2"):
        plan_replicas(fixed, DistributedConfig(policy_replicas=3, policy_gpus=2), [2.0, 3.0])
    with pytest.raises(ProverError, match="asks for 4 GPUs on one node, .* at most 2 on a node; lower --policy-gpus"):
        plan_replicas(fixed, DistributedConfig(policy_gpus=4), [2.0, 2.0])


def test_worker_node_label_is_key_value_and_picks_the_nodes_that_carry_it():
    from prover.run.cluster import labels_match
    from prover.settings import ConfigError

    assert DistributedConfig(worker_node_label="prover-role=lean").worker_selector() == {"prover-role": "lean"}
    assert DistributedConfig().worker_selector() is None
    with pytest.raises(ConfigError, match="--worker-node-label must be KEY=VALUE"):
        DistributedConfig(worker_node_label="lean")
    lean, gpu = {"prover-role": "lean"}, {"prover-role": "gpu"}
    assert labels_match(lean, {"prover-role": "lean"}) and not labels_match(gpu, {"prover-role": "lean"})
    assert labels_match(lean, {"prover-role": "!gpu"}) and not labels_match(gpu, {"prover-role": "!gpu"})
    assert labels_match(gpu, {"prover-role": "in(lean,gpu)"}) and not labels_match({}, {"prover-role": "in(lean)"})


@pytest.mark.slow
def test_policy_calls_go_to_the_least_loaded_replica_and_around_lost_ones(ray_local):
    import ray

    from prover.policies.sleeping import SleepingConfig
    from prover.run.cluster import PolicyClient, PolicyReplica, PolicyServerLostError

    spec = BackendSpec("policy", "sleeping", SleepingConfig(batch_latency_s=0.05, per_state_latency_s=0.0))
    replica_class = ray.remote(PolicyReplica).options(num_cpus=0, max_concurrency=1000)
    replicas = [replica_class.remote(spec, 4, 1.0) for _ in range(2)]  # batches of at most 4 states
    ray.get([replica.ready.remote() for replica in replicas])

    def served():
        return [ray.get(replica.report.remote())["stats"]["num_states"] for replica in replicas]

    def searches(client, count=8, calls=5):
        """``count`` concurrent searches of ``calls`` propose calls each, as a worker's threads."""

        def search():
            with client.search():
                for _ in range(calls):
                    client.propose(["⊢ True"], 1)

        threads = [threading.Thread(target=search) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    searches(PolicyClient(replicas))
    assert sum(served()) == 40 and min(served()) >= 12  # each replica a fair share, not one all

    before = served()
    searches(PolicyClient(replicas, sticky=True), count=1)  # one search keeps to one replica
    assert sorted(after - then for after, then in zip(served(), before)) == [0, 5]

    client = PolicyClient(replicas, restart_wait_s=1.0)
    before = served()[1]
    ray.kill(replicas[0], no_restart=True)
    searches(client)  # every call answered, by the replica left
    assert ray.get(replicas[1].report.remote())["stats"]["num_states"] - before == 40
    ray.kill(replicas[1], no_restart=True)
    started = time.monotonic()
    with pytest.raises(PolicyServerLostError, match="no policy replica answered for 1 s"):
        client.propose(["⊢ True"], 1)
    assert time.monotonic() - started < 10


@pytest.mark.slow
def test_score_calls_share_the_routing_of_propose_calls_and_go_around_lost_replicas(ray_local):
    """A replica holding a critic: a sticky search keeps its score calls with its propose
    calls, and score calls fail over to the replica left as propose calls do."""
    import ray

    from prover.run.cluster import PolicyClient, PolicyReplica, PolicyServerLostError

    replica_class = ray.remote(PolicyReplica).options(num_cpus=0, max_concurrency=1000)
    replicas = [replica_class.remote(None, 4, 1.0, target=Critic()) for _ in range(2)]
    ray.get([replica.ready.remote() for replica in replicas])

    def served(method, replicas=replicas):
        return [ray.get(replica.report.remote())["stats"]["states_by_method"].get(method, 0) for replica in replicas]

    sticky = PolicyClient(replicas, sticky=True)
    with sticky.search():
        for i in range(3):
            assert sticky.propose([f"s{i}"], 1)[0][0].tactic == f"tactic 0 for s{i}"
            assert sticky.score([f"s{i}"]) == [float(i)]
    assert sorted(served("propose")) == sorted(served("score")) == [0, 3]
    assert served("propose") == served("score")  # both kinds of call on the search's replica

    client = PolicyClient(replicas, restart_wait_s=1.0)
    [before] = served("score", replicas[1:])
    ray.kill(replicas[0], no_restart=True)
    answers = []

    def search(first):
        for i in range(first, first + 5):
            answers.append((i, client.score([f"s{i}"])))

    threads = [threading.Thread(target=search, args=(10 * n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == sorted((i, [float(i)]) for n in range(8) for i in range(10 * n, 10 * n + 5))
    assert served("score", replicas[1:]) == [before + 40]  # every call answered, by the replica left
    ray.kill(replicas[1], no_restart=True)
    with pytest.raises(PolicyServerLostError, match="no policy replica answered for 1 s"):
        client.score(["s1"])
