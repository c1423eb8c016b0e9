"""Cluster: throughput with 1, 2 and 4 policy replicas, and a node lost mid-run, on a 3-node Ray.

The cluster is simulated on this machine (``tests/cluster_nodes.py``: one raylet per
node, deaths noticed in about 1.5 s), and the work is sleeps, so a 2-core machine can
hold hundreds of searches and the figures measure the orchestration, not CPU work:

    head   CPUs for workers (prover-role=lean)      the driver (this process) joins here
    gpu    4 GPUs (declared; none is used)           the policy replicas, one GPU each
    lean   CPUs for workers (prover-role=lean)      the node killed in the failure scenario

The policy is the hidden ``sleeping`` one (100 ms + 2 ms per state per batch) behind
each ``PolicyReplica``; the environment a ``SyntheticEnv`` that sleeps 50 ms per
tactic, ``--tactics-per-node`` tactics an expansion. Searches never find a proof
(the synthetic depth is huge), so each runs exactly ``--expansions`` expansions.

    python benchmarks/cluster.py                       # 1, 2, 4 replicas at 64 and 256 searches
    python benchmarks/cluster.py --replicas 1 2 --concurrency 64 --skip-failure

For each number of concurrent searches N and replicas R it prints the throughput in
expansions per second, the speed-up over one replica at the same N (measured in the
same run), the replica efficiency (speed-up / R), the search efficiency (throughput /
N x one search alone in-process), and the replicas' mean batch and busy fraction. Then
the failure scenario: N = 64 searches on 2 replicas over ``--failure-theorems``
theorems, once as is and once with the lean node killed at half the first run's wall
time; it prints how many theorems were lost and how many came back twice, and the extra
wall time. It prints ``lost 0 duplicated 0`` when no theorem was lost or repeated.

Where the replicas matter: one model copy serves at most ``--max-batch-size`` states
per batch, so its throughput is capped at B / (100 + 2B ms): 69 expansions/s at the
default B = 8, a model whose batches cannot grow past 8 (a large model, long prompts).
The benchmark keeps the searches waiting on the policy more than on Lean (2 tactics of
50 ms an expansion), the regime the issue describes, where one copy of the model is
the bottleneck: at 64 searches, 1 replica serves 69 expansions/s while the searches
could use ~290; 2 replicas can serve 138 and 4 replicas 276.

Goals (issue 13): at 64 searches 2 replicas ≥ 1.8x one replica; at 256 searches
4 replicas ≥ 3.2x one replica; the failure scenario loses and repeats no theorem.

Measured on the 2-core development machine with the defaults, four runs: 1 replica
66-68 expansions/s at either N (98-100% busy); at 64 searches 2 replicas 1.91-1.98x,
4 replicas 2.8-3.1x (64 searches cannot keep 4 replicas busy: 86-91%); at 256 searches
2 replicas 1.96-1.97x, 4 replicas 3.78-3.86x. Node failure: lost 0 duplicated 0, the
two workers of the killed node lost, the 32 searches they held sent again, 0 errors,
+0.9 to +1.9 s on a 7.7-7.9 s run. Ray reports the killed node (its raylet's last log
lines) on stderr. About 2 minutes in all.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from search import SearchLimits, Theorem

from prover.config import BackendSpec, DistributedConfig, RunConfig
from prover.envs.synthetic import SyntheticConfig
from prover.policies import make_policy
from prover.policies.sleeping import SleepingConfig
from prover.run.driver import search_theorem

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.cluster_nodes import ClusterNodes  # noqa: E402  (the repository's own helper)

TACTIC_LATENCY_S = 0.050
BATCH_LATENCY_S = 0.100
PER_STATE_LATENCY_S = 0.002
LABEL = "prover-role=lean"


def run_config(args) -> RunConfig:
    # depth 10**6: no proof within reach, so every search does all its expansions;
    # no errors, so each expansion runs every proposed tactic.
    return RunConfig(
        env=BackendSpec(
            "environment", "synthetic", SyntheticConfig(depth=10**6, error_rate=0.0, latency_s=TACTIC_LATENCY_S)
        ),
        policy=BackendSpec(
            "policy",
            "sleeping",
            SleepingConfig(batch_latency_s=BATCH_LATENCY_S, per_state_latency_s=PER_STATE_LATENCY_S),
        ),
        limits=SearchLimits(max_expansions=args.expansions, tactics_per_node=args.tactics_per_node, time_limit_s=3600),
    )


def on_cluster(config: RunConfig, args, concurrency: int, replicas: int) -> RunConfig:
    """``config`` spread over ``args.workers`` workers (fractions of the CPUs they may use)."""
    searches_per_worker = math.ceil(concurrency / args.workers)
    return replace(
        config,
        distributed=DistributedConfig(
            num_workers=args.workers,
            searches_per_worker=searches_per_worker,
            worker_cpus=args.worker_cpus,
            worker_node_label=LABEL,
            policy_replicas=replicas,
            policy_gpus=1,
            max_batch_size=args.max_batch_size,
            max_wait_ms=args.max_wait_ms,
            policy_restart_wait_s=60,
        ),
    )


def theorems(count: int) -> list[Theorem]:
    return [Theorem(f"synthetic_{i:04d}") for i in range(count)]


def one_search_in_process(config: RunConfig) -> float:
    """Expansions per second of one search calling the policy directly."""
    policy = make_policy(config.policy)
    started = time.perf_counter()
    result = search_theorem(Theorem("synthetic_0000"), policy, config)
    return result.num_expansions / (time.perf_counter() - started)


def measure(config: RunConfig, count: int, kill_at_s: float | None = None, kill=None) -> dict:
    """Prove ``count`` theorems; the figures, with ``kill()`` called ``kill_at_s`` in."""
    from prover.run.cluster import RayExecutor

    with RayExecutor(config) as executor:  # actors up before the clock
        timer = threading.Timer(kill_at_s, kill) if kill_at_s is not None else None
        started = time.perf_counter()
        if timer:
            timer.start()
        seen: list[str] = []
        expansions = errors = 0
        for theorem, result in executor.prove(theorems(count)):
            seen.append(theorem.name)
            expansions += result.num_expansions
            errors += result.status.value == "error"
        wall_s = time.perf_counter() - started
        if timer:
            timer.join()
        stats = executor.stats()
    names = {t.name for t in theorems(count)}
    return {
        "wall_s": wall_s,
        "throughput": expansions / wall_s,
        "errors": errors,
        "lost": len(names - set(seen)),
        "duplicated": len(seen) - len(set(seen)),
        "policy": stats["policy"],
        "workers": stats["workers"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--expansions", type=int, default=8, help="Expansions per search.")
    parser.add_argument("--tactics-per-node", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4, help="Search workers (threaded actors).")
    parser.add_argument("--worker-cpus", type=float, default=0.5, help="CPUs Ray reserves per worker.")
    parser.add_argument("--node-cpus", type=int, default=2, help="CPUs each of head and lean offers Ray.")
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--failure-theorems", type=int, default=128)
    parser.add_argument("--skip-failure", action="store_true")
    args = parser.parse_args()

    import ray

    # Ray prints what it hears of dying nodes on stdout (the last lines of a killed raylet's
    # log); the figures alone go there, Ray's words to stderr.
    report = sys.stdout
    sys.stdout = sys.stderr

    def say(line: str) -> None:
        print(line, file=report, flush=True)

    key, value = LABEL.split("=")
    with ClusterNodes(head={"num_cpus": args.node_cpus, "labels": {key: value}}) as cluster:
        cluster.add_node(num_cpus=0, num_gpus=max(args.replicas), labels={key: "gpu"})
        lean = cluster.add_node(num_cpus=args.node_cpus, labels={key: value})
        ray.init(address=cluster.address, log_to_driver=False, logging_level=logging.WARNING)
        config = run_config(args)
        alone = one_search_in_process(config)
        say(
            f"3 nodes (head, gpu, lean); env {TACTIC_LATENCY_S * 1000:g} ms/tactic x {args.tactics_per_node}; "
            f"policy {BATCH_LATENCY_S * 1000:g} ms + {PER_STATE_LATENCY_S * 1000:g} ms/state per batch, "
            f"max batch {args.max_batch_size}; {args.expansions} expansions per search; {args.workers} workers"
        )
        say(f"one search alone, in-process: {alone:.2f} expansions/s")
        say(
            f"{'searches':>8} {'replicas':>8} {'exp/s':>8} {'speed-up':>9} {'replica eff':>12} "
            f"{'search eff':>11} {'mean batch':>11} {'busy/replica':>13}"
        )
        speedups: dict[tuple[int, int], float] = {}
        for concurrency in args.concurrency:
            base = None
            for replicas in args.replicas:
                figures = measure(on_cluster(config, args, concurrency, replicas), concurrency)
                throughput = figures["throughput"]
                base = base or (throughput if replicas == 1 else None)
                speedup = throughput / base if base else float("nan")
                speedups[concurrency, replicas] = speedup
                busy = figures["policy"]["busy_s"] / (figures["wall_s"] * replicas)
                say(
                    f"{concurrency:>8} {replicas:>8} {throughput:>8.1f} {speedup:>8.2f}x {speedup / replicas:>12.2f} "
                    f"{throughput / (concurrency * alone):>11.2f} {figures['policy']['mean_batch_size']:>11.1f} "
                    f"{busy:>12.0%}"
                )
        for (concurrency, replicas), goal in (((64, 2), 1.8), ((256, 4), 3.2)):
            if (concurrency, replicas) in speedups:
                verdict = "met" if speedups[concurrency, replicas] >= goal else "NOT met"
                say(
                    f"goal {replicas} replicas at {concurrency} searches >= {goal}x one replica: "
                    f"{speedups[concurrency, replicas]:.2f}x, {verdict}"
                )

        if not args.skip_failure:
            failure_config = on_cluster(config, args, 64, 2)
            calm = measure(failure_config, args.failure_theorems)
            killed = measure(
                failure_config,
                args.failure_theorems,
                kill_at_s=calm["wall_s"] / 2,
                kill=lambda: cluster.remove_node(lean),
            )
            workers = killed["workers"]
            say(
                f"node failure: {args.failure_theorems} theorems, 64 searches, 2 replicas; the lean node "
                f"killed at {calm['wall_s'] / 2:.1f} s: {workers['num_lost']} workers lost, "
                f"{workers['attempts_resent_after_node_loss']} searches sent again, {killed['errors']} errors; "
                f"wall {killed['wall_s']:.1f} s against {calm['wall_s']:.1f} s "
                f"(+{killed['wall_s'] - calm['wall_s']:.1f} s)"
            )
            say(f"lost {killed['lost']} duplicated {killed['duplicated']}")
        ray.shutdown()


if __name__ == "__main__":
    main()
