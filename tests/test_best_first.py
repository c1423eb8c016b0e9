import pytest

from search import (
    DEAD,
    ROOT,
    EdgeOutcome,
    EnvCrashError,
    EnvTimeoutError,
    LeanError,
    NodeView,
    ProofFinished,
    Proposal,
    SearchLimits,
    SearchStatus,
    Status,
    StopReason,
    TacticState,
    Theorem,
    ValueModel,
    best_first_search,
    length_normalised,
    merge_proposals,
)

from tests.fakes import (
    BranchingEnv,
    CheckedGraphEnv,
    GraphEnv,
    TablePolicy,
    TableValueModel,
    branching_policy,
    two_step_problem,
)

T = Theorem("t")


def check_every_step(tree, node):
    tree.check_invariants()


def test_best_first_finds_two_step_proof():
    table, policy = two_step_problem()
    env = GraphEnv("A", table)
    result = best_first_search(T, policy, env, SearchLimits(max_expansions=10), on_expansion=check_every_step)
    assert result.status is SearchStatus.PROVED
    assert result.proof == ["intro x", "simp"]
    assert result.stop_reason is StopReason.PROVED
    # C scored best (-0.1) so it was expanded before B (-0.7), and failed.
    assert policy.calls == ["A", "C", "B"]
    assert result.tree.status(result.tree.node_of("C")) is Status.FAILED
    assert (result.num_expansions, result.num_tactics, result.num_states) == (3, 5, 3)
    assert env.closed == 1


def test_invariants_hold_after_every_expansion_on_a_bushy_search_with_merges():
    env = BranchingEnv(branching=5, depth=4, proof_density=0.3, error_rate=0.2, seed=3)
    steps = []
    result = best_first_search(
        T,
        branching_policy(5),
        env,
        SearchLimits(max_expansions=60),
        on_expansion=lambda tree, node: (tree.check_invariants(), steps.append(node)),
    )
    assert len(steps) == result.num_expansions > 10
    assert result.tree.num_states > result.num_expansions
    merged = [n for n in result.tree.graph if n >= 0 and result.tree.graph.in_degree(n) > 1]
    assert merged, "the search should reach some states by more than one path"


def test_search_stops_at_the_expansion_budget():
    result = best_first_search(
        T,
        branching_policy(4),
        BranchingEnv(branching=4, depth=50),
        SearchLimits(max_expansions=7),
        on_expansion=check_every_step,
    )
    assert result.status is SearchStatus.OPEN
    assert result.stop_reason is StopReason.MAX_EXPANSIONS
    assert result.num_expansions == 7


def test_search_stops_at_the_time_limit():
    env = BranchingEnv(branching=4, depth=50, latency_s=0.01)
    result = best_first_search(
        T,
        branching_policy(4),
        env,
        SearchLimits(max_expansions=10_000, time_limit_s=0.2),
        on_expansion=check_every_step,
    )
    assert result.status is SearchStatus.OPEN
    assert result.stop_reason is StopReason.TIME_LIMIT
    assert 0.2 <= result.wall_time_s < 1.0
    assert result.tree.node(ROOT)["partial"] is False  # only the last expansion may be cut short
    result.tree.check_invariants()


def test_time_budget_starts_after_env_start():
    # Starting takes longer than the whole budget; the search still gets its 0.2 s.
    env = BranchingEnv(branching=4, depth=50, start_delay_s=0.3, latency_s=0.01)
    result = best_first_search(
        T,
        branching_policy(4),
        env,
        SearchLimits(max_expansions=10_000, time_limit_s=0.2),
        on_expansion=check_every_step,
    )
    assert result.stop_reason is StopReason.TIME_LIMIT
    assert result.startup_time_s >= 0.3
    assert 0.2 <= result.wall_time_s < 1.0
    assert result.num_tactics >= 10
    assert result.env_time_s < result.wall_time_s  # the start is not counted as search time


def test_proof_found_in_the_step_the_budget_runs_out_is_proved():
    table, policy = two_step_problem()
    # B is the last state the budget allows: its expansion finds the proof.
    result = best_first_search(
        T, policy, GraphEnv("A", table), SearchLimits(max_expansions=3), on_expansion=check_every_step
    )
    assert result.status is SearchStatus.PROVED
    assert result.num_expansions == 3
    result = best_first_search(T, policy, GraphEnv("A", table), SearchLimits(max_expansions=2))
    assert result.status is SearchStatus.OPEN
    assert result.stop_reason is StopReason.MAX_EXPANSIONS


