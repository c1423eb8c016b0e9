"""What the stand-in Lean knows: recorded tactic outcomes, a reader of Lean source, the
replay of proofs, and the AST files that LeanDojo's ExtractData would write.

This module has no process or protocol code (see ``toolchain.py``) and imports nothing
outside the standard library, so the stand-in executables start in milliseconds.

- ``TraceBook`` loads recorded real Lean steps (``tactic_traces.jsonl`` records: theorem,
  state_before, tactic, state_after, error, proof_finished, step, proof_status) and answers
  "what does this tactic do at this goal state". A step nobody recorded is an error, worded
  as Lean words it: ``unknown tactic`` for a name no record uses, else a tactic failure.
- ``read_source`` splits Lean source into commands the way a reader of miniF2F-style files
  can: a command starts at column 0 (``set_option ... in`` and modifiers such as ``/-- -/``
  or ``@[simp]`` join the command after them); ``theorem``/``lemma``/``example`` are taken
  apart into name, signature and proof, a ``by`` block into its top-level tactics (a line at
  the block's column starts a tactic, deeper lines and lines starting with ``|`` or ``<;>``
  continue it, ``;`` at bracket depth 0 separates tactics).
- ``check_source`` replays every declaration's proof through the recorded steps, as
  ``lean FILE`` or a REPL command would elaborate it, and returns Lean's messages.
- ``ast_json`` builds the ``*.ast.json`` document of ExtractData.lean (command syntax trees
  with byte positions, the tactic states of the proofs it could replay, no premises).
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

# The knobs a stand-in process reads while it runs (knob name -> environment variable); the
# package's ``install`` also knows two read only at start-up.
KNOB_VARIABLES = {
    "startup_delay_s": "LEAN_STANDIN_STARTUP_DELAY_S",
    "tactic_delay_s": "LEAN_STANDIN_TACTIC_DELAY_S",
    "slow_tactic": "LEAN_STANDIN_SLOW_TACTIC",
    "crash_after": "LEAN_STANDIN_CRASH_AFTER",
    "crash_tactic": "LEAN_STANDIN_CRASH_TACTIC",
    "crash_exit_code": "LEAN_STANDIN_CRASH_EXIT_CODE",
    "crash_once": "LEAN_STANDIN_CRASH_ONCE",
    "crash_prob": "LEAN_STANDIN_CRASH_PROB",
    "slow_prob": "LEAN_STANDIN_SLOW_PROB",
    "fault_seed": "LEAN_STANDIN_FAULT_SEED",
    "hostile": "LEAN_STANDIN_HOSTILE",  # tests/lean_standin/hostile.py
    # what Lean costs (costs.py)
    "import_delay_s": "LEAN_STANDIN_IMPORT_DELAY_S",
    "import_memory_mb": "LEAN_STANDIN_IMPORT_MEMORY_MB",
    "command_delay_s": "LEAN_STANDIN_COMMAND_DELAY_S",
    "command_memory_mb": "LEAN_STANDIN_COMMAND_MEMORY_MB",
    "tactic_cost_s": "LEAN_STANDIN_TACTIC_COST_S",
    "slow_fraction": "LEAN_STANDIN_SLOW_FRACTION",
    "heartbeat_s": "LEAN_STANDIN_HEARTBEAT_S",
}

NO_GOALS = "no goals"
SORRY_WARNING = "declaration uses 'sorry'"  # Lean v4.20 quotes it so; later versions use backticks
STANDARD_AXIOMS = ("propext", "Classical.choice", "Quot.sound")
AXIOM_ORDER = ("propext", "sorryAx", "Classical.choice", "Lean.ofReduceBool", "Lean.trustCompiler", "Quot.sound")
NATIVE_TACTICS = ("native_decide", "ofReduceBool", "ofReduceNat", "bv_decide", "decide +native")
AXIOM_FREE_PROOFS = {"rfl", "trivial", "decide", "exact rfl", "exact trivial"}

# Names of tactics Lean and Mathlib know; a tactic whose first word is none of these (nor a
# word a record uses) is a parse error, `unknown tactic`, as it would be in Lean.
KNOWN_TACTICS = frozenset(
    """
    abel absurd ac_rfl aesop all_goals and_intros any_goals apply apply_assumption apply_fun
    assumption assumption_mod_cast bound by_cases by_contra by_contra! calc case cases cases'
    change choose clear congr constructor contradiction contrapose contrapose! conv convert
    decide dsimp exact exact? exact_mod_cast exfalso exists existsi ext fin_cases first focus
    field_simp gcongr generalize group have haveI induction induction' infer_instance injection
    interval_cases intro intros iterate left let lift linarith linarith! linear_combination
    match mod_cases module native_decide next nlinarith nlinarith! noncomm_ring norm_cast
    norm_num nth_rewrite nth_rw obtain omega on_goal positivity push_cast push_neg qify rcases
    refine refine' rename_i repeat replace revert rfl right ring ring_nf ring1 rintro rotate_left
    rotate_right rw rwa set show simp simp? simp_all simp_arith simpa simp_rw slim_check
    specialize split split_ifs subst suffices swap symm tauto trans trivial try unfold unfold_let
    use use! wlog zify admit sorry done skip exacts constructorm casesm rcases? aesop? polyrith
    bv_decide decide! norm_num1 linarith? field_simp? positivity? nlinarith? cancel_denoms
    """.split()
)

# -- text helpers ---------------------------------------------------------------------------


def normalise_tactic(tactic: str) -> str:
    """A tactic as the recorded steps are looked up: whitespace runs collapsed to one space."""
    return " ".join(tactic.split())


def tactic_head(tactic: str) -> str:
    words = tactic.split()
    return words[0] if words else ""


def split_goals(pp: str) -> list[str]:
    """A pretty-printed state (goals joined by blank lines, as LeanDojo prints them) -> goals."""
    if pp.strip() in ("", NO_GOALS):
        return []
    goals: list[str] = []
    pending: list[str] = []
    for part in pp.split("\n\n"):
        pending.append(part)
        if "⊢" in part:
            goals.append("\n\n".join(pending))
            pending = []
    if pending:  # text after the last turnstile belongs to the last goal
        if goals:
            goals[-1] = "\n\n".join([goals[-1], *pending])
        else:
            goals.append("\n\n".join(pending))
    return goals


def join_goals(goals: Iterable[str]) -> str:
    goals = list(goals)
    return "\n\n".join(goals) if goals else NO_GOALS


def is_identifier(word: str) -> bool:
    return bool(re.fullmatch(r"[^\s():,\[\]{}]+", word))


def declaration_signature(text: str) -> str:
    """``theorem foo (x : ℕ) : x = x := by sorry`` -> ``theorem foo (x : ℕ) : x = x``, normalised."""
    masked = mask_comments_and_strings(text)
    cut = _find_top_level(masked, ":=", 0)
    head = text[:cut] if cut is not None else text
    return " ".join(head.split())


# -- recorded outcomes -----------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """What a recorded step did: the state after (None after an error) and Lean's error."""

    state_after: str | None
    error: str | None
    proof_status: str | None  # the REPL's proofStatus where the record has one


