"""The learnable synthetic benchmark: a rule a model can learn, and held-out theorems to
show that it did; the default synthetic mode is left exactly as it was."""

from __future__ import annotations

import pytest

from search import LeanError, ProofFinished, Proposal, SearchLimits, TacticState, Theorem, best_first_search

from prover.envs.synthetic import (
    DEAD_GOAL,
    LEARNABLE_TACTICS,
    NUMBER_TYPES,
    RELATIONS,
    RULE,
    SyntheticConfig,
    SyntheticEnv,
    features,
    heldout_theorems,
)
from prover.policies.fixed import FixedPolicy
from prover.settings import ConfigError

LEARNABLE = SyntheticConfig(rule="learnable", depth=6)


class RulePolicy:
    """Knows the hidden rule: proposes the working tactic first, then the rest."""

    def propose(self, states, k):
        answers = []
        for state in states:
            best = RULE[features(state)] if not state.endswith(DEAD_GOAL) else LEARNABLE_TACTICS[0]
            rest = [t for t in LEARNABLE_TACTICS if t != best]
            answers.append([Proposal(best, -0.1)] + [Proposal(t, -3.0) for t in rest][: k - 1])
        return answers


class MemorisingPolicy:
    """Remembers the tactic of every state it saw on a proof; elsewhere it guesses one tactic."""

    def __init__(self, seen: dict[str, str]):
        self.seen = seen

    def propose(self, states, k):
        return [[Proposal(self.seen.get(state, "norm_num"), -0.1)] for state in states]


def prove_all(policy, theorems, config=LEARNABLE, max_expansions=12):
    return [
        best_first_search(t, policy, SyntheticEnv(config), SearchLimits(max_expansions=max_expansions))
        for t in theorems
    ]


def test_default_mode_is_unchanged():
    """Pinned from the environment before the learnable mode existed: default runs, trees and
    the tests built on them stay byte for byte what they were."""
    env = SyntheticEnv()
    state = env.start(Theorem("synthetic_0002"))
    assert state.pp == "n : ℕ\nh : P n\n⊢ Q_f5634dcba2b8 n"
    assert env.run_tactic(state, "simp") == LeanError("synthetic: `simp` failed on this goal")
    assert env.run_tactic(state, "ring") == TacticState("n : ℕ\nh : P n\n⊢ Q_5751c9d8f998 n")
    assert SyntheticConfig().rule == "random"


def test_the_working_tactic_is_the_rule_of_the_goals_type_and_relation():
    env = SyntheticEnv(LEARNABLE)
    state = env.start(Theorem("synthetic_0003"))
    number_type, relation = features(state.pp)
    assert number_type in NUMBER_TYPES and relation in RELATIONS
    assert f": {number_type}" in state.pp.splitlines()[0] and state.pp.splitlines()[-1].startswith("⊢")
    working = RULE[(number_type, relation)]
    outcome = env.run_tactic(state, working)
    assert isinstance(outcome, (TacticState, ProofFinished)) and not (
        isinstance(outcome, TacticState) and outcome.pp.endswith(DEAD_GOAL)
    )


def test_wrong_tactics_fail_or_lose_the_goal_and_a_lost_goal_is_a_dead_end():
    env = SyntheticEnv(SyntheticConfig(rule="learnable", depth=6, error_rate=0.5))
    state = env.start(Theorem("synthetic_0001"))
    working = RULE[features(state.pp)]
    outcomes = {t: env.run_tactic(state, t) for t in LEARNABLE_TACTICS if t != working}
    dead = [o for o in outcomes.values() if isinstance(o, TacticState)]
    assert dead and any(isinstance(o, LeanError) for o in outcomes.values())
    assert all(o.pp.endswith(DEAD_GOAL) for o in dead)
    assert len({o.pp for o in dead}) == len(dead)  # each wrong tactic leaves its own dead end
    assert all(isinstance(env.run_tactic(dead[0], t), LeanError) for t in LEARNABLE_TACTICS)
    assert env.run_tactic(state, "aesop") == LeanError("unknown tactic `aesop`")


def test_proof_lengths_vary_from_one_to_depth_and_the_rule_proves_every_theorem():
    results = prove_all(RulePolicy(), [Theorem(f"synthetic_{i:04d}") for i in range(40)])
    assert all(r.proved for r in results)
    lengths = {len(r.proof) for r in results}
    assert min(lengths) == 1 and max(lengths) == LEARNABLE.depth


def test_the_rule_needs_both_features():
    for number_type in NUMBER_TYPES:
        assert len({RULE[(number_type, r)] for r in RELATIONS}) > 1
    for relation in RELATIONS:
        assert len({RULE[(t, relation)] for t in NUMBER_TYPES}) > 1
    assert set(RULE.values()) == set(LEARNABLE_TACTICS)


def test_a_model_that_learns_the_rule_proves_held_out_theorems_and_one_that_memorises_does_not():
    train = [Theorem(f"synthetic_{i:04d}") for i in range(30)]
    heldout = heldout_theorems(30)
    seen = {}
    for result in prove_all(RulePolicy(), train):
        for source, _, tactic in result.tree.proof_edges():
            seen[result.tree.state(source)] = tactic
    memoriser = MemorisingPolicy(seen)
    assert sum(r.proved for r in prove_all(memoriser, train)) == len(train)
    assert sum(r.proved for r in prove_all(memoriser, heldout)) <= 6  # norm_num's share of one-step proofs
    assert sum(r.proved for r in prove_all(RulePolicy(), heldout)) == len(heldout)


def test_held_out_theorems_are_new_problems_from_the_same_distribution():
    env = SyntheticEnv(LEARNABLE)
    train_states = {env.start(Theorem(f"synthetic_{i:04d}")).pp for i in range(200)}
    heldout_states = {env.start(t).pp for t in heldout_theorems(200)}
    assert not train_states & heldout_states
    for states in (train_states, heldout_states):
        assert {features(s) for s in states} == set(RULE)  # every case of the rule in both


def test_model_free_policy_proves_about_half_at_a_small_budget():
    """The benchmark's starting point: the fixed policy (its first eight tactics are the
    learnable ones, in an order that does not know the rule) is neither helpless nor done."""
    config = SyntheticConfig(rule="learnable", depth=8)
    proved = sum(r.proved for r in prove_all(FixedPolicy(), heldout_theorems(60), config, max_expansions=16))
    assert 15 <= proved <= 45


def test_rule_is_a_setting_with_choices():
    with pytest.raises(ConfigError, match="--rule cannot be 'learned'; did you mean 'learnable'"):
        SyntheticConfig(rule="learned")
    with pytest.raises(Exception, match="not a synthetic theorem"):
        SyntheticEnv(LEARNABLE).start(Theorem("synthetic_valid_0001"))
