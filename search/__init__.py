"""The proof-search engine: pure Python and networkx, no Lean, torch or Ray.

    from search import SearchLimits, Theorem, best_first_search
    result = best_first_search(Theorem("t"), policy, env, SearchLimits(max_expansions=32))
    record = result.to_record()  # a ResultRecord: the line of results.jsonl

Extension points: ``ValueModel`` (a critic), ``Scorer``/``SCORERS`` (the priority of a
state), ``ALGORITHMS`` (search strategies, built on ``expand_node``); each table of names
is a ``Registry`` (one lookup, one "did you mean").
"""

from search.algorithms import ALGORITHMS, SearchAlgorithm, get_algorithm
from search.best_first import best_first_search
from search.expand import Expansion, expand_node, merge_proposals, proof_context, propose
from search.mcts import MCTSSettings, mcts_search, rmaxts_search
from search.protocols import (
    ContextualPolicy,
    EnvCrashError,
    EnvError,
    EnvInitError,
    EnvTimeoutError,
    LeanError,
    Outcome,
    ProofChecker,
    ProofContext,
    ProofEnv,
    ProofFinished,
    ProofGivenUp,
    Proposal,
    TacticPolicy,
    TacticState,
    Theorem,
    ValueModel,
)
from search.registry import Registry, did_you_mean
from search.results import (
    RecordFormatError,
    ResultRecord,
    SearchLimits,
    SearchResult,
    SearchStatus,
    StopReason,
    proof_text,
)
from search.scoring import (
    SCORERS,
    NodeView,
    Scorer,
    ValueMixed,
    cumulative_logprob,
    get_scorer,
    length_normalised,
)
from search.tree import (
    DEAD,
    QED,
    ROOT,
    EdgeData,
    EdgeOutcome,
    NodeData,
    SearchTree,
    SinkData,
    Status,
    TreeFormatError,
)

__all__ = [
    "ALGORITHMS",
    "ContextualPolicy",
    "DEAD",
    "QED",
    "ROOT",
    "SCORERS",
    "EdgeData",
    "EdgeOutcome",
    "EnvCrashError",
    "EnvError",
    "EnvInitError",
    "EnvTimeoutError",
    "Expansion",
    "LeanError",
    "NodeData",
    "NodeView",
    "Outcome",
    "ProofChecker",
    "ProofContext",
    "ProofEnv",
    "ProofFinished",
    "ProofGivenUp",
    "Proposal",
    "RecordFormatError",
    "ResultRecord",
    "Scorer",
    "SearchAlgorithm",
    "SearchLimits",
    "SearchResult",
    "SearchStatus",
    "SearchTree",
    "SinkData",
    "Status",
    "StopReason",
    "TacticPolicy",
    "TacticState",
    "Theorem",
    "TreeFormatError",
    "MCTSSettings",
    "ValueMixed",
    "ValueModel",
    "best_first_search",
    "mcts_search",
    "rmaxts_search",
    "cumulative_logprob",
    "expand_node",
    "get_algorithm",
    "get_scorer",
    "length_normalised",
    "merge_proposals",
    "proof_context",
    "proof_text",
    "propose",
    "Registry",
    "did_you_mean",
]
