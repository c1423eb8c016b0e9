"""``prover doctor``: the sandbox in force, and what Lean, lake, REPL, GPU and libraries it finds."""

from __future__ import annotations

import shutil
import subprocess
import sys

from prover.settings import REPO_ROOT

from tests.lean_standin import install


def doctor(env: dict, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "prover.cli", "doctor", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def line(lines: list[str], name: str) -> str:
    [found] = [text for text in lines if text[4:19].strip() == name]
    return found


def test_doctor_names_the_sandbox_and_finds_the_toolchain_the_repl_and_the_libraries(tmp_path):
    env = install(tmp_path)
    lines = doctor(env, "--repl-path", env["LEAN_STANDIN_REPL_DIR"], "--lake-path", env["LEAN_STANDIN_LAKE"])
    sandbox = line(lines, "sandbox")
    if shutil.which("bwrap"):
        assert sandbox.startswith("ok ") and "bwrap" in sandbox and "network namespace" in sandbox
    assert line(lines, "lake").startswith("ok ") and "Lake version" in line(lines, "lake")
    assert line(lines, "lean").startswith("ok ") and "Lean (version 4.20.0" in line(lines, "lean")
    assert line(lines, "lean REPL").startswith("ok ") and env["LEAN_STANDIN_REPL_DIR"] in line(lines, "lean REPL")
    assert line(lines, "gpu")  # present either way; no GPU here is a line, not an error
    assert line(lines, "lean-interact").startswith("ok ")


def test_doctor_says_what_to_install_when_lean_is_missing_and_the_sandbox_is_off(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    lines = doctor(env, "--sandbox", "off", "--lean-project", str(tmp_path))
    assert line(lines, "sandbox").startswith("ok ") and "off: Lean runs unconfined" in line(lines, "sandbox")
    assert line(lines, "lake").startswith("-- ") and "install elan" in line(lines, "lake")
    assert "has no lean-toolchain" in line(lines, "lean project")
