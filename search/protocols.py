"""The seams of the engine: what a policy and a proof environment must provide.

The outcome types mirror LeanDojo's (``lean_dojo.TacticState``, ``ProofFinished``,
``LeanError``, ``ProofGivenUp``) field for field where it matters, so the LeanDojo
backend in ``prover.envs.dojo`` is a thin adapter, and everything here runs without Lean.

Infrastructure failures (a crashed or hung Lean) are exceptions, not outcomes:
``EnvCrashError`` and ``EnvTimeoutError``. A tactic that Lean rejects is an outcome.

An environment's own handle for a state (LeanDojo's ``TacticState.id``, a REPL's proof
state number) stays inside the environment: the engine knows a state by its text. It
hands back to ``run_tactic`` the ``TacticState`` that the environment returned for the
state, or, where that was a plain ``TacticState`` with no message, an equal one. An
environment that needs more than the text subclasses ``TacticState``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, Union, runtime_checkable


@dataclass(frozen=True)
class Theorem:
    """A theorem to prove, with as much addressing as the environment needs.

    ``name`` is the identity everywhere (result files, tree files). The LeanDojo backend
    uses ``repo_url``/``commit``/``file_path``/``full_name``; the REPL backend uses
    ``header`` + ``statement``, and for a hole of a file (``prover fill``) ``statement`` is
    the file's body and ``sorry_at`` the hole's position in it; offline environments use
    ``name`` alone.
    """

    name: str
    statement: str = ""  # Lean source up to and including ":=", when known
    header: str = ""  # imports / opens that the statement needs
    repo_url: str = ""
    commit: str = ""
    file_path: str = ""
    full_name: str = ""  # fully qualified Lean name; defaults to ``name``
    attempt: int = 0  # which of the independent searches of this theorem (pass@N), 0 for the first
    sorry_at: str = ""  # "LINE:COLUMN" of a `sorry` in ``statement`` (a whole file's body) to start from

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v}

    @classmethod
    def from_dict(cls, data: dict) -> "Theorem":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class TacticState:
    """An open proof state: ``pp`` is Lean's pretty-printed goals, the node's identity."""

    pp: str
    message: str = ""


@dataclass(frozen=True)
class ProofFinished:
    """The tactic closed every goal. ``tactic_state_id`` mirrors ``lean_dojo.ProofFinished``
    (the Lean backends pass on the id Lean gave); the engine does not need it."""

    tactic_state_id: int = 0
    message: str = ""


@dataclass(frozen=True)
class LeanError:
    """Lean rejected the tactic, or (``refused``) the environment refused to send it to Lean
    (the safety filter); ``error`` says why, for people. The search records a refusal as an
    edge of its own outcome (``EdgeOutcome.REFUSED``), so no reader parses the text."""

    error: str
    refused: bool = field(default=False, compare=False)  # compared by what it says, as before


@dataclass(frozen=True)
class ProofGivenUp:
    """The tactic closed the goals only by giving up (``sorry``/``admit``)."""


Outcome = Union[TacticState, ProofFinished, LeanError, ProofGivenUp]


class EnvError(Exception):
    """An infrastructure failure of the environment (not a rejected tactic)."""


class EnvCrashError(EnvError):
    """The prover process died; the session must be restarted."""


class EnvTimeoutError(EnvError):
    """A tactic ran past its time limit; the session may be unusable afterwards."""


class EnvInitError(EnvError):
    """The theorem could not be started (unknown theorem, tracing failed, ...)."""


@dataclass(frozen=True)
class Proposal:
    """One candidate tactic and the policy's log-probability for it."""

    tactic: str
    logprob: float


@runtime_checkable
class TacticPolicy(Protocol):
    """Proposes tactics, batched: one list of up to ``k`` proposals per input state."""

    def propose(self, states: Sequence[str], k: int) -> list[list[Proposal]]: ...


@dataclass(frozen=True)
class ProofContext:
    """What the search knows of a state besides its text: the theorem it belongs to, and
    the tactics on the path from the root to it, first tactic first.

    Models trained on more than the state read it (InternLM2.5-StepProver's prompt has the
    theorem's name and the proof so far). Where a state is reached by several paths, the
    path is the one that gave the state its cumulative log-prob (see
    ``SearchTree.path_tactics``).
    """

    theorem_name: str = ""
    theorem_statement: str = ""
    tactics: tuple[str, ...] = ()
    attempt: int = 0  # the theorem's ``attempt``: a sampling policy may seed each search on it


@runtime_checkable
class ContextualPolicy(Protocol):
    """A ``TacticPolicy`` that also reads each state's ``ProofContext``.

    The engine calls ``propose_in_context`` on a policy that has it and ``propose`` on any
    other (``search.expand.propose``), so policies that ignore the context need not change.
    """

    def propose(self, states: Sequence[str], k: int) -> list[list[Proposal]]: ...

    def propose_in_context(
        self, states: Sequence[str], contexts: Sequence[ProofContext], k: int
    ) -> list[list[Proposal]]: ...


@runtime_checkable
class ValueModel(Protocol):
    """A critic, batched: one score per goal state, higher for states more likely to be
    provable (typically the log-probability that the state is provable).

    The search scores each state it creates once and hands the score to its ``Scorer``
    as ``NodeView.value``.
    """

    def score(self, states: Sequence[str]) -> list[float]: ...


@runtime_checkable
class ProofEnv(Protocol):
    """A proof environment that works on one theorem at a time.

    ``start`` begins (or restarts) a session on a theorem and returns its initial state;
    ``run_tactic`` applies a tactic to a state of the current session; ``close`` frees
    any process. Environments may also offer ``check_proof`` (see ``ProofChecker``).
    """

    def start(self, theorem: Theorem) -> TacticState: ...

    def run_tactic(self, state: TacticState, tactic: str) -> Outcome: ...

    def close(self) -> None: ...


@runtime_checkable
class ProofChecker(Protocol):
    """An environment that can re-check a complete proof from scratch.

    Returns ``None`` when the tactics prove the theorem, else a sentence saying why not.
    """

    def check_proof(self, theorem: Theorem, tactics: Sequence[str]) -> str | None: ...
