"""Where a tree's pictures and page start: an unproved search's PNG draws and labels the way to
its most promising state; its page opens on that way and on the deepest state, where it once
opened collapsed to the root's children (the proof path still opens for a proved search)."""

from __future__ import annotations

from search import ROOT, Status

from prover.views.plots import PROMISING_COLOUR, tree_figure
from prover.views.viz import overview, primary_parents

from tests.test_viz import synthetic_tree
from tests.test_viz_browser import Page, browser, saved_page  # noqa: F401
from tests.test_viz_browser import pytestmark as needs_chromium


def open_tree():
    tree = synthetic_tree(max_expansions=40, theorem="synthetic_0001", branching=4, depth=9, proof_density=0.3)
    assert tree.status(ROOT) is Status.OPEN
    return tree


def way_to(tree, node) -> list[tuple[int, int]]:
    parents = primary_parents(tree)
    pairs = []
    while node != ROOT:
        pairs.append((parents[node], node))
        node = parents[node]
    return pairs[::-1]


def test_an_open_trees_picture_draws_and_labels_the_way_to_its_best_state():
    tree = open_tree()
    fig, drawn, tag_of = tree_figure(tree, max_nodes=200)
    best = overview(tree)["frontier"][0][0]
    assert tag_of[best] == "F1"
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.texts]
    # More than 40 states: before, no tactic was written on any edge of an open tree.
    assert len(drawn) > 40
    for source, target in way_to(tree, best):
        tactic = next(tac for t, tac, _ in tree.tactic_edges(source) if t == target)
        assert tactic.splitlines()[0] in labels
    blue = [
        c
        for c in ax.collections
        if hasattr(c, "get_segments")
        and len(c.get_segments())
        and tuple(c.get_colors()[0][:3]) == tuple(int(PROMISING_COLOUR[i : i + 2], 16) / 255 for i in (1, 3, 5))
    ]
    assert blue and len(blue[0].get_segments()) == len(way_to(tree, best))
    assert "way to F1" in [text.get_text() for legend in fig.legends for text in legend.get_texts()]


def test_a_proved_trees_picture_has_no_way_to_a_frontier_state():
    tree = synthetic_tree()
    fig, _, tag_of = tree_figure(tree)
    assert not tag_of
    assert "way to F1" not in [text.get_text() for legend in fig.legends for text in legend.get_texts()]


@needs_chromium[0]
@needs_chromium[1]
@needs_chromium[2]
def test_an_open_tree_page_opens_on_its_most_promising_and_deepest_states(browser, tmp_path):  # noqa: F811
    view, tree = saved_page(browser, tmp_path, open_tree(), "open")
    page = view.page
    summary = overview(tree)
    best, deepest = summary["frontier"][0][0], summary["deepest"][0][0]
    for node, tag in ((best, "F1"), (deepest, "D1")):
        row = page.locator(f'.row[data-node="{node}"]')
        assert row.count() == 1 and row.is_visible()  # no click needed: the way to it is open
        assert tag in row.locator(".tag").inner_text()
    # Well past the root's children: the first screen is filled.
    assert page.locator(".row").count() > 20
    page.screenshot(path=str(tmp_path / "open_tree.png"))
    assert view.errors == []


@needs_chromium[0]
@needs_chromium[1]
@needs_chromium[2]
def test_a_proved_tree_page_still_opens_on_its_proof(browser, tmp_path):  # noqa: F811
    view, tree = saved_page(browser, tmp_path, synthetic_tree(), "proved")
    page = view.page
    for _, target, _ in tree.proof_edges()[:-1]:
        assert page.locator(f'.row[data-node="{target}"]').is_visible()
    assert page.locator(".row .tag").count() == 0
    assert view.errors == []
