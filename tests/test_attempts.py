"""--attempts N (pass@N): independent searches of each theorem, the rest cancelled once one
proves it, every attempt kept, pass@k with intervals, resumed at attempt granularity."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest

from search import (
    LeanError,
    ProofFinished,
    Proposal,
    SearchLimits,
    SearchStatus,
    StopReason,
    TacticState,
    Theorem,
    best_first_search,
)

from prover.run.attempts import ATTEMPTS_FILE, AttemptRace, group_by_theorem
from prover.run.passk import pass_at_k, pass_at_k_table

from tests.test_presets import run_cli


def brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """The share of k-subsets of n searches (c of them proofs) that hold a proof."""
    outcomes = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(outcomes, k))
    return sum(any(s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n,c,k", [(4, 1, 1), (4, 1, 2), (5, 2, 3), (8, 3, 4), (6, 0, 2), (6, 6, 1), (7, 1, 7)])
def test_pass_at_k_is_chens_unbiased_estimator(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(n, c, k))


def test_the_set_pass_at_k_counts_unsearched_theorems_as_unproved_and_brackets_its_estimate():
    table = pass_at_k_table([(4, 1), (4, 4), (4, 0)], num_theorems=4, max_k=4)
    assert list(table) == ["1", "2", "3", "4"]
    assert table["1"]["estimate"] == pytest.approx((0.25 + 1 + 0 + 0) / 4)
    assert table["4"]["estimate"] == pytest.approx(0.5)
    estimates = [table[k]["estimate"] for k in table]
    assert estimates == sorted(estimates)  # more searches never prove less
    for entry in table.values():
        assert 0 <= entry["low"] <= entry["estimate"] <= entry["high"] <= 1


class ChainEnv:
    """Attempt 0's tactic 'win' proves the theorem at the third expansion; every other
    tactic leads to a new state forever. Each tactic takes ``latency_s``."""

    def __init__(self, latency_s: float):
        self.latency_s = latency_s

    def start(self, theorem):
        return TacticState("s0")

    def run_tactic(self, state, tactic):
        time.sleep(self.latency_s)
        depth = int(state.pp[1:])
        if tactic == "win" and depth >= 2:
            return ProofFinished()
        if tactic == "bad":
            return LeanError("no")
        return TacticState(f"s{depth + 1}")

    def close(self):
        pass


class AttemptPolicy:
    """Attempt 0 proposes 'win' (and steps); the others only step deeper."""

    def propose(self, states, k):
        raise AssertionError("the engine passes contexts to a policy that reads them")

    def propose_in_context(self, states, contexts, k):
        return [[Proposal("win" if c.attempt == 0 else f"step{c.attempt}", -0.1)] for c in contexts]


def test_a_cancelled_attempt_stops_within_one_expansion_of_the_proof():
    limits = SearchLimits(max_expansions=10_000, time_limit_s=60, tactics_per_node=1)
    race = AttemptRace(
        lambda theorem, on_expansion: best_first_search(
            theorem, AttemptPolicy(), ChainEnv(latency_s=0.002), limits, on_expansion=on_expansion
        )
    )
    theorem = Theorem("t")
    group = [Theorem("t", attempt=a) for a in range(4)]
    results = {}
    for job, result in race.run(group):
        results[job.attempt] = result
        if result.status is SearchStatus.PROVED:
            race.cancel(job.name)
    assert results[0].status is SearchStatus.PROVED and results[0].num_expansions == 3
    for attempt in (1, 2, 3):
        cancelled = results[attempt]
        assert cancelled.stop_reason is StopReason.CANCELLED and cancelled.status is SearchStatus.OPEN
        assert cancelled.expansions_after_cancel <= 1  # measured in expansions, not seconds
        assert cancelled.num_expansions < 100  # far from the budget: it did stop
        # its tree is kept (an attempt that had not started when the cancel came has none)
        assert cancelled.tree is not None or cancelled.num_expansions == 0
    assert theorem.name == "t"


def test_attempts_of_a_theorem_are_grouped_for_the_race():
    jobs = [Theorem("a", attempt=0), Theorem("a", attempt=1), Theorem("b", attempt=2)]
    assert [[j.attempt for j in g] for g in group_by_theorem(jobs)] == [[0, 1], [2]]


REPLAY = ["--env", "replay", "--policy", "replay", "--tactics-per-node", "1", "--max-expansions", "2", "--limit", "30"]


def proved(run: Path) -> set[str]:
    return {
        r["theorem"]
        for r in map(json.loads, (run / "results.jsonl").read_text().splitlines())
        if r["status"] == "proved"
    }


def test_four_attempts_prove_at_least_what_one_proves_and_the_report_shows_pass_at_k(capsys, tmp_path):
    one, four = tmp_path / "one", tmp_path / "four"
    assert run_cli(capsys, "prove-split", *REPLAY, "--num-workers", "0", "--out", one)[0] == 0
    assert run_cli(capsys, "prove-split", *REPLAY, "--num-workers", "0", "--attempts", "4", "--out", four)[0] == 0
    assert proved(one) <= proved(four) and len(proved(four)) > len(proved(one))  # the sampling policy varies
    summary = json.loads((four / "summary.json").read_text())
    assert summary["attempts"] == 4 and list(summary["pass_at_k"]) == ["1", "2", "3", "4"]
    assert summary["pass_at_k"]["4"]["estimate"] == pytest.approx(summary["pass_rate"])  # pass@N is exact
    assert summary["pass_at_k"]["1"]["estimate"] < summary["pass_at_k"]["4"]["estimate"]
    for record in map(json.loads, (four / "results.jsonl").read_text().splitlines()):
        assert [a["attempt"] for a in record["attempts"]] == [0, 1, 2, 3]  # every attempt kept
        for attempt in record["attempts"]:
            assert attempt.get("tree") is None or (four / attempt["tree"]).is_file()
        if record["status"] == "proved":
            assert (four / record["tree"]).is_file() and record["proof"]
    code, out, err = run_cli(capsys, "report", four, "--output", tmp_path / "report")
    assert code == 0, err
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "## pass@k" in markdown and "| 4 |" in markdown
    assert (tmp_path / "report" / "pass_at_k.png").is_file()


def test_a_resumed_run_runs_only_the_attempts_it_lacks(capsys, tmp_path):
    run = tmp_path / "run"
    assert run_cli(capsys, "prove-split", *REPLAY, "--num-workers", "0", "--attempts", "3", "--out", run)[0] == 0
    before = json.loads((run / "summary.json").read_text())
    # As if the driver had been killed: the last theorem's line and its later attempts lost.
    results = (run / "results.jsonl").read_text().splitlines()
    last = json.loads(results[-1])["theorem"]
    (run / "results.jsonl").write_text("\n".join(results[:-1]) + "\n")
    lines = (run / ATTEMPTS_FILE).read_text().splitlines()
    kept = [line for line in lines if not (json.loads(line)["theorem"] == last and json.loads(line)["attempt"] >= 1)]
    lost = len(lines) - len(kept)
    (run / ATTEMPTS_FILE).write_text("\n".join(kept) + "\n")
    if any(json.loads(line)["theorem"] == last and json.loads(line)["status"] == "proved" for line in kept):
        lost = 0  # attempt 0 proved it: nothing is left to run
    assert run_cli(capsys, "prove-split", "--resume", run)[0] == 0
    after_lines = (run / ATTEMPTS_FILE).read_text().splitlines()
    assert len(after_lines) == len(kept) + lost  # only the missing attempts ran
    assert json.loads((run / "summary.json").read_text())["num_proved"] == before["num_proved"]
    assert len((run / "results.jsonl").read_text().splitlines()) == len(results)


@pytest.mark.slow
def test_attempts_on_ray_are_spread_over_workers_and_prove_what_one_attempt_proves(capsys, tmp_path, ray_local):
    one, four = tmp_path / "one", tmp_path / "four"
    assert run_cli(capsys, "prove-split", *REPLAY, "--num-workers", "0", "--out", one)[0] == 0
    code, _, err = run_cli(capsys, "prove-split", *REPLAY, "--num-workers", "2", "--attempts", "4", "--out", four)
    assert code == 0, err
    assert proved(one) <= proved(four)
    summary = json.loads((four / "summary.json").read_text())
    assert list(summary["pass_at_k"]) == ["1", "2", "3", "4"]
    entries = [json.loads(line) for line in (four / ATTEMPTS_FILE).read_text().splitlines()]
    assert len(entries) == 4 * summary["num_theorems"]
