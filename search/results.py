"""Search configuration and results: ``SearchLimits`` in, ``SearchResult`` out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Sequence

from search.tree import SearchTree


@dataclass(frozen=True)
class SearchLimits:
    """The budget of one search. The search stops at whichever limit it reaches first."""

    max_expansions: int = 100
    time_limit_s: float = 600.0
    tactics_per_node: int = 8

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


@dataclass
class SearchResult:
    """What one search produced. ``to_record`` is the line written to ``results.jsonl``."""

    theorem: str
    status: SearchStatus
    stop_reason: str
    proof: list[str] | None = None
    num_expansions: int = 0
    num_tactics: int = 0  # tactic applications sent to the environment
    num_states: int = 0
    wall_time_s: float = 0.0
    env_time_s: float = 0.0
    policy_time_s: float = 0.0
    error: str | None = None
    tree: SearchTree | None = field(default=None, repr=False)

    @property
    def proved(self) -> bool:
        return self.status is SearchStatus.PROVED

    def to_record(self) -> dict:
        record = asdict(self)
        del record["tree"]
        record["status"] = self.status.value
        return record


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
