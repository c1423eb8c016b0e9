"""Fault injection: an environment wrapper that crashes, times out, hangs, or kills its process.

Batch runs must lose nothing when the infrastructure misbehaves. ``FaultyEnv`` wraps any
environment and, at seeded random tactics, makes the session crash or time out, or hang
past the limit first (a hung Lean). It is a ``RestartingSession``, like the Lean
backends, so an injected fault goes through the same path a real one does: a crash
restarts the session, replays the path to the state and retries the tactic (only a
tactic that keeps crashing ends the search), a timeout restarts the session and is a
failed edge. Faults are drawn once per tactic the search sends, never during the
replay after a restart. It can also make the
whole process exit on chosen theorems (``os._exit``, as an OOM kill would), but only in a
process marked disposable (``prover.envs.DISPOSABLE_PROCESS_VARIABLE``: the Ray search
workers are); the CLI, the in-process runner and the test process never are.

    env = FaultyEnv(SyntheticEnv(), crash_prob=0.1, timeout_prob=0.1, seed=0)

As the hidden registered environment ``faulty`` (``FaultyConfig``; tests and benchmarks
name it in a ``RunConfig``, users never see it) it wraps the environment named by
``inner``, built with the settings in ``inner_options``.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from search import Outcome, ProofEnv, TacticState, Theorem

from prover.envs import DISPOSABLE_PROCESS_VARIABLE, replay_check
from prover.envs.session import RestartingSession
from prover.settings import Settings, setting

EXIT_CODE = 71  # distinctive, so a log shows that the exit was injected


class _InjectedTimeout(Exception):
    """How the inner session reports an injected timeout to ``RestartingSession``."""


class FaultyEnv(RestartingSession):
    """Wraps ``inner`` and injects infrastructure failures; see the module docstring.

    Each tactic the search sends draws one number from a generator seeded by (``seed``,
    theorem), so a theorem meets the same faults at the same steps in every run: a crash
    with ``crash_prob``, a timeout with ``timeout_prob``, and with ``hang_prob`` a sleep of
    ``hang_s`` seconds followed by a timeout. ``exit_theorems`` are theorems whose start
    ends the process; with ``exit_marker_dir`` each does so only once (a marker file
    remembers it across processes), else every time.
    """

    session_name = "faulty session"

    def __init__(
        self,
        inner: ProofEnv,
        crash_prob: float = 0.0,
        timeout_prob: float = 0.0,
        hang_prob: float = 0.0,
        seed: int = 0,
        hang_s: float = 5.0,
        exit_theorems: Sequence[str] = (),
        exit_marker_dir: str | None = None,
        max_crash_retries: int = 2,
    ):
        for name, value in (("crash_prob", crash_prob), ("timeout_prob", timeout_prob), ("hang_prob", hang_prob)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie between 0 and 1, not {value}")
        if crash_prob + timeout_prob + hang_prob > 1.0:
            raise ValueError("crash_prob + timeout_prob + hang_prob must not exceed 1")
        if hang_s < 0:
            raise ValueError(f"hang_s must not be negative, not {hang_s}")
        super().__init__(tactic_timeout_s=hang_s, max_crash_retries=max_crash_retries)
        self.inner = inner
        self.crash_prob = crash_prob
        self.timeout_prob = timeout_prob
        self.hang_prob = hang_prob
        self.seed = seed
        self.hang_s = hang_s
        self.exit_theorems = frozenset(exit_theorems)
        self.exit_marker_dir = exit_marker_dir
        self._rng = random.Random(seed)
        self._theorem: Theorem | None = None
        self._open = False
        self._pending: str | None = None  # the fault the next step meets
        self.num_injected = 0

    def start(self, theorem: Theorem) -> TacticState:
        if theorem.name in self.exit_theorems:
            self._maybe_exit(theorem.name)
        self.close()
        self._rng = random.Random(f"{self.seed}:{theorem.name}")
        self._theorem = theorem
        pp, handle = self._open_session()
        self._begin(pp, handle)
        return TacticState(pp)

    def _maybe_exit(self, theorem: str) -> None:
        if os.environ.get(DISPOSABLE_PROCESS_VARIABLE) != "1":
            return  # never kill a process that did not ask for it (the CLI, pytest)
        if self.exit_marker_dir is not None:
            marker = Path(self.exit_marker_dir) / f"exited-{theorem}"
            try:
                marker.parent.mkdir(parents=True, exist_ok=True)
                with open(marker, "x"):
                    pass  # created by us: this is the first time, so exit
            except FileExistsError:
                return
        os._exit(EXIT_CODE)  # no cleanup, no exception: like the OOM killer

    def run_tactic(self, state: TacticState, tactic: str) -> Outcome:
        draw = self._rng.random()
        for fault, probability in (
            ("crash", self.crash_prob),
            ("timeout", self.timeout_prob),
            ("hang", self.hang_prob),
        ):
            if draw < probability:
                self._pending = fault
                self.num_injected += 1
                break
            draw -= probability
        try:
            return super().run_tactic(state, tactic)
        finally:
            self._pending = None

    # -- the session a RestartingSession restarts ---------------------------------------------

    def _open_session(self) -> tuple[str, TacticState]:
        initial = self.inner.start(self._theorem)
        self._open = True
        return initial.pp, initial

    def _step(self, handle: TacticState, tactic: str) -> tuple[Outcome, TacticState | None]:
        fault, self._pending = self._pending, None
        if fault == "crash":
            self._open = False
            raise ConnectionAbortedError("injected fault: the environment crashed")
        if fault == "hang":
            time.sleep(self.hang_s)  # the limit was not honoured: the caller's watchdog must act
        if fault in ("timeout", "hang"):
            raise _InjectedTimeout()
        outcome = self.inner.run_tactic(handle, tactic)
        return outcome, outcome if isinstance(outcome, TacticState) else None

    def _session_is_open(self) -> bool:
        return self._open

    def _timeout_errors(self) -> tuple[type[BaseException], ...]:
        return (_InjectedTimeout,)

    def check_proof(self, theorem: Theorem, tactics: Sequence[str]) -> str | None:
        """Re-check on the inner environment, without faults: a fault is not a wrong proof."""
        check = getattr(self.inner, "check_proof", None)
        if check is not None:
            return check(theorem, tactics)
        return replay_check(self.inner, theorem, tactics)

    def close(self) -> None:
        self._open = False
        self._live = {}
        self.inner.close()


@dataclass(frozen=True)
class FaultyConfig(Settings):
    inner: str = setting("synthetic", "The environment the faults are injected into.")
    inner_options: str = setting("{}", "That environment's settings, as a JSON object.")
    crash_prob: float = setting(0.0, "Chance that a tactic crashes the environment.", min=0, max=1)
    timeout_prob: float = setting(0.0, "Chance that a tactic times out.", min=0, max=1)
    hang_prob: float = setting(0.0, "Chance that a tactic hangs for hang_s, then times out.", min=0, max=1)
    hang_s: float = setting(5.0, "How long a hang lasts.", min=0)
    seed: int = setting(0, "Seed of the fault draws.")
    exit_theorems: tuple[str, ...] = setting((), "Theorems whose start kills a Ray worker's process.")
    exit_marker_dir: str | None = setting(None, "Set: each exit theorem kills a process only once.")


def build(config: FaultyConfig, inner: ProofEnv) -> FaultyEnv:
    """The faults of ``config`` around ``inner``, the environment its ``inner`` and
    ``inner_options`` name (built by the registry, as for every backend that ``wraps``)."""
    return FaultyEnv(
        inner,
        crash_prob=config.crash_prob,
        timeout_prob=config.timeout_prob,
        hang_prob=config.hang_prob,
        seed=config.seed,
        hang_s=config.hang_s,
        exit_theorems=config.exit_theorems,
        exit_marker_dir=config.exit_marker_dir,
    )
