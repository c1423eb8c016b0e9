import json

import pytest

from search import (
    DEAD,
    QED,
    ROOT,
    EdgeOutcome,
    LeanError,
    NodeView,
    ProofFinished,
    ProofGivenUp,
    SearchTree,
    Status,
    TacticState,
    TreeFormatError,
)


def test_repeated_state_is_one_node():
    tree = SearchTree("t", "A")
    b, new_b = tree.add_outcome(ROOT, "intro x", -0.5, TacticState("B"))
    c, _ = tree.add_outcome(ROOT, "cases h", -0.1, TacticState("C"))
    tree.mark_expanded(ROOT)
    again, new_again = tree.add_outcome(c, "simp", -1.0, TacticState("B"))  # worse than -0.5
    tree.mark_expanded(c)
    assert (again, new_b, new_again) == (b, True, False)
    assert tree.num_states == 3
    assert tree.graph.in_degree(b) == 2
    tree.check_invariants()


def test_better_path_to_unexpanded_state_improves_its_score():
    tree = SearchTree("t", "A")
    b, _ = tree.add_outcome(ROOT, "slow", -3.0, TacticState("B"))
    c, _ = tree.add_outcome(ROOT, "fast", -0.1, TacticState("C"))
    tree.mark_expanded(ROOT)
    _, requeue = tree.add_outcome(c, "jump", -0.1, TacticState("B"))
    tree.mark_expanded(c)
    assert requeue
    assert tree.node(b)["cumulative_logprob"] == pytest.approx(-0.2)
    assert tree.node(b)["depth"] == 2
    tree.check_invariants()


def test_proof_marks_every_ancestor_proved_with_distances():
    tree = SearchTree("t", "A")
    b, _ = tree.add_outcome(ROOT, "intro", -0.5, TacticState("B"))
    tree.mark_expanded(ROOT)
    assert tree.status(ROOT) is Status.OPEN
    target, _ = tree.add_outcome(b, "simp", -0.2, ProofFinished())
    tree.mark_expanded(b)
    assert target == QED
    assert tree.status(b) is Status.PROVED and tree.status(ROOT) is Status.PROVED
    assert tree.node(ROOT)["distance"] == 2
    assert tree.proof_tactics() == ["intro", "simp"]
    tree.check_invariants()


def test_failed_children_mark_parent_failed_up_the_tree():
    tree = SearchTree("t", "A")
    b, _ = tree.add_outcome(ROOT, "intro", -0.5, TacticState("B"))
    c, _ = tree.add_outcome(ROOT, "ring", -1.0, LeanError("ring failed"))
    tree.mark_expanded(ROOT)
    assert c == DEAD and tree.status(ROOT) is Status.OPEN  # B is still open
    tree.add_outcome(b, "simp", -0.2, LeanError("simp made no progress"))
    tree.add_outcome(b, "sorry", -0.1, ProofGivenUp())
    tree.mark_expanded(b)
    assert tree.status(b) is Status.FAILED
    assert tree.status(ROOT) is Status.FAILED
    tree.check_invariants()


def test_expanded_node_with_no_tactics_fails():
    tree = SearchTree("t", "A")
    tree.mark_expanded(ROOT)
    assert tree.status(ROOT) is Status.FAILED


def test_partial_expansion_stays_open():
    tree = SearchTree("t", "A")
    tree.add_outcome(ROOT, "ring", -1.0, LeanError("no"))
    tree.mark_expanded(ROOT, partial=True)
    assert tree.status(ROOT) is Status.OPEN
    tree.check_invariants()


def test_tactic_back_to_an_ancestor_is_a_cycle_not_an_edge_upward():
    tree = SearchTree("t", "A")
    b, _ = tree.add_outcome(ROOT, "intro", -0.5, TacticState("B"))
    tree.mark_expanded(ROOT)
    target, _ = tree.add_outcome(b, "revert", -0.5, TacticState("A"))
    same, _ = tree.add_outcome(b, "skip", -0.5, TacticState("B"))
    tree.mark_expanded(b)
    assert target == DEAD and same == DEAD
    assert tree.graph.edges[b, DEAD, "revert"]["outcome"] == EdgeOutcome.CYCLE
    assert tree.status(ROOT) is Status.FAILED
    tree.check_invariants()


