"""Whole Lean files for the stand-in: files with `sorry`s made of recorded statements, and
checking a file as ``lake env lean FILE`` would.

The stand-in REPL already answers a whole file sent as one command (``Command`` or
``FileCommand``): every declaration is elaborated through the recorded steps, and each
`sorry` (a whole ``by sorry`` or ``:= sorry`` proof, or a `sorry` tactic after other tactics,
several in one declaration) is listed with its position, its goal and a proof state that
tactics can then run from (``model.check_source``, ``toolchain.Repl.command``). This module
adds focus blocks (``· tactics``: the main goal alone, which they must close; a `sorry`
inside is listed at its own position), and builds such files for the tests of ``prover
fill``:

    text = holes_source(minif2f_path)      # the file: recorded statements, holes of each kind
    done = lean_check(env, project, path)  # the stand-in `lean` on a file: exit status, messages
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

HEADER = "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\nopen BigOperators Real Nat Topology Rat\n"

# A declaration recorded by the Lean REPL's tests (prover/data/repl_fixtures.jsonl), with a
# hole per goal of `apply And.intro`, each in a focus block: the replay policy knows tactics
# for the second goal (`case right`), none for the first alone (its records start from both
# goals).
COMPLEX_AND = (
    "theorem complex_and (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r := by\n"
    "  apply And.intro\n"
    "  · sorry\n"
    "  · sorry\n"
)

# Which proof each recorded miniF2F statement gets: a hole at the top of a tactic proof,
# a hole after a first tactic, a term-mode hole.
HOLES = {
    "mathd_algebra_478": " by\n  rw [h₁, h₂, h₃]\n  sorry",  # recorded: `norm_num` finishes after the rewrite
    "mathd_algebra_24": " by\n  sorry",
    "mathd_algebra_398": "\n  sorry",
}


def statements(statements_path: str | os.PathLike) -> dict[str, str]:
    """miniF2F statements by name, from the shipped ``minif2f.jsonl``."""
    found = {}
    with open(statements_path, encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            found[record["name"]] = record["formal_statement"].rstrip()
    return found


def holes_source(
    statements_path: str | os.PathLike, holes: dict[str, str] | None = None, extra: str = COMPLEX_AND
) -> str:
    """A Lean file: ``HEADER``, the recorded statements with the proofs of ``holes`` (what
    follows ``:=``; default ``HOLES``), then ``extra``."""
    known = statements(statements_path)
    parts = [HEADER]
    for name, proof in (HOLES if holes is None else holes).items():
        parts.append(f"\n{known[name]}{proof}\n")
    if extra:
        parts.append("\n" + extra)
    return "".join(parts)


def lean_check(
    env: dict[str, str], project: str | os.PathLike, path: str | os.PathLike, timeout_s: float = 60
) -> subprocess.CompletedProcess:
    """``lake env lean PATH`` in ``project`` with the stand-in: exit status 1 on an error;
    Lean's messages (errors, `declaration uses 'sorry'` warnings) on stdout."""
    return subprocess.run(
        [env["LEAN_STANDIN_LAKE"], "env", "lean", str(Path(path).resolve())],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


# -- focus blocks (`· tactics`), elaborated for model.check_declaration ------------------------


def run_focused(model, source, tactic, state, book):
    """``(outcome, sorries)`` of a focus block ``· t1 ...`` at ``state`` as Lean runs it: the
    block's tactics on the main goal alone, which they must close; the other goals stay.
    Each `sorry` inside (also in nested blocks) is listed at its own position. None when
    ``tactic`` is no focus block. ``model`` is the stand-in's model module (this module is
    loaded from it, so it does not import it)."""
    if not tactic.text.startswith("·"):
        return None
    if not state.goals:
        return model.StepOutcome(None, "no goals to be proved", thrown=True), []
    inner = model.split_tactic_block(source, tactic.span.start + len("·"), tactic.span.end)
    current = model.ProofState((state.goals[0],), state.uses_sorry, state.uses_native, state.uses_trust_compiler)
    sorries = []
    for step in inner:
        focused = run_focused(model, source, step, current, book)
        if focused is not None:
            outcome, nested = focused
            sorries.extend(nested)
        else:
            outcome = model.run_tactic(current, step.text, book)
            sorries.extend(
                model.SorryAt(goal, step.span.start, step.span.end, model.ProofState((goal,)))
                for goal in outcome.sorried_goals
            )
        if outcome.error is not None:
            return model.StepOutcome(None, outcome.error, thrown=True), sorries
        current = outcome.state
    if current.goals:
        return model.StepOutcome(None, "unsolved goals\n" + current.pp, thrown=True), sorries
    after = model.ProofState(state.goals[1:], current.uses_sorry, current.uses_native, current.uses_trust_compiler)
    return model.StepOutcome(after), sorries
