"""A stand-in Lean toolchain at the process boundary, for tests without Lean.

``install(tmp_path)`` writes executables named ``lake`` and ``lean`` (and a Lean REPL
binary) that speak the real wire protocols of Lean v4.20.0, Lake, LeanDojo 4.20.0's
``Lean4Repl`` and the Lean REPL as lean-interact 0.11.6 drives it, answering from recorded
real Lean steps. The real ``lean_dojo`` and ``lean_interact`` code runs against them
unchanged: only ``PATH``, environment variables and configured paths differ.

    env = install(tmp_path, traces=trace_file)          # -> environment variables to use
    monkeypatch.setenv("PATH", env["PATH"]) ...         # or subprocess.run(..., env=env)
    config = LeanREPLConfig(project=LocalProject(directory=project, auto_build=False),
                            local_repl_path=env["LEAN_STANDIN_REPL_DIR"],
                            lake_path=env["LEAN_STANDIN_LAKE"])

What the processes know comes from JSONL trace records (``tactic_traces.jsonl`` fields:
theorem, state_before, tactic, state_after, error, proof_finished, step, proof_status): a
theorem's initial goal is the ``state_before`` of its first recorded step (found by its
name, or, for records whose ``theorem`` is a whole declaration, by its signature), and a
tactic does what the record of (state, tactic) says. A tactic with no record at a state is
an error as Lean gives it: ``unknown tactic`` for a tactic name that no record and no
Lean/Mathlib tactic has, else ``tactic 'NAME' failed ...``. ``sorry`` closes the main goal
everywhere. See ``model.py`` for the rules and ``toolchain.py`` for the commands served.

Environment variables. ``install`` sets the paths (``PATH`` to ``LEAN_STANDIN_LOG``, and
``LEAN_STANDIN_KNOBS_FILE``) and, from its keyword arguments named in brackets, the knobs.
A process reads the variables when it starts and the knobs file before every answer:

- ``PATH``: the stand-in's ``bin`` directory first.
- ``LEAN_STANDIN_*`` variables that a process does not have come from
  ``$LEAN_STANDIN_HOME/environment.json``, written by ``install``: a process started
  without the test's environment (a Ray worker of a cluster started earlier) behaves as
  installed, given the tools by absolute path.
- ``LEAN_STANDIN_HOME``: its directory (``bin/``, ``toolchain/`` printed by
  ``lean --print-prefix``, ``repl/`` with ``lean-toolchain`` and ``.lake/build/bin/repl``).
- ``LEAN_STANDIN_REPL_DIR``, ``LEAN_STANDIN_LAKE``: the REPL directory to pass as
  lean-interact's ``local_repl_path``, and the ``lake`` executable for ``lake_path``.
- ``LEAN_STANDIN_TRACES``: the trace file(s) to answer from (``os.pathsep``-separated).
- ``LEAN_STANDIN_LOG``: a file to which every invocation appends one JSON line
  ``{"tool", "argv", "cwd", "pid"}`` (see ``read_log``).
- ``LEAN_STANDIN_STARTUP_DELAY_S`` [startup_delay_s]: seconds before the first ``REPL>``
  line (LeanDojo) or before the first answer (REPL).
- ``LEAN_STANDIN_TACTIC_DELAY_S`` [tactic_delay_s]: seconds before each tactic is answered
  (to run past a timeout); with ``LEAN_STANDIN_SLOW_TACTIC`` [slow_tactic] set, only that
  tactic is slow.
- ``LEAN_STANDIN_CRASH_AFTER=N`` [crash_after]: the process exits abruptly, without an
  answer, when tactic request N+1 arrives (each process counts its own);
  ``LEAN_STANDIN_CRASH_TACTIC`` [crash_tactic]: it exits so when asked for that tactic;
  ``LEAN_STANDIN_CRASH_EXIT_CODE`` [crash_exit_code]: its exit status (default 1; 137 is
  what LeanDojo calls OOM; a negative value -S kills the process with signal S);
  ``LEAN_STANDIN_CRASH_ONCE=PATH`` [crash_once]: crash only while PATH does not exist,
  and create it when crashing (so only the first process crashes).
- ``LEAN_STANDIN_CRASH_PROB`` [crash_prob], ``LEAN_STANDIN_SLOW_PROB`` [slow_prob],
  ``LEAN_STANDIN_FAULT_SEED`` [fault_seed]: random faults, one draw per tactic request
  from a generator seeded by (seed, process id), so each restarted process meets fresh
  faults: a crash (as above) with ``crash_prob``, else with ``slow_prob`` the
  ``tactic_delay_s`` delay (with ``slow_prob`` set, only drawn tactics are slow).
- ``LEAN_STANDIN_HOSTILE`` [hostile]: tactics that really do harm (connect, write outside,
  spawn processes, allocate, sleep for ever); see ``hostile.py``.
- ``PROVER_SANDBOX_WRITABLE``: ``install`` sets it to ``tmp_path``, so a sandboxed stand-in
  may write its log and crash markers there (``prover/envs/sandbox.py``).
- What Lean costs (``costs.py`` describes them): [import_delay_s], [import_memory_mb],
  [command_delay_s], [command_memory_mb], [tactic_cost_s], [slow_fraction], and when
  Lean's heartbeat limit stops a slow REPL proof step [heartbeat_s]; every cost
  paid is logged to ``$LEAN_STANDIN_HOME/costs.jsonl`` (``read_costs``), and a process
  past its ``RLIMIT_AS`` dies as Lean does.
- ``LEAN_STANDIN_KNOBS_FILE``: a JSON object keyed by the bracketed names of the
  knobs above, overriding them (``install`` names the file, ``set_knobs`` writes it);
  running processes re-read it before every answer, so a test can make a tactic slow or
  crash halfway through a session.
- ``LEAN_STANDIN_NO_DEFAULT_TOOLCHAIN=1`` [no_default_toolchain]: elan installed with no
  default toolchain: ``lake``/``lean`` run where no ``lean-toolchain`` file is found in the
  working directory or above exit 1 with elan's ``error: no default toolchain configured.
  ...``, unless ``ELAN_TOOLCHAIN`` is set.
- ``LEAN_STANDIN_LEAN_VERSION`` [lean_version]: the Lean version printed (``4.20.0``).
- ``--memory``/``--threads`` arguments and lean-interact's memory limit are accepted and
  otherwise ignored.

LeanDojo reads ``CACHE_DIR``, ``DISABLE_REMOTE_CACHE`` and ``NUM_PROCS`` once, when it is
imported; ``lean_dojo_env`` gives values that keep it offline and in one process, and
``dojo_driver.py`` runs LeanDojo in a fresh interpreter so they take effect.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterable

from tests.lean_standin.costs import read_costs  # noqa: F401 (part of the package's API)
from tests.lean_standin.model import KNOB_VARIABLES

HERE = Path(__file__).resolve().parent
LEAN_TOOLCHAIN = "leanprover/lean4:v4.20.0"

KNOBS = {
    **KNOB_VARIABLES,
    "no_default_toolchain": "LEAN_STANDIN_NO_DEFAULT_TOOLCHAIN",
    "lean_version": "LEAN_STANDIN_LEAN_VERSION",
}


def _wrapper(tool: str, home: Path) -> str:
    return (
        "#!/bin/sh\n"
        f"# Lean stand-in `{tool}` (tests/lean_standin); runs the interpreter the tests run under.\n"
        f'LEAN_STANDIN_HOME="${{LEAN_STANDIN_HOME:-{home}}}"; export LEAN_STANDIN_HOME\n'
        f'exec "{sys.executable}" -S -X utf8 "{HERE / "toolchain.py"}" {tool} "$@"\n'
    )


def install(
    tmp_path: str | os.PathLike,
    traces: str | os.PathLike | Iterable[str | os.PathLike] | None = None,
    log: bool = True,
    **knobs: object,
) -> dict[str, str]:
    """Write the stand-in toolchain under ``tmp_path/lean-standin``; returns the environment
    to run with: ``os.environ`` plus ``PATH`` and the ``LEAN_STANDIN_*`` variables above.

    ``knobs`` are the variables' lower-case short names (``tactic_delay_s=3``,
    ``crash_after=1``, ``no_default_toolchain=True``, ...); False/None leave one unset.
    """
    home = Path(tmp_path) / "lean-standin"
    bin_dir = home / "bin"
    repl_dir = home / "repl"
    for directory in (bin_dir, repl_dir / ".lake/build/bin", home / "toolchain/lib/lean", home / "toolchain/bin"):
        directory.mkdir(parents=True, exist_ok=True)
    for tool in ("lake", "lean"):
        script = bin_dir / tool
        script.write_text(_wrapper(tool, home))
        script.chmod(0o755)
    repl_binary = repl_dir / ".lake/build/bin/repl"
    repl_binary.write_text(_wrapper("repl", home))
    repl_binary.chmod(0o755)
    (repl_dir / "lean-toolchain").write_text(LEAN_TOOLCHAIN + "\n")
    (repl_dir / "lakefile.lean").write_text(
        "import Lake\nopen Lake DSL\n\npackage REPL\n\n@[default_target]\nlean_exe repl where\n  root := `REPL.Main\n"
    )
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("LEAN_STANDIN_"):
            del env[name]
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["LEAN_STANDIN_HOME"] = str(home)
    env["LEAN_STANDIN_REPL_DIR"] = str(repl_dir)
    env["LEAN_STANDIN_LAKE"] = str(bin_dir / "lake")
    if traces is not None:
        paths = [traces] if isinstance(traces, (str, os.PathLike)) else list(traces)
        env["LEAN_STANDIN_TRACES"] = os.pathsep.join(str(Path(p).resolve()) for p in paths)
    if log:
        env["LEAN_STANDIN_LOG"] = str(home / "invocations.jsonl")
    env["LEAN_STANDIN_KNOBS_FILE"] = str(home / "knobs.json")
    # The sandboxed stand-in writes its log and crash markers here (prover/envs/sandbox.py).
    env["PROVER_SANDBOX_WRITABLE"] = str(Path(tmp_path).resolve())
    (home / "knobs.json").unlink(missing_ok=True)
    for key, value in knobs.items():
        if key not in KNOBS:
            raise TypeError(f"unknown stand-in knob {key!r}; known: {', '.join(sorted(KNOBS))}")
        if value is None or value is False:
            continue
        env[KNOBS[key]] = "1" if value is True else str(value)
    installed = {k: v for k, v in env.items() if k.startswith("LEAN_STANDIN_")}
    (home / "environment.json").write_text(json.dumps(installed, indent=1), encoding="utf-8")
    return env


# Synthetic records (not real Lean output), for the tests' `#print axioms` checks only:
# native_decide, the trusted compiler, and a proof with no axioms.
SYNTHETIC_RECORDS = [
    {
        "theorem": "theorem standin_native : 2 ^ 10 = 1024 := by sorry",
        "state_before": "⊢ 2 ^ 10 = 1024",
        "tactic": "native_decide",
        "state_after": "no goals",
        "proof_finished": True,
        "source": "synthetic",
    },
    {
        "theorem": "theorem standin_rfl : 2 + 2 = 4 := by sorry",
        "state_before": "⊢ 2 + 2 = 4",
        "tactic": "rfl",
        "state_after": "no goals",
        "proof_finished": True,
        "source": "synthetic",
    },
    {
        "theorem": "theorem standin_trust : True := by sorry",
        "state_before": "⊢ True",
        "tactic": "exact Lean.trustCompiler",
        "state_after": "no goals",
        "proof_finished": True,
        "source": "synthetic",
    },
]


def set_knobs(env: dict[str, str], **knobs: object) -> None:
    """Change the knobs of running and future stand-in processes (short names as for
    ``install``; None clears one); writes ``$LEAN_STANDIN_KNOBS_FILE`` atomically."""
    path = Path(env["LEAN_STANDIN_KNOBS_FILE"])
    current = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    for key, value in knobs.items():
        if key not in KNOBS or key in ("no_default_toolchain", "lean_version"):
            raise TypeError(f"{key!r} is not a knob a running process re-reads")
        current[key] = value
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(current), encoding="utf-8")
    partial.replace(path)


def standin_variables(env: dict[str, str]) -> dict[str, str]:
    """The part of ``env`` that ``install`` added (for ``monkeypatch.setenv``)."""
    return {k: v for k, v in env.items() if k in ("PATH", "PROVER_SANDBOX_WRITABLE") or k.startswith("LEAN_STANDIN_")}


def lean_dojo_env(tmp_path: str | os.PathLike) -> dict[str, str]:
    """LeanDojo's settings for an offline, one-process run with its cache under ``tmp_path``:
    ``DISABLE_REMOTE_CACHE`` (else a cache miss asks dl.fbaipublicfiles.com) and
    ``NUM_PROCS=1`` (no Ray actors while tracing), ``TMP_DIR`` for its clones."""
    root = Path(tmp_path)
    (root / "lean-dojo-tmp").mkdir(parents=True, exist_ok=True)
    return {
        "CACHE_DIR": str(root / "lean-dojo-cache"),
        "DISABLE_REMOTE_CACHE": "1",
        "NUM_PROCS": "1",
        "TMP_DIR": str(root / "lean-dojo-tmp"),
        "TACTIC_MEMORY_LIMIT": "4g",
    }


def read_log(env: dict[str, str]) -> list[dict]:
    """Every stand-in invocation so far: ``{"tool", "argv", "cwd", "pid"}`` in order."""
    path = Path(env["LEAN_STANDIN_LOG"])
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_traces(path: str | os.PathLike, records: Iterable[dict]) -> Path:
    path = Path(path)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def minif2f_source(
    names: Iterable[str], statements_path: str | os.PathLike, proofs: dict[str, str] | None = None
) -> str:
    """A Lean file with the named miniF2F statements, each ``by sorry`` unless ``proofs``
    gives its proof text (what follows ``:=``)."""
    statements = {}
    with open(statements_path, encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            statements[record["name"]] = record
    proofs = proofs or {}
    parts = [
        "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\nopen BigOperators Real Nat Topology Rat\n"
    ]
    for name in names:
        statement = statements[name]["formal_statement"].rstrip()
        parts.append(f"\n{statement}{proofs.get(name, ' by sorry')}\n")
    return "".join(parts)


LAKEFILE = """import Lake
open Lake DSL