def test_exhausted_search_is_failed():
    table = {"A": {"intro": TacticState("B"), "ring": LeanError("no")}, "B": {}}
    policy = TablePolicy({}, default=[("intro", -0.1), ("ring", -0.2)])
    result = best_first_search(
        T, policy, GraphEnv("A", table), SearchLimits(max_expansions=10), on_expansion=check_every_step
    )
    assert result.status is SearchStatus.FAILED
    assert result.stop_reason is StopReason.EXHAUSTED
    assert result.proof is None


def test_duplicate_tactics_are_merged_with_their_best_score():
    merged = merge_proposals(
        [Proposal("simp", -2.0), Proposal(" simp ", -0.5), Proposal("", -0.1), Proposal("ring", -1.0)], k=8
    )
    assert merged == [Proposal("simp", -0.5), Proposal("ring", -1.0)]
    env = GraphEnv("A", {"A": {"simp": TacticState("B")}})
    policy = TablePolicy({}, default=[("simp", -2.0), ("simp\n", -0.5), ("simp", -1.0)])
    result = best_first_search(T, policy, env, SearchLimits(max_expansions=1), on_expansion=check_every_step)
    assert env.calls == [("A", "simp")]
    assert result.tree.graph.edges[ROOT, 1, "simp"]["logprob"] == -0.5


def test_tactics_per_node_caps_the_tactics_tried():
    env = GraphEnv("A", {})
    policy = TablePolicy({}, default=[(f"t{i}", -i * 0.1) for i in range(10)])
    best_first_search(T, policy, env, SearchLimits(max_expansions=5, tactics_per_node=3), on_expansion=check_every_step)
    assert [tactic for _, tactic in env.calls] == ["t0", "t1", "t2"]


def test_length_normalised_scorer_prefers_deeper_confident_paths():
    # Cumulative: X (-1.0) beats D (-0.6 - 0.6 = -1.2). Normalised: D (-0.6/2) beats X (-1.0).
    table = {
        "A": {"x": TacticState("X"), "c": TacticState("C")},
        "C": {"d": TacticState("D")},
        "X": {},
        "D": {},
    }
    policy = TablePolicy({"A": [("x", -1.0), ("c", -0.6)], "C": [("d", -0.6)]})
    best_first_search(T, policy, GraphEnv("A", table), SearchLimits(max_expansions=3), on_expansion=check_every_step)
    assert policy.calls == ["A", "C", "X"]
    policy.calls.clear()
    result = best_first_search(
        T,
        policy,
        GraphEnv("A", table),
        SearchLimits(max_expansions=3),
        scorer=length_normalised,
        on_expansion=check_every_step,
    )
    assert policy.calls == ["A", "C", "D"]
    assert result.tree.node(result.tree.node_of("X"))["priority"] == pytest.approx(-1.0)
    assert result.tree.node(result.tree.node_of("D"))["priority"] == pytest.approx(-0.6)


def test_value_model_scores_new_states_in_one_batch():
    table, policy = two_step_problem()
    values = TableValueModel({"B": -0.3, "C": -2.0})
    assert isinstance(values, ValueModel)
    result = best_first_search(
        T,
        policy,
        GraphEnv("A", table),
        SearchLimits(max_expansions=10),
        value_model=values,
        on_expansion=check_every_step,
    )
    # The root on its own, then A's two new states together; C and B make no new states.
    assert values.batches == [["A"], ["C", "B"]]
    tree = result.tree
    assert tree.node(tree.node_of("B"))["value"] == -0.3
    assert tree.view(tree.node_of("C")) == NodeView(cumulative_logprob=-0.1, depth=1, value=-2.0)
    assert result.status is SearchStatus.PROVED


def test_value_model_scores_each_state_once_even_when_reached_again():
    values = TableValueModel({})
    result = best_first_search(
        T,
        branching_policy(3),
        BranchingEnv(branching=3, depth=6),
        SearchLimits(max_expansions=20),
        value_model=values,
        on_expansion=check_every_step,
    )
    scored = [state for batch in values.batches for state in batch]
    assert len(scored) == len(set(scored)) == result.num_states
    assert len(values.batches) == result.num_expansions + 1  # every expansion here makes a new state


