"""Best-first tactic search.

The open state with the best score is expanded next: the policy proposes up to
``tactics_per_node`` tactics for it, each is run in the environment, and the results grow
the ``SearchTree``. The score is the cumulative log-probability of the tactics that led to
the state, or any ``Scorer`` (e.g. ``length_normalised``).

    result = best_first_search(theorem, policy, env, SearchLimits(max_expansions=64))
    print(result.status, result.proof)
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import Callable

from search.protocols import (
    EnvError,
    EnvInitError,
    EnvTimeoutError,
    LeanError,
    ProofChecker,
    ProofEnv,
    Proposal,
    TacticPolicy,
    TacticState,
    Theorem,
)
from search.results import SearchLimits, SearchResult, SearchStatus
from search.tree import QED, ROOT, SearchTree, Status

Scorer = Callable[[float, int], float]
"""Maps (cumulative log-prob, depth) of a state to its priority; higher is expanded first."""


def cumulative_logprob(cumulative: float, depth: int) -> float:
    return cumulative


def length_normalised(cumulative: float, depth: int) -> float:
    return cumulative / max(depth, 1)


SCORERS: dict[str, Scorer] = {
    "cumulative": cumulative_logprob,
    "length_normalised": length_normalised,
}


def merge_proposals(proposals: list[Proposal], k: int) -> list[Proposal]:
    """Strip tactics, drop empty ones, keep the best log-prob of duplicates, best k first."""
    best: dict[str, float] = {}
    for proposal in proposals:
        tactic = proposal.tactic.strip()
        if tactic and (tactic not in best or proposal.logprob > best[tactic]):
            best[tactic] = proposal.logprob
    ranked = sorted(best.items(), key=lambda item: -item[1])[:k]
    return [Proposal(tactic, logprob) for tactic, logprob in ranked]


def best_first_search(
    theorem: Theorem,
    policy: TacticPolicy,
    env: ProofEnv,
    limits: SearchLimits = SearchLimits(),
    scorer: Scorer = cumulative_logprob,
    on_expansion: Callable[[SearchTree, int], None] | None = None,
) -> SearchResult:
    """Search for a proof of ``theorem``; never raises for environment failures.

    ``on_expansion(tree, node)``, if given, is called after each expansion (tests use it
    to check the tree's invariants at every step; a UI can use it to show progress).

    An environment that cannot start the theorem gives status ERROR; one that crashes
    mid-search for good (after its own restarts) gives ERROR with the tree so far.
    The environment is closed on return.
    """
    clock = time.perf_counter
    started = clock()
    env_time = policy_time = 0.0
    num_tactics = 0
    try:
        try:
            t0 = clock()
            initial = env.start(theorem)
            env_time += clock() - t0
        except EnvError as exc:
            kind = "could not start" if isinstance(exc, EnvInitError) else "crashed on start"
            return SearchResult(
                theorem.name,
                SearchStatus.ERROR,
                "env_error",
                error=f"the environment {kind}: {exc}",
                wall_time_s=clock() - started,
                env_time_s=env_time,
            )

        tree = SearchTree(theorem.name, initial.pp)
        handles: dict[int, TacticState] = {ROOT: initial}
        tie = itertools.count()  # equal scores: first come, first served
        queue: list[tuple[float, int, int]] = [(0.0, next(tie), ROOT)]
        k = limits.tactics_per_node
        error = None
        stop_reason = "exhausted"

        while queue:
            if tree.num_expanded >= limits.max_expansions:
                stop_reason = "max_expansions"
                break
            if clock() - started >= limits.time_limit_s:
                stop_reason = "time_limit"
                break
            neg_score, _, node = heapq.heappop(queue)
            attrs = tree.node(node)
            if attrs["expanded_order"] is not None or attrs["status"] is not Status.OPEN:
                continue
            if -neg_score != scorer(attrs["cumulative_logprob"], attrs["depth"]):
                continue  # a stale entry: the node was requeued with a better score

            t0 = clock()
            proposals = merge_proposals(policy.propose([attrs["state"]], k)[0], k)
            policy_time += clock() - t0

            partial = False
            state = handles[node]
            for proposal in proposals:
                if clock() - started >= limits.time_limit_s:
                    partial, stop_reason = True, "time_limit"
                    break
                t0 = clock()
                timed_out = False
                try:
                    outcome = env.run_tactic(state, proposal.tactic)
                except EnvTimeoutError as exc:
                    outcome, timed_out = LeanError(f"timeout: {exc}"), True
                except EnvError as exc:
                    error = f"the environment crashed: {exc}"
                    partial = True
                    break
                elapsed = clock() - t0
                env_time += elapsed
                num_tactics += 1
                target, worth_queueing = tree.add_outcome(
                    node,
                    proposal.tactic,
                    proposal.logprob,
                    outcome,
                    time_s=elapsed,
                    t_s=clock() - started,
                    timed_out=timed_out,
                )
                if worth_queueing:
                    handles[target] = outcome  # type: ignore[assignment]
                    child = tree.node(target)
                    score = scorer(child["cumulative_logprob"], child["depth"])
                    heapq.heappush(queue, (-score, next(tie), target))
                elif target == QED:
                    break  # this node is proved: its other tactics cannot matter
            tree.mark_expanded(node, t_s=clock() - started, partial=partial)
            if on_expansion is not None:
                on_expansion(tree, node)
            if error is not None:
                stop_reason = "env_error"
                break
            if tree.status(ROOT) is not Status.OPEN:
                break

        root_status = tree.status(ROOT)
        proof = tree.proof_tactics()
        if root_status is Status.PROVED:
            stop_reason = "proved"
            status = SearchStatus.PROVED
            if isinstance(env, ProofChecker):
                t0 = clock()
                problem = env.check_proof(theorem, proof)
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
            if stop_reason == "exhausted":  # nothing left to expand, but not all failed
                stop_reason = "no_open_states"
        return SearchResult(
            theorem.name,
            status,
            stop_reason,
            proof=proof,
            num_expansions=tree.num_expanded,
            num_tactics=num_tactics,
            num_states=tree.num_states,
            wall_time_s=clock() - started,
            env_time_s=env_time,
            policy_time_s=policy_time,
            error=error,
            tree=tree,
        )
    finally:
        env.close()
