"""The Lean REPL backend, through ``lean-interact``: no tracing, any typed-in statement.

Lean processes are kept warm (``prover.envs.repl_pool``, one pool per worker process):
a REPL imports a theorem's ``header`` (imports, options, opens) once, as one command, and
keeps its environment H. ``ReplEnv.start`` then elaborates ``statement + " by sorry"`` as
a command on H and takes the proof state of that ``sorry`` as the initial state; tactics
run in tactic mode (``ProofStep(proof_state=..., tactic=...)``). When the theorem ends its
proof states are let go and the REPL serves the next theorem with the same header, until
``repl_max_uses`` theorems or ``repl_max_memory_mb`` of resident memory; it runs under a
hard memory limit (``memory_limit_mb``).

A slow tactic is stopped by Lean itself: the REPL runs each proof step under Lean's
heartbeat limit (``maxHeartbeats``; the REPL that lean-interact builds for Lean v4.20 gives
every proof step Lean's default, 200000, whatever a ``set_option`` says: see
leanprover-community/repl#69), answers ``(deterministic) timeout ..., maximum number of
heartbeats ...`` as an error, and goes on; the search records a timed-out edge
(``EnvTimeoutError``) and nothing restarts. ``tactic_timeout_s`` is the wall-clock
backstop for a step that the heartbeats do not stop in time: lean-interact kills the
process then. After such a kill or a crash (also a memory kill) the search moves to a warm
REPL of the pool (a spare, or the checker, whose replacement imports in the background)
and the tactic path to the state is replayed there (``prover.envs.session``): the timeout
is then reported as ``EnvTimeoutError``, a crash is retried up to ``max_crash_retries``
times, then raised as ``EnvCrashError``. The search's REPL never imports again.

``check_proof`` compiles ``statement + " by" + tactics`` followed by ``#print axioms
NAME`` as one command on H in the pool's checker REPL (a separate warm process, whose H
holds only the header), and accepts the proof only with no error, no ``sorry`` and no
axiom beyond Lean's three standard ones (``propext``, ``Classical.choice``,
``Quot.sound``): ``native_decide`` and its kin rest on ``Lean.ofReduceBool``/
``Lean.trustCompiler``, which trust the compiler, not the kernel.

With ``repl_pool`` off (``--no-repl-pool``, kept to measure against) every theorem and
every restart starts a process that imports the header, and the re-check imports it
again in the search's process, as the backend did before the pool.

Which REPL runs: ``repl_path``, a built checkout of the Lean REPL, or by default the one
lean-interact fetches and builds for the project's Lean version (``prover setup-lean``
does that ahead of time; see ``prover.envs.lean.prepare_repl``). Each process makes that
configuration once, and every REPL it starts reuses it.

    env = ReplEnv(lean_project="lean_project", tactic_timeout_s=60, memory_limit_mb=16000)
    state = env.start(Theorem("t", statement="theorem t (x : ℝ) : x + 0 = x :=", header="import Mathlib"))
    env.run_tactic(state, "simp")  # ProofFinished(...)
"""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from search import (
    EnvInitError,
    EnvTimeoutError,
    LeanError,
    Outcome,
    ProofFinished,
    ProofGivenUp,
    TacticState,
    Theorem,
    proof_text,
)

from prover.envs.lean import DEFAULT_LEAN_PROJECT, LeanConfig, import_lean_interact, prepare_repl, require_lake
from prover.envs.repl_pool import ReplPool, WarmRepl, pool_for
from prover.envs.sandbox import Limits, confining_lake
from prover.envs.session import RestartingSession
from prover.errors import MissingDependencyError, ProverError
from prover.settings import setting

DEFAULT_STARTUP_TIMEOUT_S = 600.0  # importing Mathlib the first time can take minutes (--startup-timeout)
# The axioms a kernel-checked Mathlib proof may use; anything else (Lean.ofReduceBool from
# native_decide, Lean.trustCompiler, sorryAx, a user's `axiom`) fails the re-check.
STANDARD_AXIOMS = frozenset({"propext", "Classical.choice", "Quot.sound"})
# `theorem NAME` / `lemma NAME` (after attributes and modifiers), or a nameless `example`.
DECLARATION = re.compile(r"(?:^|(?<=\s))(theorem|lemma|example)(?=[\s({\[⦃:])\s*(«[^»]+»|[^\s({\[⦃:]+)?")
# Lean's words when a step passes maxHeartbeats (also synthInstance.maxHeartbeats's):
# "(deterministic) timeout at `whnf`, maximum number of heartbeats (200000) has been reached".
HEARTBEAT_LIMIT = "maximum number of heartbeats"
PRINTED_AXIOMS = re.compile(
    r"^'(?P<name>.+)' (?:depends on axioms: \[(?P<axioms>.*)\]|does not depend on any axioms)$", re.S
)