def test_proof_extraction_takes_the_shortest_proof():
    tree = SearchTree("t", "A")
    b, _ = tree.add_outcome(ROOT, "long", -0.1, TacticState("B"))
    tree.add_outcome(ROOT, "short", -2.0, TacticState("C"))
    tree.mark_expanded(ROOT)
    c = tree.node_of("C")
    d, _ = tree.add_outcome(b, "more", -0.1, TacticState("D"))
    tree.mark_expanded(b)
    tree.add_outcome(d, "done", -0.1, ProofFinished())
    tree.mark_expanded(d)
    assert tree.proof_tactics() == ["long", "more", "done"]
    tree.add_outcome(c, "finish", -0.1, ProofFinished())
    tree.mark_expanded(c)
    assert tree.proof_tactics() == ["short", "finish"]
    tree.check_invariants()


def test_invariant_check_catches_a_wrong_status():
    tree = SearchTree("t", "A")
    tree.add_outcome(ROOT, "simp", -0.1, ProofFinished())
    tree.mark_expanded(ROOT)
    tree.node(ROOT)["status"] = Status.OPEN.value
    with pytest.raises(AssertionError):
        tree.check_invariants()


def test_statuses_and_outcomes_are_stored_as_their_values_equal_to_the_enums():
    tree = _sample_tree()
    assert tree.node(ROOT)["status"] == Status.PROVED and type(tree.node(ROOT)["status"]) is str
    assert tree.status(ROOT) is Status.PROVED  # the accessor gives the member
    outcomes = {attrs["outcome"] for *_, attrs in tree.graph.edges(keys=True, data=True)}
    assert outcomes <= set(EdgeOutcome) and all(type(o) is str for o in outcomes)


def test_attribute_dicts_are_never_tracked_by_the_garbage_collector(tmp_path):
    # Why the values are plain strings: a dict of plain values is left out of every
    # collection, and a large tree is mostly these dicts.
    import gc

    tree = _sample_tree()
    tree.save(tmp_path / "tree.json")
    for grown in (tree, SearchTree.load(tmp_path / "tree.json")):
        assert not any(gc.is_tracked(attrs) for _, attrs in grown.graph.nodes(data=True))
        assert not any(gc.is_tracked(attrs) for *_, attrs in grown.graph.edges(keys=True, data=True))


def test_invariant_check_catches_an_enum_member_stored_in_place_of_its_value():
    tree = _sample_tree()
    tree.node(ROOT)["status"] = Status.PROVED  # equal to the stored value, but not it
    with pytest.raises(AssertionError, match="should be"):
        tree.check_invariants()
    tree = _sample_tree()
    _, _, attrs = next(tree.tactic_edges(ROOT))
    attrs["outcome"] = EdgeOutcome(attrs["outcome"])
    with pytest.raises(AssertionError, match="outcome"):
        tree.check_invariants()


def _sample_tree() -> SearchTree:
    tree = SearchTree("thm ∀ x", "x : ℕ\n⊢ x = x")
    b, _ = tree.add_outcome(ROOT, "induction x", -0.7, TacticState("case zero\n⊢ 0 = 0"), time_s=0.25, t_s=0.3)
    tree.add_outcome(ROOT, "bad", -2.0, LeanError("unknown tactic"), time_s=0.01)
    tree.mark_expanded(ROOT, t_s=0.4)
    tree.add_outcome(b, "rfl", -0.1, ProofFinished(), time_s=0.02)
    tree.mark_expanded(b, t_s=0.5)
    return tree


