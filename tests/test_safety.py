"""The tactic filter and GuardedEnv: escaping tactics never reach Lean, ordinary ones do."""

from __future__ import annotations

import json

import pytest

from search import LeanError, ProofFinished, SearchLimits, SearchStatus, TacticState, Theorem, best_first_search

from prover.config import BackendSpec, SafetyConfig
from prover.envs import make_env
from prover.envs.safety import GuardedEnv, TacticFilter, tokens
from prover.envs.synthetic import SyntheticConfig

from tests.fakes import CheckedGraphEnv, GraphEnv, TablePolicy

ESCAPING_TACTICS = [
    "sorry",
    "admit",
    "exact sorry",
    "have h : False := sorry",
    "all_goals sorry",
    "refine ⟨?_, sorry⟩",
    "exact sorryAx _ false",
    "stop",
    "apply?",
    "rw?",
    "native_decide",
    "decide +native",
    "decide (config := { native := true })",
    "bv_decide",
    "exact Lean.ofReduceBool _ _ rfl",
    "run_tac do Lean.Elab.Tactic.evalTactic (← `(tactic| simp))",
    'run_cmd Lean.logInfo "hi"',
    "by_elab pure ()",
    '#eval IO.println "hi"',
    "#exit",
    "#print axioms",
    "exact (unsafeCast () : False)",
    "exact (unsafeBaseIO (pure trivial))",
    "exact IO.Process.exit 0",
    "set_option debug.skipKernelTC true in simp",
    "set_option maxHeartbeats 0 in nlinarith",
    "set_option compiler.extract_closed false in simp",
    "attribute [simp] Nat.add_comm",
    "simp\n\naxiom cheat : False",
    "exact cheat\ntheorem cheat : False := by simp",
    'macro "win" : tactic => `(tactic| sorry)',
    'syntax "win" : tactic',
    'elab "win" : tactic => pure ()',
    "open Lean Elab Tactic in evalTactic (← `(tactic| rfl))",
    "exact Elab.Term.elabTerm",
    "exact Lean.Meta.mkSorry",
    "decreasing_by sorry",
    "@[implemented_by foo] def bar := 1",
    "instance : Fact False := ⟨sorry⟩",
    "unsafe def f := 1",
    "#check Nat",
    "exact «sorryAx» _ true",
]

# Tactics that look a little like escapes but are ordinary: they must pass.
LOOKALIKES = [
    "simp [h_sorry]",
    "exact sorry_lemma h",
    "exact admit_free.1",
    "rw [Nat.stop_iff]",
    "exact?",
    "decide",
    "open Real in simp [sqrt_eq_iff]",
    "set_option maxRecDepth 10000 in norm_num",
    "set_option maxHeartbeats 400000 in nlinarith [sq_nonneg (a - b)]",
    "simp (config := {memoize := false}) [h0]",
    "exact #[1, 2].size_pos",
    'trace "37"',
    "calc (∑ x in Finset.range 10, (x + 1) ^ 2) % 10 = 5 := by decide",
]


