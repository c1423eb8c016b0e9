"""The real ``lean_dojo`` and ``lean_interact`` against the stand-in Lean toolchain.

These tests pin the wire protocols the two backends rely on, by driving the libraries
unchanged (only PATH, environment variables and configured paths point at
``tests/lean_standin``); they need neither Lean nor a network. LeanDojo runs in a fresh
interpreter (``dojo_driver.py``) because it reads ``CACHE_DIR`` and ``NUM_PROCS`` once, at
import; lean-interact runs in this process.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.lean_standin import (
    LEAN_TOOLCHAIN,
    install,
    lean_dojo_env,
    make_git_repo,
    minif2f_source,
    read_log,
    run_dojo_driver,
    set_knobs,
    standin_variables,
    write_traces,
)
from tests.lean_standin import (
    SYNTHETIC_RECORDS as SYNTHETIC,
)

# The real libraries against the stand-in take a second or more a test: the slow tier (still
# in the default `pytest -q`); tests/test_env_repl.py and test_dojo_standin.py keep quick ones.
pytestmark = [pytest.mark.standin, pytest.mark.slow]

THEOREMS = ["mathd_numbertheory_222", "mathd_algebra_176", "mathd_algebra_338"]
FILE = "MiniF2F/Test.lean"


@pytest.fixture(scope="module")
def recorded(traces_path: Path) -> dict[str, list[dict]]:
    """The recorded real Lean steps of THEOREMS and of the Lean REPL's own tests, by theorem."""
    from prover.data import repl_fixtures_path

    by_theorem: dict[str, list[dict]] = {}
    for path in (traces_path, repl_fixtures_path()):
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line)
                if record["theorem"] in THEOREMS or path != traces_path:
                    by_theorem.setdefault(record["theorem"], []).append(record)
    return by_theorem


@pytest.fixture(scope="module")
def small_traces(tmp_path_factory, recorded) -> Path:
    records = [r for records in recorded.values() for r in records] + SYNTHETIC
    return write_traces(tmp_path_factory.mktemp("traces") / "traces.jsonl", records)


@pytest.fixture(scope="module")
def traced(tmp_path_factory, small_traces, minif2f_path) -> dict:
    """A small Lean package in git, traced into LeanDojo's cache through the stand-in."""
    root = tmp_path_factory.mktemp("standin-dojo")
    env = {**install(root, traces=small_traces), **lean_dojo_env(root)}
    commit = make_git_repo(root / "mini-minif2f", {FILE: minif2f_source(THEOREMS, minif2f_path)})
    base = {"repo": str(root / "mini-minif2f"), "commit": commit}
    [answer] = run_dojo_driver([{"op": "cache", **base}], env)
    return {"env": env, "base": base, "cache_path": Path(answer["path"]), "log": read_log(env)}


def dojo_op(traced: dict, theorem: str, steps: list, timeout: int = 5, **knobs: str) -> dict:
    """A Dojo session for ``dojo_driver.py``; ``knobs`` are stand-in variables for it alone."""
    unset = {
        name: ""
        for name in (
            "LEAN_STANDIN_TACTIC_DELAY_S",
            "LEAN_STANDIN_STARTUP_DELAY_S",
            "LEAN_STANDIN_CRASH_AFTER",
            "LEAN_STANDIN_CRASH_TACTIC",
        )
    }
    return {
        "op": "dojo",
        **traced["base"],
        "file": FILE,
        "theorem": theorem,
        "timeout": timeout,
        "steps": steps,
        "env": {**unset, **knobs},
    }


def dojo(traced: dict, *sessions: dict) -> list[list[dict]]:
    """Run Dojo sessions (``dojo_op``) in one fresh interpreter; their results in order."""
    return run_dojo_driver(list(sessions), traced["env"])


def first_step(recorded: dict, theorem: str, step: int = 0) -> dict:
    return next(r for r in recorded[theorem] if r.get("step") == step)


# -- LeanDojo: tracing -------------------------------------------------------------------------


