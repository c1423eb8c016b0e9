"""The defects of the fault audit (issue 21) and records verified on read (issue 25): two
drivers on one run directory, a full disk, records that lie, and hostile paths in records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search import SearchLimits, Theorem

from prover.config import BackendSpec, RunConfig, TheoremSetConfig
from prover.errors import ProverError
from prover.run.driver import InProcessExecutor, prove_set
from prover.run.rundir import RunDir, read_records, repair_results

REPO = Path(__file__).resolve().parents[1]


def _config(num_theorems: int = 6) -> RunConfig:
    return RunConfig(
        env=BackendSpec.default("environment", "synthetic"),
        policy=BackendSpec.default("policy", "fixed"),
        theorems=TheoremSetConfig(theorem_set="synthetic", num_theorems=num_theorems),
        limits=SearchLimits(max_expansions=20),
    )


def _env() -> dict:
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }


def exit_code(args: list[str]) -> int:
    from prover.cli import main

    try:
        main(args)
    except SystemExit as stopped:
        return stopped.code or 0
    return 0


def proved_run(tmp_path: Path, count: int = 6) -> RunDir:
    run = RunDir.create(tmp_path / "run", _config(count))
    prove_set([Theorem(f"synthetic_{i:04d}") for i in range(count)], run, InProcessExecutor(run.config()))
    assert any(r.proved for r in run.records())
    run.close()  # this process is no driver of it any more
    return run


# ---- defect 1: one driver per run directory -------------------------------------------------------

HOLDER = """
import sys, time
from prover.run.rundir import RunDir
run = RunDir.open(sys.argv[1])
print("holding", flush=True)
time.sleep(60)
"""


def _hold(run_path: Path) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_path)], stdout=subprocess.PIPE, text=True, env=_env()
    )
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_a_second_driver_on_a_run_directory_is_refused_naming_the_first(tmp_path, capsys):
    run = proved_run(tmp_path, 3)
    before = run.results_path.read_bytes()
    holder = _hold(run.path)
    try:
        assert exit_code(["prove-split", "--resume", str(run.path), "--num-workers", "0", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"process {holder.pid}" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
        with pytest.raises(ProverError, match=f"process {holder.pid}"):
            RunDir.open(run.path)
    finally:
        holder.kill()
        holder.wait()
    assert run.results_path.read_bytes() == before


def test_the_lock_of_a_killed_driver_does_not_block_the_next(tmp_path):
    run = proved_run(tmp_path, 3)
    holder = _hold(run.path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (run.path / ".lock").read_text().strip() == str(holder.pid)  # stale: its process is gone
    reopened = RunDir.open(run.path)
    assert reopened.finished() == {f"synthetic_{i:04d}" for i in range(3)}


def test_one_process_may_open_its_own_run_directory_again(tmp_path):
    run = RunDir.create(tmp_path / "run", _config())
    assert RunDir.open(run.path).config() == run.config()


# ---- issue 25 item 3: records verified on read ----------------------------------------------------


def _append_line(run: RunDir, data: dict) -> None:
    with open(run.results_path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(data) + "\n")


def test_a_hand_written_proved_record_is_not_trusted_and_is_searched_again(tmp_path):
    run = RunDir.create(tmp_path / "run", _config(12))
    prove_set([Theorem(f"synthetic_{i:04d}") for i in range(10)], run, InProcessExecutor(run.config()))
    _append_line(run, {"theorem": "synthetic_0010", "status": "proved"})  # no proof, no tree
    reopened = RunDir.open(run.path)
    assert "synthetic_0010" not in reopened.finished()
    true_proved = sum(r.proved for r in reopened.records())
    searched = []

    class Recording(InProcessExecutor):
        def prove(self, todo):
            searched.extend(t.name for t in todo)
            yield from super().prove(todo)

    summary = prove_set([Theorem(f"synthetic_{i:04d}") for i in range(12)], reopened, Recording(run.config()))
    assert searched == ["synthetic_0010", "synthetic_0011"]
    again = RunDir.open(run.path)
    assert summary.num_proved == sum(r.proved for r in again.records())
    assert summary.num_proved <= true_proved + 2


@pytest.mark.parametrize("damage", ["no proof", "no tree", "missing tree file", "other proof", "tree outside"])
def test_a_proved_record_needs_its_proof_and_a_tree_whose_proof_path_matches(tmp_path, damage):
    run = proved_run(tmp_path)
    lines = run.results_path.read_text().splitlines()
    index, data = next((i, json.loads(line)) for i, line in enumerate(lines) if json.loads(line)["status"] == "proved")
    if damage == "no proof":
        data.pop("proof")
    elif damage == "no tree":
        data.pop("tree")
    elif damage == "missing tree file":
        (run.path / data["tree"]).unlink()
    elif damage == "other proof":
        data["proof"] = ["sorry"]
    else:
        outside = tmp_path / "elsewhere.json.gz"
        outside.write_bytes((run.path / data["tree"]).read_bytes())
        data["tree"] = "../elsewhere.json.gz"
    lines[index] = json.dumps(data)
    run.results_path.write_text("\n".join(lines) + "\n")
    assert data["theorem"] not in RunDir.open(run.path).finished()
    kept, moved, where = repair_results(run.path)
    assert (kept, moved) == (len(lines) - 1, 1)
    assert json.loads(where.read_text().splitlines()[0])["theorem"] == data["theorem"]
    assert [r.theorem for r in read_records(run.results_path)] == [
        json.loads(line)["theorem"] for i, line in enumerate(lines) if i != index
    ]


def test_every_record_of_a_real_run_verifies(tmp_path):
    run = proved_run(tmp_path)
    assert repair_results(run.path)[1] == 0
    assert len(RunDir.open(run.path).finished()) == 6


def test_repair_moves_a_proved_record_without_a_proof_aside(tmp_path, capsys):
    run = proved_run(tmp_path, 3)
    _append_line(run, {"theorem": "synthetic_0010", "status": "proved"})
    assert exit_code(["repair", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert "moved 1" in out
    assert "synthetic_0010" in (run.path / "results.bad.jsonl").read_text()
    assert "synthetic_0010" not in run.results_path.read_text()


# ---- defect 3: a full disk or a file-size limit ---------------------------------------------------


def _limited(args: list[str], max_file_bytes: int) -> subprocess.CompletedProcess:
    """``prover ARGS`` with every file it writes limited to ``max_file_bytes`` (``ulimit -f``)."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    env = {**_env(), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "prover.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=limit,
        timeout=300,
    )


