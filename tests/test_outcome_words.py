"""Outcome words that say what happened: in the replay environment, a tactic that was never
recorded is "not recorded" (Lean never ran it) on the pages and in reports, not "Lean error"."""

from __future__ import annotations

from prover.cli import main
from prover.views.report import load_run, run_stats
from prover.views.viz import error_kind, overview, view_data

from tests.test_viz_browser import browser, saved_page  # noqa: F401 (a fixture)
from tests.test_viz_browser import pytestmark as needs_chromium


def test_unrecorded_replay_tactics_are_not_called_lean_errors(tmp_path, traces_path, monkeypatch, capsys):
    import prover.views.plots

    monkeypatch.setattr(prover.views.plots, "write_report_plots", lambda runs, stats, labels, out_dir: [])
    run = tmp_path / "replay"
    main(
        [
            "prove-split",
            "--env",
            "replay",
            "--limit",
            "6",
            "--max-expansions",
            "8",
            "--out",
            str(run),
            "--num-workers",
            "0",
            "--no-progress",
        ]
    )
    stats = run_stats(load_run(run))
    # The replay policy mixes recorded tactics with wrong ones: those are all unrecorded.
    assert stats.tactic_outcomes["not recorded"] > 0
    assert stats.tactic_outcomes["Lean error"] == 0
    capsys.readouterr()
    main(["report", str(run)])
    printed = capsys.readouterr().out
    assert "tactics: not recorded" in printed and "tactics: Lean error" not in printed
    markdown = (run / "report" / "report.md").read_text()
    assert "| tactics: not recorded |" in markdown and "Lean error" not in markdown
    # The tree page's overview counts them under the same word.
    from search import SearchTree

    record = load_run(run).records[0]
    tree = SearchTree.load(run / record.tree)
    errors = overview(tree)["errors"]
    assert errors.get("not recorded") and "Lean error" not in errors
    dead = [e for edges in view_data(tree)["edges"] for e in edges if e[0] == -2]
    assert dead and all(e[4].startswith("not recorded:") for e in dead)


def test_error_kind_names_each_outcome():
    assert (
        error_kind("error", "not recorded: `simp` was never recorded at this state, so Lean never ran it")
        == "not recorded"
    )
    # A tree saved before the word existed says it the old way.
    assert error_kind("error", "replay: `simp` was never recorded at this state") == "not recorded"
    assert error_kind("error", "unknown identifier 'foo'") == "Lean error"
    assert error_kind("error", "refused: sorry is not allowed") == "refused"
    assert error_kind("timeout", "") == "timeout"


@needs_chromium[0]
@needs_chromium[1]
@needs_chromium[2]
def test_the_tree_page_says_not_recorded(browser, tmp_path):  # noqa: F811
    from search import ROOT, LeanError, SearchTree, TacticState

    tree = SearchTree("replayed", "⊢ A")
    tree.add_outcome(ROOT, "intro x", -0.2, TacticState("⊢ B"))
    tree.add_outcome(
        ROOT, "simp", -0.9, LeanError("not recorded: `simp` was never recorded at this state, so Lean never ran it")
    )
    tree.add_outcome(ROOT, "ring", -0.7, LeanError("ring failed"))
    tree.mark_expanded(ROOT)
    view, _ = saved_page(browser, tmp_path, tree, "replayed")
    overview_text = view.page.inner_text("#details")
    assert "not recorded" in overview_text and "Lean error" in overview_text  # one of each kind
    view.page.click("text=2 failed tactics")
    outcomes = view.page.locator(".outcome").all_inner_texts()
    assert sorted(outcomes) == ["Lean error", "not recorded"]
    assert view.errors == []
