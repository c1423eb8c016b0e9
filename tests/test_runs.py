"""Run directories: durable appends, torn-tail recovery, resume, and an incremental summary."""

import json
import os

import pytest

from search import ResultRecord, SearchLimits, SearchResult, SearchStatus, StopReason, Theorem

import prover.run.rundir
from prover.config import BackendSpec, RunConfig, TheoremSetConfig
from prover.envs.synthetic import SyntheticConfig
from prover.errors import ProverError
from prover.policies.fixed import FixedConfig
from prover.run.driver import InProcessExecutor, prove_set
from prover.run.rundir import RunDir, Summary, read_records, tree_filename


def _config(**synthetic):
    return RunConfig(
        env=BackendSpec("environment", "synthetic", SyntheticConfig(**synthetic)),
        policy=BackendSpec.default("policy", "fixed"),
        theorems=TheoremSetConfig(theorem_set="synthetic", num_theorems=6),
        limits=SearchLimits(max_expansions=20),
    )


def synthetic_theorems(count):
    return [Theorem(f"synthetic_{i:04d}") for i in range(count)]


def prove(theorems, run, config=None):
    config = config or run.config()
    return prove_set(theorems, run, InProcessExecutor(config))


def names_in(run):
    return [json.loads(line)["theorem"] for line in run.results_path.read_text().splitlines()]


def record(theorem, status=SearchStatus.OPEN, **fields):
    stop_reason = {
        SearchStatus.PROVED: StopReason.PROVED,
        SearchStatus.ERROR: StopReason.EXCEPTION,
        SearchStatus.FAILED: StopReason.EXHAUSTED,
    }.get(status, StopReason.MAX_EXPANSIONS)
    return ResultRecord(theorem, status, stop_reason, **fields)


def test_run_config_round_trips_through_json():
    config = RunConfig(policy=BackendSpec("policy", "fixed", FixedConfig(tactics=("simp", "ring:-2"))))
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_prove_set_writes_one_record_and_tree_per_theorem(tmp_path):
    config = _config()
    theorems = synthetic_theorems(6)
    run = RunDir.create(tmp_path / "run", config)
    summary = prove(theorems, run, config).to_json()
    assert names_in(run) == [t.name for t in theorems]
    assert summary["num_theorems"] == 6 and summary["num_finished"] == 6
    assert summary["pass_rate"] == pytest.approx(summary["num_proved"] / 6)
    for line in run.results_path.read_text().splitlines():
        assert (run.path / json.loads(line)["tree"]).exists()
    on_disk = json.loads(run.summary_path.read_text())
    assert {key: on_disk[key] for key in summary} == summary and on_disk["session"]["theorems_finished"] == 6
    assert RunDir.open(run.path).config() == config


def test_records_read_back_as_the_result_records_that_were_saved(tmp_path):
    run = RunDir.create(tmp_path / "run", _config())
    saved = []
    prove_set(
        synthetic_theorems(3),
        run,
        InProcessExecutor(run.config()),
        on_result=lambda record, summary: saved.append(record),
    )
    reopened = RunDir.open(run.path).records()
    assert all(isinstance(r, ResultRecord) for r in reopened)
    assert reopened == saved == read_records(run.results_path)
    assert [r.tree for r in reopened] == [f"trees/synthetic_000{i}.json.gz" for i in range(3)]


def test_each_append_is_fsynced_before_save_returns(tmp_path, monkeypatch):
    run = RunDir.create(tmp_path / "run", _config())
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    for i in range(3):
        run.save(Theorem(f"t{i}"), SearchResult.failure(f"t{i}", StopReason.EXCEPTION, "boom"))
        assert len(synced) == i + 1  # durable when save returns, not at some later flush
    if os.path.exists("/proc/self/fd"):
        assert set(synced) == {str(run.results_path.resolve())}


