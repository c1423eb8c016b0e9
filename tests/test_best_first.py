import pytest

from search import (
    DEAD,
    ROOT,
    EdgeOutcome,
    EnvCrashError,
    EnvTimeoutError,
    LeanError,
    ProofFinished,
    SearchLimits,
    SearchStatus,
    Status,
    TacticState,
    Theorem,
    best_first_search,
    length_normalised,
)
from search.best_first import merge_proposals
from search import Proposal

from prover.envs.synthetic import SyntheticConfig, SyntheticEnv
from prover.policies.fixed import FixedPolicy
from tests.fakes import CheckedGraphEnv, GraphEnv, TablePolicy, two_step_problem

T = Theorem("t")


def check_every_step(tree, node):
    tree.check_invariants()


def test_best_first_finds_two_step_proof():
    table, policy = two_step_problem()
    env = GraphEnv("A", table)
    result = best_first_search(T, policy, env, SearchLimits(max_expansions=10), on_expansion=check_every_step)
    assert result.status is SearchStatus.PROVED
    assert result.proof == ["intro x", "simp"]
    assert result.stop_reason == "proved"
    # C scored best (-0.1) so it was expanded before B (-0.7), and failed.
    assert policy.calls == ["A", "C", "B"]
    assert result.tree.status(result.tree.node_of("C")) is Status.FAILED
    assert (result.num_expansions, result.num_tactics, result.num_states) == (3, 5, 3)
    assert env.closed == 1


def test_invariants_hold_after_every_expansion_on_a_bushy_search():
    env = SyntheticEnv(SyntheticConfig(branching=5, depth=5, proof_density=0.3, error_rate=0.2, seed=3))
    steps = []
    result = best_first_search(
        Theorem("synthetic_0001"),
        FixedPolicy(),
        env,
        SearchLimits(max_expansions=60),
        on_expansion=lambda tree, node: (tree.check_invariants(), steps.append(node)),
    )
    assert len(steps) == result.num_expansions > 10
    assert result.tree.num_states > result.num_expansions


def test_search_stops_at_the_expansion_budget():
    env = SyntheticEnv(SyntheticConfig(branching=4, depth=50, error_rate=0.0))
    result = best_first_search(Theorem("synthetic_0000"), FixedPolicy(), env, SearchLimits(max_expansions=7))
    assert result.status is SearchStatus.OPEN
    assert result.stop_reason == "max_expansions"
    assert result.num_expansions == 7


def test_search_stops_at_the_time_limit():
    env = SyntheticEnv(SyntheticConfig(branching=4, depth=50, error_rate=0.0, latency_s=0.01))
    result = best_first_search(
        Theorem("synthetic_0000"), FixedPolicy(), env, SearchLimits(max_expansions=10_000, time_limit_s=0.2)
    )
    assert result.status is SearchStatus.OPEN
    assert result.stop_reason == "time_limit"
    assert 0.2 <= result.wall_time_s < 1.0
    result.tree.check_invariants()


def test_proof_found_in_the_step_the_budget_runs_out_is_proved():
    table, policy = two_step_problem()
    # B is the last state the budget allows: its expansion finds the proof.
    result = best_first_search(T, policy, GraphEnv("A", table), SearchLimits(max_expansions=3))
    assert result.status is SearchStatus.PROVED
    assert result.num_expansions == 3
    result = best_first_search(T, policy, GraphEnv("A", table), SearchLimits(max_expansions=2))
    assert result.status is SearchStatus.OPEN


def test_exhausted_search_is_failed():
    table = {"A": {"intro": TacticState("B"), "ring": LeanError("no")}, "B": {}}
    policy = TablePolicy({}, default=[("intro", -0.1), ("ring", -0.2)])
    result = best_first_search(T, policy, GraphEnv("A", table), SearchLimits(max_expansions=10))
    assert result.status is SearchStatus.FAILED
    assert result.stop_reason == "exhausted"
    assert result.proof is None


def test_duplicate_tactics_are_merged_with_their_best_score():
    merged = merge_proposals(
        [Proposal("simp", -2.0), Proposal(" simp ", -0.5), Proposal("", -0.1), Proposal("ring", -1.0)], k=8
    )
    assert merged == [Proposal("simp", -0.5), Proposal("ring", -1.0)]
    env = GraphEnv("A", {"A": {"simp": TacticState("B")}})
    policy = TablePolicy({}, default=[("simp", -2.0), ("simp\n", -0.5), ("simp", -1.0)])
    result = best_first_search(T, policy, env, SearchLimits(max_expansions=1))
    assert env.calls == [("A", "simp")]
    assert result.tree.graph.edges[ROOT, 1, "simp"]["logprob"] == -0.5


