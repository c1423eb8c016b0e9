"""Replay of recorded real Lean interactions, as an offline proof environment.

A trace file (the format of ``shared/data/minif2f/tactic_traces.jsonl``) holds one JSON
record per tactic step: ``theorem``, ``state_before``, ``tactic``, ``state_after`` (or
null), ``error`` (or absent), ``proof_finished``. ``ReplayEnv`` answers a tactic at a state
exactly as Lean answered it when it was recorded; a tactic never recorded at that state is
answered as a Lean error that says so. Several recorded proofs of one theorem share states,
so a theorem's records make a small branching graph.

Where a theorem was recorded under different Lean versions its initial goal may be
printed differently; each distinct initial goal is then its own theorem, named
``<theorem>@2``, ``<theorem>@3``, ... after the most recorded one.

    traces = TraceSet.load("../shared/data/minif2f/tactic_traces.jsonl")
    env = ReplayEnv(traces)
    state = env.start(Theorem("mathd_algebra_478"))
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from search import (
    EnvInitError,
    LeanError,
    Outcome,
    ProofFinished,
    ProofGivenUp,
    TacticState,
    Theorem,
)

from prover.config import default_traces_path
from prover.envs import replay_check
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
    proofs: list[list[str]] = field(default_factory=list)  # recorded tactic sequences


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


class TraceSet:
    """All theorems of a trace file, with their transition graphs and recorded proofs."""

    def __init__(self, theorems: dict[str, TheoremTrace], source: str = ""):
        self.theorems = theorems
        self.source = source
        self._by_state: dict[str, set[str]] | None = None

    @classmethod
    def load(cls, path: str | Path | None = None) -> "TraceSet":
        path = Path(path) if path else default_traces_path()
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
            except json.JSONDecodeError:
                raise TraceFormatError(f"line {number} of {path} is not valid JSON") from None
            if not isinstance(record, dict):
                raise TraceFormatError(f"line {number} of {path} is not a JSON object")
            missing = [f for f in REQUIRED_FIELDS if not isinstance(record.get(f), str)]
            if missing:
                raise TraceFormatError(
                    f"line {number} of {path} is not a trace record: it lacks {', '.join(missing)}"
                )
            records.append(record)
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
                trace = TheoremTrace(variant, initial, dict(transitions))
                trace.proofs = _recorded_proofs(group, initial, trace.transitions)
                theorems[variant] = trace
        return cls(theorems, source)

    def names(self) -> list[str]:
        return list(self.theorems)

    def get(self, name: str) -> TheoremTrace:
        return self.theorems[name]

    def tactics_at(self, state: str) -> set[str]:
        """Every tactic recorded at this state, in any theorem."""
        if self._by_state is None:
            self._by_state = defaultdict(set)
            for trace in self.theorems.values():
                for pp, by_tactic in trace.transitions.items():
                    self._by_state[pp].update(by_tactic)
        return self._by_state.get(state, set())

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


def _recorded_proofs(group: list[dict], initial: str, transitions: dict) -> list[list[str]]:
    """Tactic sequences that a run recorded from ``initial`` to a finished proof."""
    runs: dict[tuple, list[dict]] = defaultdict(list)
    for record in group:
        if record.get("step") is not None:
            runs[(record.get("model"), record.get("source"))].append(record)
    proofs = []
    for run in runs.values():
        run.sort(key=lambda r: r["step"])
        steps = [r["step"] for r in run]
        if run[0]["state_before"] != initial or steps != list(range(len(run))):
            continue
        if run[-1].get("proof_finished") and not any(r.get("error") for r in run):
            proofs.append([r["tactic"].strip() for r in run])
    if not proofs:  # unnumbered records (e.g. REPL fixtures): paths through the graph
        proofs = _paths_to_proof(initial, transitions)
    return proofs


def _paths_to_proof(initial: str, transitions: dict, limit: int = 16) -> list[list[str]]:
    proofs: list[list[str]] = []
    stack: list[tuple[str, list[str]]] = [(initial, [])]
    while stack and len(proofs) < limit:
        state, path = stack.pop()
        for tactic, outcome in transitions.get(state, {}).items():
            if isinstance(outcome, ProofFinished):
                proofs.append(path + [tactic])
            elif isinstance(outcome, TacticState) and len(path) < 32 and outcome.pp != state:
                stack.append((outcome.pp, path + [tactic]))
    return proofs


class ReplayEnv:
    """Answers tactics from recorded Lean interactions; see the module docstring."""

    def __init__(self, traces: TraceSet):
        self.traces = traces
        self._trace: TheoremTrace | None = None

    def start(self, theorem: Theorem) -> TacticState:
        trace = self.traces.theorems.get(theorem.name)
        if trace is None:
            raise EnvInitError(f"no recorded interactions for '{theorem.name}' in {self.traces.source}")
        self._trace = trace
        return TacticState(trace.initial_state)

    def run_tactic(self, state: TacticState, tactic: str) -> Outcome:
        if self._trace is None:
            return LeanError("no theorem started")
        recorded = self._trace.transitions.get(state.pp, {})
        outcome = recorded.get(tactic.strip())
        if outcome is None:
            return LeanError(f"replay: `{tactic.strip()}` was never recorded at this state")
        return outcome

    def check_proof(self, theorem: Theorem, tactics: list[str]) -> str | None:
        """Replay ``tactics`` from a fresh start of ``theorem``."""
        return replay_check(self, theorem, tactics)

    def close(self) -> None:
        self._trace = None


_CACHE: dict[str, TraceSet] = {}


def load_traces(path: str | None) -> TraceSet:
    """Load (once per process) the trace file at ``path``, or the default one."""
    key = str(Path(path) if path else default_traces_path())
    if key not in _CACHE:
        _CACHE[key] = TraceSet.load(key)
    return _CACHE[key]


def build(config) -> ReplayEnv:
    """Registry entry: an ``EnvConfig`` -> a ``ReplayEnv``."""
    return ReplayEnv(load_traces(config.traces))
