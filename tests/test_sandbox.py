"""The Lean sandbox (prover/envs/sandbox.py) against real hostile acts of the stand-in Lean.

A "tactic" of the stand-in (tests/lean_standin/hostile.py) really connects to a listener
this test started on 127.0.0.1, writes a file outside its work directory, starts hundreds
of processes, allocates past the memory limit, or sleeps for ever. Under each sandbox that
this machine has, every act fails (or Lean is killed), the search goes on and proves the
theorem, the listener receives 0 bytes and nothing outside the work directory changes;
with ``--sandbox off`` each act succeeds, which shows the acts are real. Both the REPL
path (lean-interact, in this process) and the Dojo path (``prover attack --env dojo``
through the real LeanDojo) are driven.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from search import EnvTimeoutError, LeanError, SearchLimits, SearchStatus, best_first_search

from prover.envs import sandbox
from prover.envs.sandbox import Limits, confine_lake_on_path, confining_lake, is_confining, resolve
from prover.errors import MissingDependencyError

from tests.fakes import TablePolicy
from tests.lean_standin import hostile, install, standin_variables

HAS_BWRAP = shutil.which("bwrap") is not None
HAS_LANDLOCK = sandbox.landlock_abi() >= 1
CONFINED = [
    pytest.param(
        "bwrap",
        marks=pytest.mark.skipif(not HAS_BWRAP, reason="bubblewrap is not installed (apt-get install bubblewrap)"),
    ),
    pytest.param("landlock", marks=pytest.mark.skipif(not HAS_LANDLOCK, reason="this kernel has no Landlock")),
]
SPAWN, PROCESS_LIMIT = 300, 64  # processes the act starts; the sandbox's limit in these tests
MEMORY_MB, ALLOCATE_MB = 512, 1024


class Listener:
    """A TCP listener on 127.0.0.1 that counts the bytes it receives."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.received = 0
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            with connection:
                while chunk := connection.recv(4096):
                    self.received += len(chunk)

    def close(self):
        self.socket.close()


@pytest.fixture()
def listener():
    listening = Listener()
    yield listening
    listening.close()


def hostile_acts(port: int, outside: Path) -> dict:
    return {
        "hostile_connect": {"act": "connect", "port": port},
        "hostile_write": {"act": "write", "path": str(outside / "pwned.txt")},
        "hostile_spawn": {"act": "spawn", "count": SPAWN, "sleep_s": 2},
        "hostile_allocate": {"act": "allocate", "mb": ALLOCATE_MB},
        "hostile_sleep": {"act": "sleep"},
    }


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# -- choosing the sandbox --------------------------------------------------------------------------


def test_auto_picks_bwrap_where_installed_else_landlock_else_off_with_one_warning(monkeypatch, capsys):
    assert resolve("off") == "off"
    if HAS_BWRAP:
        assert resolve("auto") == "bwrap"
    monkeypatch.setattr(sandbox.shutil, "which", lambda name, **kw: None)
    assert resolve("auto") == ("landlock" if HAS_LANDLOCK else "off")
    monkeypatch.setattr(sandbox, "landlock_abi", lambda: 0)
    monkeypatch.setattr(sandbox, "_warned", False)
    assert resolve("auto") == "off" and resolve("auto") == "off"
    warning = capsys.readouterr().err
    assert warning.count("\n") == 1 and "apt-get install bubblewrap" in warning


def test_an_explicit_sandbox_this_machine_lacks_is_one_sentence_naming_what_to_install(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name, **kw: None)
    with pytest.raises(MissingDependencyError, match="apt-get install bubblewrap"):
        resolve("bwrap")
    monkeypatch.setattr(sandbox, "landlock_abi", lambda: 0)
    with pytest.raises(MissingDependencyError, match="Landlock"):
        resolve("landlock")


@pytest.mark.parametrize("mode", CONFINED)
def test_confining_twice_wraps_the_real_lake_once(mode, tmp_path, monkeypatch):
    env = install(tmp_path)
    monkeypatch.setenv("PATH", env["PATH"])
    confine_lake_on_path(mode, Limits(1024))
    first = shutil.which("lake")
    confine_lake_on_path(mode, Limits(1024))
    assert shutil.which("lake") == first and is_confining(first)
    assert env["LEAN_STANDIN_LAKE"] in Path(first).read_text()
    done = subprocess.run([first, "--version"], capture_output=True, text=True, env={**env, "PATH": os.environ["PATH"]})
    assert done.returncode == 0 and "Lake version" in done.stdout


