"""Expert iteration (``prover iterate``): rounds of prove, export, train, each its own run
directory, resumable at round granularity."""

from __future__ import annotations

import json
import shutil

import pytest

from search import SearchLimits

from prover.config import BackendSpec, DistributedConfig, RunConfig
from prover.envs.synthetic import SyntheticConfig, heldout_theorems
from prover.errors import ProverError
from prover.learn.iterate import IterateOptions, iterate, prove_in_process_or_on_ray
from prover.policies.hf import POLICY_METADATA
from prover.theorem_sets import load_theorems

from tests.tiny_llama import save_tiny_llama

CONFIG = RunConfig(
    env=BackendSpec("environment", "synthetic", SyntheticConfig(rule="learnable", depth=3)),
    limits=SearchLimits(max_expansions=8, tactics_per_node=4),
    distributed=DistributedConfig(num_workers=0),
)
THEOREMS = load_theorems(CONFIG.theorems, CONFIG.env)[:4]
HELDOUT = heldout_theorems(3)
OPTIONS = IterateOptions(max_new_tokens=6)


@pytest.fixture
def fake_training(monkeypatch, tmp_path_factory):
    """Training replaced by copying a tiny random model: the rounds' bookkeeping, fast.
    Records each call's data directory and base model."""
    from prover.learn import training

    tiny = save_tiny_llama(tmp_path_factory.mktemp("tiny"))
    calls = []

    def train_policy(data, out, options, progress=None):
        calls.append((str(data), options.base_model))
        shutil.copytree(tiny, out)
        (out / POLICY_METADATA).write_text(json.dumps({"prompt": "goal_proofstep", "final_loss": 0.5}))
        return out

    monkeypatch.setattr(training, "train_policy", train_policy)
    return calls


class CountingProve:
    def __init__(self):
        self.theorems = []

    def __call__(self, theorems, config, run):
        self.theorems += [t.name for t in theorems if t.name not in run.finished()]
        return prove_in_process_or_on_ray(theorems, config, run)


def test_each_round_proves_exports_and_trains_the_next_policy(tmp_path, fake_training):
    lines = []
    results = iterate(CONFIG, THEOREMS, tmp_path / "it", 2, OPTIONS, HELDOUT, echo=lines.append)
    first, second = results
    assert first.policy["name"] == "fixed" and second.policy["name"] == "hf"
    assert second.policy["model"] == str(tmp_path / "it" / "round-1" / "policy")
    assert second.policy["decoding"] == "beam" and second.policy["max_new_tokens"] == 6
    assert first.trained_policy == str(tmp_path / "it" / "round-1" / "policy")
    # round 1 trains a tiny model from scratch, round 2 continues from round 1's, on the data of both rounds
    assert fake_training == [
        (str(tmp_path / "it" / "round-1" / "data"), None),
        (str(tmp_path / "it" / "round-2" / "data"), first.trained_policy),
    ]
    export = json.loads((tmp_path / "it" / "round-2" / "data" / "export.json").read_text())
    assert [r["path"] for r in export["runs"]] == [str(tmp_path / "it" / f"round-{n}") for n in (1, 2)]
    for number, result in enumerate(results, 1):
        round_dir = tmp_path / "it" / f"round-{number}"
        assert json.loads((round_dir / "round.json").read_text())["round"] == number
        summary = json.loads((round_dir / "summary.json").read_text())
        assert summary["num_theorems"] == 4 and result.train["num_proved"] == summary["num_proved"]
        held = json.loads((round_dir / "heldout" / "summary.json").read_text())
        assert held["num_theorems"] == 3 and result.heldout["pass_rate"] == held["pass_rate"]
        assert "heldout" not in json.dumps(json.loads((round_dir / "data" / "export.json").read_text())["runs"])
    assert any(line.startswith("round 1: train ") and "held-out" in line for line in lines)


def test_a_rerun_skips_finished_rounds_and_more_rounds_continue(tmp_path, fake_training):
    iterate(CONFIG, THEOREMS, tmp_path / "it", 1, OPTIONS, HELDOUT, echo=lambda line: None)
    prove = CountingProve()
    lines = []
    results = iterate(CONFIG, THEOREMS, tmp_path / "it", 2, OPTIONS, HELDOUT, prove=prove, echo=lines.append)
    assert len(results) == 2 and "(finished earlier)" in lines[0]
    assert sorted(prove.theorems) == sorted(t.name for t in THEOREMS + HELDOUT)  # round 2 only
    assert len(fake_training) == 2
    again = CountingProve()
    assert iterate(CONFIG, THEOREMS, tmp_path / "it", 2, OPTIONS, HELDOUT, prove=again) == results
    assert again.theorems == [] and len(fake_training) == 2


