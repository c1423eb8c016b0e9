"""Pictures: the report's plots and the drawing of a search tree (SVG/PNG).

The one module that imports matplotlib, inside each function, on a figure of its own
with the Agg canvas (no global backend switch), so the rest of the tool imports fast and
runs without a display.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Callable, Sequence

from search import DEAD, QED, ROOT, SearchTree, Status

from prover.views.viz import (
    PROOF_COLOUR,
    STATUS_COLOUR,
    _drawn_nodes,
    _layered_layout,
    _sorted_edges,
    marked_states,
    primary_parents,
)
from prover.views.viz import (
    _first_line as goal_line,
)


def _figure(width: float = 7.0, height: float = 4.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # Agg, set on this figure only: no global backend switch
    return fig


PLOT_FILES = {
    "expansions": "pass_rate_vs_expansions.png",
    "tactics": "pass_rate_vs_tactics.png",
    "time": "pass_rate_vs_time.png",
    "cdf": "time_to_proof_cdf.png",
    "proof_length": "proof_length.png",
    "scatter": "expansions_scatter.png",
    "outcomes": "outcomes.png",
}
PROMISING_COLOUR = "#0b3d91"  # the way to an unproved search's best frontier state (F1)
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def write_report_plots(runs: Sequence, stats: Sequence, labels: Sequence[str], out_dir: Path) -> list[Path]:
    """Every plot of a report, as PNGs in ``out_dir``; the scatter only for two runs or more
    (every other run against the first, a panel each)."""
    costs = [
        (
            "expansions",
            lambda r: r.num_expansions,
            "expansions per theorem (budget ≤ x)",
            "Pass rate against expansions",
        ),
        (
            "tactics",
            lambda r: r.num_tactics,
            "tactic applications per theorem (budget ≤ x)",
            "Pass rate against tactic applications",
        ),
        ("time", lambda r: r.wall_time_s, "search time per theorem, s (budget ≤ x)", "Pass rate against search time"),
    ]
    labels = plot_labels(labels)
    plots = [
        plot_pass_rate(runs, stats, labels, out_dir / PLOT_FILES[key], cost, xlabel, title)
        for key, cost, xlabel, title in costs
    ]
    plots.append(plot_time_to_proof_cdf(runs, labels, out_dir / PLOT_FILES["cdf"]))
    plots.append(plot_proof_lengths(runs, labels, out_dir / PLOT_FILES["proof_length"]))
    if len(runs) >= 2:
        plots.append(plot_expansions_scatter(runs, labels, out_dir / PLOT_FILES["scatter"]))
    plots.append(plot_outcomes(stats, labels, out_dir / PLOT_FILES["outcomes"]))
    return plots


def plot_labels(labels: Sequence[str], width: int = 44) -> list[str]:
    """Runs' labels as the plots show them: paths (runs in folders of the same name) lose
    the parts they all share, first the leading ones, then the trailing ones if still long:
    ``/x/first/run``, ``/x/second/run`` -> ``first/run``, ``second/run``."""
    if len(labels) < 2 or all(len(label) <= width for label in labels):
        return list(labels)
    parts = [label.split("/") for label in labels]
    while all(len(p) > 1 for p in parts) and len({p[0] for p in parts}) == 1:
        parts = [p[1:] for p in parts]
    cut = False
    while (
        any(len("/".join(p)) > width for p in parts)
        and all(len(p) > 1 for p in parts)
        and len({p[-1] for p in parts}) == 1
    ):
        parts, cut = [p[:-1] for p in parts], True
    return ["/".join(p + ["…"] if cut else p) for p in parts]


def _colour(i: int) -> str:
    return COLOURS[i % len(COLOURS)]


def _log_x_helps(values: Sequence[float]) -> bool:
    """A log axis when the values spread over more than a factor of 20."""
    positive = [v for v in values if v > 0]
    return bool(positive) and max(positive) / min(positive) > 20


def _legend_below(fig, entries: int, title: str | None = None) -> None:
    """The legend under the axes, outside them, so it never hides a curve: one entry a line
    when the entries are long (the figure's layout makes room for every line), so a legend
    is never wider than its figure."""
    texts = [text for ax in fig.axes for text in ax.get_legend_handles_labels()[1]]
    longest = max((len(text) for text in texts), default=0)
    columns = 1 if longest * min(entries, 3) > 95 else min(entries, 3)
    fig.legend(
        loc="outside lower center", ncols=max(columns, 1), fontsize=8.5, frameon=False, title=title, title_fontsize=8.5
    )


def _short(label: str, width: int = 44) -> str:
    """A run's label as a plot shows it: the end of a long path (the part that tells runs apart)."""
    return label if len(label) <= width else "…" + label[-(width - 1) :]


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    return path


def _log_axis(ax, which: str = "x") -> None:
    """A log axis with plain tick labels (1, 10, 0.01: no mathtext, which is slow to lay
    out) and unlabelled minor ticks."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def _integer_axis(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def plot_pass_rate(
    runs: Sequence,
    stats: Sequence,
    labels: Sequence[str],
    path: Path,
    cost: Callable = lambda r: r.num_expansions,
    xlabel: str = "expansions per theorem (budget ≤ x)",
    title: str = "Pass rate against expansions",
) -> Path:
    """The fraction of the whole theorem set proved within a budget of x (of ``cost``): the
    pass rate a run with that budget would have had. Log x when the costs spread widely."""
    from matplotlib.ticker import PercentFormatter

    fig = _figure()
    ax = fig.add_subplot()
    every = [cost(r) for run in runs for r in run.records]
    log_x = _log_x_helps(every)
    floor = min((v for v in every if v > 0), default=1.0) if log_x else 0.0
    top_x = max(every, default=1) or 1
    top_y = 0.0
    for i, (run, stat, label) in enumerate(zip(runs, stats, labels)):
        spent = sorted(max(cost(r), floor) for r in run.records if r.proved)
        budget = max((cost(r) for r in run.records), default=0)
        xs = [floor] + spent + [max(budget, spent[-1] if spent else floor, floor)]
        ys = [0.0] + [(k + 1) / max(stat.num_theorems, 1) for k in range(len(spent))] + [stat.pass_rate]
        low, high = stat.pass_rate_ci
        ax.step(
            xs,
            ys,
            where="post",
            linewidth=1.8,
            color=_colour(i),
            label=f"{_short(label)}: {stat.pass_rate:.1%} ({low:.0%}–{high:.0%})",
        )
        top_y = max(top_y, stat.pass_rate)
    if log_x:
        _log_axis(ax)
        ax.set_xlim(floor / 1.15, top_x * 1.15)
    else:
        ax.set_xlim(0, top_x * 1.02)
    ax.set_ylim(0, min(1.0, max(0.1, top_y * 1.25)))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(xlabel + (" (log scale)" if log_x else ""))
    ax.set_ylabel("theorems proved (% of the set)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both" if log_x else "major")
    _legend_below(fig, len(runs), title="pass rate (95% interval)")
    return _save(fig, path)


def plot_time_to_proof_cdf(runs: Sequence, labels: Sequence[str], path: Path) -> Path:
    """Of the theorems each run proved, the fraction proved within x seconds of search."""
    from matplotlib.ticker import PercentFormatter

    fig = _figure()
    ax = fig.add_subplot()
    times = [sorted(r.wall_time_s for r in run.records if r.proved) for run in runs]
    every = [t for ts in times for t in ts]
    log_x = _log_x_helps(every)
    floor = min((t for t in every if t > 0), default=1e-3)
    for i, (values, label) in enumerate(zip(times, labels)):
        if not values:
            ax.plot([], [], color=_colour(i), label=f"{_short(label)}: no proofs")
            continue
        xs = [max(v, floor) if log_x else v for v in values]
        ys = [(k + 1) / len(values) for k in range(len(values))]
        ax.step(
            [xs[0]] + xs,
            [0.0] + ys,
            where="post",
            linewidth=1.8,
            color=_colour(i),
            label=f"{_short(label)}: {len(values)} proofs, median {percentile_text(values)} s",
        )
    if log_x:
        _log_axis(ax)
    elif every:
        ax.set_xlim(0, max(every) * 1.05 or 1)
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("search time to proof, s" + (" (log scale)" if log_x else ""))
    ax.set_ylabel("proofs found within x (% of proofs)")
    ax.set_title("Time to proof (cumulative)")
    ax.grid(alpha=0.3, which="both" if log_x else "major")
    _legend_below(fig, len(runs))
    return _save(fig, path)


def percentile_text(values: Sequence[float]) -> str:
    ordered = sorted(values)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return f"{median:.3g}"


def plot_proof_lengths(runs: Sequence, labels: Sequence[str], path: Path) -> Path:
    """How many tactics each proof has: one bar per length and run, side by side."""
    fig = _figure()
    ax = fig.add_subplot()
    lengths = [[len(r.proof) for r in run.records if r.proved and r.proof] for run in runs]
    longest = max((max(ls) for ls in lengths if ls), default=1)
    width = 0.8 / len(runs)
    for i, (values, label) in enumerate(zip(lengths, labels)):
        counts = [values.count(n) for n in range(1, longest + 1)]
        xs = [n - 0.4 + width * (i + 0.5) for n in range(1, longest + 1)]
        ax.bar(xs, counts, width=width, color=_colour(i), label=f"{_short(label)} ({len(values)} proofs)")
    ax.set_xlim(0.4, longest + 0.6)
    _integer_axis(ax.xaxis)
    _integer_axis(ax.yaxis)
    ax.set_xlabel("proof length (tactics)")
    ax.set_ylabel("proofs")
    ax.set_title("Proof length")
    ax.grid(alpha=0.3, axis="y")
    _legend_below(fig, len(runs))
    return _save(fig, path)


def plot_expansions_scatter(runs: Sequence, labels: Sequence[str], path: Path) -> Path:
    """Per theorem recorded by both runs, expansions to proof in the first run (x) against
    another (y), a panel for each other run; a theorem only one of them proved sits on the
    other's "not proved" line."""
    others = len(runs) - 1
    columns = min(others, 3)
    rows = -(-others // columns)
    fig = _figure(5.4 * columns + 0.6, 5.0 * rows + 0.4)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    first = {r.theorem: r for r in runs[0].records}
    spent = [r.num_expansions for run in runs for r in run.records if r.proved]
    missing = max(max(spent, default=1) * 2.0, 2.0)  # where "not proved" is drawn, beyond every proof
    first_label = _short(labels[0], 30)
    for index, ax in enumerate(axes):
        if index >= others:
            ax.set_visible(False)
            continue
        other, other_label = runs[index + 1], _short(labels[index + 1], 30)
        b = {r.theorem: r for r in other.records}
        shared = [name for name in first if name in b]
        groups = {
            "both proved": ([], [], "#1f77b4", "o"),
            f"only {first_label}": ([], [], "#d62728", "v"),
            f"only {other_label}": ([], [], "#2ca02c", "<"),
        }
        neither = 0
        for name in shared:
            x = max(first[name].num_expansions, 1) if first[name].proved else None
            y = max(b[name].num_expansions, 1) if b[name].proved else None
            if x is None and y is None:
                neither += 1
                continue
            key = "both proved" if x and y else f"only {first_label}" if x else f"only {other_label}"
            groups[key][0].append(x or missing)
            groups[key][1].append(y or missing)
        for key, (xs, ys, colour, marker) in groups.items():
            ax.scatter(xs, ys, s=28, c=colour, marker=marker, alpha=0.75, label=f"{key} ({len(xs)})", zorder=3)
        ax.plot([1, missing], [1, missing], color="#888", lw=0.8, ls="--", zorder=1, label="equal cost")
        ax.axhline(missing, color="#bbb", lw=0.8, zorder=1)
        ax.axvline(missing, color="#bbb", lw=0.8, zorder=1)
        _log_axis(ax, "x")
        _log_axis(ax, "y")
        ax.set_xlim(0.8, missing * 1.6)
        ax.set_ylim(0.8, missing * 1.6)
        ax.text(missing, 0.85, " not proved", rotation=90, va="bottom", ha="right", fontsize=8, color="#666")
        ax.text(0.85, missing, "not proved", va="bottom", ha="left", fontsize=8, color="#666")
        ax.set_xlabel(f"expansions to proof: {first_label} (log)")
        ax.set_ylabel(f"expansions to proof: {other_label} (log)")
        ax.set_title(f"{len(shared)} theorems in both; {neither} proved by neither", fontsize=9.5)
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="best", fontsize=7.5, framealpha=0.85)  # each panel's groups are its own
    fig.suptitle(
        "Expansions to proof, per theorem" + (f": every run against {_short(labels[0], 40)}" if others > 1 else "")
    )
    return _save(fig, path)


STATUS_PLOT_COLOUR = {
    "proved": "#2e9d4f",
    "rejected": "#e3a21a",
    "open": "#9aa3ad",
    "failed": "#d0453b",
    "error": "#6f42c1",
}
OUTCOME_PLOT_COLOUR = {
    "new state": "#8fb8de",
    "closed goal": "#2e9d4f",
    "Lean error": "#d0453b",
    "not recorded": "#c9b99a",
    "refused": "#6f42c1",
    "timeout": "#e3a21a",
    "gave up (sorry)": "#8c564b",
    "cycle": "#9aa3ad",
}


MIN_SHARE = 0.02  # the narrowest slice drawn: one proof in 500 tactics is still seen


def visible_shares(counts: Sequence[int], floor: float = MIN_SHARE) -> list[float]:
    """``counts`` as shares of their sum, every non-zero share at least ``floor`` (the others
    narrowed in proportion), so a rare outcome (a closed goal among hundreds of errors) is
    still a slice. The shares still sum to 1.

    >>> [round(x, 3) for x in visible_shares([1, 999])]
    [0.02, 0.98]
    """
    total = sum(counts)
    if not total:
        return [0.0] * len(counts)
    shares = [c / total for c in counts]
    small = [0 < x < floor for x in shares]
    raised = floor * sum(small)
    rest = sum(x for x, low in zip(shares, small) if not low)
    if raised >= 1 or rest <= 0:
        return shares
    return [floor if low else x * (1 - raised) / rest for x, low in zip(shares, small)]


def plot_outcomes(stats: Sequence, labels: Sequence[str], path: Path) -> Path:
    """Left: each run's theorems by status. Right: its tactic applications by outcome (from
    the saved trees), as shares, with the counts in the legend."""
    from matplotlib.ticker import PercentFormatter

    fig = _figure(10.5, 2.4 + 0.5 * len(stats))
    left_fig, right_fig = fig.subfigures(1, 2)
    left, right = left_fig.subplots(), right_fig.subplots()
    ys = list(range(len(stats)))[::-1]
    short = [label if len(label) <= 20 else "…" + label[-19:] for label in labels]
    statuses = list(dict.fromkeys(k for s in stats for k, v in s.counts.items() if v))
    starts = [0] * len(stats)
    for status in statuses:
        counts = [s.counts.get(status, 0) for s in stats]
        left.barh(
            ys,
            counts,
            left=starts,
            color=STATUS_PLOT_COLOUR.get(status, "#555"),
            height=0.6,
            label=f"{status} ({' / '.join(str(c) for c in counts)})",
        )
        starts = [a + b for a, b in zip(starts, counts)]
    unfinished = [s.num_unfinished for s in stats]
    if any(unfinished):
        left.barh(
            ys,
            unfinished,
            left=starts,
            color="white",
            edgecolor="#999",
            hatch="//",
            height=0.6,
            label=f"not yet run ({' / '.join(str(c) for c in unfinished)})",
        )
    left.set_yticks(ys, short)
    _integer_axis(left.xaxis)
    left.set_xlabel("theorems")
    left.set_title("Theorems by status")
    left_fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    kinds = [k for k in OUTCOME_PLOT_COLOUR if any(s.tactic_outcomes.get(k) for s in stats)]
    starts = [0.0] * len(stats)
    totals = [sum(s.tactic_outcomes.values()) for s in stats]
    drawn = [visible_shares([s.tactic_outcomes.get(k, 0) for k in kinds]) for s in stats]
    for column, kind in enumerate(kinds):
        counts = [s.tactic_outcomes.get(kind, 0) for s in stats]
        shares = [row[column] for row in drawn]
        right.barh(
            ys,
            shares,
            left=starts,
            color=OUTCOME_PLOT_COLOUR[kind],
            height=0.6,
            edgecolor="white",
            linewidth=0.6,
            label=f"{kind} ({' / '.join(str(c) for c in counts)})",
        )
        starts = [a + b for a, b in zip(starts, shares)]
    right.set_yticks(ys, [f"{label}\n{total} tactics" for label, total in zip(short, totals)])
    right.set_xlim(0, 1)
    right.xaxis.set_major_formatter(PercentFormatter(1.0))
    right.set_xlabel(
        f"share of tactic applications (from the saved trees)\n"
        f"a share under {MIN_SHARE:.0%} is drawn {MIN_SHARE:.0%} wide"
    )
    right.set_title("Tactic applications by outcome")
    if kinds:
        right_fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return _save(fig, path)


def draw_tree(tree: SearchTree, path: str | Path, max_nodes: int = 200, image_format: str | None = None) -> Path:
    """Draw ``tree`` as a layered picture into ``path``: ``image_format`` svg or png, by
    default from the file's suffix (see ``tree_figure`` for what is drawn). In an SVG every
    state has a tooltip (``<title>``) with its number, status, depth, priority and goals.
    """
    from matplotlib import rc_context

    path = Path(path)
    image_format = (image_format or path.suffix.lstrip(".")).lower()
    if image_format not in ("svg", "png"):
        raise ValueError(f"cannot draw a tree as '{image_format}'; name the file .svg or .png")
    fig, drawn, tag_of = tree_figure(tree, max_nodes, state_artists=image_format == "svg")
    # svg.fonttype none keeps text as <text>, so the SVG is searchable and small.
    with warnings.catch_warnings(), rc_context({"svg.fonttype": "none"}):
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        if image_format == "svg":
            buffer = io.BytesIO()
            fig.savefig(buffer, format="svg", dpi=110)
            path.write_bytes(_svg_with_tooltips(buffer.getvalue(), tree, drawn, tag_of))
        else:
            fig.savefig(path, format=image_format, dpi=110)
    return path


def tree_figure(tree: SearchTree, max_nodes: int = 200, state_artists: bool = False):
    """The picture of ``tree``: ``(figure, states drawn, tag of each tagged state)``.

    At most ``max_nodes`` states: the proof path (or, for an unproved search, the frontier
    states of highest priority, tagged F1…, and the deepest open states, D1…), then the
    earliest expanded, with a note of how many were left out. Tactic labels are drawn on
    the proof and, in small trees, on every edge; each state's failed tactics are a red
    count under it. Tagged states are listed under the drawing with their goal. The
    title, subtitle, legend and that list sit in bands of their own, measured in inches.
    ``state_artists`` draws each state as an artist of its own, with the id ``state-<n>``
    (what an SVG's tooltips hang on; slower to draw than one artist for all).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    parents = primary_parents(tree)
    marks = marked_states(tree)
    drawn = _drawn_nodes(tree, parents, max_nodes, marked=[node for _, node in marks])
    drawn_set = set(drawn)
    marks = [(tag, node) for tag, node in marks if node in drawn_set]
    position, children = _layered_layout(tree, drawn, parents)
    proof = tree.proof_edges() or []
    proof_pairs = {(s, t) for s, t, _ in proof}
    proof_tactic = {(s, t): tac for s, t, tac in proof}
    last_proof = proof[-1][0] if proof else None

    width = max(position[n][0] for n in drawn) + 1
    levels = max(position[n][1] for n in drawn) + 1 + (1 if proof else 0)
    label_all = len(drawn) <= 40
    # Heights in inches: a header (title, subtitle, legend) and a key of tagged states
    # above and below the drawing, so no text lands on another.
    header_in, key_line_in = (1.05 if len(drawn) == tree.num_states else 1.25), 0.19
    key_in = (len(marks) * key_line_in + 0.25) if marks else 0.1
    body_in = min(max(2.4, levels * 1.1 + 0.4), 28.0)
    fig_w = min(max(7.0, width * (1.1 if label_all else 0.18)), 40.0)
    fig_h = header_in + body_in + key_in
    fig = Figure(figsize=(fig_w, fig_h))
    FigureCanvasAgg(fig)  # the Agg canvas renders both PNG and SVG; no global backend is set
    ax = fig.add_axes((0.02, key_in / fig_h, 0.96, body_in / fig_h))
    ax.set_axis_off()

    def xy(node: int) -> tuple[float, float]:
        x, level = position[node]
        return x, -level

    # An unproved search: the way to its most promising state (F1) drawn like a proof, in blue,
    # with its tactics, so the picture shows where the search was heading.
    best_pairs: set[tuple[int, int]] = set()
    best = next((node for tag, node in marks if tag == "F1"), None)
    while best is not None and best != ROOT and best in parents:
        best_pairs.add((parents[best], best))
        best = parents[best]
    plain, bold, promising = [], [], []
    for node in drawn:
        for kid in children[node]:
            pair = (node, kid)
            (bold if pair in proof_pairs else promising if pair in best_pairs else plain).append([xy(node), xy(kid)])
    ax.add_collection(LineCollection(plain, colors="#b8bec6", linewidths=0.8, zorder=1))
    ax.add_collection(LineCollection(bold, colors=PROOF_COLOUR, linewidths=2.6, zorder=2))
    ax.add_collection(LineCollection(promising, colors=PROMISING_COLOUR, linewidths=2.0, zorder=2))
    qed_xy = None
    if last_proof is not None:
        qed_xy = (xy(last_proof)[0], xy(last_proof)[1] - 1)
        ax.add_collection(LineCollection([[xy(last_proof), qed_xy]], colors=PROOF_COLOUR, linewidths=2.6))
        ax.scatter([qed_xy[0]], [qed_xy[1]], s=260, marker="*", c=PROOF_COLOUR, zorder=4)
        ax.annotate(
            "QED", qed_xy, xytext=(9, -3), textcoords="offset points", fontsize=9, color=PROOF_COLOUR, fontweight="bold"
        )
    size = 120 if label_all else max(8.0, 60.0 - len(drawn) / 5)
    tag_of = {node: tag for tag, node in marks}

    def dots(nodes: Sequence[int]):
        on_proof = [(n == ROOT and bool(proof)) or (parents.get(n), n) in proof_pairs for n in nodes]
        return ax.scatter(
            [xy(n)[0] for n in nodes],
            [xy(n)[1] for n in nodes],
            zorder=3,
            s=[size * (1.8 if n in tag_of else 1) for n in nodes],
            c=[STATUS_COLOUR[tree.status(n)] for n in nodes],
            edgecolors=[PROOF_COLOUR if p else "#0b3d91" if n in tag_of else "white" for n, p in zip(nodes, on_proof)],
            linewidths=[1.6 if n in tag_of else 1.2 for n in nodes],
        )

    if state_artists:
        for node in drawn:
            dots([node]).set_gid(f"state-{node}")
    else:
        dots(drawn)

    # Text: node numbers and failed counts in small trees, tactics on the proof always.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        for node in drawn:
            x, y = xy(node)
            if label_all and node not in tag_of:
                ax.annotate(
                    str(node), (x, y), xytext=(0, 7), textcoords="offset points", ha="center", fontsize=7, color="#333"
                )
            if label_all:
                failed = sum(1 for t, _, _ in tree.tactic_edges(node) if t == DEAD)
                if failed:
                    ax.annotate(
                        f"✗{failed}",
                        (x, y),
                        xytext=(0, -12),
                        textcoords="offset points",
                        ha="center",
                        fontsize=7,
                        color=STATUS_COLOUR[Status.FAILED],
                    )
            for kid in children[node]:
                tactic = proof_tactic.get((node, kid))
                if tactic is None and (label_all or (node, kid) in best_pairs):
                    tactic = next(tac for t, tac, _ in _sorted_edges(tree, node) if t == kid)
                if tactic is not None:
                    _edge_label(
                        ax,
                        xy(node),
                        xy(kid),
                        tactic,
                        on_proof=(node, kid) in proof_pairs,
                        colour=PROMISING_COLOUR if (node, kid) in best_pairs else None,
                    )
        if qed_xy is not None:
            _edge_label(ax, xy(last_proof), qed_xy, proof_tactic[(last_proof, QED)], on_proof=True)
        # Tags of neighbouring states alternate above and below them, so they do not collide.
        previous: dict[int, float] = {}
        flip = False
        for tag, node in sorted(marks, key=lambda m: position[m[1]]):
            x, level = position[node]
            flip = (not flip) if level in previous and x - previous[level] < 1.5 else False
            previous[level] = x
            ax.annotate(
                tag,
                xy(node),
                xytext=(0, -15 if flip else 8),
                textcoords="offset points",
                ha="center",
                fontsize=7.5,
                fontweight="bold",
                color="#0b3d91",
                zorder=6,
                bbox={"boxstyle": "round,pad=0.12", "fc": "white", "ec": "none", "alpha": 0.9},
            )

        result = tree.graph.graph.get("result") or {}
        title = f"{_first_line(tree.theorem, 90)}: {tree.status(ROOT).value}"
        stats = f"{tree.num_states} states, {tree.num_expanded} expansions"
        if result.get("wall_time_s") is not None:
            stats += f", {result['wall_time_s']:.3g} s"
        if result.get("stop_reason") and not proof:
            stats += f", stopped: {result['stop_reason']}"
        if len(drawn) < tree.num_states:
            shown = "the proof path" if proof else "the frontier and deepest states"
            stats += f"\nshowing {len(drawn)}: {shown} and the first expanded"

        def from_top(inches: float) -> float:
            return 1 - inches / fig_h

        fig.text(0.02, from_top(0.1), title, fontsize=13, fontweight="bold", va="top")
        fig.text(0.02, from_top(0.42), stats, fontsize=9, color="#444", va="top", linespacing=1.4)
        legend = [Line2D([], [], marker="o", ls="", color=STATUS_COLOUR[s], label=s.value) for s in Status]
        legend.append(Line2D([], [], color=PROOF_COLOUR, lw=2.6, label="proof"))
        if marks:
            legend.append(
                Line2D(
                    [],
                    [],
                    marker="o",
                    ls="",
                    color="#9aa3ad",
                    markeredgecolor="#0b3d91",
                    markeredgewidth=1.6,
                    label="F: frontier by priority, D: deepest open",
                )
            )
        if best_pairs:
            legend.append(Line2D([], [], color=PROMISING_COLOUR, lw=2.0, label="way to F1"))
        fig.legend(
            handles=legend,
            loc="upper left",
            bbox_to_anchor=(0.015, from_top(header_in - 0.43)),
            ncols=len(legend),
            fontsize=8,
            frameon=False,
            borderaxespad=0,
            handletextpad=0.3,
            columnspacing=1.2,
        )
        for i, (tag, node) in enumerate(marks):
            attrs = tree.node(node)
            priority = attrs.get("priority")
            line = (
                f"{tag}  [{node}]  depth {attrs['depth']}"
                + (f", priority {priority:.3g}" if priority is not None else "")
                + f":  {goal_line(attrs['state'], width=max(40, int(fig_w * 13) - 40))}"
            )
            fig.text(
                0.02,
                (key_in - 0.12 - i * key_line_in) / fig_h,
                line,
                fontsize=8,
                va="top",
                family="monospace",
                color="#222",
            )
        ax.set_xlim(-0.8, width - 0.2)
        ax.set_ylim(-levels + 0.5, 0.6)
    return fig, drawn, tag_of


def _svg_with_tooltips(svg: bytes, tree: SearchTree, drawn: Sequence[int], tag_of: dict[int, str]) -> bytes:
    """The SVG with a ``<title>`` (a browser's tooltip) in each state's group."""
    import xml.etree.ElementTree as ElementTree

    namespace = "http://www.w3.org/2000/svg"
    ElementTree.register_namespace("", namespace)
    ElementTree.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    root = ElementTree.fromstring(svg)
    groups = {g.get("id"): g for g in root.iter(f"{{{namespace}}}g") if g.get("id", "").startswith("state-")}
    for node in drawn:
        group = groups.get(f"state-{node}")
        if group is None:
            continue
        attrs = tree.node(node)
        priority = attrs.get("priority")
        head = f"{tag_of[node]} " if node in tag_of else ""
        text = (
            f"{head}[{node}] {attrs['status']}, depth {attrs['depth']}"
            + (f", priority {priority:.4g}" if priority is not None else "")
            + (", not expanded" if attrs["expanded_order"] is None else f", expansion #{attrs['expanded_order']}")
            + "\n"
            + attrs["state"]
        )
        title = ElementTree.Element(f"{{{namespace}}}title")
        title.text = text  # ElementTree escapes it: goals are untrusted text
        group.insert(0, title)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def _first_line(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _edge_label(ax, start, end, tactic: str, on_proof: bool, colour: str | None = None) -> None:
    text = tactic.splitlines()[0]
    text = text if len(text) <= 28 else text[:27] + "…"
    ax.annotate(
        text,
        ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2),
        ha="center",
        va="center",
        fontsize=7,
        color=colour or (PROOF_COLOUR if on_proof else "#555"),
        zorder=5,
        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
    )


def plot_pass_at_k(curves: Sequence[dict], labels: Sequence[str], path: Path) -> Path:
    """pass@k against k (``summary.json``'s ``pass_at_k``: several searches per theorem),
    one line per run with its 95% interval as a band; k on a log axis when it spans a lot."""
    fig = _figure()
    ax = fig.add_subplot()
    for i, (curve, label) in enumerate(zip(curves, labels)):
        ks = sorted(int(k) for k in curve)
        if not ks:
            continue
        estimate = [curve[str(k)]["estimate"] for k in ks]
        ax.plot(ks, estimate, marker="o", markersize=3, color=_colour(i), label=_short(label))
        ax.fill_between(
            ks,
            [curve[str(k)]["low"] for k in ks],
            [curve[str(k)]["high"] for k in ks],
            color=_colour(i),
            alpha=0.15,
            linewidth=0,
        )
    if any(len(curve) > 16 for curve in curves):
        _log_axis(ax, "x")
    else:
        _integer_axis(ax.xaxis)
    ax.set_xlabel("k (searches per theorem)")
    ax.set_ylabel("pass@k")
    ax.set_ylim(0, 1)
    ax.set_title("pass@k (Chen et al. 2021), 95% bootstrap interval")
    ax.legend(loc="lower right", fontsize="small")
    return _save(fig, path)
