"""The HTML tree view in a real browser: headless Chromium (Debian's ``chromium``) driven
by ``playwright``. Skipped, with the reason, where either is missing; CI installs both.

The screenshots land in pytest's tmp_path; run with ``--basetemp DIR`` to keep them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from prover.viz import primary_parents, render_html
from search import ROOT, SearchTree
from tests.test_viz import synthetic_tree

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="the playwright package is not installed (pip install playwright)"),
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Page:
    """A page opened on a saved tree's HTML, collecting console errors and script exceptions."""

    def __init__(self, browser, html_path: Path):
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.goto(html_path.as_uri())
        self.page.wait_for_selector(f'.row[data-node="{ROOT}"]')


def saved_page(browser, tmp_path, tree: SearchTree, name: str) -> tuple[Page, SearchTree]:
    """Save ``tree``, load it back as a user's file would be, render it and open it."""
    tree_path = tmp_path / f"{name}.json"
    tree.save(tree_path, extra=tree.graph.graph.get("result"))
    loaded = SearchTree.load(tree_path)
    html_path = tmp_path / f"{name}.html"
    html_path.write_text(render_html(loaded), encoding="utf-8")
    return Page(browser, html_path), loaded


def test_page_loads_cleanly_shows_the_node_count_and_opens_the_proof(browser, tmp_path):
    view, tree = saved_page(browser, tmp_path, synthetic_tree(), "proved")
    page = view.page
    assert page.inner_text("#node-count") == str(tree.num_states)
    proof = tree.proof_edges()
    # The root row, one row per proof step that reaches a state, and the QED row.
    assert page.locator(".row.on-proof").count() == len(proof) + 1
    for _, target, _ in proof[:-1]:
        assert page.locator(f'.row[data-node="{target}"]').is_visible()
    page.screenshot(path=str(tmp_path / "tree_view.png"))
    assert (tmp_path / "tree_view.png").stat().st_size > 20_000
    assert view.errors == []


def test_clicking_a_node_shows_its_full_state_and_opens_it(browser, tmp_path):
    view, tree = saved_page(browser, tmp_path, synthetic_tree(), "click")
    page = view.page
    parents = primary_parents(tree)
    proof_states = {target for _, target, _ in tree.proof_edges()}
    # A child of the root off the proof path: shown, but closed, so its children are not built yet.
    node = next(n for n, p in parents.items() if p == ROOT and n not in proof_states and tree.graph.succ[n])
    kids = [n for n, p in parents.items() if p == node]
    assert kids and page.locator(f'.row[data-node="{kids[0]}"]').count() == 0
    page.click(f'.row[data-node="{node}"] .goal')
    assert page.inner_text("#detail-state") == tree.state(node)
    assert page.locator(f'.row[data-node="{kids[0]}"]').is_visible()
    page.screenshot(path=str(tmp_path / "clicked.png"))
    assert view.errors == []


def test_search_box_filters_to_the_matching_state(browser, tmp_path):
    view, tree = saved_page(browser, tmp_path, synthetic_tree(), "search")
    page = view.page
    deepest = max(range(tree.num_states), key=lambda n: (tree.node(n)["depth"], n))
    goal = tree.state(deepest).splitlines()[-1]  # "⊢ Q_<hash> n": one state's own goal
    page.fill("#search", goal)
    page.wait_for_function("document.getElementById('search-info').textContent !== ''")
    assert page.inner_text("#search-info") == "1 matching state"
    assert page.locator(".row.match").count() == 1
    assert page.locator(f'.row.match[data-node="{deepest}"]').is_visible()
    page.press("#search", "Escape")
    assert page.locator(".row.match").count() == 0
    assert view.errors == []


def test_a_ten_thousand_state_tree_opens_fast_and_builds_few_rows(browser, tmp_path):
    tree = synthetic_tree(max_expansions=2700, theorem="synthetic_0001", branching=8, depth=9, proof_density=0.3)
    assert tree.num_states > 9000
    view, tree = saved_page(browser, tmp_path, tree, "huge")
    page = view.page
    assert page.inner_text("#node-count") == str(tree.num_states)
    assert page.locator(".row").count() < 100  # only the opened rows exist
    # Stepping through the search order opens the tree down to each state in turn.
    page.click(f'.row[data-node="{ROOT}"] .goal')
    page.click("text=next expansion")
    second = next(n for n in range(tree.num_states) if tree.node(n)["expanded_order"] == 1)
    assert page.inner_text("#detail-state") == tree.state(second)
    assert view.errors == []
