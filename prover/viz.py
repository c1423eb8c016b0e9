"""Showing a saved search tree. ``render_text`` draws it in the terminal.

    print(render_text(SearchTree.load("runs/demo/trees/synthetic_0000.json")))
"""

from __future__ import annotations

from search import DEAD, QED, ROOT, SearchTree, Status

MARK = {Status.PROVED: "✓", Status.FAILED: "✗", Status.OPEN: "·"}


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