def test_resume_skips_finished_theorems(tmp_path):
    config = _config()
    theorems = synthetic_theorems(6)
    run = RunDir.create(tmp_path / "run", config)
    prove(theorems[:3], run, config)
    before = run.results_path.read_text()
    searched = []

    class Recording(InProcessExecutor):
        def prove(self, todo):
            searched.extend(t.name for t in todo)
            yield from super().prove(todo)

    summary = prove_set(theorems, RunDir.open(run.path), Recording(config))
    assert searched == [t.name for t in theorems[3:]]
    after = run.results_path.read_text()
    assert after.startswith(before)
    assert names_in(run) == [t.name for t in theorems]
    assert summary.num_finished == 6


def test_a_torn_last_line_is_dropped_and_its_theorem_redone(tmp_path):
    config = _config()
    theorems = synthetic_theorems(3)
    run = RunDir.create(tmp_path / "run", config)
    prove(theorems, run, config)
    whole = run.results_path.read_bytes()
    kept = whole[: whole.rfind(b"\n", 0, len(whole) - 1) + 1]
    run.results_path.write_bytes(kept + b'{"theorem": "synth')
    reopened = RunDir.open(run.path)
    assert reopened.finished() == {"synthetic_0000", "synthetic_0001"}
    assert reopened.results_path.read_bytes() == kept  # cut before anything is appended after it
    prove(theorems, reopened, config)
    assert run.results_path.read_bytes().startswith(kept)
    assert names_in(run) == [t.name for t in theorems]


def test_read_records_skips_an_unfinished_line_without_cutting_it(tmp_path):
    path = tmp_path / "results.jsonl"
    text = json.dumps(record("a").to_json()) + "\n" + '{"theorem": "b", "sta'
    path.write_text(text)
    assert [r.theorem for r in read_records(path)] == ["a"]
    assert path.read_text() == text  # a live run's file is left alone


def test_a_damaged_line_is_refused_with_its_line_number(tmp_path):
    run = RunDir.create(tmp_path / "run", _config())
    run.results_path.write_text(json.dumps(record("a").to_json()) + "\n" + '{"theorem": "b"}\n')
    with pytest.raises(ProverError, match="line 2 of .* is not a result record"):
        RunDir.open(run.path).records()


def test_a_theorem_recorded_twice_keeps_its_first_record(tmp_path):
    run = RunDir.create(tmp_path / "run", _config())
    first = record("a", SearchStatus.FAILED)  # (a proved record needs its tree: test_run_faults.py)
    lines = [first, record("a", SearchStatus.ERROR, error="later"), record("b")]
    run.results_path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in lines))
    reopened = RunDir.open(run.path)
    assert reopened.records() == [first, lines[2]]
    summary = reopened.begin(["a", "b"]).to_json()
    assert summary["num_finished"] == 2 and summary["status_counts"] == {"failed": 1, "open": 1}


def test_prove_set_records_a_theorem_once_even_if_its_result_comes_twice(tmp_path):
    class Repeating:
        """An executor that answers every theorem twice (a retried search that finished after all)."""

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            pass

        def prove(self, theorems):
            for theorem in theorems:
                for attempt in ("first", "second"):
                    yield theorem, SearchResult.failure(theorem.name, StopReason.WORKER_LOST, attempt)

    run = RunDir.create(tmp_path / "run", _config())
    summary = prove_set([Theorem("a"), Theorem("b"), Theorem("a")], run, Repeating())
    assert names_in(run) == ["a", "b"]
    assert [r.error for r in run.records()] == ["first", "first"]
    assert summary.num_finished == 2 == summary.num_theorems


def test_summary_is_updated_with_each_result_without_rereading_the_results(tmp_path, monkeypatch):
    run = RunDir.create(tmp_path / "run", _config())
    run.save(Theorem("synthetic_0000"), SearchResult.failure("synthetic_0000", StopReason.EXCEPTION, "x"))
    run = RunDir.open(run.path)
    reads = []
    real_read_records = prover.run.rundir.read_records

    def counting_read_records(path):
        reads.append(path)
        return real_read_records(path)

    monkeypatch.setattr(prover.run.rundir, "read_records", counting_read_records)
    names = [t.name for t in synthetic_theorems(5)]
    summaries = []
    summary = prove_set(
        synthetic_theorems(5),
        run,
        InProcessExecutor(run.config()),
        on_result=lambda record, summary: summaries.append(summary.to_json()),
    )
    assert len(reads) == 1  # when the run was opened, never per result
    assert [s["num_finished"] for s in summaries] == [2, 3, 4, 5]
    on_disk = json.loads(run.summary_path.read_text())
    assert (
        {key: on_disk[key] for key in summary.to_json()}
        == summary.to_json()
        == Summary.of(names, run.records()).to_json()
    )
    assert summary.num_theorems == 5 and summary.status_counts["error"] == 1


