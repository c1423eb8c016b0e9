"""MCTS and RMaxTS (``search.mcts``): the same contract as best-first search (budgets,
statuses, re-check, trees), the tree's invariants after every expansion, PUCT steered by
priors and by the critic, and RMaxTS's intrinsic reward."""

from __future__ import annotations

import json

import pytest

from search import (
    ROOT,
    LeanError,
    MCTSSettings,
    ProofContext,
    ProofFinished,
    SearchLimits,
    SearchStatus,
    SearchTree,
    Status,
    StopReason,
    TacticState,
    Theorem,
    get_algorithm,
    mcts_search,
    rmaxts_search,
)

from prover.envs.synthetic import SyntheticConfig, SyntheticEnv, heldout_theorems
from prover.envs.synthetic_hard import is_true
from prover.policies.fixed import FixedPolicy

from tests.fakes import (
    BranchingEnv,
    CheckedGraphEnv,
    EnvCrashError,
    GraphEnv,
    TablePolicy,
    TableValueModel,
    branching_policy,
    two_step_problem,
)

T = Theorem("t")
SEARCHES = {"mcts": mcts_search, "rmaxts": rmaxts_search}


def check_every_step(tree, node):
    tree.check_invariants()


@pytest.fixture(params=sorted(SEARCHES))
def search(request):
    return SEARCHES[request.param]


def test_mcts_and_rmaxts_are_registered_beside_best_first():
    assert get_algorithm("mcts") is mcts_search and get_algorithm("rmaxts") is rmaxts_search
    with pytest.raises(ValueError, match="best_first, mcts, rmaxts"):
        get_algorithm("alphazero")


def test_finds_a_two_step_proof_and_fails_the_dead_end(search):
    table, policy = two_step_problem()
    env = GraphEnv("A", table)
    result = search(T, policy, env, SearchLimits(max_expansions=10), on_expansion=check_every_step)
    assert result.status is SearchStatus.PROVED and result.stop_reason is StopReason.PROVED
    assert result.proof == ["intro x", "simp"]
    assert env.closed == 1


def test_invariants_hold_after_every_expansion_on_bushy_searches_with_merges(search):
    env = BranchingEnv(branching=5, depth=4, proof_density=0.3, error_rate=0.2, seed=3)
    steps = []
    result = search(
        T,
        branching_policy(5),
        env,
        SearchLimits(max_expansions=60),
        on_expansion=lambda tree, node: (tree.check_invariants(), steps.append(node)),
    )
    assert len(steps) == result.num_expansions > 10
    merged = [n for n in result.tree.graph if n >= 0 and result.tree.graph.in_degree(n) > 1]
    assert merged, "the search should reach some states by more than one path"
    assert len(set(steps)) == len(steps)  # a state is expanded once


@pytest.mark.parametrize("rule", ["random", "learnable", "hard"])
def test_invariants_hold_at_every_step_on_the_synthetic_rules(search, rule):
    config = SyntheticConfig(rule=rule, depth=4)
    for theorem in heldout_theorems(4):
        result = search(
            theorem, FixedPolicy(), SyntheticEnv(config), SearchLimits(max_expansions=30), on_expansion=check_every_step
        )
        assert result.status in (SearchStatus.PROVED, SearchStatus.OPEN, SearchStatus.FAILED)
        assert result.num_expansions <= 30


def test_stops_at_the_expansion_budget_and_at_the_time_limit(search):
    result = search(
        T,
        branching_policy(4),
        BranchingEnv(branching=4, depth=50),
        SearchLimits(max_expansions=7),
        on_expansion=check_every_step,
    )
    assert (result.status, result.stop_reason, result.num_expansions) == (
        SearchStatus.OPEN,
        StopReason.MAX_EXPANSIONS,
        7,
    )
    env = BranchingEnv(branching=4, depth=50, latency_s=0.01)
    result = search(T, branching_policy(4), env, SearchLimits(max_expansions=10_000, time_limit_s=0.2))
    assert result.stop_reason is StopReason.TIME_LIMIT and 0.2 <= result.wall_time_s < 1.0
    result.tree.check_invariants()


