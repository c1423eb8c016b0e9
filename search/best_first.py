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
import math
import heapq
import threading
import time
from typing import Callable, Iterable, Iterator

from search.expand import LOWEST_SCORE, expand_node, merge_proposals, proof_context
from search.protocols import ContextualPolicy, EnvError, EnvInitError, ProofChecker, ProofEnv, TacticPolicy, TacticState, Theorem, ValueModel
from search.results import SearchLimits, SearchResult, SearchStatus, StopReason
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

    ``on_expansion(tree, node)``, if given, is called after each expansion (tests use it
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
    clock = time.perf_counter
    try:
        t0 = clock()
        try:
            initial = env.start(theorem)
        except EnvError as exc:
            kind = "could not start" if isinstance(exc, EnvInitError) else "crashed on start"
            return SearchResult.failure(
                theorem.name, StopReason.ENV_ERROR, f"the environment {kind}: {exc}", startup_time_s=clock() - t0
            )
        started = clock()
        startup_time = started - t0
        deadline = started + limits.time_limit_s
        env_time = policy_time = 0.0
        num_tactics = 0

        tree = SearchTree(theorem.name, initial.pp)
        # The environment's handles of queued states, to run tactics on. Most queued states
        # are never expanded, and a plain TacticState says nothing that its text (kept in
        # the tree) does not: only other handles are kept, the rest rebuilt when needed.
        handles: dict[int, TacticState] = {}

        def keep_handles(states: Iterable[tuple[int, TacticState]]) -> None:
            for n, handle in states:
                if type(handle) is not TacticState or handle.message:
                    handles[n] = handle

        keep_handles([(ROOT, initial)])
        queue: list[tuple[float, int]] = []  # (-priority, node): equal priorities, the state found first
        heappush, heappop = heapq.heappush, heapq.heappop

        def enqueue(nodes: list[int]) -> float:
            """Score ``nodes`` (values first, in one batch) and queue them; the model time."""
            model_time = 0.0
            if value_model is not None:
                unscored = [n for n in nodes if tree.node(n)["value"] is None]
                if unscored:
                    t0 = clock()
                    values = value_model.score([tree.state(n) for n in unscored])
                    model_time = clock() - t0
                    if len(values) != len(unscored):
                        raise ValueError(f"the value model gave {len(values)} scores for {len(unscored)} states")
                    for n, value in zip(unscored, values):
                        value = float(value)
                        tree.node(n)["value"] = value if math.isfinite(value) else LOWEST_SCORE
            node_attrs, view = tree.node, tree.view
            for n in nodes:
                attrs = node_attrs(n)
                priority = float(scorer(view(n)))
                if priority != attrs["priority"]:  # unchanged: its queue entry stands
                    attrs["priority"] = priority
                    heappush(queue, (-priority, n))
            return model_time

        policy_time += enqueue([ROOT])
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
            policy_time += clock() - t0
            proposals = merge_proposals(proposed, k)

            handle = handles.pop(node, None)  # a node is expanded once: its handle goes
            if handle is None:
                handle = TacticState(attrs["state"])
            expansion = expand_node(tree, node, handle, proposals, env, started=started, deadline=deadline)
            num_tactics += expansion.num_tactics
            env_time += expansion.env_time_s
            keep_handles(expansion.children)
            policy_time += enqueue([child for child, _ in expansion.children])
            if on_expansion is not None:
                on_expansion(tree, node)
            if expansion.error is not None:
                error, stop_reason = expansion.error, StopReason.ENV_ERROR
                break
            if tree.status(ROOT) is not Status.OPEN:
                break  # proved or failed: even on the budget's last step, the result stands
            if expansion.out_of_time:
                stop_reason = StopReason.TIME_LIMIT
                break

        root_status = tree.status(ROOT)
        proof = tree.proof_tactics()
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
            num_tactics=num_tactics,
            num_states=tree.num_states,
            wall_time_s=clock() - started,
            startup_time_s=startup_time,
            env_time_s=env_time,
            policy_time_s=policy_time,
            error=error,
            tree=tree,
        )
    finally:
        env.close()
