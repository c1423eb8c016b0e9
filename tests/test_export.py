"""Training data from saved searches (``prover export``) and training on it (``train-policy --data``)."""

from __future__ import annotations

import json
import sys

import pytest

from search import LeanError, ProofFinished, SearchTree, TacticState, Theorem

from prover.envs.replay import ReplayEnv
from prover.errors import MissingDependencyError, ProverError
from prover.learn.export import (
    export_runs,
    proof_edge_list,
    read_records,
    read_training_data,
    split_theorems,
    tree_records,
)
from prover.traces import TraceSet

R, S1, S2, S3, F = "⊢ root", "⊢ one", "⊢ two", "⊢ three", "⊢ doomed"


def diamond(theorem: str = "thm", second_proof: bool = True) -> SearchTree:
    """root: a -> S1 -x-> QED and b -> S2 -y-> QED (two shortest proofs), d -> S3 -e-> S1
    (a longer one), bad (an error) and c -> F, whose only tactic fails (a failed state).
    Without ``second_proof`` S2's tactic fails too, so b leads to a failed state. The
    states of theorem "thm" are R, S1, ...; another theorem's have its name in front."""
    prefix = "" if theorem == "thm" else f"{theorem}: "
    tree = SearchTree(theorem, prefix + R)
    root = 0
    s1, _ = tree.add_outcome(root, "a", -0.5, TacticState(prefix + S1))
    s2, _ = tree.add_outcome(root, "b", -1.0, TacticState(prefix + S2))
    tree.add_outcome(root, "bad", -0.2, LeanError("no"))
    f, _ = tree.add_outcome(root, "c", -0.3, TacticState(prefix + F))
    s3, _ = tree.add_outcome(root, "d", -2.0, TacticState(prefix + S3))
    tree.mark_expanded(root)
    tree.add_outcome(f, "z", -0.1, LeanError("still no"))
    tree.mark_expanded(f)
    tree.add_outcome(s1, "x", -0.1, ProofFinished())
    tree.mark_expanded(s1)
    tree.add_outcome(s2, "y", -0.1, ProofFinished() if second_proof else LeanError("y failed"))
    tree.mark_expanded(s2)
    tree.add_outcome(s3, "e", -0.1, TacticState(prefix + S1))
    tree.mark_expanded(s3)
    tree.check_invariants()
    return tree


def save_run(path, trees, statuses=None):
    (path / "trees").mkdir(parents=True)
    for i, tree in enumerate(trees):
        status = (statuses or {}).get(i, "proved" if tree.status(0).value == "proved" else "open")
        tree.save(path / "trees" / f"{tree.graph.graph['theorem']}.json.gz", extra={"status": status})
    return path


def keyed(records):
    return {(r["state_before"], r["tactic"]): r for r in records}


def test_every_shortest_proof_is_exported_and_longer_ones_only_when_asked():
    tree = diamond()
    shortest = {(tree.state(s), tactic) for s, _, tactic in proof_edge_list(tree)}
    assert shortest == {(R, "a"), (R, "b"), (S1, "x"), (S2, "y")}
    every = {(tree.state(s), tactic) for s, _, tactic in proof_edge_list(tree, all_proving_edges=True)}
    assert every == shortest | {(R, "d"), (S3, "e")}


def test_failed_tactics_at_proof_states_become_failed_records_and_preference_pairs():
    records = keyed(tree_records(diamond(), source="t.json"))
    proof = [r for r in records.values() if r["label"] == "proof"]
    assert {(r["state_before"], r["tactic"]) for r in proof} == {(R, "a"), (R, "b"), (S1, "x"), (S2, "y")}
    assert records[(R, "a")]["rejected"] == ["bad", "c"]  # best first
    assert records[(S1, "x")]["rejected"] == []
    assert records[(R, "bad")] | {} == records[(R, "bad")] and records[(R, "bad")]["label"] == "failed"
    assert records[(R, "bad")]["error"] == "no" and records[(R, "bad")]["state_after"] is None
    assert records[(R, "c")]["state_after"] == F and records[(R, "c")]["label"] == "failed"
    assert records[(R, "a")]["step"] == 0 and records[(S1, "x")]["step"] == 1
    assert records[(S1, "x")]["proof_finished"] is True and records[(R, "a")]["state_after"] == S1
    assert (F, "z") not in records  # F's own failures say nothing more than F being failed


