"""The run browser: ``prover viz RUN_DIR`` writes ``RUN_DIR/viz/index.html`` (every theorem:
status, proof length, expansions, time; sort, filter, search) and a page per tree beside it.

The first tests read the files; the rest open them in headless Chromium (skipped, with the
reason, where Chromium or playwright is missing; see ``test_viz_browser``).
"""

from __future__ import annotations

import json
import os
import re

import pytest

from search import ResultRecord, SearchStatus, StopReason

from prover.cli import main
from prover.views.report import load_run, tree_page_name

from tests.test_viz import HOSTILE_TACTIC, small_tree
from tests.test_viz_browser import Page, browser  # noqa: F401 (a fixture)
from tests.test_viz_browser import pytestmark as needs_chromium

HOSTILE_NAME = "</script><img src=x onerror=alert(1)> evil"


def prove(tmp_path, capsys, name: str = "run", *flags: str):
    run = tmp_path / name
    main(
        [
            "prove-split",
            "--out",
            str(run),
            "--num-workers",
            "0",
            "--no-progress",
            "--num-theorems",
            "8",
            "--max-expansions",
            "30",
            *flags,
        ]
    )
    capsys.readouterr()
    return run


def embedded(page_path) -> dict:
    match = re.search(r'<script type="application/json" id="run-data">(.*?)</script>', page_path.read_text(), re.S)
    assert match, "the page holds no run data"
    return json.loads(match.group(1))


def test_viz_of_a_run_writes_an_index_and_a_page_per_tree_and_prints_a_link(tmp_path, capsys):
    run = prove(tmp_path, capsys)
    main(["viz", str(run)])
    printed = capsys.readouterr().out
    index = run / "viz" / "index.html"
    assert index.resolve().as_uri() in printed.splitlines()
    records = load_run(run).records
    pages = sorted(p.name for p in (run / "viz").glob("*.html") if p.name != "index.html")
    assert pages == sorted(tree_page_name(r.tree) for r in records)
    page = index.read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page) and "https://" not in page
    data = embedded(index)
    assert [row[0] for row in data["rows"]] == [r.theorem for r in records]
    for row, record in zip(data["rows"], records):
        assert row[1:9] == [
            record.status.value,
            record.stop_reason.value,
            len(record.proof) if record.proof else None,
            record.num_expansions,
            record.num_tactics,
            record.num_states,
            record.wall_time_s,
            record.error or "",
        ]
        assert (run / "viz" / row[9]).is_file()
    summary = json.loads((run / "summary.json").read_text())
    assert data["pass_rate"] == pytest.approx(summary["pass_rate"]) and data["num_theorems"] == 8
    tree_page = (run / "viz" / pages[1]).read_text()
    assert 'href="index.html"' in tree_page and f'href="{pages[0]}"' in tree_page and f'href="{pages[2]}"' in tree_page


def test_viz_of_a_run_again_renders_only_changed_trees(tmp_path, capsys):
    run = prove(tmp_path, capsys)
    main(["viz", str(run)])
    assert "8 tree pages rendered" in capsys.readouterr().out
    main(["viz", str(run)])
    assert "0 tree pages rendered" in capsys.readouterr().out
    records = load_run(run).records
    tree = run / records[4].tree
    later = (run / "viz" / "index.html").stat().st_mtime + 5
    os.utime(tree, (later, later))
    main(["viz", str(run)])  # the changed tree, and the page before it (its "next" link)
    assert "2 tree pages rendered" in capsys.readouterr().out


def test_viz_of_a_run_takes_html_only_and_opens_a_browser_when_asked(tmp_path, capsys, monkeypatch):
    run = prove(tmp_path, capsys)
    with pytest.raises(SystemExit) as exit_info:
        main(["viz", str(run), "--format", "svg"])
    assert exit_info.value.code == 2
    assert "a run directory gets HTML pages, not svg" in capsys.readouterr().err
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda uri: opened.append(uri) or True)
    main(["viz", str(run), "--open", "-o", str(tmp_path / "elsewhere")])
    assert opened == [(tmp_path / "elsewhere" / "index.html").resolve().as_uri()]
    assert not (run / "viz").exists()


