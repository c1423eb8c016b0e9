import itertools

from search import (
    DEAD,
    QED,
    ROOT,
    EdgeOutcome,
    EnvCrashError,
    EnvTimeoutError,
    LeanError,
    ProofFinished,
    Proposal,
    SearchTree,
    Status,
    TacticState,
    expand_node,
    merge_proposals,
)

from tests.fakes import GraphEnv


def _proposals(*tactics: str) -> list[Proposal]:
    return [Proposal(t, -0.1 * (i + 1)) for i, t in enumerate(tactics)]


def _expand(table: dict, proposals: list[Proposal], deadline: float = float("inf"), clock=None):
    env = GraphEnv("A", table)
    tree = SearchTree("t", "A")
    kwargs = {"clock": clock} if clock else {}
    expansion = expand_node(tree, ROOT, TacticState("A"), proposals, env, started=0.0, deadline=deadline, **kwargs)
    tree.check_invariants()
    return tree, env, expansion


def test_merge_proposals_strips_dedupes_and_keeps_the_best_k():
    merged = merge_proposals(
        [
            Proposal("simp", -2.0),
            Proposal(" simp ", -0.5),
            Proposal("", -0.1),
            Proposal("ring", -1.0),
            Proposal("omega", -3.0),
        ],
        k=2,
    )
    assert merged == [Proposal("simp", -0.5), Proposal("ring", -1.0)]


def test_expansion_returns_new_states_with_their_handles():
    b, c = TacticState("B", message="b's handle"), TacticState("C")
    tree, env, expansion = _expand(
        {"A": {"intro": b, "cases": c, "ring": LeanError("no")}}, _proposals("intro", "ring", "cases")
    )
    assert expansion.children == ((tree.node_of("B"), b), (tree.node_of("C"), c))
    assert expansion.children[0][1] is b  # the environment's own object, to run tactics on
    assert (expansion.num_tactics, expansion.out_of_time, expansion.error) == (3, False, None)
    assert tree.node(ROOT)["expanded_order"] == 0 and tree.node(ROOT)["partial"] is False


def test_expansion_stops_at_a_tactic_that_proves_the_node():
    tree, env, expansion = _expand({"A": {"a": ProofFinished(), "b": TacticState("B")}}, _proposals("a", "b"))
    assert env.calls == [("A", "a")]
    assert expansion.children == () and expansion.num_tactics == 1
    assert tree.status(ROOT) is Status.PROVED


def test_expansion_at_the_deadline_is_partial_and_leaves_the_node_open():
    ticks = itertools.count()  # each clock reading is one second later
    tree, env, expansion = _expand(
        {"A": {"a": LeanError("no"), "b": LeanError("no")}},
        _proposals("a", "b"),
        deadline=2.0,
        clock=lambda: float(next(ticks)),
    )
    assert env.calls == [("A", "a")]
    assert expansion.out_of_time and expansion.num_tactics == 1
    assert tree.node(ROOT)["partial"] is True
    assert tree.status(ROOT) is Status.OPEN  # its one failed tactic does not fail it


def test_a_timed_out_tactic_is_a_timeout_edge_and_the_expansion_goes_on():
    tree, env, expansion = _expand(
        {"A": {"slow": EnvTimeoutError("5 s"), "intro": TacticState("B")}}, _proposals("slow", "intro")
    )
    edge = tree.graph.edges[ROOT, DEAD, "slow"]
    assert edge["outcome"] == EdgeOutcome.TIMEOUT and "5 s" in edge["error"]
    assert expansion.error is None and expansion.num_tactics == 2 and len(expansion.children) == 1


def test_an_env_crash_ends_the_expansion_with_an_error():
    tree, env, expansion = _expand(
        {"A": {"intro": TacticState("B"), "boom": EnvCrashError("lean died"), "simp": ProofFinished()}},
        _proposals("intro", "boom", "simp"),
    )
    assert env.calls == [("A", "intro"), ("A", "boom")]
    assert "lean died" in expansion.error and expansion.num_tactics == 1
    assert tree.node(ROOT)["partial"] is True
    assert QED not in tree.graph.succ[ROOT]
