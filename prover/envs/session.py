"""What the two Lean backends share: a session that can be restarted and brought back.

A Lean process can hang (a tactic past its time limit) or die (out of memory, a bug).
After a LeanDojo timeout the session is unusable (LeanDojo issue #218), and a dead REPL
loses every proof state. ``RestartingSession`` keeps, for every state the session
produced, the tactic path from the root that led there, so a fresh session can replay
its way back to any state and the search carries on as if nothing happened:

- a tactic that Lean itself stopped (``_step`` raises ``EnvTimeoutError``: the REPL's
  heartbeat limit): reported to the engine as it is, a failed edge; the session lives on;
- a timed-out tactic (past the wall-clock limit, the process killed): the session is
  restarted at the state, and the tactic is reported to the engine as ``EnvTimeoutError``;
- a crash: the session is restarted at the state and the tactic retried, up to
  ``max_crash_retries`` times, then ``EnvCrashError`` ends the search;
- a crash or timeout during a restart (while the new session starts or replays the
  path): another fresh session, up to ``max_crash_retries`` more.

A backend supplies ``_open_session`` (a fresh process on the current theorem), ``_step``
(one tactic, as an engine outcome and the backend's handle of a new state), ``close``,
``_session_is_open`` and ``_timeout_errors``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any

from search import EnvCrashError, EnvTimeoutError, LeanError, Outcome, TacticState


class RestartingSession(ABC):
    """Path bookkeeping, restart-and-replay, and the tactic loop; see the module docstring."""

    session_name = "Lean session"  # for messages: "the Lean session was restarted"

    def __init__(self, tactic_timeout_s: float, max_crash_retries: int = 2):
        if max_crash_retries < 0:
            raise ValueError("max_crash_retries must not be negative")
        self.tactic_timeout_s = tactic_timeout_s
        self.max_crash_retries = max_crash_retries
        self.num_restarts = 0
        self.replay_s = 0.0  # seconds spent replaying tactic paths in fresh sessions (benchmarks read it)
        self._root_pp = ""
        self._paths: dict[str, list[str]] = {}  # state pp -> tactics from the root to it
        self._by_path: dict[tuple[str, ...], str] = {}  # the inverse of _paths
        self._live: dict[str, Any] = {}  # state pp -> the backend's handle in this session

    # -- what a backend provides ----------------------------------------------------------

    @abstractmethod
    def _open_session(self) -> tuple[str, Any]:
        """A fresh process on the current theorem: (initial goal pp, its handle)."""

    @abstractmethod
    def _step(self, handle: Any, tactic: str) -> tuple[Outcome, Any]:
        """Run ``tactic`` at ``handle``: the outcome, and the new state's handle (or None)."""

    @abstractmethod
    def _session_is_open(self) -> bool:
        """Whether a process is running for the current theorem."""

    @abstractmethod
    def _timeout_errors(self) -> tuple[type[BaseException], ...]:
        """The exceptions by which the backend reports a tactic past its time limit."""

    @abstractmethod
    def close(self) -> None:
        """End the process; safe to call twice."""

    # -- shared -----------------------------------------------------------------------------

    def _begin(self, root_pp: str, handle: Any) -> None:
        """Start the bookkeeping of a new theorem at its initial state."""
        self._root_pp = root_pp
        self._paths = {root_pp: []}
        self._by_path = {(): root_pp}
        self._live = {root_pp: handle}

    def run_tactic(self, state: TacticState, tactic: str) -> Outcome:
        """Run ``tactic`` at ``state``; restarts the session after a timeout or crash."""
        if not self._session_is_open():
            raise EnvCrashError(f"no {self.session_name}: start a theorem first")
        if state.pp not in self._paths:
            return LeanError("unknown proof state: it does not belong to this session")
        crashes = 0
        while True:
            try:
                outcome, handle = self._step(self._live_state(state.pp), tactic)
            except self._timeout_errors():
                self._restart(state.pp)
                raise EnvTimeoutError(
                    f"`{tactic}` ran past {self.tactic_timeout_s:g} s; the {self.session_name} was restarted"
                ) from None
            except (EnvCrashError, EnvTimeoutError):  # the latter: Lean stopped the tactic, the session is intact
                raise
            except Exception as exc:  # a dead process, a broken pipe, an answer that makes no sense
                crashes += 1
                if crashes > self.max_crash_retries:
                    raise EnvCrashError(
                        f"the {self.session_name} crashed {crashes} times on `{tactic}` ({type(exc).__name__}: {exc})"
                    ) from None
                self._restart(state.pp)
                continue
            if isinstance(outcome, TacticState):
                if outcome.pp not in self._paths:
                    self._paths[outcome.pp] = self._paths[state.pp] + [tactic]
                    self._by_path[tuple(self._paths[outcome.pp])] = outcome.pp
                self._live.setdefault(outcome.pp, handle)
            return outcome

    def _restart(self, pp: str) -> None:
        """A fresh session, with the path to ``pp`` replayed so the search can go on there.

        Lean can crash or stall while a new session starts or replays as much as anywhere
        else, so such a failure starts another fresh session, up to ``1 +
        max_crash_retries`` in all. A replay that leads somewhere else (EnvCrashError from
        ``_live_state``) is not retried: it would do so again. When the session cannot be
        brought back, the search cannot go on: EnvCrashError.
        """
        attempts = 0
        while True:
            self.close()
            self.num_restarts += 1
            attempts += 1
            try:
                root_pp, handle = self._open_session()
                if root_pp != self._root_pp:
                    raise EnvCrashError(f"the restarted {self.session_name} starts from a different goal")
                self._live = {root_pp: handle}
                self._live_state(pp)
                return
            except EnvCrashError:
                self.close()
                raise
            except Exception as exc:  # EnvInitError, a timeout or crash during the replay, ...
                self.close()
                if attempts > self.max_crash_retries:
                    raise EnvCrashError(
                        f"the {self.session_name} could not be restarted ({attempts} tries): {type(exc).__name__}: {exc}"
                    ) from None

    def _live_state(self, pp: str) -> Any:
        """This session's handle for ``pp``, replaying its tactic path if needed (from the
        deepest state on that path that this session already has)."""
        if pp in self._live:
            return self._live[pp]
        path = self._paths[pp]
        start = max(k for k in range(len(path) + 1) if self._by_path.get(tuple(path[:k])) in self._live)
        current = self._by_path[tuple(path[:start])]
        handle = self._live[current]
        replay_started = time.perf_counter()
        try:
            handle, current = self._replay(path[start:], handle, current)
        finally:
            self.replay_s += time.perf_counter() - replay_started
        if current != pp:
            raise EnvCrashError("replaying the path after a restart led to a different state")
        return handle

    def _replay(self, tactics: list[str], handle: Any, current: str) -> tuple[Any, str]:
        for tactic in tactics:
            outcome, handle = self._step(handle, tactic)
            if not isinstance(outcome, TacticState) or outcome.pp not in self._paths:
                raise EnvCrashError(f"replaying `{tactic}` after a restart gave a different result")
            current = outcome.pp
            handle = self._live.setdefault(current, handle)
        return handle, current
