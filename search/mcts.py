"""Monte-Carlo tree search over tactic states: PUCT with the policy's priors, and RMaxTS.

Each iteration walks from the root to an unexpanded state, at every expanded state
taking the open child with the highest PUCT score

    Q(child) + c_puct * P(child) * sqrt(N(state)) / (1 + N(child))

where ``P`` is the policy's probability of the best tactic to the child, normalised over
the state's open children, ``N`` counts visits and ``Q`` is the mean value backed up
through the child (before its first visit: its critic value as a probability, or, with
no critic, its parent's mean). The state reached is expanded with ``expand_node``, the
step best-first search uses (so trees, budgets, re-check, ``viz`` and ``report`` are the
same), and one value is backed up along the path:

- 1 when the expansion proved the state (the search then ends: the root is proved too);
- with a ``ValueModel``: the best of the new children's values as probabilities
  (``exp(value)``: the critic's value is a log-probability), AlphaZero-style, no rollout;
- without one, a rollout-free estimate: the share of the tactics tried that led to an
  open state (a state where nothing fails scores 1, a dead end 0).

``rmaxts`` is DeepSeek-Prover-V1.5's variant for sparse rewards: the value backed up is
an intrinsic reward, 1 when the expansion reached at least one state the tree did not
hold and 0 otherwise (with a critic, the mean of that and the critic's estimate), and
the statistics are discounted (``gamma``: each visit multiplies a node's count and value
sum by gamma before adding), so a region that stops yielding new states loses its pull.

Failed states are never selected (the tree marks them as it learns them), and a state
reached by two paths is one node whose statistics both paths share. Each state's
``priority`` in the tree is its current mean value, so the views' "frontier by priority"
shows what MCTS would visit.

    result = mcts_search(theorem, policy, env, SearchLimits(max_expansions=64))
    result = rmaxts_search(theorem, policy, env, SearchLimits(max_expansions=64))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from search.best_first import _fewer_young_collections
from search.common import Handles, clock, finish_search, score_states, start_search
from search.expand import expand_node, merge_proposals, proof_context, propose
from search.protocols import ProofEnv, TacticPolicy, Theorem, ValueModel
from search.results import SearchLimits, SearchResult, StopReason
from search.scoring import Scorer, cumulative_logprob
from search.tree import ROOT, SINKS, SearchTree, Status


@dataclass(frozen=True)
class MCTSSettings:
    """The knobs of MCTS; the defaults are the registered ``mcts`` and ``rmaxts``."""

    c_puct: float = 1.5  # weight of the prior-driven exploration term
    intrinsic: bool = False  # RMaxTS: back up 1 for reaching new states, else 0
    gamma: float = 1.0  # discount of the visit statistics (RMaxTS: 0.99)


MCTS = MCTSSettings()
RMAXTS = MCTSSettings(intrinsic=True, gamma=0.99)


def mcts_search(
    theorem: Theorem,
    policy: TacticPolicy,
    env: ProofEnv,
    limits: SearchLimits = SearchLimits(),
    scorer: Scorer = cumulative_logprob,
    value_model: ValueModel | None = None,
    on_expansion: Callable[[SearchTree, int], None] | None = None,
    settings: MCTSSettings = MCTS,
) -> SearchResult:
    """Search for a proof of ``theorem`` with PUCT; the contract of ``best_first_search``
    (budgets, statuses, re-check, the environment closed on return). ``scorer`` plays no
    part: the visit order comes from the priors and the backed-up values."""
    with _fewer_young_collections():
        return _Search(theorem, policy, env, limits, value_model, on_expansion, settings).run()


def rmaxts_search(
    theorem: Theorem,
    policy: TacticPolicy,
    env: ProofEnv,
    limits: SearchLimits = SearchLimits(),
    scorer: Scorer = cumulative_logprob,
    value_model: ValueModel | None = None,
    on_expansion: Callable[[SearchTree, int], None] | None = None,
) -> SearchResult:
    """``mcts_search`` with RMaxTS's intrinsic reward for new states and discounted statistics."""
    return mcts_search(theorem, policy, env, limits, scorer, value_model, on_expansion, settings=RMAXTS)