def test_leandojo_tracing_runs_lake_and_lean_through_the_standin_into_its_cache(traced):
    commands = [(entry["tool"], entry["argv"][1:]) for entry in traced["log"]]
    assert commands == [
        ("lake", ["exe", "cache", "get"]),
        ("lake", ["build"]),
        ("lean", ["--print-prefix"]),
        ("lean", ["--version"]),
        ("lake", ["env", "lean", "--threads", "1", "--run", "ExtractData.lean", "noDeps"]),
        ("lean", ["--threads", "1", "--run", "ExtractData.lean", "noDeps"]),
        ("lake", ["build", "Lean4Repl"]),
    ]
    assert all(Path(entry["cwd"]).name == "mini-minif2f" for entry in traced["log"])
    cached = traced["cache_path"]
    assert cached.name == "mini-minif2f" and cached.parent.name.startswith("gitpython-mini-minif2f-")
    for relative in [
        "Lean4Repl.lean",
        ".lake/build/lib/lean/Lean4Repl.olean",
        ".lake/packages/lean4",
        ".lake/build/ir/MiniF2F/Test.ast.json",
        ".lake/build/ir/MiniF2F/Test.dep_paths",
        ".lake/build/ir/MiniF2F/Test.trace.xml",
    ]:
        assert (cached / relative).exists(), relative
    assert "lean_lib Lean4Repl" in (cached / "lakefile.lean").read_text()
    assert (cached / ".lake/build/ir/MiniF2F/Test.dep_paths").read_text().splitlines() == [
        ".lake/packages/mathlib/Mathlib.lean",
        ".lake/packages/aesop/Aesop.lean",
    ]


def test_leandojos_own_tracing_needs_the_network_only_to_look_up_the_lean4_commit(tmp_path, small_traces, minif2f_path):
    env = {**install(tmp_path, traces=small_traces), **lean_dojo_env(tmp_path)}
    commit = make_git_repo(tmp_path / "mini-minif2f", {FILE: minif2f_source(THEOREMS[:1], minif2f_path)})
    [answer] = run_dojo_driver([{"op": "trace", "repo": str(tmp_path / "mini-minif2f"), "commit": commit}], env)
    if "path" in answer:  # a machine that reaches api.github.com traces end to end
        assert Path(answer["path"], "Lean4Repl.lean").exists()
        return
    frames = answer["frames"]
    assert frames[: frames.index("get_lean4_commit_from_config") + 1] == [
        "run",
        "get_traced_repo_path",
        "from_traced_files",
        "get_dependencies",
        "get_lean4_commit_from_config",
    ]
    assert [e["argv"][1:2] for e in read_log(env)][-1] == ["build"]  # `_trace` ran to its end first


# -- LeanDojo: interaction ---------------------------------------------------------------------


def test_dojo_starts_at_the_recorded_state_and_follows_recorded_steps_to_a_finished_proof(traced, recorded):
    step0, step1 = first_step(recorded, "mathd_numbertheory_222"), first_step(recorded, "mathd_numbertheory_222", 1)
    [results] = dojo(traced, dojo_op(traced, "mathd_numbertheory_222", [[0, step0["tactic"]], [1, step1["tactic"]]]))
    initial, after, finished = results
    assert initial == {"type": "TacticState", "pp": step0["state_before"], "id": 0, "message": None, "num_goals": 1}
    assert after["type"] == "TacticState" and after["pp"] == step0["state_after"] and after["id"] == 1
    assert finished == {"type": "ProofFinished", "id": 2, "message": ""}


def test_dojo_gives_lean_errors_for_unrecorded_tactics_and_gives_up_on_sorry(traced):
    [results] = dojo(
        traced, dojo_op(traced, "mathd_algebra_176", [[0, "linarith"], [0, "exat 3"], [0, "sorry"], [0, "ring"]])
    )
    initial, failed, unknown, given_up, finished = results
    assert failed["type"] == "LeanError" and failed["error"].startswith("tactic 'linarith' failed")
    assert failed["error"].endswith(initial["pp"])
    assert unknown == {"type": "LeanError", "error": "<stdin>:1:1: unknown tactic"}
    assert given_up == {"type": "ProofGivenUp"}
    assert finished == {"type": "ProofFinished", "id": 1, "message": ""}  # errors take no state id


def test_dojo_times_out_on_a_slow_tactic_and_on_a_slow_start(traced, recorded):
    tactic = first_step(recorded, "mathd_algebra_176")["tactic"]
    slow_tactic, slow_start = dojo(
        traced,
        dojo_op(traced, "mathd_algebra_176", [[0, tactic]], timeout=1, LEAN_STANDIN_TACTIC_DELAY_S="3"),
        dojo_op(traced, "mathd_algebra_176", [], timeout=1, LEAN_STANDIN_STARTUP_DELAY_S="3"),
    )
    assert slow_tactic[0]["type"] == "TacticState"
    assert slow_tactic[1]["class"] == "DojoTacticTimeoutError"
    assert slow_start == [
        {
            "type": "exception",
            "class": "DojoInitError",
            "text": "Timeout during initialization",
            "frames": ["run", "__enter__"],
        }
    ]


