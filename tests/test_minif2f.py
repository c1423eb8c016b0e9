"""miniF2F theorem sets: 244 + 244 theorems from the shipped statements, each addressed
at the v4.20.0 pin of yangky11/miniF2F-lean4 for LeanDojo; lookup by name and list files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prover.config import BackendSpec, TheoremSetConfig
from prover.errors import ProverError
from prover.theorem_sets import (
    MINIF2F_COMMIT,
    MINIF2F_FILES,
    MINIF2F_REPO_URL,
    find_theorem,
    load_theorems,
    minif2f,
)

# The pins of the v4.20.0 miniF2F commit, in the shared data beside the repository.
PINS = Path(__file__).resolve().parents[2] / "shared" / "data" / "minif2f" / "pins-v4.20.0"


def env(name: str = "synthetic") -> BackendSpec:
    return BackendSpec.default("environment", name)


@pytest.mark.parametrize("split", ["valid", "test"])
def test_each_split_has_244_distinct_theorems_addressed_at_the_pin(split):
    theorems = minif2f(split)
    assert len(theorems) == 244 and len({t.name for t in theorems}) == 244
    for theorem in theorems:
        assert theorem.repo_url == MINIF2F_REPO_URL and theorem.commit == MINIF2F_COMMIT
        assert theorem.file_path == MINIF2F_FILES[split] == f"MiniF2F/{split.capitalize()}.lean"
        assert theorem.statement.startswith("theorem ") and theorem.statement.rstrip().endswith(":=")
        assert "import Mathlib" in theorem.header


def test_splits_do_not_overlap():
    assert not {t.name for t in minif2f("valid")} & {t.name for t in minif2f("test")}


def test_the_pin_matches_the_shared_pins_file():
    pins = PINS / "lake-manifest.json"
    if not pins.exists():
        pytest.skip(f"the shared miniF2F pins {pins} are absent")
    assert "v4.20.0" in (pins.parent / "lean-toolchain").read_text()
    mathlib = [p for p in json.loads(pins.read_text())["packages"] if p["name"] == "mathlib"]
    assert mathlib[0]["inputRev"] == "v4.20.0"


def test_full_names_follow_the_pin_where_it_renamed_a_theorem():
    by_name = {t.name: t for t in minif2f("valid") + minif2f("test")}
    assert by_name["imo_2006_p3"].full_name == "imo_2006_p6"
    assert by_name["mathd_algebra_182"].full_name == "mathd_algebra_182"
    renamed = [t.name for t in by_name.values() if t.full_name != t.name]
    assert renamed == ["imo_2006_p3"]


def test_benchmark_option_loads_the_split_for_lean_environments():
    for name in ("dojo", "repl"):
        theorems = load_theorems(TheoremSetConfig(split="test"), env(name))
        assert len(theorems) == 244 and theorems[0].file_path == "MiniF2F/Test.lean"
    limited = load_theorems(TheoremSetConfig(theorem_set="minif2f", split="valid", limit=5), env())
    assert len(limited) == 5


def test_find_theorem_knows_both_splits_and_the_pinned_name():
    spec = TheoremSetConfig(theorem_set="minif2f", split="valid")
    assert find_theorem("mathd_algebra_182", spec, env("dojo")).file_path == "MiniF2F/Valid.lean"
    assert find_theorem("mathd_algebra_478", spec, env("dojo")).file_path == "MiniF2F/Test.lean"
    assert find_theorem("imo_2006_p6", spec, env("dojo")).name == "imo_2006_p3"
    with pytest.raises(ProverError, match="did you mean 'mathd_algebra_18"):
        find_theorem("mathd_algebra_18", spec, env("dojo"))


def test_theorems_file_lists_minif2f_names(tmp_path):
    listing = tmp_path / "theorems.txt"
    listing.write_text("# three from both splits\nmathd_algebra_182\nmathd_algebra_478\n\nimo_2006_p3\n")
    spec = TheoremSetConfig(theorem_set="minif2f", theorems_file=str(listing))
    theorems = load_theorems(spec, env("dojo"))
    assert [t.name for t in theorems] == ["mathd_algebra_182", "mathd_algebra_478", "imo_2006_p3"]
    assert [t.file_path for t in theorems] == ["MiniF2F/Valid.lean", "MiniF2F/Test.lean", "MiniF2F/Valid.lean"]
    # with a Lean environment the benchmark defaults to miniF2F
    assert len(load_theorems(TheoremSetConfig(theorems_file=str(listing)), env("repl"))) == 3


def test_unknown_split_is_a_clear_error():
    with pytest.raises(ProverError, match="choose 'valid' or 'test'"):
        minif2f("train")