_configs: dict[tuple, Any] = {}  # (project, repl, lake, memory) -> LeanREPLConfig, one per process
_configs_lock = threading.Lock()


def repl_config(lean_project: str | Path, repl_path: str | None, lake_path: str, memory_limit_mb: int | None) -> Any:
    """lean-interact's ``LeanREPLConfig`` for these settings, made once per process.

    Making one runs ``lake`` (and, for lean-interact's own REPL, git), so processes that
    start many REPLs share it, as lean-interact advises.
    """
    key = (str(Path(lean_project).resolve()), repl_path, lake_path, memory_limit_mb)
    with _configs_lock:
        if key not in _configs:
            try:
                _configs[key] = prepare_repl(lean_project, repl_path, lake_path, memory_limit_mb, verbose=False)
            except (ProverError, MissingDependencyError) as exc:
                raise EnvInitError(str(exc)) from None
            except Exception as exc:
                raise EnvInitError(
                    f"the Lean REPL could not be set up for {lean_project} ({type(exc).__name__}: {exc}); "
                    "run `prover setup-lean`"
                ) from None
        return _configs[key]


def default_server_factory(
    lean_project: str | Path,
    memory_limit_mb: int | None,
    repl_path: str | None = None,
    lake_path: str = "lake",
    sandbox: str = "auto",
    max_lean_processes: int = Limits.processes,
) -> Callable[[], Any]:
    """A function that starts a ``lean_interact.LeanServer`` in ``lean_project``, through a
    ``lake`` that confines it as ``sandbox`` says (``prover.envs.sandbox``)."""
    li = import_lean_interact()
    lake_path = confining_lake(lake_path, sandbox, Limits(memory_limit_mb, processes=max_lean_processes))

    def start_server() -> Any:
        return li.LeanServer(repl_config(lean_project, repl_path, lake_path, memory_limit_mb))

    return start_server


def _errors(response: Any) -> list[str]:
    return [m.data for m in getattr(response, "messages", []) if m.severity == "error"]


def declared_name(statement: str) -> tuple[str, str]:
    """``(name, statement)``: the name ``statement`` declares, for ``#print axioms``; a
    nameless ``example`` is renamed to a ``theorem`` so it has one."""
    match = DECLARATION.search(statement)
    if match is None:
        raise ValueError("the statement declares no theorem")
    if match.group(1) != "example" and match.group(2):
        return match.group(2), statement
    name = "prover_checked_" + hashlib.blake2b(statement.encode(), digest_size=4).hexdigest()
    return name, statement[: match.start(1)] + f"theorem {name}" + statement[match.end(1) :]


def axioms_problem(response: Any, line: int) -> str | None:
    """What is wrong with the ``#print axioms`` answer at ``line`` of a command: an axiom
    beyond the standard three, or no answer at all; None when all is well."""
    for message in getattr(response, "messages", []):
        found = PRINTED_AXIOMS.match(message.data.strip())
        if found is None or message.severity != "info" or message.start_pos.line != line:
            continue
        axioms = [a.strip() for a in (found.group("axioms") or "").split(",") if a.strip()]
        extra = [a for a in axioms if a not in STANDARD_AXIOMS]
        if not extra:
            return None
        return f"the proof depends on the axiom{'s' if len(extra) > 1 else ''} {', '.join(extra)}"
    return "Lean did not answer `#print axioms` after the proof, so its axioms are unknown"


