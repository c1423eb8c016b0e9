"""Showing a saved search tree: as text, as a self-contained HTML page, as a picture, as GraphML.

    tree = SearchTree.load("runs/demo/trees/synthetic_0002.json")
    print(render_text(tree))                              # an outline in the terminal
    Path("tree.html").write_text(render_html(tree))       # an interactive page, works offline
    render_image(tree, "tree.svg")                        # a static picture (.svg or .png)
    write_graphml(tree, "tree.graphml")                   # for Gephi, yEd, Cytoscape, networkx

The HTML page is one file: its script and style (``prover/assets/tree_view.*``, plain
JavaScript, no library) and the tree's data are inlined, so it opens without a network.
It stays usable at 10,000 states because it builds rows only for the nodes a reader opens.

Every view shows the tree as a spanning tree of its DAG: each state hangs under one
*primary* parent (its proof predecessor on the proof path, else its earliest-created
parent); other tactics that reach the same state point to it instead of repeating it.
"""

from __future__ import annotations

import html
import json
import re
from enum import Enum
from pathlib import Path
from typing import Any

import networkx as nx

from search import DEAD, QED, ROOT, SearchTree, Status

MARK = {Status.PROVED: "✓", Status.FAILED: "✗", Status.OPEN: "·"}
STATUS_COLOUR = {Status.PROVED: "#2e9d4f", Status.FAILED: "#d0453b", Status.OPEN: "#9aa3ad"}
PROOF_COLOUR = "#1a7f37"
ASSETS = Path(__file__).parent / "assets"  # package data: see pyproject's package-data


def _first_line(text: str, width: int = 70) -> str:
    goal = next((line for line in text.splitlines() if line.lstrip().startswith("⊢")), text.strip())
    goal = " ".join(goal.split())
    return goal if len(goal) <= width else goal[: width - 1] + "…"


def render_text(tree: SearchTree, show_failed: bool = False, max_lines: int = 400) -> str:
    """An indented outline of the tree from the root; the proof path is marked with ``*``.

    A state reached again is shown once and referred to by its number after that. Failed
    tactics are summarised as a count unless ``show_failed``.
    """
    proof = {(s, t, tac) for s, t, tac in (tree.proof_edges() or [])}
    result = tree.graph.graph.get("result", {})
    header = (
        f"theorem {tree.theorem}: {tree.status(ROOT).value}"
        f", {tree.num_states} states, {tree.num_expanded} expansions"
    )
    if result.get("wall_time_s") is not None:
        header += f", {result['wall_time_s']:.2f} s"
    lines = [header]
    if result.get("proof"):
        lines.append("proof: " + "; ".join(result["proof"]))
    seen: set[int] = set()

    def describe(node: int) -> str:
        attrs = tree.node(node)
        order = attrs["expanded_order"]
        when = f" #{order}" if order is not None else ""
        return f"[{node}] {MARK[attrs['status']]}{when} {_first_line(attrs['state'])}"

    def walk(node: int, indent: str) -> None:
        seen.add(node)
        edges = sorted(tree.tactic_edges(node), key=lambda e: -e[2]["logprob"])
        failed = [e for e in edges if e[0] == DEAD]
        shown = edges if show_failed else [e for e in edges if e[0] != DEAD]
        for target, tactic, attrs in shown:
            if len(lines) >= max_lines:
                return
            star = "*" if (node, target, tactic) in proof else " "
            label = f"{indent}{star} {tactic.splitlines()[0]}  ({attrs['logprob']:.2f})"
            if target == QED:
                lines.append(f"{label} → QED ✓")
            elif target == DEAD:
                lines.append(f"{label} → ✗ {attrs['outcome'].value}: {_first_line(attrs['error'], 50)}")
            elif target in seen:
                lines.append(f"{label} → [{target}] (shown above)")
            else:
                lines.append(f"{label} → {describe(target)}")
                walk(target, indent + "    ")
        if failed and not show_failed and len(lines) < max_lines:
            lines.append(f"{indent}  ({len(failed)} failed tactic{'s' if len(failed) > 1 else ''})")

    lines.append(describe(ROOT))
    walk(ROOT, "  ")
    if len(lines) >= max_lines:
        lines.append(f"… cut at {max_lines} lines")
    return "\n".join(lines)