class _Search:
    def __init__(self, theorem, policy, env, limits, value_model, on_expansion, settings: MCTSSettings):
        self.theorem, self.policy, self.env, self.limits = theorem, policy, env, limits
        self.value_model, self.on_expansion, self.settings = value_model, on_expansion, settings
        self.visits: dict[int, float] = {}  # N, discounted for RMaxTS
        self.value_sum: dict[int, float] = {}  # W

    def run(self) -> SearchResult:
        try:
            started_or_failed = start_search(self.theorem, self.env)
            if isinstance(started_or_failed, SearchResult):
                return started_or_failed
            initial, counters = started_or_failed
            tree = self.tree = SearchTree(self.theorem.name, initial.pp)
            handles = Handles()
            handles.keep([(ROOT, initial)])
            counters.policy_time_s += score_states(tree, self.value_model, [ROOT])
            deadline = counters.started + self.limits.time_limit_s
            k = self.limits.tactics_per_node
            error, stop_reason = None, StopReason.EXHAUSTED
            while True:
                if tree.num_expanded >= self.limits.max_expansions:
                    stop_reason = StopReason.MAX_EXPANSIONS
                    break
                if clock() >= deadline:
                    stop_reason = StopReason.TIME_LIMIT
                    break
                path = self._select()
                if path is None:
                    break  # nothing open to visit: exhausted (or open but unreachable)
                leaf = path[-1]
                t0 = clock()
                proposed = propose(self.policy, [tree.state(leaf)], [proof_context(self.theorem, tree, leaf)], k)[0]
                counters.policy_time_s += clock() - t0
                states_before = tree.num_states
                expansion = expand_node(
                    tree,
                    leaf,
                    handles.take(tree, leaf),
                    merge_proposals(proposed, k),
                    self.env,
                    started=counters.started,
                    deadline=deadline,
                )
                counters.num_tactics += expansion.num_tactics
                counters.env_time_s += expansion.env_time_s
                handles.keep(expansion.children)
                counters.policy_time_s += score_states(tree, self.value_model, [c for c, _ in expansion.children])
                value = self._leaf_value(leaf, expansion.num_tactics, tree.num_states > states_before)
                self._backup(path, value)
                cancelled = self.on_expansion is not None and self.on_expansion(tree, leaf) is True
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
            return finish_search(self.theorem, self.env, tree, stop_reason, error, counters)
        finally:
            self.env.close()

    # ---- the three steps -------------------------------------------------------------------

    def _select(self) -> list[int] | None:
        """The path from the root to the unexpanded open state PUCT picks, or None."""
        tree = self.tree
        node = ROOT
        path = [ROOT]
        while tree.node(node)["expanded_order"] is not None:
            children = self._open_children(node)
            if not children:
                return None  # an open expanded state with no open child: cut short by a crash or the clock
            parent_visits = self.visits.get(node, 0.0)
            parent_mean = self._mean(node, default=0.5)
            total = sum(math.exp(logprob) for logprob in children.values())
            scale = self.settings.c_puct * math.sqrt(parent_visits + 1)
            best, best_score = None, -math.inf
            for child, logprob in children.items():
                prior = math.exp(logprob) / total if total > 0 else 1 / len(children)
                score = self._mean(child, default=parent_mean) + scale * prior / (1 + self.visits.get(child, 0.0))
                if score > best_score:
                    best, best_score = child, score
            node = best
            path.append(node)
        return path

    def _leaf_value(self, leaf: int, num_tactics: int, reached_new_states: bool) -> float:
        tree = self.tree
        status = tree.status(leaf)
        if status is Status.PROVED:
            return 1.0
        intrinsic = 1.0 if reached_new_states else 0.0
        if status is Status.FAILED:
            estimate = 0.0
        elif self.value_model is not None:
            values = [tree.node(c)["value"] for c in self._open_children(leaf)]
            estimate = max((math.exp(min(v, 0.0)) for v in values if v is not None), default=0.0)
        else:
            open_edges = sum(1 for target, _, _ in tree.tactic_edges(leaf) if target not in SINKS)
            estimate = open_edges / max(num_tactics, 1)
        if not self.settings.intrinsic:
            return estimate
        return intrinsic if self.value_model is None else (intrinsic + estimate) / 2

    def _backup(self, path: list[int], value: float) -> None:
        gamma = self.settings.gamma
        tree = self.tree
        for node in path:
            self.visits[node] = gamma * self.visits.get(node, 0.0) + 1.0
            self.value_sum[node] = gamma * self.value_sum.get(node, 0.0) + value
            tree.node(node)["priority"] = self.value_sum[node] / self.visits[node]
        for child in self._open_children(path[-1]):
            attrs = tree.node(child)
            if attrs["priority"] is None:
                attrs["priority"] = self._mean(child, default=tree.node(path[-1])["priority"])

    # ---- helpers ---------------------------------------------------------------------------

    def _open_children(self, node: int) -> dict[int, float]:
        """Open child states of ``node``, each with the best log-prob of a tactic leading there."""
        tree = self.tree
        children: dict[int, float] = {}
        for target, _, attrs in tree.tactic_edges(node):
            if target in SINKS or tree.status(target) is not Status.OPEN:
                continue
            if attrs["logprob"] > children.get(target, -math.inf):
                children[target] = attrs["logprob"]
        return children

    def _mean(self, node: int, default: float) -> float:
        visits = self.visits.get(node, 0.0)
        if visits > 0:
            return self.value_sum[node] / visits
        value = self.tree.node(node)["value"]
        if value is not None:  # the critic's log-probability that the state is provable
            return math.exp(min(value, 0.0))
        return default
