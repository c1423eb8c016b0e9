"""miniF2F read from its source of truth, the Lean files, and checked against the shipped list.

LeanDojo proves the theorems of yangky11/miniF2F-lean4 at the Lean v4.20.0 pin
(``PIN_COMMIT``), where each split is one file, ``MiniF2F/Valid.lean`` or
``MiniF2F/Test.lean``: a header (``import MiniF2F.Minif2fImport`` and opens) and 244
theorems, most of them ``:= by sorry``, some with a proof. The shipped ``minif2f.jsonl``
comes from a later commit of the same repository, so where Lean and that checkout are
present this module says whether the two still agree::

    python -m prover.data.minif2f_source path/to/miniF2F-lean4/MiniF2F/Valid.lean valid

    >>> parse_lean_theorems("theorem two (x : ℕ) : x + 2 = 2 + x := by\\n  omega\\n")
    [('two', 'theorem two (x : ℕ) : x + 2 = 2 + x :=')]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from prover.data import minif2f_path

PIN_COMMIT = "be1732497464bab50cffd486114c4b9ad437182f"
SPLITS = ("valid", "test")

# Differences between the pinned files and the shipped list that are documented (DATA.md):
# a theorem renamed after the pin, and test statements fixed after the pin.
RENAMED_AFTER_PIN = {"imo_2006_p6": "imo_2006_p3"}  # name at the pin -> shipped name
FIXED_AFTER_PIN = frozenset(
    {
        "aime_1994_p3",
        "algebra_ineq_nto1onlt2m1on",
        "amc12a_2019_p12",
        "amc12a_2020_p10",
        "amc12a_2021_p25",
        "imo_1982_p1",
        "mathd_numbertheory_618",
    }
)

EXPECTED = "expected: "
UNEXPECTED = "unexpected: "

# A declaration starts at the beginning of a line; the name runs up to the first binder or
# colon. Only ``theorem`` declarations are read (miniF2F uses nothing else).
_THEOREM = re.compile(r"^theorem[ \t\r\n]+([^\s(\[{⦃:]+)", re.MULTILINE)
_OPENERS = "([{⟨⦃"
_CLOSERS = ")]}⟩⦄"


def _blank_comments(text: str) -> str:
    """``text`` with comments (``--``, nested ``/- -/``) replaced by spaces, newlines kept,
    so that offsets still match and a commented-out theorem or ``:=`` is not read."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        if text.startswith("--", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out[i:end] = " " * (end - i)
            i = end
        elif text.startswith("/-", i):
            depth, j = 0, i
            while j < n:
                if text.startswith("/-", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("-/", j):
                    depth, j = depth - 1, j + 2
                    if depth == 0:
                        break
                else:
                    j += 1
            out[i:j] = ["\n" if c == "\n" else " " for c in text[i:j]]
            i = j
        elif text[i] == '"':  # a string literal may hold "--" or ":="; skip it whole
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            i = j + 1
        else:
            i += 1
    return "".join(out)


def parse_lean_theorems(text: str) -> list[tuple[str, str]]:
    """(name, statement) of every ``theorem`` in a Lean file, in file order.

    The statement runs from ``theorem`` to the first ``:=`` outside brackets, inclusive, as
    written in the file (the form of ``formal_statement`` in ``minif2f.jsonl``); the proof
    after it, ``by sorry`` or tactics, is ignored. Raises ``ValueError`` for a theorem with
    no ``:=`` before the next one.
    """
    code = _blank_comments(text)
    starts = [(m.start(), m.group(1)) for m in _THEOREM.finditer(code)]
    theorems = []
    for index, (start, name) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(code)
        depth = 0
        for i in range(start, end):
            char = code[i]
            if char in _OPENERS:
                depth += 1
            elif char in _CLOSERS:
                depth -= 1
            elif depth == 0 and code.startswith(":=", i):
                theorems.append((name, text[start : i + 2]))
                break
        else:
            line = text.count("\n", 0, start) + 1
            raise ValueError(f"theorem {name} (line {line}) has no ':=' ending its statement")
    return theorems


def _normalise(statement: str) -> str:
    return " ".join(statement.split())


def _shipped(minif2f_file: Path | None) -> dict[str, dict[str, str]]:
    """{split: {name: formal_statement}} of the shipped list."""
    by_split: dict[str, dict[str, str]] = {s: {} for s in SPLITS}
    path = minif2f_file or minif2f_path()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            by_split.setdefault(record["split"], {})[record["name"]] = record["formal_statement"]
    return by_split


def compare_with_shipped(parsed: list[tuple[str, str]], split: str, minif2f_file: Path | None = None) -> list[str]:
    """The differences between a pinned split's theorems (``parse_lean_theorems`` of
    ``MiniF2F/Valid.lean`` or ``Test.lean``) and the shipped list of that split, one
    sentence each, statements compared up to whitespace.

    A documented difference (``RENAMED_AFTER_PIN``, ``FIXED_AFTER_PIN``) starts with
    ``"expected: "``, anything else with ``"unexpected: "``; so the pinned files agree with
    the shipped list when no line starts with ``"unexpected: "``. ``minif2f_file`` defaults
    to the shipped ``minif2f.jsonl``.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    shipped_by_split = _shipped(minif2f_file)
    shipped = shipped_by_split[split]
    differences: list[str] = []
    seen: set[str] = set()
    for pinned_name, statement in parsed:
        if pinned_name in seen:
            differences.append(f"{UNEXPECTED}{pinned_name} is declared more than once in the pinned file")
            continue
        seen.add(pinned_name)
        name = pinned_name
        if pinned_name not in shipped and RENAMED_AFTER_PIN.get(pinned_name) in shipped:
            name = RENAMED_AFTER_PIN[pinned_name]
            differences.append(f"{EXPECTED}{pinned_name} at the pin is {name} in the shipped list (renamed later)")
            # Compare the statements as if the pinned one had the shipped name.
            statement = re.sub(rf"\b{re.escape(pinned_name)}\b", name, statement, count=1)
        seen.add(name)
        if name not in shipped:
            other = [s for s in SPLITS if s != split and name in shipped_by_split.get(s, {})]
            where = f"it is in the shipped {other[0]} split" if other else "it is not in the shipped list"
            differences.append(f"{UNEXPECTED}{pinned_name} is in the pinned {split} file but {where}")
            continue
        pinned, ours = _normalise(statement), _normalise(shipped[name])
        if pinned == ours:
            continue
        if name in FIXED_AFTER_PIN:
            differences.append(
                f"{EXPECTED}{name}: the pinned statement is the older version, fixed later; "
                f"pinned `{pinned}`, shipped `{ours}`"
            )
        else:
            differences.append(f"{UNEXPECTED}{name}: statements differ; pinned `{pinned}`, shipped `{ours}`")
    for name in shipped:
        if name not in seen:
            differences.append(f"{UNEXPECTED}{name} is in the shipped {split} split but not in the pinned file")
    return differences


def main(argv: list[str] | None = None) -> int:
    """``python -m prover.data.minif2f_source LEAN_FILE SPLIT``: print the differences;
    exit 1 when one is unexpected."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[1] not in SPLITS:
        print("usage: python -m prover.data.minif2f_source LEAN_FILE valid|test", file=sys.stderr)
        return 2
    theorems = parse_lean_theorems(Path(args[0]).read_text(encoding="utf-8"))
    differences = compare_with_shipped(theorems, args[1])
    print(f"{len(theorems)} theorems in {args[0]}; {len(differences)} differences from the shipped {args[1]} split")
    for line in differences:
        print(line)
    return 1 if any(line.startswith(UNEXPECTED) for line in differences) else 0


if __name__ == "__main__":
    sys.exit(main())
