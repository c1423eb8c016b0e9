"""The search tree: a graph of goal states joined by tactics, kept as a ``networkx`` graph.

One node per distinct goal state (its pretty-printed text is its identity), so a state
reached by two tactic sequences is one node and the "tree" is a DAG. Two sink nodes
collect the leaves: ``QED`` (every tactic that finished the proof points there) and
``DEAD`` (every tactic that failed: a Lean error, a refused tactic, a ``sorry``, a cycle).
The graph is a ``networkx.MultiDiGraph`` whose edge key is the tactic, so each tactic
tried at a state is one edge, however many land on the same target.

Node status (``Status``) follows the goal-state semantics of LeanDojo, where a state
holds all remaining goals: a node is PROVED when some tactic leads to a PROVED node,
FAILED when it was fully expanded and every tactic leads to a FAILED node, else OPEN.
Changes propagate to parents as they happen; ``check_invariants`` verifies all of it.

The attributes of state nodes, sinks and edges are listed in ``NodeData``, ``SinkData``
and ``EdgeData``. They are plain JSON values (a status or an outcome is its enum's string
value, which compares equal to the member) and are saved to JSON as they are.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from enum import Enum
from pathlib import Path
from typing import Iterator, TypedDict

import networkx as nx

from search.protocols import LeanError, Outcome, ProofFinished, ProofGivenUp, TacticState
from search.scoring import NodeView

ROOT = 0
QED = -1  # sink for tactics that finished the proof
DEAD = -2  # sink for tactics that failed
SINKS = (QED, DEAD)
FORMAT_VERSION = 1


class Status(str, Enum):
    OPEN = "open"
    PROVED = "proved"
    FAILED = "failed"


class EdgeOutcome(str, Enum):
    """What a tactic did, as stored on its edge."""

    STATE = "state"  # led to a new or known open state
    PROVED = "proved"  # closed every goal
    ERROR = "error"  # Lean rejected it
    REFUSED = "refused"  # never sent to Lean: the environment's safety filter refused it
    GIVEN_UP = "given_up"  # closed the goals with sorry/admit
    CYCLE = "cycle"  # led back to the same state or to an ancestor
    TIMEOUT = "timeout"  # ran past the per-tactic time limit


# Node and edge attributes hold a status or an outcome as its plain string value
# (``Status.PROVED.value``), not as the enum member; the enums are the vocabulary, and
# being ``str`` enums they compare equal to their values (``attrs["status"] ==
# Status.PROVED``). Why: an attribute dict that holds only strings, numbers and None is
# never tracked by Python's cyclic garbage collector, and a dict holding an enum member is
# (a member is an object with a ``__dict__``). At 10,000 states that was half of the
# collector's time in a search (``benchmarks/engine_overhead.py``). The engine compares
# these values by identity: the tree stores only the values below, and ``from_json``
# maps what it reads onto them; ``check_invariants`` checks both.
_OPEN, _PROVED, _FAILED = Status.OPEN.value, Status.PROVED.value, Status.FAILED.value
_STATE, _ERROR, _CYCLE, _TIMEOUT, _PROVED_EDGE, _GIVEN_UP, _REFUSED = (
    EdgeOutcome.STATE.value,
    EdgeOutcome.ERROR.value,
    EdgeOutcome.CYCLE.value,
    EdgeOutcome.TIMEOUT.value,
    EdgeOutcome.PROVED.value,
    EdgeOutcome.GIVEN_UP.value,
    EdgeOutcome.REFUSED.value,
)
_STATUS_OF = {status.value: status for status in Status}
_STORED_STATUS = {status.value: status.value for status in Status}  # any equal string -> the stored one
_STORED_OUTCOME = {outcome.value: outcome.value for outcome in EdgeOutcome}


class NodeData(TypedDict):
    """The attributes of a goal-state node."""

    state: str  # the pretty-printed goals: the node's identity
    status: str  # a ``Status`` value
    depth: int  # tactics on the best known path from the root
    cumulative_logprob: float  # the policy's log-prob of that path
    distance: int | None  # tactics to a proof, once PROVED
    expanded_order: int | None  # position in the search order, once expanded
    partial: bool  # expansion cut short by the budget or a crash
    t_created_s: float  # search time when the state was first reached
    t_expanded_s: float | None
    priority: float | None  # the scorer's score when last queued, once queued
    value: float | None  # the value model's score, when the search has one


class SinkData(TypedDict):
    """The attributes of the two sinks, ``QED`` and ``DEAD``."""

    state: str  # a label: "no goals" or "failed tactics"
    status: str  # the ``Status`` value PROVED for QED, FAILED for DEAD
    distance: int | None  # 0 for QED, None for DEAD
    sink: bool  # always True


class EdgeData(TypedDict):
    """The attributes of a tactic edge (its key in the multigraph is the tactic too)."""

    tactic: str
    logprob: float  # the policy's log-prob of the tactic
    outcome: str  # an ``EdgeOutcome`` value
    error: str  # why it failed ("" unless it points at DEAD)
    time_s: float  # time the environment took to run it
    step: int  # the expansion it belongs to (``expanded_order`` of its source)


# A large tree is mostly its node and edge attribute dicts. Built as the ``__dict__`` of
# an instance, such a dict shares its key table with every other instance of the class
# (PEP 412) and holds only its values: 184 bytes instead of 472 for a node, 144 instead
# of 280 for an edge. At 100,000 states, memory to allocate, touch and garbage-collect is
# most of what the engine's time per tactic grows by (``benchmarks/engine_overhead.py``).
# The dicts are ordinary dicts in every other way.


class _NodeAttributes:
    """Makes a state node's attribute dict: ``_NodeAttributes(...).__dict__`` (see NodeData)."""

    def __init__(self, state: str, depth: int, cumulative_logprob: float, t_s: float):
        self.state = state
        self.status = _OPEN
        self.depth = depth
        self.cumulative_logprob = cumulative_logprob
        self.distance = None
        self.expanded_order = None
        self.partial = False
        self.t_created_s = t_s
        self.t_expanded_s = None
        self.priority = None
        self.value = None


