"""Warm Lean REPL processes, kept per worker process and keyed by header.

Importing Mathlib costs a Lean process seconds to a minute and gigabytes; elaborating a
theorem's statement on an environment that already has the imports costs milliseconds.
So a worker process keeps its REPLs: each imports its header once (one command, whose
``env`` it keeps), and every theorem, re-check or restart after it is a command on that
environment (``"env": H``), whose proof states stay valid until the process dies.

What lean-interact gives and this module uses: ``LeanServer`` (one REPL process started
through the configured ``lake`` with ``RLIMIT_AS`` set, ``run`` with a timeout that kills
the process, ``get_memory_usage`` through psutil). What it lacks and this module adds:
REPLs keyed by header with the header's environment kept (``AutoLeanServer`` replays its
session cache into the *same* process after a restart, which re-imports; ``LeanServerPool``
shares one cache over interchangeable servers), recycling after a number of uses or above
a resident-memory level (as kimina-lean-server's manager does), and warm REPLs imported in
the background so that replacing a dead or recycled REPL costs no import on the search's
path.

Which REPLs a header has: the searches' (lent, or idle between theorems), one checker, and
``spares`` idle ones more (0 by default). The checker is imported in the background when
the header is first leased, and doubles as the spare: a search whose REPL died (a
wall-clock timeout, a crash, a memory kill) moves to the checker when no idle REPL is
there, and a new checker imports in the background. A REPL lent for its last use
(``max_uses``) has its replacement imported in the background, so a recycle waits for
nothing either. A slow tactic that Lean's heartbeat limit stops kills nothing
(``prover.envs.repl``). So a worker that runs one search at a time imports each header
``2 + recycles + dead REPLs`` times (``spares`` more), only the first on a search's path.

The API (``ReplPool``, one per process and configuration through ``pool_for``):

- ``lease(header) -> WarmRepl``: a warm REPL for ``header``, lent to one search until
  ``give_back``: an idle one if there is one (the most used first), else the checker
  (when no check runs), else one imported in the background if that is under way, else
  one started now (the import is paid here).
- ``elaborate(repl, command, timeout) -> (response, [(goal, proof_state), ...])``: an
  arbitrary command on the REPL's header environment and the proof states of its
  ``sorry``s (a theorem's ``statement := by sorry`` gives its root state; a user's file
  with several ``sorry``s gives one per hole). ``repl.run(request, timeout)`` then runs
  proof steps on those states.
- ``give_back(repl)``: the search is over and its proof states are let go (the REPL has no
  call that frees them; their memory goes when the process is recycled). A dead REPL is
  dropped; a live one is recycled after ``max_uses`` leases or above ``max_memory_mb``,
  else idles.
- ``check(header, command, timeout)``: a command on the header environment of this
  header's checker REPL, which no search uses meanwhile (so a proof is checked in an
  environment that only has the header); checks take turns; a dead checker is replaced
  (by an idle REPL, one imported in the background, or one started now) and the check
  tried once more.
- ``stats()``: imports (on the search's path and in the background), recycles, drops,
  leases, checks, checkers moved to a search; ``settle()`` waits for the background
  imports under way; ``close()`` kills every process (also at interpreter exit).
"""

from __future__ import annotations

import atexit
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from search import EnvInitError


@dataclass(eq=False)
class WarmRepl:
    """One REPL process with its header imported: ``env`` is the header's environment
    (None for an empty header); ``uses`` counts the searches it served; ``retiring``: lent
    for its last use, its replacement is on the way."""

    server: Any
    header: str
    env: int | None
    uses: int = 0
    retiring: bool = False

    def run(self, request: Any, timeout: float | None) -> Any:
        return self.server.run(request, timeout=timeout)

    def alive(self) -> bool:
        try:
            return bool(self.server.is_alive())
        except Exception:
            return False

    def memory_mb(self) -> float:
        try:
            return float(self.server.get_memory_usage())
        except Exception:
            return 0.0

    def kill(self) -> None:
        try:
            self.server.kill()
        except Exception:
            pass  # already gone


@dataclass
class PoolStats:
    imports: int = 0  # every header imported, wherever
    background_imports: int = 0  # of which in a background thread (checkers, spares, replacements)
    import_s: float = 0.0  # seconds spent importing on a search's path
    recycles: int = 0  # REPLs ended after max_uses or above max_memory_mb
    drops: int = 0  # REPLs found dead (wall-clock timeouts, crashes, memory kills)
    leases: int = 0
    checks: int = 0
    checker_moves: int = 0  # checkers lent to a search that had no idle REPL (a new one imports meanwhile)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class _Header:
    idle: list[WarmRepl] = field(default_factory=list)
    checker: WarmRepl | None = None
    starting: int = 0  # imports under way in the background
    retiring: int = 0  # REPLs lent for their last use, whose replacements are wanted
    failing: bool = False  # the last background import failed: none more until one succeeds
    checking: threading.Lock = field(default_factory=threading.Lock)  # checks take turns