# ---- the spanning tree every picture draws ------------------------------------------------


def primary_parents(tree: SearchTree) -> dict[int, int]:
    """Each state's parent in the drawn spanning tree (the root maps to nothing).

    Proof-path states hang under their proof predecessor, so the proof is one unbroken
    branch; every other state hangs under its lowest-numbered parent. Node numbers are
    creation order and a state is created by an edge from an existing one, so that parent
    is numbered lower and the parents of any first-N states are among them.
    """
    parents: dict[int, int] = {}
    for node in tree.graph.nodes:
        if node in (ROOT, QED, DEAD):
            continue
        sources = [p for p in tree.graph.pred[node] if p not in (QED, DEAD)]
        parents[node] = min(sources)
    for source, target, _ in tree.proof_edges() or []:
        if target != QED:
            parents[target] = source
    return parents


def _sorted_edges(tree: SearchTree, node: int) -> list[tuple[int, str, dict[str, Any]]]:
    # The policy's ranking: the order the tactics were proposed in.
    return sorted(tree.tactic_edges(node), key=lambda e: -e[2]["logprob"])


# ---- HTML ---------------------------------------------------------------------------------


def view_data(tree: SearchTree) -> dict:
    """The tree as the HTML page's script reads it: compact arrays, states in full.

    ``nodes[i]`` is ``[id, status, depth, expanded_order, t_created_s, t_expanded_s,
    cumulative_logprob, distance, partial, parent, state]`` and ``edges[i]`` lists node i's
    tactics, best log-prob first, as ``[target, tactic, logprob, outcome, error, time_s,
    step]``; targets -1 and -2 are QED and DEAD.
    """
    parents = primary_parents(tree)
    nodes, edges = [], []
    for node in sorted(n for n in tree.graph.nodes if n not in (QED, DEAD)):
        a = tree.node(node)
        nodes.append([
            node, a["status"].value, a["depth"], a["expanded_order"], a["t_created_s"], a["t_expanded_s"],
            a["cumulative_logprob"], a["distance"], a["partial"], parents.get(node, None), a["state"],
        ])
        edges.append([
            [target, tactic, e["logprob"], e["outcome"].value, e["error"], e["time_s"], e["step"]]
            for target, tactic, e in _sorted_edges(tree, node)
        ])
    result = tree.graph.graph.get("result") or {}
    return {
        "theorem": tree.theorem,
        "status": tree.status(ROOT).value,
        "num_states": tree.num_states,
        "num_expanded": tree.num_expanded,
        "result": {k: v for k, v in result.items() if isinstance(v, (str, int, float, list, type(None)))},
        "proof": [[s, t, tactic] for s, t, tactic in tree.proof_edges() or []],
        "nodes": nodes,
        "edges": edges,
    }


def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def _script_json(data: dict) -> str:
    # Inside <script> the text must not contain "</script" or "<!--"; escaping every "<"
    # as \u003c keeps it valid JSON and inert HTML.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def render_html(tree: SearchTree) -> str:
    """A self-contained, offline HTML page to explore ``tree`` in a browser.

    Nodes coloured by status, the proof path highlighted and open, tactics labelled with
    their log-prob and time, failed tactics folded per state, a node's full goal state and
    timing on click, a search box over tactics and goals, and stepping in search order.
    """
    result = tree.graph.graph.get("result") or {}
    wall = result.get("wall_time_s")
    fields = {
        "title": html.escape(f"{tree.theorem} — search tree"),
        "theorem": html.escape(tree.theorem),
        "status": tree.status(ROOT).value,
        "num_states": str(tree.num_states),
        "num_expanded": str(tree.num_expanded),
        "num_tactics": str(tree.graph.number_of_edges()),
        "wall_time": "" if wall is None else html.escape(f" · {wall:.3g} s"),
        "css": _asset("tree_view.css"),
        "js": _asset("tree_view.js"),
        "data": _script_json(view_data(tree)),
    }
    # One pass over the template only, so text inside the data is never substituted.
    return re.sub(r"\{\{(\w+)\}\}", lambda m: fields[m.group(1)], _asset("tree_view.html"))