class TraceBook:
    """Recorded tactic steps, looked up by (state before, tactic); see the module docstring."""

    def __init__(self, records: Iterable[dict] = ()):
        self.steps: dict[tuple[str, str], Recorded] = {}
        self.goal_by_name: dict[str, tuple[int, str]] = {}  # theorem name -> (step, state)
        self.goal_by_signature: dict[str, str] = {}  # normalised declaration head -> state
        self.heads: set[str] = set(KNOWN_TACTICS)
        for record in records:
            self.add(record)

    @classmethod
    def from_paths(cls, paths: str | os.PathLike | None) -> "TraceBook":
        """Records from one or more JSONL files (``os.pathsep``-separated); none -> empty."""
        book = cls()
        if not paths:
            return book
        for path in str(paths).split(os.pathsep):
            if not path:
                continue
            with open(path, encoding="utf-8") as lines:
                for line in lines:
                    if line.strip():
                        book.add(json.loads(line))
        return book

    def add(self, record: dict) -> None:
        before = record.get("state_before")
        tactic = record.get("tactic")
        if not before or tactic is None:
            return
        before = before.strip()
        key = (before, normalise_tactic(tactic))
        if key not in self.steps:  # the first record of a step wins
            after = record.get("state_after")
            self.steps[key] = Recorded(
                after.strip() if isinstance(after, str) else None,
                record.get("error") or None,
                record.get("proof_status") or None,
            )
        if tactic.split() and not record.get("error"):  # a failed step may be a misspelt name
            self.heads.add(tactic_head(tactic))
        theorem = (record.get("theorem") or "").strip()
        if not theorem:
            return
        if is_identifier(theorem):
            step = record.get("step")
            step = step if isinstance(step, int) else 10**9
            if theorem not in self.goal_by_name or step < self.goal_by_name[theorem][0]:
                self.goal_by_name[theorem] = (step, before)
        else:
            self.goal_by_signature.setdefault(declaration_signature(theorem), before)

    def initial_goal(self, name: str | None, signature: str) -> str | None:
        """The recorded initial goal of a declaration: by its exact signature, then its name."""
        goal = self.goal_by_signature.get(" ".join(signature.split()))
        if goal is None and name:
            found = self.goal_by_name.get(name) or self.goal_by_name.get(name.rpartition(".")[2])
            goal = found[1] if found else None
        return goal

    def lookup(self, state_pp: str, tactic: str) -> Recorded | None:
        return self.steps.get((state_pp.strip(), normalise_tactic(tactic)))


# -- proof states and single steps -------------------------------------------------------------


@dataclass(frozen=True)
class ProofState:
    """The goals of a proof in progress, and whether a ``sorry`` closed any goal on the way."""

    goals: tuple[str, ...]
    uses_sorry: bool = False
    uses_native: bool = False
    uses_trust_compiler: bool = False

    @property
    def pp(self) -> str:
        return join_goals(self.goals)

    @classmethod
    def of(cls, pp: str) -> "ProofState":
        return cls(tuple(split_goals(pp)))


@dataclass(frozen=True)
class StepOutcome:
    """One tactic's effect. ``error`` with ``thrown`` is an exception of the tactic (the REPL
    answers ``{"message": "Lean error:\\n..."}``); an error that is not thrown was logged
    while Lean recovered, and ``state`` is the state it recovered to."""

    state: ProofState | None
    error: str | None = None
    thrown: bool = False
    proof_status: str | None = None
    sorried_goals: tuple[str, ...] = ()
    syntax: bool = False  # a parse error (Lean reports it with the position in the tactic text)


def _mentions(tactic: str, words: Iterable[str]) -> bool:
    """Whether ``tactic`` names one of ``words`` (also qualified: ``Lean.trustCompiler``)."""
    return any(re.search(rf"(?<![\w']){re.escape(word)}(?![\w'])", tactic) for word in words)


def unrecorded_outcome(tactic: str, goal_pp: str, book: TraceBook) -> StepOutcome:
    """Lean's answer to a tactic the stand-in has no record of at this goal: a parse error
    for a tactic name no record and no Lean/Mathlib tactic has, else a tactic failure."""
    head = tactic_head(tactic)
    if head not in book.heads:
        return StepOutcome(None, "unknown tactic", thrown=True, syntax=True)
    return StepOutcome(
        None,
        f"tactic '{head}' failed (the Lean stand-in has no recorded outcome of this tactic at this goal)\n{goal_pp}",
        thrown=True,
    )