@pytest.fixture(scope="module")
def trace_tactics(traces_path) -> list[str]:
    """The tactics Lean accepted in the successful LeanDojo searches of the shipped traces."""
    records = [json.loads(line) for line in traces_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    tactics = {r["tactic"] for r in records if r.get("lean_env", "").startswith("LeanDojo") and not r.get("error")}
    assert len(tactics) > 200
    return sorted(tactics)


@pytest.mark.parametrize("tactic", ESCAPING_TACTICS)
def test_escaping_tactic_is_refused_with_a_reason(tactic):
    refusal = TacticFilter().refusal(tactic)
    assert refusal is not None and refusal.startswith("refused: ")


def test_at_least_thirty_distinct_escapes_are_covered():
    assert len(set(ESCAPING_TACTICS)) >= 30


@pytest.mark.parametrize("tactic", LOOKALIKES)
def test_lookalike_of_an_escape_passes(tactic):
    assert TacticFilter().refusal(tactic) is None


def test_every_tactic_of_real_successful_searches_passes(trace_tactics):
    policy = TacticFilter()
    refused = {t: policy.refusal(t) for t in trace_tactics if policy.refusal(t)}
    # `polyrith` succeeded where the traces were recorded because that machine reached
    # Sage's web service; tactics that reach the network are refused (issue 21).
    assert refused == {"polyrith": "refused: `polyrith` reaches the network"}


def test_sorry_refusal_names_the_reason():
    assert TacticFilter().refusal("sorry") == "refused: `sorry` closes goals without proof"


def test_native_decide_is_allowed_only_when_configured():
    assert TacticFilter().refusal("native_decide") is not None
    assert TacticFilter(allow_native_decide=True).refusal("native_decide") is None
    assert TacticFilter(allow_native_decide=True).refusal("decide +native") is None
    # allowing native_decide does not let sorry through
    assert TacticFilter(allow_native_decide=True).refusal("sorry") is not None


def test_tokens_keep_dotted_names_and_subscripts_whole():
    assert tokens("rw [h₀.2.1, Nat.mod_add_div] at h'") == ["rw", "h₀.2.1", "Nat.mod_add_div", "at", "h'"]


def test_guarded_env_answers_a_refused_tactic_without_calling_lean():
    inner = GraphEnv("A", {"A": {"simp": ProofFinished()}})
    env = GuardedEnv(inner)
    state = env.start(Theorem("t"))
    outcome = env.run_tactic(state, "sorry")
    assert outcome == LeanError("refused: `sorry` closes goals without proof")
    assert inner.calls == []
    assert env.run_tactic(state, "simp") == ProofFinished()
    assert inner.calls == [("A", "simp")]


def test_guarded_env_check_refuses_an_unsafe_proof_before_the_inner_check():
    inner = CheckedGraphEnv("A", {}, verdict=None)
    env = GuardedEnv(inner)
    problem = env.check_proof(Theorem("t"), ["intro x", "native_decide"])
    assert problem is not None and "step 2" in problem and "native_decide" in problem
    assert inner.checked == []
    assert env.check_proof(Theorem("t"), ["intro x", "simp"]) is None
    assert inner.checked == [["intro x", "simp"]]


def test_guarded_env_forwards_the_inner_verdict_and_close():
    inner = CheckedGraphEnv("A", {}, verdict="Lean says no")
    env = GuardedEnv(inner)
    assert env.check_proof(Theorem("t"), ["simp"]) == "Lean says no"
    env.close()
    assert inner.closed == 1


def test_search_through_guarded_env_never_sends_sorry_and_finds_the_real_proof():
    inner = CheckedGraphEnv(
        "A", {"A": {"sorry": ProofFinished(), "intro x": TacticState("B")}, "B": {"simp": ProofFinished()}}
    )
    policy = TablePolicy({"A": [("sorry", -0.1), ("intro x", -1.0)], "B": [("simp", -0.5)]})
    result = best_first_search(Theorem("t"), policy, GuardedEnv(inner), SearchLimits(max_expansions=8))
    assert result.status is SearchStatus.PROVED
    assert result.proof == ["intro x", "simp"]
    assert all(tactic != "sorry" for _, tactic in inner.calls)
    assert inner.checked == [["intro x", "simp"]]


def test_make_env_puts_every_environment_behind_the_filter():
    env = make_env(BackendSpec.default("environment", "synthetic"))
    assert isinstance(env, GuardedEnv) and env.filter == TacticFilter()
    state = env.start(Theorem("synthetic_0001"))
    assert env.run_tactic(state, "admit") == LeanError("refused: `admit` closes goals without proof")
    assert env.run_tactic(state, "native_decide").error.startswith("refused: ")
    assert env.config.branching == 4  # the inner environment's extras stay reachable


def test_make_env_lets_native_decide_through_only_when_the_safety_settings_allow_it():
    spec = BackendSpec("environment", "synthetic", SyntheticConfig(error_rate=0.0))
    env = make_env(spec, SafetyConfig(allow_native_decide=True))
    assert env.filter == TacticFilter(allow_native_decide=True)
    state = env.start(Theorem("synthetic_0001"))
    assert isinstance(env.run_tactic(state, "native_decide"), TacticState)  # it reached the environment
    assert env.run_tactic(state, "sorry").error.startswith("refused: ")
    strict = make_env(spec, SafetyConfig())
    assert strict.run_tactic(strict.start(Theorem("synthetic_0001")), "native_decide").error.startswith("refused: ")