class _EdgeAttributes:
    """Makes a tactic edge's attribute dict: ``_EdgeAttributes(...).__dict__`` (see EdgeData)."""

    def __init__(self, tactic: str, logprob: float, outcome: str, error: str, time_s: float, step: int):
        self.tactic = tactic
        self.logprob = logprob
        self.outcome = outcome
        self.error = error
        self.time_s = time_s
        self.step = step


MAX_TREE_BYTES = 256 << 20  # a tree of thousands of expansions is tens of MB of JSON


class TreeFormatError(ValueError):
    """A saved tree file that cannot be read back."""


class SearchTree:
    """A DAG of goal states; see the module docstring for its rules.

    >>> tree = SearchTree("t", "⊢ 1 + 1 = 2")
    >>> tree.add_outcome(ROOT, "norm_num", -0.1, ProofFinished())
    (-1, False)
    >>> tree.mark_expanded(ROOT)
    >>> tree.status(ROOT), tree.proof_tactics()
    (<Status.PROVED: 'proved'>, ['norm_num'])
    """

    def __init__(self, theorem: str, root_state: str):
        self._node_by_state: dict[str, int] = {}
        self._num_expanded = 0
        self._use(nx.MultiDiGraph(theorem=theorem, format_version=FORMAT_VERSION))
        self.graph.add_node(QED, state="no goals", status=_PROVED, distance=0, sink=True)
        self.graph.add_node(DEAD, state="failed tactics", status=_FAILED, distance=None, sink=True)
        self._add_state(root_state, depth=0, cumulative_logprob=0.0, t_s=0.0)

    def _use(self, graph: nx.MultiDiGraph) -> None:
        """Hold ``graph`` and its inner dicts.

        The hot path (one call per tactic) reads and writes networkx's documented
        dict-of-dicts layout directly, as its own ``add_node``/``add_edge`` do: ``_node``
        (node -> attributes), ``_succ``/``_pred`` (node -> neighbour -> tactic -> edge
        attributes, the innermost dicts shared by both). Going through ``add_edge`` and
        the graph's views cost more than everything else the engine does per tactic.
        Backend caching is off for this graph, since these writes do not clear the cache.
        """
        graph.__networkx_cache__ = None
        self.graph = graph
        self._nodes: dict[int, dict] = graph._node
        self._succ: dict[int, dict[int, dict[str, dict]]] = graph._succ
        self._pred: dict[int, dict[int, dict[str, dict]]] = graph._pred

    # ---- reading -------------------------------------------------------------------------

    @property
    def theorem(self) -> str:
        return self.graph.graph["theorem"]

    @property
    def num_states(self) -> int:
        """Distinct goal states, the root included, the two sinks not."""
        return len(self._node_by_state)

    @property
    def num_expanded(self) -> int:
        return self._num_expanded

    def node(self, node: int) -> NodeData:
        """The node's attributes, live: the search writes ``priority`` and ``value`` here."""
        return self._nodes[node]  # type: ignore[return-value]

    def view(self, node: int) -> NodeView:
        """What a ``Scorer`` sees of ``node``."""
        attrs = self._nodes[node]
        return NodeView(attrs["cumulative_logprob"], attrs["depth"], attrs["value"])

    def status(self, node: int = ROOT) -> Status:
        return _STATUS_OF[self._nodes[node]["status"]]

    def state(self, node: int) -> str:
        return self._nodes[node]["state"]

    def node_of(self, state: str) -> int | None:
        return self._node_by_state.get(state)

    def path_tactics(self, node: int) -> list[str]:
        """The tactics from the root to ``node``, first tactic first, along the path that
        gave ``node`` its ``cumulative_logprob`` and ``depth`` (its best known path).

        Walks up one parent per step: the parent whose own score plus the edge's log-prob
        is the node's score (an expanded node's score no longer changes, so the sum is
        exact); failing an exact match, the best-scoring parent.
        """
        tactics: list[str] = []
        nodes, pred = self._nodes, self._pred
        seen = {node}
        while node != ROOT:
            target = nodes[node]["cumulative_logprob"]
            best: tuple[float, int, str] | None = None
            for parent, by_tactic in pred[node].items():
                if parent in seen:
                    continue
                base = nodes[parent]["cumulative_logprob"]
                for tactic, attrs in by_tactic.items():
                    score = base + attrs["logprob"]
                    if score == target and nodes[parent]["depth"] + 1 == nodes[node]["depth"]:
                        best = (math.inf, parent, tactic)
                        break
                    if best is None or score > best[0]:
                        best = (score, parent, tactic)
                if best is not None and best[0] == math.inf:
                    break
            if best is None:  # cannot happen in a tree grown by add_outcome: every state has a parent
                break
            tactics.append(best[2])
            node = best[1]
            seen.add(node)
        tactics.reverse()
        return tactics

    def tactic_edges(self, node: int) -> Iterator[tuple[int, str, EdgeData]]:
        """(target, tactic, edge attributes) for every tactic tried at ``node``."""
        for target, by_tactic in self._succ[node].items():
            for tactic, attrs in by_tactic.items():
                yield target, tactic, attrs

    # ---- growing -------------------------------------------------------------------------

    def _add_state(self, state: str, depth: int, cumulative_logprob: float, t_s: float) -> int:
        node = len(self._node_by_state)
        self._node_by_state[state] = node
        self._succ[node] = {}
        self._pred[node] = {}
        self._nodes[node] = _NodeAttributes(state, depth, cumulative_logprob, t_s).__dict__
        return node

    def add_outcome(
        self,
        source: int,
        tactic: str,
        logprob: float,
        outcome: Outcome,
        time_s: float = 0.0,
        t_s: float = 0.0,
        timed_out: bool = False,
    ) -> tuple[int, bool]:
        """Record that ``tactic`` at ``source`` gave ``outcome``.

        Returns ``(target node, worth_queueing)``: the second is true when the target is an
        unexpanded state whose best score this edge created or improved, so the search
        should (re)queue it.
        """
        error = ""
        worth_queueing = False
        if isinstance(outcome, TacticState):
            target = self._node_by_state.get(outcome.pp)
            attrs = self._nodes[source]
            cumulative = attrs["cumulative_logprob"] + logprob
            if target is None:
                target = self._add_state(outcome.pp, attrs["depth"] + 1, cumulative, t_s)
                kind = _STATE
                worth_queueing = True
            elif self._reaches(target, source):
                kind, error, target = _CYCLE, "returns to an earlier state", DEAD
            else:
                kind = _STATE
                known = self._nodes[target]
                if known["expanded_order"] is None and cumulative > known["cumulative_logprob"]:
                    known["cumulative_logprob"] = cumulative
                    known["depth"] = attrs["depth"] + 1
                    worth_queueing = True
        elif isinstance(outcome, LeanError):
            kind = _TIMEOUT if timed_out else _REFUSED if outcome.refused else _ERROR
            error, target = outcome.error, DEAD
        elif isinstance(outcome, ProofFinished):
            kind, target = _PROVED_EDGE, QED
        elif isinstance(outcome, ProofGivenUp):
            kind, error, target = _GIVEN_UP, "the proof was given up (sorry)", DEAD
        else:
            raise TypeError(f"not an outcome: {outcome!r}")
        # What ``graph.add_edge(source, target, key=tactic, **data)`` does, without its overhead.
        by_target = self._succ[source]
        by_tactic = by_target.get(target)
        if by_tactic is None:
            by_tactic = by_target[target] = self._pred[target][source] = {}
        by_tactic[tactic] = _EdgeAttributes(tactic, logprob, kind, error, time_s, self._num_expanded).__dict__
        return target, worth_queueing

    def _reaches(self, start: int, goal: int) -> bool:
        """Whether a path leads from ``start`` to ``goal`` (so an edge goal->start closes a cycle)."""
        if start == goal:
            return True
        if not self._succ[start]:
            return False  # unexpanded: the common case, and nothing leads on from it
        # Walk up from ``goal``: in best-first search its ancestors are few compared
        # with ``start``'s descendants.
        pred = self._pred
        seen = {goal}
        stack = [goal]
        while stack:
            for parent in pred[stack.pop()]:
                if parent == start:
                    return True
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return False

    def mark_expanded(self, node: int, t_s: float = 0.0, partial: bool = False) -> None:
        """Close ``node``'s expansion and update its status and its ancestors'."""
        attrs = self._nodes[node]
        if attrs["expanded_order"] is None:
            attrs["expanded_order"] = self._num_expanded
            attrs["t_expanded_s"] = t_s
            self._num_expanded += 1
        attrs["partial"] = partial
        self._refresh(node)

    def _derive(self, node: int) -> tuple[Status, int | None]:
        nodes = self._nodes
        best_distance = None
        all_failed = True
        for target in self._succ[node]:
            if target == DEAD:
                continue  # failed: changes neither the proof nor "all failed"
            child = nodes[target]
            status = child["status"]
            if status is _PROVED:
                distance = child["distance"] + 1
                if best_distance is None or distance < best_distance:
                    best_distance = distance
            elif status is _OPEN:
                all_failed = False
        if best_distance is not None:
            return _PROVED, best_distance
        attrs = nodes[node]
        if all_failed and attrs["expanded_order"] is not None and not attrs["partial"]:
            return _FAILED, None
        return _OPEN, None

    def _refresh(self, node: int) -> None:
        nodes = self._nodes
        pending = [node]
        while pending:
            current = pending.pop()
            attrs = nodes[current]
            status, distance = self._derive(current)
            if status is attrs["status"] and distance == attrs["distance"]:
                continue
            attrs["status"] = status
            attrs["distance"] = distance
            pending.extend(self._pred[current])

    # ---- proofs --------------------------------------------------------------------------

    def proof_edges(self) -> list[tuple[int, int, str]] | None:
        """The shortest proof as (source, target, tactic) steps, or None if unproved.

        Among equally short proofs, the one whose tactics the policy scored highest.
        """
        if self.status(ROOT) is not Status.PROVED:
            return None
        nodes = self.graph.nodes
        steps = []
        node = ROOT
        while node != QED:
            wanted = nodes[node]["distance"] - 1
            best = None
            for target, tactic, attrs in self.tactic_edges(node):
                child = nodes[target]
                if child["status"] is _PROVED and child["distance"] == wanted:
                    if best is None or attrs["logprob"] > best[2]:
                        best = (target, tactic, attrs["logprob"])
            assert best is not None, "a PROVED node has a PROVED child one step closer"
            steps.append((node, best[0], best[1]))
            node = best[0]
        return steps

    def proof_tactics(self) -> list[str] | None:
        edges = self.proof_edges()
        return None if edges is None else [tactic for _, _, tactic in edges]

    # ---- checking ------------------------------------------------------------------------

    def check_invariants(self) -> None:
        """Raise AssertionError if the tree breaks any of its rules."""
        g = self.graph
        assert nx.is_directed_acyclic_graph(g), "the search graph has a cycle"
        assert g.nodes[QED]["status"] is _PROVED and not g.succ[QED]
        assert g.nodes[DEAD]["status"] is _FAILED and not g.succ[DEAD]
        assert len(self._node_by_state) == g.number_of_nodes() - len(SINKS)
        expanded_orders = set()
        for state, node in self._node_by_state.items():
            attrs = g.nodes[node]
            assert attrs.keys() == NodeData.__annotations__.keys(), f"node {node} has attributes {sorted(attrs)}"
            assert attrs["state"] == state, f"node {node} lost its state"
            for score in ("priority", "value"):
                assert attrs[score] is None or isinstance(attrs[score], float), f"node {node} {score} is not a float"
            assert node == ROOT or g.pred[node], f"node {node} is unreachable"
            if attrs["expanded_order"] is None:
                assert not g.succ[node], f"unexpanded node {node} has children"
            else:
                assert attrs["expanded_order"] not in expanded_orders
                expanded_orders.add(attrs["expanded_order"])
            status, distance = self._derive(node)
            assert attrs["status"] is status, f"node {node} is {attrs['status']}, should be {status}"
            assert attrs["distance"] == distance, f"node {node} distance {attrs['distance']} != {distance}"
            if attrs["expanded_order"] is None and node != ROOT:
                best = max(
                    g.nodes[p]["cumulative_logprob"] + e["logprob"]
                    for p, by_tactic in g.pred[node].items()
                    for e in by_tactic.values()
                )
                assert abs(attrs["cumulative_logprob"] - best) < 1e-9, f"node {node} score is stale"
        assert len(expanded_orders) == self._num_expanded
        for source, target, tactic, attrs in g.edges(keys=True, data=True):
            assert source not in SINKS, "a sink has an outgoing edge"
            assert attrs.keys() == EdgeData.__annotations__.keys(), f"edge {source}->{target} has {sorted(attrs)}"
            assert attrs["tactic"] == tactic
            assert attrs["outcome"] is _STORED_OUTCOME.get(attrs["outcome"], ...), f"edge {source}->{target} outcome"
            assert g.pred[target][source][tactic] is attrs, f"edge {source}->{target} is missing from pred"
        assert sum(len(keys) for p in g.pred.values() for keys in p.values()) == g.number_of_edges()

    # ---- saving --------------------------------------------------------------------------

    def to_json(self) -> dict:
        """A JSON-ready dict (networkx node-link format) that ``from_json`` reads back whole."""
        data = nx.node_link_data(self.graph, edges="edges")
        data["graph"] = dict(self.graph.graph, num_expanded=self._num_expanded)
        return data

    @classmethod
    def from_json(cls, data: dict) -> "SearchTree":
        try:
            graph = nx.node_link_graph(data, directed=True, multigraph=True, edges="edges")
            tree = cls.__new__(cls)
            graph.graph = dict(graph.graph)  # networkx shares the caller's dict: leave that as it was
            tree._num_expanded = graph.graph.pop("num_expanded")
            for node, attrs in graph.nodes(data=True):
                attrs["status"] = _STORED_STATUS[attrs["status"]]
                if node not in SINKS:  # trees saved before scores were kept have neither
                    attrs.setdefault("priority", None)
                    attrs.setdefault("value", None)
            for *_, attrs in graph.edges(keys=True, data=True):
                attrs["outcome"] = _STORED_OUTCOME[attrs["outcome"]]
            tree._use(graph)
            tree._node_by_state = {attrs["state"]: node for node, attrs in graph.nodes(data=True) if node not in SINKS}
            if graph.graph.get("format_version") != FORMAT_VERSION or ROOT not in graph:
                raise ValueError("missing format version or root")
        except (AttributeError, KeyError, TypeError, ValueError, nx.NetworkXError, RecursionError) as exc:
            raise TreeFormatError(
                f"not a search tree saved by this tool ({type(exc).__name__})"
                if isinstance(exc, RecursionError)
                else f"not a search tree saved by this tool ({exc})"
            ) from None
        return tree

    def save(self, path: str | Path, extra: dict | None = None) -> None:
        """Write the tree (and ``extra`` metadata, e.g. the search result) to a JSON file,
        gzip-compressed when ``path`` ends in ``.gz`` (about a tenth of the size)."""
        data = self.to_json()
        if extra:
            data["graph"]["result"] = extra
        encoded = json.dumps(data, ensure_ascii=False).encode("utf-8")
        if str(path).endswith(".gz"):
            encoded = gzip.compress(encoded, compresslevel=6, mtime=0)  # mtime 0: same tree, same bytes
        Path(path).write_bytes(encoded)

    @classmethod
    def load(cls, path: str | Path) -> "SearchTree":
        """Read a tree ``save`` wrote, compressed or not (told by the content, not the name).

        At most ``MAX_TREE_BYTES`` of JSON are read or decompressed: a file that holds more
        (a gzip bomb) is refused before it fills the memory.
        """
        too_large = TreeFormatError(
            f"{path} holds more than {MAX_TREE_BYTES >> 20} MiB of JSON once decompressed; "
            "it is not a tree this tool saved"
        )
        try:
            if Path(path).stat().st_size > MAX_TREE_BYTES:
                raise too_large
            encoded = Path(path).read_bytes()
            if encoded[:2] == b"\x1f\x8b":  # gzip's magic number
                inflater = zlib.decompressobj(wbits=31)  # gzip framing
                encoded = inflater.decompress(encoded, MAX_TREE_BYTES + 1)
                if len(encoded) > MAX_TREE_BYTES:
                    raise too_large
                if not inflater.eof:
                    raise EOFError("the compressed data ends early")
            data = json.loads(encoded)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise TreeFormatError(f"{path} is a damaged gzip file ({exc})") from None
        except OSError as exc:
            raise TreeFormatError(f"cannot read tree file {path}: {exc.strerror}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TreeFormatError(f"{path} is not valid JSON ({exc})") from None
        except RecursionError:
            raise TreeFormatError(f"{path} is nested too deeply to be a search tree saved by this tool") from None
        if not isinstance(data, dict):
            raise TreeFormatError(f"{path} is not a search tree saved by this tool")
        return cls.from_json(data)
