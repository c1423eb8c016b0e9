"""The proof-search engine: pure Python and networkx, no Lean, torch or Ray.

    from search import SearchLimits, Theorem, best_first_search
    result = best_first_search(Theorem("t"), policy, env, SearchLimits(max_expansions=32))
"""

from search.best_first import SCORERS, best_first_search, cumulative_logprob, length_normalised
from search.protocols import (
    EnvCrashError,
    EnvError,
    EnvInitError,
    EnvTimeoutError,
    LeanError,
    Outcome,
    ProofChecker,
    ProofEnv,
    ProofFinished,
    ProofGivenUp,
    Proposal,
    TacticPolicy,
    TacticState,
    Theorem,
)
from search.results import SearchLimits, SearchResult, SearchStatus, proof_text
from search.tree import DEAD, QED, ROOT, EdgeOutcome, SearchTree, Status, TreeFormatError

__all__ = [
    "DEAD", "QED", "ROOT", "SCORERS", "EdgeOutcome", "EnvCrashError", "EnvError", "EnvInitError",
    "EnvTimeoutError", "LeanError", "Outcome", "ProofChecker", "ProofEnv", "ProofFinished",
    "ProofGivenUp", "Proposal", "SearchLimits", "SearchResult", "SearchStatus", "SearchTree",
    "Status", "TacticPolicy", "TacticState", "Theorem", "TreeFormatError", "best_first_search",
    "cumulative_logprob", "length_normalised", "proof_text",
]
