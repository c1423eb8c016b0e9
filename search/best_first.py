"""Best-first tactic search.

The open state with the highest priority is expanded next: the policy proposes up to
``tactics_per_node`` tactics for it, each is run in the environment, and the results grow
the ``SearchTree``. The priority is a ``Scorer``'s score of the state (by default the
cumulative log-probability of the tactics that led to it); with a ``ValueModel`` the
scorer also sees the critic's value of each state.

    result = best_first_search(theorem, policy, env, SearchLimits(max_expansions=64))
    print(result.status, result.proof)
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import threading
from typing import Callable, Iterator

from search.common import Handles, clock, finish_search, score_states, start_search
from search.expand import expand_node, merge_proposals, proof_context
from search.protocols import ContextualPolicy, ProofEnv, TacticPolicy, Theorem, ValueModel
from search.results import SearchLimits, SearchResult, StopReason
from search.scoring import Scorer, cumulative_logprob
from search.tree import ROOT, SearchTree, Status


def best_first_search(
    theorem: Theorem,
    policy: TacticPolicy,
    env: ProofEnv,
    limits: SearchLimits = SearchLimits(),
    scorer: Scorer = cumulative_logprob,
    value_model: ValueModel | None = None,
    on_expansion: Callable[[SearchTree, int], None] | None = None,
) -> SearchResult:
    """Search for a proof of ``theorem``; never raises for environment failures.

    A policy that reads proof contexts (``ContextualPolicy``) gets, with each state, the
    theorem and the tactics of the state's best path (``search.expand.proof_context``).

    The time budget starts once ``env.start`` has returned (starting Lean can take
    minutes); the start is reported as ``startup_time_s``. With a ``value_model``, each
    expansion's new states are scored in one batched call, and their values are stored on
    the nodes and shown to ``scorer``. Each queued node keeps its ``priority``.

    ``on_expansion(tree, node)``, if given, is called after each expansion; answering ``True``
    stops the search there with ``StopReason.CANCELLED`` (tests use it
    to check the tree's invariants at every step; a UI can use it to show progress).

    An environment that cannot start the theorem gives status ERROR; one that crashes
    mid-search for good (after its own restarts) gives ERROR with the tree so far.
    A proof is PROVED only once it passes the environment's ``check_proof``, where it has
    one (else REJECTED). The environment is closed on return. Exceptions from the policy
    or the value model propagate.
    """
    with _fewer_young_collections():
        return _search(theorem, policy, env, limits, scorer, value_model, on_expansion)


# A search grows a graph of long-lived objects (networkx's dicts, one per node, neighbour
# and edge); at Python's default the collector walks the young ones every 700
# allocations, which cost as much as the search itself at 100,000 states. While any
# search runs in the process, young collections are rarer; the thresholds are restored
# when the last one ends (searches may run in threads).
_GC_YOUNG_THRESHOLD = 100_000
_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, ...] = ()


@contextlib.contextmanager
def _fewer_young_collections() -> Iterator[None]:
    global _gc_users, _gc_saved
    with _gc_lock:
        if _gc_users == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(max(_gc_saved[0], _GC_YOUNG_THRESHOLD), *_gc_saved[1:])
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0:
                gc.set_threshold(*_gc_saved)


def _search(
    theorem: Theorem,
    policy: TacticPolicy,
    env: ProofEnv,
    limits: SearchLimits,
    scorer: Scorer,
    value_model: ValueModel | None,
    on_expansion: Callable[[SearchTree, int], None] | None,
) -> SearchResult:
    try:
        started_or_failed = start_search(theorem, env)
        if isinstance(started_or_failed, SearchResult):
            return started_or_failed
        initial, counters = started_or_failed
        deadline = counters.started + limits.time_limit_s

        tree = SearchTree(theorem.name, initial.pp)
        handles = Handles()
        handles.keep([(ROOT, initial)])
        queue: list[tuple[float, int]] = []  # (-priority, node): equal priorities, the state found first
        heappush, heappop = heapq.heappush, heapq.heappop

        def enqueue(nodes: list[int]) -> float:
            """Score ``nodes`` (values first, in one batch) and queue them; the model time."""
            model_time = score_states(tree, value_model, nodes)
            node_attrs, view = tree.node, tree.view
            for n in nodes:
                attrs = node_attrs(n)
                priority = float(scorer(view(n)))
                if priority != attrs["priority"]:  # unchanged: its queue entry stands
                    attrs["priority"] = priority
                    heappush(queue, (-priority, n))
            return model_time

        counters.policy_time_s += enqueue([ROOT])
        k = limits.tactics_per_node
        wants_context = isinstance(policy, ContextualPolicy)  # once: a Protocol check is not free
        error = None
        stop_reason = StopReason.EXHAUSTED

        while queue:
            if tree.num_expanded >= limits.max_expansions:
                stop_reason = StopReason.MAX_EXPANSIONS
                break
            if clock() >= deadline:
                stop_reason = StopReason.TIME_LIMIT
                break
            neg_priority, node = heappop(queue)
            attrs = tree.node(node)
            if attrs["expanded_order"] is not None or -neg_priority != attrs["priority"]:
                continue  # expanded already, or a stale entry: the node was requeued

            t0 = clock()
            if wants_context:
                proposed = policy.propose_in_context([attrs["state"]], [proof_context(theorem, tree, node)], k)[0]
            else:
                proposed = policy.propose([attrs["state"]], k)[0]
            counters.policy_time_s += clock() - t0
            proposals = merge_proposals(proposed, k)

            expansion = expand_node(
                tree, node, handles.take(tree, node), proposals, env, started=counters.started, deadline=deadline
            )
            counters.num_tactics += expansion.num_tactics
            counters.env_time_s += expansion.env_time_s
            handles.keep(expansion.children)
            counters.policy_time_s += enqueue([child for child, _ in expansion.children])
            cancelled = on_expansion is not None and on_expansion(tree, node) is True
            if expansion.error is not None:
                error, stop_reason = expansion.error, StopReason.ENV_ERROR
                break
            if tree.status(ROOT) is not Status.OPEN:
                break  # proved or failed: even on the budget's last step, the result stands
            if expansion.out_of_time:
                stop_reason = StopReason.TIME_LIMIT
                break
            if cancelled:
                stop_reason = StopReason.CANCELLED
                break

        return finish_search(theorem, env, tree, stop_reason, error, counters)
    finally:
        env.close()
