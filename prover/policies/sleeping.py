"""A policy that takes as long as a model would, for benchmarks and tests of batching.

It proposes the fixed policy's tactics after sleeping ``batch_latency_s`` plus
``per_state_latency_s`` for every state in the call, so a batching server's gains show
in wall-clock time without a GPU. Hidden from the command line; a ``RunConfig`` names
it (``BackendSpec("policy", "sleeping", SleepingConfig(...))``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

from search import Proposal

from prover.policies.fixed import FixedPolicy
from prover.settings import Settings, setting


@dataclass(frozen=True)
class SleepingConfig(Settings):
    batch_latency_s: float = setting(0.1, "Seconds every propose call takes.", min=0)
    per_state_latency_s: float = setting(0.002, "Extra seconds per state in a call.", min=0)


class SleepingPolicy:
    """The fixed policy's proposals, after a model's worth of sleep."""

    def __init__(self, config: SleepingConfig = SleepingConfig()):
        self.config = config
        self.inner = FixedPolicy()

    def propose(self, states: Sequence[str], k: int) -> list[list[Proposal]]:
        time.sleep(self.config.batch_latency_s + self.config.per_state_latency_s * len(states))
        return self.inner.propose(states, k)


def build(config: SleepingConfig) -> SleepingPolicy:
    return SleepingPolicy(config)
