"""The `sorry`s of a Lean file, and putting proofs in their places: text only, no Lean.

``prover fill`` (``prover.fill``) asks the Lean REPL to elaborate a file and gets back its
``sorries``, each with a position, a goal and a proof state. This module turns them into
``Hole``s (which declaration, what kind of `sorry`), splits a file into the header the
REPL shares between commands (its leading ``import`` lines) and the body it elaborates on
top, and writes found proofs into the text:

- a tactic `sorry` (a tactic of a ``by`` block, ``by sorry``) becomes the tactics, one per
  line at the column of the `sorry` (``by sorry`` at the end of a line becomes ``by`` and
  an indented block);
- a term-mode `sorry` becomes ``by`` and the tactics: after ``:=`` an indented block, inside
  a term ``(by t1; t2)``.

Positions are Lean's: lines from 1, columns from 0 in code points.

    header, body = split_header(text)
    patched = patch(text, [(hole, ["rw [h₁]", "norm_num"])])
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# A declaration starts a line: modifiers, then the keyword and (but for `example`) a name.
_DECLARATION = re.compile(
    r"^(?:@\[[^\]\n]*\]\s*)?(?:(?:private|protected|noncomputable|nonrec|unsafe|partial)\s+)*"
    r"(theorem|lemma|example|def|instance|abbrev)(?![\w'])[ \t]*(«[^»]+»|[^\s:({\[⦃]+)?",
    re.MULTILINE,
)
_SCOPE = re.compile(r"^(namespace|section|end)(?:[ \t]+([^\s]+))?[ \t]*$", re.MULTILINE)
_IMPORT = re.compile(r"^import\s+\S")
# Tokens after which a `sorry` is a tactic: a tactic block goes on there.
_TACTIC_BEFORE = ("by", "·", ";", "<;>", "then", "else", "do")
HOLE_WORDS = ("sorry", "admit")  # what a hole's span holds (`admit` is the tactic `sorry`'s synonym)
_IDENTIFIER_END = re.compile(r"[\w'!?₀-₉»]$")


@dataclass(frozen=True)
class Declaration:
    """A declaration of the file: where it starts and what it is called."""

    keyword: str  # theorem | lemma | example | def | instance | abbrev
    name: str  # as written; "" for an example (or a nameless instance)
    full_name: str  # with the namespaces around it; "" when it has no name
    start: int  # offset of the line it starts on
    line: int


@dataclass(frozen=True)
class Hole:
    """One `sorry` of a file: where it is, what it must prove, and how to fill it."""

    index: int  # order in the file, from 0
    name: str  # its identity: the declaration's name, or NAME:LINE:COLUMN where that is ambiguous
    declaration: str  # the declaration's full name ("example" for an example)
    decl_line: int
    line: int
    column: int
    end_line: int
    end_column: int
    kind: str  # "tactic" or "term"
    goal: str = ""

    @property
    def position(self) -> str:
        return f"{self.line}:{self.column}"


def split_header(text: str) -> tuple[str, str]:
    """``(header, body)``: the header is the file's leading lines up to its last ``import``
    (comments and blank lines between), the body the rest; ``header + body == text``."""
    lines = text.splitlines(keepends=True)
    end = 0
    in_comment = False
    for number, line in enumerate(lines):
        stripped = line.strip()
        if in_comment:
            if "-/" in stripped:
                in_comment = False
            continue
        if stripped.startswith("/-") and "-/" not in stripped[2:]:
            in_comment = True
            continue
        if not stripped or stripped.startswith("--") or (stripped.startswith("/-") and stripped.endswith("-/")):
            continue
        if _IMPORT.match(line):
            end = number + 1
            continue
        break
    header = "".join(lines[:end])
    return header, text[len(header) :]


def offset_of(text: str, line: int, column: int) -> int:
    """The character offset of Lean position (line from 1, column from 0)."""
    start = 0
    for _ in range(line - 1):
        found = text.find("\n", start)
        if found < 0:
            raise ValueError(f"line {line} is past the end of the text")
        start = found + 1
    return start + column


def position_of(text: str, offset: int) -> tuple[int, int]:
    """Lean's position (line from 1, column from 0) of a character offset."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1)


