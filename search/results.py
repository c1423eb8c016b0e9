"""Search configuration and results: ``SearchLimits`` in, ``SearchResult`` out, and
``ResultRecord``, the typed line of ``results.jsonl``.

``SearchResult`` holds the live search tree; ``ResultRecord`` is the plain, frozen summary
that is written, read back and compared, without the tree.

    record = result.to_record()
    line = json.dumps(record.to_json())
    assert ResultRecord.from_json(json.loads(line)) == record
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, Sequence

from search.tree import SearchTree


@dataclass(frozen=True)
class SearchLimits:
    """The budget of one search. The search stops at whichever limit it reaches first.

    Each field's ``metadata`` carries its command-line flag, help text and lower bound
    (``min``; ``min_open`` when the bound itself is excluded), from which the CLI builds
    its options.
    """

    max_expansions: int = field(
        default=100,
        metadata={"help": "Budget: states expanded per theorem.", "flag": "--max-expansions", "min": 1},
    )
    time_limit_s: float = field(
        default=600.0,
        metadata={
            "help": "Budget: seconds of search per theorem, counted after the environment has started.",
            "flag": "--time-limit",
            "min": 0,
            "min_open": True,
        },
    )
    tactics_per_node: int = field(
        default=8,
        metadata={"help": "Tactics proposed and tried per state.", "flag": "--tactics-per-node", "min": 1},
    )

    def __post_init__(self) -> None:
        if self.max_expansions < 1:
            raise ValueError(f"max_expansions must be at least 1, not {self.max_expansions}")
        if not self.time_limit_s > 0:
            raise ValueError(f"time_limit_s must be positive, not {self.time_limit_s}")
        if self.tactics_per_node < 1:
            raise ValueError(f"tactics_per_node must be at least 1, not {self.tactics_per_node}")


class SearchStatus(str, Enum):
    PROVED = "proved"  # a proof was found (and passed the re-check, where there is one)
    FAILED = "failed"  # every line of attack was tried and failed
    OPEN = "open"  # the budget ran out first
    REJECTED = "rejected"  # a proof was found but failed the from-scratch re-check
    ERROR = "error"  # the environment could not start or crashed for good


class StopReason(str, Enum):
    """Why a search stopped."""

    PROVED = "proved"  # the root was proved (the re-check may still reject the proof)
    EXHAUSTED = "exhausted"  # every line of attack failed
    NO_OPEN_STATES = "no_open_states"  # nothing left to expand, though not all failed
    MAX_EXPANSIONS = "max_expansions"
    TIME_LIMIT = "time_limit"
    ENV_ERROR = "env_error"  # the environment could not start, or crashed for good
    EXCEPTION = "exception"  # a policy or environment raised something unexpected (set by the caller)
    WORKER_LOST = "worker_lost"  # the process running the search died (set by the distributed layer)
    CANCELLED = "cancelled"  # told to stop (another search of the theorem found a proof: pass@N)


# The stop reason of a record that has none (or one this version does not know): the
# most likely one for its status. Records written before StopReason existed used the
# same strings, so they read back unchanged.
_DEFAULT_STOP_REASON = {
    SearchStatus.PROVED: StopReason.PROVED,
    SearchStatus.FAILED: StopReason.EXHAUSTED,
    SearchStatus.OPEN: StopReason.MAX_EXPANSIONS,
    SearchStatus.REJECTED: StopReason.PROVED,
    SearchStatus.ERROR: StopReason.EXCEPTION,
}


class RecordFormatError(ValueError):
    """A result record that cannot be read back: one sentence naming the field."""


@dataclass(frozen=True)
class ResultRecord:
    """One finished search, as a line of ``results.jsonl``: plain data, no tree.

    ``proof_text`` (the Lean source of the proof) and ``tree`` (the tree file's path in
    the run directory) are filled in by the application, with ``dataclasses.replace``.
    """

    theorem: str
    status: SearchStatus
    stop_reason: StopReason
    proof: tuple[str, ...] | None = None
    num_expansions: int = 0
    num_tactics: int = 0  # tactic applications sent to the environment
    num_states: int = 0
    wall_time_s: float = 0.0  # the search, after the environment started
    startup_time_s: float = 0.0  # starting the environment on the theorem
    env_time_s: float = 0.0  # inside the environment during the search, re-check included
    policy_time_s: float = 0.0  # inside the policy and the value model
    error: str | None = None
    proof_text: str | None = None
    tree: str | None = None
    # With several independent searches of the theorem (pass@N): one JSON object per search,
    # in attempt order (written by the application: prover.run.attempts).
    attempts: tuple[dict, ...] | None = None

    @property
    def proved(self) -> bool:
        return self.status is SearchStatus.PROVED

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field: enums as their values, the proof as a list."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["status"] = self.status.value
        data["stop_reason"] = self.stop_reason.value
        if self.proof is not None:
            data["proof"] = list(self.proof)
        if self.attempts is not None:
            data["attempts"] = list(self.attempts)
        return data

    @classmethod
    def from_json(cls, data: dict) -> "ResultRecord":
        """Read back what ``to_json`` wrote (or an older record); unknown keys are ignored.

        A missing or unknown ``stop_reason`` becomes the usual one for the status (proved
        and rejected: PROVED, failed: EXHAUSTED, open: MAX_EXPANSIONS, error: EXCEPTION).
        Raises ``RecordFormatError`` when ``theorem`` or ``status`` is missing or a value
        has the wrong type.
        """
        if not isinstance(data, dict):
            raise RecordFormatError(f"a result record is a JSON object, not {type(data).__name__}")
        for name in ("theorem", "status"):
            if name not in data:
                raise RecordFormatError(f"the result record has no '{name}' field")
        theorem = data["theorem"]
        if not isinstance(theorem, str):
            raise RecordFormatError(f"the record's 'theorem' must be a string, not {theorem!r}")
        try:
            status = SearchStatus(data["status"])
        except ValueError:
            choices = ", ".join(s.value for s in SearchStatus)
            raise RecordFormatError(f"the record's 'status' must be one of {choices}, not {data['status']!r}") from None
        stop_reason = data.get("stop_reason")
        if stop_reason is not None and not isinstance(stop_reason, str):
            raise RecordFormatError(f"the record's 'stop_reason' must be a string, not {stop_reason!r}")
        try:
            stop_reason = StopReason(stop_reason)
        except ValueError:
            stop_reason = _DEFAULT_STOP_REASON[status]
        values: dict[str, Any] = {"theorem": theorem, "status": status, "stop_reason": stop_reason}
        for f in fields(cls):
            if f.name in values or f.name not in data:
                continue
            values[f.name] = _checked(f.name, data[f.name])
        return cls(**values)


def _checked(name: str, value: Any) -> Any:
    """``value`` as the record field ``name`` holds it, or a RecordFormatError."""
    if name == "attempts":
        if value is None:
            return None
        if isinstance(value, (list, tuple)) and all(isinstance(a, dict) for a in value):
            return tuple(value)
        problem = "a list of objects"
    elif name == "proof":
        if value is None:
            return None
        if isinstance(value, (list, tuple)) and all(isinstance(t, str) for t in value):
            return tuple(value)
        problem = "a list of tactics"
    elif name.startswith("num_"):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        problem = "a whole number, at least 0"
    elif name.endswith("_time_s"):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
            return float(value)
        problem = "a number of seconds, at least 0"
    else:  # error, proof_text, tree
        if value is None or isinstance(value, str):
            return value
        problem = "a string or null"
    raise RecordFormatError(f"the record's '{name}' must be {problem}, not {value!r}")


@dataclass
class SearchResult:
    """What one search produced, with its tree; ``to_record`` is its line in ``results.jsonl``."""

    theorem: str
    status: SearchStatus
    stop_reason: StopReason
    proof: list[str] | None = None
    num_expansions: int = 0
    num_tactics: int = 0  # tactic applications sent to the environment
    num_states: int = 0
    wall_time_s: float = 0.0  # the search, after the environment started
    startup_time_s: float = 0.0  # starting the environment on the theorem
    env_time_s: float = 0.0  # inside the environment during the search, re-check included
    policy_time_s: float = 0.0  # inside the policy and the value model
    error: str | None = None
    tree: SearchTree | None = field(default=None, repr=False)
    # One of several attempts at a theorem, stopped because another proved it: the expansions
    # it finished after the cancel (None where no cancel reached it).
    expansions_after_cancel: int | None = None

    @property
    def proved(self) -> bool:
        return self.status is SearchStatus.PROVED

    @classmethod
    def failure(cls, theorem: str, stop_reason: StopReason, error: str, **times: float) -> "SearchResult":
        """An ERROR result without a tree; ``times`` are any of the ``*_time_s`` fields."""
        return cls(theorem, SearchStatus.ERROR, stop_reason, error=error, **times)

    def to_record(self) -> ResultRecord:
        """The record of this search, without the tree (which is saved to its own file)."""
        return ResultRecord(
            theorem=self.theorem,
            status=self.status,
            stop_reason=self.stop_reason,
            proof=None if self.proof is None else tuple(self.proof),
            num_expansions=self.num_expansions,
            num_tactics=self.num_tactics,
            num_states=self.num_states,
            wall_time_s=self.wall_time_s,
            startup_time_s=self.startup_time_s,
            env_time_s=self.env_time_s,
            policy_time_s=self.policy_time_s,
            error=self.error,
        )


def proof_text(statement: str, tactics: Sequence[str]) -> str:
    """The Lean source of a tactic proof: ``statement`` (ending in ``:=``) then ``by`` and
    the tactics, one per line, with multi-line tactics indented as a block.

    >>> print(proof_text("theorem t : 1 + 1 = 2 :=", ["norm_num"]))
    theorem t : 1 + 1 = 2 := by
      norm_num
    """
    lines = [statement.rstrip().removesuffix("by").rstrip() + " by"]
    for tactic in tactics:
        lines.extend("  " + line for line in tactic.splitlines())
    return "\n".join(lines)
