"""The hard synthetic benchmark (``--rule hard``): the working tactic depends on the goal's
structure, proofs are long, high-prior tactics lead into dead ends that look alive, and a
node tries fewer tactics than there are."""

from __future__ import annotations

import math

import pytest

from search import LeanError, Proposal, SearchLimits, SearchStatus, TacticState, Theorem, best_first_search
from search.scoring import ValueMixed

from prover.envs.synthetic import SyntheticConfig, SyntheticEnv, heldout_theorems
from prover.envs.synthetic_hard import (
    HARD_RULE,
    HARD_TACTICS,
    TEMPTING,
    hard_features,
    is_true,
    outer_operator,
    working_tactic,
)
from prover.policies.fixed import DEFAULT_TACTICS, FixedPolicy

HARD = SyntheticConfig(rule="hard")


class OraclePolicy:
    """Knows the hidden rule: the working tactic first, then the rest."""

    def propose(self, states, k):
        answers = []
        for state in states:
            best = working_tactic(state)
            answers.append([Proposal(best, -0.1)] + [Proposal(t, -3.0) for t in HARD_TACTICS if t != best][: k - 1])
        return answers


class MarkerCritic:
    """A critic that learned the old benchmark's tell: a goal of ``False`` (or a stray
    ``h✝``) is a dead end, anything else looks provable."""

    def score(self, states):
        return [-10.0 if "⊢ False" in s or "✝" in s else -0.1 for s in states]


class TruthCritic:
    """A critic that evaluates the goal under its hypotheses: what a good one would learn."""

    def score(self, states):
        return [-0.1 if is_true(s) else -10.0 for s in states]


def prove_all(policy, theorems, config=HARD, limits=SearchLimits(), **kwargs):
    return [best_first_search(t, policy, SyntheticEnv(config), limits, **kwargs) for t in theorems]


def test_the_outer_operator_is_found_through_precedence_and_parentheses():
    assert outer_operator("x + y * z") == "+"
    assert outer_operator("(x + y) * z") == "*"
    assert outer_operator("x * y - z") == "-"
    assert outer_operator("x - (y - z)") == "-"
    assert outer_operator("(x - y) ^ 2") == "^"
    assert outer_operator("2 * (x + y) ^ 2") == "*"
    # The same tokens, two structures, two different tactics.
    sum_goal = "x y : ℤ\nh₀ : x = 1\nh₁ : y = 2\n⊢ x + y * 3 = 7"
    product_goal = "x y : ℤ\nh₀ : x = 1\nh₁ : y = 2\n⊢ (x + y) * 3 = 9"
    assert hard_features(sum_goal) == ("ℤ", "+", "=") and hard_features(product_goal) == ("ℤ", "*", "=")
    assert working_tactic(sum_goal) != working_tactic(product_goal)


def test_the_rule_needs_the_operator_and_the_relation_and_natural_subtraction_is_omega():
    for operator in ("+", "-", "*", "^"):
        assert len({HARD_RULE[(operator, r)] for r in ("=", "≤", "<", "≠")}) > 1
    for relation in ("=", "≤", "<", "≠"):
        assert len({HARD_RULE[(o, relation)] for o in ("+", "-", "*", "^")}) > 1
    assert working_tactic("x : ℕ\nh₀ : x = 3\n⊢ x - 5 ≠ 1") == "omega"
    assert working_tactic("x : ℤ\nh₀ : x = 3\n⊢ x - 5 ≠ 1") == HARD_RULE[("-", "≠")]


def test_more_tactics_than_a_node_tries_and_some_beyond_the_fixed_policys_first_eight():
    k = SearchLimits().tactics_per_node
    assert len(HARD_TACTICS) > k
    fixed_first = {t for t, _ in DEFAULT_TACTICS[:k]}
    assert set(HARD_RULE.values()) - fixed_first  # steps a model-free policy never tries


def test_the_oracle_proves_every_theorem_with_long_proofs_that_pass_the_recheck():
    config = SyntheticConfig(rule="hard", depth=6)
    results = prove_all(OraclePolicy(), [Theorem(f"synthetic_{i:04d}") for i in range(40)], config)
    assert all(r.status is SearchStatus.PROVED for r in results)  # PROVED: the re-check replayed it
    lengths = {len(r.proof) for r in results}
    assert min(lengths) == 3 and max(lengths) == 6