def test_tactics_per_node_caps_the_tactics_tried():
    env = GraphEnv("A", {})
    policy = TablePolicy({}, default=[(f"t{i}", -i * 0.1) for i in range(10)])
    best_first_search(T, policy, env, SearchLimits(max_expansions=5, tactics_per_node=3))
    assert [tactic for _, tactic in env.calls] == ["t0", "t1", "t2"]


def test_length_normalised_scorer_prefers_deeper_confident_paths():
    # Cumulative: X (-1.0) beats D (-0.6 - 0.6 = -1.2). Normalised: D (-0.6/2) beats X (-1.0).
    table = {
        "A": {"x": TacticState("X"), "c": TacticState("C")},
        "C": {"d": TacticState("D")},
        "X": {}, "D": {},
    }
    policy = TablePolicy({"A": [("x", -1.0), ("c", -0.6)], "C": [("d", -0.6)]})
    best_first_search(T, policy, GraphEnv("A", table), SearchLimits(max_expansions=3))
    assert policy.calls == ["A", "C", "X"]
    policy.calls.clear()
    best_first_search(T, policy, GraphEnv("A", table), SearchLimits(max_expansions=3), scorer=length_normalised)
    assert policy.calls == ["A", "C", "D"]


def test_a_theorem_that_cannot_start_is_an_error_result():
    table, policy = two_step_problem()
    env = GraphEnv("A", table)
    result = best_first_search(Theorem("broken"), policy, env)
    assert result.status is SearchStatus.ERROR
    assert "could not start" in result.error and "cannot trace broken" in result.error
    assert result.tree is None
    assert env.closed == 1


def test_a_crash_mid_search_keeps_the_tree_and_is_an_error():
    table = {"A": {"intro": TacticState("B"), "boom": EnvCrashError("lean died")}, "B": {"simp": LeanError("no")}}
    policy = TablePolicy({}, default=[("intro", -0.1), ("boom", -0.2)])
    result = best_first_search(T, policy, GraphEnv("A", table), SearchLimits(max_expansions=10))
    assert result.status is SearchStatus.ERROR
    assert result.stop_reason == "env_error"
    assert "lean died" in result.error
    assert result.tree.num_states == 2
    result.tree.check_invariants()


def test_a_timed_out_tactic_is_a_failed_edge_and_the_search_goes_on():
    table = {"A": {"slow": EnvTimeoutError("5 s"), "simp": ProofFinished()}}
    policy = TablePolicy({}, default=[("slow", -0.1), ("simp", -0.2)])
    result = best_first_search(T, policy, GraphEnv("A", table))
    assert result.status is SearchStatus.PROVED
    assert result.tree.graph.edges[ROOT, DEAD, "slow"]["outcome"] is EdgeOutcome.TIMEOUT


def test_a_proof_that_fails_the_recheck_is_rejected():
    table, policy = two_step_problem()
    env = CheckedGraphEnv("A", table, verdict="kernel says no")
    result = best_first_search(T, policy, env)
    assert env.checked == [["intro x", "simp"]]
    assert result.status is SearchStatus.REJECTED
    assert "kernel says no" in result.error
    env = CheckedGraphEnv("A", table, verdict=None)
    assert best_first_search(T, policy, env).status is SearchStatus.PROVED


def test_search_stops_trying_tactics_once_the_node_is_proved():
    env = GraphEnv("A", {"A": {"a": ProofFinished(), "b": ProofFinished()}})
    policy = TablePolicy({}, default=[("a", -0.1), ("b", -0.2)])
    best_first_search(T, policy, env)
    assert env.calls == [("A", "a")]


def test_bad_limits_are_refused():
    with pytest.raises(ValueError, match="max_expansions"):
        SearchLimits(max_expansions=0)
    with pytest.raises(ValueError, match="time_limit_s"):
        SearchLimits(time_limit_s=0)


def test_the_engine_imports_no_application_lean_torch_or_ray():
    import subprocess
    import sys

    code = (
        "import sys, search; heavy = {'prover', 'torch', 'ray', 'lean_dojo', 'lean_interact', 'transformers'};"
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