def declarations(text: str) -> list[Declaration]:
    """The declarations of ``text`` in order, named with the namespaces around them."""
    scopes: list[tuple[str, str]] = []
    events = [(m.start(), "scope", m) for m in _SCOPE.finditer(text)]
    events += [(m.start(), "declaration", m) for m in _DECLARATION.finditer(text)]
    found = []
    for start, kind, match in sorted(events, key=lambda e: e[0]):
        if _inside_comment(text, start):
            continue
        if kind == "scope":
            word, name = match.group(1), match.group(2) or ""
            if word == "end":
                if scopes:
                    scopes.pop()
            else:
                scopes.append((word, name))
            continue
        keyword, name = match.group(1), (match.group(2) or "")
        if keyword == "example":
            name = ""
        prefix = ".".join(n for w, n in scopes if w == "namespace" and n)
        bare = name.strip("«»")
        if bare.startswith("_root_."):
            full = bare[len("_root_.") :]
        else:
            full = f"{prefix}.{bare}" if prefix and bare else bare
        found.append(Declaration(keyword, name, full, start, text.count("\n", 0, start) + 1))
    return found


def _inside_comment(text: str, offset: int) -> bool:
    """Whether ``offset`` (a line start) lies inside a block comment."""
    return text.rfind("/-", 0, offset) > text.rfind("-/", 0, offset)


def declaration_at(decls: Sequence[Declaration], offset: int) -> Declaration | None:
    """The last declaration that starts at or before ``offset``."""
    current = None
    for declaration in decls:
        if declaration.start > offset:
            break
        current = declaration
    return current


def _token_before(text: str, offset: int) -> str:
    """The text of the token just before ``offset``, skipping whitespace and line comments."""
    i = offset
    while True:
        while i > 0 and text[i - 1].isspace():
            i -= 1
        line_start = text.rfind("\n", 0, i) + 1
        comment = text.find("--", line_start, i)
        if comment >= 0:
            i = comment
            continue
        break
    for token in (":=", "<;>", "=>", "·", ";", "(", "⟨", ",", "[", "{", "|"):
        if text.endswith(token, 0, i):
            return token
    match = re.search(r"[\w'!?.₀-₉]+$", text[:i])
    return match.group(0) if match else text[i - 1 : i]


def hole_kind(text: str, offset: int) -> str:
    """ "tactic" when the `sorry` at ``offset`` is a tactic, "term" when it is a term."""
    before = _token_before(text, offset)
    if before in _TACTIC_BEFORE:
        return "tactic"
    if before == ":=":
        return "term"
    line_start = text.rfind("\n", 0, offset) + 1
    first_on_line = not text[line_start:offset].strip()
    if before == "=>":
        line = text[line_start:offset]
        return "term" if re.search(r"(?<![\w'])(fun|λ)(?![\w'])", line) else "tactic"
    # Alone on its line after a tactic: the next tactic of the block.
    if first_on_line and (_IDENTIFIER_END.search(before) or before in (")", "]", "}", "⟩")):
        return "tactic"
    return "term"


def _indent_of_line(text: str, offset: int) -> str:
    line_start = text.rfind("\n", 0, offset) + 1
    line = text[line_start:offset]
    return line[: len(line) - len(line.lstrip())]


def _block(tactics: Sequence[str], indent: str) -> str:
    """The tactics one per line, each at ``indent``; a multi-line tactic keeps its shape."""
    lines = []
    for tactic in tactics:
        parts = tactic.strip("\n").splitlines() or [""]
        lines.append(indent + parts[0].strip())
        lines.extend(indent + part for part in parts[1:])
    return "\n".join(lines)


def _tactic_follows(text: str, offset: int, column: int) -> bool:
    """Whether the next non-blank line after ``offset`` starts at ``column`` (another tactic
    of the same block)."""
    rest = text[offset:].split("\n")[1:]
    for line in rest:
        if not line.strip() or line.strip().startswith("--"):
            continue
        return len(line) - len(line.lstrip()) == column
    return False