def test_json_round_trip_loses_nothing(tmp_path):
    tree = _sample_tree()
    path = tmp_path / "tree.json"
    tree.save(path, extra={"status": "proved"})
    loaded = SearchTree.load(path)
    assert dict(loaded.graph.nodes(data=True)) == dict(tree.graph.nodes(data=True))
    assert sorted(loaded.graph.edges(keys=True, data=True), key=str) == sorted(
        tree.graph.edges(keys=True, data=True), key=str
    )
    assert loaded.graph.graph["result"] == {"status": "proved"}
    assert loaded.num_expanded == tree.num_expanded
    assert loaded.proof_tactics() == ["induction x", "rfl"]
    loaded.check_invariants()
    data = tree.to_json()
    SearchTree.from_json(data)
    assert data == tree.to_json()  # reading leaves the caller's data as it was
    # the file is plain JSON that a browser can parse: no NaN or Infinity
    json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a search tree"),
        ('{"nodes": [], "edges": []}', "not a search tree"),
        (
            '{"directed": true, "multigraph": true, "graph": {"num_expanded": 0, "format_version": 1},'
            ' "nodes": [{"id": 0, "state": "A", "status": "half-proved"}], "edges": []}',
            "not a search tree",
        ),
    ],
)
def test_loading_a_malformed_tree_says_so(tmp_path, content, message):
    path = tmp_path / "tree.json"
    path.write_text(content)
    with pytest.raises(TreeFormatError, match=message):
        SearchTree.load(path)


def test_loading_a_missing_tree_says_so(tmp_path):
    with pytest.raises(TreeFormatError, match="cannot read"):
        SearchTree.load(tmp_path / "absent.json")


def test_scores_are_unset_until_the_search_sets_them_and_are_saved(tmp_path):
    tree = _sample_tree()
    b = tree.node_of("case zero\n⊢ 0 = 0")
    assert tree.node(b)["priority"] is None and tree.node(b)["value"] is None
    assert tree.view(b) == NodeView(cumulative_logprob=-0.7, depth=1, value=None)
    tree.node(b)["priority"], tree.node(b)["value"] = -0.7, -1.5
    tree.check_invariants()
    tree.save(tmp_path / "tree.json")
    loaded = SearchTree.load(tmp_path / "tree.json")
    assert loaded.node(b)["priority"] == -0.7
    assert loaded.view(b) == NodeView(cumulative_logprob=-0.7, depth=1, value=-1.5)
    loaded.check_invariants()


def test_tree_saved_before_scores_were_kept_still_loads(tmp_path):
    data = _sample_tree().to_json()
    for node in data["nodes"]:
        node.pop("priority", None), node.pop("value", None)
    assert data["graph"]["format_version"] == 1
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    loaded = SearchTree.load(path)
    assert loaded.node(ROOT)["priority"] is None and loaded.view(ROOT).value is None
    assert loaded.proof_tactics() == ["induction x", "rfl"]
    loaded.check_invariants()


def test_invariant_check_catches_an_attribute_outside_the_schema():
    tree = _sample_tree()
    tree.node(ROOT)["colour"] = "red"
    with pytest.raises(AssertionError, match="attributes"):
        tree.check_invariants()


def test_tree_grows_an_ordinary_networkx_graph():
    # The tree writes networkx's dicts directly; the graph must be what add_edge would build.
    import networkx as nx

    tree = _sample_tree()
    c, _ = tree.add_outcome(ROOT, "cases", -0.3, TacticState("C"))
    tree.add_outcome(c, "back", -0.3, TacticState("x : ℕ\n⊢ x = x"))  # a cycle: to DEAD
    tree.add_outcome(c, "again", -0.2, TacticState("case zero\n⊢ 0 = 0"))  # a merge
    tree.mark_expanded(c)
    rebuilt = nx.MultiDiGraph(**tree.graph.graph)
    rebuilt.add_nodes_from(tree.graph.nodes(data=True))
    rebuilt.add_edges_from(tree.graph.edges(keys=True, data=True))
    assert nx.utils.graphs_equal(tree.graph, rebuilt)
    assert sorted(tree.graph.in_edges(DEAD, keys=True)) == sorted(rebuilt.in_edges(DEAD, keys=True))
    assert tree.graph.in_degree(tree.node_of("case zero\n⊢ 0 = 0")) == 2
    tree.check_invariants()
