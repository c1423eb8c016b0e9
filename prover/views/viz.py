"""Showing a saved search tree: as text, as a self-contained HTML page, as a picture, as GraphML.

    tree = SearchTree.load("runs/demo/trees/synthetic_0002.json.gz")
    print(render_text(tree))                              # an outline in the terminal
    Path("tree.html").write_text(render_html(tree))       # an interactive page, works offline
    render_image(tree, "tree.svg")                        # a static picture (.svg or .png)
    write_graphml(tree, "tree.graphml")                   # for Gephi, yEd, Cytoscape, networkx

The HTML page is one file: its script and style (``prover/views/assets/tree_view.*``, plain
JavaScript, no library) and the tree's data are inlined, so it opens without a network.
It stays usable at 10,000 states because it builds rows only for the nodes a reader opens,
and at depth 100 because indentation stops at a cap. ``render_run_html`` is the page that
lists a whole run (``prover/views/assets/run_view.*``; ``prover.views.report.write_run_browser`` writes
it with a page per tree). Text from trees and runs is data: the pages put it in the DOM
as text, never as markup.

Every view shows the tree as a spanning tree of its DAG: each state hangs under one
*primary* parent (its proof predecessor on the proof path, else its earliest-created
parent); other tactics that reach the same state point to it instead of repeating it.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any, Iterable

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
        f"theorem {tree.theorem}: {tree.status(ROOT).value}, {tree.num_states} states, {tree.num_expanded} expansions"
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
                lines.append(f"{label} → ✗ {attrs['outcome']}: {_first_line(attrs['error'], 50)}")
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

# What a tactic application did, as the pages count it: the edge outcome (the safety
# filter's refusals are edges of their own outcome, "refused", apart from Lean's errors).
ERROR_KINDS = {
    "error": "Lean error",
    "refused": "refused",
    "timeout": "timeout",
    "given_up": "gave up (sorry)",
    "cycle": "cycle",
}


def error_kind(outcome: str, error: str) -> str:
    """The name a page gives a failed tactic's outcome: ``refused`` for the safety filter,
    ``not recorded`` for a tactic the replay environment has no record of (Lean never ran
    it; trees of older runs say ``replay: `…` was never recorded``)."""
    if outcome == "error" and error.startswith("refused:"):
        return "refused"  # a tree saved before refusals had an outcome of their own
    if outcome == "error" and (
        error.startswith("not recorded:") or (error.startswith("replay: `") and "was never recorded" in error)
    ):
        return "not recorded"
    return ERROR_KINDS.get(outcome, outcome)


def count_goals(state: str) -> int:
    """Goals in a pretty-printed state: one ``⊢`` line each (at least 1)."""
    return max(1, sum(1 for line in state.splitlines() if line.lstrip().startswith("⊢")))


def overview(tree: SearchTree, top: int = 25) -> dict:
    """The search at a glance, for the page's overview panel.

    ``depth_states``/``depth_expanded``: states and expanded states per depth;
    ``frontier``: the unexpanded open states, highest priority first, as ``[id, priority,
    depth, goals]`` (``num_frontier`` counts them all); ``fewest_goals`` and ``deepest``:
    open states closest to a proof by those two measures; ``errors``: failed tactics per
    kind; ``top_errors``: the commonest error messages (first line) with their counts.
    """
    states = [n for n in tree.graph.nodes if n not in (QED, DEAD)]
    depth_states: list[int] = []
    depth_expanded: list[int] = []
    frontier, alive = [], []
    for node in states:
        a = tree.node(node)
        depth = a["depth"]
        while len(depth_states) <= depth:
            depth_states.append(0)
            depth_expanded.append(0)
        depth_states[depth] += 1
        if a["expanded_order"] is not None:
            depth_expanded[depth] += 1
        if a["status"] == Status.OPEN:
            goals = count_goals(a["state"])
            alive.append((node, goals, depth, a.get("priority")))
            if a["expanded_order"] is None:
                frontier.append([node, a.get("priority"), depth, goals])

    def rank(row: list) -> tuple:
        # No priority (a tree saved before scores were kept): the path's log-prob instead.
        score = row[1] if row[1] is not None else tree.node(row[0])["cumulative_logprob"]
        return row[1] is None, -score, row[0]

    frontier.sort(key=rank)
    fewest = sorted(alive, key=lambda a: (a[1], -a[2], a[0]))[:10]
    deepest = sorted(alive, key=lambda a: (-a[2], a[1], a[0]))[:10]
    errors: dict[str, int] = {}
    messages: dict[str, int] = {}
    for source in states:
        for attrs in tree.graph.succ[source].get(DEAD, {}).values():
            kind = error_kind(attrs["outcome"], attrs["error"])
            errors[kind] = errors.get(kind, 0) + 1
            first = " ".join((attrs["error"].strip().splitlines() or [""])[0].split())[:160]
            messages[first] = messages.get(first, 0) + 1
    result = tree.graph.graph.get("result") or {}
    return {
        "stop_reason": result.get("stop_reason"),
        "depth_states": depth_states,
        "depth_expanded": depth_expanded,
        "num_frontier": len(frontier),
        "frontier": frontier[:top],
        "fewest_goals": [[n, g, d] for n, g, d, _ in fewest],
        "deepest": [[n, g, d] for n, g, d, _ in deepest],
        "errors": dict(sorted(errors.items(), key=lambda kv: -kv[1])),
        "top_errors": sorted(messages.items(), key=lambda kv: -kv[1])[:12],
    }


def view_data(tree: SearchTree) -> dict:
    """The tree as the HTML page's script reads it: compact arrays, states in full.

    ``nodes[i]`` is ``[id, status, depth, expanded_order, t_created_s, t_expanded_s,
    cumulative_logprob, distance, partial, parent, priority, value, state]`` and
    ``edges[i]`` lists node i's tactics, best log-prob first, as ``[target, tactic, logprob,
    outcome, error, time_s, step]``; targets -1 and -2 are QED and DEAD. ``overview`` is
    ``overview(tree)``.
    """
    parents = primary_parents(tree)
    nodes, edges = [], []
    for node in sorted(n for n in tree.graph.nodes if n not in (QED, DEAD)):
        a = tree.node(node)
        nodes.append(
            [
                node,
                a["status"],
                a["depth"],
                a["expanded_order"],
                a["t_created_s"],
                a["t_expanded_s"],
                a["cumulative_logprob"],
                a["distance"],
                a["partial"],
                parents.get(node, None),
                a.get("priority"),
                a.get("value"),
                a["state"],
            ]
        )
        edges.append(
            [
                [target, tactic, e["logprob"], e["outcome"], e["error"], e["time_s"], e["step"]]
                for target, tactic, e in _sorted_edges(tree, node)
            ]
        )
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
        "overview": overview(tree),
    }


def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def viewer_mtime() -> float:
    """When the pages' code last changed (this module or an asset): older pages are stale."""
    return max(p.stat().st_mtime for p in [Path(__file__), *ASSETS.iterdir()])


