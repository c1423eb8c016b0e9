"""The Lean REPL's answers about a whole file: where a search of a hole starts, and the
check of proofs put in the holes' places (``prover fill``; text in ``prover.holes``).

A hole of a file is a ``Theorem`` whose ``statement`` is the file's body (after the
``import`` lines, its ``header``) and whose ``sorry_at`` is the hole's position in it. The
REPL backend elaborates the body and starts at that `sorry`'s proof state
(``hole_start``); a found proof is checked by elaborating the body with the proof in its
place (``check_hole_proof``, ``check_fills``): no error, no `sorry` left where a proof
went, and ``#print axioms`` of each changed declaration within the standard three
(``sorryAx`` too while the declaration keeps another, unfilled hole).

Answers are lean-interact's ``CommandResponse``s, read by their fields only, so this
module needs neither lean-interact nor a REPL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from search import EnvInitError, Theorem

from prover.holes import HOLE_WORDS, Hole, apply_edits, declarations, make_holes, offset_of, replacement

STANDARD_AXIOMS = frozenset({"propext", "Classical.choice", "Quot.sound"})
SORRY_WARNINGS = ("declaration uses 'sorry'", "declaration uses `sorry`")
# `#print axioms NAME`'s answer, as prover.envs.repl reads it for one theorem.
PRINTED_AXIOMS = re.compile(
    r"^'(?P<name>.+)' (?:depends on axioms: \[(?P<axioms>.*)\]|does not depend on any axioms)$", re.DOTALL
)

Elaborate = Callable[[str], Any]  # a file's body -> the REPL's answer (a CommandResponse)


@dataclass(frozen=True)
class Message:
    severity: str
    line: int
    column: int
    data: str


@dataclass(frozen=True)
class SorryAnswer:
    line: int
    column: int
    end_line: int
    end_column: int
    goal: str
    proof_state: int | None


def messages_of(response: Any) -> list[Message]:
    return [
        Message(m.severity, m.start_pos.line, m.start_pos.column, m.data) for m in getattr(response, "messages", [])
    ]


def sorries_of(response: Any) -> list[SorryAnswer]:
    found = []
    for s in getattr(response, "sorries", []) or []:
        end = s.end_pos or s.start_pos
        found.append(SorryAnswer(s.start_pos.line, s.start_pos.column, end.line, end.column, s.goal, s.proof_state))
    return found


def _parse_position(sorry_at: str) -> tuple[int, int]:
    line, _, column = sorry_at.partition(":")
    return int(line), int(column)


def hole_start(response: Any, theorem: Theorem) -> tuple[str, int]:
    """(goal, proof state) of the `sorry` at ``theorem.sorry_at`` in the REPL's answer to the
    file's body; an ``EnvInitError`` when there is none there (the file changed)."""
    line, column = _parse_position(theorem.sorry_at)
    for sorry in sorries_of(response):
        if (sorry.line, sorry.column) == (line, column) and sorry.proof_state is not None:
            return sorry.goal, sorry.proof_state
    raise EnvInitError(
        f"Lean gave no proof state for a `sorry` at line {line}, column {column} of the file's body "
        f"for '{theorem.name}' (has the file changed?)"
    )


# -- checking proofs in their places ----------------------------------------------------------


_CHECK_NAME = "prover_fill_check_{}"  # an `example` is renamed so that `#print axioms` can name it


@dataclass
class Checked:
    """The whole-file check of some proofs put in place: the patched body (as it is to be
    written), and what is wrong, per declaration (by the line it starts on in the body) and
    overall."""

    patched: str
    problems: dict[int, str] = field(default_factory=dict)  # a declaration's line -> why its proofs are refused
    overall: str | None = None  # an error outside every changed declaration


