import dataclasses
import json

import pytest

from search import (
    RecordFormatError,
    ResultRecord,
    SearchLimits,
    SearchResult,
    SearchStatus,
    StopReason,
    proof_text,
)


def _full_record() -> ResultRecord:
    return ResultRecord(
        theorem="mathd_algebra_478",
        status=SearchStatus.PROVED,
        stop_reason=StopReason.PROVED,
        proof=("intro x", "norm_num [h]"),
        num_expansions=3,
        num_tactics=17,
        num_states=9,
        wall_time_s=1.25,
        startup_time_s=61.5,
        env_time_s=0.1 + 0.2,  # a float that does not print short
        policy_time_s=0.75,
        error=None,
        proof_text="theorem t : x := by\n  intro x\n  norm_num [h]",
        tree="trees/mathd_algebra_478.json",
    )


def test_record_json_round_trip_is_exact():
    for record in (_full_record(), ResultRecord("t", SearchStatus.ERROR, StopReason.ENV_ERROR, error="no lean")):
        line = json.dumps(record.to_json())
        assert ResultRecord.from_json(json.loads(line)) == record


def test_record_json_is_plain_values():
    data = _full_record().to_json()
    assert data["status"] == "proved" and type(data["status"]) is str
    assert data["stop_reason"] == "proved" and type(data["stop_reason"]) is str
    assert data["proof"] == ["intro x", "norm_num [h]"]
    assert set(data) == {f.name for f in dataclasses.fields(ResultRecord)}


def test_record_reading_ignores_unknown_keys():
    data = {**_full_record().to_json(), "added_by_a_later_version": [1, 2]}
    assert ResultRecord.from_json(data) == _full_record()


@pytest.mark.parametrize(
    "status, default",
    [
        ("proved", StopReason.PROVED),
        ("failed", StopReason.EXHAUSTED),
        ("open", StopReason.MAX_EXPANSIONS),
        ("rejected", StopReason.PROVED),
        ("error", StopReason.EXCEPTION),
    ],
)
def test_record_without_a_known_stop_reason_gets_the_usual_one_for_its_status(status, default):
    assert ResultRecord.from_json({"theorem": "t", "status": status}).stop_reason is default
    assert ResultRecord.from_json({"theorem": "t", "status": status, "stop_reason": "gave_up"}).stop_reason is default


def test_record_written_before_typed_records_reads_back():
    # A results.jsonl line as SearchResult.to_record wrote it before ResultRecord existed.
    old = {
        "theorem": "t",
        "status": "open",
        "stop_reason": "time_limit",
        "proof": None,
        "num_expansions": 4,
        "num_tactics": 30,
        "num_states": 12,
        "wall_time_s": 600,
        "env_time_s": 590.5,
        "policy_time_s": 9.0,
        "error": None,
        "tree": "trees/t.json",
    }
    record = ResultRecord.from_json(old)
    assert record.stop_reason is StopReason.TIME_LIMIT
    assert record.wall_time_s == 600.0 and record.startup_time_s == 0.0
    assert record.tree == "trees/t.json" and not record.proved


@pytest.mark.parametrize(
    "change, field",
    [
        ({"theorem": None}, "theorem"),
        ({"status": "maybe"}, "status"),
        ({"stop_reason": 3}, "stop_reason"),
        ({"proof": "intro x"}, "proof"),
        ({"num_tactics": -1}, "num_tactics"),
        ({"num_states": True}, "num_states"),
        ({"wall_time_s": "1s"}, "wall_time_s"),
        ({"error": 7}, "error"),
    ],
)
def test_record_with_an_invalid_value_names_the_field(change, field):
    with pytest.raises(RecordFormatError, match=f"'{field}'"):
        ResultRecord.from_json({**_full_record().to_json(), **change})


@pytest.mark.parametrize("missing", ["theorem", "status"])
def test_record_without_a_required_field_names_it(missing):
    data = _full_record().to_json()
    del data[missing]
    with pytest.raises(RecordFormatError, match=f"no '{missing}' field"):
        ResultRecord.from_json(data)
    assert issubclass(RecordFormatError, ValueError)


def test_record_that_is_not_an_object_is_refused():
    with pytest.raises(RecordFormatError, match="JSON object"):
        ResultRecord.from_json(["t", "proved"])


class _Untouchable:
    """A stand-in tree that fails the test if anything reads or copies it."""

    def __getattribute__(self, name):
        raise AssertionError(f"to_record touched the tree ({name})")


def test_to_record_does_not_copy_or_read_the_tree():
    # Copying a 10,000-state tree took 0.24 s; ``benchmarks/engine_overhead.py`` times to_record.
    result = SearchResult("t", SearchStatus.OPEN, StopReason.MAX_EXPANSIONS, num_states=10_000, tree=_Untouchable())
    record = result.to_record()
    assert record.tree is None
    assert record.num_states == 10_000 and record.stop_reason is StopReason.MAX_EXPANSIONS


def test_to_record_keeps_every_result_field():
    result = SearchResult(
        "t",
        SearchStatus.PROVED,
        StopReason.PROVED,
        proof=["simp"],
        num_expansions=1,
        num_tactics=2,
        num_states=1,
        wall_time_s=0.5,
        startup_time_s=3.0,
        env_time_s=0.25,
        policy_time_s=0.125,
    )
    record = result.to_record()
    assert record.proof == ("simp",) and record.proved
    for f in dataclasses.fields(result):
        # expansions_after_cancel is an attempt's figure, kept in attempts.jsonl (prover.run.attempts)
        if f.name not in ("tree", "proof", "expansions_after_cancel"):
            assert getattr(record, f.name) == getattr(result, f.name), f.name


def test_failure_is_an_error_result_without_a_tree():
    result = SearchResult.failure("t", StopReason.WORKER_LOST, "the worker died", wall_time_s=2.0)
    assert (result.status, result.stop_reason, result.error) == (
        SearchStatus.ERROR,
        StopReason.WORKER_LOST,
        "the worker died",
    )
    assert result.tree is None and result.wall_time_s == 2.0
    assert result.to_record().to_json()["stop_reason"] == "worker_lost"


def test_limits_carry_their_flags_and_help_for_the_cli():
    meta = {f.name: f.metadata for f in dataclasses.fields(SearchLimits)}
    assert meta["max_expansions"]["flag"] == "--max-expansions" and meta["max_expansions"]["min"] == 1
    assert meta["tactics_per_node"]["flag"] == "--tactics-per-node" and meta["tactics_per_node"]["min"] == 1
    assert meta["time_limit_s"]["flag"] == "--time-limit"
    assert meta["time_limit_s"]["min"] == 0 and meta["time_limit_s"]["min_open"] is True
    assert "after the environment has started" in meta["time_limit_s"]["help"]
    assert all(m["help"] for m in meta.values())


def test_proof_text_puts_tactics_under_by():
    assert proof_text("theorem t : 1 + 1 = 2 := by", ["norm_num", "a\nb"]) == (
        "theorem t : 1 + 1 = 2 := by\n  norm_num\n  a\n  b"
    )