def _script_json(data: dict) -> str:
    # Inside <script> the text must not contain "</script" or "<!--"; escaping every "<"
    # as \u003c keeps it valid JSON and inert HTML.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def _fill(template: str, fields: dict[str, str]) -> str:
    # One pass over the template only, so text inside the data is never substituted.
    return re.sub(r"\{\{(\w+)\}\}", lambda m: fields[m.group(1)], _asset(template))


def _nav_html(nav: dict | None) -> str:
    if not nav:
        return ""
    links = []
    for key, text in (("index", "↑ all theorems"), ("prev", "◀ previous"), ("next", "next ▶")):
        href = nav.get(key)
        links.append(
            f'<a id="nav-{key}" href="{html.escape(href, quote=True)}">{text}</a>'
            if href
            else f'<span class="muted">{text}</span>'
        )
    return '<nav class="runnav">' + " · ".join(links) + "</nav>"


def render_html(tree: SearchTree, nav: dict | None = None) -> str:
    """A self-contained, offline HTML page to explore ``tree`` in a browser.

    Nodes coloured by status, the proof path highlighted and open, an overview of the
    search (depth histogram, frontier by priority, states closest to a proof, error kinds),
    tactics labelled with their log-prob and time, failed tactics folded per state, a
    node's full goal state, priority and timing on click, a search box over tactics, goals
    and errors, keyboard navigation, and stepping in search order. ``nav`` (hrefs under
    ``index``, ``prev``, ``next``) links the page into a run's browser.
    """
    result = tree.graph.graph.get("result") or {}
    wall = result.get("wall_time_s")
    return _fill(
        "tree_view.html",
        {
            "title": html.escape(f"{_first_line(tree.theorem, 80)} — search tree"),
            "theorem": html.escape(tree.theorem),
            "nav": _nav_html(nav),
            "status": html.escape(tree.status(ROOT).value),
            "num_states": str(tree.num_states),
            "num_expanded": str(tree.num_expanded),
            "num_tactics": str(tree.graph.number_of_edges()),
            "wall_time": "" if wall is None else html.escape(f" · {wall:.3g} s"),
            "css": _asset("tree_view.css"),
            "js": _asset("tree_view.js"),
            "data": _script_json(view_data(tree)),
        },
    )


