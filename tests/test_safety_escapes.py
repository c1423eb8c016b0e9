"""Escapes from the tactic filter found by reading Lean's syntax, each pinned."""

import pytest

from prover.envs.safety import TacticFilter

ESCAPES = [
    ("exact Lean.ofReduceNat _ _ rfl", "ofReduceNat"),
    ("exact _root_.Lean.ofReduceBool _ _ rfl", "ofReduceBool"),
    ("exact _root_.Lean.trustCompiler", "trustCompiler"),
    ("bv_decide?", "bv_decide?"),
    ('bv_check "proof.lrat"', "bv_check"),
    ("open Nat Lean in exact ofReduceNat _ _ rfl", "open Lean"),
    ("open A B Lean in simp", "open Lean"),
    ("open A Lean.Elab in simp", "open Lean.Elab"),
    ("exact _root_.sorryAx _ false", "sorryAx"),
    ("exact sorryAx.{0} False false", "sorryAx"),
    ("0sorry", "sorry"),
    ("exact _root_.Lean.Elab.Term.elabTerm", "elaborator"),
    ('dbg_trace "x"; simp', "dbg_trace"),
    ("exact «sorryAx» _ false", "sorryAx"),
]


@pytest.mark.parametrize("tactic, named", ESCAPES)
def test_filter_refuses_compiler_trust_holes_and_metaprogramming_in_disguise(tactic, named):
    refusal = TacticFilter().refusal(tactic)
    assert refusal is not None and named in refusal


@pytest.mark.parametrize(
    "tactic",
    [
        "aesop (add unsafe 50% apply Nat.le_of_lt)",
        "aesop (add safe apply foo, unsafe 20% apply bar)",
        "nlinarith [sq_nonneg (x - 1.5), h₀]",
        "open Real in norm_num [Real.sqrt_eq_iff]",
        "simp [h_sorry, admit_lemma, Nat.succ_le]",
        "exact h.le.trans (by norm_num)",
    ],
)
def test_filter_allows_ordinary_tactics_that_look_like_refused_ones(tactic):
    assert TacticFilter().refusal(tactic) is None


def test_unsafe_outside_an_aesop_rule_is_still_refused():
    assert "unsafe" in TacticFilter().refusal("unsafe exact foo")
    assert "unsafe" in TacticFilter().refusal("exact (unsafe (add 1 2))")


def test_allow_native_decide_lets_compiler_trusting_tactics_through():
    permissive = TacticFilter(allow_native_decide=True)
    assert permissive.refusal("exact Lean.ofReduceBool _ _ rfl") is None
    assert permissive.refusal("bv_decide?") is None
    assert permissive.refusal("exact sorryAx _ false") is not None


# -- the families an audit of 45 adversarial tactics found open (issue 21), one test each --------

from search import Theorem  # noqa: E402

from prover.envs.safety import GuardedEnv  # noqa: E402

from tests.fakes import CheckedGraphEnv  # noqa: E402


@pytest.mark.parametrize("tactic", ["plausible", "slim_check", "sagredo!", "first | linarith | plausible"])
def test_tactics_that_close_the_goal_with_sorry_internally_are_refused(tactic):
    assert "sorry" in TacticFilter().refusal(tactic)


@pytest.mark.parametrize(
    "tactic", ["polyrith", 'llmstep ""', "nlinarith <;> polyrith", "hammer", "exact?  <;> leansearch"]
)
def test_tactics_that_reach_the_network_are_refused(tactic):
    assert "network" in TacticFilter().refusal(tactic)


@pytest.mark.parametrize(
    "tactic",
    [
        "sleep 100000000",
        "set_option maxHeartbeats 1000000000 in nlinarith",
        "set_option maxHeartbeats 0x7fffffff in nlinarith",
        "set_option synthInstance.maxHeartbeats 0 in simp",
        "set_option maxRecDepth 1000000000 in simp",
        "set_option maxRecDepth 0 in simp",
        "set_option synthInstance.maxSize 100000000 in simp",
    ],
)
def test_resource_exhaustion_is_refused(tactic):
    refusal = TacticFilter().refusal(tactic)
    assert refusal is not None and ("limit" in refusal or "stalls" in refusal)


@pytest.mark.parametrize(
    "tactic",
    [
        "aesop (add unsafe 50% apply foo); exact (unsafe (bar))",
        "aesop (add unsafe 50% apply foo) <;> unsafe exact x",
        "aesop (add safe apply foo)\nunsafe def f := 1",
    ],
)
def test_the_aesop_unsafe_exemption_covers_only_the_rule_clause(tactic):
    assert TacticFilter().refusal(tactic) is not None


@pytest.mark.parametrize(
    "tactic",
    [
        "simp\nsimproc foo (x + 0) := fun e => pure none",
        "simp\ndsimproc bar (_) := fun e => pure .continue",
        'simp\nlocal notation "⊤" => False',
        'simp\nscoped infix:50 " ~ " => Eq',
        "simp\nunif_hint (n : Nat) where n =?= 0 ⊢ n + 0 =?= 0",
        "simp\nadd_aesop_rules safe apply foo",
        "simp\nattribute [simp] foo",
        "simp\n@[simp] lemma foo : True := trivial",
        "simp\nset_option debug.skipKernelTC true",
        "simp\nopen Lean",
    ],
)
def test_a_newline_followed_by_a_command_is_refused_by_the_filter_and_the_recheck(tactic):
    assert "new command" in TacticFilter().refusal(tactic)
    inner = CheckedGraphEnv("A", {}, verdict=None)
    problem = GuardedEnv(inner).check_proof(Theorem("t"), ["intro x", tactic])
    assert problem is not None and "step 2" in problem
    assert inner.checked == []  # never reached Lean


def test_the_recheck_refuses_a_command_split_across_tactics_that_pass_one_by_one():
    inner = CheckedGraphEnv("A", {}, verdict=None)
    assert TacticFilter().refusal("open Real") is not None  # `open` without `in` starts a command
    problem = GuardedEnv(inner).check_proof(Theorem("t"), ["intro x", "simp", "open Real"])
    assert problem is not None and inner.checked == []


@pytest.mark.parametrize(
    "tactic",
    [
        "open ProbabilityTheory in simp [Kernel.comp_apply]",
        "set_option linter.unusedVariables false in simp",
        "set_option maxHeartbeats 400000 in nlinarith [sq_nonneg (a - b)]",
        "set_option maxRecDepth 10000 in norm_num",
        "open scoped BigOperators in simp",
        "constructor\n· simp\n· nlinarith [sq_nonneg (x - 1),\n    sq_nonneg (x + 1)]",
        "aesop (add unsafe 50% apply Nat.le_of_lt) (config := { maxRuleApplications := 200 })",
    ],
)
def test_legitimate_tactics_the_old_filter_refused_or_that_look_close_pass(tactic):
    assert TacticFilter().refusal(tactic) is None
