"""Tree views without a browser: the HTML page's content, the SVG/PNG pictures, GraphML, the CLI."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree

import networkx as nx
import pytest
from PIL import Image

from search import (
    DEAD,
    QED,
    ROOT,
    LeanError,
    ProofFinished,
    SearchLimits,
    SearchTree,
    Status,
    TacticState,
    Theorem,
    best_first_search,
)

from prover.cli import main
from prover.envs.synthetic import SyntheticConfig, SyntheticEnv
from prover.policies.fixed import FixedPolicy
from prover.views.plots import draw_tree, tree_figure
from prover.views.viz import graphml_graph, overview, primary_parents, render_html, view_data, write_graphml

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
    result = best_first_search(
        Theorem(theorem), FixedPolicy(), SyntheticEnv(config), SearchLimits(max_expansions=max_expansions)
    )
    result.tree.graph.graph["result"] = result.to_record().to_json()  # as a saved tree file holds it
    return result.tree


def deep_tree(depth: int = 120, proved: bool = False) -> SearchTree:
    """A chain ``depth`` tactics long with long goals; at each level a second child, a Lean
    error and a refused ``sorry``; priorities as a best-first search would leave them."""
    tree = SearchTree("deep_chain", "x y : ℕ\nh₀ : x + y = 10\n⊢ 2 * x ≤ 10 ∧ x * y ≤ 25")
    node = ROOT
    for level in range(depth):
        goal = f"x y : ℕ\nh₀ : x + y = 10\n⊢ step_{level} : 2 * x + {level} ≤ 10 + {level} ∧ a_long_goal"
        tree.node(node)["priority"] = -0.1 * level
        child, _ = tree.add_outcome(
            node, f"nlinarith [sq_nonneg (x - y), h₀, step {level}]", -0.1, TacticState(goal), t_s=level * 0.01
        )
        side, _ = tree.add_outcome(node, f"omega_{level}", -0.5, TacticState(goal + f"\n\ncase side\n⊢ side {level}"))
        tree.node(side)["priority"] = -0.1 * level - 0.4
        tree.add_outcome(node, "simp_all", -0.9, LeanError(f"simp made no progress at level {level}"), time_s=0.002)
        tree.add_outcome(node, "sorry", -1.5, LeanError("refused: `sorry` closes goals without proof"))
        tree.mark_expanded(node, t_s=level * 0.01)
        node = child
    tree.node(node)["priority"] = -0.1 * depth
    if proved:
        tree.add_outcome(node, "decide", -0.2, ProofFinished())
        tree.mark_expanded(node)
    tree.check_invariants()
    return tree


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
    assert "overview" in data


def test_tree_page_links_into_its_run_with_escaped_hrefs():
    page = render_html(small_tree(), nav={"index": "index.html", "prev": None, "next": 'x"><script>.html'})
    assert '<a id="nav-index" href="index.html">' in page
    assert 'href="x&quot;&gt;&lt;script&gt;.html"' in page and '"><script>' not in page
    assert "nav-index" not in render_html(small_tree())


def test_view_data_carries_each_states_priority_and_value():
    tree = deep_tree(depth=5)
    data = view_data(tree)
    for row in data["nodes"]:
        assert row[10] == tree.node(row[0])["priority"] and row[11] == tree.node(row[0])["value"]
    assert data["nodes"][1][10] == pytest.approx(-0.1)


def test_overview_ranks_the_frontier_by_priority_and_counts_error_kinds():
    tree = deep_tree(depth=30)
    summary = overview(tree, top=10)
    waiting = [n for n in range(tree.num_states) if tree.node(n)["expanded_order"] is None]
    assert summary["num_frontier"] == len(waiting) == 31
    priorities = [row[1] for row in summary["frontier"]]
    assert priorities == sorted(priorities, reverse=True) and len(priorities) == 10
    assert priorities[0] == max(tree.node(n)["priority"] for n in waiting)
    assert sum(summary["depth_states"]) == tree.num_states and len(summary["depth_states"]) == 31
    assert sum(summary["depth_expanded"]) == tree.num_expanded
    assert summary["errors"] == {"Lean error": 30, "refused": 30}
    assert summary["deepest"][0][2] == 30  # [node, goals, depth]: the end of the chain
    assert [row[1] for row in summary["fewest_goals"]] == sorted(row[1] for row in summary["fewest_goals"])
    assert summary["top_errors"][0] == ("refused: `sorry` closes goals without proof", 30)


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


def test_svg_gives_every_state_a_tooltip_with_its_goal_escaped(tmp_path):
    tree = small_tree()
    c = tree.node_of("⊢ C")
    tree.graph.nodes[c]["state"] = "⊢ C </title><script>alert(1)</script>"  # hostile goal text
    svg = draw_tree(tree, tmp_path / "tree.svg").read_text()
    root = ElementTree.fromstring(svg)  # still well-formed XML
    titles = {
        g.get("id"): g.find("{http://www.w3.org/2000/svg}title").text
        for g in root.iter("{http://www.w3.org/2000/svg}g")
        if g.get("id", "").startswith("state-")
    }
    assert set(titles) == {f"state-{n}" for n in range(tree.num_states)}
    assert titles["state-0"].startswith("[0] proved, depth 0") and "⊢ A" in titles["state-0"]
    assert "<script>alert(1)</script>" in titles[f"state-{c}"]
    assert "<script>" not in svg


def test_a_failed_search_is_drawn_with_its_frontier_and_deepest_states_named(tmp_path):
    tree = synthetic_tree(max_expansions=150, theorem="synthetic_0001", branching=6, depth=9, proof_density=0.1)
    assert tree.status(ROOT) is not Status.PROVED and tree.num_states > 300
    fig, drawn, tag_of = tree_figure(tree, max_nodes=60)
    summary = overview(tree)
    frontier = [row[0] for row in summary["frontier"][:5]]
    assert [tag_of[n] for n in frontier] == ["F1", "F2", "F3", "F4", "F5"]
    assert summary["deepest"][0][0] in tag_of and len(drawn) <= 60
    svg = draw_tree(tree, tmp_path / "failed.svg", max_nodes=60).read_text()
    text = " ".join(ElementTree.fromstring(svg).itertext())
    for node in frontier:
        assert f"[{node}]" in text and tree.state(node).splitlines()[-1] in text
    assert "the frontier and deepest states" in text and "stopped: max_expansions" in text


def test_picture_header_texts_legend_and_key_do_not_overlap():
    trees = [
        small_tree(),
        deep_tree(depth=60),
        synthetic_tree(max_expansions=150, theorem="synthetic_0001", branching=6, depth=9, proof_density=0.1),
    ]
    for tree in trees:
        fig, _, _ = tree_figure(tree, max_nodes=60)
        renderer = fig.canvas.get_renderer()
        boxes = [t.get_window_extent(renderer) for t in fig.texts if t.get_text()]
        boxes += [legend.get_window_extent(renderer) for legend in fig.legends]
        assert len(boxes) >= 3
        for i, a in enumerate(boxes):
            assert a.x1 <= fig.bbox.width + 1 and a.y0 >= -1 and a.y1 <= fig.bbox.height + 1, "text leaves the picture"
            for b in boxes[i + 1 :]:
                assert not a.overlaps(b), f"{tree.theorem}: {a} overlaps {b}"


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
    printed = capsys.readouterr().out
    assert "wrote" in printed and (tmp_path / "demo.html").resolve().as_uri() in printed
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