def render_run_html(data: dict) -> str:
    """The run browser's index page (``prover.views.report.run_page_data`` builds ``data``): every
    theorem with its status, proof length, expansions and time, sortable, filterable and
    searchable, each linked to its tree page. Self-contained, like the tree pages."""
    return _fill(
        "run_view.html",
        {
            "title": html.escape(f"{data['name']} — run"),
            "css": _asset("run_view.css"),
            "js": _asset("run_view.js"),
            "data": _script_json(data),
        },
    )


# ---- static pictures ----------------------------------------------------------------------


def marked_states(tree: SearchTree, frontier: int = 5, deepest: int = 3) -> list[tuple[str, int]]:
    """The states a picture of an unproved search names: ``("F1", node)``… for the frontier
    states of highest priority (those the search would have expanded next) and ``("D1",
    node)``… for the deepest open states. None for a proved tree: its proof says enough."""
    if tree.status(ROOT) is Status.PROVED:
        return []
    summary = overview(tree, top=frontier)
    marks = [(f"F{i + 1}", row[0]) for i, row in enumerate(summary["frontier"][:frontier])]
    named = {node for _, node in marks}
    deep = [row[0] for row in summary["deepest"] if row[0] not in named][:deepest]
    return marks + [(f"D{i + 1}", node) for i, node in enumerate(deep)]


def _drawn_nodes(tree: SearchTree, parents: dict[int, int], max_nodes: int, marked: Iterable[int] = ()) -> list[int]:
    """The states a picture shows: all of them, or the proof path, then the ``marked``
    states, then the first states the search expanded, each with its chain of primary
    parents so the drawing stays connected."""
    states = [n for n in tree.graph.nodes if n not in (QED, DEAD)]
    if len(states) <= max_nodes:
        return sorted(states)
    chosen = {ROOT} | {t for _, t, _ in tree.proof_edges() or [] if t != QED}
    by_order = sorted(
        states, key=lambda n: (tree.node(n)["expanded_order"] is None, tree.node(n)["expanded_order"] or 0, n)
    )
    marked = list(marked)
    for index, node in enumerate([*marked, *by_order]):
        chain = []
        while node not in chosen:
            chain.append(node)
            node = parents[node]
        if len(chosen) + len(chain) > max_nodes:
            if index < len(marked):
                continue  # a marked state too deep to fit; the next may
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

    None values are left out (GraphML's "unset"), the search
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
            if isinstance(value, (dict, list, tuple)):
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
