"""One expansion step, shared by search algorithms: run a state's proposed tactics in the
environment and record what they did in the ``SearchTree``.

An algorithm decides which node to expand and with which proposals; ``expand_node`` does
the rest and reports which children are worth (re)queueing:

    context = proof_context(theorem, tree, node)
    proposals = merge_proposals(propose(policy, [tree.state(node)], [context], k)[0], k)
    expansion = expand_node(tree, node, handle, proposals, env, started=t0, deadline=t0 + 60)
    for child, child_handle in expansion.children: ...
"""

from __future__ import annotations

import math
import time
from operator import attrgetter
from typing import Callable, NamedTuple, Sequence

from search.protocols import (
    ContextualPolicy,
    EnvError,
    EnvTimeoutError,
    LeanError,
    ProofContext,
    ProofEnv,
    Proposal,
    TacticPolicy,
    TacticState,
    Theorem,
)
from search.tree import QED, SearchTree

# The score given to what a model calls impossible (-inf): lowest of all, and finite, so
# every score stays a number that JSON can hold.
LOWEST_SCORE = -1e9


def propose(
    policy: TacticPolicy, states: Sequence[str], contexts: Sequence[ProofContext], k: int
) -> list[list[Proposal]]:
    """``policy``'s proposals for ``states``: with their contexts where the policy reads them
    (a ``ContextualPolicy``), else from ``policy.propose(states, k)``."""
    if isinstance(policy, ContextualPolicy):
        return policy.propose_in_context(states, contexts, k)
    return policy.propose(states, k)


def proof_context(theorem: Theorem, tree: SearchTree, node: int) -> ProofContext:
    """The ``ProofContext`` of ``node``: the theorem (its full Lean name where known) and the
    tactics on the node's best path from the root."""
    return ProofContext(
        theorem.full_name or theorem.name, theorem.statement, tuple(tree.path_tactics(node)), theorem.attempt
    )


def merge_proposals(proposals: list[Proposal], k: int) -> list[Proposal]:
    """Strip tactics, drop empty ones, keep the best log-prob of duplicates, best k first.

    >>> merge_proposals([Proposal(" simp", -2.0), Proposal("simp", -0.5), Proposal("", 0.0)], 8)
    [Proposal(tactic='simp', logprob=-0.5)]
    """
    best: dict[str, Proposal] = {}
    for proposal in proposals:
        if not math.isfinite(proposal.logprob):
            if proposal.logprob != -math.inf:
                continue  # NaN or +inf: no score at all
            proposal = Proposal(proposal.tactic, LOWEST_SCORE)  # "impossible", but JSON-safe
        tactic = proposal.tactic.strip()
        if tactic and (tactic not in best or proposal.logprob > best[tactic].logprob):
            # The policy's own object where the tactic needed no stripping: most do.
            best[tactic] = proposal if tactic == proposal.tactic else Proposal(tactic, proposal.logprob)
    return sorted(best.values(), key=attrgetter("logprob"), reverse=True)[:k]  # stable: ties keep their order


class Expansion(NamedTuple):  # immutable, and about 3x quicker to build than a frozen dataclass
    """What one expansion did, beyond what it recorded in the tree."""

    # Unexpanded states this expansion created or reached by a better path, each with the
    # environment's handle to run tactics on it: the states to (re)queue.
    children: tuple[tuple[int, TacticState], ...]
    num_tactics: int  # tactics sent to the environment
    env_time_s: float
    out_of_time: bool  # the deadline passed before every proposal was tried
    error: str | None  # the environment failed for good: the search must end


def expand_node(
    tree: SearchTree,
    node: int,
    state: TacticState,
    proposals: list[Proposal],
    env: ProofEnv,
    *,
    started: float,
    deadline: float,
    clock: Callable[[], float] = time.perf_counter,
) -> Expansion:
    """Try ``proposals`` in order at ``node`` (whose handle is ``state``), then mark it expanded.

    Stops early at a tactic that proves the node (the others cannot matter), when
    ``clock()`` reaches ``deadline``, or when the environment fails for good (``EnvError``);
    the last two leave the expansion partial, so the node stays OPEN. A tactic that times
    out (``EnvTimeoutError``) is a failed edge and the expansion goes on. Times recorded
    in the tree are seconds since ``started``.
    """
    children: dict[int, TacticState] = {}
    num_tactics = 0
    env_time = 0.0
    out_of_time = False
    error = None
    run_tactic, add_outcome = env.run_tactic, tree.add_outcome
    for proposal in proposals:
        t0 = clock()
        if t0 >= deadline:
            out_of_time = True
            break
        timed_out = False
        try:
            outcome = run_tactic(state, proposal.tactic)
        except EnvTimeoutError as exc:
            outcome, timed_out = LeanError(f"timeout: {exc}"), True
        except EnvError as exc:
            env_time += clock() - t0
            error = f"the environment crashed: {exc}"
            break
        now = clock()
        elapsed = now - t0
        env_time += elapsed
        num_tactics += 1
        target, worth_queueing = add_outcome(
            node, proposal.tactic, proposal.logprob, outcome, elapsed, now - started, timed_out
        )
        if worth_queueing:
            children[target] = outcome  # type: ignore[assignment]  # a TacticState: it made a state
        elif target == QED:
            break
    tree.mark_expanded(node, t_s=clock() - started, partial=out_of_time or error is not None)
    return Expansion(tuple(children.items()), num_tactics, env_time, out_of_time, error)