HELPER = """
import subprocess, sys, threading, time
def start():
    subprocess.Popen([sys.argv[1], "-c", "echo $$ > lean.pid; exec sleep 120"], start_new_session=True)
thread = threading.Thread(target=start)
thread.start(); thread.join()  # the starting thread is gone, as a pool's spare-starting thread goes
print("started", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("mode", CONFINED)
def test_lean_outlives_the_thread_that_started_it_and_dies_with_its_process(mode, tmp_path):
    import psutil

    wrapper = confining_lake("sh", mode, Limits(1024), directory=tmp_path / "wrappers")
    owner = subprocess.Popen([sys.executable, "-c", HELPER, wrapper], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 20
        while not (tmp_path / "lean.pid").exists() or not (tmp_path / "lean.pid").read_text().strip():
            assert time.monotonic() < deadline, "the sandboxed process did not start"
            time.sleep(0.1)
        lean = psutil.Process(int((tmp_path / "lean.pid").read_text()))
        time.sleep(2.5)  # past the watcher's check: the thread's end did not kill it
        assert lean.is_running() and lean.status() != psutil.STATUS_ZOMBIE
    finally:
        owner.kill()
        owner.wait()
    gone, alive = psutil.wait_procs([lean], timeout=10)
    assert not alive or alive[0].status() == psutil.STATUS_ZOMBIE


def test_off_leaves_lake_as_it_is(tmp_path):
    assert confining_lake("lake", "off", Limits()) == "lake"
    assert not is_confining(shutil.which("sh"))


# -- the REPL path: lean-interact in this process -------------------------------------------------

pytest.importorskip("lean_interact")
from tests.test_env_repl import COMPLEX_AND, COMPLEX_AND_PROOF, lean_project, standin_traces  # noqa: E402


@pytest.fixture()
def repl_standin(tmp_path, traces_path, listener, monkeypatch):
    box = tmp_path / "box"  # the stand-in and its project: writable for its log (PROVER_SANDBOX_WRITABLE)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("untouched\n")
    traces = standin_traces(tmp_path, traces_path)
    env = install(box, traces=traces, hostile=json.dumps(hostile_acts(listener.port, outside)))
    for name, value in standin_variables(env).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ELAN_TOOLCHAIN", raising=False)
    return {"env": env, "project": lean_project(box / "project"), "outside": outside, "home": env["LEAN_STANDIN_HOME"]}


def repl_env(installed: dict, mode: str, memory_limit_mb: int | None):
    from prover.envs.repl import ReplEnv

    return ReplEnv(
        lean_project=installed["project"],
        repl_path=installed["env"]["LEAN_STANDIN_REPL_DIR"],
        lake_path=installed["env"]["LEAN_STANDIN_LAKE"],
        tactic_timeout_s=3.0,
        startup_timeout_s=20.0,
        memory_limit_mb=memory_limit_mb,
        sandbox=mode,
        max_lean_processes=PROCESS_LIMIT,
    )


def run_acts(env) -> dict:
    """Each hostile tactic at the root, then the proof: what each act's step answered."""
    root = env.start(COMPLEX_AND)
    answers = {}
    for tactic in ("hostile_connect", "hostile_write", "hostile_spawn", "hostile_allocate", "hostile_sleep"):
        try:
            answers[tactic] = env.run_tactic(root, tactic)
        except EnvTimeoutError as exc:
            answers[tactic] = exc
    state = root
    for tactic in COMPLEX_AND_PROOF:  # the session goes on after every act
        state = env.run_tactic(state, tactic)
    answers["proof"] = state
    return answers


@pytest.mark.slow
@pytest.mark.parametrize("mode", CONFINED)
def test_under_the_sandbox_every_hostile_act_fails_and_the_repl_session_goes_on(mode, repl_standin, listener):
    before = snapshot(repl_standin["outside"])
    env = repl_env(repl_standin, mode, MEMORY_MB)
    try:
        answers = run_acts(env)
    finally:
        env.close()
    for tactic in ("hostile_connect", "hostile_write", "hostile_spawn", "hostile_allocate"):
        assert isinstance(answers[tactic], LeanError) and "failed" in answers[tactic].error, answers[tactic]
    assert isinstance(answers["hostile_sleep"], EnvTimeoutError)
    assert type(answers["proof"]).__name__ == "ProofFinished"
    acts = {r["act"]: r for r in hostile.results(repl_standin["home"])}
    assert not any(r["done"] for r in acts.values()), acts
    started = int(acts["spawn"]["text"].split("started ")[1].split()[0])
    assert started < PROCESS_LIMIT < SPAWN
    assert listener.received == 0
    assert snapshot(repl_standin["outside"]) == before


