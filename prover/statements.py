"""Theorems typed in on the command line: ``prover attack --statement "theorem foo ... :="``.

``parse_statement`` checks the shape ``theorem|lemma NAME binders : type :=`` (or
``example binders : type :=``), and turns it into a ``Theorem`` that the REPL backend
compiles as ``header + statement + " by sorry"`` and the LeanDojo backend writes into a
scratch file of the Lean project. Malformed input is a ``ProverError`` that says what
is wrong; Lean itself judges everything else when the search starts.

    theorem = parse_statement("theorem two (x : ℝ) (h : x = 2) : x + x = 4 :=")
    theorem.name  # "two"

Lines before the declaration that are ``import``/``open``/``set_option`` commands become
the header; without them the header is ``DEFAULT_HEADER`` (Mathlib and miniF2F's opens).
An ``example`` has no name, so it becomes ``theorem example_<hash>``.
"""

from __future__ import annotations

import hashlib
import re

from search import Theorem

from prover.errors import ProverError

DEFAULT_HEADER = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\nopen BigOperators Real Nat Topology Rat\n"
)
HEADER_COMMANDS = ("import ", "open ", "set_option ")
KEYWORD = re.compile(r"^(theorem|lemma|example)\b", re.MULTILINE)
NAME = re.compile(r"[^\W\d][\w'!?₀-₉.]*|«[^»]+»", re.UNICODE)
PROOF_PLACEHOLDER = re.compile(r":=\s*(by\s+)?sorry\s*$")
BRACKETS = {"(": ")", "[": "]", "{": "}", "⦃": "⦄", "⟨": "⟩"}


def parse_statement(text: str) -> Theorem:
    """A ``Theorem`` from a typed-in statement; ProverError when it is malformed."""
    source = text.strip()
    if not source:
        raise ProverError('the statement is empty; give one such as "theorem foo (x : ℕ) : x + 0 = x :="')
    match = KEYWORD.search(source)
    if match is None:
        raise ProverError("the statement must start with `theorem`, `lemma` or `example`")
    header = _header(source[: match.start()])
    declaration = PROOF_PLACEHOLDER.sub(":=", source[match.start() :]).rstrip()
    if not declaration.endswith(":="):
        raise ProverError("the statement must end with ':=' (leave the proof out)")
    keyword = match.group(1)
    rest = declaration[len(keyword) :]
    if keyword == "example":
        name = "example_" + hashlib.blake2b(declaration.encode(), digest_size=4).hexdigest()
        signature = rest
        declaration = f"theorem {name}{signature}"
    else:
        name_match = NAME.match(rest.lstrip())
        if not rest[:1].isspace() or name_match is None:
            raise ProverError(f"`{keyword}` must be followed by the theorem's name")
        name = name_match.group(0)
        signature = rest.lstrip()[name_match.end() :]
        if keyword == "lemma":  # `lemma` is Mathlib syntax; `theorem` works everywhere
            declaration = f"theorem {name}{signature}"
    _check_signature(name, signature[: -len(":=")])
    return Theorem(name, statement=declaration, header=header or DEFAULT_HEADER, full_name=name.strip("«»"))


def _header(prefix: str) -> str:
    lines = [line for line in prefix.splitlines() if line.strip()]
    for line in lines:
        if not line.strip().startswith(HEADER_COMMANDS):
            raise ProverError(
                f"only `import`, `open` and `set_option` lines may come before the theorem, not `{line.strip()[:40]}`"
            )
    return "\n".join(line.strip() for line in lines) + "\n" if lines else ""


def _check_signature(name: str, signature: str) -> None:
    """Balanced brackets, and a `:` outside all brackets followed by a type."""
    stack: list[str] = []
    type_start = None
    for i, char in enumerate(signature):
        if char in BRACKETS:
            stack.append(BRACKETS[char])
        elif char in BRACKETS.values():
            if not stack or stack.pop() != char:
                raise ProverError(f"the statement of '{name}' has an unmatched `{char}`")
        elif char == ":" and not stack and type_start is None:
            type_start = i + 1
    if stack:
        raise ProverError(f"the statement of '{name}' has an unclosed bracket (expected `{stack[-1]}`)")
    if type_start is None:
        raise ProverError(f"the statement of '{name}' has no ':' before its type")
    if not signature[type_start:].strip():
        raise ProverError(f"the statement of '{name}' has no type after ':'")