class ReplEnv(RestartingSession):
    """The Lean REPL as a ``ProofEnv``; see the module docstring.

    With a ``pool`` (``prover.envs.repl_pool.ReplPool``, what ``build`` gives) each theorem
    is a command on a warm REPL's header environment and proofs are re-checked in the
    pool's checker REPL. Without one, ``server_factory()`` starts a process per theorem
    (and per restart), which imports the header, and the re-check imports it again in that
    process: the old way, kept for comparison (``--no-repl-pool``). ``server_factory()``
    must return an object with ``run(request, timeout=...)`` (answering ``lean_interact``
    responses) and ``kill()``; by default a ``lean_interact.LeanServer``.
    """

    session_name = "Lean REPL"

    def __init__(
        self,
        lean_project: str | Path = DEFAULT_LEAN_PROJECT,
        tactic_timeout_s: float = 60.0,
        memory_limit_mb: int | None = 16_000,
        max_crash_retries: int = 2,
        server_factory: Callable[[], Any] | None = None,
        startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S,
        repl_path: str | None = None,
        lake_path: str = "lake",
        sandbox: str = "auto",
        max_lean_processes: int = 1024,
        pool: ReplPool | None = None,
    ):
        super().__init__(tactic_timeout_s, max_crash_retries)
        self._li = import_lean_interact()
        self.startup_timeout_s = startup_timeout_s
        self.server_factory = server_factory or default_server_factory(
            lean_project, memory_limit_mb, repl_path, lake_path, sandbox, max_lean_processes
        )
        self.pool = pool
        self._server: Any = None  # without a pool: this theorem's process
        self._repl: WarmRepl | None = None  # with a pool: the warm REPL lent for this theorem
        self._theorem: Theorem | None = None
        self.num_heartbeat_stops = 0  # tactics Lean stopped at its heartbeat limit (no restart)

    # -- the ProofEnv protocol -------------------------------------------------------------

    def start(self, theorem: Theorem) -> TacticState:
        """Elaborate ``theorem``'s statement with ``by sorry``; EnvInitError when Lean rejects it."""
        if not theorem.statement:
            raise EnvInitError(f"'{theorem.name}' has no statement for the Lean REPL")
        self.close()
        self._theorem = theorem
        pp, proof_state = self._open_session()
        self._begin(pp, proof_state)
        return TacticState(pp)

    def check_proof(self, theorem: Theorem, tactics: Sequence[str]) -> str | None:
        """Compile the whole proof as one command, then ``#print axioms`` of it: None when
        Lean accepts it with no error, no ``sorry`` and only the standard axioms, else why
        not. With a pool the command runs on the header environment of the pool's checker
        REPL (no import); without one, it carries the header (a fresh import)."""
        if not tactics:
            return "the proof has no tactics"
        if not theorem.statement:
            return f"'{theorem.name}' has no statement to check the proof against"
        if theorem.sorry_at:  # a hole of a file: the file with the proof in its place
            from prover.envs.filecheck import check_hole_proof

            return check_hole_proof(lambda body: self.elaborate(theorem.header, body), theorem, tactics)
        try:
            name, statement = declared_name(theorem.statement)
        except ValueError as exc:
            return f"{exc}, so its axioms cannot be checked"
        header = theorem.header.rstrip() + "\n\n" if theorem.header.strip() and self.pool is None else ""
        body = f"{header}{proof_text(statement, tactics)}\n\n"
        axioms_line = body.count("\n") + 1
        source = f"{body}#print axioms {name}\n"
        try:
            if self.pool is not None:
                response = self.pool.check(theorem.header, source, self.startup_timeout_s)
            else:
                if self._server is None:
                    self._server = self.server_factory()
                response = self._server.run(self._li.Command(cmd=source), timeout=self.startup_timeout_s)
        except Exception as exc:
            if self.pool is None:
                self._kill()
            return f"the whole-file check could not run: {type(exc).__name__}: {exc}"
        if isinstance(response, self._li.interface.LeanError):
            return f"the REPL refused the file: {response.message}"
        errors = _errors(response)
        if errors:
            return f"Lean rejected the proof: {errors[0]}"
        uses_sorry = response.sorries or any(
            "declaration uses 'sorry'" in m.data or "declaration uses `sorry`" in m.data for m in response.messages
        )
        if uses_sorry:
            return "the proof uses `sorry`"
        return axioms_problem(response, axioms_line)

    def elaborate(self, header: str, body: str) -> Any:
        """Lean's answer (lean-interact's ``CommandResponse``, errors included) to ``body``
        elaborated after ``header`` (the imports) in this environment's REPL; an
        ``EnvInitError`` when the REPL cannot answer. With a pool, a command on the header
        environment of the pool's checker REPL (no import)."""
        try:
            if self.pool is not None:
                response = self.pool.check(header, body, self.startup_timeout_s)
                if isinstance(response, self._li.interface.LeanError):
                    raise EnvInitError(f"the Lean REPL refused the file: {response.message}")
                return response
            if self._server is None:
                self._server = self.server_factory()
            env = None
            if header.strip():
                env = self._command(header.rstrip() + "\n", None).env
            request = self._li.Command(cmd=body, env=env) if env is not None else self._li.Command(cmd=body)
            response = self._server.run(request, timeout=self.startup_timeout_s)
        except (EnvInitError, MissingDependencyError):
            if self.pool is None:
                self._kill()
            raise
        except Exception as exc:
            if self.pool is None:
                self._kill()
            raise EnvInitError(f"the Lean REPL could not elaborate the file: {type(exc).__name__}: {exc}") from None
        if isinstance(response, self._li.interface.LeanError):
            raise EnvInitError(f"the Lean REPL refused the file: {response.message}")
        return response

    def close(self) -> None:
        """Let this theorem's REPL go (back to the pool, or killed); safe to call twice."""
        self._kill()
        self._live = {}

    # -- sessions ---------------------------------------------------------------------------

    def _kill(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            try:
                server.kill()
            except Exception:
                pass  # already dead
        repl, self._repl = self._repl, None
        if repl is not None and self.pool is not None:
            self.pool.give_back(repl)  # a dead one is dropped there

    def _command(self, cmd: str, env: int | None) -> Any:
        request = self._li.Command(cmd=cmd, env=env) if env is not None else self._li.Command(cmd=cmd)
        response = self._server.run(request, timeout=self.startup_timeout_s)
        return self._accepted(response)

    def _accepted(self, response: Any) -> Any:
        if isinstance(response, self._li.interface.LeanError):
            raise EnvInitError(f"the Lean REPL refused the command: {response.message}")
        errors = _errors(response)
        if errors:
            raise EnvInitError(f"Lean rejected the statement: {errors[0]}")
        return response

    def _open_session(self) -> tuple[str, int]:
        """A REPL with the theorem elaborated with ``by sorry``; returns (pp, proof state)."""
        theorem = self._theorem
        assert theorem is not None
        try:
            if self.pool is not None:
                if theorem.sorry_at:  # a hole of a file: elaborate the file's body on H, start at that `sorry`
                    from prover.envs.filecheck import hole_start

                    return hole_start(self._elaborate_on_lease(theorem, theorem.statement)[0], theorem)
                response, states = self._elaborate_on_lease(theorem, theorem.statement.rstrip() + " by sorry")
            else:
                self._server = self.server_factory()
                env = None
                if theorem.header.strip():
                    env = self._command(theorem.header.rstrip() + "\n", None).env
                if theorem.sorry_at:  # a hole of a file: elaborate the file, start at that `sorry`
                    from prover.envs.filecheck import hole_start

                    return hole_start(self._command(theorem.statement, env), theorem)
                response = self._command(theorem.statement.rstrip() + " by sorry", env)
                states = [(s.goal, s.proof_state) for s in response.sorries if s.proof_state is not None]
        except (EnvInitError, MissingDependencyError):
            self._kill()
            raise
        except Exception as exc:  # the process would not start, timed out, died
            self._kill()
            raise EnvInitError(f"the Lean REPL could not start the theorem: {type(exc).__name__}: {exc}") from None
        if len(states) != 1:
            self._kill()
            raise EnvInitError(
                f"the statement of '{theorem.name}' gave {len(states)} proof states instead of one; "
                "it must end with ':=' and have no other `sorry`"
            )
        return states[0]

    def _elaborate_on_lease(self, theorem: Theorem, command: str) -> tuple[Any, list[tuple[str, int]]]:
        """``command`` (the statement with ``by sorry``, or a file's body) on a leased REPL's
        header environment; a REPL that dies meanwhile (memory, a crash) is dropped and
        another one tried."""
        for attempt in range(1 + self.max_crash_retries):
            self._repl = self.pool.lease(theorem.header)
            try:
                response, states = self.pool.elaborate(self._repl, command, self.startup_timeout_s)
            except (ConnectionAbortedError, ChildProcessError, BrokenPipeError):
                self._kill()
                if attempt == self.max_crash_retries:
                    raise
                continue
            self._accepted(response)
            return response, states
        raise AssertionError("unreachable")

    def _session_is_open(self) -> bool:
        return self._server is not None or self._repl is not None

    def _timeout_errors(self) -> tuple[type[BaseException], ...]:
        return (TimeoutError,)

    def _step(self, handle: int, tactic: str) -> tuple[Outcome, Any]:
        """One proof step at proof state ``handle``; a new state's handle is its id."""
        request = self._li.ProofStep(proof_state=handle, tactic=tactic)
        process = self._repl if self._repl is not None else self._server
        response = process.run(request, timeout=self.tactic_timeout_s)
        outcome = self._map(response)
        if isinstance(outcome, LeanError) and HEARTBEAT_LIMIT in outcome.error:
            self.num_heartbeat_stops += 1
            raise EnvTimeoutError(f"Lean stopped `{tactic}` at its heartbeat limit; the {self.session_name} goes on")
        return outcome, response.proof_state if isinstance(outcome, TacticState) else None

    def _map(self, response: Any) -> Outcome:
        """A REPL answer to a proof step -> the engine's outcome.

        The REPL's ``proofStatus`` judges the whole proof only once no goal is left
        (``Completed``, ``Incomplete: contains sorry``, ``Error: ...``); while goals remain
        it says ``Incomplete: open goals remain``. A step that leaves goals is a state even
        when its ``sorries`` list goals that a ``sorry`` inside it closed: the proof then
        carries that ``sorry``, and the step that closes the last goal is given up.
        """
        if isinstance(response, self._li.interface.LeanError):
            return LeanError(response.message)
        errors = _errors(response)
        if errors:
            return LeanError("\n".join(errors))
        if response.goals:
            return TacticState("\n\n".join(response.goals))
        status = response.proof_status or ""
        if status == "Completed":
            return ProofFinished(response.proof_state)
        if "sorry" in status:
            return ProofGivenUp()
        # No goals left, yet the REPL did not verify the proof (e.g. the kernel rejected it).
        return LeanError(f"the goals are closed but the proof does not check: {status}")


@dataclass(frozen=True)
class ReplConfig(LeanConfig):
    """Settings of the Lean REPL backend."""

    repl_path: str | None = setting(
        None,
        "A built Lean REPL: a checkout of the Lean REPL for the project's Lean version, with "
        ".lake/build/bin/repl [default: the REPL lean-interact fetches and builds, see `prover setup-lean`].",
        metavar="DIR",
    )
    lake_path: str = setting("lake", "The `lake` executable that builds and runs the Lean REPL.", metavar="PATH")
    repl_pool: bool = setting(
        True,
        "Keep Lean REPLs warm across theorems: each imports its header once, theorems, re-checks and restarts "
        "are commands on that environment (--no-repl-pool: a fresh process, and import, per theorem).",
    )
    repl_max_uses: int = setting(64, "Theorems a warm Lean REPL serves before it is replaced.", min=1)
    repl_max_memory_mb: int | None = setting(
        None,
        "Resident memory above which a warm Lean REPL is replaced once its theorem ends "
        "[default: 80% of --memory-limit].",
        min=1,
    )
    repl_spares: int = setting(
        0,
        "Warm Lean REPLs kept imported in reserve per header, besides the checker (which a search whose REPL "
        "died moves to while a new checker imports in the background) and the replacement of a REPL on its last "
        "use: each holds a copy of the header's environment in memory.",
        min=0,
    )


def make_pool(config: ReplConfig) -> ReplPool:
    """This process's pool for ``config`` (one per worker process and configuration)."""
    li = import_lean_interact()
    start = default_server_factory(
        config.lean_project,
        config.memory_limit_mb,
        config.repl_path,
        config.lake_path,
        config.sandbox,
        config.max_lean_processes,
    )
    max_memory = config.repl_max_memory_mb
    if max_memory is None and config.memory_limit_mb is not None:
        max_memory = int(0.8 * config.memory_limit_mb)
    key = (
        str(Path(config.lean_project).resolve()),
        config.repl_path,
        config.lake_path,
        config.memory_limit_mb,
        config.repl_max_uses,
        max_memory,
        config.repl_spares,
        config.startup_timeout_s,
        config.sandbox,
        config.max_lean_processes,
    )

    def command(cmd: str, env: int | None) -> Any:
        return li.Command(cmd=cmd, env=env) if env is not None else li.Command(cmd=cmd)

    return pool_for(
        key,
        lambda: ReplPool(
            start,
            command,
            max_uses=config.repl_max_uses,
            max_memory_mb=max_memory,
            spares=config.repl_spares,
            import_timeout_s=config.startup_timeout_s,
        ),
    )


def build(config: ReplConfig) -> ReplEnv:
    """A ``ReplEnv`` (needs lean-interact and ``lake``)."""
    import_lean_interact()
    if config.lake_path == "lake":
        require_lake()  # the same sentence as --env dojo's
    elif shutil.which(config.lake_path) is None:
        raise MissingDependencyError(
            f"the `lake` executable {config.lake_path} (--lake-path) does not exist or cannot be run"
        )
    return ReplEnv(
        lean_project=config.lean_project,
        tactic_timeout_s=config.tactic_timeout_s,
        memory_limit_mb=config.memory_limit_mb,
        startup_timeout_s=config.startup_timeout_s,
        repl_path=config.repl_path,
        lake_path=config.lake_path,
        sandbox=config.sandbox,
        max_lean_processes=config.max_lean_processes,
        pool=make_pool(config) if config.repl_pool else None,
    )
