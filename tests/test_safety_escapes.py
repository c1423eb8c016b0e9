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
