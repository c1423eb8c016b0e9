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

from pathlib import Path
from typing import Any, Callable, Sequence

from search import (
    EnvCrashError,
    EnvInitError,
    EnvTimeoutError,
    LeanError,
    Outcome,
    ProofFinished,
    ProofGivenUp,
    TacticState,
    Theorem,
)

from prover.errors import MissingDependencyError
from prover.envs.dojo import proof_source, require_lake

COMMAND_TIMEOUT_S = 900.0  # importing Mathlib the first time can take minutes


def import_lean_interact():
    """The ``lean_interact`` module, or a MissingDependencyError that says how to get it."""
    try:
        import lean_interact
    except ImportError as exc:
        raise MissingDependencyError(
            f"the repl environment needs lean-interact ({exc}); install it with `pip install lean-interact`"
        ) from None
    return lean_interact


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


class ReplEnv:
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
        if max_crash_retries < 0:
            raise ValueError("max_crash_retries must not be negative")
        self._li = import_lean_interact()
        self.tactic_timeout_s = tactic_timeout_s
        self.command_timeout_s = command_timeout_s
        self.max_crash_retries = max_crash_retries
        self.server_factory = server_factory or default_server_factory(lean_project, memory_limit_mb)
        self.num_restarts = 0
        self._server: Any = None
        self._theorem: Theorem | None = None
        self._root_pp = ""
        self._paths: dict[str, list[str]] = {}  # state pp -> tactics from the root to it
        self._by_path: dict[tuple[str, ...], str] = {}  # the inverse of _paths
        self._live: dict[str, int] = {}  # state pp -> proof-state id in the current REPL

    # -- the ProofEnv protocol -------------------------------------------------------------

    def start(self, theorem: Theorem) -> TacticState:
        """Start a REPL on ``theorem``'s statement; EnvInitError when Lean rejects it."""
        if not theorem.statement:
            raise EnvInitError(f"'{theorem.name}' has no statement for the Lean REPL")
        self.close()
        self._theorem = theorem
        pp, proof_state = self._open_session()
        self._root_pp = pp
        self._paths = {pp: []}
        self._by_path = {(): pp}
        self._live = {pp: proof_state}
        return TacticState(pp, proof_state)

    def run_tactic(self, state: TacticState, tactic: str) -> Outcome:
        """Run ``tactic`` at ``state``; restarts the REPL after a timeout or crash."""
        if self._server is None:
            raise EnvCrashError("no Lean REPL: start a theorem first")
        if state.pp not in self._paths:
            return LeanError("unknown proof state: it does not belong to this session")
        crashes = 0
        while True:
            try:
                response = self._step(self._live_state(state.pp), tactic)
            except TimeoutError:
                self._restart(state.pp)
                raise EnvTimeoutError(
                    f"`{tactic}` ran past {self.tactic_timeout_s:g} s; the Lean REPL was restarted"
                ) from None
            except EnvCrashError:
                raise
            except Exception as exc:  # the REPL died, ran out of memory, or answered garbage
                crashes += 1
                if crashes > self.max_crash_retries:
                    raise EnvCrashError(
                        f"the Lean REPL crashed {crashes} times on `{tactic}` ({type(exc).__name__}: {exc})"
                    ) from None
                self._restart(state.pp)
                continue
            return self._outcome(response, parent_pp=state.pp, tactic=tactic)

    def check_proof(self, theorem: Theorem, tactics: Sequence[str]) -> str | None:
        """Compile the whole proof as one fresh command: None when Lean accepts it with no
        error and no ``sorry``, else why not."""
        if not tactics:
            return "the proof has no tactics"
        if not theorem.statement:
            return f"'{theorem.name}' has no statement to check the proof against"
        header = theorem.header.rstrip() + "\n\n" if theorem.header.strip() else ""
        source = f"{header}{theorem.statement.rstrip()}{proof_source(tactics)}\n"
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

    def _restart(self, pp: str) -> None:
        """A fresh REPL, with the path to ``pp`` replayed; any failure is an EnvCrashError."""
        self.close()
        self.num_restarts += 1
        try:
            root_pp, proof_state = self._open_session()
            if root_pp != self._root_pp:
                raise EnvCrashError("the restarted REPL starts from a different goal")
            self._live = {root_pp: proof_state}
            self._live_state(pp)
        except EnvCrashError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise EnvCrashError(f"the Lean REPL could not be restarted: {type(exc).__name__}: {exc}") from None

    def _step(self, proof_state: int, tactic: str) -> Any:
        request = self._li.ProofStep(proof_state=proof_state, tactic=tactic)
        return self._server.run(request, timeout=self.tactic_timeout_s)

    def _live_state(self, pp: str) -> int:
        """This REPL's proof-state id for ``pp``, replaying its tactic path if needed
        (from the deepest state on that path that this REPL already has)."""
        if pp in self._live:
            return self._live[pp]
        path = self._paths[pp]
        start = max(k for k in range(len(path) + 1) if self._by_path.get(tuple(path[:k])) in self._live)
        proof_state = self._live[self._by_path[tuple(path[:start])]]
        for tactic in path[start:]:
            response = self._step(proof_state, tactic)
            outcome = self._map(response)
            if not isinstance(outcome, TacticState) or outcome.pp not in self._paths:
                raise EnvCrashError(f"replaying `{tactic}` after a restart gave a different result")
            proof_state = self._live.setdefault(outcome.pp, outcome.id)
        if self._live.get(pp) != proof_state:
            raise EnvCrashError("replaying the path after a restart led to a different state")
        return proof_state

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
            return TacticState("\n\n".join(response.goals), response.proof_state)
        if status == "Completed":
            return ProofFinished(response.proof_state)
        # No goals left, yet the REPL did not verify the proof (e.g. the kernel rejected it).
        return LeanError(f"the goals are closed but the proof does not check: {status}")

    def _outcome(self, response: Any, parent_pp: str, tactic: str) -> Outcome:
        outcome = self._map(response)
        if isinstance(outcome, TacticState):
            if outcome.pp not in self._paths:
                self._paths[outcome.pp] = self._paths[parent_pp] + [tactic]
                self._by_path[tuple(self._paths[outcome.pp])] = outcome.pp
            self._live.setdefault(outcome.pp, outcome.id)
        return outcome


def build(config) -> ReplEnv:
    """Registry entry: an ``EnvConfig`` -> a ``ReplEnv`` (needs lean-interact and ``lake``)."""
    require_lake()
    return ReplEnv(
        lean_project=config.lean_project,
        tactic_timeout_s=config.tactic_timeout_s,
        memory_limit_mb=config.memory_limit_mb,
    )