package «mini-minif2f» where

require mathlib from git
  "https://github.com/leanprover-community/mathlib4.git" @ "v4.20.0"

@[default_target]
lean_lib MiniF2F where
"""


def make_git_repo(
    path: str | os.PathLike, files: dict[str, str], toolchain: str = LEAN_TOOLCHAIN, lakefile: str = LAKEFILE
) -> str:
    """A one-commit git repository of a Lake package at ``path``; returns the commit hash."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    contents = {"lean-toolchain": toolchain + "\n", "lakefile.lean": lakefile, ".gitignore": ".lake/\n", **files}
    for relative, text in contents.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    def git(*args: str) -> str:
        done = subprocess.run(
            [
                "git",
                "-c",
                "user.name=stand-in",
                "-c",
                "user.email=stand-in@localhost",
                "-c",
                "init.defaultBranch=main",
                *args,
            ],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "a small Lean package for the stand-in toolchain")
    return git("rev-parse", "HEAD").strip()


def run_dojo_driver(ops: list[dict], env: dict[str, str], timeout_s: float = 120) -> list[dict]:
    """Run ``dojo_driver.py`` (the real ``lean_dojo`` in a fresh interpreter) on ``ops``."""
    done = subprocess.run(
        [sys.executable, str(HERE / "dojo_driver.py")],
        input=json.dumps(ops),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    marker = "DOJO_DRIVER_RESULT "
    answers = [line[len(marker) :] for line in done.stdout.splitlines() if line.startswith(marker)]
    if done.returncode != 0 or not answers:
        raise RuntimeError(f"dojo_driver.py failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(answers[-1])
