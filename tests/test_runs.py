import json

import pytest

from search import SearchLimits, Theorem

from prover.config import EnvConfig, PolicyConfig, RunConfig, TheoremSetConfig
from prover.errors import ProverError
from prover.policies.fixed import FixedPolicy
from prover.runner import prove_locally
from prover.runs import RunDir, summarize, tree_filename


def _config(**env):
    return RunConfig(
        env=EnvConfig(name="synthetic", **env),
        policy=PolicyConfig(name="fixed"),
        theorems=TheoremSetConfig(benchmark="synthetic", num_theorems=6),
        limits=SearchLimits(max_expansions=20),
    )


def test_run_config_round_trips_through_json():
    config = RunConfig(policy=PolicyConfig(name="fixed", tactics=("simp", "ring:-2")))
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_prove_locally_writes_one_record_and_tree_per_theorem(tmp_path):
    config = _config()
    theorems = [Theorem(f"synthetic_{i:04d}") for i in range(6)]
    run = RunDir.create(tmp_path / "run", config)
    summary = prove_locally(theorems, FixedPolicy(), config, run, show_progress=False)
    lines = run.results_path.read_text().splitlines()
    assert [json.loads(line)["theorem"] for line in lines] == [t.name for t in theorems]
    assert summary["num_theorems"] == 6 and summary["num_finished"] == 6
    assert summary["pass_rate"] == pytest.approx(summary["num_proved"] / 6)
    for line in lines:
        assert (run.path / json.loads(line)["tree"]).exists()
    assert json.loads(run.summary_path.read_text()) == summary
    assert RunDir.open(run.path).config() == config


def test_resume_skips_finished_theorems(tmp_path):
    config = _config()
    theorems = [Theorem(f"synthetic_{i:04d}") for i in range(6)]
    run = RunDir.create(tmp_path / "run", config)
    prove_locally(theorems[:3], FixedPolicy(), config, run, show_progress=False)
    before = run.results_path.read_text()
    prove_locally(theorems, FixedPolicy(), config, RunDir.open(run.path), show_progress=False)
    after = run.results_path.read_text()
    assert after.startswith(before)
    assert [json.loads(line)["theorem"] for line in after.splitlines()] == [t.name for t in theorems]


def test_a_torn_last_line_is_dropped_and_its_theorem_redone(tmp_path):
    config = _config()
    theorems = [Theorem(f"synthetic_{i:04d}") for i in range(3)]
    run = RunDir.create(tmp_path / "run", config)
    prove_locally(theorems, FixedPolicy(), config, run, show_progress=False)
    whole = run.results_path.read_bytes()
    run.results_path.write_bytes(whole[: whole.rfind(b"\n", 0, len(whole) - 1) + 1] + b'{"theorem": "synth')
    assert run.finished() == {"synthetic_0000", "synthetic_0001"}
    prove_locally(theorems, FixedPolicy(), config, run, show_progress=False)
    kept = whole[: whole.rfind(b"\n", 0, len(whole) - 1) + 1]
    assert run.results_path.read_bytes().startswith(kept)
    names = [json.loads(line)["theorem"] for line in run.results_path.read_text().splitlines()]
    assert names == [t.name for t in theorems]


def test_a_new_run_refuses_a_used_directory(tmp_path):
    RunDir.create(tmp_path / "run", _config())
    with pytest.raises(ProverError, match="--resume"):
        RunDir.create(tmp_path / "run", _config())
    with pytest.raises(ProverError, match="not a run directory"):
        RunDir.open(tmp_path)


def test_pass_rate_counts_unfinished_theorems_and_errors():
    records = [
        {"theorem": "a", "status": "proved"},
        {"theorem": "b", "status": "error"},
        {"theorem": "c", "status": "failed"},
    ]
    summary = summarize(records, ["a", "b", "c", "d"])
    assert summary["pass_rate"] == 0.25
    assert summary["status_counts"] == {"proved": 1, "error": 1, "failed": 1}
    assert summary["num_finished"] == 3


def test_tree_filenames_are_safe_and_distinct():
    assert tree_filename("mathd_algebra_478") == "mathd_algebra_478.json"
    names = ["example : 1 = 1 := by sorry", "example : 1 = 2 := by sorry"]
    files = {tree_filename(n) for n in names}
    assert len(files) == 2 and all("/" not in f and " " not in f for f in files)
