"""What every search algorithm does around its own loop: start the environment, keep the
environment's handles of states, score new states with the value model, and finish with
the from-scratch re-check, so best-first and MCTS give the same kind of result.

    started = start_search(theorem, env)          # a SearchResult when the start failed
    ...
    return finish_search(theorem, env, tree, stop_reason, error, counters)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterable

from search.expand import LOWEST_SCORE
from search.protocols import EnvError, EnvInitError, ProofChecker, ProofEnv, TacticState, Theorem, ValueModel
from search.results import SearchResult, SearchStatus, StopReason
from search.tree import ROOT, SearchTree, Status

clock = time.perf_counter


@dataclass
class Counters:
    """Time and work of one search, beyond what its tree records."""

    started: float  # clock() when the environment had started: the budget counts from here
    startup_time_s: float
    env_time_s: float = 0.0
    policy_time_s: float = 0.0
    num_tactics: int = 0


def start_search(theorem: Theorem, env: ProofEnv) -> tuple[TacticState, Counters] | SearchResult:
    """Start ``theorem``: its initial state and the counters, or an ERROR result."""
    t0 = clock()
    try:
        initial = env.start(theorem)
    except EnvError as exc:
        kind = "could not start" if isinstance(exc, EnvInitError) else "crashed on start"
        return SearchResult.failure(
            theorem.name, StopReason.ENV_ERROR, f"the environment {kind}: {exc}", startup_time_s=clock() - t0
        )
    started = clock()
    return initial, Counters(started=started, startup_time_s=started - t0)


class Handles:
    """The environment's handles of unexpanded states, to run tactics on.

    Most states are never expanded, and a plain ``TacticState`` says nothing that its text
    (kept in the tree) does not: only other handles are kept, the rest rebuilt on demand.
    """

    def __init__(self) -> None:
        self._kept: dict[int, TacticState] = {}

    def keep(self, states: Iterable[tuple[int, TacticState]]) -> None:
        for node, handle in states:
            if type(handle) is not TacticState or handle.message:
                self._kept[node] = handle

    def take(self, tree: SearchTree, node: int) -> TacticState:
        """The handle of ``node``, which is about to be expanded (once: the handle goes)."""
        handle = self._kept.pop(node, None)
        return handle if handle is not None else TacticState(tree.state(node))


def score_states(tree: SearchTree, value_model: ValueModel | None, nodes: Iterable[int]) -> float:
    """Give each of ``nodes`` without a value the value model's score (one batched call);
    return the model's time. A non-finite score is stored as ``LOWEST_SCORE``."""
    if value_model is None:
        return 0.0
    unscored = [n for n in nodes if tree.node(n)["value"] is None]
    if not unscored:
        return 0.0
    t0 = clock()
    values = value_model.score([tree.state(n) for n in unscored])
    elapsed = clock() - t0
    if len(values) != len(unscored):
        raise ValueError(f"the value model gave {len(values)} scores for {len(unscored)} states")
    for n, value in zip(unscored, values):
        value = float(value)
        tree.node(n)["value"] = value if math.isfinite(value) else LOWEST_SCORE
    return elapsed


def finish_search(
    theorem: Theorem,
    env: ProofEnv,
    tree: SearchTree,
    stop_reason: StopReason,
    error: str | None,
    counters: Counters,
) -> SearchResult:
    """The result of a search that has stopped: a proof is PROVED only once it passes the
    environment's ``check_proof``, where it has one (else REJECTED)."""
    root_status = tree.status(ROOT)
    proof = tree.proof_tactics()
    env_time = counters.env_time_s
    if root_status is Status.PROVED:
        stop_reason = StopReason.PROVED
        status = SearchStatus.PROVED
        if isinstance(env, ProofChecker):
            t0 = clock()
            try:
                problem = env.check_proof(theorem, proof)
            except EnvError as exc:  # a re-check that cannot run proves nothing
                problem = f"the re-check could not run ({type(exc).__name__}: {exc})"
            env_time += clock() - t0
            if problem is not None:
                status = SearchStatus.REJECTED
                error = f"the proof failed the from-scratch re-check: {problem}"
    elif error is not None:
        status = SearchStatus.ERROR
    elif root_status is Status.FAILED:
        status = SearchStatus.FAILED
    else:
        status = SearchStatus.OPEN
        if stop_reason is StopReason.EXHAUSTED:  # nothing left to expand, but not all failed
            stop_reason = StopReason.NO_OPEN_STATES
    return SearchResult(
        theorem.name,
        status,
        stop_reason,
        proof=proof,
        num_expansions=tree.num_expanded,
        num_tactics=counters.num_tactics,
        num_states=tree.num_states,
        wall_time_s=clock() - counters.started,
        startup_time_s=counters.startup_time_s,
        env_time_s=env_time,
        policy_time_s=counters.policy_time_s,
        error=error,
        tree=tree,
    )