def test_unproved_trees_still_give_their_failed_states():
    tree = SearchTree("t", R)
    f, _ = tree.add_outcome(0, "c", -0.3, TacticState(F))
    tree.add_outcome(0, "open", -0.5, TacticState(S1))
    tree.mark_expanded(0)
    tree.add_outcome(f, "z", -0.1, LeanError("no"))
    tree.mark_expanded(f)
    records = tree_records(tree)
    assert [(r["tactic"], r["label"], r["state_after"]) for r in records] == [("c", "failed", F)]


def test_training_data_gives_pairs_preferences_and_values():
    data = read_training_data_of(tree_records(diamond()))
    assert set(data.pairs) == {(R, "a"), (R, "b"), (S1, "x"), (S2, "y")}
    assert (R, "a", "bad") in data.preferences and (R, "b", "c") in data.preferences
    assert len(data.preferences) == 4
    assert dict(data.values) == {R: True, S1: True, S2: True, F: False}


def read_training_data_of(records):
    from prover.learn.export import training_data

    return training_data(records)


def test_export_writes_a_split_data_directory_with_provenance(tmp_path):
    run = save_run(tmp_path / "run", [diamond(f"thm_{i}") for i in range(8)])
    (run / "config.json").write_text(json.dumps({"policy": {"name": "fixed"}, "env": {"name": "synthetic"}}))
    stats = export_runs([run], tmp_path / "data", valid_fraction=0.25, seed=3)
    assert stats.trees == 8 and stats.proved_trees == 8
    assert stats.theorems == {"train": 6, "valid": 2}
    assert stats.proof_records == {"train": 24, "valid": 8}
    assert stats.preference_pairs == {"train": 24, "valid": 8}
    split = {s: {r["theorem"] for r in read_records(tmp_path / "data" / f"{s}.jsonl")} for s in ("train", "valid")}
    assert len(split["train"]) == 6 and len(split["valid"]) == 2 and not split["train"] & split["valid"]
    metadata = json.loads((tmp_path / "data" / "export.json").read_text())
    assert metadata["runs"][0]["policy"] == {"name": "fixed"} and metadata["valid_fraction"] == 0.25
    assert metadata["stats"]["proof_records"] == {"train": 24, "valid": 8}
    again = export_runs([run], tmp_path / "again", valid_fraction=0.25, seed=3)
    assert again == stats
    assert (tmp_path / "again" / "valid.jsonl").read_text() == (tmp_path / "data" / "valid.jsonl").read_text()


def test_split_is_by_theorem_seeded_and_never_empty_when_asked_for():
    names = [f"t{i}" for i in range(40)]
    first, second = split_theorems(names, 0.25, seed=1), split_theorems(reversed(names), 0.25, seed=1)
    assert first == second and sum(s == "valid" for s in first.values()) == 10
    assert split_theorems(names, 0.25, seed=2) != first
    assert list(split_theorems(["a", "b"], 0.01).values()).count("valid") == 1
    assert set(split_theorems(names, 0.0).values()) == {"train"}


def test_records_are_deduplicated_across_runs_and_a_proof_wins_over_a_failure(tmp_path):
    failed_b = save_run(tmp_path / "a", [diamond(second_proof=False)])
    proved_b = save_run(tmp_path / "b", [diamond()])
    stats = export_runs([failed_b, proved_b, proved_b], tmp_path / "data")
    records = keyed(read_records(tmp_path / "data" / "train.jsonl"))
    assert records[(R, "b")]["label"] == "proof"
    assert "b" not in records[(R, "a")]["rejected"]  # on a proof in some run: not a rejected alternative
    assert len(records) == len({(r["state_before"], r["tactic"]) for r in records.values()})
    assert stats.duplicates_dropped > 0


