"""Engine housekeeping: young garbage collections are rarer while it searches (and the
collector put back as it was, also with searches in threads), and scores stay finite."""

import gc
import threading

from search import Theorem, best_first_search

from tests.fakes import GraphEnv, two_step_problem


def test_gc_thresholds_are_raised_during_a_search_and_restored_after():
    table, policy = two_step_problem()
    before = gc.get_threshold()
    seen = []
    best_first_search(
        Theorem("t"), policy, GraphEnv("A", table), on_expansion=lambda tree, node: seen.append(gc.get_threshold())
    )
    assert seen and all(t[0] >= 100_000 and t[1:] == before[1:] for t in seen)
    assert gc.get_threshold() == before


def test_concurrent_searches_restore_the_thresholds_once_the_last_ends():
    table, policy = two_step_problem()
    before = gc.get_threshold()
    release = threading.Event()
    inside = threading.Barrier(3)

    def slow_expansion(tree, node):
        if node == 0:
            inside.wait(timeout=5)
            release.wait(timeout=5)

    threads = [
        threading.Thread(
            target=best_first_search,
            args=(Theorem("t"), policy, GraphEnv("A", table)),
            kwargs={"on_expansion": slow_expansion},
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    inside.wait(timeout=5)
    assert gc.get_threshold()[0] >= 100_000
    release.set()
    for thread in threads:
        thread.join(timeout=5)
    assert gc.get_threshold() == before


def test_infinite_scores_become_the_lowest_finite_score_so_trees_stay_json():
    import json

    from search import Proposal, merge_proposals

    merged = merge_proposals([Proposal("a", float("-inf")), Proposal("b", float("nan")), Proposal("c", -1.0)], 8)
    assert [p.tactic for p in merged] == ["c", "a"] and merged[1].logprob == -1e9

    class InfiniteCritic:
        def score(self, states):
            return [float("-inf")] * len(states)

    table, policy = two_step_problem()
    result = best_first_search(Theorem("t"), policy, GraphEnv("A", table), value_model=InfiniteCritic())
    json.dumps(result.tree.to_json(), allow_nan=False)  # raises on inf or nan
