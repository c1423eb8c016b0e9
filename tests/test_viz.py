"""Tree views without a browser: the HTML page's content, the SVG/PNG pictures, GraphML, the CLI."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree

import networkx as nx
import pytest
from PIL import Image

from prover.cli import main
from prover.envs.synthetic import SyntheticConfig, SyntheticEnv
from prover.policies.fixed import FixedPolicy
from prover.plots import draw_tree
from prover.viz import graphml_graph, primary_parents, render_html, view_data, write_graphml
from search import DEAD, QED, ROOT, LeanError, ProofFinished, SearchLimits, SearchTree, TacticState, Theorem
from search import best_first_search

HOSTILE_TACTIC = "</script><script>alert(1)</script>"


def small_tree() -> SearchTree:
    """A -intro x-> B -simp-> QED; A -cases h-> C -omega-> B (a second way in); two failures."""
    tree = SearchTree("demo", "x : ℕ\n⊢ A")
    b, _ = tree.add_outcome(ROOT, "intro x", -0.2, TacticState("⊢ B"), time_s=0.01, t_s=0.01)
    tree.add_outcome(ROOT, HOSTILE_TACTIC, -0.9, LeanError("unknown tactic <script>"), time_s=0.002)
    c, _ = tree.add_outcome(ROOT, "cases h", -0.5, TacticState("⊢ C"), time_s=0.03, t_s=0.04)
    tree.mark_expanded(ROOT, t_s=0.05)
    tree.add_outcome(c, "omega", -0.1, TacticState("⊢ B"), time_s=0.02, t_s=0.06)
    tree.add_outcome(c, "ring", -0.3, LeanError("ring failed"), time_s=0.01, t_s=0.07)
    tree.mark_expanded(c, t_s=0.08)
    tree.add_outcome(b, "simp", -0.4, ProofFinished(), time_s=0.01, t_s=0.09)
    tree.mark_expanded(b, t_s=0.1)
    tree.check_invariants()
    return tree


def synthetic_tree(max_expansions: int = 60, theorem: str = "synthetic_0002", **shape) -> SearchTree:
    """A real search tree from the synthetic environment (proved, for the default shape)."""
    config = SyntheticConfig(**{"branching": 4, "depth": 4, "proof_density": 0.4, "error_rate": 0.3, **shape})
    result = best_first_search(Theorem(theorem), FixedPolicy(), SyntheticEnv(config),
                               SearchLimits(max_expansions=max_expansions))
    result.tree.graph.graph["result"] = result.to_record().to_json()  # as a saved tree file holds it
    return result.tree


def embedded_data(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="tree-data">(.*?)</script>', page, re.S)
    assert match, "the page holds no tree data"
    return json.loads(match.group(1))


def test_html_page_is_self_contained_and_holds_the_whole_tree():
    tree = small_tree()
    page = render_html(tree)
    # Nothing fetched when the page is viewed: no external scripts, styles or images.
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    assert "http://" not in page and "https://" not in page
    assert f'<span id="node-count">{tree.num_states}</span>' in page
    data = embedded_data(page)
    assert data["num_states"] == tree.num_states == len(data["nodes"]) == 3
    assert data["proof"] == [[ROOT, 1, "intro x"], [1, QED, "simp"]]
    assert sum(len(edges) for edges in data["edges"]) == tree.graph.number_of_edges()
    states = {row[0]: row[-1] for row in data["nodes"]}
    assert states == {node: tree.state(node) for node in range(tree.num_states)}


def test_html_page_cannot_be_broken_out_of_by_tactic_or_goal_text():
    page = render_html(small_tree())
    # Only the page's own two script elements close; the hostile text stays inside the data.
    assert page.count("</script>") == 2
    assert HOSTILE_TACTIC in json.dumps(embedded_data(page), ensure_ascii=False)


def test_view_data_lists_tactics_best_first_with_their_outcome_and_timing():
    data = view_data(small_tree())
    root_edges = data["edges"][ROOT]
    assert [e[1] for e in root_edges] == ["intro x", "cases h", HOSTILE_TACTIC]
    assert [e[3] for e in root_edges] == ["state", "state", "error"]
    assert root_edges[2][0] == DEAD and root_edges[2][5] == pytest.approx(0.002)
    root = data["nodes"][ROOT]
    assert root[3] == 0 and root[5] == pytest.approx(0.05)  # expanded first, at 0.05 s


def test_primary_parents_keep_the_proof_on_one_branch_and_reach_the_root():
    tree = synthetic_tree()
    parents = primary_parents(tree)
    proof = tree.proof_edges()
    assert proof, "the synthetic tree should be proved"
    for source, target, _ in proof:
        if target != QED:
            assert parents[target] == source
    for node, parent in parents.items():
        assert parent in tree.graph.pred[node]
        steps = 0
        while node != ROOT:
            node = parents[node]
            steps += 1
            assert steps <= tree.num_states, "a parent chain loops"
    # B is reached from A and from C: it hangs under A, the proof's way in.
    assert primary_parents(small_tree())[1] == ROOT


def test_png_picture_is_a_real_image(tmp_path):
    path = draw_tree(synthetic_tree(), tmp_path / "tree.png")
    assert path.stat().st_size > 20_000
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width >= 600 and image.height >= 380
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert len(colours) > 50, "the picture is nearly blank"


def test_svg_picture_names_the_theorem_the_proof_and_its_tactics(tmp_path):
    tree = small_tree()
    path = draw_tree(tree, tmp_path / "tree.svg")
    svg = path.read_text()
    root = ElementTree.fromstring(svg)
    assert root.tag.endswith("svg") and float(root.get("width").rstrip("pt")) >= 400
    text = " ".join(t for t in root.itertext())
    for expected in ("demo: proved", "3 states", "QED", "intro x", "simp", "cases h", "✗1"):
        assert expected in text, expected


def test_a_huge_tree_is_drawn_cut_to_the_proof_and_the_first_expanded(tmp_path):
    tree = synthetic_tree(max_expansions=300, branching=6, depth=6, proof_density=0.2)
    assert tree.num_states > 500
    svg = draw_tree(tree, tmp_path / "big.svg", max_nodes=120).read_text()
    assert f"{tree.num_states} states" in svg and "showing 120" in svg


def test_an_unknown_picture_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="cannot draw a tree as 'gif'; name the file .svg or .png"):
        draw_tree(small_tree(), tmp_path / "tree.gif")


def test_a_named_picture_format_wins_over_the_file_suffix(tmp_path):
    path = draw_tree(small_tree(), tmp_path / "tree.out", image_format="png")
    with Image.open(path) as image:
        assert image.format == "PNG"


def test_graphml_keeps_every_node_and_edge_with_scalar_attributes(tmp_path):
    tree = small_tree()
    tree.graph.graph["result"] = {"status": "proved", "proof": ["intro x", "simp"]}
    path = write_graphml(tree, tmp_path / "tree.graphml")
    back = nx.read_graphml(path, force_multigraph=True)
    assert back.number_of_nodes() == tree.num_states + 2  # the two sinks too
    assert back.number_of_edges() == tree.graph.number_of_edges()
    assert back.nodes[str(ROOT)]["status"] == "proved" and back.nodes[str(ROOT)]["on_proof"] is True
    assert "distance" not in back.nodes[str(DEAD)]  # None is left unset
    on_proof = [(u, v, k) for u, v, k, d in back.edges(keys=True, data=True) if d["on_proof"]]
    assert sorted(on_proof) == sorted([("0", "1", "intro x"), ("1", "-1", "simp")])
    assert json.loads(back.graph["result"])["proof"] == ["intro x", "simp"]
    assert graphml_graph(tree).graph["num_states"] == 3


def test_viz_command_writes_each_format_next_to_the_tree(tmp_path, capsys):
    tree_path = tmp_path / "demo.json"
    small_tree().save(tree_path, extra={"status": "proved", "wall_time_s": 0.1})
    main(["viz", str(tree_path)])
    assert "wrote" in capsys.readouterr().out
    assert (tmp_path / "demo.html").read_text().startswith("<!doctype html>")
    for fmt in ("svg", "png", "graphml"):
        main(["viz", str(tree_path), "--format", fmt])
        assert (tmp_path / f"demo.{fmt}").stat().st_size > 1000
    out = tmp_path / "sub" / "outline.txt"
    main(["viz", str(tree_path), "--format", "text", "--output", str(out)])
    assert out.read_text().startswith("theorem demo: proved, 3 states")


def test_viz_command_refuses_an_unknown_format(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["viz", str(tmp_path / "t.json"), "--format", "pdf"])
    assert exit_info.value.code == 2
    assert "pdf" in capsys.readouterr().err
