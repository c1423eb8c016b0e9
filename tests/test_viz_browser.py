"""The HTML tree view in a real browser: headless Chromium (Debian's ``chromium``) driven
by ``playwright``. Skipped, with the reason, where either is missing; CI installs both.

The screenshots land in pytest's tmp_path; run with ``--basetemp DIR`` to keep them.
``Page`` and ``browser`` are shared with ``test_run_browser``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from search import ROOT, SearchTree

from prover.views.viz import overview, primary_parents, render_html

from tests.test_viz import HOSTILE_TACTIC, deep_tree, small_tree, synthetic_tree

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="the playwright package is not installed (pip install playwright)",
    ),
    pytest.mark.slow,  # a browser starts in seconds; the quick tier checks the pages' content without one
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Page:
    """A page opened on an HTML file, collecting console errors, script exceptions and
    requests for anything but the file itself (the pages must work offline)."""

    def __init__(self, browser, html_path: Path, width: int = 1400, ready: str = f'.row[data-node="{ROOT}"]'):
        self.page = browser.new_page(viewport={"width": width, "height": 900})
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("dialog", lambda d: (self.errors.append("dialog: " + d.message), d.dismiss()))
        self.page.on(
            "request",
            lambda r: (
                None
                if r.url.startswith("file://") or r.url.startswith("data:")
                else self.errors.append("network: " + r.url)
            ),
        )
        self.page.goto(html_path.as_uri())
        self.page.wait_for_selector(ready)


def saved_page(browser, tmp_path, tree: SearchTree, name: str, width: int = 1400) -> tuple[Page, SearchTree]:
    """Save ``tree``, load it back as a user's file would be, render it and open it."""
    tree_path = tmp_path / f"{name}.json"
    tree.save(tree_path, extra=tree.graph.graph.get("result"))
    loaded = SearchTree.load(tree_path)
    html_path = tmp_path / f"{name}.html"
    html_path.write_text(render_html(loaded), encoding="utf-8")
    return Page(browser, html_path, width=width), loaded


def selected_state(page) -> str:
    return page.inner_text("#detail-state")


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
    assert page.inner_text("#search-info") == "1 matching row"
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
    # Only the opened rows exist: the root's, and those along the ways to the most promising
    # and the deepest open states (the page opens on them), a hundred-odd of 10,000.
    assert page.locator(".row").count() < 200
    # Stepping through the search order opens the tree down to each state in turn.
    page.click(f'.row[data-node="{ROOT}"] .goal')
    page.click("text=next expansion")
    second = next(n for n in range(tree.num_states) if tree.node(n)["expanded_order"] == 1)
    assert page.inner_text("#detail-state") == tree.state(second)
    assert view.errors == []


def test_search_highlights_rows_by_the_tactic_or_goal_they_show_qed_rows_included(browser, tmp_path):
    # B is reached by "intro x" (its own row) and by "omega" from C (a row pointing to B).
    view, tree = saved_page(browser, tmp_path, small_tree(), "highlight")
    page = view.page

    def search(text: str) -> list[tuple[str, str]]:
        page.fill("#search", text)
        page.press("#search", "Enter")  # searches at once (typing waits 200 ms for more keys)
        return [
            (
                row.locator(".tac").inner_text() if row.locator(".tac").count() else "",
                row.locator(".goal").inner_text() if row.locator(".goal").count() else "",
            )
            for row in page.locator(".row.match").all()
        ]

    rows = search("omega")
    assert [tactic for tactic, _ in rows] == ["omega"]  # the row that shows omega, not B's own "intro x" row
    assert page.locator(".row.match.ref").count() == 1
    assert search("simp") == [("simp", "")] and page.locator(".row.match.qed").count() == 1
    assert page.locator(".row.match.qed").is_visible()
    for tactic, goal in search("⊢ b"):
        assert goal == "⊢ B"
    rows = search("unknown tactic")  # a failed tactic's error
    assert len(rows) == 1 and page.locator(".row.match.failed").is_visible()
    rows = search("x : ℕ")  # a hypothesis: the row shows the matching line in place of its goal
    assert rows == [("", "… x : ℕ")]
    assert view.errors == []


