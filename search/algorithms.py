"""Search algorithms by name: the extension point for search strategies other than
best-first.

Registered: ``best_first``, ``mcts`` and ``rmaxts`` (``search.mcts``). An algorithm is a
function with ``best_first_search``'s signature; it builds on
``search.expand`` (one expansion step) and ``search.tree`` (the graph and its statuses),
and registers itself in ``ALGORITHMS``.

    search = get_algorithm("best_first")
    result = search(theorem, policy, env, SearchLimits(max_expansions=64))
"""

from __future__ import annotations

from typing import Callable, Protocol

from search.best_first import best_first_search
from search.mcts import mcts_search, rmaxts_search
from search.protocols import ProofEnv, TacticPolicy, Theorem, ValueModel
from search.registry import Registry
from search.results import SearchLimits, SearchResult
from search.scoring import Scorer
from search.tree import SearchTree


class SearchAlgorithm(Protocol):
    """Searches for a proof of one theorem; see ``best_first_search`` for the contract."""

    def __call__(
        self,
        theorem: Theorem,
        policy: TacticPolicy,
        env: ProofEnv,
        limits: SearchLimits = ...,
        scorer: Scorer = ...,
        value_model: ValueModel | None = ...,
        on_expansion: Callable[[SearchTree, int], None] | None = ...,
    ) -> SearchResult: ...


ALGORITHMS: Registry[SearchAlgorithm] = Registry(
    "search algorithm",
    {
        "best_first": best_first_search,
        "mcts": mcts_search,  # PUCT over the policy's priors, the critic's value where given
        "rmaxts": rmaxts_search,  # MCTS with an intrinsic reward for new states (DeepSeek-Prover-V1.5)
    },
)


def get_algorithm(name: str) -> SearchAlgorithm:
    """The algorithm registered as ``name``; a ValueError with "did you mean" otherwise."""
    return ALGORITHMS.lookup(name)
