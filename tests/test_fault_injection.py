"""Injected faults go through the same restart-and-replay path as a real Lean's."""

from search import SearchLimits, SearchStatus, Theorem, best_first_search

from prover.envs.faulty import FaultyEnv
from prover.envs.synthetic import SyntheticEnv
from prover.policies.fixed import FixedPolicy

LIMITS = SearchLimits(max_expansions=64)


def prove_all(make_env, count=60):
    policy = FixedPolicy()
    return [best_first_search(Theorem(f"synthetic_{i:04d}"), policy, make_env(), LIMITS) for i in range(count)]


def test_injected_crashes_cost_a_restart_not_the_search():
    clean = prove_all(SyntheticEnv)
    envs = []

    def faulty():
        envs.append(FaultyEnv(SyntheticEnv(), crash_prob=0.1, seed=3))
        return envs[-1]

    shaken = prove_all(faulty)
    assert sum(e.num_injected for e in envs) > 20
    assert sum(e.num_restarts for e in envs) == sum(e.num_injected for e in envs)
    assert [r.status for r in shaken] == [r.status for r in clean]
    assert not any(r.status is SearchStatus.ERROR for r in shaken)


def test_injected_timeouts_are_failed_edges_and_the_search_goes_on():
    env = FaultyEnv(SyntheticEnv(), timeout_prob=0.2, seed=1)
    result = best_first_search(Theorem("synthetic_0001"), FixedPolicy(), env, LIMITS)
    timeouts = [a for *_, a in result.tree.graph.edges(data=True) if a["outcome"] == "timeout"]
    assert timeouts and env.num_restarts >= len(timeouts)
    assert result.status is not SearchStatus.ERROR
    result.tree.check_invariants()


def test_replay_after_a_restart_meets_no_injected_fault():
    from search import TacticState

    clean = SyntheticEnv()
    root = clean.start(Theorem("synthetic_0000"))
    tactic = next(
        t
        for t in ("simp", "ring", "omega", "linarith", "norm_num")
        if isinstance(clean.run_tactic(root, t), TacticState)
    )
    expected = clean.run_tactic(clean.run_tactic(root, tactic), "ring")

    env = FaultyEnv(SyntheticEnv(), crash_prob=1.0, seed=0)
    state = env.start(Theorem("synthetic_0000"))
    deeper = env.run_tactic(state, tactic)  # crashes once, restarts, retries cleanly
    again = env.run_tactic(deeper, "ring")  # crashes, restarts and replays `tactic` without a fault
    assert env.num_injected == 2 and env.num_restarts == 2
    assert again == expected
