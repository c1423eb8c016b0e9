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
a resident-memory level (as kimina-lean-server's manager does), and warm spares imported
in the background so that replacing a dead REPL costs no import on the search's path.

The API (``ReplPool``, one per process and configuration through ``pool_for``):

- ``lease(header) -> WarmRepl``: a warm REPL for ``header``, lent to one search until
  ``give_back``; an idle one (a spare) if there is one, else one started now (the import
  is paid here). Leasing starts a spare in the background when none is left.
- ``elaborate(repl, command, timeout) -> (response, [(goal, proof_state), ...])``: an
  arbitrary command on the REPL's header environment and the proof states of its
  ``sorry``s (a theorem's ``statement := by sorry`` gives its root state; a user's file
  with several ``sorry``s gives one per hole). ``repl.run(request, timeout)`` then runs
  proof steps on those states.
- ``give_back(repl)``: the search is over and its proof states are let go (the REPL has no
  call that frees them; their memory goes when the process is recycled). A dead REPL
  (killed by a timeout, crashed, past its memory limit) is dropped and a spare refilled;
  a live one is recycled after ``max_uses`` leases or above ``max_memory_mb``, else idles.
- ``check(header, command, timeout)``: a command on the header environment of this
  header's checker REPL, a REPL of its own that no search uses (so a proof is checked in
  an environment that only has the header); restarted (from a spare when there is one)
  and tried once more when it dies.
- ``stats()``: imports (on the search's path and in the background), recycles, drops,
  leases; ``close()`` kills every process (also at interpreter exit).
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
    (None for an empty header); ``uses`` counts the searches it served."""

    server: Any
    header: str
    env: int | None
    uses: int = 0

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
    background_imports: int = 0  # of which in a spare's background thread
    import_s: float = 0.0  # seconds spent importing on a search's path
    recycles: int = 0  # REPLs ended after max_uses or above max_memory_mb
    drops: int = 0  # REPLs found dead (timeouts, crashes, memory kills)
    leases: int = 0
    checks: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class _Header:
    idle: list[WarmRepl] = field(default_factory=list)
    checker: WarmRepl | None = None
    starting: int = 0  # spares being imported in the background
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
        spares: int = 1,
        import_timeout_s: float = 600.0,
    ):
        if max_uses < 1:
            raise ValueError("max_uses must be at least 1")
        self.start_server = start_server
        self.command = command
        self.max_uses = max_uses
        self.max_memory_mb = max_memory_mb
        self.spares = spares
        self.import_timeout_s = import_timeout_s
        self.stats_ = PoolStats()
        self._headers: dict[str, _Header] = {}
        self._lock = threading.Lock()
        self._closed = False

    # -- leasing ---------------------------------------------------------------------------------

    def lease(self, header: str) -> WarmRepl:
        """A warm REPL for ``header``, for one search; see the module docstring."""
        with self._lock:
            self._check_open()
            slot = self._headers.setdefault(header, _Header())
            self.stats_.leases += 1
            repl = None
            while slot.idle and repl is None:  # the most used first: fresh ones stay spares
                candidate = max(slot.idle, key=lambda r: r.uses)
                slot.idle.remove(candidate)
                if candidate.alive():
                    repl = candidate
                else:
                    self.stats_.drops += 1
        if repl is None:
            repl = self._import(header)
        repl.uses += 1
        self._top_up(header)
        return repl

    def give_back(self, repl: WarmRepl) -> None:
        """The search on ``repl`` is over; see the module docstring."""
        with self._lock:
            slot = self._headers.get(repl.header)
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
        import); a dead checker is replaced by a spare, or by a REPL started now."""
        with self._lock:
            self._check_open()
            self.stats_.checks += 1
            slot = self._headers.setdefault(header, _Header())
        with slot.checking:
            for attempt in range(2):
                with self._lock:
                    self._check_open()
                    checker = slot.checker
                    if checker is not None and not checker.alive():
                        self.stats_.drops += 1
                        checker = slot.checker = None
                    took_spare = checker is None and bool(slot.idle)
                    if took_spare:
                        checker = min(slot.idle, key=lambda r: r.uses)
                        slot.idle.remove(checker)
                if checker is None:
                    checker = self._import(header)
                with self._lock:
                    slot.checker = checker
                if took_spare:  # searches keep their spare
                    self._top_up(header)
                try:
                    response = checker.run(self.command(command, checker.env), timeout)
                except Exception:
                    with self._lock:
                        slot.checker = None
                        self.stats_.drops += 1
                    checker.kill()
                    if attempt == 1:
                        raise
                    continue
                if self._over_memory(checker):
                    with self._lock:
                        slot.checker = None
                        self.stats_.recycles += 1
                    checker.kill()
                return response
        raise AssertionError("unreachable")

    # -- the processes ---------------------------------------------------------------------------

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
            self.stats_.imports += bool(header.strip())
            if background:
                self.stats_.background_imports += bool(header.strip())
            else:
                self.stats_.import_s += time.monotonic() - started
        return WarmRepl(server, header, env)

    def _over_memory(self, repl: WarmRepl) -> bool:
        return self.max_memory_mb is not None and repl.memory_mb() > self.max_memory_mb

    def _top_up(self, header: str) -> None:
        """Start spares in the background until ``spares`` idle REPLs (and those being
        started) are there for ``header``."""
        with self._lock:
            slot = self._headers.get(header)
            if self._closed or slot is None:
                return
            wanted = self.spares - len(slot.idle) - slot.starting
            slot.starting += max(0, wanted)
        for _ in range(max(0, wanted)):
            threading.Thread(target=self._start_spare, args=(header,), name="repl-spare", daemon=True).start()

    def _start_spare(self, header: str) -> None:
        try:
            repl = self._import(header, background=True)
        except BaseException:
            repl = None  # the search that needs it will start one and report why
        with self._lock:
            slot = self._headers.get(header)
            if slot is not None:
                slot.starting -= 1
            if repl is None:
                return
            if self._closed or slot is None:
                repl.kill()
            else:
                slot.idle.append(repl)

    def _check_open(self) -> None:
        if self._closed:
            raise EnvInitError("the REPL pool is closed")

    def stats(self) -> dict:
        with self._lock:
            return self.stats_.as_dict()

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