def test_dojo_reports_a_crashed_lean_as_dojo_crash_error(traced, recorded):
    step0 = first_step(recorded, "mathd_numbertheory_222")
    after_one, on_tactic = dojo(
        traced,
        dojo_op(
            traced, "mathd_numbertheory_222", [[0, step0["tactic"]], [1, "linarith"]], LEAN_STANDIN_CRASH_AFTER="1"
        ),
        dojo_op(traced, "mathd_numbertheory_222", [[0, "omega"]], LEAN_STANDIN_CRASH_TACTIC="omega"),
    )
    assert after_one[1]["type"] == "TacticState"
    assert after_one[2]["class"] == "DojoCrashError" and after_one[2]["text"] == "Unexpected EOF"
    assert on_tactic[1]["class"] == "DojoCrashError"


def test_check_proof_accepts_a_recorded_proof_and_rejects_wrong_or_sorry_proofs(traced, recorded):
    step0, step1 = first_step(recorded, "mathd_numbertheory_222"), first_step(recorded, "mathd_numbertheory_222", 1)
    right = f" by\n  {step0['tactic']}\n  {step1['tactic']}"

    proofs = [
        right,
        f" by\n  {step0['tactic']}\n  linarith",  # an error
        f" by\n  {step0['tactic']}",  # unsolved goals
        f" by\n  {step0['tactic']}\n  sorry",  # a `sorry` warning in the theorem's lines
    ]
    ops = [
        {"op": "check_proof", **traced["base"], "file": FILE, "theorem": "mathd_numbertheory_222", "proof": proof}
        for proof in proofs
    ]
    assert run_dojo_driver(ops, traced["env"]) == [{"accepted": True}] + [{"accepted": False}] * 3


# -- `lake env lean FILE` ----------------------------------------------------------------------


