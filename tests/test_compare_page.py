"""``prover viz A B ...``: the comparison page, with the theorems of several runs side by side,
who proved what, and links to each run's tree pages; checked in headless Chromium like the
run and tree pages (those tests are slow; the page's data is checked without a browser)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from search import ResultRecord, SearchStatus, StopReason

from prover.cli import main
from prover.views.report import load_run

from tests.test_run_browser import HOSTILE_NAME
from tests.test_viz_browser import Page, browser  # noqa: F401 (a fixture)
from tests.test_viz_browser import pytestmark as needs_chromium


def prove(tmp_path, capsys, name: str, budget: str):
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
            "10",
            "--max-expansions",
            budget,
        ]
    )
    capsys.readouterr()
    return run


def embedded(page_path) -> dict:
    match = re.search(r'<script type="application/json" id="compare-data">(.*?)</script>', page_path.read_text(), re.S)
    assert match, "the page holds no comparison data"
    return json.loads(match.group(1))


def two_runs(tmp_path, capsys):
    return prove(tmp_path, capsys, "small", "10"), prove(tmp_path, capsys, "large", "40")


def test_viz_of_several_runs_writes_a_comparison_page(tmp_path, capsys):
    small, large = two_runs(tmp_path, capsys)
    assert main(["viz", str(small), str(large)]) is None  # before: refused ("Got unexpected extra argument")
    printed = capsys.readouterr().out
    page = tmp_path / "compare-small-vs-large" / "index.html"
    assert f"wrote {page}" in printed and page.as_uri() in printed
    data = embedded(page)
    records = [{r.theorem: r for r in load_run(run).records} for run in (small, large)]
    assert [row[0] for row in data["rows"]] == list(records[0])
    for name, cells in data["rows"]:
        for cell, by_name in zip(cells, records):
            record = by_name[name]
            assert cell[:3] == [record.status.value, record.num_expansions, record.wall_time_s]
            # A link to that run's own tree page, which exists.
            assert (page.parent / cell[3]).is_file() and (page.parent / cell[3]).parent.name == "viz"
    assert [run["label"] for run in data["runs"]] == ["small", "large"]
    assert data["paired"][0]["theorems"] == 10


def test_viz_of_several_runs_takes_html_and_run_directories_only(tmp_path, capsys):
    small, large = two_runs(tmp_path, capsys)
    with pytest.raises(SystemExit) as stopped:
        main(["viz", str(small), str(large), "--format", "png"])
    assert stopped.value.code == 2 and "HTML page" in capsys.readouterr().err
    tree = next((small / "trees").iterdir())
    with pytest.raises(SystemExit) as stopped:
        main(["viz", str(small), str(tree)])
    assert stopped.value.code == 2 and "is not a run directory" in capsys.readouterr().err


def hostile_pair(tmp_path) -> tuple[Path, Path]:
    runs = []
    # Records that need no tree (a proved one without its tree is not trusted when read back).
    for name, status in (("a", SearchStatus.OPEN), ("b", SearchStatus.FAILED)):
        run = tmp_path / name
        run.mkdir()
        (run / "config.json").write_text("{}")
        record = ResultRecord(
            HOSTILE_NAME, status, StopReason.MAX_EXPANSIONS if status is SearchStatus.OPEN else StopReason.EXHAUSTED
        )
        (run / "results.jsonl").write_text(json.dumps(record.to_json()) + "\n")
        runs.append(run)
    return runs[0], runs[1]


def test_comparison_page_keeps_theorem_names_as_data(tmp_path, capsys):
    a, b = hostile_pair(tmp_path)
    main(["viz", str(a), str(b), "-o", str(tmp_path / "cmp")])
    html = (tmp_path / "cmp" / "index.html").read_text()
    assert html.count("</script>") == 2 and "<img" not in html
    assert embedded(tmp_path / "cmp" / "index.html")["rows"][0][0] == HOSTILE_NAME


@needs_chromium[0]
@needs_chromium[1]
@pytest.mark.slow
def test_comparison_page_filters_by_who_proved_and_links_to_both_trees(browser, tmp_path, capsys):  # noqa: F811
    small, large = two_runs(tmp_path, capsys)
    main(["viz", str(small), str(large)])
    capsys.readouterr()
    page_path = tmp_path / "compare-small-vs-large" / "index.html"
    view = Page(browser, page_path, width=1200, ready="#rows tr")
    page = view.page
    records = [{r.theorem: r for r in load_run(run).records} for run in (small, large)]
    names = list(records[0])
    assert page.locator("#rows tr").count() == len(names)
    proved = [{n for n, r in by_name.items() if r.proved} for by_name in records]
    assert proved[1] - proved[0], "the larger budget should prove something the smaller does not"
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)

    def visible() -> list[str]:
        return page.locator("#rows tr:visible td.name").all_inner_texts()

    page.select_option("#who", "differs")
    assert sorted(visible()) == sorted(proved[0] ^ proved[1])
    page.select_option("#who", "only-1")
    assert sorted(visible()) == sorted(proved[1] - proved[0])
    page.select_option("#who", "none")
    assert sorted(visible()) == sorted(set(names) - proved[0] - proved[1])
    page.select_option("#who", "all")
    page.fill("#search", names[2])
    assert visible() == [names[2]]
    assert page.inner_text("#shown") == f"showing 1 of {len(names)}"
    assert "McNemar's exact p" in page.inner_text("#paired")

    # Each cell leads to that run's tree page.
    for column, run in ((2, small), (3, large)):
        page.click(f"#rows tr:visible td:nth-child({column}) a")
        page.wait_for_selector('.row[data-node="0"]')
        assert page.inner_text("#theorem") == names[2]
        assert Path(page.url.replace("file://", "")).parent == (run / "viz").resolve()
        page.go_back()
        page.wait_for_selector("#rows tr")
        page.fill("#search", names[2])
    assert view.errors == []


@needs_chromium[0]
@needs_chromium[1]
@pytest.mark.slow
def test_hostile_names_stay_text_on_the_comparison_page(browser, tmp_path, capsys):  # noqa: F811
    a, b = hostile_pair(tmp_path)
    main(["viz", str(a), str(b), "-o", str(tmp_path / "cmp")])
    view = Page(browser, tmp_path / "cmp" / "index.html", ready="#rows tr")
    assert view.page.locator("#rows td.name").first.inner_text() == HOSTILE_NAME
    assert view.page.locator("#rows img").count() == 0
    assert view.errors == []
