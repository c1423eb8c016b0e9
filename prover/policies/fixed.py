"""A model-free policy that proposes the same scored tactics for every state.

policy = FixedPolicy([("norm_num", -0.5), ("linarith", -1.0)])
policy.propose(["⊢ 1 + 1 = 2"], k=1)  # [[Proposal("norm_num", -0.5)]]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from search import Proposal

from prover.settings import Settings, setting

# Closing tactics that often work on competition algebra, best guesses first.
DEFAULT_TACTICS: tuple[tuple[str, float], ...] = (
    ("norm_num", -0.5),
    ("simp", -0.7),
    ("linarith", -0.9),
    ("omega", -1.1),
    ("ring", -1.3),
    ("nlinarith", -1.5),
    ("positivity", -1.8),
    ("decide", -2.0),
    ("field_simp", -2.2),
    ("aesop", -2.5),
)


class FixedPolicy:
    """Proposes the top ``k`` of a fixed list of (tactic, log-prob) for every state."""

    def __init__(self, tactics: Sequence[tuple[str, float]] = DEFAULT_TACTICS):
        if not tactics:
            raise ValueError("a fixed policy needs at least one tactic")
        for tactic, logprob in tactics:
            if not tactic.strip() or not math.isfinite(logprob) or logprob > 0:
                raise ValueError(f"bad fixed tactic {tactic!r} with log-prob {logprob}")
        ranked = sorted(tactics, key=lambda item: -item[1])
        self.proposals = [Proposal(tactic, logprob) for tactic, logprob in ranked]

    def propose(self, states: Sequence[str], k: int) -> list[list[Proposal]]:
        return [self.proposals[:k] for _ in states]


def parse_tactics(specs: Sequence[str]) -> list[tuple[str, float]]:
    """``["simp", "ring:-1.5"]`` -> scored tactics; unscored ones get -1, -2, ... in order."""
    scored = []
    for i, spec in enumerate(specs):
        tactic, sep, score = spec.rpartition(":")
        if sep and score.strip().lstrip("-").replace(".", "", 1).isdigit():
            scored.append((tactic.strip(), float(score)))
        else:
            scored.append((spec.strip(), -float(i + 1)))
    return scored


@dataclass(frozen=True)
class FixedConfig(Settings):
    tactics: tuple[str, ...] = setting(
        (),
        "A tactic to propose, optionally scored as TACTIC:LOGPROB (repeatable) [default: a built-in "
        "list of closing tactics].",
        flag="--tactic",
    )


def build(config: FixedConfig) -> FixedPolicy:
    return FixedPolicy(parse_tactics(config.tactics) if config.tactics else DEFAULT_TACTICS)