def test_an_exhausted_search_is_failed(search):
    table = {"A": {"intro": TacticState("B"), "ring": LeanError("no")}, "B": {}}
    policy = TablePolicy({}, default=[("intro", -0.1), ("ring", -0.2)])
    result = search(T, policy, GraphEnv("A", table), SearchLimits(max_expansions=10), on_expansion=check_every_step)
    assert (result.status, result.stop_reason, result.proof) == (SearchStatus.FAILED, StopReason.EXHAUSTED, None)


def test_start_failures_crashes_and_rechecks_give_the_results_best_first_gives(search):
    table, policy = two_step_problem()
    assert search(Theorem("broken"), policy, GraphEnv("A", table)).status is SearchStatus.ERROR
    crash = {"A": {"intro": TacticState("B"), "boom": EnvCrashError("lean died")}, "B": {"simp": LeanError("no")}}
    result = search(T, TablePolicy({}, default=[("intro", -0.1), ("boom", -0.2)]), GraphEnv("A", crash))
    assert result.status is SearchStatus.ERROR and "lean died" in result.error and result.tree.num_states == 2
    env = CheckedGraphEnv("A", table, verdict="kernel says no")
    result = search(T, policy, env, on_expansion=check_every_step)
    assert env.checked == [["intro x", "simp"]] and result.status is SearchStatus.REJECTED


def test_puct_follows_the_prior_first_and_leaves_a_dead_end_for_the_other_branch():
    # A's likeliest tactic leads to C, whose only tactic leads to D, a dead end; B is proved by simp.
    table = {
        "A": {"left": TacticState("C"), "right": TacticState("B")},
        "C": {"go": TacticState("D")},
        "D": {"x": LeanError("no")},
        "B": {"simp": ProofFinished()},
    }
    policy = TablePolicy(
        {"A": [("left", -0.05), ("right", -3.0)], "C": [("go", -0.1)], "D": [("x", -0.1)], "B": [("simp", -0.1)]}
    )
    result = mcts_search(
        T, policy, GraphEnv("A", table), SearchLimits(max_expansions=10), on_expansion=check_every_step
    )
    assert result.proof == ["right", "simp"]
    assert policy.calls == ["A", "C", "D", "B"]  # the prior first; the failed branch is never visited again
    assert result.tree.status(result.tree.node_of("C")) is Status.FAILED


def test_the_critics_value_steers_puct_away_from_a_likely_but_hopeless_branch():
    table = {
        "A": {"left": TacticState("C"), "right": TacticState("B")},
        "C": {"go": TacticState("C2")},
        "C2": {"go": TacticState("C3")},
        "B": {"simp": ProofFinished()},
    }
    policy = TablePolicy(
        {"A": [("left", -0.2), ("right", -1.0)], "C": [("go", -0.1)], "C2": [("go", -0.1)], "B": [("simp", -0.1)]}
    )
    critic = TableValueModel({"C": -6.0, "C2": -6.0, "C3": -6.0, "B": -0.05}, default=-0.7)
    guided = mcts_search(
        T,
        policy,
        GraphEnv("A", table),
        SearchLimits(max_expansions=10),
        value_model=critic,
        on_expansion=check_every_step,
    )
    assert guided.proof == ["right", "simp"] and policy.calls == ["A", "B"]
    assert guided.tree.node(guided.tree.node_of("C"))["value"] == -6.0  # stored like best-first's
    assert sum(len(batch) for batch in critic.batches) == guided.tree.num_states  # each state scored once