def test_rejected_proofs_are_left_out(tmp_path):
    run = save_run(tmp_path / "run", [diamond("good"), diamond("bad")], statuses={1: "rejected"})
    stats = export_runs([run], tmp_path / "data")
    assert stats.trees == 1 and stats.skipped_trees == 1
    assert {r["theorem"] for r in read_records(tmp_path / "data" / "train.jsonl")} == {"good"}


def test_an_export_is_a_trace_file_the_replay_environment_replays(tmp_path):
    run = save_run(tmp_path / "run", [diamond("thm")])
    export_runs([run], tmp_path / "data")
    traces = TraceSet.load(tmp_path / "data" / "train.jsonl")
    assert traces.get("thm").initial_state == R
    assert ReplayEnv(traces).check_proof(Theorem("thm"), ["a", "x"]) is None
    assert ReplayEnv(traces).check_proof(Theorem("thm"), ["bad"]) is not None


def test_export_of_a_non_run_directory_is_one_sentence(tmp_path):
    with pytest.raises(ProverError, match="is not a run directory with saved trees"):
        export_runs([tmp_path], tmp_path / "data")
    with pytest.raises(ProverError, match="is not a data directory made by prover export"):
        read_training_data(tmp_path)


def test_prover_export_prints_statistics(tmp_path, capsys):
    from prover.cli import main

    run = save_run(tmp_path / "run", [diamond(f"thm_{i}") for i in range(4)])
    main(["export", str(run), "--out", str(tmp_path / "data"), "--valid-fraction", "0.25"])
    out = capsys.readouterr().out
    assert "read 4 trees from 1 run(s): 4 proved" in out
    assert "theorems: 3 train, 1 valid" in out
    assert "preference pairs (state, proof tactic, failed tactic): 12 train, 4 valid" in out
    assert "value examples: provable states 9 train, 3 valid; failed states 3 train, 1 valid" in out


# ---- training on an export ------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_export(tmp_path_factory):
    """An export of a real in-process run: the fixed policy on 12 learnable synthetic theorems."""
    from prover.cli import main

    root = tmp_path_factory.mktemp("export")
    try:
        main(
            [
                "prove-split",
                "--env",
                "synthetic",
                "--rule",
                "learnable",
                "--depth",
                "4",
                "--num-theorems",
                "12",
                "--max-expansions",
                "12",
                "--num-workers",
                "0",
                "--no-progress",
                "--out",
                str(root / "run"),
            ]
        )
    except SystemExit as exc:
        assert not exc.code
    export_runs([root / "run"], root / "data", valid_fraction=0.5)
    return root / "data"


SMALL = dict(
    vocab_size=300,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=1,
    num_attention_heads=2,
    num_key_value_heads=1,
)


def test_train_policy_on_an_export_records_prompt_and_provenance(synthetic_export, tmp_path):
    from prover.learn.training import TinyLlamaShape, TrainOptions, train_policy
    from prover.policies import hf

    options = TrainOptions(steps=3, batch_size=4, shape=TinyLlamaShape(**SMALL))
    out = train_policy(synthetic_export, tmp_path / "policy", options, progress=None)
    metadata = json.loads((out / hf.POLICY_METADATA).read_text())
    assert metadata["prompt"] == "goal_proofstep" and metadata["base_model"] is None
    assert metadata["num_pairs"] == len(read_training_data(synthetic_export).pairs) > 0
    assert metadata["provenance"]["export"]["runs"][0]["env"]["rule"] == "learnable"
    assert metadata["num_valid_pairs"] > 0 and metadata["valid_loss"] is not None  # from valid.jsonl
    policy = hf.build(hf.HFConfig(model=str(out), device="cpu", max_new_tokens=4))
    assert len(policy.propose(["x : ℕ\n⊢ x = 1"], k=2)[0]) == 2

    # Fine-tuning continues from that model with its tokenizer and prompt.
    again = train_policy(
        synthetic_export, tmp_path / "again", TrainOptions(steps=2, batch_size=4, base_model=str(out)), progress=None
    )
    metadata = json.loads((again / hf.POLICY_METADATA).read_text())
    assert metadata["base_model"] == str(out) and metadata["learning_rate"] == 1e-3  # a small model
    assert (again / "tokenizer.json").read_text() == (out / "tokenizer.json").read_text()