# ---- static pictures ----------------------------------------------------------------------


def _drawn_nodes(tree: SearchTree, parents: dict[int, int], max_nodes: int) -> list[int]:
    """The states a picture shows: all of them, or the proof path plus the first states the
    search expanded, each with its chain of primary parents so the drawing stays connected."""
    states = [n for n in tree.graph.nodes if n not in (QED, DEAD)]
    if len(states) <= max_nodes:
        return sorted(states)
    chosen = {ROOT} | {t for _, t, _ in tree.proof_edges() or [] if t != QED}
    for node in sorted(states, key=lambda n: (tree.node(n)["expanded_order"] is None,
                                              tree.node(n)["expanded_order"] or 0, n)):
        chain = []
        while node not in chosen:
            chain.append(node)
            node = parents[node]
        if len(chosen) + len(chain) > max_nodes:
            break
        chosen.update(chain)
    return sorted(chosen)


def _layered_layout(tree, drawn, parents) -> tuple[dict[int, tuple[float, int]], dict[int, list[int]]]:
    """x from the order of leaves in a depth-first walk, parents centred over their children;
    y = level in the spanning tree."""
    drawn_set = set(drawn)
    rank = {}
    for node in drawn:
        rank[node] = {t: i for i, (t, _, _) in enumerate(_sorted_edges(tree, node))}
    children: dict[int, list[int]] = {n: [] for n in drawn}
    for node in drawn:
        if node != ROOT and parents[node] in drawn_set:
            children[parents[node]].append(node)
    for node, kids in children.items():
        kids.sort(key=lambda k: rank[node].get(k, 0))
    position: dict[int, tuple[float, int]] = {}
    next_leaf = 0.0
    # Iterative post-order: trees may be deeper than Python's recursion limit.
    stack: list[tuple[int, int, bool]] = [(ROOT, 0, False)]
    while stack:
        node, level, done = stack.pop()
        kids = children[node]
        if not kids:
            position[node] = (next_leaf, level)
            next_leaf += 1
        elif done:
            position[node] = ((position[kids[0]][0] + position[kids[-1]][0]) / 2, level)
        else:
            stack.append((node, level, True))
            stack.extend((kid, level + 1, False) for kid in reversed(kids))
    return position, children


def graphml_graph(tree: SearchTree) -> nx.MultiDiGraph:
    """A copy of the tree's graph with only the scalar attributes GraphML can hold.

    Enums become their values, None values are left out (GraphML's "unset"), the search
    record becomes a JSON string, and ``on_proof`` marks the proof's nodes and edges.
    """
    proof = tree.proof_edges() or []
    proof_edges = {(s, t, tac) for s, t, tac in proof}
    proof_nodes = {ROOT} | {t for _, t, _ in proof} if proof else set()

    def scalar(attrs: dict) -> dict:
        out = {}
        for key, value in attrs.items():
            if value is None:
                continue
            if isinstance(value, Enum):
                value = value.value
            elif isinstance(value, (dict, list, tuple)):
                value = json.dumps(value, ensure_ascii=False)
            out[key] = value
        return out

    graph = nx.MultiDiGraph(**scalar(tree.graph.graph), num_states=tree.num_states)
    for node, attrs in tree.graph.nodes(data=True):
        graph.add_node(node, **scalar(attrs), on_proof=node in proof_nodes)
    for source, target, tactic, attrs in tree.graph.edges(keys=True, data=True):
        graph.add_edge(source, target, key=tactic, **scalar(attrs), on_proof=(source, target, tactic) in proof_edges)
    return graph


def write_graphml(tree: SearchTree, path: str | Path) -> Path:
    """Write ``tree`` as GraphML (nodes keep their numbers, edges their tactic as id)."""
    path = Path(path)
    nx.write_graphml(graphml_graph(tree), path)
    return path
