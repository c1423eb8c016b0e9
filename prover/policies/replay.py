"""A model-free policy that knows the recorded tactics of a trace file, mixed with wrong ones.

For each state it proposes every tactic recorded there (in any theorem), and fills the
rest of its ``k`` proposals with tactics drawn from elsewhere in the traces, all with
seeded pseudo-random log-probabilities, so that right and wrong proposals are
interleaved and the search has to choose. A recorded tactic is never crowded out by a
wrong one, so at any ``k`` at least as large as the recorded tactics of a state, every
theorem with a recorded proof can be proved.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from typing import Sequence

from search import ProofContext, Proposal

from prover.settings import Settings, setting
from prover.traces import TraceSet, load_traces

ATTEMPT_SEED_STRIDE = 7919  # attempt a of a theorem samples with seed + a x this


def _seeded_logprob(seed: int, state: str, tactic: str) -> float:
    digest = hashlib.blake2b(f"{seed}\x1f{state}\x1f{tactic}".encode(), digest_size=8).digest()
    u = (int.from_bytes(digest, "little") + 1) / (2**64 + 1)
    return math.log(u) - 0.05  # in (-inf, -0.05): strictly negative, finite


class ReplayPolicy:
    """Every recorded tactic at a state, then wrong ones up to ``k``, scored at random (seeded)."""

    def __init__(self, traces: TraceSet, seed: int = 0):
        self.traces = traces
        self.seed = seed
        self._pool = traces.all_tactics()

    def propose(self, states: Sequence[str], k: int) -> list[list[Proposal]]:
        return self.propose_in_context(states, [None] * len(states), k)

    def propose_in_context(
        self, states: Sequence[str], contexts: Sequence[ProofContext | None], k: int
    ) -> list[list[Proposal]]:
        """``propose``, seeded on each search's ``attempt`` as well (pass@N: attempts differ)."""
        batches = []
        for state, context in zip(states, contexts):
            seed = self.seed + ATTEMPT_SEED_STRIDE * (context.attempt if context is not None else 0)
            score = lambda tactic: _seeded_logprob(seed, state, tactic)  # noqa: E731
            right = sorted(self.traces.tactics_at(state), key=score, reverse=True)[:k]
            rng = random.Random(f"{seed}:{state}")
            drawn = rng.sample(self._pool, min(len(self._pool), k + len(right)))
            wrong = [t for t in drawn if t not in right][: k - len(right)]
            proposals = [Proposal(t, score(t)) for t in right + wrong]
            proposals.sort(key=lambda p: -p.logprob)
            batches.append(proposals)
        return batches


@dataclass(frozen=True)
class ReplayPolicyConfig(Settings):
    traces: str | None = setting(
        None,
        "Trace file whose recorded tactics the policy knows [default: the shipped miniF2F traces].",
        metavar="FILE",
    )
    seed: int = setting(0, "Seed of the policy's sampling.")


def build(config: ReplayPolicyConfig) -> ReplayPolicy:
    return ReplayPolicy(load_traces(config.traces), seed=config.seed)
