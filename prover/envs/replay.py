"""Replay of recorded real Lean interactions, as an offline proof environment.

``ReplayEnv`` answers a tactic at a state exactly as Lean answered it when it was
recorded (see ``prover.traces`` for the format); a tactic never recorded at that state is
answered as a Lean error that says so. Several recorded proofs of one theorem share
states, so a theorem's records make a small branching graph.

    env = ReplayEnv(load_traces(None))
    state = env.start(Theorem("mathd_algebra_478"))
"""

from __future__ import annotations

from dataclasses import dataclass

from search import EnvInitError, LeanError, Outcome, TacticState, Theorem

from prover.envs import replay_check
from prover.settings import Settings, setting
from prover.traces import TheoremTrace, TraceSet, load_traces


@dataclass(frozen=True)
class ReplayConfig(Settings):
    traces: str | None = setting(
        None, "Trace file of recorded Lean interactions [default: the shipped miniF2F traces].", metavar="FILE"
    )


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
            return LeanError(f"not recorded: `{tactic.strip()}` was never recorded at this state, so Lean never ran it")
        return outcome

    def check_proof(self, theorem: Theorem, tactics: list[str]) -> str | None:
        """Replay ``tactics`` from a fresh start of ``theorem``."""
        return replay_check(self, theorem, tactics)

    def close(self) -> None:
        self._trace = None


def build(config: ReplayConfig) -> ReplayEnv:
    return ReplayEnv(load_traces(config.traces))
