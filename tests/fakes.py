"""Small in-test environments and policies that drive the real engine."""

from __future__ import annotations

import time
import zlib
from typing import Sequence

from search import (
    EnvCrashError,
    EnvInitError,
    EnvTimeoutError,
    LeanError,
    Outcome,
    ProofFinished,
    Proposal,
    TacticState,
    Theorem,
)


class GraphEnv:
    """A proof environment given as a table: state -> tactic -> outcome (or an exception
    instance to raise). Unknown tactics are Lean errors. Records every call."""

    def __init__(self, initial: str, table: dict[str, dict[str, Outcome | Exception]], checker=None):
        self.initial = initial
        self.table = table
        self.calls: list[tuple[str, str]] = []
        self.closed = 0
        self.started: list[str] = []

    def start(self, theorem: Theorem) -> TacticState:
        self.started.append(theorem.name)
        if theorem.name == "broken":
            raise EnvInitError("cannot trace broken")
        return TacticState(self.initial)

    def run_tactic(self, state: TacticState, tactic: str) -> Outcome:
        self.calls.append((state.pp, tactic))
        outcome = self.table.get(state.pp, {}).get(tactic, LeanError(f"unknown tactic {tactic}"))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def close(self) -> None:
        self.closed += 1


class CheckedGraphEnv(GraphEnv):
    """A GraphEnv that also re-checks proofs, with a verdict chosen by the test."""

    def __init__(self, *args, verdict: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.verdict = verdict
        self.checked: list[list[str]] = []

    def check_proof(self, theorem: Theorem, tactics: Sequence[str]) -> str | None:
        self.checked.append(list(tactics))
        return self.verdict


class BranchingEnv:
    """A generated problem with many paths to each state: tactic ``t{i}`` adds ``i`` to a
    multiset of moves, so ``t1; t2`` and ``t2; t1`` reach the same state. At ``depth``
    moves a state is finished by one tactic in ``proof_density`` of cases; elsewhere a
    tactic fails in ``error_rate`` of cases. Outcomes are a fixed function of the seed.
    ``start_delay_s`` and ``latency_s`` make starting and each tactic take that long."""

    def __init__(
        self, branching=4, depth=5, proof_density=0.0, error_rate=0.0, seed=0, start_delay_s=0.0, latency_s=0.0
    ):
        self.branching, self.depth = branching, depth
        self.proof_density, self.error_rate, self.seed = proof_density, error_rate, seed
        self.start_delay_s, self.latency_s = start_delay_s, latency_s
        self.num_tactics = 0
        self.closed = 0

    def _chance(self, *key) -> float:
        return zlib.crc32(repr((self.seed, *key)).encode()) / 2**32

    def start(self, theorem: Theorem) -> TacticState:
        time.sleep(self.start_delay_s)
        return TacticState("⊢ moves:")

    def run_tactic(self, state: TacticState, tactic: str) -> Outcome:
        time.sleep(self.latency_s)
        self.num_tactics += 1
        moves = [int(m) for m in state.pp.removeprefix("⊢ moves:").split()]
        move = int(tactic.removeprefix("t"))
        if move >= self.branching or self._chance(state.pp, tactic) < self.error_rate:
            return LeanError(f"{tactic} failed")
        if len(moves) >= self.depth:
            proved = move == 0 and self._chance(state.pp) < self.proof_density
            return ProofFinished() if proved else LeanError("too deep")
        return TacticState("⊢ moves: " + " ".join(map(str, sorted(moves + [move]))))

    def close(self) -> None:
        self.closed += 1


class TablePolicy:
    """Proposes, for each state, the proposals listed for it (or a default list)."""

    def __init__(self, table: dict[str, list[tuple[str, float]]], default: list[tuple[str, float]] = ()):
        self.table = table
        self.default = list(default)
        self.calls: list[str] = []

    def propose(self, states: Sequence[str], k: int) -> list[list[Proposal]]:
        self.calls.extend(states)
        return [[Proposal(t, lp) for t, lp in self.table.get(s, self.default)][:k] for s in states]


class TableValueModel:
    """Scores each state from a table (or ``default``); records every batch it is given."""

    def __init__(self, values: dict[str, float], default: float = 0.0):
        self.values = values
        self.default = default
        self.batches: list[list[str]] = []

    def score(self, states: Sequence[str]) -> list[float]:
        self.batches.append(list(states))
        return [self.values.get(s, self.default) for s in states]


def branching_policy(branching: int) -> TablePolicy:
    """Proposes ``t0``..``t{branching-1}``, ``t0`` first, for every state."""
    return TablePolicy({}, default=[(f"t{i}", -0.1 * (i + 1)) for i in range(branching)])


def two_step_problem():
    """A -(intro)-> B -(simp)-> proved; A -(ring)-> error; A -(cases)-> C (a dead end)."""
    table = {
        "A": {"intro x": TacticState("B"), "ring": LeanError("ring failed"), "cases h": TacticState("C")},
        "B": {"simp": ProofFinished()},
        "C": {"omega": LeanError("omega failed")},
    }
    policy = TablePolicy(
        {"A": [("cases h", -0.1), ("intro x", -0.5), ("ring", -1.0)], "B": [("simp", -0.2)], "C": [("omega", -0.3)]}
    )
    return table, policy


__all__ = [
    "BranchingEnv",
    "CheckedGraphEnv",
    "EnvCrashError",
    "EnvTimeoutError",
    "GraphEnv",
    "TablePolicy",
    "TableValueModel",
    "branching_policy",
    "two_step_problem",
]