def test_a_round_stopped_halfway_resumes_without_redoing_its_searches(tmp_path, fake_training):
    iterate(CONFIG, THEOREMS, tmp_path / "it", 1, OPTIONS, HELDOUT, echo=lambda line: None)
    round_dir = tmp_path / "it" / "round-1"
    (round_dir / "round.json").unlink()  # stopped after its searches and training
    results_file = round_dir / "heldout" / "results.jsonl"
    results_file.write_text("".join(results_file.read_text().splitlines(keepends=True)[:1]))
    prove = CountingProve()
    iterate(CONFIG, THEOREMS, tmp_path / "it", 1, OPTIONS, HELDOUT, prove=prove, echo=lambda line: None)
    assert prove.theorems == [t.name for t in HELDOUT[1:]]
    assert len(fake_training) == 1  # the trained model was whole: kept
    assert (round_dir / "round.json").is_file()


def test_a_rerun_with_other_settings_is_refused(tmp_path, fake_training):
    iterate(CONFIG, THEOREMS, tmp_path / "it", 1, OPTIONS, HELDOUT, echo=lambda line: None)
    other = RunConfig(env=CONFIG.env, limits=SearchLimits(max_expansions=9), distributed=CONFIG.distributed)
    with pytest.raises(
        ProverError,
        match="other settings \\(these differ: --max-expansions 9 \\(it was 8\\); "
        "--tactics-per-node 8 \\(it was 4\\)\\)",
    ):
        iterate(other, THEOREMS, tmp_path / "it", 2, OPTIONS, HELDOUT)
    with pytest.raises(ProverError, match="the held-out theorems \\(1 named now, 3 before\\)"):
        iterate(CONFIG, THEOREMS, tmp_path / "it", 2, OPTIONS, HELDOUT[:1])
    with pytest.raises(ProverError, match="--trained-max-new-tokens 7 \\(it was 6\\)"):
        iterate(CONFIG, THEOREMS, tmp_path / "it", 2, IterateOptions(max_new_tokens=7), HELDOUT)
    ray_settings = RunConfig(
        env=CONFIG.env, limits=CONFIG.limits, distributed=DistributedConfig(num_workers=0, max_batch_size=4)
    )
    assert len(iterate(ray_settings, THEOREMS, tmp_path / "it", 1, OPTIONS, HELDOUT, echo=lambda line: None)) == 1


def test_nothing_proved_keeps_the_policy_for_the_next_round(tmp_path, fake_training):
    hopeless = RunConfig(
        env=BackendSpec("environment", "synthetic", SyntheticConfig(rule="learnable", depth=3)),
        policy=BackendSpec.default("policy", "fixed"),
        limits=SearchLimits(max_expansions=1),
        distributed=DistributedConfig(num_workers=0),
    )
    theorems = [t for t in THEOREMS if t.name != "synthetic_0000"][:1]
    results = iterate(hopeless, theorems, tmp_path / "it", 2, OPTIONS, echo=lambda line: None)
    if results[0].train["num_proved"] == 0:
        assert results[0].trained_policy is None and results[1].policy["name"] == "fixed"
        assert fake_training == []


def test_an_iteration_directory_must_be_new_or_an_iteration(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ProverError, match="exists and is not an iteration directory"):
        iterate(CONFIG, THEOREMS, tmp_path / "busy", 1, OPTIONS)


@pytest.mark.slow
def test_prover_iterate_trains_for_real_and_report_shows_the_rounds(tmp_path, capsys):
    """Two rounds with real (tiny, few-step) training through the command line."""
    from prover.cli import main

    out = tmp_path / "it"
    main(
        [
            "iterate",
            "--env",
            "synthetic",
            "--rule",
            "learnable",
            "--depth",
            "3",
            "--num-theorems",
            "6",
            "--num-heldout",
            "4",
            "--max-expansions",
            "8",
            "--rounds",
            "2",
            "--steps",
            "20",
            "--num-workers",
            "0",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert "round 2: train" in printed and "held-out" in printed
    assert (out / "round-2" / "policy" / POLICY_METADATA).is_file()
    metadata = json.loads((out / "round-2" / "policy" / POLICY_METADATA).read_text())
    assert metadata["base_model"] == str(out / "round-1" / "policy")
    main(["report", str(out / "round-1" / "heldout"), str(out / "round-2" / "heldout"), "-o", str(tmp_path / "rep")])
    assert "pass rate" in capsys.readouterr().out
