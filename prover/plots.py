"""Pictures: the report's plots and the drawing of a search tree (SVG/PNG).

The one module that imports matplotlib, inside each function, on a figure of its own
with the Agg canvas (no global backend switch), so the rest of the tool imports fast and
runs without a display.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

from search import DEAD, QED, ROOT, SearchTree, Status

from prover.viz import PROOF_COLOUR, STATUS_COLOUR, _drawn_nodes, _layered_layout, _sorted_edges, primary_parents


def _figure(width: float = 7.0, height: float = 4.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # Agg, set on this figure only: no global backend switch
    return fig


def plot_pass_rate(runs: Sequence, stats: Sequence, labels: Sequence[str], path: Path) -> Path:
    """Cumulative fraction of the theorem set proved within at most x expansions."""
    fig = _figure()
    ax = fig.add_subplot()
    top = 1
    for run, stat, label in zip(runs, stats, labels):
        spent = sorted(r.num_expansions for r in run.records if r.proved)
        budget = max((r.num_expansions for r in run.records), default=0)
        top = max(top, budget)
        xs = [0] + spent + [max(budget, spent[-1] if spent else 0)]
        ys = [0.0] + [(i + 1) / max(stat.num_theorems, 1) for i in range(len(spent))] + [stat.pass_rate]
        ax.step(xs, ys, where="post", label=f"{label} ({stat.pass_rate:.1%})", linewidth=1.8)
    ax.set_xlim(0, top * 1.02)
    ax.set_ylim(0, 1)
    ax.set_xlabel("expansions (≤ x)")
    ax.set_ylabel("fraction of theorems proved")
    ax.set_title("Pass rate against expansions")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    fig.savefig(path, dpi=110)
    return path


def plot_time_histogram(runs: Sequence, labels: Sequence[str], path: Path) -> Path:
    """Histogram of wall time per theorem, shared bins for every run."""
    fig = _figure()
    ax = fig.add_subplot()
    times = [[r.wall_time_s for r in run.records] for run in runs]
    longest = max((max(t) for t in times if t), default=0.0)
    bins = [longest * i / 30 for i in range(31)] if longest > 0 else 1
    for values, label in zip(times, labels):
        ax.hist(values, bins=bins, alpha=0.6 if len(runs) > 1 else 0.85, label=f"{label} ({len(values)})")
    ax.set_xlabel("wall time per theorem (s)")
    ax.set_ylabel("theorems")
    ax.set_title("Time per theorem")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    fig.savefig(path, dpi=110)
    return path


def draw_tree(tree: SearchTree, path: str | Path, max_nodes: int = 200, image_format: str | None = None) -> Path:
    """Draw ``tree`` as a layered picture into ``path``: ``image_format`` svg or png, by
    default from the file's suffix.

    At most ``max_nodes`` states: the proof path and the earliest created, with a note of
    how many were left out. Tactic labels are drawn on the proof and, in small trees, on
    every edge; each state's failed tactics are a red count under it.
    """
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    path = Path(path)
    image_format = (image_format or path.suffix.lstrip(".")).lower()
    if image_format not in ("svg", "png"):
        raise ValueError(f"cannot draw a tree as '{image_format}'; name the file .svg or .png")
    parents = primary_parents(tree)
    drawn = _drawn_nodes(tree, parents, max_nodes)
    position, children = _layered_layout(tree, drawn, parents)
    proof = tree.proof_edges() or []
    proof_pairs = {(s, t) for s, t, _ in proof}
    proof_tactic = {(s, t): tac for s, t, tac in proof}
    last_proof = proof[-1][0] if proof else None

    width = max(position[n][0] for n in drawn) + 1
    levels = max(position[n][1] for n in drawn) + 1 + (1 if proof else 0)
    label_all = len(drawn) <= 40
    fig = Figure(figsize=(min(max(6.0, width * (1.1 if label_all else 0.18)), 40.0),
                          min(max(3.5, levels * 1.1 + 1.5), 30.0)))
    FigureCanvasAgg(fig)  # the Agg canvas renders both PNG and SVG; no global backend is set
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.86))
    ax.set_axis_off()

    def xy(node: int) -> tuple[float, float]:
        x, level = position[node]
        return x, -level

    plain, bold = [], []
    for node in drawn:
        for kid in children[node]:
            (bold if (node, kid) in proof_pairs else plain).append([xy(node), xy(kid)])
    ax.add_collection(LineCollection(plain, colors="#b8bec6", linewidths=0.8, zorder=1))
    ax.add_collection(LineCollection(bold, colors=PROOF_COLOUR, linewidths=2.6, zorder=2))
    qed_xy = None
    if last_proof is not None:
        qed_xy = (xy(last_proof)[0], xy(last_proof)[1] - 1)
        ax.add_collection(LineCollection([[xy(last_proof), qed_xy]], colors=PROOF_COLOUR, linewidths=2.6))
        ax.scatter([qed_xy[0]], [qed_xy[1]], s=260, marker="*", c=PROOF_COLOUR, zorder=4)
        ax.annotate("QED", qed_xy, xytext=(9, -3), textcoords="offset points", fontsize=9,
                    color=PROOF_COLOUR, fontweight="bold")
    size = 120 if label_all else max(8.0, 60.0 - len(drawn) / 5)
    ax.scatter([xy(n)[0] for n in drawn], [xy(n)[1] for n in drawn], s=size, zorder=3,
               c=[STATUS_COLOUR[tree.status(n)] for n in drawn],
               edgecolors=[PROOF_COLOUR if (n == ROOT and proof) or (parents.get(n), n) in proof_pairs else "white"
                           for n in drawn], linewidths=1.2)

    # Text: node numbers and failed counts in small trees, tactics on the proof always.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        for node in drawn:
            x, y = xy(node)
            if label_all:
                ax.annotate(str(node), (x, y), xytext=(0, 7), textcoords="offset points",
                            ha="center", fontsize=7, color="#333")
                failed = sum(1 for t, _, _ in tree.tactic_edges(node) if t == DEAD)
                if failed:
                    ax.annotate(f"✗{failed}", (x, y), xytext=(0, -12), textcoords="offset points",
                                ha="center", fontsize=7, color=STATUS_COLOUR[Status.FAILED])
            for kid in children[node]:
                tactic = proof_tactic.get((node, kid))
                if tactic is None and label_all:
                    tactic = next(tac for t, tac, _ in _sorted_edges(tree, node) if t == kid)
                if tactic is not None:
                    _edge_label(ax, xy(node), xy(kid), tactic, on_proof=(node, kid) in proof_pairs)
        if qed_xy is not None:
            _edge_label(ax, xy(last_proof), qed_xy, proof_tactic[(last_proof, QED)], on_proof=True)

        result = tree.graph.graph.get("result") or {}
        title = f"{tree.theorem}: {tree.status(ROOT).value}"
        stats = f"{tree.num_states} states, {tree.num_expanded} expansions"
        if result.get("wall_time_s") is not None:
            stats += f", {result['wall_time_s']:.3g} s"
        if len(drawn) < tree.num_states:
            stats += f" — showing {len(drawn)}: the proof path and the first expanded"
        fig.text(0.02, 0.965, title, fontsize=13, fontweight="bold", va="top")
        fig.text(0.02, 0.925, stats, fontsize=9, color="#444", va="top")
        legend = [Line2D([], [], marker="o", ls="", color=STATUS_COLOUR[s], label=s.value) for s in Status]
        legend.append(Line2D([], [], color=PROOF_COLOUR, lw=2.6, label="proof"))
        fig.legend(handles=legend, loc="upper left", bbox_to_anchor=(0.015, 0.9), ncols=4, fontsize=8, frameon=False)
        ax.set_xlim(-0.8, width - 0.2)
        ax.set_ylim(-levels + 0.5, 0.6)
        # svg.fonttype none keeps text as <text>, so the SVG is searchable and small.
        with rc_context({"svg.fonttype": "none"}):
            fig.savefig(path, format=image_format, dpi=110)
    return path


def _edge_label(ax, start, end, tactic: str, on_proof: bool) -> None:
    text = tactic.splitlines()[0]
    text = text if len(text) <= 28 else text[:27] + "…"
    ax.annotate(text, ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2), ha="center", va="center",
                fontsize=7, color=PROOF_COLOUR if on_proof else "#555", zorder=5,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})


# ---- GraphML ------------------------------------------------------------------------------
