"""Every report plot for N = 1, 2 and 3 runs: each run drawn, each legend inside its figure
(the 3-run time-to-proof legend was cut off; the scatter used only the first two runs), and a
rare outcome (a closed goal among many errors) still a visible slice."""

from __future__ import annotations

import json

import pytest

import prover.views.plots as plots
from prover.views.report import build_report, load_run

from tests.test_report import MIXED, record, write_run

LONG = "a-rather-long-run-directory-name-that-tells-the-runs-apart"


def three_runs(tmp_path):
    other = [
        record("t1", "failed", 100, 4.0),
        record("t2", "proved", 5, 0.3),
        record("t3", "proved", 2, 0.2),
        record("t9", "proved", 1, 0.1),
    ]
    third = [record("t1", "proved", 7, 0.9), record("t4", "proved", 60, 6.0), record("t9", "proved", 2, 0.2)]
    # The same folder name three times: the labels are whole paths, the longest a legend gets.
    return [
        load_run(write_run(tmp_path / name / LONG, records, num_theorems=9))
        for name, records in (("first", MIXED), ("second", other), ("third", third))
    ]


@pytest.fixture
def figures(monkeypatch):
    drawn = {}

    def keep(fig, path):
        fig.savefig(path, dpi=60)
        drawn[path.name] = fig
        return path

    monkeypatch.setattr(plots, "_save", keep)
    return drawn


def legend_texts(fig) -> list[str]:
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    legends += [legend for sub in fig.subfigs for legend in sub.legends]
    return [text.get_text() for legend in legends for text in legend.get_texts()]


def assert_inside(fig) -> None:
    renderer = fig.canvas.get_renderer()
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    legends += [legend for sub in fig.subfigs for legend in sub.legends]
    assert legends
    labels = [ax.xaxis.label for ax in fig.axes if ax.get_visible()] + [ax.title for ax in fig.axes if ax.get_visible()]
    for text in labels:  # axis labels and titles too: the outcomes' x label once ran off the right edge
        if text.get_text():
            box = text.get_window_extent(renderer)
            assert box.x0 >= -1 and box.x1 <= fig.bbox.width + 1, f"{text.get_text()!r} cut off: {box}"
    for legend in legends:
        box = legend.get_window_extent(renderer)
        assert box.x0 >= -1 and box.y0 >= -1, f"legend cut off: {box}"
        assert box.x1 <= fig.bbox.width + 1 and box.y1 <= fig.bbox.height + 1, f"legend cut off: {box}"


@pytest.mark.parametrize("count", [1, 2, 3])
def test_every_plot_draws_every_run_with_its_legend_inside(tmp_path, figures, count):
    runs = three_runs(tmp_path)[:count]
    report = build_report(runs)
    labels = report.labels
    plots.write_report_plots(runs, report.runs, labels, tmp_path)
    expected = set(plots.PLOT_FILES.values()) - ({"expansions_scatter.png"} if count == 1 else set())
    assert set(figures) == expected
    for name, fig in figures.items():
        assert_inside(fig)
        texts = " | ".join(legend_texts(fig))
        if name in ("outcomes.png", "expansions_scatter.png"):
            continue
        shown = plots.plot_labels(labels)  # the part of each run's path that tells it apart
        assert len(set(shown)) == count and (count == 1 or all(len(label) < 20 for label in shown)), shown
        for label in shown:
            assert plots._short(label) in texts, (name, label)
    if count > 1:
        scatter = figures["expansions_scatter.png"]
        panels = [ax for ax in scatter.axes if ax.get_visible()]
        assert len(panels) == count - 1  # before: one panel, of the first two runs only
        for ax, run in zip(panels, runs[1:]):
            shared = {r.theorem for r in runs[0].records} & {r.theorem for r in run.records}
            points = sum(len(c.get_offsets()) for c in ax.collections if hasattr(c, "get_offsets"))
            proved_by_one = {r.theorem for r in runs[0].records + run.records if r.proved} & shared
            assert points == len(proved_by_one), ax.get_title()


def test_a_rare_outcome_is_still_a_visible_slice():
    shares = plots.visible_shares([3, 0, 1200, 40])
    assert shares[0] == pytest.approx(plots.MIN_SHARE) and shares[1] == 0
    assert sum(shares) == pytest.approx(1.0)
    assert shares[2] > shares[3] > shares[0]
    assert plots.visible_shares([0, 0]) == [0.0, 0.0]


def test_the_outcomes_plot_draws_the_closed_goal_slice(tmp_path, figures):
    run = load_run(write_run(tmp_path / "r", MIXED))
    stats = build_report([run]).runs
    outcomes = {"new state": 20, "closed goal": 1, "Lean error": 900}
    stats = [type(stats[0])(**{**stats[0].__dict__, "tactic_outcomes": outcomes})]
    plots.plot_outcomes(stats, ["r"], tmp_path / "outcomes.png")
    fig = figures["outcomes.png"]
    right = fig.subfigs[1].axes[0]
    widths = {container.get_label(): container.patches[0].get_width() for container in right.containers}
    closed = next(w for label, w in widths.items() if label.startswith("closed goal"))
    assert closed == pytest.approx(plots.MIN_SHARE)  # 1 in 921 would be 0.1%: a hairline
    assert json.dumps(stats[0].tactic_outcomes)  # the counts in the legend stay the true ones
    assert any(text.startswith("closed goal (1)") for text in legend_texts(fig))
