# ruff: noqa: F811  (the fixtures imported from test_export and test_iterate are named as parameters)
"""Learning like the strongest step provers: DPO on the exported preference pairs,
curation between rounds, periodic retraining from the base model, all ``prover iterate``
settings recorded in ``iterate.json``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from search import SearchLimits

from prover.learn.export import export_runs, read_training_data
from prover.learn.iterate import IterateOptions, iterate
from prover.learn.training import TinyLlamaShape, TrainOptions, train_policy
from prover.policies.hf import POLICY_METADATA
from prover.theorem_sets import load_theorems

from tests.test_export import SMALL, synthetic_export  # noqa: F401 (a fixture)
from tests.test_iterate import CONFIG, THEOREMS, fake_training  # noqa: F401 (a fixture)


def test_curation_drops_easy_theorems_and_unchecked_proofs_and_dedupes_across_theorems(synthetic_export, tmp_path):
    run = json.loads((synthetic_export / "export.json").read_text())["runs"][0]["path"]
    records = [json.loads(line) for line in open(f"{run}/results.jsonl")]
    proved = [r["theorem"] for r in records if r["status"] == "proved"]
    plain = export_runs([run], tmp_path / "plain")
    curated = export_runs(
        [run], tmp_path / "curated", exclude_theorems=proved[:2], only_rechecked=True, dedupe_across_theorems=True
    )
    assert curated.curated_out == 2 and curated.trees == plain.trees - 2
    kept = {json.loads(line)["theorem"] for line in (tmp_path / "curated" / "train.jsonl").read_text().splitlines()}
    assert not kept & set(proved[:2])
    metadata = json.loads((tmp_path / "curated" / "export.json").read_text())
    assert metadata["curation"] == {
        "excluded_theorems": sorted(proved[:2]),
        "only_rechecked": True,
        "dedupe_across_theorems": True,
    }
    # A tree whose saved result is not "proved" (no passed re-check recorded) gives no proof step.
    from search import SearchTree

    trees = [SearchTree.load(p) for p in sorted((Path(run) / "trees").iterdir())]
    tree = next(t for t in trees if t.graph.graph["result"]["status"] == "proved")
    copy = tmp_path / "copy"
    (copy / "trees").mkdir(parents=True)
    tree.save(copy / "trees" / "t.json", extra={**tree.graph.graph["result"], "status": "error"})
    assert export_runs([copy], tmp_path / "unchecked", only_rechecked=True).proof_records["train"] == 0
    assert export_runs([copy], tmp_path / "trusted").proof_records["train"] > 0


def test_iterate_with_curation_and_retraining_records_its_settings_and_trains_from_the_base(tmp_path, fake_training):
    # Six theorems, eight tactics a state: the fixed policy proves four, two in one expansion.
    config = dataclasses.replace(CONFIG, limits=SearchLimits(max_expansions=8, tactics_per_node=8))
    theorems = load_theorems(config.theorems, config.env)[:6]
    options = IterateOptions(max_new_tokens=4, curate=True, retrain_every=2)
    results = iterate(config, theorems, tmp_path / "it", 2, options, echo=lambda line: None)
    saved = json.loads((tmp_path / "it" / "iterate.json").read_text())["options"]
    assert (saved["curate"], saved["retrain_every"], saved["dpo"]) == (True, 2, False)
    # Round 2 retrains from the base (a tiny model from scratch: None) instead of round 1's policy.
    assert [base for _, base in fake_training] == [None, None]
    assert [r.trained_from for r in results] == [None, None] and results[1].policy["name"] == "hf"
    export = json.loads((tmp_path / "it" / "round-1" / "data" / "export.json").read_text())
    round_one = [json.loads(line) for line in (tmp_path / "it" / "round-1" / "results.jsonl").read_text().splitlines()]
    easy = sorted(r["theorem"] for r in round_one if r["status"] == "proved" and r["num_expansions"] <= 1)
    assert len(easy) == 2 and export["curation"]["excluded_theorems"] == easy
    assert export["stats"]["curated_out"] == 2 and export["curation"]["only_rechecked"]
    data = (tmp_path / "it" / "round-1" / "data" / "train.jsonl").read_text()
    assert not any(f'"theorem": "{name}"' in data for name in easy)


def test_a_rerun_with_dpo_switched_on_is_refused_naming_the_options(tmp_path, fake_training):
    from prover.errors import ProverError

    iterate(CONFIG, THEOREMS, tmp_path / "it", 1, IterateOptions(max_new_tokens=6), echo=lambda line: None)
    with pytest.raises(ProverError, match="these differ: --dpo true \\(it was false\\)"):
        iterate(
            CONFIG, THEOREMS, tmp_path / "it", 1, IterateOptions(max_new_tokens=6, dpo=True), echo=lambda line: None
        )


@pytest.mark.slow
def test_dpo_prefers_the_proof_tactic_over_the_failed_one_more_than_before(synthetic_export, tmp_path):
    pytest.importorskip("trl", reason="DPO needs TRL (pip install 'lean-prover[dpo]')")
    import torch

    from prover.learn.dpo import train_dpo
    from prover.policies.hf import HFConfig, HFPolicy, load_model
    from prover.policies.prompts import get_prompt

    sft = train_policy(
        synthetic_export,
        tmp_path / "sft",
        TrainOptions(steps=20, batch_size=8, device="cpu", shape=TinyLlamaShape(**SMALL)),
        progress=None,
    )
    pairs = read_training_data(synthetic_export).preferences
    assert pairs

    def margin(model_dir) -> float:
        """Mean over the pairs of log P(proof tactic) - log P(failed tactic) given the state."""
        model, tokenizer = load_model(str(model_dir), "cpu")
        policy = HFPolicy(model, tokenizer, HFConfig(prompt="goal_proofstep"))
        fmt = get_prompt("goal_proofstep")
        total = 0.0
        with torch.no_grad():
            for state, chosen, rejected in pairs:
                prompt = tokenizer(policy.render(state))["input_ids"]
                scores = []
                for tactic in (chosen, rejected):
                    target = tokenizer(fmt.target(tactic), add_special_tokens=False)["input_ids"]
                    ids = torch.tensor([prompt + target])
                    logprobs = torch.log_softmax(model(ids).logits[0, len(prompt) - 1 : -1].float(), -1)
                    scores.append(logprobs.gather(1, ids[0, len(prompt) :, None]).sum().item())
                total += scores[0] - scores[1]
        return total / len(pairs)

    out = train_dpo(
        synthetic_export,
        tmp_path / "dpo",
        sft,
        TrainOptions(steps=30, batch_size=8, device="cpu", learning_rate=1e-3),
        beta=0.1,
        progress=None,
    )
    metadata = json.loads((out / POLICY_METADATA).read_text())
    assert metadata["prompt"] == "goal_proofstep" and metadata["dpo"]["num_preferences"] == len(pairs)
    assert metadata["dpo"]["from"] == str(sft)
    assert margin(out) > margin(sft) + 0.5


def test_dpo_without_trl_is_one_sentence(synthetic_export, tmp_path, monkeypatch):
    import sys

    from prover.errors import MissingDependencyError
    from prover.learn.dpo import train_dpo

    monkeypatch.setitem(sys.modules, "trl", None)
    with pytest.raises(
        MissingDependencyError,
        match=r"DPO needs TRL, which is not installed here; install it "
        r"with pip install 'lean-prover\[dpo\]'",
    ):
        train_dpo(synthetic_export, tmp_path / "m", tmp_path / "policy")


@pytest.mark.slow
def test_prover_iterate_with_dpo_and_curation_runs_three_rounds_on_the_tiny_model(tmp_path, capsys):
    pytest.importorskip("trl", reason="DPO needs TRL (pip install 'lean-prover[dpo]')")
    from prover.cli import main

    out = tmp_path / "it"
    main(
        [
            "iterate",
            "--env",
            "synthetic",
            "--rule",
            "hard",
            "--depth",
            "3",
            "--num-theorems",
            "12",
            "--num-heldout",
            "2",
            "--max-expansions",
            "16",
            "--rounds",
            "3",
            "--steps",
            "5",
            "--dpo",
            "--dpo-steps",
            "2",
            "--curate",
            "--retrain-every",
            "3",
            "--train-device",
            "cpu",
            "--num-workers",
            "0",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert "round 3: train" in printed
    saved = json.loads((out / "iterate.json").read_text())["options"]
    assert saved["dpo"] and saved["curate"] and saved["retrain_every"] == 3
    rounds = [json.loads((out / f"round-{n}" / "round.json").read_text()) for n in (1, 2, 3)]
    trained = [r for r in rounds if r["trained_policy"]]
    assert trained and all(r["dpo"] and r["trained_policy"].endswith("policy-dpo") for r in trained)
    assert rounds[2]["trained_from"] is None  # round 3 retrains from the base: a tiny model from scratch