def test_rmaxts_backs_up_one_for_new_states_and_mcts_the_share_of_live_tactics():
    table = {"A": {"a": TacticState("B"), "b": LeanError("no"), "c": LeanError("no"), "d": TacticState("C")}}
    policy = TablePolicy({}, default=[("a", -0.1), ("b", -0.2), ("c", -0.3), ("d", -0.4)])
    plain = mcts_search(T, policy, GraphEnv("A", table), SearchLimits(max_expansions=1))
    assert plain.tree.node(ROOT)["priority"] == pytest.approx(0.5)  # 2 of 4 tactics reached a state
    novel = rmaxts_search(T, policy, GraphEnv("A", table), SearchLimits(max_expansions=1))
    assert novel.tree.node(ROOT)["priority"] == pytest.approx(1.0)  # it reached new states


def test_rmaxts_turns_from_a_branch_that_only_revisits_known_states():
    # Under "loop" every tactic leads back to states the tree holds; "fresh" keeps finding new ones.
    table = {
        "A": {"loop": TacticState("L"), "fresh": TacticState("F0")},
        "L": {f"t{i}": TacticState("F0") for i in range(3)},
    }
    for i in range(12):
        table[f"F{i}"] = {"go": TacticState(f"F{i + 1}")}
    table["F12"] = {"done": ProofFinished()}
    policy = TablePolicy(
        {"A": [("loop", -0.01), ("fresh", -5.0)], "L": [(f"t{i}", -0.1) for i in range(3)]},
        default=[("go", -0.1), ("done", -0.1)],
    )
    discounted = MCTSSettings(intrinsic=True, gamma=0.99)
    result = mcts_search(
        T,
        policy,
        GraphEnv("A", table),
        SearchLimits(max_expansions=30),
        settings=discounted,
        on_expansion=check_every_step,
    )
    assert result.proved and result.proof[0] == "fresh"


def test_a_contextual_policy_gets_each_states_path_from_mcts():
    seen: list[ProofContext] = []

    class Contextual(TablePolicy):
        def propose_in_context(self, states, contexts, k):
            seen.extend(contexts)
            return self.propose(states, k)

    table, policy = two_step_problem()
    contextual = Contextual(policy.table)
    result = mcts_search(T, contextual, GraphEnv("A", table), SearchLimits(max_expansions=10))
    assert result.proved
    assert [c.tactics for c in seen][:1] == [()] and ("intro x",) in [c.tactics for c in seen]


def test_on_the_hard_benchmark_a_critic_that_sees_truth_helps_mcts_and_rmaxts(search):
    class TruthCritic:
        def score(self, states):
            return [-0.1 if is_true(s) else -8.0 for s in states]

    config = SyntheticConfig(rule="hard")
    theorems = heldout_theorems(30)
    limits = SearchLimits(max_expansions=16)
    alone = sum(search(t, FixedPolicy(), SyntheticEnv(config), limits).proved for t in theorems)
    guided = sum(
        search(t, FixedPolicy(), SyntheticEnv(config), limits, value_model=TruthCritic()).proved for t in theorems
    )
    assert guided > alone


@pytest.mark.parametrize("algorithm", ["mcts", "rmaxts"])
def test_prove_split_with_the_algorithm_saves_trees_that_report_and_viz_read(algorithm, tmp_path):
    from prover.cli import main

    out = tmp_path / algorithm
    main(
        [
            "prove-split",
            "--env",
            "synthetic",
            "--rule",
            "hard",
            "--num-theorems",
            "3",
            "--max-expansions",
            "12",
            "--algorithm",
            algorithm,
            "--num-workers",
            "0",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    config = json.loads((out / "config.json").read_text())
    assert config["search"]["algorithm"] == algorithm
    trees = sorted((out / "trees").iterdir())
    assert len(trees) == 3
    for path in trees:
        tree = SearchTree.load(path)
        tree.check_invariants()
        assert 1 <= tree.num_expanded <= 12
    main(["report", str(out), "--output", str(tmp_path / "report")])
    report = (tmp_path / "report" / "report.md").read_text()
    assert algorithm in report or "synthetic_0000" in report
    main(["viz", str(trees[0]), "--output", str(tmp_path / "tree.html")])
    page = (tmp_path / "tree.html").read_text()
    assert "synthetic_" in page and len(page) > 1000
