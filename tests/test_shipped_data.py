"""The data shipped in ``prover/data``: still the recorded copies, complete, found without
``../shared``; and the miniF2F source parser (``prover.data.minif2f_source``).

Only the first tests read ``../shared/data``, and skip where it is absent; every other test
needs only what the package ships.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import prover.data
from prover.data import (
    REPL_FIXTURES_DATASET,
    data_dir,
    is_repl_fixture,
    minif2f_path,
    repl_fixtures_path,
    traces_path,
)
from prover.data.minif2f_source import (
    EXPECTED,
    FIXED_AFTER_PIN,
    RENAMED_AFTER_PIN,
    UNEXPECTED,
    compare_with_shipped,
    parse_lean_theorems,
)
from prover.data.regenerate import regenerate

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RECORDED = SHARED_DATA / "minif2f"
needs_shared = pytest.mark.skipif(
    not (RECORDED / "minif2f.jsonl").exists() or not (RECORDED / "tactic_traces.jsonl").exists(),
    reason=f"the recorded data ({RECORDED}) is not beside this checkout",
)

PIN_HEADER = "import MiniF2F.Minif2fImport\n\n\nopen BigOperators Real Nat Topology\n\n"
TRACE_FIELDS = {
    "theorem": str,
    "state_before": str,
    "tactic": str,
    "proof_finished": bool,
    "dataset": str,
    "lean_env": str,
    "source": str,
}


@pytest.fixture(autouse=True)
def _shipped_data_only(monkeypatch):
    # Every test sees the package's own files unless it sets $PROVER_DATA itself.
    monkeypatch.delenv("PROVER_DATA", raising=False)


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _problems(split: str) -> list[dict]:
    return [r for r in _records(minif2f_path()) if r["split"] == split]


# ---- the shipped files are the recorded ones ------------------------------------------------


@needs_shared
def test_shipped_minif2f_is_byte_identical_to_the_recorded_file():
    assert minif2f_path().read_bytes() == (RECORDED / "minif2f.jsonl").read_bytes()


@needs_shared
def test_shipped_traces_and_fixtures_split_the_recorded_file_by_dataset():
    recorded = (RECORDED / "tactic_traces.jsonl").read_bytes().splitlines(keepends=True)
    minif2f_lines = traces_path().read_bytes().splitlines(keepends=True)
    fixture_lines = repl_fixtures_path().read_bytes().splitlines(keepends=True)

    assert minif2f_lines == [line for line in recorded if not is_repl_fixture(json.loads(line))]
    assert fixture_lines == [line for line in recorded if is_repl_fixture(json.loads(line))]
    assert (len(minif2f_lines), len(fixture_lines)) == (475, 62)


@needs_shared
def test_regenerate_from_the_recorded_files_reproduces_the_shipped_ones(tmp_path):
    counts = regenerate(RECORDED, tmp_path)

    assert counts == {"minif2f.jsonl": 488, "tactic_traces.jsonl": 475, "repl_fixtures.jsonl": 62}
    for path in (minif2f_path(), traces_path(), repl_fixtures_path()):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


# ---- the shipped files on their own -----------------------------------------------------------


def test_shipped_minif2f_has_244_valid_and_244_test_problems_with_statements():
    records = _records(minif2f_path())
    names = [r["name"] for r in records]

    assert len(_problems("valid")) == 244 and len(_problems("test")) == 244
    assert len(records) == 488 and len(set(names)) == 488
    for record in records:
        assert record["formal_statement"].startswith("theorem " + record["name"]), record["name"]
        assert record["formal_statement"].endswith(":="), record["name"]


def test_every_shipped_trace_record_has_the_trace_fields():
    for path in (traces_path(), repl_fixtures_path()):
        for number, record in enumerate(_records(path), 1):
            for name, kind in TRACE_FIELDS.items():
                assert isinstance(record.get(name), kind), f"{path.name} line {number}: {name}"
            assert record.get("state_after") is None or isinstance(record["state_after"], str)


def test_shipped_traces_hold_only_minif2f_theorems_each_with_a_finished_proof():
    records = _records(traces_path())
    minif2f_names = {r["name"] for r in _records(minif2f_path())}
    theorems = {r["theorem"] for r in records}

    assert not any(is_repl_fixture(r) for r in records)
    assert theorems <= minif2f_names
    assert len(theorems) == 90
    assert theorems == {r["theorem"] for r in records if r["proof_finished"]}
    assert not any(r.get("error") for r in records)


def test_shipped_repl_fixtures_are_only_repl_test_records():
    records = _records(repl_fixtures_path())

    assert len(records) == 62
    assert {r["dataset"] for r in records} == {REPL_FIXTURES_DATASET}
    assert all(r["source"].startswith("leanprover-community/repl@") for r in records)


def test_data_dir_is_the_package_directory_holding_the_files():
    assert data_dir() == Path(prover.data.__file__).parent
    for path in (minif2f_path(), traces_path(), repl_fixtures_path(), data_dir() / "DATA.md"):
        assert path.is_file(), path


def test_data_dir_honours_prover_data(monkeypatch, tmp_path):
    monkeypatch.setenv("PROVER_DATA", str(tmp_path))

    assert data_dir() == tmp_path
    assert minif2f_path() == tmp_path / "minif2f.jsonl"
    assert traces_path() == tmp_path / "tactic_traces.jsonl"
    assert repl_fixtures_path() == tmp_path / "repl_fixtures.jsonl"


def test_empty_prover_data_means_the_shipped_files(monkeypatch):
    monkeypatch.setenv("PROVER_DATA", "")

    assert data_dir() == Path(prover.data.__file__).parent


# ---- miniF2F from its Lean source -------------------------------------------------------------


def _pinned_file(
    split: str,
    proofs: dict[str, str] | None = None,
    statements: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
) -> str:
    """A Lean file shaped like ``MiniF2F/<Split>.lean`` at the pin, written from the shipped
    statements: the header, then each theorem ``:= by`` + ``sorry`` unless ``proofs`` says
    otherwise; ``statements`` replaces some."""
    proofs, statements = proofs or {}, statements or {}
    parts = [PIN_HEADER]
    for record in _problems(split):
        name = record["name"]
        if name in drop:
            continue
        statement = statements.get(name, record["formal_statement"])
        parts.append(statement + proofs.get(name, " by\n  sorry") + "\n\n")
    return "".join(parts)


def _at_the_pin(split: str) -> dict[str, str]:
    """The documented differences, made up: the renamed theorem, and an older statement for
    each one fixed after the pin."""
    changed = {}
    for record in _problems(split):
        name, statement = record["name"], record["formal_statement"]
        if name in RENAMED_AFTER_PIN.values():
            old = next(k for k, v in RENAMED_AFTER_PIN.items() if v == name)
            changed[name] = statement.replace(name, old, 1)
        elif name in FIXED_AFTER_PIN:
            changed[name] = statement[: -len(":=")] + "∧ True :="
    return changed


def test_parse_reads_every_theorem_name_and_statement_of_a_split_file():
    text = _pinned_file("valid")

    parsed = parse_lean_theorems(text)

    assert parsed == [(r["name"], r["formal_statement"]) for r in _problems("valid")]


def test_parse_ends_each_statement_at_the_first_assignment_outside_brackets():
    text = (
        PIN_HEADER
        + "theorem a (f : ℕ → ℕ) (h : ∀ x, f x = x) :\n  f 2 = 2 := by sorry\n\n"
        + "theorem b (x : ℝ) (h₀ : x = 2) : x ^ 2 = 4 :=\n  by sorry\n\n"
        + "theorem c : IsLeast { t : ℕ | 0 < t } 1 :=\n  sorry\n\n"
        + "theorem d (x : ℕ) (h : (x : ℤ) = 3) : x = 3 := by\n  have h₁ := h\n  obtain ⟨a, b⟩ := foo\n"
        + "sorry\n\n"
        + "theorem e {n : ℕ} [Fact (1 < n)] (s : Finset ℕ := ∅) : s.card = 0 := by\n  simp\n"
    )

    parsed = parse_lean_theorems(text)

    assert [name for name, _ in parsed] == ["a", "b", "c", "d", "e"]
    assert parsed[0][1] == "theorem a (f : ℕ → ℕ) (h : ∀ x, f x = x) :\n  f 2 = 2 :="
    assert parsed[2][1] == "theorem c : IsLeast { t : ℕ | 0 < t } 1 :="
    assert parsed[3][1] == "theorem d (x : ℕ) (h : (x : ℤ) = 3) : x = 3 :="
    assert parsed[4][1] == "theorem e {n : ℕ} [Fact (1 < n)] (s : Finset ℕ := ∅) : s.card = 0 :="


def test_parse_skips_theorems_and_assignments_inside_comments():
    text = (
        PIN_HEADER
        + "-- Solution encoded in theorem statement\n"
        + "theorem kept (x : ℕ) -- a note with := in it\n  : x = x := by rfl\n\n"
        + "/- an old version:\ntheorem dropped : 1 = 2 := by sorry\n/- nested -/ -/\n"
        + "/-- docstring with := -/\ntheorem also_kept : (2 : ℕ) = 2 := by rfl\n"
    )

    parsed = parse_lean_theorems(text)

    assert [name for name, _ in parsed] == ["kept", "also_kept"]
    assert parsed[0][1] == "theorem kept (x : ℕ) -- a note with := in it\n  : x = x :="


def test_parse_rejects_a_theorem_without_an_assignment():
    with pytest.raises(ValueError, match="theorem broken"):
        parse_lean_theorems("theorem broken (x : ℕ) : x = x\n\ntheorem fine : True := trivial\n")


def test_a_split_file_matching_the_shipped_list_has_no_differences():
    parsed = parse_lean_theorems(_pinned_file("test", proofs={"mathd_algebra_478": " by\n  nlinarith\n"}))

    assert compare_with_shipped(parsed, "test") == []


def test_the_documented_pin_differences_are_listed_as_expected():
    valid = compare_with_shipped(parse_lean_theorems(_pinned_file("valid", statements=_at_the_pin("valid"))), "valid")
    test = compare_with_shipped(parse_lean_theorems(_pinned_file("test", statements=_at_the_pin("test"))), "test")

    assert valid == [f"{EXPECTED}imo_2006_p6 at the pin is imo_2006_p3 in the shipped list (renamed later)"]
    assert len(test) == 7 and all(line.startswith(EXPECTED) for line in test)
    assert {line[len(EXPECTED) :].split(":")[0] for line in test} == FIXED_AFTER_PIN


def test_statements_are_compared_up_to_whitespace():
    # Line breaks stay where they are: a statement may hold a "--" comment.
    reflowed = {
        r["name"]: r["formal_statement"].replace("\n", "\n      ").replace(" : ", "  :\t") for r in _problems("valid")
    }

    parsed = parse_lean_theorems(_pinned_file("valid", statements=reflowed))

    assert compare_with_shipped(parsed, "valid") == []


def test_surprises_are_listed_as_unexpected():
    valid = _problems("valid")
    changed, dropped = valid[0]["name"], valid[1]["name"]
    statements = {changed: valid[0]["formal_statement"].replace(":=", "∧ False :=")}
    text = _pinned_file("valid", statements=statements, drop=(dropped,))
    text += "theorem brand_new : 1 + 1 = 2 := by norm_num\n\n"
    text += f"theorem {_problems('test')[0]['name']} : True := by trivial\n"

    differences = compare_with_shipped(parse_lean_theorems(text), "valid")

    assert all(line.startswith(UNEXPECTED) for line in differences), differences
    assert len(differences) == 4
    assert any(line.startswith(f"{UNEXPECTED}{changed}: statements differ") for line in differences)
    assert f"{UNEXPECTED}{dropped} is in the shipped valid split but not in the pinned file" in differences
    assert f"{UNEXPECTED}brand_new is in the pinned valid file but it is not in the shipped list" in differences
    assert any("it is in the shipped test split" in line for line in differences)


def test_compare_rejects_an_unknown_split():
    with pytest.raises(ValueError, match="unknown split"):
        compare_with_shipped([], "train")
