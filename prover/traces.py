"""Recorded Lean interactions: the trace format, read once per process.

A trace file (JSON lines; the package ships ``prover/data/tactic_traces.jsonl``, recorded
from real miniF2F proof searches) holds one record per tactic step: ``theorem``,
``state_before``, ``tactic``, ``state_after`` (or null), ``error`` (or absent),
``proof_finished``, and optionally ``step``, ``model``, ``source``. ``TraceSet`` turns
the records into one transition graph per theorem (state -> tactic -> outcome). The
replay environment answers tactics from it, the replay policy proposes its tactics, and
the trainer learns from its accepted steps; none of them imports another for it.

Where a theorem was recorded under different Lean versions its initial goal may be
printed differently; each distinct initial goal is then its own theorem, named
``<theorem>@2``, ``<theorem>@3``, ... after the most recorded one.

    traces = load_traces(None)            # the shipped traces
    traces.get("mathd_algebra_478").initial_state
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from search import LeanError, Outcome, ProofFinished, ProofGivenUp, TacticState

from prover.data import traces_path
from prover.errors import ProverError

REQUIRED_FIELDS = ("theorem", "state_before", "tactic")


class TraceFormatError(ProverError):
    pass


@dataclass
class TheoremTrace:
    """The recorded interactions of one theorem (one initial goal)."""

    name: str
    initial_state: str
    transitions: dict[str, dict[str, Outcome]] = field(default_factory=dict)


_RANK = {ProofFinished: 0, TacticState: 1, ProofGivenUp: 2, LeanError: 3}


def _outcome(record: dict) -> Outcome:
    if record.get("error"):
        return LeanError(record["error"])
    if record.get("proof_finished"):
        return ProofFinished()
    state_after = record.get("state_after")
    if state_after in (None, "", "no goals"):
        # Lean reported no goals left without a finished proof: the goals were given up.
        return ProofGivenUp()
    return TacticState(state_after)


# How the notation in goals changed between the Lean that printed the shipped records (Lean 4
# nightly-2023-08-19 with Mathlib 093597d4, see DATA.md) and the pinned Lean and Mathlib
# v4.20.0: (what the old Lean printed, what v4.20 prints). Each row is tested.
NOTATION_CHANGES: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"∑ ([^,∈]+?) in "), r"∑ \1 ∈ "),  # ∑ x in s, f x        ->  ∑ x ∈ s, f x
    (re.compile(r"∏ ([^,∈]+?) in "), r"∏ \1 ∈ "),  # ∏ x in s, f x        ->  ∏ x ∈ s, f x
    (re.compile(r"(?<![\w.])Real\.sqrt "), "√"),  # Real.sqrt x, Real.sqrt (x + 1)  ->  √x, √(x + 1)
)


def pinned_notation(pp: str) -> str:
    """A pretty-printed goal as the pinned Lean (v4.20) prints it; see ``NOTATION_CHANGES``."""
    for pattern, replacement in NOTATION_CHANGES:
        pp = pattern.sub(replacement, pp)
    return pp


class TraceSet:
    """All theorems of a trace file, with their transition graphs."""

    def __init__(self, theorems: dict[str, TheoremTrace], source: str = ""):
        self.theorems = theorems
        self.source = source
        self._by_state: dict[str, set[str]] | None = None

    @classmethod
    def load(cls, path: str | Path | None = None) -> "TraceSet":
        path = Path(path) if path else traces_path()
        records = read_trace_records(path)
        if not records:
            raise TraceFormatError(f"trace file {path} holds no records")
        return cls.from_records(records, source=str(path))

    @classmethod
    def from_records(cls, records: list[dict], source: str = "") -> "TraceSet":
        by_theorem: dict[str, list[dict]] = defaultdict(list)
        for record in records:
            by_theorem[record["theorem"]].append(record)
        theorems: dict[str, TheoremTrace] = {}
        for name, group in by_theorem.items():
            transitions: dict[str, dict[str, Outcome]] = defaultdict(dict)
            for record in group:
                # Runs under different Lean versions can disagree on a (state, tactic) pair
                # (newer `rw` closes goals with `rfl`): keep the outcome that gets furthest.
                by_tactic = transitions[record["state_before"]]
                tactic, outcome = record["tactic"].strip(), _outcome(record)
                if tactic not in by_tactic or _RANK[type(outcome)] < _RANK[type(by_tactic[tactic])]:
                    by_tactic[tactic] = outcome
            for i, initial in enumerate(_initial_states(group)):
                variant = name if i == 0 else f"{name}@{i + 1}"
                theorems[variant] = TheoremTrace(variant, initial, dict(transitions))
        return cls(theorems, source)

    def names(self) -> list[str]:
        return list(self.theorems)

    def get(self, name: str) -> TheoremTrace:
        return self.theorems[name]

    def tactics_at(self, state: str) -> set[str]:
        """Every tactic recorded at this state, in any theorem; states are compared in the
        pinned Lean's notation (``pinned_notation``), so a state printed by Lean v4.20 finds
        the tactics recorded at the same state printed by an older Lean."""
        if self._by_state is None:
            self._by_state = defaultdict(set)
            for trace in self.theorems.values():
                for pp, by_tactic in trace.transitions.items():
                    self._by_state[pinned_notation(pp)].update(by_tactic)
        return self._by_state.get(pinned_notation(state), set())

    def all_tactics(self) -> list[str]:
        return sorted({t for trace in self.theorems.values() for m in trace.transitions.values() for t in m})


def _initial_states(group: list[dict]) -> list[str]:
    """Initial goals, most recorded first: the step-0 states where steps are numbered,
    else the states that no recorded tactic leads to."""
    numbered = [r["state_before"] for r in group if r.get("step") == 0]
    if not numbered:
        reached = {r.get("state_after") for r in group}
        numbered = [r["state_before"] for r in group if r["state_before"] not in reached]
    if not numbered:
        numbered = [group[0]["state_before"]]
    return [state for state, _ in Counter(numbered).most_common()]


def read_trace_records(path: str | Path) -> list[dict]:
    """The records of a file in the trace format (a trace file, or an export's split),
    each checked to have the required fields; a TraceFormatError names the bad line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TraceFormatError(f"trace file {path} does not exist; pass --traces FILE") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceFormatError(f"cannot read trace file {path}: {exc}") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise TraceFormatError(f"line {number} of {path} is not valid JSON (or is nested too deeply)") from None
        if not isinstance(record, dict):
            raise TraceFormatError(f"line {number} of {path} is not a JSON object")
        missing = [f for f in REQUIRED_FIELDS if not isinstance(record.get(f), str)]
        if missing:
            raise TraceFormatError(f"line {number} of {path} is not a trace record: it lacks {', '.join(missing)}")
        records.append(record)
    return records


_CACHE: dict[str, TraceSet] = {}


def load_traces(path: str | Path | None) -> TraceSet:
    """Load (once per process) the trace file at ``path``, or the shipped one."""
    key = str(Path(path) if path else traces_path())
    if key not in _CACHE:
        _CACHE[key] = TraceSet.load(key)
    return _CACHE[key]
