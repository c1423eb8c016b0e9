"""A synthetic proof environment with tunable shape, for offline runs and performance work.

Every theorem ``synthetic_<i>`` is a generated proof problem. Any tactic string is
accepted: with probability ``error_rate`` it fails; otherwise it leads to one of
``branching`` child states (tactics that land on the same child merge, as they do in
Lean). Child 0 of every state on the proof path makes progress, each other child does
with probability ``proof_density``; a state that made ``depth`` steps of progress is
proved. Children that make no progress start a dead end that never closes. All of it is
a pure function of (seed, theorem, state, tactic), so runs are reproducible, and each
tactic sleeps ``latency_s`` to stand in for Lean's time.

    env = SyntheticEnv(SyntheticConfig(branching=3, depth=2, seed=1))
    state = env.start(Theorem("synthetic_0"))
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass

from search import EnvInitError, LeanError, Outcome, ProofFinished, TacticState, Theorem

from prover.config import Settings, setting
from prover.envs import replay_check

NAME = re.compile(r"synthetic_(\d+)$")
DEAD_END = -1


@dataclass(frozen=True)
class SyntheticConfig(Settings):
    branching: int = setting(4, "Distinct child states per state.", min=1)
    depth: int = setting(5, "Length of the shortest proof.", min=1)
    proof_density: float = setting(0.3, "Chance that a child state makes progress.", min=0, max=1)
    error_rate: float = setting(0.4, "Chance that a tactic fails.", min=0, max=1)
    latency_s: float = setting(0.0, "Seconds each tactic takes.", min=0)
    seed: int = setting(0, "Seed of the generated problems.", flag="--env-seed")


def _unit(*parts: object) -> float:
    """A reproducible number in [0, 1) from the parts (Python's hash() is salted per process)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


class SyntheticEnv:
    """See the module docstring. One theorem at a time, like a Lean session."""

    def __init__(self, config: SyntheticConfig = SyntheticConfig()):
        self.config = config
        self._theorem = ""
        self._remaining: dict[str, int] = {}  # state pp -> steps to a proof, or DEAD_END

    def start(self, theorem: Theorem) -> TacticState:
        if not NAME.match(theorem.name):
            raise EnvInitError(f"'{theorem.name}' is not a synthetic theorem (synthetic_<number>)")
        self._theorem = theorem.name
        self._remaining = {}
        return self._state(theorem.name, self.config.depth)

    def _state(self, key: str, remaining: int) -> TacticState:
        digest = hashlib.blake2b(f"{self.config.seed}:{key}".encode(), digest_size=6).hexdigest()
        pp = f"n : ℕ\nh : P n\n⊢ Q_{digest} n"
        self._remaining[pp] = remaining
        return TacticState(pp)

    def run_tactic(self, state: TacticState, tactic: str) -> Outcome:
        if self.config.latency_s:
            time.sleep(self.config.latency_s)
        remaining = self._remaining.get(state.pp)
        if remaining is None:
            return LeanError("unknown proof state: it does not belong to this session")
        c = self.config
        if _unit(c.seed, "error", state.pp, tactic) < c.error_rate:
            return LeanError(f"synthetic: `{tactic}` failed on this goal")
        child = int(_unit(c.seed, "child", state.pp, tactic) * c.branching)
        progress = remaining != DEAD_END and (
            child == 0 or _unit(c.seed, "progress", state.pp, child) < c.proof_density
        )
        if progress and remaining == 1:
            return ProofFinished()
        return self._state(f"{state.pp}/{child}", remaining - 1 if progress else DEAD_END)

    def check_proof(self, theorem: Theorem, tactics: list[str]) -> str | None:
        """Replay ``tactics`` from a fresh start of ``theorem``."""
        return replay_check(self, theorem, tactics)

    def close(self) -> None:
        self._remaining = {}


def build(config: SyntheticConfig) -> SyntheticEnv:
    return SyntheticEnv(config)