def test_scorer_sees_value_of_node():
    table, policy = two_step_problem()
    seen = []

    def value_first(view: NodeView) -> float:
        seen.append(view)
        return view.value

    values = TableValueModel({"B": -0.3, "C": -2.0})
    result = best_first_search(
        T,
        policy,
        GraphEnv("A", table),
        SearchLimits(max_expansions=10),
        scorer=value_first,
        value_model=values,
        on_expansion=check_every_step,
    )
    # The critic prefers B to C, though the policy prefers C: B is expanded next and proves A.
    assert policy.calls == ["A", "B"]
    assert result.status is SearchStatus.PROVED
    assert NodeView(cumulative_logprob=-0.5, depth=1, value=-0.3) in seen
    assert result.tree.node(result.tree.node_of("B"))["priority"] == -0.3


def test_a_value_model_giving_the_wrong_number_of_scores_is_refused():
    class Broken:
        def score(self, states):
            return [0.0]

    table, policy = two_step_problem()
    env = GraphEnv("A", table)
    with pytest.raises(ValueError, match="1 scores for 2 states"):
        best_first_search(T, policy, env, value_model=Broken())
    assert env.closed == 1


def test_a_theorem_that_cannot_start_is_an_error_result():
    table, policy = two_step_problem()
    env = GraphEnv("A", table)
    result = best_first_search(Theorem("broken"), policy, env)
    assert result.status is SearchStatus.ERROR
    assert result.stop_reason is StopReason.ENV_ERROR
    assert "could not start" in result.error and "cannot trace broken" in result.error
    assert result.tree is None
    assert result.wall_time_s == 0.0 and result.startup_time_s > 0.0
    assert env.closed == 1


def test_a_crash_mid_search_keeps_the_tree_and_is_an_error():
    table = {"A": {"intro": TacticState("B"), "boom": EnvCrashError("lean died")}, "B": {"simp": LeanError("no")}}
    policy = TablePolicy({}, default=[("intro", -0.1), ("boom", -0.2)])
    result = best_first_search(
        T, policy, GraphEnv("A", table), SearchLimits(max_expansions=10), on_expansion=check_every_step
    )
    assert result.status is SearchStatus.ERROR
    assert result.stop_reason is StopReason.ENV_ERROR
    assert "lean died" in result.error
    assert result.tree.num_states == 2
    result.tree.check_invariants()


def test_a_timed_out_tactic_is_a_failed_edge_and_the_search_goes_on():
    table = {"A": {"slow": EnvTimeoutError("5 s"), "simp": ProofFinished()}}
    policy = TablePolicy({}, default=[("slow", -0.1), ("simp", -0.2)])
    result = best_first_search(T, policy, GraphEnv("A", table), on_expansion=check_every_step)
    assert result.status is SearchStatus.PROVED
    assert result.tree.graph.edges[ROOT, DEAD, "slow"]["outcome"] == EdgeOutcome.TIMEOUT


def test_a_proof_that_fails_the_recheck_is_rejected():
    table, policy = two_step_problem()
    env = CheckedGraphEnv("A", table, verdict="kernel says no")
    result = best_first_search(T, policy, env, on_expansion=check_every_step)
    assert env.checked == [["intro x", "simp"]]
    assert result.status is SearchStatus.REJECTED
    assert result.stop_reason is StopReason.PROVED
    assert "kernel says no" in result.error
    env = CheckedGraphEnv("A", table, verdict=None)
    assert best_first_search(T, policy, env, on_expansion=check_every_step).status is SearchStatus.PROVED


def test_search_stops_trying_tactics_once_the_node_is_proved():
    env = GraphEnv("A", {"A": {"a": ProofFinished(), "b": ProofFinished()}})
    policy = TablePolicy({}, default=[("a", -0.1), ("b", -0.2)])
    best_first_search(T, policy, env, on_expansion=check_every_step)
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


def test_env_gets_back_its_own_handle_where_it_carries_more_than_the_text():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class LeanState(TacticState):
        session_id: int = 0

    class HandleEnv(GraphEnv):
        def run_tactic(self, state, tactic):
            self.handles.append(state)
            return super().run_tactic(state, tactic)

    rich, noted = LeanState("B", session_id=7), TacticState("C", message="unused variable")
    table = {"A": {"b": rich, "c": noted, "d": TacticState("D")}, "B": {}, "C": {}, "D": {}}
    env = HandleEnv("A", table)
    env.handles = []
    policy = TablePolicy({"A": [("b", -0.1), ("c", -0.2), ("d", -0.3)]}, default=[("x", -0.1)])
    best_first_search(T, policy, env, SearchLimits(max_expansions=4), on_expansion=check_every_step)
    given = {state.pp: state for state in env.handles}
    assert given["B"] is rich and given["C"] is noted
    assert given["D"] == TacticState("D")  # a plain state: an equal one, rebuilt from the tree
