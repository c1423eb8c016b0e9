"""``prover fill FILE.lean`` and ``prove-split --lean-file`` end to end: the CLI in a fresh
process, the real lean-interact, and the stand-in Lean toolchain (tests/lean_standin) in
place of Lean, on a file of recorded miniF2F statements with holes of each kind
(``tests.lean_standin.files.holes_source``).

The replay policy knows the recorded tactics, so it fills every hole whose goal has a
recorded proof; the first hole of ``complex_and`` has none (its records start from both
goals of ``apply And.intro``), so it stays a `sorry`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lean_interact")

from search import SearchLimits, SearchResult, SearchStatus, StopReason

from prover.config import BackendSpec, RunConfig
from prover.envs.repl import ReplConfig
from prover.fill import FillRequest, fill_file
from prover.policies.fixed import FixedConfig

from tests.lean_standin import install, read_log, standin_variables
from tests.lean_standin.files import HEADER, holes_source, lean_check
from tests.test_env_repl import lean_project, traces_file  # noqa: F401 (a fixture)

pytestmark = pytest.mark.standin


def prover(*args: str, env: dict[str, str], cwd: Path, timeout_s: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "prover.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


class User:
    """A stand-in toolchain, a Lake project holding ``Holes.lean``, and the flags to use it."""

    def __init__(self, tmp_path: Path, traces: Path, minif2f_path: Path):
        self.env = install(tmp_path, traces=traces)
        self.project = lean_project(tmp_path / "project")
        self.file = self.project / "Holes.lean"
        self.original = holes_source(minif2f_path)
        self.file.write_text(self.original, encoding="utf-8")
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.traces = traces
        self.flags = [
            "--repl-path",
            self.env["LEAN_STANDIN_REPL_DIR"],
            "--lake-path",
            self.env["LEAN_STANDIN_LAKE"],
            "--policy",
            "replay",
            "--traces",
            str(traces),
            "--num-workers",
            "0",
        ]

    def fill(self, *args: str) -> subprocess.CompletedProcess:
        return prover("fill", str(self.file), *self.flags, *args, env=self.env, cwd=self.home)


@pytest.fixture()
def user(tmp_path, traces_file, minif2f_path):  # noqa: F811 (the fixture imported above)
    return User(tmp_path, traces_file, minif2f_path)


def test_fill_fills_every_hole_the_policy_can_prove_and_the_patched_file_checks(user):
    done = user.fill("--out", str(user.home / "run"), "--json")
    assert done.returncode == 1, done.stdout + done.stderr  # one hole stays open
    report = json.loads(done.stdout)
    status = {(h["name"], h["kind"]): h["status"] for h in report["holes"]}
    assert status == {
        ("mathd_algebra_478", "tactic"): "filled",  # after the user's first tactic
        ("mathd_algebra_24", "tactic"): "filled",  # at the top of a tactic proof
        ("mathd_algebra_398", "term"): "filled",  # term-mode
        ("complex_and:34:4", "tactic"): "failed",  # the policy knows nothing for this goal alone
        ("complex_and:35:4", "tactic"): "filled",  # a second hole in the same declaration
    }
    assert report["num_filled"] == 4 and report["backup"] is None
    written = user.project / "Holes.filled.lean"
    assert report["written"] == str(written)
    assert user.file.read_text(encoding="utf-8") == user.original  # the user's file is untouched
    text = written.read_text(encoding="utf-8")
    assert text.startswith(HEADER)
    assert "  rw [h₁, h₂, h₃]\n  norm_num\n" in text
    assert (
        "  apply And.intro\n  · sorry\n  · apply h2\n    exact h1.right\n" in text
    )  # the unfilled hole left as it was
    assert text.count("sorry") == 1
    by_hole = {h["name"]: h for h in report["holes"]}
    assert by_hole["mathd_algebra_398"]["tactics"][0] in text.split("mathd_algebra_398")[1]
    # The patched file, checked again by Lean (the stand-in's `lean FILE`): no error, one `sorry` left
    checked = lean_check(user.env, user.project, written)
    assert checked.returncode == 0, checked.stdout
    line = text[: text.index("theorem complex_and")].count("\n") + 1
    assert checked.stdout.count("declaration uses 'sorry'") == 1 and f":{line}:" in checked.stdout
    # The run directory: a record and a tree per hole, each proof as its declaration's text
    records = [json.loads(line) for line in (user.home / "run" / "results.jsonl").read_text().splitlines()]
    assert len(records) == 5 and all(r["tree"] for r in records)
    proof = next(r for r in records if r["theorem"] == "mathd_algebra_478")["proof_text"]
    assert proof.startswith("theorem mathd_algebra_478") and proof.endswith("  rw [h₁, h₂, h₃]\n  norm_num")


@pytest.mark.slow
def test_the_summary_table_names_each_hole_and_the_run_page_is_written(user):
    done = user.fill("--out", str(user.home / "run"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "4 of 5 holes filled in Holes.lean" in done.stdout
    for name in ("mathd_algebra_478", "mathd_algebra_24", "mathd_algebra_398", "complex_and"):
        assert name in done.stdout
    assert "check: the patched file checks" in done.stdout
    assert f"wrote {user.project / 'Holes.filled.lean'}" in done.stdout
    assert (user.home / "run" / "viz" / "index.html").is_file()


@pytest.mark.slow
def test_write_fills_the_file_in_place_and_keeps_a_backup_never_replaced_unasked(user):
    done = user.fill("--write", "--out", str(user.home / "run"))
    assert done.returncode == 1, done.stdout + done.stderr
    backup = user.project / "Holes.lean.bak"
    assert backup.read_text(encoding="utf-8") == user.original
    assert user.file.read_text(encoding="utf-8").count("sorry") == 1
    assert not (user.project / "Holes.filled.lean").exists()
    # A second --write would replace the backup: refused before anything runs
    filled = user.file.read_text(encoding="utf-8")
    again = user.fill("--write", "--out", str(user.home / "run2"))
    assert again.returncode == 2
    assert again.stderr.strip() == f"error: the backup {backup} exists already; move it away or pass --overwrite"
    assert user.file.read_text(encoding="utf-8") == filled and backup.read_text(encoding="utf-8") == user.original
    assert not (user.home / "run2").exists()


@pytest.mark.slow
def test_an_existing_filled_file_is_not_replaced_without_overwrite(user):
    existing = user.project / "Holes.filled.lean"
    existing.write_text("-- mine\n", encoding="utf-8")
    done = user.fill("--out", str(user.home / "run"))
    assert done.returncode == 2 and "exists already; pass --overwrite" in done.stderr
    assert existing.read_text(encoding="utf-8") == "-- mine\n"
    done = user.fill("--out", str(user.home / "run"), "--overwrite")
    assert done.returncode == 1 and existing.read_text(encoding="utf-8").count("sorry") == 1


def test_a_file_that_does_not_elaborate_is_one_sentence_exit_2_and_nothing_written(user):
    broken = user.original.replace("  rw [h₁, h₂, h₃]\n", "  rw [h₁, h₂, h₃]\n  frobnicate\n")
    user.file.write_text(broken, encoding="utf-8")
    line = broken[: broken.index("frobnicate")].count("\n") + 1
    done = user.fill("--out", str(user.home / "run"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: {user.file} does not elaborate: line {line}: unknown tactic"
    )
    assert lines[0].endswith("fix it first, nothing was written")
    assert not (user.project / "Holes.filled.lean").exists() and not (user.home / "run").exists()


@pytest.mark.slow
def test_a_proof_resting_on_the_compiler_is_refused_and_not_written(user):
    """A test policy that proposes `native_decide`: the search finds it, the check refuses it."""
    user.file.write_text(HEADER + "\ntheorem standin_native : 2 ^ 10 = 1024 := by\n  sorry\n", encoding="utf-8")
    flags = [f for f in user.flags if f not in ("replay", "--traces", str(user.traces))]
    flags[flags.index("--policy") + 1 : flags.index("--policy") + 1] = ["fixed"]
    done = prover(
        "fill",
        str(user.file),
        *flags,
        "--tactic",
        "native_decide",
        "--allow-native-decide",
        "--json",
        "--out",
        str(user.home / "run"),
        env=user.env,
        cwd=user.home,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    hole = json.loads(done.stdout)["holes"][0]
    assert hole["status"] == "rejected" and hole["error"].endswith("the proof depends on Lean.ofReduceBool")
    assert json.loads(done.stdout)["written"] is None
    assert not (user.project / "Holes.filled.lean").exists()


def test_a_wrong_proof_is_refused_by_the_whole_file_check_and_the_others_are_written(user, monkeypatch):
    """The final check of the patched file, on its own: the searches are replaced by a test
    prover that reports a proof for every hole (as a tampered results.jsonl could), one of
    them wrong and one that the tactic filter refuses before Lean sees it."""
    for name, value in standin_variables(user.env).items():
        monkeypatch.setenv(name, value)
    proofs = {
        "mathd_algebra_478": ["norm_num"],
        "mathd_algebra_24": ["linarith"],
        "mathd_algebra_398": ["sorry"],
        "complex_and:35:4": ["apply h2", "exact h1.right"],
        "complex_and:34:4": ["exact h1.right"],  # wrong
    }

    def prove(theorems, config, run):
        for theorem in theorems:
            run.save(
                theorem,
                SearchResult(
                    theorem.name, SearchStatus.PROVED, StopReason.PROVED, proof=proofs[theorem.name], wall_time_s=0.5
                ),
            )

    options = ReplConfig(
        lean_project=str(user.project),
        repl_path=user.env["LEAN_STANDIN_REPL_DIR"],
        lake_path=user.env["LEAN_STANDIN_LAKE"],
        startup_timeout_s=30.0,
        memory_limit_mb=4096,
    )
    config = RunConfig(
        env=BackendSpec("environment", "repl", options),
        policy=BackendSpec("policy", "fixed", FixedConfig()),
        limits=SearchLimits(),
    )
    report = fill_file(FillRequest(user.file, out=user.home / "run"), config, echo=lambda line: None, prove=prove)
    status = {h.hole.name: (h.status, h.error) for h in report.holes}
    assert status["complex_and:34:4"][0] == "rejected" and status["complex_and:35:4"][0] == "rejected"
    assert "Lean reports an error" in status["complex_and:34:4"][1]
    assert status["mathd_algebra_398"][0] == "rejected" and status["mathd_algebra_398"][1].startswith(
        "the tactic filter refused: `sorry`"
    )
    assert {name for name, (s, _) in status.items() if s == "filled"} == {"mathd_algebra_478", "mathd_algebra_24"}
    text = report.written.read_text(encoding="utf-8")
    assert "exact h1.right" not in text and "  apply And.intro\n  · sorry\n  · sorry\n" in text
    assert text.count("sorry") == 3
    assert lean_check(user.env, user.project, report.written).returncode == 0


@pytest.mark.slow
def test_fill_resumes_its_run_without_searching_finished_holes_again(user):
    first = user.fill("--out", str(user.home / "run"))
    assert first.returncode == 1, first.stdout + first.stderr
    repl_starts = sum(e["argv"] == ["repl"] for e in read_log(user.env))
    again = user.fill("--resume", str(user.home / "run"), "--overwrite")
    assert again.returncode == 1, again.stdout + again.stderr
    assert len((user.home / "run" / "results.jsonl").read_text().splitlines()) == 5
    # one REPL to list the holes and check the file again; no search started
    assert sum(e["argv"] == ["repl"] for e in read_log(user.env)) == repl_starts + 1
    user.file.write_text(user.original + "\n", encoding="utf-8")
    changed = user.fill("--resume", str(user.home / "run"), "--overwrite")
    assert changed.returncode == 2 and "changed since the run" in changed.stderr


@pytest.mark.slow
def test_prove_split_runs_the_holes_of_a_lean_file_as_a_theorem_set_and_resumes(user):
    out = user.home / "split"
    done = prover(
        "prove-split",
        "--env",
        "repl",
        "--lean-file",
        str(user.file),
        *user.flags,
        "--no-progress",
        "--out",
        str(out),
        env=user.env,
        cwd=user.home,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "proved 4 of 5" in done.stdout
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["theorem"] for r in records) == [
        "complex_and:34:4",
        "complex_and:35:4",
        "mathd_algebra_24",
        "mathd_algebra_398",
        "mathd_algebra_478",
    ]
    config = json.loads((out / "config.json").read_text())
    assert config["theorems"]["lean_file"] == str(user.file) and config["env"]["lean_project"] == str(user.project)
    again = prover("prove-split", "--resume", str(out), "--no-progress", env=user.env, cwd=user.home)
    assert again.returncode == 0 and "proved 4 of 5" in again.stdout
    assert len((out / "results.jsonl").read_text().splitlines()) == 5


def test_fill_refuses_theorem_set_flags(user):
    done = user.fill("--theorems-file", str(user.file))
    assert done.returncode == 2 and "--theorems-file chooses a theorem set; prover fill proves" in done.stderr


def test_lean_file_needs_the_repl_environment(user):
    done = prover(
        "prove-split",
        "--env",
        "replay",
        "--lean-file",
        str(user.file),
        "--out",
        str(user.home / "x"),
        env=user.env,
        cwd=user.home,
    )
    assert done.returncode == 2 and "--lean-file needs --env repl" in done.stderr


@pytest.mark.slow
def test_fill_and_prove_split_run_the_holes_on_ray_and_resume(user, ray_local):
    pytest.importorskip("ray")
    ray_flags = [f for f in user.flags if f not in ("--num-workers", "0")]
    ray_flags += [
        "--ray-address",
        ray_local,
        "--num-workers",
        "2",
        "--searches-per-worker",
        "1",
        "--worker-cpus",
        "0.25",
        "--lean-memory-gb",
        "0.5",
    ]
    done = prover(
        "fill",
        str(user.file),
        *ray_flags,
        "--out",
        str(user.home / "run"),
        "--json",
        env=user.env,
        cwd=user.home,
        timeout_s=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["num_filled"] == 4 and report["num_holes"] == 5
    assert lean_check(user.env, user.project, report["written"]).returncode == 0
    out = user.home / "split"
    done = prover(
        "prove-split",
        "--env",
        "repl",
        "--lean-file",
        str(user.file),
        *ray_flags,
        "--no-progress",
        "--out",
        str(out),
        env=user.env,
        cwd=user.home,
        timeout_s=300,
    )
    assert done.returncode == 0 and "proved 4 of 5" in done.stdout, done.stdout + done.stderr
    again = prover(
        "prove-split",
        "--resume",
        str(out),
        "--ray-address",
        ray_local,
        "--no-progress",
        env=user.env,
        cwd=user.home,
        timeout_s=300,
    )
    assert again.returncode == 0 and "proved 4 of 5" in again.stdout, again.stdout + again.stderr
    assert len((out / "results.jsonl").read_text().splitlines()) == 5


def test_a_file_without_sorry_is_left_alone_and_exits_0(user):
    user.file.write_text(HEADER + "\ntheorem standin_rfl : 2 + 2 = 4 := by\n  rfl\n", encoding="utf-8")
    done = user.fill("--out", str(user.home / "run"), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) | {"file": None} == {
        "file": None,
        "run": None,
        "written": None,
        "backup": None,
        "num_holes": 0,
        "num_filled": 0,
        "check": "no holes",
        "holes": [],
    }
    assert "has no `sorry`; nothing to do" in done.stderr
    assert not (user.home / "run").exists() and not (user.project / "Holes.filled.lean").exists()


@pytest.mark.lean
@pytest.mark.slow
def test_real_lean_fills_a_file_of_the_lean_project_and_the_result_compiles(tmp_path):
    """With real Lean and Mathlib (`prover setup-lean`): a file in lean_project/ with a hole
    at the top, one after a first tactic and a term-mode one; run where Lean is installed."""
    project = Path(__file__).resolve().parents[1] / "lean_project"
    path = project / f"FillTest_{tmp_path.name.replace('-', '_')}.lean"
    path.write_text(
        "import Mathlib\n\n"
        "theorem fill_top (x : ℝ) (h : x = 2) : x + x = 4 := by\n  sorry\n\n"
        "theorem fill_after (a b : ℕ) (h : a = b) : a + 0 = b := by\n  simp only [Nat.add_zero]\n  sorry\n\n"
        "theorem fill_term : (2 : ℕ) + 2 = 4 := sorry\n",
        encoding="utf-8",
    )
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "prover.cli",
                "fill",
                str(path),
                "--policy",
                "fixed",
                "--tactic",
                "norm_num [h]",
                "--tactic",
                "exact h",
                "--tactic",
                "norm_num",
                "--num-workers",
                "0",
                "--out",
                str(tmp_path / "run"),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        written = Path(json.loads(done.stdout)["written"])
        compiled = subprocess.run(
            ["lake", "env", "lean", str(written)],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        assert compiled.returncode == 0 and "sorry" not in compiled.stdout, compiled.stdout + compiled.stderr
    finally:
        path.unlink(missing_ok=True)
        path.with_name(path.stem + ".filled.lean").unlink(missing_ok=True)