class ReplPool:
    """Warm REPLs of one process; see the module docstring.

    ``start_server()`` starts one REPL process (a ``lean_interact.LeanServer``);
    ``command(cmd, env)`` makes the request for a command (``lean_interact.Command``).
    """

    def __init__(
        self,
        start_server: Callable[[], Any],
        command: Callable[[str, int | None], Any],
        max_uses: int = 64,
        max_memory_mb: float | None = None,
        spares: int = 0,
        import_timeout_s: float = 600.0,
    ):
        if max_uses < 1:
            raise ValueError("max_uses must be at least 1")
        if spares < 0:
            raise ValueError("spares must not be negative")
        self.start_server = start_server
        self.command = command
        self.max_uses = max_uses
        self.max_memory_mb = max_memory_mb
        self.spares = spares
        self.import_timeout_s = import_timeout_s
        self.stats_ = PoolStats()
        self._headers: dict[str, _Header] = {}
        self._lock = threading.Lock()
        self._landed = threading.Condition(self._lock)  # a background import landed, or a REPL came back
        self._closed = False

    # -- leasing ---------------------------------------------------------------------------------

    def lease(self, header: str) -> WarmRepl:
        """A warm REPL for ``header``, for one search; see the module docstring."""
        with self._lock:
            self._check_open()
            slot = self._headers.setdefault(header, _Header())
            self.stats_.leases += 1
            repl = self._take_or_wait(slot, lambda: self._take_idle(slot, most_used=True) or self._take_checker(slot))
        if repl is None:
            self._top_up(header)  # the checker imports beside this REPL, not after it
            repl = self._import(header)
        repl.uses += 1
        if repl.uses >= self.max_uses:
            with self._lock:
                repl.retiring = True
                slot.retiring += 1
        self._top_up(header)
        return repl

    def give_back(self, repl: WarmRepl) -> None:
        """The search on ``repl`` is over; see the module docstring."""
        with self._lock:
            slot = self._headers.get(repl.header)
            if repl.retiring and slot is not None:
                repl.retiring = False
                slot.retiring -= 1
            if self._closed or slot is None:
                repl.kill()
                return
            if not repl.alive():
                self.stats_.drops += 1
                repl.kill()
            elif repl.uses >= self.max_uses or self._over_memory(repl):
                self.stats_.recycles += 1
                repl.kill()
            else:
                slot.idle.append(repl)
                self._landed.notify_all()
        self._top_up(repl.header)

    def elaborate(self, repl: WarmRepl, command: str, timeout: float | None) -> tuple[Any, list[tuple[str, int]]]:
        """``command`` on ``repl``'s header environment: (the response, [(goal, proof state)]
        of each ``sorry`` that has a proof state). Raises what the server raises."""
        response = repl.run(self.command(command, repl.env), timeout)
        sorries = getattr(response, "sorries", None) or []
        return response, [(s.goal, s.proof_state) for s in sorries if s.proof_state is not None]

    def check(self, header: str, command: str, timeout: float | None) -> Any:
        """``command`` on the header environment of ``header``'s checker REPL. Checks of one
        header take turns (a check is one short command; a second checker would cost an
        import); a dead checker is replaced and the check tried once more."""
        with self._lock:
            self._check_open()
            self.stats_.checks += 1
            slot = self._headers.setdefault(header, _Header())
        with slot.checking:
            for attempt in range(2):
                with self._lock:
                    checker = self._take_or_wait(slot, lambda: self._live_checker(slot))
                if checker is None:
                    checker = self._import(header)
                    with self._lock:
                        slot.checker = checker
                self._top_up(header)
                try:
                    response = checker.run(self.command(command, checker.env), timeout)
                except Exception:
                    with self._lock:
                        if slot.checker is checker:
                            slot.checker = None
                        self.stats_.drops += 1
                    checker.kill()
                    if attempt == 1:
                        raise
                    continue
                if self._over_memory(checker):
                    with self._lock:
                        if slot.checker is checker:
                            slot.checker = None
                        self.stats_.recycles += 1
                    checker.kill()
                    self._top_up(header)
                return response
        raise AssertionError("unreachable")

    # -- the processes ---------------------------------------------------------------------------

    def _take_or_wait(self, slot: _Header, take: Callable[[], WarmRepl | None]) -> WarmRepl | None:
        """``take()`` until it gives a REPL, waiting while an import under way for ``slot``
        may land (at most ``import_timeout_s``); None when none is under way. Under the lock."""
        deadline = time.monotonic() + self.import_timeout_s
        while True:
            self._check_open()
            repl = take()
            if repl is not None or slot.starting == 0 or time.monotonic() > deadline:
                return repl
            self._landed.wait(timeout=max(0.0, deadline - time.monotonic()))

    def _live_checker(self, slot: _Header) -> WarmRepl | None:
        """``slot``'s checker, a dead one dropped and a missing one taken from the idle REPLs
        (the freshest); under the lock."""
        if slot.checker is not None and not slot.checker.alive():
            self.stats_.drops += 1
            slot.checker.kill()
            slot.checker = None
        if slot.checker is None:
            slot.checker = self._take_idle(slot, most_used=False)
        return slot.checker

    def _take_idle(self, slot: _Header, most_used: bool) -> WarmRepl | None:
        """An idle live REPL out of ``slot`` (dead ones dropped), or None; under the lock.
        Searches take the most used first, so fresh ones stay spares."""
        while slot.idle:
            pick = max if most_used else min
            candidate = pick(slot.idle, key=lambda r: r.uses)
            slot.idle.remove(candidate)
            if candidate.alive():
                return candidate
            self.stats_.drops += 1
            candidate.kill()
        return None

    def _take_checker(self, slot: _Header) -> WarmRepl | None:
        """The checker, lent to a search that found no idle REPL, when it is alive and no
        check runs on it (its replacement then imports in the background); under the lock."""
        checker = slot.checker
        if checker is None or not slot.checking.acquire(blocking=False):
            return None
        try:
            if slot.checker is not checker or not checker.alive():
                return None
            slot.checker = None
            self.stats_.checker_moves += 1
            return checker
        finally:
            slot.checking.release()

    def _import(self, header: str, background: bool = False) -> WarmRepl:
        """Start a REPL and import ``header`` in it (EnvInitError when Lean refuses it)."""
        started = time.monotonic()
        server = self.start_server()
        env = None
        try:
            if header.strip():
                response = server.run(self.command(header.rstrip() + "\n", None), timeout=self.import_timeout_s)
                problem = _refusal(response)
                if problem is not None:
                    raise EnvInitError(f"Lean rejected the header: {problem}")
                env = response.env
        except BaseException:
            try:
                server.kill()
            except Exception:
                pass
            raise
        with self._lock:
            slot = self._headers.get(header)
            if slot is not None:
                slot.failing = False
            self.stats_.imports += bool(header.strip())
            if background:
                self.stats_.background_imports += bool(header.strip())
            else:
                self.stats_.import_s += time.monotonic() - started
        return WarmRepl(server, header, env)

    def _over_memory(self, repl: WarmRepl) -> bool:
        return self.max_memory_mb is not None and repl.memory_mb() > self.max_memory_mb

    def _top_up(self, header: str) -> None:
        """Import in the background what ``header`` lacks: a checker, ``spares`` idle REPLs,
        and a replacement for each REPL on its last use (counting those under way)."""
        with self._lock:
            slot = self._headers.get(header)
            if self._closed or slot is None or slot.failing:
                return
            have = (slot.checker is not None) + len(slot.idle) + slot.starting
            wanted = max(0, 1 + self.spares + slot.retiring - have)
            slot.starting += wanted
        for _ in range(wanted):
            threading.Thread(target=self._start_spare, args=(header,), name="repl-spare", daemon=True).start()

    def _start_spare(self, header: str) -> None:
        try:
            repl = self._import(header, background=True)
        except BaseException:
            repl = None  # the search that needs one will start it and report why
        with self._lock:
            slot = self._headers.get(header)
            if slot is not None:
                slot.starting -= 1
                slot.failing = repl is None
            if repl is not None:
                if self._closed or slot is None:
                    repl.kill()
                elif slot.checker is None:
                    slot.checker = repl
                else:
                    slot.idle.append(repl)
            self._landed.notify_all()

    def _check_open(self) -> None:
        if self._closed:
            raise EnvInitError("the REPL pool is closed")

    def stats(self) -> dict:
        with self._lock:
            return self.stats_.as_dict()

    def settle(self, timeout_s: float | None = None) -> bool:
        """Wait until no import is under way in the background (True), or ``timeout_s`` has
        passed (False): before reading ``stats`` as a whole."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._lock:
            while any(slot.starting for slot in self._headers.values()):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._landed.wait(timeout=left)
        return True

    def processes(self) -> int:
        """Warm REPLs held now (idle and checkers; not those lent out)."""
        with self._lock:
            return sum(len(s.idle) + (s.checker is not None) for s in self._headers.values())

    def close(self) -> None:
        """Kill every process the pool holds; a REPL lent out dies when it is given back."""
        with self._lock:
            self._closed = True
            held = [r for s in self._headers.values() for r in [*s.idle, s.checker] if r is not None]
            self._headers.clear()
            self._landed.notify_all()
        for repl in held:
            repl.kill()


def _refusal(response: Any) -> str | None:
    """Why a command's response is a refusal (a REPL error or a Lean error), or None."""
    if hasattr(response, "message") and not hasattr(response, "env"):
        return str(response.message)
    errors = [m.data for m in getattr(response, "messages", []) or [] if m.severity == "error"]
    return errors[0] if errors else None


_pools: dict[tuple, ReplPool] = {}
_pools_lock = threading.Lock()


def pool_for(key: tuple, make: Callable[[], ReplPool]) -> ReplPool:
    """This process's pool for ``key`` (a configuration), made on first use."""
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None or pool._closed:
            pool = _pools[key] = make()
        return pool


def close_pools() -> None:
    """Kill every warm REPL of this process (registered to run at exit)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


atexit.register(close_pools)