def test_wrong_tempting_tactics_lead_into_dead_ends_that_look_like_live_goals():
    env = SyntheticEnv(HARD)
    traps, live = [], []
    for i in range(30):
        state = env.start(Theorem(f"synthetic_{i:04d}"))
        live.append(state.pp)
        for tactic in TEMPTING:
            if tactic != working_tactic(state.pp):
                outcome = env.run_tactic(state, tactic)
                if isinstance(outcome, TacticState):
                    traps.append(outcome.pp)
    assert len(traps) > 30  # most tempting wrong tactics lead somewhere, not to an error
    assert all(is_true(s) for s in live) and not any(is_true(s) for s in traps)
    # Nothing in a dead end's text marks it: the same shape of lines, no False, no h✝.
    shape = lambda s: [line.split(" : ")[0][:1] for line in s.splitlines()]  # noqa: E731
    for trap in traps:
        assert "False" not in trap and "✝" not in trap
        assert shape(trap)[-1] == "⊢" and all(line.startswith(("h", "⊢")) for line in trap.splitlines()[1:])
    assert {len(s.splitlines()) for s in traps} == {len(s.splitlines()) for s in live}


def test_on_a_dead_end_the_right_looking_tactic_seems_to_progress_and_fails_at_the_end():
    env = SyntheticEnv(HARD)
    state = env.start(Theorem("synthetic_0001"))
    wrong = next(t for t in TEMPTING if t != working_tactic(state.pp))
    trap = env.run_tactic(state, wrong)
    while not isinstance(trap, TacticState):  # find a tempting tactic that traps
        state = env.start(Theorem("synthetic_0002"))
        trap = env.run_tactic(state, next(t for t in TEMPTING if t != working_tactic(state.pp)))
    steps = 0
    outcome = trap
    while isinstance(outcome, TacticState):
        assert not is_true(outcome.pp)
        outcome = env.run_tactic(outcome, working_tactic(outcome.pp))
        steps += 1
    assert isinstance(outcome, LeanError) and steps >= 2  # never ProofFinished


def test_the_fixed_policys_held_out_pass_rate_at_the_default_budget_is_below_40_percent():
    results = prove_all(FixedPolicy(), heldout_theorems(60))
    proved = sum(r.proved for r in results)
    assert 0 < proved < 0.4 * 60


def test_a_critic_that_spots_the_dead_end_marker_gains_nothing_and_one_that_sees_truth_does():
    limits = SearchLimits(max_expansions=24)
    theorems = heldout_theorems(40)
    alone = prove_all(FixedPolicy(), theorems, limits=limits)
    marker = prove_all(FixedPolicy(), theorems, limits=limits, scorer=ValueMixed(1.0), value_model=MarkerCritic())
    assert [r.proof for r in marker] == [r.proof for r in alone]  # the same searches, result for result
    assert [r.num_expansions for r in marker] == [r.num_expansions for r in alone]
    truth = prove_all(FixedPolicy(), theorems, limits=limits, scorer=ValueMixed(1.0), value_model=TruthCritic())
    assert sum(r.proved for r in truth) > sum(r.proved for r in alone)  # a critic can matter here


def test_held_out_theorems_are_new_goals_from_the_same_distribution():
    env = SyntheticEnv(HARD)
    train = {env.start(Theorem(f"synthetic_{i:04d}")).pp for i in range(200)}
    heldout = {env.start(t).pp for t in heldout_theorems(200)}
    assert not train & heldout
    cases = lambda states: {hard_features(s)[1:] for s in states}  # noqa: E731
    assert cases(train) == cases(heldout) == set(HARD_RULE)


def test_the_hard_rule_is_deterministic_across_sessions():
    first, second = SyntheticEnv(HARD), SyntheticEnv(HARD)
    a, b = first.start(Theorem("synthetic_0007")), second.start(Theorem("synthetic_0007"))
    assert a == b
    for tactic in HARD_TACTICS:
        assert first.run_tactic(a, tactic) == second.run_tactic(b, tactic)
    assert first.run_tactic(a, "exact?") == LeanError("unknown tactic `exact?`")


@pytest.mark.parametrize("rule", ["random", "learnable"])
def test_the_other_rules_still_run(rule):
    result = best_first_search(
        Theorem("synthetic_0000"),
        FixedPolicy(),
        SyntheticEnv(SyntheticConfig(rule=rule)),
        SearchLimits(max_expansions=8),
    )
    assert result.num_expansions >= 1 and math.isfinite(result.wall_time_s)