def test_cli_train_policy_on_data_refuses_data_and_traces_together(synthetic_export, tmp_path, capsys):
    from prover.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["train-policy", "--data", str(synthetic_export), "--traces", "x.jsonl", "--out", str(tmp_path / "m")])
    assert exited.value.code == 2
    assert "give --data (an export) or --traces (a trace file), not both" in capsys.readouterr().err


def test_lora_fine_tuning_saves_a_merged_model(synthetic_export, tmp_path):
    pytest.importorskip("peft", reason="LoRA needs peft (pip install 'lean-prover[train]')")
    from prover.learn.training import TinyLlamaShape, TrainOptions, train_policy
    from prover.policies import hf

    base = train_policy(
        synthetic_export, tmp_path / "base", TrainOptions(steps=1, shape=TinyLlamaShape(**SMALL)), progress=None
    )
    out = train_policy(
        synthetic_export,
        tmp_path / "lora",
        TrainOptions(steps=2, batch_size=4, base_model=str(base), lora=True, lora_rank=4),
        progress=None,
    )
    metadata = json.loads((out / hf.POLICY_METADATA).read_text())
    assert metadata["lora"] == {"rank": 4} and metadata["learning_rate"] == 2e-4
    assert not (out / "adapter_config.json").exists()  # merged: loads like any model
    model, _ = hf.load_model(str(out), "cpu")
    assert not any("lora" in name for name, _ in model.named_parameters())


def test_lora_needs_a_model_to_adapt(synthetic_export, tmp_path):
    from prover.learn.training import TrainOptions, train_policy

    with pytest.raises(ProverError, match="--lora adapts a model: give --model"):
        train_policy(synthetic_export, tmp_path / "m", TrainOptions(steps=1, lora=True), progress=None)


def test_lora_without_peft_is_one_sentence(synthetic_export, tmp_path, monkeypatch):
    from prover.learn.training import TinyLlamaShape, TrainOptions, train_policy

    base = train_policy(
        synthetic_export, tmp_path / "base", TrainOptions(steps=1, shape=TinyLlamaShape(**SMALL)), progress=None
    )
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(
        MissingDependencyError,
        match=r"--lora needs peft, which is not installed here; install it "
        r"with pip install 'lean-prover\[train\]'",
    ):
        train_policy(
            synthetic_export, tmp_path / "m", TrainOptions(steps=1, lora=True, base_model=str(base)), progress=None
        )


@pytest.mark.gpu
def test_fine_tuning_runs_on_the_gpu(synthetic_export, tmp_path):
    from prover.learn.training import TinyLlamaShape, TrainOptions, train_policy
    from prover.policies import hf

    base = train_policy(
        synthetic_export,
        tmp_path / "base",
        TrainOptions(steps=1, shape=TinyLlamaShape(**SMALL), device="cpu"),
        progress=None,
    )
    out = train_policy(
        synthetic_export, tmp_path / "gpu", TrainOptions(steps=5, base_model=str(base), device="cuda"), progress=None
    )
    assert json.loads((out / hf.POLICY_METADATA).read_text())["device"].startswith("cuda")