def test_keyboard_moves_through_rows_and_opens_states(browser, tmp_path):
    view, tree = saved_page(browser, tmp_path, synthetic_tree(), "keys")
    page = view.page
    page.click(f'.row[data-node="{ROOT}"] .nid')
    assert selected_state(page) == tree.state(ROOT)
    page.keyboard.press("j")
    first = page.locator(".row.selected")
    node = int(first.get_attribute("data-node"))
    assert selected_state(page) == tree.state(node)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("k")
    assert int(page.locator(".row.selected").get_attribute("data-node")) == node
    # Enter opens a closed state; ArrowLeft closes it, and then goes up to its parent.
    closed = page.locator(".row.state .twisty", has_text="▸").first.locator("xpath=..")
    closed_id = int(closed.get_attribute("data-node"))
    closed.locator(".nid").click()  # a click selects and opens; close it again from the keyboard
    page.keyboard.press("ArrowLeft")
    assert page.locator(f'.row[data-node="{closed_id}"] .twisty').inner_text() == "▸"
    page.keyboard.press("Enter")
    assert page.locator(f'.row[data-node="{closed_id}"] .twisty').inner_text() == "▾"
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    parent = primary_parents(tree)[closed_id]
    assert int(page.locator(".row.selected").get_attribute("data-node")) == parent
    page.keyboard.press("o")
    assert "Overview of the search" in page.inner_text("#details")
    assert view.errors == []


def test_overview_lists_the_frontier_by_priority_and_jumps_to_a_state(browser, tmp_path):
    tree = synthetic_tree(max_expansions=150, theorem="synthetic_0001", branching=6, depth=9, proof_density=0.1)
    view, tree = saved_page(browser, tmp_path, tree, "overview")
    page = view.page
    summary = overview(tree)
    details = page.inner_text("#details")
    assert "Overview of the search" in details and "stopped: max_expansions" in details
    assert "Frontier by priority" in details and "Failed tactics by kind" in details
    frontier = page.locator(".ov-list").first.locator("tr")
    assert frontier.count() == len(summary["frontier"]) + 1  # and the heading row
    first = summary["frontier"][0]
    assert frontier.nth(1).locator("td").nth(1).inner_text() == f"{first[1]:.3f}"
    assert page.locator(".hist-row").count() == len(summary["depth_states"])
    frontier.nth(1).locator("a").click()
    assert selected_state(page) == tree.state(first[0])
    assert page.locator(f'.row.selected[data-node="{first[0]}"]').is_visible()
    assert "priority" in page.inner_text("#details")
    page.click("#show-proof")  # unproved: it opens the way to the deepest open state
    assert selected_state(page) == tree.state(summary["deepest"][0][0])
    assert view.errors == []


def test_a_state_at_depth_120_stays_readable_at_800_px(browser, tmp_path):
    view, tree = saved_page(browser, tmp_path, deep_tree(depth=120), "deep", width=800)
    page = view.page
    deepest = max(range(tree.num_states), key=lambda n: tree.node(n)["depth"])
    assert tree.node(deepest)["depth"] == 120
    page.locator(".ov-list").nth(2).locator("a").first.click()  # "deepest" in the overview
    row = page.locator(f'.row[data-node="{deepest}"]')
    assert row.is_visible() and selected_state(page) == tree.state(deepest)
    goal = row.locator(".goal").bounding_box()
    tactic = row.locator(".tac").bounding_box()
    assert goal["x"] + goal["width"] <= 800 and goal["width"] >= 150, goal
    assert tactic["x"] < 300, "indentation is capped"
    assert row.locator(".lvl").inner_text() == "↳120"
    crumbs = page.inner_text(".crumbs")
    assert crumbs.startswith("path (120 tactics): root") and "more" in crumbs
    page.screenshot(path=str(tmp_path / "deep_800.png"))
    assert view.errors == []


def test_details_show_error_messages_and_hostile_text_stays_text(browser, tmp_path):
    view, tree = saved_page(browser, tmp_path, small_tree(), "errors")
    page = view.page
    page.click(f'.row[data-node="{ROOT}"] .nid')
    details = page.inner_text("#details")
    assert "unknown tactic <script>" in details and HOSTILE_TACTIC in details
    assert page.locator("#details .errmsg").count() == 1
    assert page.evaluate("document.querySelectorAll('script').length") == 2
    assert view.errors == []