def replacement(text: str, start: int, end: int, kind: str, tactics: Sequence[str]) -> tuple[int, int, str]:
    """``(start, end, new)``: the span of ``text`` to replace, and its new text, so that the
    `sorry` at [start, end) becomes ``tactics``."""
    if not tactics:
        raise ValueError("a proof needs at least one tactic")
    single = len(tactics) == 1 and "\n" not in tactics[0].strip("\n")
    rest_of_line = text[end : (text.find("\n", end) + 1 or len(text) + 1) - 1]
    at_line_end = not rest_of_line.strip() or rest_of_line.strip().startswith("--")
    if kind == "tactic":
        before = _token_before(text, start)
        column = start - (text.rfind("\n", 0, start) + 1)
        one_line_each = all("\n" not in t.strip("\n") for t in tactics)
        if single:
            return start, end, tactics[0].strip()
        first_on_line = not text[start - column : start].strip()
        if before == "by" and at_line_end and not first_on_line:
            # `... := by sorry` -> `... := by` and an indented block
            by_start = text.rfind("by", 0, start)
            indent = _indent_of_line(text, start) + "  "
            return by_start, end, "by\n" + _block(tactics, indent)
        if before in ("by", ";") and one_line_each and not first_on_line:
            return start, end, "; ".join(t.strip() for t in tactics)
        if before == "<;>" and one_line_each and not first_on_line:
            return start, end, "(" + "; ".join(t.strip() for t in tactics) + ")"
        if first_on_line and _tactic_follows(text, end, column):
            # Other goals are still open here: focus on the hole's goal, so that the
            # tactics (found for that goal alone) see no other.
            return start, end, "· " + _block(tactics, " " * (column + 2))[column + 2 :]
        return start, end, _block(tactics, " " * column)[column:]
    # a term
    after_assign = _token_before(text, start) == ":=" and at_line_end
    if single:
        return start, end, ("by " if after_assign else "(by ") + tactics[0].strip() + ("" if after_assign else ")")
    if after_assign:
        return start, end, "by\n" + _block(tactics, _indent_of_line(text, start) + "  ")
    if all("\n" not in t.strip("\n") for t in tactics):
        return start, end, "(by " + "; ".join(t.strip() for t in tactics) + ")"
    indent = _indent_of_line(text, start) + "    "
    return start, end, "(by\n" + _block(tactics, indent) + ")"


def apply_edits(text: str, edits: Sequence[tuple[int, int, str]]) -> tuple[str, list[tuple[int, int]]]:
    """``text`` with each span [start, end) replaced by its new text (spans must not
    overlap), and where each new text lies in the result, in the order of ``edits``."""
    order = sorted(range(len(edits)), key=lambda i: edits[i][0])
    pieces, spans, cursor, shift = [], [(0, 0)] * len(edits), 0, 0
    for i in order:
        start, end, new = edits[i]
        if start < cursor:
            raise ValueError("two edits overlap")
        pieces.append(text[cursor:start])
        pieces.append(new)
        spans[i] = (start + shift, start + shift + len(new))
        shift += len(new) - (end - start)
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces), spans


def patch(text: str, fills: Iterable[tuple[Hole, Sequence[str]]]) -> str:
    """``text`` with each hole's `sorry` replaced by its tactics (the holes' positions are
    those of ``text``); the other holes are left as they are."""
    edits = []
    for hole, tactics in fills:
        start = offset_of(text, hole.line, hole.column)
        end = offset_of(text, hole.end_line, hole.end_column)
        if text[start:end] not in HOLE_WORDS:
            raise ValueError(f"there is no `sorry` at line {hole.line}, column {hole.column}")
        edits.append(replacement(text, start, end, hole.kind, tactics))
    return apply_edits(text, edits)[0]


def make_holes(text: str, sorries: Iterable[tuple[int, int, int, int, str]]) -> list[Hole]:
    """``Hole``s from the REPL's sorries, given as (line, column, end line, end column, goal)
    in the coordinates of ``text``; a hole is named after its declaration, with its
    position where the declaration has several holes or no name."""
    decls = declarations(text)
    placed = []
    for line, column, end_line, end_column, goal in sorted(sorries, key=lambda s: (s[0], s[1])):
        offset = offset_of(text, line, column)
        declaration = declaration_at(decls, offset)
        placed.append((declaration, line, column, end_line, end_column, goal, hole_kind(text, offset)))
    per_declaration: dict[int, int] = {}
    for declaration, *_ in placed:
        key = declaration.start if declaration else -1
        per_declaration[key] = per_declaration.get(key, 0) + 1
    holes = []
    for index, (declaration, line, column, end_line, end_column, goal, kind) in enumerate(placed):
        full = declaration.full_name if declaration else ""
        label = full or (declaration.keyword if declaration else "sorry")
        alone = per_declaration[declaration.start if declaration else -1] == 1
        name = full if full and alone else f"{label}:{line}:{column}"
        holes.append(
            Hole(
                index,
                name,
                label,
                declaration.line if declaration else line,
                line,
                column,
                end_line,
                end_column,
                kind,
                goal,
            )
        )
    return holes