@pytest.mark.slow
def test_with_the_sandbox_off_every_hostile_act_succeeds_so_the_acts_are_real(repl_standin, listener):
    # No memory limit at all here: lean-interact sets RLIMIT_AS itself when given one.
    env = repl_env(repl_standin, "off", None)
    try:
        answers = run_acts(env)
    finally:
        env.close()
    for tactic in ("hostile_connect", "hostile_write", "hostile_spawn", "hostile_allocate"):
        assert isinstance(answers[tactic], LeanError) and ": done: " in answers[tactic].error, answers[tactic]
    assert isinstance(answers["hostile_sleep"], EnvTimeoutError)
    assert listener.received > 0
    assert (repl_standin["outside"] / "pwned.txt").exists()


@pytest.mark.slow
@pytest.mark.parametrize("mode", CONFINED)
def test_a_search_through_hostile_tactics_under_the_sandbox_still_proves_the_theorem(mode, repl_standin, listener):
    from prover.envs.safety import GuardedEnv

    env = GuardedEnv(repl_env(repl_standin, mode, MEMORY_MB))
    hostile_first = [
        (t, -0.01) for t in ("hostile_connect", "hostile_write", "hostile_spawn", "hostile_allocate", "hostile_sleep")
    ]
    policy = TablePolicy(
        {
            "p q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ p ∧ r": hostile_first + [("apply And.intro", -1.0)],
        },
        default=[("exact h1.left", -1.0), ("apply h2", -1.0), ("exact h1.right", -1.0)],
    )
    try:
        result = best_first_search(COMPLEX_AND, policy, env, SearchLimits(max_expansions=20, time_limit_s=60))
    finally:
        env.close()
    assert result.status is SearchStatus.PROVED, result
    assert listener.received == 0 and not (repl_standin["outside"] / "pwned.txt").exists()


# -- the Dojo path: `prover attack --env dojo` through the real LeanDojo ---------------------------

from tests.test_dojo_standin import attack, standin  # noqa: E402,F401  (the module's set-up fixture)


@pytest.mark.slow
@pytest.mark.parametrize("mode", [*CONFINED, "off"])
def test_the_dojo_path_confines_each_hostile_act_and_the_search_goes_on(mode, standin, tmp_path, listener):  # noqa: F811
    outside = tmp_path / "outside"
    outside.mkdir()
    home = Path(standin["env"]["LEAN_STANDIN_HOME"])
    (home / "hostile.jsonl").unlink(missing_ok=True)
    env = {**standin["env"], "LEAN_STANDIN_HOSTILE": json.dumps(hostile_acts(listener.port, outside))}
    tactics = [
        a
        for t in ("hostile_connect", "hostile_write", "hostile_spawn", "hostile_allocate", "hostile_sleep", "nlinarith")
        for a in ("--tactic", t)
    ]
    done, record = attack(
        standin,
        "mathd_algebra_478",
        *tactics,
        "--sandbox",
        mode,
        "--memory-limit-mb",
        str(MEMORY_MB),
        "--max-lean-processes",
        str(PROCESS_LIMIT),
        "--tactic-timeout",
        "3",
        "--startup-timeout",
        "30",
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert record["status"] == "proved"  # the search went on past every act, and the re-check passed
    acts = {r["act"]: r for r in hostile.results(home)}
    assert set(acts) == {"connect", "write", "spawn", "allocate"}  # `sleep` never answers
    if mode == "off":
        assert all(r["done"] for r in acts.values()), acts
        assert listener.received > 0 and (outside / "pwned.txt").exists()
    else:
        assert not any(r["done"] for r in acts.values()), acts
        assert listener.received == 0 and list(outside.iterdir()) == []


def test_many_threads_writing_the_confining_lake_at_once_all_get_it_whole(tmp_path):
    # The search threads of one Ray worker share a process id: each write needs a name of its own.
    from concurrent.futures import ThreadPoolExecutor

    from prover.envs import sandbox

    if sandbox.resolve("auto") == "off":
        pytest.skip("no sandbox on this machine (install bubblewrap)")
    limits = sandbox.Limits(memory_mb=512, processes=64)
    lake = tmp_path / "real-lake"
    lake.write_text("#!/bin/sh\nexit 0\n")
    lake.chmod(0o755)
    with ThreadPoolExecutor(max_workers=16) as pool:
        paths = list(
            pool.map(lambda _: sandbox.confining_lake(str(lake), "auto", limits, tmp_path / "cache"), range(64))
        )
    assert len(set(paths)) == 1 and sandbox.is_confining(paths[0])
    assert not list((tmp_path / "cache").rglob("*.tmp"))
