"""pyproject's lower bounds are versions the code works with: each floor is pinned here to
the reason it has (the transformers floor is pinned in tests/test_policy_hf.py)."""

import inspect
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def floor(package: str) -> tuple[int, ...]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(rf'"{re.escape(package)}(?:\[[^\]]*\])?>=([0-9.]+)', text)
    assert match, f"pyproject has no lower bound for {package}"
    return tuple(int(part) for part in match.group(1).split("."))


def test_lean_interact_floor_has_local_projects_that_skip_the_build():
    # 0.6's LocalProject has no auto_build, which the repl backend passes (prover/envs/lean.py).
    from lean_interact import LocalProject

    assert floor("lean-interact") >= (0, 11)
    assert "auto_build" in inspect.signature(LocalProject).parameters


def test_networkx_floor_reads_and_writes_node_link_edges():
    # SearchTree.to_json/from_json pass edges="edges", new in networkx 3.4.
    import networkx as nx

    assert floor("networkx") >= (3, 4)
    assert "edges" in inspect.signature(nx.node_link_data).parameters
