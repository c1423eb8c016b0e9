"""``prover attack --env repl`` end to end: the CLI in a fresh process, the real lean-interact,
and the stand-in Lean toolchain (tests/lean_standin) in place of Lean.

Each run starts in a directory outside the Lean project, as a user would, and most run
with elan's behaviour when it was installed with ``--default-toolchain none`` (the
README's way): ``lake`` works only where a ``lean-toolchain`` file says which Lean to use.
The REPL and ``lake`` are the stand-in's, given with ``--repl-path`` and ``--lake-path``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("lean_interact")

from tests.lean_standin import install, read_costs, read_log
from tests.test_env_repl import COMPLEX_AND, COMPLEX_AND_PROOF, lean_project, traces_file  # noqa: F401 (a fixture)

pytestmark = pytest.mark.standin


def prover(*args: str, env: dict[str, str], cwd: Path, timeout_s: float = 60) -> subprocess.CompletedProcess:
    """``prover ARGS`` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "prover.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout_s
    )


@pytest.fixture()
def user(tmp_path, traces_file):  # noqa: F811 (the fixture imported above)
    """(environment, Lean project, the directory commands run in, the Lean flags)."""
    env = install(tmp_path, traces=traces_file, no_default_toolchain=True)
    env.pop("ELAN_TOOLCHAIN", None)
    project = lean_project(tmp_path / "project")
    home = tmp_path / "home"
    home.mkdir()
    flags = [
        "--lean-project",
        str(project),
        "--repl-path",
        env["LEAN_STANDIN_REPL_DIR"],
        "--lake-path",
        env["LEAN_STANDIN_LAKE"],
    ]
    return env, project, home, flags


def saved_result(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))["graph"]["result"]


def test_attack_proves_a_minif2f_theorem_through_the_repl_from_any_directory(user, tmp_path):
    env, project, home, flags = user
    done = prover(
        "attack",
        "mathd_algebra_478",
        "--env",
        "repl",
        "--policy",
        "fixed",
        "--tactic",
        "norm_num",
        "--tactic",
        "rw [h₁, h₂, h₃]",
        *flags,
        "--tree-out",
        str(tmp_path / "tree.json"),
        env=env,
        cwd=home,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("proved mathd_algebra_478")
    result = saved_result(tmp_path / "tree.json")
    assert (result["status"], result["proof"]) == ("proved", ["rw [h₁, h₂, h₃]", "norm_num"])
    repl = Path(env["LEAN_STANDIN_REPL_DIR"])
    calls = [(Path(e["cwd"]), e["argv"]) for e in read_log(env)]
    # lean-interact checks `lake` where the user is, builds the given REPL, runs it in the
    # project: the search's REPL and, imported beside it, the checker
    assert calls[:2] == [(home, ["lake", "--version"]), (repl, ["lake", "build"])]
    started = calls[2:]
    runs = (project, ["lake", "env", str(repl / ".lake/build/bin/repl")])
    assert started.count(runs) == started.count((project, ["repl"])) == 2 and len(started) == 4
    costs = read_costs(env)
    imports = Counter(c["pid"] for c in costs if c["kind"] == "import")
    [check] = [c for c in costs if c["kind"] == "check"]
    assert set(imports.values()) == {1} and check["pid"] in imports  # the re-check on a warm header env


def test_attack_a_typed_in_statement_through_the_repl(user, tmp_path):
    env, _, home, flags = user
    tactics = [arg for tactic in reversed(COMPLEX_AND_PROOF) for arg in ("--tactic", tactic)]
    done = prover(
        "attack",
        "--statement",
        COMPLEX_AND.statement,
        "--env",
        "repl",
        "--policy",
        "fixed",
        *tactics,
        *flags,
        "--tree-out",
        str(tmp_path / "tree.json"),
        env=env,
        cwd=home,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("proved complex_and")
    assert saved_result(tmp_path / "tree.json")["proof"] == COMPLEX_AND_PROOF


def test_a_proof_resting_on_the_compiler_is_recorded_rejected_naming_the_axiom(user, tmp_path):
    env, _, home, flags = user
    done = prover(
        "attack",
        "--statement",
        "theorem standin_native : 2 ^ 10 = 1024 :=",
        "--env",
        "repl",
        "--policy",
        "fixed",
        "--tactic",
        "native_decide",
        "--allow-native-decide",
        *flags,
        "--tree-out",
        str(tmp_path / "tree.json"),
        env=env,
        cwd=home,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    result = saved_result(tmp_path / "tree.json")
    assert (result["status"], result["proof"]) == ("rejected", ["native_decide"])
    assert result["error"].endswith("the proof depends on the axiom Lean.ofReduceBool")
    assert "the proof depends on the axiom Lean.ofReduceBool" in done.stdout


@pytest.mark.slow
def test_a_missing_lean_project_toolchain_is_an_error_result_saying_so(user, tmp_path):
    env, _, home, flags = user
    bare = tmp_path / "bare"
    bare.mkdir()
    flags = ["--lean-project", str(bare), *flags[2:]]
    done = prover(
        "attack",
        "--statement",
        COMPLEX_AND.statement,
        "--env",
        "repl",
        "--policy",
        "fixed",
        "--tactic",
        "apply And.intro",
        *flags,
        env=env,
        cwd=home,
    )
    assert done.returncode == 1
    assert "has no lean-toolchain file" in done.stdout