def split_top_level(text: str, separator: str = ";") -> list[str]:
    """``a; b`` -> [a, b] at bracket depth 0, leaving ``<;>`` alone."""
    masked = mask_comments_and_strings(text)
    pieces, depth, start = [], 0, 0
    for i, ch in enumerate(masked):
        if ch in OPENERS:
            depth += 1
        elif ch in CLOSERS:
            depth = max(0, depth - 1)
        elif ch == separator and depth == 0 and not masked[max(0, i - 1) : i + 2] == "<;>":
            pieces.append(text[start:i])
            start = i + 1
    pieces.append(text[start:])
    return [p for p in pieces if p.strip()]


def run_tactic(state: ProofState, tactic: str, book: TraceBook) -> StepOutcome:
    """Apply one tactic at ``state`` through the recorded steps; see ``StepOutcome``."""
    norm = normalise_tactic(tactic)
    if not norm:
        return StepOutcome(None, "unexpected end of input", thrown=True, syntax=True)
    if not state.goals:
        return StepOutcome(None, "no goals to be proved", thrown=True)
    native = state.uses_native or _mentions(norm, NATIVE_TACTICS)
    trust = state.uses_trust_compiler or _mentions(norm, ("trustCompiler",))
    if norm in ("sorry", "admit"):  # closes the main goal with sorryAx
        rest = ProofState(state.goals[1:], True, native, trust)
        return StepOutcome(rest, sorried_goals=(state.goals[0],))
    recorded = book.lookup(state.pp, norm)
    if recorded is not None:
        uses_sorry = state.uses_sorry or _mentions(norm, ("sorry", "admit"))
        if recorded.error:
            error = recorded.error
            thrown = recorded.state_after is None
            if error.startswith("Lean error:\n"):
                error, thrown = error[len("Lean error:\n") :], True
            if thrown:
                return StepOutcome(None, error, thrown=True)
            # Lean logged the error and went on with `sorry` in place of the failed term
            after = ProofState(tuple(split_goals(recorded.state_after)), True, native, trust)
            return StepOutcome(after, error, proof_status=recorded.proof_status)
        after = ProofState(tuple(split_goals(recorded.state_after or NO_GOALS)), uses_sorry, native, trust)
        return StepOutcome(after, proof_status=recorded.proof_status)
    pieces = split_top_level(norm)
    if len(pieces) > 1:  # `t1; t2` runs t1, then t2
        current, sorried = state, ()
        for piece in pieces:
            outcome = run_tactic(current, piece, book)
            if outcome.state is None:
                return outcome
            current, sorried = outcome.state, sorried + outcome.sorried_goals
            if outcome.error:
                return StepOutcome(current, outcome.error, False, outcome.proof_status, sorried)
        return StepOutcome(current, sorried_goals=sorried)
    return unrecorded_outcome(norm, state.pp, book)


def finished_status(outcome: StepOutcome) -> str:
    """The REPL's ``proofStatus`` after a step that did not throw."""
    state = outcome.state
    assert state is not None
    if state.goals:
        return "Incomplete: open goals remain"
    if state.uses_sorry and outcome.proof_status in (None, "Completed"):
        # a recorded "Completed" judged that step's own proof; a `sorry` earlier in this one stays
        return "Incomplete: contains sorry"
    if outcome.proof_status:
        return outcome.proof_status
    return "Completed"


def dojo_verdict(outcome: StepOutcome) -> str | None:
    """LeanDojo's error for a step that closed every goal (Lean4Repl's ``validateProof``)."""
    status = finished_status(outcome)
    if status == "Completed":
        return None
    if status == "Incomplete: contains sorry":
        return "proof contains `sorry`"
    if "metavariable" in status:
        return "proof contains metavariables"
    if status.startswith("Error: "):
        return status[len("Error: ") :]
    return status


def axioms_of(state: ProofState | None, proof_text: str, errored: bool) -> list[str]:
    """What ``#print axioms`` reports for a declaration (a heuristic: Mathlib-style tactic
    proofs use the three standard axioms; a bare ``rfl``/``decide``/``trivial`` none)."""
    names: set[str] = set()
    body = normalise_tactic(proof_text)
    if body.startswith("by "):
        body = body[3:]
    if body not in AXIOM_FREE_PROOFS:
        names.update(STANDARD_AXIOMS)
    if errored or (state is not None and state.uses_sorry) or _mentions(body, ("sorry", "admit", "sorryAx")):
        names.add("sorryAx")
    if (state is not None and state.uses_native) or _mentions(body, NATIVE_TACTICS):
        names.add("Lean.ofReduceBool")
    if (state is not None and state.uses_trust_compiler) or _mentions(body, ("trustCompiler",)):
        names.add("Lean.trustCompiler")
    return [name for name in AXIOM_ORDER if name in names]


def print_axioms_message(name: str, axioms: list[str]) -> str:
    if not axioms:
        return f"'{name}' does not depend on any axioms"
    return f"'{name}' depends on axioms: [{', '.join(axioms)}]"


# -- reading Lean source ------------------------------------------------------------------------

OPENERS = "([{⦃⟨⟦"
CLOSERS = ")]}⦄⟩⟧"


def mask_comments_and_strings(text: str) -> str:
    """``text`` with comments (doc comments too) and string contents blanked, lengths kept."""
    out = list(text)
    i, n = 0, len(text)

    def blank(a: int, b: int) -> None:
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        if text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith("/-", i):
            j = _block_comment_end(text, i)
            blank(i, j)
            i = j
        elif text[i] == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j = min(n, j + 1)
            blank(i + 1, j - 1)
            i = j
        elif text[i] == "«":
            j = text.find("»", i)
            i = n if j < 0 else j + 1
        else:
            i += 1
    return "".join(out)


