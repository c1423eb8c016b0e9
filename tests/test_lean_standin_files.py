"""The stand-in elaborating whole files (``tests/lean_standin/files.py`` and the model it
hooks into): a file's `sorry`s with their positions, goals and proof states, focus blocks,
and a sorry'd proof reported as such. In-process, through the stand-in's model."""

from __future__ import annotations

import json

from tests.lean_standin import model
from tests.lean_standin.files import COMPLEX_AND


def book() -> model.TraceBook:
    from prover.data import repl_fixtures_path

    with open(repl_fixtures_path(), encoding="utf-8") as lines:
        return model.TraceBook(json.loads(line) for line in lines if line.strip())


def check(text: str) -> tuple[model.Source, model.CheckResult]:
    source = model.read_source(text)
    return source, model.check_source(source, book())


def test_each_sorry_of_a_focus_block_is_listed_at_its_own_place_with_its_goal():
    source, result = check(COMPLEX_AND)
    assert not result.has_errors, result.messages
    positions = [
        (source.position(s.start), source.slice(model.Span(s.start, s.end)), s.goal.splitlines()[0])
        for s in result.sorries
    ]
    assert positions == [((3, 4), "sorry", "case left"), ((4, 4), "sorry", "case right")]
    assert [m.data for m in result.messages] == ["declaration uses 'sorry'"]
    assert result.sorries[1].state.goals == (result.sorries[1].goal,)


def test_a_focus_block_must_close_its_goal_and_leaves_the_others():
    closed = COMPLEX_AND.replace("  · sorry\n  · sorry\n", "  · exact h1.left\n  · apply h2\n    exact h1.right\n")
    _, result = check(closed)
    # `exact h1.left` is recorded from both goals; the stand-in knows it only there
    assert result.has_errors and "no recorded outcome" in result.messages[0].data
    unsolved = COMPLEX_AND.replace("  · sorry\n  · sorry\n", "  · sorry\n  · apply h2\n")
    _, result = check(unsolved)
    assert [m.data.splitlines()[0] for m in result.messages] == ["unsolved goals"]
    finished = COMPLEX_AND.replace("  · sorry\n  · sorry\n", "  · sorry\n  · apply h2\n    exact h1.right\n")
    _, result = check(finished)
    assert [m.data for m in result.messages] == ["declaration uses 'sorry'"] and len(result.sorries) == 1


def test_a_proof_with_a_sorry_before_a_recorded_finishing_step_still_uses_sorry():
    # `exact h1.right` is recorded with proofStatus "Completed"; an earlier `sorry` wins
    text = COMPLEX_AND.replace("  · sorry\n  · sorry\n", "  sorry\n  apply h2\n  exact h1.right\n")
    _, result = check(text)
    assert [m.data for m in result.messages] == ["declaration uses 'sorry'"]
    assert "sorryAx" in result.axioms["complex_and"]