def lean_file(env: dict, directory: Path, text: str) -> subprocess.CompletedProcess:
    (directory / "Check.lean").write_text(text, encoding="utf-8")
    return subprocess.run(
        ["lake", "env", "lean", "--threads=1", "--memory=4096", "Check.lean"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_lean_prints_messages_and_print_axioms_like_lean(tmp_path, small_traces, recorded):
    env = install(tmp_path, traces=small_traces)
    (tmp_path / "lean-toolchain").write_text(LEAN_TOOLCHAIN + "\n")
    statement = "theorem mathd_algebra_176 (x : ℝ) : (x + 1) ^ 2 * x = x ^ 3 + 2 * x ^ 2 + x :="
    good = lean_file(
        env,
        tmp_path,
        (
            f"import Mathlib\n\n{statement} by\n  ring\n\n"
            "theorem standin_native : 2 ^ 10 = 1024 := by\n  native_decide\n\n"
            "theorem standin_rfl : 2 + 2 = 4 := by\n  rfl\n\n"
            "theorem standin_sorry : 1 = 1 := by sorry\n\n"
            "theorem standin_trust : True := by\n  exact Lean.trustCompiler\n\n"
            "#print axioms mathd_algebra_176\n#print axioms standin_native\n#print axioms standin_rfl\n"
            "#print axioms standin_sorry\n#print axioms standin_trust\n"
        ),
    )
    assert good.returncode == 0, good.stdout
    assert good.stdout.splitlines() == [
        "Check.lean:12:8: warning: declaration uses 'sorry'",
        "'mathd_algebra_176' depends on axioms: [propext, Classical.choice, Quot.sound]",
        "'standin_native' depends on axioms: [propext, Classical.choice, Lean.ofReduceBool, Quot.sound]",
        "'standin_rfl' does not depend on any axioms",
        "'standin_sorry' depends on axioms: [propext, sorryAx, Classical.choice, Quot.sound]",
        "'standin_trust' depends on axioms: [propext, Classical.choice, Lean.trustCompiler, Quot.sound]",
    ]
    goal = recorded["mathd_algebra_176"][0]["state_before"]
    bad = lean_file(
        env, tmp_path, f"import Mathlib\n\n{statement} by\n  linarith\n\ntheorem t2 {statement[26:]} by\n  skip\n"
    )
    assert bad.returncode == 1
    lines = bad.stdout.splitlines()
    assert (
        lines[0]
        == "Check.lean:4:2: error: tactic 'linarith' failed (the Lean stand-in has no recorded outcome of this tactic at this goal)"
    )
    assert (
        "Check.lean:6:8: error: the Lean stand-in has no recorded goal for 't2' (add its trace to LEAN_STANDIN_TRACES)"
        in lines
    )
    assert goal.splitlines()[-1] in lines


# -- lean-interact and the Lean REPL -----------------------------------------------------------


@pytest.fixture()
def repl_project(tmp_path, small_traces, monkeypatch):
    """A Lean project directory and the stand-in on PATH; returns (env, project)."""
    env = install(tmp_path, traces=small_traces)
    for name, value in standin_variables(env).items():
        monkeypatch.setenv(name, value)
    project = tmp_path / "project"
    project.mkdir()
    (project / "lean-toolchain").write_text(LEAN_TOOLCHAIN + "\n")
    return env, project


def repl_server(env: dict, project: Path, **config):
    from lean_interact import LeanREPLConfig, LeanServer, LocalProject

    config = LeanREPLConfig(
        project=LocalProject(directory=str(project), auto_build=False),
        local_repl_path=env["LEAN_STANDIN_REPL_DIR"],
        lake_path=env["LEAN_STANDIN_LAKE"],
        memory_hard_limit_mb=4096,
        **config,
    )
    return LeanServer(config)


def test_lean_interact_sets_up_with_lake_and_spawns_the_repl_in_the_project(repl_project):
    from lean_interact import Command

    env, project = repl_project
    server = repl_server(env, project)
    try:
        assert server.run(Command(cmd="import Mathlib"), timeout=10).env == 0  # the REPL is up
    finally:
        server.kill()
    commands = [(Path(e["cwd"]), e["argv"]) for e in read_log(env)]
    repl_dir = Path(env["LEAN_STANDIN_REPL_DIR"])
    assert commands[0][1] == ["lake", "--version"]
    assert commands[1] == (repl_dir, ["lake", "build"])
    assert commands[2] == (project, ["lake", "env", str(repl_dir / ".lake/build/bin/repl")])
    assert commands[3] == (project, ["repl"])


def test_repl_command_gives_the_theorems_goal_as_a_sorry_and_steps_reach_completed(repl_project, recorded):
    from lean_interact import Command, ProofStep
    from lean_interact.interface import CommandResponse, ProofStepResponse

    env, project = repl_project
    step0, step1 = first_step(recorded, "mathd_numbertheory_222"), first_step(recorded, "mathd_numbertheory_222", 1)
    statement = (
        "theorem mathd_numbertheory_222 (b : ℕ) (h₀ : Nat.lcm 120 b = 3720) (h₁ : Nat.gcd 120 b = 8) :\n    b = 248 :="
    )
    server = repl_server(env, project)
    try:
        header = server.run(Command(cmd="import Mathlib\nopen BigOperators Real Nat Topology Rat\n"), timeout=10)
        assert (
            isinstance(header, CommandResponse) and header.env == 0 and header.messages == [] and header.sorries == []
        )
        theorem = server.run(Command(cmd=statement + " by sorry", env=header.env), timeout=10)
        assert theorem.env == 1
        [sorry] = theorem.sorries
        assert sorry.goal == step0["state_before"] and sorry.proof_state == 0
        assert (sorry.start_pos.line, sorry.start_pos.column, sorry.end_pos.column) == (2, 18, 23)  # `sorry`
        [warning] = theorem.messages
        assert (warning.severity, warning.data, warning.start_pos.column) == ("warning", "declaration uses 'sorry'", 8)
        first = server.run(ProofStep(proof_state=0, tactic=step0["tactic"]), timeout=10)
        assert isinstance(first, ProofStepResponse)
        assert first.goals == [step0["state_after"]] and first.proof_state == 1
        assert first.proof_status == "Incomplete: open goals remain"
        done = server.run(ProofStep(proof_state=first.proof_state, tactic=step1["tactic"]), timeout=10)
        assert (done.goals, done.proof_state, done.proof_status) == ([], 2, "Completed")
        given_up = server.run(ProofStep(proof_state=0, tactic="sorry"), timeout=10)
        assert (given_up.proof_status, given_up.sorries[0].goal) == (
            "Incomplete: contains sorry",
            step0["state_before"],
        )
        whole = server.run(
            Command(cmd=f"{statement} by\n  {step0['tactic']}\n  {step1['tactic']}", env=header.env), timeout=10
        )
        assert (whole.env, whole.messages, whole.sorries) == (2, [], [])  # proof steps make no environments
    finally:
        server.kill()


def test_repl_errors_come_as_lean_errors_or_error_messages_as_the_real_repl_gives_them(repl_project, recorded):
    from lean_interact import Command, ProofStep
    from lean_interact.interface import LeanError

    env, project = repl_project
    server = repl_server(env, project)
    try:
        theorem = server.run(Command(cmd="theorem my_theorem (x : Nat) : x = x := by sorry"), timeout=10)
        state = theorem.sorries[0].proof_state
        unknown = server.run(ProofStep(proof_state=state, tactic="exat 42"), timeout=10)
        assert unknown == LeanError(message="Lean error:\n<input>:1:1: unknown tactic")
        failed = server.run(ProofStep(proof_state=state, tactic="omega"), timeout=10)
        assert isinstance(failed, LeanError) and failed.message.startswith("Lean error:\ntactic 'omega' failed")
        logged = server.run(ProofStep(proof_state=state, tactic="exact my_fake_premise"), timeout=10)  # recorded
        assert [(m.severity, m.data) for m in logged.messages] == [("error", "Unknown identifier `my_fake_premise`")]
        assert logged.proof_status == "Incomplete: contains sorry"
        assert server.run(ProofStep(proof_state=99, tactic="rfl"), timeout=10) == LeanError(
            message="Unknown proof state."
        )
        assert server.run(Command(cmd="example : True := trivial", env=42), timeout=10) == LeanError(
            message="Unknown environment."
        )
        unknown_goal = server.run(Command(cmd="theorem nobody_recorded : 1 = 1 := by rfl"), timeout=10)
        assert [m.severity for m in unknown_goal.messages] == ["error"]
    finally:
        server.kill()


def test_repl_timeout_kills_the_server_and_a_crash_closes_it(repl_project):
    from lean_interact import Command, ProofStep

    env, project = repl_project
    statement = "theorem foo (x : Nat) : x = x := by sorry"
    server = repl_server(env, project)
    state = server.run(Command(cmd=statement), timeout=10).sorries[0].proof_state
    set_knobs(env, tactic_delay_s=3, slow_tactic="rfl")  # the running REPL re-reads its knobs
    fast = server.run(ProofStep(proof_state=state, tactic="induction x"), timeout=10)  # recorded
    assert fast.proof_status == "Incomplete: open goals remain" and len(fast.goals) == 2
    with pytest.raises(TimeoutError):
        server.run(ProofStep(proof_state=state, tactic="rfl"), timeout=0.5)
    assert not server.is_alive()
    set_knobs(env, tactic_delay_s=None, crash_tactic="induction x")
    server = repl_server(env, project)
    try:
        state = server.run(Command(cmd=statement), timeout=10).sorries[0].proof_state
        with pytest.raises(ConnectionAbortedError):
            server.run(ProofStep(proof_state=state, tactic="induction x"), timeout=10)
    finally:
        server.kill()


def test_repl_start_up_delay_delays_the_first_answer(repl_project, monkeypatch):
    from lean_interact import Command

    env, project = repl_project
    monkeypatch.setenv("LEAN_STANDIN_STARTUP_DELAY_S", "3")
    server = repl_server(env, project)
    with pytest.raises(TimeoutError):
        server.run(Command(cmd="import Mathlib"), timeout=0.5)


def test_lake_without_a_default_toolchain_fails_outside_a_project_as_elan_does(repl_project, monkeypatch, tmp_path):
    env, project = repl_project
    monkeypatch.setenv("LEAN_STANDIN_NO_DEFAULT_TOOLCHAIN", "1")
    monkeypatch.delenv("ELAN_TOOLCHAIN", raising=False)
    outside = tmp_path / "no-toolchain-here"
    outside.mkdir()
    monkeypatch.chdir(outside)  # lean-interact runs `lake --version` in the current directory
    with pytest.raises(RuntimeError, match="no default toolchain configured. run `elan default stable`"):
        repl_server(env, project)
    assert subprocess.run(["lake", "--version"], cwd=project, capture_output=True).returncode == 0
    monkeypatch.setenv("ELAN_TOOLCHAIN", LEAN_TOOLCHAIN)
    repl_server(env, project).kill()