def _block_comment_end(text: str, start: int) -> int:
    depth, i, n = 0, start, len(text)
    while i < n:
        if text.startswith("/-", i):
            depth += 1
            i += 2
        elif text.startswith("-/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return n


def _find_top_level(masked: str, token: str, start: int, end: int | None = None) -> int | None:
    depth = 0
    end = len(masked) if end is None else end
    i = start
    while i < end:
        ch = masked[i]
        if ch in OPENERS:
            depth += 1
        elif ch in CLOSERS:
            depth = max(0, depth - 1)
        elif depth == 0 and masked.startswith(token, i):
            if token == ":" and masked.startswith(":=", i):
                i += 2
                continue
            return i
        i += 1
    return None


@dataclass(frozen=True)
class Span:
    """A piece of source: character offsets [start, end)."""

    start: int
    end: int


@dataclass
class Tactic:
    text: str
    span: Span


@dataclass
class Declaration:
    keyword: str  # theorem | lemma | example
    name: str | None  # as written (None for example)
    full_name: str | None  # with the namespaces around it
    keyword_span: Span
    name_span: Span | None
    binders_span: Span | None
    colon_span: Span | None
    type_span: Span | None
    assign_span: Span | None  # `:=`
    proof_span: Span | None  # the whole proof term
    by_span: Span | None  # the `by` of a tactic proof
    tactics: list[Tactic] = field(default_factory=list)

    @property
    def signature_span(self) -> Span:
        end = self.assign_span.start if self.assign_span else (self.proof_span or self.keyword_span).end
        return Span(self.keyword_span.start, end)


@dataclass
class Command:
    span: Span
    kind: str  # import | declaration | namespace | section | end | open | print_axioms | moddoc | other
    prefixes: list[Span] = field(default_factory=list)  # `set_option ... in` parts before it
    modifier_spans: list[Span] = field(default_factory=list)  # doc comment, attributes, private
    doc_span: Span | None = None
    private_span: Span | None = None
    declaration: Declaration | None = None
    argument: str | None = None  # the module, namespace or constant name
    argument_span: Span | None = None
    keyword_span: Span | None = None


@dataclass
class Source:
    """Lean source text with its commands and position tables."""

    text: str
    commands: list[Command]
    masked: str

    def __post_init__(self) -> None:
        self._line_starts = [0] + [i + 1 for i, ch in enumerate(self.text) if ch == "\n"]
        self._byte_offsets = [0]
        total = 0
        for ch in self.text:
            total += len(ch.encode("utf-8"))
            self._byte_offsets.append(total)

    def position(self, offset: int) -> tuple[int, int]:
        """Lean's position of a character offset: (line from 1, column from 0, in characters)."""
        lo, hi = 0, len(self._line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, offset - self._line_starts[lo]

    def byte(self, offset: int) -> int:
        return self._byte_offsets[offset]

    def slice(self, span: Span) -> str:
        return self.text[span.start : span.end]

    def declarations(self) -> list[Declaration]:
        return [c.declaration for c in self.commands if c.declaration is not None]


_MODIFIERS = {"private", "protected", "noncomputable", "nonrec", "partial", "unsafe", "scoped", "local"}
_DECLARATION_KEYWORDS = {"theorem", "lemma", "example"}


def _words(masked: str, start: int, end: int) -> list[Span]:
    return [Span(m.start() + start, m.end() + start) for m in re.finditer(r"\S+", masked[start:end])]


def _doc_comments(text: str) -> list[Span]:
    spans, i = [], 0
    while True:
        i = _next_comment(text, i)
        if i is None:
            return spans
        end = _block_comment_end(text, i)
        if text.startswith("/--", i) or text.startswith("/-!", i):
            spans.append(Span(i, end))
        i = end


def _next_comment(text: str, start: int) -> int | None:
    """The next block comment start that is not inside a line comment or string."""
    i, n = start, len(text)
    while i < n:
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/-", i):
            return i
        elif text[i] == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            i = j + 1
        else:
            i += 1
    return None


def read_source(text: str) -> Source:
    """Split Lean source into commands; see the module docstring for the rules."""
    masked = mask_comments_and_strings(text)
    docs = _doc_comments(text)
    # chunks: the words of the masked text, and doc comments as single chunks
    chunks = sorted(_words(masked, 0, len(masked)) + docs, key=lambda s: s.start)

    def at_column_zero(span: Span) -> bool:
        return span.start == 0 or text[span.start - 1] == "\n"

    groups: list[list[Span]] = []
    for chunk in chunks:
        if groups and not at_column_zero(chunk):
            groups[-1].append(chunk)
            continue
        if groups and _is_open_ended(text, groups[-1]):
            groups[-1].append(chunk)
            continue
        groups.append([chunk])
    source = Source(text, [], masked)
    namespaces: list[tuple[str, str | None]] = []  # (kind, name)
    for group in groups:
        command = _classify(source, group, namespaces)
        source.commands.append(command)
    return source


def _is_open_ended(text: str, group: list[Span]) -> bool:
    """Whether a command so far needs the next one: `... in`, or only modifiers."""
    words = [text[s.start : s.end] for s in group]
    if words[-1] == "in":
        return True
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("/--"):
            i += 1
        elif word.startswith("@["):
            depth = 0
            while i < len(words):
                depth += words[i].count("[") - words[i].count("]")
                i += 1
                if depth <= 0:
                    break
        elif word in _MODIFIERS:
            i += 1
        else:
            return False
    return True


def _classify(source: Source, group: list[Span], namespaces: list[tuple[str, str | None]]) -> Command:
    text = source.text
    words = [text[s.start : s.end] for s in group]
    span = Span(group[0].start, group[-1].end)
    command = Command(span, "other")
    i = 0
    # `set_option ... in` / `open ... in` prefixes
    while "in" in words[i:] and words[i] in ("set_option", "open", "variable", "omit", "include"):
        k = words.index("in", i)
        command.prefixes.append(Span(group[i].start, group[k].end))
        i = k + 1
    # modifiers
    while i < len(words):
        word = words[i]
        if word.startswith("/--"):
            command.doc_span = group[i]
            command.modifier_spans.append(group[i])
            i += 1
        elif word.startswith("@["):
            first, depth = i, 0
            while i < len(words):
                depth += words[i].count("[") - words[i].count("]")
                i += 1
                if depth <= 0:
                    break
            command.modifier_spans.append(Span(group[first].start, group[i - 1].end))
        elif word in _MODIFIERS:
            if word == "private":
                command.private_span = group[i]
            command.modifier_spans.append(group[i])
            i += 1
        else:
            break
    if i >= len(words):
        return command
    keyword = words[i]
    command.keyword_span = group[i]
    argument = words[i + 1] if i + 1 < len(words) else None
    if argument is not None:
        command.argument, command.argument_span = argument, group[i + 1]
    prefix = ".".join(name for kind, name in namespaces if kind == "namespace" and name)
    if keyword == "import":
        command.kind = "import"
    elif keyword == "namespace" and argument:
        command.kind = "namespace"
        namespaces.append(("namespace", argument))
    elif keyword == "section":
        command.kind = "section"
        namespaces.append(("section", argument))
    elif keyword == "end":
        command.kind = "end"
        if namespaces:
            namespaces.pop()
    elif keyword == "open":
        command.kind = "open"
    elif keyword.startswith("/-!"):
        command.kind = "moddoc"
    elif keyword == "#print" and argument == "axioms" and i + 2 < len(words):
        command.kind = "print_axioms"
        command.argument, command.argument_span = words[i + 2], group[i + 2]
    elif keyword in _DECLARATION_KEYWORDS:
        command.kind = "declaration"
        command.declaration = _declaration(source, group[i], span.end, keyword, prefix)
    return command


def _declaration(source: Source, keyword_span: Span, end: int, keyword: str, prefix: str) -> Declaration:
    masked = source.masked
    position = keyword_span.end
    name = name_span = None
    if keyword != "example":
        match = re.compile(r"\s*([^\s():\[\]{}⦃]+)").match(masked, position, end)
        if match:
            name, name_span = match.group(1), Span(match.start(1), match.end(1))
            position = match.end(1)
    full_name = None
    if name is not None:
        full_name = name[len("_root_.") :] if name.startswith("_root_.") else (f"{prefix}.{name}" if prefix else name)
    assign = _find_top_level(masked, ":=", position, end)
    sig_end = assign if assign is not None else end
    colon = _find_top_level(masked, ":", position, sig_end)
    binders_span = _trimmed(masked, position, colon if colon is not None else sig_end)
    colon_span = Span(colon, colon + 1) if colon is not None else None
    type_span = _trimmed(masked, colon + 1, sig_end) if colon is not None else None
    declaration = Declaration(
        keyword,
        name,
        full_name,
        keyword_span,
        name_span,
        binders_span,
        colon_span,
        type_span,
        Span(assign, assign + 2) if assign is not None else None,
        None,
        None,
    )
    if assign is None:
        return declaration
    proof = _trimmed(masked, assign + 2, end)
    declaration.proof_span = proof
    if proof is None:
        return declaration
    if re.match(r"by(?![\w'!?])", masked[proof.start : proof.end]):
        declaration.by_span = Span(proof.start, proof.start + 2)
        declaration.tactics = split_tactic_block(source, proof.start + 2, proof.end)
    return declaration


def _trimmed(masked: str, start: int, end: int) -> Span | None:
    piece = masked[start:end]
    if not piece.strip():
        return None
    lead = len(piece) - len(piece.lstrip())
    trail = len(piece) - len(piece.rstrip())
    return Span(start + lead, end - trail)


def split_tactic_block(source: Source, start: int, end: int) -> list[Tactic]:
    """The top-level tactics of the ``by`` block in [start, end)."""
    masked = source.masked
    first = _trimmed(masked, start, end)
    if first is None:
        return []
    base_column = source.position(first.start)[1]
    starts = [first.start]
    offset = masked.find("\n", first.start)
    while 0 <= offset < end:
        line_start = offset + 1
        stripped = masked[line_start:end].split("\n", 1)[0]
        body = stripped.lstrip()
        if body:
            column = len(stripped) - len(body)
            if column <= base_column and not body.startswith(("|", "<;>")) and line_start + column < end:
                starts.append(line_start + column)
        offset = masked.find("\n", line_start)
    tactics = []
    bounds = starts + [end]
    for a, b in zip(bounds, bounds[1:]):
        piece = _trimmed(masked, a, b)
        if piece is None:
            continue
        for sub in _split_semicolons(masked, piece):
            tactics.append(Tactic(source.text[sub.start : sub.end], sub))
    return tactics


def _split_semicolons(masked: str, span: Span) -> list[Span]:
    pieces, depth, start = [], 0, span.start
    for i in range(span.start, span.end):
        ch = masked[i]
        if ch in OPENERS:
            depth += 1
        elif ch in CLOSERS:
            depth = max(0, depth - 1)
        elif ch == ";" and depth == 0 and masked[i - 1 : i + 2] != "<;>":
            piece = _trimmed(masked, start, i)
            if piece:
                pieces.append(piece)
            start = i + 1
    piece = _trimmed(masked, start, span.end)
    if piece:
        pieces.append(piece)
    return pieces


# -- elaborating a whole file ----------------------------------------------------------------------


@dataclass
class Message:
    severity: str  # error | warning | info
    start: int  # character offsets into the source
    end: int
    data: str


@dataclass
class SorryAt:
    goal: str
    start: int
    end: int
    state: ProofState


@dataclass
class CheckedDeclaration:
    declaration: Declaration
    initial: ProofState | None
    final: ProofState | None
    errored: bool
    tactic_states: list[tuple[Tactic, str, str]]  # tactic, state before, state after
    axioms: list[str]


@dataclass
class CheckResult:
    messages: list[Message]
    sorries: list[SorryAt]
    declarations: list[CheckedDeclaration]
    axioms: dict[str, list[str]]

    @property
    def has_errors(self) -> bool:
        return any(m.severity == "error" for m in self.messages)


def check_declaration(
    source: Source, declaration: Declaration, book: TraceBook
) -> tuple[CheckedDeclaration, list[Message], list[SorryAt]]:
    """Elaborate one theorem through the recorded steps: Lean's messages and its sorries."""
    messages: list[Message] = []
    sorries: list[SorryAt] = []
    name_span = declaration.name_span or declaration.keyword_span
    signature = source.slice(declaration.signature_span)
    goal = book.initial_goal(declaration.full_name or declaration.name, signature)
    initial = ProofState.of(goal) if goal else None
    proof_text = source.slice(declaration.proof_span) if declaration.proof_span else ""
    checked = CheckedDeclaration(declaration, initial, None, False, [], [])

    def fail(span: Span, text: str) -> None:
        messages.append(Message("error", span.start, span.end, text))
        checked.errored = True

    if declaration.proof_span is None:
        fail(
            declaration.keyword_span,
            "the Lean stand-in reads only proofs given after `:=` (no `|` equations or `where`)",
        )
    elif normalise_tactic(proof_text) in ("sorry", "by sorry"):  # needs no goal: Lean only warns
        if initial is not None:  # at the `sorry` token, the proof's last five characters
            sorries.append(SorryAt(initial.pp, declaration.proof_span.end - 5, declaration.proof_span.end, initial))
        messages.append(Message("warning", name_span.start, name_span.end, SORRY_WARNING))
        checked.final = ProofState((), True)
    elif initial is None:
        fail(
            name_span,
            f"the Lean stand-in has no recorded goal for '{declaration.full_name or declaration.name or 'example'}' "
            "(add its trace to LEAN_STANDIN_TRACES)",
        )
    elif declaration.by_span is None:
        fail(declaration.proof_span, "the Lean stand-in elaborates only tactic proofs (`by ...`) and `sorry`")
    else:
        state = initial
        last = StepOutcome(initial)
        tactics = declaration.tactics
        i = 0
        while i < len(tactics):
            # the longest run of tactics that is one recorded step (a multi-line tactic split apart)
            taken, outcome = 1, None
            for j in range(len(tactics), i + 1, -1):
                joined = source.text[tactics[i].span.start : tactics[j - 1].span.end]
                if book.lookup(state.pp, joined) is not None:
                    taken, outcome = j - i, run_tactic(state, joined, book)
                    break
            tactic = (
                tactics[i]
                if taken == 1
                else Tactic(
                    source.text[tactics[i].span.start : tactics[i + taken - 1].span.end],
                    Span(tactics[i].span.start, tactics[i + taken - 1].span.end),
                )
            )
            focused = (
                _files().run_focused(sys.modules[__name__], source, tactic, state, book) if outcome is None else None
            )
            if focused is not None:  # `· tactics` (files.py), its sorries at their own places
                outcome, inner_sorries = focused
                sorries.extend(inner_sorries)
            if outcome is None:
                outcome = run_tactic(state, tactic.text, book)
            if outcome.error is not None:
                fail(tactic.span, outcome.error)
                if outcome.state is None:
                    break
            assert outcome.state is not None
            for sorried in outcome.sorried_goals:
                sorries.append(SorryAt(sorried, tactic.span.start, tactic.span.end, ProofState((sorried,))))
            checked.tactic_states.append((tactic, state.pp, outcome.state.pp))
            state, last = outcome.state, outcome
            i += taken
            if not state.goals and i < len(tactics):
                fail(tactics[i].span, "no goals to be proved")
                break
        checked.final = state
        if not checked.errored:
            status = finished_status(last)
            if state.goals:
                fail(Span(declaration.by_span.start, declaration.proof_span.end), "unsolved goals\n" + state.pp)
            elif status == "Incomplete: contains sorry":
                messages.append(Message("warning", name_span.start, name_span.end, SORRY_WARNING))
            elif status != "Completed":
                fail(declaration.proof_span, dojo_verdict(last) or status)
    checked.axioms = axioms_of(checked.final, proof_text, checked.errored)
    return checked, messages, sorries


def _files():
    """The sibling ``files`` module, in the package (tests) or beside this script (processes)."""
    if __package__:
        from . import files
    else:
        import files
    return files


def check_source(
    source: Source,
    book: TraceBook,
    known_axioms: dict[str, list[str]] | None = None,
    stop_at: Declaration | None = None,
) -> CheckResult:
    """Elaborate every command of ``source`` (up to ``stop_at``); imports are not checked here."""
    result = CheckResult([], [], [], dict(known_axioms or {}))
    for command in source.commands:
        if command.declaration is not None:
            if command.declaration is stop_at:
                break
            checked, messages, sorries = check_declaration(source, command.declaration, book)
            result.messages.extend(messages)
            result.sorries.extend(sorries)
            result.declarations.append(checked)
            name = command.declaration.full_name
            if name:
                result.axioms[name] = checked.axioms
        elif command.kind == "print_axioms":
            name = command.argument or ""
            span = command.keyword_span or command.span
            found = result.axioms.get(name)
            if found is None:
                candidates = [k for k in result.axioms if k.endswith("." + name)]
                found = result.axioms[candidates[0]] if candidates else None
                name = candidates[0] if candidates else name
            if found is None:
                result.messages.append(
                    Message(
                        "error", command.argument_span.start, command.argument_span.end, f"unknown constant '{name}'"
                    )
                )
            else:
                result.messages.append(Message("info", span.start, command.span.end, print_axioms_message(name, found)))
    return result


# -- LeanDojo's traced files --------------------------------------------------------------------


def module_name(relative_path: str | Path) -> str:
    return ".".join(Path(relative_path).with_suffix("").parts)


def import_path(module: str, package_root: Path) -> str:
    """Where ExtractData's ``findLean`` puts an imported module, relative to the package."""
    local = Path(*module.split(".")).with_suffix(".lean")
    if (package_root / local).exists():
        return str(local)
    package = module.split(".")[0].lower()
    return str(Path(".lake/packages") / package / local)


class _AstBuilder:
    def __init__(self, source: Source):
        self.source = source
        self.leaves: list[dict] = []

    def info(self, span: Span) -> dict:
        info = {"original": {"leading": "", "pos": span.start, "trailing": "", "endPos": span.end}}
        self.leaves.append(info)
        return info

    def atom(self, span: Span, val: str | None = None) -> dict:
        return {"atom": {"info": self.info(span), "val": self.source.slice(span) if val is None else val}}

    def ident(self, span: Span) -> dict:
        raw = self.source.slice(span)
        return {
            "ident": {
                "info": self.info(span),
                "rawVal": raw,
                "val": raw.replace("«", "").replace("»", ""),
                "preresolved": [],
            }
        }

    @staticmethod
    def node(kind: str, args: list[dict]) -> dict:
        return {"node": {"info": "none", "kind": kind, "args": args}}

    def null(self, args: list[dict] | None = None) -> dict:
        return self.node("null", args or [])

    def finish(self, tree: object) -> None:
        """Turn character offsets into byte offsets and give each token its whitespace."""
        text = self.source.text
        infos = sorted(self.leaves, key=lambda info: info["original"]["pos"])
        for k, info in enumerate(infos):
            original = info["original"]
            start, end = original["pos"], original["endPos"]
            following = infos[k + 1]["original"]["pos"] if k + 1 < len(infos) else len(text)
            original["trailing"] = text[end:following]
            if k == 0:
                original["leading"] = text[:start]
        for info in infos:
            original = info["original"]
            original["pos"] = self.source.byte(original["pos"])
            original["endPos"] = self.source.byte(original["endPos"])


_NODE_KINDS_WITH_SHAPE = {
    "def",
    "abbrev",
    "instance",
    "structure",
    "class",
    "inductive",
    "opaque",
    "axiom",
    "theorem",
    "example",
    "namespace",
    "section",
    "end",
    "declaration",
}


def ast_json(source: Source, book: TraceBook, package_root: Path) -> tuple[dict, str]:
    """ExtractData's ``*.ast.json`` document and ``*.dep_paths`` text for ``source``."""
    builder = _AstBuilder(source)
    commands_json: list[dict] = []
    imports = [c for c in source.commands if c.kind == "import"]
    header_imports = []
    for command in imports:
        header_imports.append(
            builder.node(
                "Lean.Parser.Module.import",
                [builder.atom(command.keyword_span), builder.null(), builder.ident(command.argument_span)],
            )
        )
    commands_json.append(builder.node("Lean.Parser.Module.header", [builder.null(), builder.null(header_imports)]))
    tactic_traces: list[dict] = []
    for command in source.commands:
        if command.kind == "import":
            continue
        commands_json.append(_command_json(builder, command, book, tactic_traces))
    builder.finish(commands_json)
    document = {"commandASTs": commands_json, "tactics": tactic_traces, "premises": []}
    dep_paths = "\n".join(import_path(c.argument or "", package_root) for c in imports if c.argument)
    return document, dep_paths


def _command_json(builder: _AstBuilder, command: Command, book: TraceBook, tactic_traces: list[dict]) -> dict:
    source = builder.source
    inner = _inner_command_json(builder, command, book, tactic_traces)
    # `set_option ... in` wraps the command: in(set_option, "in", command)
    for prefix in reversed(command.prefixes):
        words = _words(source.masked, prefix.start, prefix.end)
        head = builder.node(
            f"Lean.Parser.Command.{source.slice(words[0])}", [builder.atom(Span(words[0].start, words[-2].end))]
        )
        inner = builder.node("Lean.Parser.Command.in", [head, builder.atom(words[-1]), inner])
    return inner


def _inner_command_json(builder: _AstBuilder, command: Command, book: TraceBook, tactic_traces: list[dict]) -> dict:
    source = builder.source
    start = command.prefixes[-1].end if command.prefixes else command.span.start
    body = _trimmed(source.masked, start, command.span.end) or command.span
    if command.kind == "namespace" and command.argument_span:
        return builder.node(
            "Lean.Parser.Command.namespace", [builder.atom(command.keyword_span), builder.ident(command.argument_span)]
        )
    if (
        command.kind == "section"
        and command.modifier_spans
        and source.slice(command.modifier_spans[-1]) == "noncomputable"
    ):
        name = [builder.ident(command.argument_span)] if command.argument_span else []
        return builder.node(
            "Lean.Parser.Command.noncomputableSection",
            [builder.atom(command.modifier_spans[-1]), builder.atom(command.keyword_span), builder.null(name)],
        )
    if command.kind == "section" and source.slice(command.keyword_span) == "section":
        name = (
            [builder.ident(command.argument_span)]
            if command.argument_span and command.argument_span.end <= command.span.end
            else []
        )
        return builder.node("Lean.Parser.Command.section", [builder.atom(command.keyword_span), builder.null(name)])
    if command.kind == "end":
        name = [builder.ident(command.argument_span)] if command.argument_span else []
        return builder.node("Lean.Parser.Command.end", [builder.atom(command.keyword_span), builder.null(name)])
    if command.kind == "moddoc":
        span = command.keyword_span or body
        return builder.node(
            "Lean.Parser.Command.moduleDoc",
            [builder.atom(Span(span.start, span.start + 3)), builder.atom(Span(span.start + 3, span.end))],
        )
    if command.kind == "declaration" and command.declaration is not None:
        return _declaration_json(builder, command, command.declaration, book, tactic_traces)
    keyword = source.slice(command.keyword_span) if command.keyword_span else ""
    kind = (
        f"Lean.Parser.Command.{keyword}"
        if re.fullmatch(r"[A-Za-z_]+", keyword) and keyword not in _NODE_KINDS_WITH_SHAPE
        else "Lean.Parser.Command.standinUnmodelled"
    )
    return builder.node(kind, [builder.atom(body)])


def _declaration_json(
    builder: _AstBuilder, command: Command, declaration: Declaration, book: TraceBook, tactic_traces: list[dict]
) -> dict:
    source = builder.source
    doc = []
    if command.doc_span is not None:
        span = command.doc_span
        doc = [
            builder.node(
                "Lean.Parser.Command.docComment",
                [builder.atom(Span(span.start, span.start + 3)), builder.atom(Span(span.start + 3, span.end))],
            )
        ]
    others = [s for s in command.modifier_spans if s is not command.doc_span and s is not command.private_span]
    private = (
        [builder.node("Lean.Parser.Command.private", [builder.atom(command.private_span)])]
        if command.private_span
        else []
    )
    attributes = [builder.atom(s) for s in others if source.slice(s).startswith("@[")]
    rest = [builder.atom(s) for s in others if not source.slice(s).startswith("@[")]
    modifiers = builder.node(
        "Lean.Parser.Command.declModifiers",
        [
            builder.null(doc),
            builder.null(attributes),
            builder.null(private),
            builder.null(rest),
            builder.null(),
            builder.null(),
        ],
    )
    keyword = builder.atom(declaration.keyword_span)
    decl_id = (
        builder.node("Lean.Parser.Command.declId", [builder.ident(declaration.name_span), builder.null()])
        if declaration.name_span
        else None
    )
    binders = builder.null([builder.atom(declaration.binders_span)] if declaration.binders_span else [])
    type_spec = (
        builder.node(
            "Lean.Parser.Term.typeSpec", [builder.atom(declaration.colon_span), builder.atom(declaration.type_span)]
        )
        if declaration.colon_span and declaration.type_span
        else builder.null()
    )
    signature_kind = (
        "Lean.Parser.Command.optDeclSig" if declaration.keyword == "example" else "Lean.Parser.Command.declSig"
    )
    signature = builder.node(
        signature_kind, [binders, builder.null([type_spec]) if declaration.keyword == "example" else type_spec]
    )
    value = _value_json(builder, declaration, book, tactic_traces)
    if declaration.keyword == "lemma":  # Mathlib's `lemma` syntax
        return builder.node("lemma", [modifiers, builder.node("group", [keyword, decl_id, signature, value])])
    if declaration.keyword == "example":
        return builder.node(
            "Lean.Parser.Command.declaration",
            [modifiers, builder.node("Lean.Parser.Command.example", [keyword, signature, value])],
        )
    return builder.node(
        "Lean.Parser.Command.declaration",
        [modifiers, builder.node("Lean.Parser.Command.theorem", [keyword, decl_id, signature, value])],
    )


def _tactic_kind(text: str) -> str:
    head = tactic_head(text)
    if head == "sorry":
        return "Lean.Parser.Tactic.tacticSorry"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_']*", head) and not head.lower().startswith("tacticseq"):
        return f"Lean.Parser.Tactic.{head}"
    return "Lean.Parser.Tactic.nestedTactic"


def _value_json(builder: _AstBuilder, declaration: Declaration, book: TraceBook, tactic_traces: list[dict]) -> dict:
    source = builder.source
    if declaration.assign_span is None or declaration.proof_span is None:
        return builder.null()
    suffix = builder.node("Lean.Parser.Termination.suffix", [builder.null(), builder.null()])
    if declaration.by_span is None:
        text = source.slice(declaration.proof_span)
        proof = (
            builder.node("Lean.Parser.Term.sorry", [builder.atom(declaration.proof_span)])
            if text.strip() == "sorry"
            else builder.atom(declaration.proof_span)
        )
        return builder.node(
            "Lean.Parser.Command.declValSimple", [builder.atom(declaration.assign_span), proof, suffix, builder.null()]
        )
    states = _tactic_states(source, declaration, book)
    items: list[dict] = []
    for k, tactic in enumerate(declaration.tactics):
        if k:
            items.append(builder.null())
        items.append(builder.node(_tactic_kind(tactic.text), [builder.atom(tactic.span)]))
        if (tactic.span.start, tactic.span.end) in states:
            before, after = states[(tactic.span.start, tactic.span.end)]
            if before != after and before != NO_GOALS:
                tactic_traces.append(
                    {
                        "stateBefore": before,
                        "stateAfter": after,
                        "pos": source.byte(tactic.span.start),
                        "endPos": source.byte(tactic.span.end),
                    }
                )
    sequence = builder.node(
        "Lean.Parser.Tactic.tacticSeq", [builder.node("Lean.Parser.Tactic.tacticSeq1Indented", [builder.null(items)])]
    )
    proof = builder.node("Lean.Parser.Term.byTactic", [builder.atom(declaration.by_span), sequence])
    return builder.node(
        "Lean.Parser.Command.declValSimple", [builder.atom(declaration.assign_span), proof, suffix, builder.null()]
    )


def _tactic_states(source: Source, declaration: Declaration, book: TraceBook) -> dict[int, tuple[str, str]]:
    """The states before and after each top-level tactic that replays through the records."""
    checked, _, _ = check_declaration(source, declaration, book)
    return {(tactic.span.start, tactic.span.end): (before, after) for tactic, before, after in checked.tactic_states}
