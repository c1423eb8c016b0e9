"""The Lean REPL backend, through ``lean-interact``: no tracing, any typed-in statement.

``ReplEnv.start`` sends ``header`` (imports, options, opens) and then
``statement + " by sorry"`` to a Lean REPL process running in the prover's Lean project,
and takes the proof state of that ``sorry`` as the initial state; tactics then run in
tactic mode (``ProofStep(proof_state=..., tactic=...)``). The Lean process runs under a
hard memory limit (``EnvConfig.memory_limit_mb``). After a timeout or a crash the REPL is
restarted and the tactic path to the state replayed, as in the LeanDojo backend: a
timeout is then reported as ``EnvTimeoutError``, a crash is retried up to
``max_crash_retries`` times, then raised as ``EnvCrashError``.

``check_proof`` compiles ``header + statement + " by" + tactics`` as one fresh command
(its own imports, no shared environment) and accepts it only with no error and no
``sorry``.

    env = ReplEnv(lean_project="lean_project", tactic_timeout_s=60, memory_limit_mb=16000)
    state = env.start(Theorem("t", statement="theorem t (x : ℝ) : x + 0 = x :=", header="import Mathlib"))
    env.run_tactic(state, "simp")  # ProofFinished(...)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from search import (
    EnvInitError,
    LeanError,
    Outcome,
    ProofFinished,
    ProofGivenUp,
    TacticState,
    Theorem,
    proof_text,
)

from prover.envs.lean import LeanConfig, import_lean_interact, require_lake
from prover.envs.session import RestartingSession
from prover.errors import MissingDependencyError

COMMAND_TIMEOUT_S = 900.0  # importing Mathlib the first time can take minutes


def default_server_factory(lean_project: str | Path, memory_limit_mb: int | None) -> Callable[[], Any]:
    """A function that starts a ``lean_interact.LeanServer`` in ``lean_project``.

    The REPL configuration (which fetches and builds the REPL for the project's Lean
    version on first use) is made once, on the first call.
    """
    li = import_lean_interact()
    configs: list[Any] = []

    def start_server() -> Any:
        if not configs:
            try:
                project = li.LocalProject(directory=str(lean_project), auto_build=False)
                configs.append(li.LeanREPLConfig(project=project, memory_hard_limit_mb=memory_limit_mb))
            except Exception as exc:
                raise EnvInitError(f"the Lean REPL could not be set up for {lean_project}: {exc}") from None
        return li.LeanServer(configs[0])

    return start_server


def _errors(response: Any) -> list[str]:
    return [m.data for m in getattr(response, "messages", []) if m.severity == "error"]


class ReplEnv(RestartingSession):
    """The Lean REPL as a ``ProofEnv``; see the module docstring.

    ``server_factory()`` must return an object with ``run(request, timeout=...)`` (answering
    ``lean_interact`` responses) and ``kill()``; tests pass a fake.
    """

    def __init__(
        self,
        lean_project: str | Path = "lean_project",
        tactic_timeout_s: float = 60.0,
        memory_limit_mb: int | None = 16_000,
        max_crash_retries: int = 2,
        server_factory: Callable[[], Any] | None = None,
        command_timeout_s: float = COMMAND_TIMEOUT_S,
    ):
        super().__init__(tactic_timeout_s, max_crash_retries)
        self._li = import_lean_interact()
        self.command_timeout_s = command_timeout_s
        self.server_factory = server_factory or default_server_factory(lean_project, memory_limit_mb)
        self._server: Any = None
        self._theorem: Theorem | None = None

    # -- the ProofEnv protocol -------------------------------------------------------------

    def start(self, theorem: Theorem) -> TacticState:
        """Start a REPL on ``theorem``'s statement; EnvInitError when Lean rejects it."""
        if not theorem.statement:
            raise EnvInitError(f"'{theorem.name}' has no statement for the Lean REPL")
        self.close()
        self._theorem = theorem
        pp, proof_state = self._open_session()
        self._begin(pp, proof_state)
        return TacticState(pp)

    def check_proof(self, theorem: Theorem, tactics: Sequence[str]) -> str | None:
        """Compile the whole proof as one fresh command: None when Lean accepts it with no
        error and no ``sorry``, else why not."""
        if not tactics:
            return "the proof has no tactics"
        if not theorem.statement:
            return f"'{theorem.name}' has no statement to check the proof against"
        header = theorem.header.rstrip() + "\n\n" if theorem.header.strip() else ""
        source = f"{header}{proof_text(theorem.statement, tactics)}\n"
        try:
            if self._server is None:
                self._server = self.server_factory()
            response = self._server.run(self._li.Command(cmd=source), timeout=self.command_timeout_s)
        except Exception as exc:
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
        return "the proof uses `sorry`" if uses_sorry else None

    def close(self) -> None:
        """Kill the REPL process; safe to call twice."""
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

    def _command(self, cmd: str, env: int | None) -> Any:
        request = self._li.Command(cmd=cmd, env=env) if env is not None else self._li.Command(cmd=cmd)
        response = self._server.run(request, timeout=self.command_timeout_s)
        if isinstance(response, self._li.interface.LeanError):
            raise EnvInitError(f"the Lean REPL refused the command: {response.message}")
        errors = _errors(response)
        if errors:
            raise EnvInitError(f"Lean rejected the statement: {errors[0]}")
        return response

    def _open_session(self) -> tuple[str, int]:
        """Start a REPL and elaborate the theorem with ``by sorry``; returns (pp, proof state)."""
        theorem = self._theorem
        assert theorem is not None
        try:
            self._server = self.server_factory()
            env = None
            if theorem.header.strip():
                env = self._command(theorem.header.rstrip() + "\n", None).env
            response = self._command(theorem.statement.rstrip() + " by sorry", env)
        except (EnvInitError, MissingDependencyError):
            self._kill()
            raise
        except Exception as exc:  # the process would not start, timed out, died
            self._kill()
            raise EnvInitError(f"the Lean REPL could not start the theorem: {type(exc).__name__}: {exc}") from None
        sorries = [s for s in response.sorries if s.proof_state is not None]
        if len(sorries) != 1:
            self._kill()
            raise EnvInitError(
                f"the statement of '{theorem.name}' gave {len(sorries)} proof states instead of one; "
                "it must end with ':=' and have no other `sorry`"
            )
        return sorries[0].goal, sorries[0].proof_state

    def _session_is_open(self) -> bool:
        return self._server is not None

    def _timeout_errors(self) -> tuple[type[BaseException], ...]:
        return (TimeoutError,)

    def _step(self, handle: int, tactic: str) -> tuple[Outcome, Any]:
        """One proof step at proof state ``handle``; a new state's handle is its id."""
        request = self._li.ProofStep(proof_state=handle, tactic=tactic)
        response = self._server.run(request, timeout=self.tactic_timeout_s)
        outcome = self._map(response)
        return outcome, response.proof_state if isinstance(outcome, TacticState) else None

    def _map(self, response: Any) -> Outcome:
        """A REPL answer to a proof step -> the engine's outcome."""
        if isinstance(response, self._li.interface.LeanError):
            return LeanError(response.message)
        errors = _errors(response)
        if errors:
            return LeanError("\n".join(errors))
        status = response.proof_status or ""
        if response.sorries or "sorry" in status:
            return ProofGivenUp()
        if response.goals:
            return TacticState("\n\n".join(response.goals))
        if status == "Completed":
            return ProofFinished(response.proof_state)
        # No goals left, yet the REPL did not verify the proof (e.g. the kernel rejected it).
        return LeanError(f"the goals are closed but the proof does not check: {status}")


@dataclass(frozen=True)
class ReplConfig(LeanConfig):
    pass


def build(config: ReplConfig) -> ReplEnv:
    """A ``ReplEnv`` (needs lean-interact and ``lake``)."""
    require_lake()
    return ReplEnv(
        lean_project=config.lean_project,
        tactic_timeout_s=config.tactic_timeout_s,
        memory_limit_mb=config.memory_limit_mb,
    )
