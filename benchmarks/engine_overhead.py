"""Engine overhead: time the search itself spends per tactic application.

A zero-latency ``SyntheticEnv`` (where every tactic makes a new state and no proof
exists) and a constant policy stand in for Lean and the model; the time inside them is
measured and subtracted, so what is left is the engine's own work: queueing, merging,
growing the networkx graph, status propagation. It is measured while the tree grows to
1,000, 10,000 and 100,000 states.

    python benchmarks/engine_overhead.py            # all three sizes
    python benchmarks/engine_overhead.py --sizes 1000 10000

Goal: at most 10 µs of engine time per tactic application (median) at 10,000 states,
and within 2x of that at 100,000 states. The ratio between sizes is measured in one run,
so it holds on a noisy shared machine where absolute times drift.
"""

from __future__ import annotations

import argparse
import statistics
import time

from search import SearchLimits, Theorem, best_first_search

from prover.envs.synthetic import SyntheticConfig, SyntheticEnv
from prover.policies.fixed import FixedPolicy

TACTICS_PER_NODE = 8


class TimedPolicy:
    """Wraps a policy and notes when each call starts and ends."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[tuple[float, float]] = []

    def propose(self, states, k):
        start = time.perf_counter()
        proposals = self.inner.propose(states, k)
        self.calls.append((start, time.perf_counter()))
        return proposals


class TimedEnv:
    """Wraps an environment and adds up the time spent inside ``run_tactic``."""

    def __init__(self, inner):
        self.inner = inner
        self.env_time_s = 0.0
        self.marks: list[tuple[float, float]] = []  # (time, env time so far) at each tactic
        self.num_tactics = 0

    def start(self, theorem):
        return self.inner.start(theorem)

    def run_tactic(self, state, tactic):
        start = time.perf_counter()
        outcome = self.inner.run_tactic(state, tactic)
        self.env_time_s += time.perf_counter() - start
        self.num_tactics += 1
        return outcome

    def close(self):
        self.inner.close()


def measure(num_states: int) -> dict:
    env = TimedEnv(SyntheticEnv(SyntheticConfig(branching=10**9, depth=10**9, error_rate=0.0)))
    policy = TimedPolicy(FixedPolicy([(f"tactic_{i}", -0.1 * (i + 1)) for i in range(TACTICS_PER_NODE)]))
    env_time_at_call: list[float] = []
    tactics_at_call: list[int] = []
    original = policy.propose

    def propose(states, k):
        env_time_at_call.append(env.env_time_s)
        tactics_at_call.append(env.num_tactics)
        return original(states, k)

    policy.propose = propose
    expansions = max(1, num_states // TACTICS_PER_NODE)
    started = time.perf_counter()
    result = best_first_search(
        Theorem("synthetic_0000"),
        policy,
        env,
        SearchLimits(max_expansions=expansions, time_limit_s=3600, tactics_per_node=TACTICS_PER_NODE),
    )
    wall = time.perf_counter() - started
    # Engine time of expansion i: from the end of its policy call to the start of the next
    # one, less the environment's time in between, per tactic applied in between.
    per_tactic_us = []
    for i in range(len(policy.calls) - 1):
        gap = policy.calls[i + 1][0] - policy.calls[i][1]
        env_time = env_time_at_call[i + 1] - env_time_at_call[i]
        tactics = tactics_at_call[i + 1] - tactics_at_call[i]
        if tactics:
            per_tactic_us.append((gap - env_time) / tactics * 1e6)
    tail = per_tactic_us[int(len(per_tactic_us) * 0.9):]  # the cost at (near) this size
    overall_engine_s = wall - env.env_time_s - sum(end - start for start, end in policy.calls)
    return {
        "states": result.num_states,
        "tactics": result.num_tactics,
        "median_us": statistics.median(per_tactic_us),
        "median_at_size_us": statistics.median(tail),
        "mean_us": overall_engine_s / result.num_tactics * 1e6,
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    args = parser.parse_args()
    rows = {}
    print(f"{'states':>8} {'tactics':>8} {'median µs/tactic':>17} {'at size':>8} {'mean':>7} {'wall s':>7}")
    for size in args.sizes:
        row = measure(size)
        rows[size] = row
        print(
            f"{row['states']:>8} {row['tactics']:>8} {row['median_us']:>17.2f} "
            f"{row['median_at_size_us']:>8.2f} {row['mean_us']:>7.2f} {row['wall_s']:>7.2f}"
        )
    sizes = sorted(rows)
    for small, large in zip(sizes, sizes[1:]):
        ratio = rows[large]["median_at_size_us"] / rows[small]["median_at_size_us"]
        print(f"ratio of per-tactic engine time at {large} vs {small} states: {ratio:.2f}x")
    if 10_000 in rows:
        verdict = "meets" if rows[10_000]["median_us"] <= 10 else "misses"
        print(f"goal ≤ 10 µs per tactic at 10,000 states: {rows[10_000]['median_us']:.2f} µs ({verdict})")
    if 10_000 in rows and 100_000 in rows:
        ratio = rows[100_000]["median_at_size_us"] / rows[10_000]["median_at_size_us"]
        print(f"goal within 2x at 100,000 states: {ratio:.2f}x ({'meets' if ratio <= 2 else 'misses'})")


if __name__ == "__main__":
    main()