def check_fills(elaborate: Elaborate, body: str, fills: Sequence[tuple[Hole, Sequence[str]]]) -> Checked:
    """Put each hole's tactics in ``body`` (holes in body coordinates) and elaborate the
    result with ``#print axioms`` of each changed declaration; see the module docstring."""
    decls = declarations(body)
    edits, filled_spans = [], []
    changed: dict[int, list[Hole]] = {}  # index of the declaration -> its filled holes
    for hole, tactics in fills:
        start = offset_of(body, hole.line, hole.column)
        end = offset_of(body, hole.end_line, hole.end_column)
        if body[start:end] not in HOLE_WORDS:
            raise ValueError(f"there is no `sorry` at line {hole.line}, column {hole.column}")
        edits.append(replacement(body, start, end, hole.kind, tactics))
        filled_spans.append(len(edits) - 1)
        index = max(i for i, d in enumerate(decls) if d.start <= start)
        changed.setdefault(index, []).append(hole)
    patched, _ = apply_edits(body, edits)
    # The copy that is checked: examples renamed, `#print axioms` at the end.
    renames = []
    for index in changed:
        declaration = decls[index]
        if declaration.keyword == "example":
            at = body.index("example", declaration.start)
            renames.append((at, at + len("example"), "theorem " + _CHECK_NAME.format(index)))
    checked_text, spans = apply_edits(body, edits + renames)
    checked_decls = declarations(checked_text)
    assert len(checked_decls) == len(decls), "putting proofs in place changed the declarations"
    names = {index: checked_decls[index].full_name for index in changed}
    lines = checked_text.rstrip("\n").count("\n") + 1
    tail = "".join(f"\n#print axioms {names[index]}" for index in sorted(changed))
    source = checked_text.rstrip("\n") + "\n" + tail + "\n"
    axioms_line = {index: lines + 1 + k + 1 for k, index in enumerate(sorted(changed))}
    response = elaborate(source)
    messages = messages_of(response)
    sorries = sorries_of(response)

    def declaration_of(line: int) -> int | None:
        starts = [d.line for d in checked_decls]
        found = None
        for i, start in enumerate(starts):
            if start <= line:
                found = i
        return found

    result = Checked(patched)
    label = {index: decls[index].line for index in changed}  # problems are keyed by the declaration's line
    for message in messages:
        if message.severity != "error":
            continue
        if message.line > lines:  # at the `#print axioms` lines
            index = next((i for i, line in axioms_line.items() if line == message.line), None)
            if index is not None:
                result.problems.setdefault(label[index], f"Lean could not print its axioms: {message.data}")
            continue
        index = declaration_of(message.line)
        text = f"Lean reports an error at line {message.line}: {message.data.splitlines()[0] if message.data else ''}"
        if index in changed:
            result.problems.setdefault(label[index], text)
        elif result.overall is None:
            result.overall = text
    filled_ranges = [spans[i] for i in filled_spans]
    for sorry in sorries:
        offset = offset_of(checked_text, sorry.line, sorry.column) if sorry.line <= lines else -1
        if any(start <= offset < end for start, end in filled_ranges):
            index = declaration_of(sorry.line)
            if index in changed:
                result.problems.setdefault(label[index], "a `sorry` is left where the proof was put")
    still_open = {
        index for index in changed if any(declaration_of(s.line) == index for s in sorries if s.line <= lines)
    }
    for index in changed:
        if label[index] in result.problems:
            continue
        printed = _printed_axioms(messages, axioms_line[index])
        if printed is None:
            result.problems[label[index]] = "Lean did not answer `#print axioms`, so its axioms are unknown"
            continue
        allowed = STANDARD_AXIOMS | ({"sorryAx"} if index in still_open else set())
        extra = [a for a in printed if a not in allowed]
        if extra:
            result.problems[label[index]] = f"the proof depends on {', '.join(extra)}"
            continue
        if index not in still_open and any(
            m.severity == "warning" and m.data.strip() in SORRY_WARNINGS and declaration_of(m.line) == index
            for m in messages
        ):
            result.problems[label[index]] = "the declaration still uses `sorry`"
    return result


def _printed_axioms(messages: Sequence[Message], line: int) -> list[str] | None:
    for message in messages:
        if message.line != line or message.severity != "info":
            continue
        found = PRINTED_AXIOMS.match(message.data.strip())
        if found is not None:
            return [a.strip() for a in (found.group("axioms") or "").split(",") if a.strip()]
    return None


def hole_in_body(body: str, sorry_at: str) -> Hole:
    """The ``Hole`` at ``sorry_at`` ("LINE:COLUMN") of a file's body."""
    line, column = _parse_position(sorry_at)
    return make_holes(body, [(line, column, line, column + len("sorry"), "")])[0]


def check_hole_proof(elaborate: Elaborate, theorem: Theorem, tactics: Sequence[str]) -> str | None:
    """The REPL backend's re-check of one hole's proof: None when the file's body, with the
    tactics in the hole's place, passes ``check_fills``; else why not."""
    try:
        hole = hole_in_body(theorem.statement, theorem.sorry_at)
        checked = check_fills(elaborate, theorem.statement, [(hole, list(tactics))])
    except ValueError as exc:
        return str(exc)
    except EnvInitError as exc:
        return f"the whole-file check could not run: {exc}"
    if checked.problems:
        return next(iter(checked.problems.values()))
    return checked.overall


def filled_text(theorem: Theorem, tactics: Sequence[str]) -> str:
    """The declaration of a hole with ``tactics`` in its place (a record's ``proof_text``)."""
    hole = hole_in_body(theorem.statement, theorem.sorry_at)
    start = offset_of(theorem.statement, hole.line, hole.column)
    edit = replacement(theorem.statement, start, start + len("sorry"), hole.kind, tactics)
    patched, spans = apply_edits(theorem.statement, [edit])
    decls = declarations(patched)
    begin = max(d.start for d in decls if d.start <= spans[0][0])
    following = [d.start for d in decls if d.start > begin]
    return patched[begin : following[0] if following else len(patched)].rstrip()
