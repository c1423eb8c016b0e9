"""Finding the `sorry`s of a Lean file and putting proofs in their places (``prover.holes``):
text only, no Lean."""

from __future__ import annotations

import re

import pytest

from prover.holes import (
    declarations,
    hole_kind,
    make_holes,
    patch,
    position_of,
    split_header,
)

FILE = """import Mathlib
-- a comment between imports
import Aesop

open Real

namespace Foo

theorem top (x : ℝ) : x = x := by
  sorry

theorem after_first (x : ℝ) (h : x = 2) : x + x = 4 := by
  rw [h]
  sorry

theorem term_mode : 1 + 1 = 2 := sorry

theorem term_next_line : 1 + 1 = 2 :=
  sorry

theorem two (p q : Prop) (hp : p) (hq : q) : p ∧ q := by
  constructor
  sorry
  sorry

example : True := by sorry

theorem inside : 2 = 2 ∧ True :=
  ⟨sorry, trivial⟩

end Foo
"""


def holes_of(text: str):
    sorries = []
    for match in re.finditer(r"(?<![\w'])sorry(?![\w'])", text):
        line, column = position_of(text, match.start())
        sorries.append((line, column, line, column + 5, f"goal {line}"))
    return make_holes(text, sorries)


def test_the_header_is_the_leading_imports_and_the_body_the_rest():
    header, body = split_header(FILE)
    assert header == "import Mathlib\n-- a comment between imports\nimport Aesop\n"
    assert header + body == FILE
    assert split_header("theorem t : True := trivial\n") == ("", "theorem t : True := trivial\n")


def test_declarations_carry_their_namespace_and_examples_have_no_name():
    found = declarations(FILE)
    assert [d.full_name for d in found] == [
        "Foo.top",
        "Foo.after_first",
        "Foo.term_mode",
        "Foo.term_next_line",
        "Foo.two",
        "",
        "Foo.inside",
    ]
    assert found[0].line == 9 and found[5].keyword == "example"


def test_holes_are_named_by_declaration_with_a_position_where_ambiguous_and_know_their_kind():
    holes = holes_of(FILE)
    assert [(h.name, h.kind) for h in holes] == [
        ("Foo.top", "tactic"),
        ("Foo.after_first", "tactic"),
        ("Foo.term_mode", "term"),
        ("Foo.term_next_line", "term"),
        ("Foo.two:23:2", "tactic"),
        ("Foo.two:24:2", "tactic"),
        ("example:26:21", "tactic"),
        ("Foo.inside", "term"),
    ]
    assert [h.index for h in holes] == list(range(8))


BY = "theorem t : True := by\n"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (BY + "  rw [h]\n  sorry\n", BY + "  rw [h]\n  norm_num\n  linarith\n"),  # after a tactic: one per line
        (BY + "  sorry\n", BY + "  norm_num\n  linarith\n"),
        ("theorem t : True := by sorry\n", BY + "  norm_num\n  linarith\n"),
        ("theorem t : True := sorry\n", BY + "  norm_num\n  linarith\n"),  # a term: `by` and the tactics
        ("theorem t : True :=\n  sorry\n", "theorem t : True :=\n  by\n    norm_num\n    linarith\n"),
        ("theorem t : P := ⟨sorry, h⟩\n", "theorem t : P := ⟨(by norm_num; linarith), h⟩\n"),
        # another tactic follows at the same column: other goals are open, so the proof is focused
        (BY + "  constructor\n  sorry\n  exact hq\n", BY + "  constructor\n  · norm_num\n    linarith\n  exact hq\n"),
    ],
)
def test_a_proof_replaces_its_sorry_at_the_right_place_and_indentation(before, after):
    assert patch(before, [(holes_of(before)[0], ["norm_num", "linarith"])]) == after


def test_one_tactic_goes_in_place_of_the_sorry_and_a_multi_line_tactic_keeps_its_shape():
    text = "theorem t : 1 + 1 = 2 := by sorry\n"
    assert patch(text, [(holes_of(text)[0], ["norm_num"])]) == "theorem t : 1 + 1 = 2 := by norm_num\n"
    text = "theorem t : 1 + 1 = 2 := sorry\n"
    assert patch(text, [(holes_of(text)[0], ["norm_num"])]) == "theorem t : 1 + 1 = 2 := by norm_num\n"
    text = "theorem t : a = c := by\n  rw [h]\n  sorry\n"
    calc = "calc a = b := h1\n  _ = c := h2"
    assert (
        patch(text, [(holes_of(text)[0], [calc])])
        == "theorem t : a = c := by\n  rw [h]\n  calc a = b := h1\n    _ = c := h2\n"
    )


def test_holes_not_filled_are_left_as_they_were():
    holes = holes_of(FILE)
    patched = patch(FILE, [(holes[1], ["norm_num"]), (holes[5], ["exact hq"])])
    assert patched.count("sorry") == FILE.count("sorry") - 2
    assert "  rw [h]\n  norm_num\n" in patched and "  constructor\n  sorry\n  exact hq\n" in patched
    assert patched.replace("  rw [h]\n  norm_num\n", "  rw [h]\n  sorry\n").replace("exact hq", "sorry") == FILE


def test_patch_refuses_a_position_without_a_sorry():
    hole = holes_of(FILE)[0]
    with pytest.raises(ValueError, match="no `sorry` at line 10"):
        patch(FILE.replace("  sorry\n", "  simp\n", 1), [(hole, ["norm_num"])])


def test_hole_kind_reads_the_token_before_the_sorry():
    cases = {
        "by sorry": "tactic",
        ":= sorry": "term",
        "· sorry": "tactic",
        "exact sorry": "term",
        "(sorry)": "term",
        "case h => sorry": "tactic",
        "fun x => sorry": "term",
        "t <;> sorry": "tactic",
    }
    for before, kind in cases.items():
        text = f"theorem t : P := by\n  {before}\n"
        assert hole_kind(text, text.index("sorry", text.index(before.split()[0]))) == kind, before


def test_an_admit_is_a_hole_like_sorry():
    text = "theorem t : True := by\n  admit\n"
    hole = make_holes(text, [(2, 2, 2, 7, "⊢ True")])[0]
    assert (hole.name, hole.kind) == ("t", "tactic")
    assert patch(text, [(hole, ["trivial"])]) == "theorem t : True := by\n  trivial\n"