def _whole_lines(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), "a torn last line"
    return [json.loads(line) for line in data.decode().splitlines()]


def test_a_file_size_limit_mid_run_stops_with_the_resume_command_and_no_torn_line(tmp_path):
    run = tmp_path / "run"
    args = [
        "prove-split",
        "--out",
        str(run),
        "--num-theorems",
        "40",
        "--max-expansions",
        "8",
        "--num-workers",
        "0",
        "--no-progress",
    ]
    stopped = _limited(args, 6000)
    assert stopped.returncode == 2, stopped.stderr
    error = [line for line in stopped.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and f"prover prove-split --resume {run}" in error[0], stopped.stderr
    assert "file-size limit" in error[0] and "Traceback" not in stopped.stderr
    kept = _whole_lines(run / "results.jsonl")
    assert 0 < len(kept) < 40
    resumed = subprocess.run(
        [sys.executable, "-m", "prover.cli", "prove-split", "--resume", str(run), "--no-progress"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    names = [r["theorem"] for r in _whole_lines(run / "results.jsonl")]
    assert sorted(names) == [f"synthetic_{i:04d}" for i in range(40)]


def test_a_file_size_limit_at_the_start_leaves_nothing_that_blocks_a_rerun(tmp_path):
    run = tmp_path / "run"
    args = ["prove-split", "--out", str(run), "--num-theorems", "3", "--num-workers", "0", "--no-progress"]
    stopped = _limited(args, 200)  # config.json is larger
    assert stopped.returncode == 2, stopped.stderr
    assert stopped.stderr.startswith("error: ") and len(stopped.stderr.strip().splitlines()) == 1, stopped.stderr
    assert f"--out {run}" in stopped.stderr
    assert exit_code(args) == 0
    assert len(_whole_lines(run / "results.jsonl")) == 3


def test_a_directory_left_by_a_failed_start_does_not_block_out_or_resume(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "trees").mkdir(parents=True)
    (run / "config.tmp").write_text('{"env": {"na')  # the disk filled while the config was written
    assert exit_code(["prove-split", "--resume", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"start it again with --out {run}" in err and "Traceback" not in err
    assert (
        exit_code(["prove-split", "--out", str(run), "--num-theorems", "2", "--num-workers", "0", "--no-progress"]) == 0
    )
    assert not (run / "config.tmp").exists() and len(_whole_lines(run / "results.jsonl")) == 2


def test_a_record_that_cannot_be_written_whole_leaves_no_torn_line(tmp_path, monkeypatch):
    import errno

    run = RunDir.create(tmp_path / "run", _config())
    prove_set([Theorem("synthetic_0000")], run, InProcessExecutor(run.config()))
    before = run.results_path.read_bytes()
    real_write = os.write

    def half_then_full(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("results.jsonl"):
            real_write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(ProverError, match=f"disk is full.*prover prove-split --resume {run.path}"):
        prove_set([Theorem("synthetic_0000"), Theorem("synthetic_0001")], run, InProcessExecutor(run.config()))
    assert run.results_path.read_bytes() == before
    assert not list(run.trees_dir.glob("*.tmp*"))


# ---- defects 4-7: bad input gets exit 2 and one sentence (or is bounded) -------------------------


def _one_sentence(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.lower().startswith(("error", "internal error", "warning"))]
    # progress lines may come before it; click's own "Error: Invalid value for ..." counts too
    assert len(lines) == 1 and lines[0].startswith(("error: ", "Error: ")), err
    assert "Traceback" not in err and "internal error" not in err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _deep_json(depth: int = 100_000) -> str:
    return "[" * depth + "]" * depth


def test_a_binary_theorems_file_or_heldout_file_is_refused(tmp_path, capsys):
    binary = tmp_path / "theorems.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    assert (
        exit_code(
            [
                "prove-split",
                "--theorems-file",
                str(binary),
                "--out",
                str(tmp_path / "r"),
                "--num-workers",
                "0",
                "--no-progress",
            ]
        )
        == 2
    )
    _one_sentence(capsys, str(binary), "UTF-8")
    assert not (tmp_path / "r").exists()
    assert (
        exit_code(
            [
                "iterate",
                "--rounds",
                "1",
                "--out",
                str(tmp_path / "it"),
                "--heldout-file",
                str(binary),
                "--num-workers",
                "0",
            ]
        )
        == 2
    )
    _one_sentence(capsys, str(binary), "UTF-8")


def test_deeply_nested_json_is_refused_in_a_config_a_tree_a_theorem_list_and_a_results_file(tmp_path, capsys):
    config = tmp_path / "deep.json"
    config.write_text(_deep_json())
    assert exit_code(["prove-split", "--config", str(config), "--out", str(tmp_path / "r"), "--num-workers", "0"]) == 2
    _one_sentence(capsys, str(config), "nested")
    tree = tmp_path / "deep-tree.json"
    tree.write_text('{"nodes": ' + _deep_json() + "}")
    assert exit_code(["viz", str(tree), "--format", "text"]) == 2
    _one_sentence(capsys, str(tree), "nested")
    listing = tmp_path / "list.jsonl"
    listing.write_text('{"name": ' + _deep_json() + "}\n")
    assert (
        exit_code(["prove-split", "--theorems-file", str(listing), "--out", str(tmp_path / "r"), "--num-workers", "0"])
        == 2
    )
    _one_sentence(capsys, "line 1", str(listing))
    run = proved_run(tmp_path, 2)
    with open(run.results_path, "a") as handle:
        handle.write('{"theorem": ' + _deep_json() + "}\n")
    assert exit_code(["report", str(run.path)]) == 2
    _one_sentence(capsys, "line 3", f"prover repair {run.path}")
    assert exit_code(["repair", str(run.path)]) == 0


def test_deeply_nested_inner_options_of_a_backend_are_refused(tmp_path, capsys):
    config = tmp_path / "faulty.json"
    config.write_text(
        json.dumps({"env": {"name": "faulty", "inner": "synthetic", "inner_options": '{"x": ' + _deep_json() + "}"}})
    )
    assert (
        exit_code(
            [
                "prove-split",
                "--config",
                str(config),
                "--out",
                str(tmp_path / "r"),
                "--num-workers",
                "0",
                "--no-progress",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "inner_options" in errors[0] and "nested" in errors[0], err
    assert not (tmp_path / "r").exists()


def test_a_gzip_bomb_given_to_viz_is_refused_without_decompressing_it_all(tmp_path):
    import zlib

    bomb = tmp_path / "bomb.json.gz"
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    chunk = b" " * (1 << 20)
    with open(bomb, "wb") as handle:
        for _ in range(640):  # 640 MiB of spaces, under a MB on disk
            handle.write(packer.compress(chunk))
        handle.write(packer.flush())
    measure = (
        "import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); print(p.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", measure, sys.executable, "-m", "prover.cli", "viz", str(bomb), "--format", "text"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    code, max_rss_kb = map(int, done.stdout.split("\n")[0].split())
    assert code == 2, done.stdout
    assert "decompress" in done.stdout and "Traceback" not in done.stdout
    assert max_rss_kb < 600_000  # under the 640 MiB it would decompress to


def test_a_huge_synthetic_set_with_a_limit_is_not_built_whole():
    from prover.theorem_sets import load_theorems

    started = time.monotonic()
    theorems = load_theorems(
        TheoremSetConfig(num_theorems=10_000_000_000, limit=2), BackendSpec.default("environment", "synthetic")
    )
    assert [t.name for t in theorems] == ["synthetic_0000", "synthetic_0001"]
    assert time.monotonic() - started < 5


def test_a_huge_synthetic_set_without_a_limit_is_refused(tmp_path, capsys):
    assert (
        exit_code(["prove-split", "--num-theorems", "10000000000", "--out", str(tmp_path / "r"), "--num-workers", "0"])
        == 2
    )
    _one_sentence(capsys, "--num-theorems", "--limit")
    assert exit_code(["prove-split", "--num-theorems", "1e10", "--out", str(tmp_path / "r"), "--num-workers", "0"]) == 2
    assert "--num-theorems" in capsys.readouterr().err
    assert (
        exit_code(
            [
                "prove-split",
                "--num-theorems",
                "10000000000",
                "--limit",
                "1",
                "--out",
                str(tmp_path / "r"),
                "--num-workers",
                "0",
                "--no-progress",
            ]
        )
        == 0
    )


@pytest.mark.parametrize(
    "flag, value, words",
    [
        ("--vocab-size", "999999999999999999999999999999", ["--vocab-size"]),
        ("--learning-rate", "nan", ["--learning-rate", "finite"]),
        ("--learning-rate", "inf", ["--learning-rate", "finite"]),
        ("--seed", "99999999999999999999999", ["--seed"]),
    ],
)
def test_train_policy_refuses_settings_it_cannot_train_with(tmp_path, capsys, flag, value, words):
    assert exit_code(["train-policy", "--out", str(tmp_path / "m"), "--steps", "1", flag, value]) == 2
    _one_sentence(capsys, *words)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "line, field",
    [
        ('{"name": 12345}', "name"),
        ('{"name": "synthetic_0001", "statement": 5}', "statement"),
        ('{"name": "a", "header": ["x"]}', "header"),
    ],
)
def test_a_theorem_list_line_with_a_field_of_the_wrong_type_is_refused_at_load(tmp_path, capsys, line, field):
    listing = tmp_path / "list.jsonl"
    listing.write_text("synthetic_0000\n" + line + "\n")
    assert (
        exit_code(
            [
                "prove-split",
                "--theorems-file",
                str(listing),
                "--out",
                str(tmp_path / "r"),
                "--num-workers",
                "0",
                "--no-progress",
            ]
        )
        == 2
    )
    _one_sentence(capsys, f"line 2 of {listing}", f"'{field}'")
    assert not (tmp_path / "r").exists()


def test_infinite_numbers_are_refused_for_every_float_setting():
    import dataclasses

    from prover.config import apply_flags, flag_targets
    from prover.settings import ConfigError, base_type, field_types

    checked = []
    for flag, targets in flag_targets(include_hidden=True).items():
        target = targets[0]
        if base_type(field_types(target.owner)[target.field.name])[0] is not float:
            continue
        config = RunConfig()
        if target.backend is not None:
            kind = "environment" if target.section == "env" else "policy"
            config = dataclasses.replace(config, **{target.section: BackendSpec.default(kind, target.backend)})
        with pytest.raises(ConfigError, match="finite"):
            apply_flags(config, {flag: float("inf")})
        for value in (float("-inf"), float("nan")):
            with pytest.raises(ConfigError, match=flag.lstrip("-").replace("-", "_") + "|" + flag):
                apply_flags(config, {flag: value})
        checked.append(flag)
    assert "--time-limit" in checked and "--latency" in checked and len(checked) >= 8


def test_time_limit_inf_is_refused_and_config_json_never_holds_infinity(tmp_path, capsys):
    assert exit_code(["prove-split", "--time-limit", "inf", "--out", str(tmp_path / "r"), "--num-workers", "0"]) == 2
    _one_sentence(capsys, "--time-limit", "finite")
    assert not (tmp_path / "r").exists()
    config = tmp_path / "inf.json"
    config.write_text('{"limits": {"time_limit_s": Infinity}}')
    assert exit_code(["prove-split", "--config", str(config), "--out", str(tmp_path / "r"), "--num-workers", "0"]) == 2
    _one_sentence(capsys, "finite")
    assert (
        exit_code(
            [
                "prove-split",
                "--time-limit",
                "1e9",
                "--out",
                str(tmp_path / "r"),
                "--num-workers",
                "0",
                "--num-theorems",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )

    def refuse(constant):
        raise AssertionError(f"config.json holds {constant}")

    json.loads((tmp_path / "r" / "config.json").read_text(), parse_constant=refuse)


# ---- defect 9: repair, damaged bytes, names in reports, Ray's messages ----------------------------


def test_non_utf8_damage_in_results_is_reported_with_its_line_and_the_repair_hint(tmp_path, capsys):
    run = proved_run(tmp_path, 3)
    lines = run.results_path.read_bytes().splitlines(keepends=True)
    run.results_path.write_bytes(lines[0] + b'{"theorem": "x\xff\xfe", "status": "open"}\n' + b"".join(lines[1:]))
    assert exit_code(["prove-split", "--resume", str(run.path), "--no-progress"]) == 2
    _one_sentence(capsys, "line 2 of", "UTF-8", f"prover repair {run.path}")
    assert exit_code(["repair", str(run.path)]) == 0
    assert exit_code(["prove-split", "--resume", str(run.path), "--no-progress"]) == 0


def test_report_md_drops_nul_and_bidi_controls_from_theorem_names(tmp_path, capsys):
    run = RunDir.create(tmp_path / "run", _config())
    names = ["evil\x00name", "abc\u202edcba", "iso\u2066late\u2069d"]
    prove_set([Theorem(name) for name in names], run, InProcessExecutor(run.config()))
    run.close()
    assert exit_code(["report", str(run.path), "-o", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "evilname" in text and "abcdcba" in text and "isolated" in text
    hidden = ["\x00", "\u202e", "\u2066", "\u2069"]
    assert not [c for c in hidden if c in text]


def test_rays_worker_died_message_goes_to_ray_log_not_the_terminal(tmp_path, capsys):
    pytest.importorskip("ray")
    import ray._private.worker as ray_worker

    from prover.run.cluster import ray_logs_to

    message = "\x1b[31mA worker died or was killed while executing a task by an unexpected system error\x1b[0m"
    with ray_logs_to(tmp_path / "ray.log"):
        # what Ray's error listener in the driver calls for each message of the raylet
        ray_worker.print_to_stdstream({"lines": [message], "pid": "raylet", "is_err": False}, ignore_prefix=False)
    shown = capsys.readouterr()
    assert "A worker died" not in shown.out + shown.err
    logged = (tmp_path / "ray.log").read_text()
    assert "A worker died or was killed" in logged and "\x1b[" not in logged
    assert ray_worker.print_to_stdstream.__module__ == "ray._private.worker"  # given back after the run


# ---- issue 25 item 4: inputs answered as a user expects ------------------------------------------


def test_an_empty_theorem_list_is_refused(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n\n")
    assert (
        exit_code(["prove-split", "--theorems-file", str(empty), "--out", str(tmp_path / "r"), "--num-workers", "0"])
        == 2
    )
    _one_sentence(capsys, str(empty), "no theorem")
    assert not (tmp_path / "r").exists()


def test_a_runs_results_file_is_a_theorem_list_and_only_retries_its_failures(tmp_path, capsys):
    first = tmp_path / "first"
    assert (
        exit_code(["prove-split", "--out", str(first), "--num-theorems", "12", "--num-workers", "0", "--no-progress"])
        == 0
    )
    records = [json.loads(line) for line in (first / "results.jsonl").read_text().splitlines()]
    unproved = sorted(r["theorem"] for r in records if r["status"] != "proved")
    open_ones = sorted(r["theorem"] for r in records if r["status"] == "open")
    assert unproved and len(unproved) < 12
    retry = tmp_path / "retry"
    assert (
        exit_code(
            [
                "prove-split",
                "--theorems-file",
                str(first / "results.jsonl"),
                "--only",
                "unproved",
                "--out",
                str(retry),
                "--num-workers",
                "0",
                "--no-progress",
                "--max-expansions",
                "200",
            ]
        )
        == 0
    )
    assert (
        sorted(json.loads(line)["theorem"] for line in (retry / "results.jsonl").read_text().splitlines()) == unproved
    )
    everything = tmp_path / "everything"
    assert (
        exit_code(
            [
                "prove-split",
                "--theorems-file",
                str(first / "results.jsonl"),
                "--out",
                str(everything),
                "--num-workers",
                "0",
                "--no-progress",
            ]
        )
        == 0
    )
    assert len((everything / "results.jsonl").read_text().splitlines()) == 12
    capsys.readouterr()
    only_open = [
        "prove-split",
        "--theorems-file",
        str(first / "results.jsonl"),
        "--only",
        "open",
        "--out",
        str(tmp_path / "open"),
        "--num-workers",
        "0",
        "--no-progress",
    ]
    assert exit_code(only_open) == (0 if open_ones else 2)
    if not open_ones:
        _one_sentence(capsys, "no theorem whose record is open")
    assert exit_code(["prove-split", "--only", "failed", "--out", str(tmp_path / "x"), "--num-workers", "0"]) == 2
    _one_sentence(capsys, "--only failed", "--theorems-file")


def test_a_flat_config_is_answered_with_the_sectioned_form_and_sections_in_a_stable_order(tmp_path, capsys):
    flat = tmp_path / "flat.json"
    flat.write_text('{"max_expansions": 5}')
    assert exit_code(["prove-split", "--config", str(flat), "--out", str(tmp_path / "r"), "--num-workers", "0"]) == 2
    _one_sentence(capsys, '{"limits": {"max_expansions": 5}}')
    backend = tmp_path / "backend.json"
    backend.write_text('{"branching": 3}')
    assert exit_code(["prove-split", "--config", str(backend), "--out", str(tmp_path / "r"), "--num-workers", "0"]) == 2
    _one_sentence(capsys, '{"env": {"branching": 3}}', "'name'")
    typo = tmp_path / "typo.json"
    typo.write_text('{"zzz": {}}')
    answers = set()
    for _ in range(2):
        script = "import sys; from prover.cli import main; main(sys.argv[1:])"
        answers.add(
            subprocess.run(
                [sys.executable, "-c", script, "prove-split", "--config", str(typo), "--out", str(tmp_path / "r")],
                capture_output=True,
                text=True,
                env={**_env(), "PYTHONHASHSEED": str(len(answers) + 1)},
            ).stderr
        )
    assert len(answers) == 1, answers
    assert "env, policy, theorems, limits" in answers.pop()


def test_missing_lean_gets_the_same_sentence_from_dojo_and_repl(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no lake here
    said = {}
    for env in ("dojo", "repl"):
        assert exit_code(["attack", "mathd_algebra_478", "--env", env, "--policy", "fixed"]) == 2
        said[env] = _one_sentence(capsys, "lake", "prover setup-lean")
    assert said["dojo"] == said["repl"]


# ---- defect 8: a record's tree outside the run directory ----------------------------------------


@pytest.mark.parametrize("where", ["relative", "absolute"])
def test_viz_and_report_never_follow_a_tree_outside_the_run(tmp_path, capsys, where):
    run = proved_run(tmp_path, 3)
    lines = run.results_path.read_text().splitlines()
    data = json.loads(lines[0])
    outside = tmp_path / "outside-secret.json.gz"
    outside.write_bytes((run.path / data["tree"]).read_bytes())
    data["tree"] = "../outside-secret.json.gz" if where == "relative" else str(outside)
    lines[0] = json.dumps(data)
    run.results_path.write_text("\n".join(lines) + "\n")
    assert exit_code(["viz", str(run.path)]) == 0
    err = capsys.readouterr().err
    assert "outside the run directory" in err and f"prover repair {run.path}" in err
    pages = "".join(p.read_text() for p in (run.path / "viz").glob("*.html"))
    assert "outside-secret" not in pages and data["theorem"] not in pages
    assert exit_code(["report", str(run.path), "-o", str(tmp_path / "report")]) == 0
    assert "outside the run directory" in capsys.readouterr().err
    assert "outside-secret" not in (tmp_path / "report" / "report.md").read_text()