def test_summary_on_disk_follows_each_saved_result(tmp_path):
    run = RunDir.create(tmp_path / "run", _config())
    seen = []
    prove_set(
        synthetic_theorems(3),
        run,
        InProcessExecutor(run.config()),
        on_result=lambda record, summary: seen.append(json.loads(run.summary_path.read_text())),
    )
    assert [s["num_finished"] for s in seen] == [1, 2, 3]
    assert all(s["num_theorems"] == 3 for s in seen)


def test_pass_rate_counts_unfinished_theorems_and_errors():
    records = [
        record("a", SearchStatus.PROVED),
        record("b", SearchStatus.ERROR),
        record("c", SearchStatus.FAILED),
        record("outside", SearchStatus.PROVED),
    ]
    summary = Summary.of(["a", "b", "c", "d"], records).to_json()
    assert summary["pass_rate"] == 0.25
    assert summary["status_counts"] == {"error": 1, "failed": 1, "proved": 1}
    assert summary["num_finished"] == 3 and summary["num_theorems"] == 4


def test_a_new_run_refuses_an_existing_run(tmp_path):
    RunDir.create(tmp_path / "run", _config())
    with pytest.raises(ProverError, match="--resume"):
        RunDir.create(tmp_path / "run", _config())


def test_a_new_run_refuses_a_non_empty_directory_that_is_not_a_run(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(ProverError, match="not an empty directory"):
        RunDir.create(tmp_path / "notes", _config())
    assert sorted(p.name for p in (tmp_path / "notes").iterdir()) == ["keep.txt"]  # nothing written
    (tmp_path / "empty").mkdir()
    assert RunDir.create(tmp_path / "empty", _config()).config() == _config()


def test_open_refuses_a_directory_that_is_not_a_run(tmp_path):
    with pytest.raises(ProverError, match="not a run directory"):
        RunDir.open(tmp_path)


def test_tree_filenames_are_safe_and_distinct():
    assert tree_filename("mathd_algebra_478") == "mathd_algebra_478.json"
    names = ["example : 1 = 1 := by sorry", "example : 1 = 2 := by sorry"]
    files = {tree_filename(n) for n in names}
    assert len(files) == 2 and all("/" not in f and " " not in f for f in files)


def test_summary_json_is_a_typed_run_summary_read_back_whole_and_tolerant_of_old_or_damaged_files(tmp_path):
    from prover.run.rundir import RunSummary, SessionFigures

    run = RunDir.create(tmp_path / "run", RunConfig())
    run.begin(["a", "b"])
    written = run.write_summary(final=True)
    on_disk = json.loads(run.summary_path.read_text())
    assert isinstance(written, RunSummary) and written.to_json() == on_disk
    assert RunSummary.from_json(on_disk) == written

    session = SessionFigures("t0", "t1", 12.5, 3, 864.0, 2.0, ended_at="t1")
    summary = RunSummary(
        num_theorems=4,
        num_finished=3,
        num_proved=2,
        pass_rate=0.5,
        status_counts={"proved": 2},
        sessions=(session,),
        executor={"policy": {"num_batches": 7}},
    )
    assert RunSummary.from_json(json.loads(json.dumps(summary.to_json()))) == summary
    assert summary.to_json()["session"] == session.to_json() and summary.to_json()["policy"] == {"num_batches": 7}

    # Written before every session was kept: only "session"; and damaged numbers take their defaults.
    old = RunSummary.from_json(
        {
            "num_theorems": 4,
            "session": session.to_json(),
            "pass_rate": "high",
            "num_proved": None,
            "sessions": "not a list",
        }
    )
    assert old.sessions == (session,) and old.pass_rate == 0.0 and old.num_proved == 0
    assert RunSummary.from_json(["not", "a", "table"]) == RunSummary()
