"""A tactic the safety filter refuses is a value all the way: the outcome says so
(``LeanError.refused``), the tree stores it as an edge of its own outcome, and the pages
count it from that outcome, not from the wording of its message."""

from __future__ import annotations

from search import DEAD, ROOT, EdgeOutcome, LeanError, SearchLimits, SearchTree, Theorem, best_first_search

from prover.envs.safety import GuardedEnv
from prover.envs.synthetic import SyntheticEnv
from prover.policies.fixed import FixedPolicy
from prover.views.viz import error_kind, overview


def test_a_refused_tactic_is_an_outcome_of_its_own_and_survives_a_save(tmp_path):
    env = GuardedEnv(SyntheticEnv())
    outcome = env.run_tactic(env.start(Theorem("synthetic_0001")), "sorry")
    assert isinstance(outcome, LeanError) and outcome.refused
    assert outcome == LeanError(outcome.error)  # compared by what it says, as before

    policy = FixedPolicy([("sorry", -0.1), ("norm_num", -0.5), ("simp", -0.7)])
    result = best_first_search(Theorem("synthetic_0001"), policy, env, SearchLimits(max_expansions=3))
    refused = [attrs for _, _, attrs in result.tree.graph.edges(data=True) if attrs.get("tactic") == "sorry"]
    assert refused and {attrs["outcome"] for attrs in refused} == {EdgeOutcome.REFUSED}
    result.tree.save(tmp_path / "tree.json")
    again = SearchTree.load(tmp_path / "tree.json")
    again.check_invariants()
    assert {a["outcome"] for _, _, a in again.graph.edges(data=True) if a.get("tactic") == "sorry"} == {"refused"}


def test_pages_count_refusals_by_their_outcome_not_their_wording():
    tree = SearchTree("t", "⊢ p")
    tree.add_outcome(ROOT, "sorry", -0.1, LeanError("`sorry` closes goals without proof", refused=True))
    tree.add_outcome(ROOT, "simp", -0.2, LeanError("simp made no progress"))
    tree.mark_expanded(ROOT)
    tree.check_invariants()
    assert {a["outcome"] for a in tree.graph.succ[ROOT][DEAD].values()} == {"refused", "error"}
    assert overview(tree)["errors"] == {"refused": 1, "Lean error": 1}
    assert error_kind("refused", "anything at all") == "refused"
    assert error_kind("error", "refused: `sorry` closes goals without proof") == "refused"  # trees saved before
