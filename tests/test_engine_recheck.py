"""A proof whose from-scratch re-check cannot run is not PROVED, and the search still returns."""

import pytest

from search import EnvCrashError, EnvInitError, EnvTimeoutError, SearchStatus, Theorem, best_first_search

from tests.fakes import CheckedGraphEnv, two_step_problem


class FailingCheckEnv(CheckedGraphEnv):
    def __init__(self, *args, failure, **kwargs):
        super().__init__(*args, **kwargs)
        self.failure = failure

    def check_proof(self, theorem, tactics):
        raise self.failure


@pytest.mark.parametrize("failure", [EnvTimeoutError("slow"), EnvCrashError("died"), EnvInitError("no start")])
def test_a_recheck_that_cannot_run_rejects_the_proof_with_the_reason(failure):
    table, policy = two_step_problem()
    env = FailingCheckEnv("A", table, failure=failure)
    result = best_first_search(Theorem("t"), policy, env)
    assert result.status is SearchStatus.REJECTED
    assert type(failure).__name__ in result.error and str(failure) in result.error
    assert result.proof == ["intro x", "simp"] and env.closed == 1
