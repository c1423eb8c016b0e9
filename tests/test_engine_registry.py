import pytest

from search import (
    ALGORITHMS,
    SCORERS,
    NodeView,
    SearchLimits,
    SearchStatus,
    Theorem,
    best_first_search,
    cumulative_logprob,
    get_algorithm,
    get_scorer,
    length_normalised,
)

from tests.fakes import GraphEnv, two_step_problem


def test_scorer_registry_names_the_built_in_scorers():
    assert get_scorer("cumulative") is cumulative_logprob
    assert get_scorer("length_normalised") is length_normalised
    assert list(SCORERS) == ["cumulative", "length_normalised", "value_mixed"]


def test_scorer_registry_names_choices_on_typo():
    with pytest.raises(ValueError) as raised:
        get_scorer("cumulativ")
    assert str(raised.value) == "unknown scorer 'cumulativ'; did you mean 'cumulative'?"


def test_built_in_scorers_read_the_view():
    view = NodeView(cumulative_logprob=-1.2, depth=3, value=-9.0)
    assert cumulative_logprob(view) == -1.2
    assert length_normalised(view) == pytest.approx(-0.4)
    assert length_normalised(NodeView(cumulative_logprob=0.0, depth=0)) == 0.0  # the root


def test_algorithm_registry_resolves_best_first():
    assert get_algorithm("best_first") is best_first_search
    table, policy = two_step_problem()
    search = ALGORITHMS["best_first"]
    result = search(
        Theorem("t"),
        policy,
        GraphEnv("A", table),
        SearchLimits(max_expansions=5),
        on_expansion=lambda tree, node: tree.check_invariants(),
    )
    assert result.status is SearchStatus.PROVED


def test_algorithm_registry_names_choices_on_typo():
    with pytest.raises(ValueError) as raised:
        get_algorithm("best-first")
    assert str(raised.value) == "unknown search algorithm 'best-first'; did you mean 'best_first'?"