def hostile_run(tmp_path):
    """A run by hand: a theorem whose name is markup, with a tree whose tactic is too."""
    run = tmp_path / "hostile"
    (run / "trees").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    tree = small_tree()
    tree.graph.graph["theorem"] = HOSTILE_NAME  # the record's proof is verified against its own tree
    tree.save(run / "trees" / "evil.json")
    records = [
        ResultRecord(
            HOSTILE_NAME,
            SearchStatus.PROVED,
            StopReason.PROVED,
            proof=("intro x", "simp"),
            num_expansions=3,
            num_tactics=6,
            num_states=3,
            wall_time_s=0.5,
            tree="trees/evil.json",
        ),
        ResultRecord("plain", SearchStatus.ERROR, StopReason.ENV_ERROR, error="<b>Lean</b> could not start"),
    ]
    (run / "results.jsonl").write_text("".join(json.dumps(r.to_json()) + "\n" for r in records))
    return run


def test_run_page_keeps_theorem_names_and_errors_as_data(tmp_path, capsys):
    run = hostile_run(tmp_path)
    main(["viz", str(run)])
    page = (run / "viz" / "index.html").read_text()
    assert page.count("</script>") == 2 and "<img" not in page and "<b>" not in page
    assert embedded(run / "viz" / "index.html")["rows"][0][0] == HOSTILE_NAME


# ---- in a browser -------------------------------------------------------------------------------


@needs_chromium[0]
@needs_chromium[1]
@pytest.mark.slow
def test_run_page_sorts_filters_searches_and_links_to_tree_pages(browser, tmp_path, capsys):  # noqa: F811
    run = prove(tmp_path, capsys, "browsed", "--max-expansions", "40")
    main(["viz", str(run)])
    capsys.readouterr()
    records = load_run(run).records
    view = Page(browser, run / "viz" / "index.html", width=800, ready="#rows tr")
    page = view.page
    rows = page.locator("#rows tr")
    assert rows.count() == len(records)
    summary = json.loads((run / "summary.json").read_text())
    assert page.inner_text("#pass-rate") == f"{100 * summary['pass_rate']:.1f}%"
    page.screenshot(path=str(tmp_path / "run_800.png"), full_page=True)

    page.click("th[data-key='4']")  # expansions, ascending
    shown = [int(t) for t in page.locator("#rows tr td:nth-child(4)").all_inner_texts()]
    assert shown == sorted(r.num_expansions for r in records)
    page.click("th[data-key='4']")  # and descending
    shown = [int(t) for t in page.locator("#rows tr td:nth-child(4)").all_inner_texts()]
    assert shown == sorted((r.num_expansions for r in records), reverse=True)

    proved = [r.theorem for r in records if r.proved]
    assert proved and len(proved) < len(records)
    for box in page.locator("#status-filter input").all():
        if box.get_attribute("value") != "proved":
            box.uncheck()
    assert sorted(page.locator("#rows tr:visible td.name").all_inner_texts()) == sorted(proved)
    assert page.inner_text("#shown") == f"showing {len(proved)} of {len(records)}"
    for box in page.locator("#status-filter input").all():
        box.check()
    page.fill("#search", records[3].theorem)
    assert page.locator("#rows tr:visible td.name").all_inner_texts() == [records[3].theorem]

    page.click("#rows tr:visible td.name a")
    page.wait_for_selector('.row[data-node="0"]')
    assert page.inner_text("#theorem") == records[3].theorem
    assert page.locator(".row").count() > 1
    page.click("#nav-next")
    page.wait_for_selector('.row[data-node="0"]')
    assert page.inner_text("#theorem") == records[4].theorem
    page.click("#nav-index")
    page.wait_for_selector("#rows tr")
    assert view.errors == []


@needs_chromium[0]
@needs_chromium[1]
@pytest.mark.slow
def test_hostile_names_stay_text_in_the_browser(browser, tmp_path, capsys):  # noqa: F811
    run = hostile_run(tmp_path)
    main(["viz", str(run)])
    view = Page(browser, run / "viz" / "index.html", ready="#rows tr")
    page = view.page
    assert page.locator("#rows td.name").first.inner_text() == HOSTILE_NAME
    assert page.locator("#rows img").count() == 0
    assert "<b>Lean</b> could not start" in page.inner_text("#rows")
    page.click("#rows td.name a")
    page.wait_for_selector('.row[data-node="0"]')
    page.click('.row[data-node="0"] .nid')
    assert HOSTILE_TACTIC in page.inner_text("#details")
    assert view.errors == []  # no alert dialog, no script error
