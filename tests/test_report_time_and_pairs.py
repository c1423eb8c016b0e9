"""What a report adds to the pass rate: where each search's time went (policy, Lean, engine),
per run and per theorem, and a paired test (McNemar's exact) of two runs on the same theorems."""

from __future__ import annotations

import json
from dataclasses import asdict
from fractions import Fraction
from itertools import product

import pytest

from search import ResultRecord, SearchStatus, StopReason

from prover.cli import main
from prover.views.report import load_run, mcnemar_exact, paired_tests, run_page_data, run_stats

from tests.test_report import write_run


def timed(theorem: str, proved: bool, wall: float, policy: float, env: float) -> dict:
    return ResultRecord(
        theorem,
        SearchStatus.PROVED if proved else SearchStatus.OPEN,
        StopReason.PROVED if proved else StopReason.MAX_EXPANSIONS,
        proof=("simp",) if proved else None,
        num_expansions=3,
        wall_time_s=wall,
        policy_time_s=policy,
        env_time_s=env,
    ).to_json()


@pytest.fixture
def no_drawing(monkeypatch):
    import prover.views.plots

    monkeypatch.setattr(prover.views.plots, "write_report_plots", lambda runs, stats, labels, out_dir: [])


def test_the_time_split_is_summed_from_the_records_and_shown_per_theorem(tmp_path, no_drawing, capsys):
    records = [timed("t1", True, 2.0, 1.2, 0.5), timed("t2", False, 4.0, 1.0, 2.5), timed("t3", False, 1.0, 0.2, 0.9)]
    run = write_run(tmp_path / "run", records)
    stats = run_stats(load_run(run))
    assert stats.time_split == pytest.approx(
        {"policy_s": 2.4, "env_s": 3.9, "engine_s": 0.3 + 0.5 + 0.0}
    )  # t3: a negative rest counts as 0
    main(["report", str(run)])
    printed = capsys.readouterr().out
    assert "of which policy / Lean / engine, s" in printed
    markdown = (run / "report" / "report.md").read_text()
    assert "| of which policy / Lean / engine, s | 2.4 (34%) / 3.9 (55%) / 0.8 (11%) |" in markdown
    assert "proved, 3 exp, 2 s (policy 1.2, Lean 0.5, engine 0.3)" in markdown  # per theorem
    page = run_page_data(load_run(run), {})
    assert [row[10:12] for row in page["rows"]] == [[1.2, 0.5], [1.0, 2.5], [0.2, 0.9]]
    assert page["time_split"]["env_s"] == pytest.approx(3.9)


def test_a_real_runs_time_split_adds_up_to_its_search_time(tmp_path):
    run = tmp_path / "run"
    main(
        ["prove-split", "--out", str(run), "--limit", "4", "--latency", "0.005", "--num-workers", "0", "--no-progress"]
    )
    stats = run_stats(load_run(run))
    assert stats.time_split["env_s"] > 0 and stats.time_split["policy_s"] > 0
    assert sum(stats.time_split.values()) == pytest.approx(stats.total_search_time_s, rel=1e-6)


def exact_p(b: int, c: int) -> float:
    """McNemar's exact p-value, by summing every outcome at most as likely as the one seen."""
    n = b + c
    if n == 0:
        return 1.0
    probability = [Fraction(sum(1 for bits in product((0, 1), repeat=n) if sum(bits) == k), 2**n) for k in range(n + 1)]
    return float(min(Fraction(1), sum(p for p in probability if p <= probability[b])))


@pytest.mark.parametrize("b,c", [(0, 0), (0, 1), (1, 9), (3, 3), (2, 7), (0, 12), (5, 6)])
def test_mcnemar_exact_matches_the_binomial_by_enumeration(b, c):
    assert mcnemar_exact(b, c) == pytest.approx(exact_p(b, c))
    assert mcnemar_exact(c, b) == mcnemar_exact(b, c)


def test_large_counts_stay_exact_and_finite():
    p = mcnemar_exact(400, 600)  # 2**1000 overflows a float; the integers do not
    assert 0 < p < 1e-9


def test_report_of_two_runs_gives_the_paired_test(tmp_path, no_drawing, capsys):
    first = [timed(f"t{i}", i < 10, 1.0, 0.5, 0.4) for i in range(20)]
    second = [timed(f"t{i}", i < 2 or 10 <= i < 13, 1.0, 0.5, 0.4) for i in range(20)] + [timed("extra", True, 1, 0, 0)]
    a, b = write_run(tmp_path / "a", first), write_run(tmp_path / "b", second)
    tests = [asdict(test) for test in paired_tests([load_run(a), load_run(b)], ["a", "b"])]
    # The extra theorem is not paired: only theorems both ran count.
    assert tests == [
        {
            "first": "a",
            "second": "b",
            "theorems": 20,
            "only_first": 8,
            "only_second": 3,
            "p_value": pytest.approx(exact_p(8, 3)),
        }
    ]
    main(["report", str(a), str(b), "-o", str(tmp_path / "out")])
    printed = " ".join(capsys.readouterr().out.split())  # the terminal wraps long lines
    assert "8 proved by a only and 3 by b only; McNemar's exact p = 0.227" in printed
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["paired"][0]["p_value"] == pytest.approx(exact_p(8, 3))
    assert "## Paired test" in (tmp_path / "out" / "report.md").read_text()
