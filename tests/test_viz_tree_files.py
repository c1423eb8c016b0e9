"""Tree files: written gzip-compressed where the name ends in ``.gz`` (run directories do),
read back whether compressed or not, and small enough to keep a tree per theorem.

Measured here, 11,180 states (the 10k-state tree of the browser test): 7.1 MB of JSON,
0.68 MB gzipped, a ratio of 10.4; the test asserts at least 5.
"""

from __future__ import annotations

import gzip
import json

import pytest

from search import SearchTree, TreeFormatError

from prover.cli import main

from tests.test_viz import small_tree, synthetic_tree


def test_a_ten_thousand_state_tree_file_is_at_most_a_fifth_of_its_json(tmp_path):
    tree = synthetic_tree(max_expansions=2700, theorem="synthetic_0001", branching=8, depth=9, proof_density=0.3)
    assert tree.num_states > 10_000
    plain, packed = tmp_path / "big.json", tmp_path / "big.json.gz"
    tree.save(plain)
    tree.save(packed)
    plain_size, packed_size = plain.stat().st_size, packed.stat().st_size
    print(
        f"{tree.num_states} states: {plain_size / 1e6:.2f} MB JSON, {packed_size / 1e6:.2f} MB gzipped, "
        f"ratio {plain_size / packed_size:.1f}"
    )
    assert plain_size > 5_000_000
    assert packed_size * 5 <= plain_size
    assert json.loads(gzip.decompress(packed.read_bytes())) == json.loads(plain.read_bytes())


def test_compressed_and_plain_files_load_to_the_same_tree_whatever_their_name(tmp_path):
    tree = small_tree()
    tree.save(tmp_path / "t.json.gz", extra={"status": "proved"})
    tree.save(tmp_path / "t.json", extra={"status": "proved"})
    assert (tmp_path / "t.json.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))["graph"]["theorem"] == "demo"
    (tmp_path / "renamed.json").write_bytes((tmp_path / "t.json.gz").read_bytes())  # content decides, not name
    loaded = [SearchTree.load(tmp_path / name) for name in ("t.json.gz", "t.json", "renamed.json")]
    assert loaded[0].to_json() == loaded[1].to_json() == loaded[2].to_json()
    assert all(t.to_json()[key] == tree.to_json()[key] for t in loaded for key in ("nodes", "edges"))
    assert loaded[0].graph.graph["result"] == {"status": "proved"}
    assert [t.proof_tactics() for t in loaded] == [tree.proof_tactics()] * 3
    tree.save(tmp_path / "again.json.gz", extra={"status": "proved"})
    assert (tmp_path / "again.json.gz").read_bytes() == (tmp_path / "t.json.gz").read_bytes()  # reproducible


def test_a_damaged_compressed_tree_is_refused_in_one_sentence(tmp_path, capsys):
    small_tree().save(tmp_path / "t.json.gz")
    damaged = tmp_path / "cut.json.gz"
    damaged.write_bytes((tmp_path / "t.json.gz").read_bytes()[:40])
    with pytest.raises(TreeFormatError, match="is a damaged gzip file"):
        SearchTree.load(damaged)
    not_json = tmp_path / "text.json.gz"
    not_json.write_bytes(gzip.compress(b"not json"))
    with pytest.raises(TreeFormatError, match="is not valid JSON"):
        SearchTree.load(not_json)
    with pytest.raises(SystemExit) as exit_info:
        main(["viz", str(damaged)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_runs_write_compressed_trees_and_viz_reads_them(tmp_path, capsys):
    run = tmp_path / "run"
    main(
        [
            "prove-split",
            "--out",
            str(run),
            "--num-workers",
            "0",
            "--no-progress",
            "--num-theorems",
            "3",
            "--max-expansions",
            "20",
        ]
    )
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert [r["tree"] for r in records] == [f"trees/synthetic_000{i}.json.gz" for i in range(3)]
    assert sorted(p.name for p in (run / "trees").iterdir()) == [f"synthetic_000{i}.json.gz" for i in range(3)]
    for record in records:
        assert (run / record["tree"]).read_bytes()[:2] == b"\x1f\x8b"
        assert SearchTree.load(run / record["tree"]).num_expanded == record["num_expansions"]
    capsys.readouterr()
    main(["viz", str(run / "trees" / "synthetic_0000.json.gz")])
    assert (run / "trees" / "synthetic_0000.html").is_file()  # not synthetic_0000.json.html
    main(["viz", str(run / "trees" / "synthetic_0000.json.gz"), "--format", "text", "-o", str(tmp_path / "o.txt")])
    assert (tmp_path / "o.txt").read_text().startswith("theorem synthetic_0000")
