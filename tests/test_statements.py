"""Statements typed in with `prover attack --statement`: parsed into theorems, or refused
with a sentence that says what is wrong."""

from __future__ import annotations

import subprocess
import sys

import pytest

from prover.errors import ProverError
from prover.settings import REPO_ROOT
from prover.statements import DEFAULT_HEADER, parse_statement


def prover(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "prover.cli", *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
    )


def test_theorem_with_binders_is_parsed_with_the_default_header():
    theorem = parse_statement("theorem mathd_algebra_182 (y : ℂ) : 7 * (3 * y + 2) = 21 * y + 14 :=")
    assert theorem.name == theorem.full_name == "mathd_algebra_182"
    assert theorem.statement == "theorem mathd_algebra_182 (y : ℂ) : 7 * (3 * y + 2) = 21 * y + 14 :="
    assert theorem.header == DEFAULT_HEADER


def test_multiline_statement_with_all_kinds_of_binders():
    text = """theorem amc12_x {α : Type*} [Field α] ⦃a b : α⦄
      (h₀ : a ≠ 0) (h₁ : ∀ x : α, x * a = b) :
      b / a = 1 → a = b :="""
    theorem = parse_statement(text)
    assert theorem.name == "amc12_x" and theorem.statement.endswith(":=")


def test_lemma_becomes_a_theorem():
    theorem = parse_statement("lemma two_eq (n : ℕ) (h : n = 2) : n + n = 4 :=")
    assert theorem.name == "two_eq" and theorem.statement.startswith("theorem two_eq ")


def test_example_gets_a_stable_generated_name():
    first = parse_statement("example (x : ℝ) : x - x = 0 :=")
    again = parse_statement("example (x : ℝ) : x - x = 0 :=")
    assert first.name.startswith("example_") and first.name == again.name
    assert first.statement.startswith(f"theorem {first.name} (x : ℝ)")


def test_header_lines_before_the_theorem_replace_the_default():
    theorem = parse_statement("import Mathlib\nopen Nat\ntheorem f (n : ℕ) : n ! > 0 :=")
    assert theorem.header == "import Mathlib\nopen Nat\n"


def test_a_sorry_placeholder_proof_is_dropped():
    assert parse_statement("theorem z : 1 + 1 = 2 := by sorry").statement == "theorem z : 1 + 1 = 2 :="
    assert parse_statement("theorem z : 1 + 1 = 2 := sorry").statement == "theorem z : 1 + 1 = 2 :="


def test_primes_and_dots_in_names_are_kept():
    assert parse_statement("theorem Foo.bar' : True :=").name == "Foo.bar'"


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("", "empty"),
        ("def f : ℕ := 1", "must start with `theorem`"),
        ("theorem : 1 = 1 :=", "followed by the theorem's name"),
        ("theorem foo : 1 = 1", "must end with ':='"),
        ("theorem foo : 1 = 1 := by norm_num", "must end with ':='"),
        ("theorem foo (x : ℕ : x = x :=", "unclosed bracket"),
        ("theorem foo (x : ℕ)) : x = x :=", "unmatched `)`"),
        ("theorem foo (x : ℕ) x = x :=", "no ':' before its type"),
        ("theorem foo (x : ℕ) : :=", "no type after ':'"),
        ("#eval 1\ntheorem foo : True :=", "only `import`, `open` and `set_option` lines"),
    ],
)
def test_malformed_statement_is_refused_with_what_is_wrong(text, complaint):
    with pytest.raises(ProverError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        parse_statement(text)


def test_attack_sends_a_typed_in_statement_only_to_lean():
    result = prover("attack", "--statement", "theorem foo (x : ℕ) : x = x :=", "--env", "replay")
    # the replay environment has only its recorded theorems: refused before any search
    assert result.returncode == 2 and "use --env repl" in result.stderr


def test_attack_with_a_malformed_statement_exits_with_one_sentence():
    result = prover("attack", "--statement", "theorem foo (x : ℕ : x = x :=")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: the statement of 'foo' has an unclosed bracket (expected `)`)"


def test_attack_needs_a_name_or_a_statement():
    result = prover("attack")
    assert result.returncode == 2 and "--statement" in result.stderr


def test_attack_refuses_a_name_that_contradicts_the_statement():
    result = prover("attack", "bar", "--statement", "theorem foo : True :=")
    assert result.returncode == 2 and "'bar'" in result.stderr and "'foo'" in result.stderr
