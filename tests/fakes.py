"""Small in-test environments and policies that drive the real engine."""

from __future__ import annotations

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


class TablePolicy:
    """Proposes, for each state, the proposals listed for it (or a default list)."""

    def __init__(self, table: dict[str, list[tuple[str, float]]], default: list[tuple[str, float]] = ()):
        self.table = table
        self.default = list(default)
        self.calls: list[str] = []

    def propose(self, states: Sequence[str], k: int) -> list[list[Proposal]]:
        self.calls.extend(states)
        return [[Proposal(t, lp) for t, lp in self.table.get(s, self.default)][:k] for s in states]


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
    "CheckedGraphEnv", "EnvCrashError", "EnvTimeoutError", "GraphEnv", "TablePolicy", "two_step_problem",
]
