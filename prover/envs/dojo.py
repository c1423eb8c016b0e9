"""The LeanDojo backend: real Lean 4 through ``lean_dojo.Dojo``, one session per theorem.

This is the only module that imports ``lean_dojo``, and it does so lazily, so the rest of
the code imports and runs without it. ``DojoEnv`` adapts LeanDojo to the engine:

- LeanDojo's results (``TacticState``, ``ProofFinished``, ``LeanError``, ``ProofGivenUp``)
  become the engine's outcome types of the same names;
- start-up and tactics have separate time limits. ``Dojo(theorem, timeout=...)`` uses its
  one timeout both for Lean's start (elaborating the theorem's file up to the theorem,
  minutes for a late theorem of a big file) and for each tactic, so the Dojo is entered
  with ``startup_timeout_s`` and then its process gets ``tactic_timeout_s`` (pexpect's
  ``expect`` reads ``proc.timeout`` on every call). Restarts and the re-check start with
  the start-up allowance too. The engine starts the search budget once ``start`` returns;
- after a ``DojoTacticTimeoutError`` the session is restarted and the tactic path to the
  state is replayed, because after one timeout every later tactic of that session times
  out too (LeanDojo issue #218); the timeout itself is reported as ``EnvTimeoutError``;
- after a ``DojoCrashError`` the session is restarted, the path replayed and the tactic
  retried, up to ``max_crash_retries`` times, then ``EnvCrashError`` ends the search;
- a ``DojoInitError``, or a crash while Lean starts, becomes ``EnvInitError`` (the
  theorem is an ERROR result; during a restart, another restart is tried);
- ``check_proof`` re-checks a found proof from scratch: ``check_file`` compiles the
  theorem's file with the proof in place and a ``#print axioms`` line, and rejects any
  error, ``sorry`` or axiom beyond ``propext``, ``Classical.choice`` and ``Quot.sound``
  (``native_decide`` brings ``Lean.ofReduceBool``). No fresh Dojo session replays the
  tactics first: the compile elaborates them again and the kernel checks the whole term,
  so the replay added a Lean start-up and caught nothing more.

Tracing happens once, ahead of any search. ``Dojo`` traces a repository that is not in
LeanDojo's cache (tens of minutes for miniF2F, and LeanDojo refuses to trace with several
processes inside Ray), so ``prover setup-lean`` traces the miniF2F checkout in the driver
(``trace_checkout``), and ``prove-split``/``attack --env dojo`` call ``require_traced``
before starting any search, which stops with one sentence naming ``prover setup-lean``.

Theorems are addressed as LeanDojo expects: ``LeanGitRepo(repo_url, commit)``,
``file_path``, ``full_name``. miniF2F theorems carry the local checkout made by
``prover setup-lean`` as ``repo_url`` (see ``prover.theorem_sets``), so no process asks
GitHub anything: LeanDojo reads a local repository with git. ``import_lean_dojo`` sets
``DISABLE_REMOTE_CACHE`` before the import, because with a cache miss LeanDojo otherwise
asks dl.fbaipublicfiles.com, which holds only GitHub repositories, and an offline machine
fails there (``url_exists`` catches only HTTP errors). Typed-in statements are not
supported here (LeanDojo reads theorems from traced repositories); ``--env repl`` takes them.

LeanDojo changes the working directory of the whole process (``os.chdir`` in
``lean_dojo.utils.working_directory``): ``Dojo.__enter__`` spawns Lean inside one, and
``LeanGitRepo`` copies a local repository inside another. Two threads doing so at once
spawn Lean in the wrong directory (``DojoInitError: Unexpected EOF``) and leave the
process's directory inside LeanDojo's cache (reproduced: 4 threads x 3 starts on the
stand-in toolchain, every time). So those calls hold ``LEAN_DOJO_LOCK``. ``run_tac`` only
talks to its own process and takes no lock (the same test runs tactics in some threads
while others start); ``check_file`` compiles with an explicit ``cwd`` and takes none
either. As ``Dojo.__enter__`` also waits for Lean's start-up under the lock, searches
sharing a process start Lean one after another: ``benchmarks/dojo_concurrency.py``
measured 4 threads of one process at 2.1x the wall time of 4 one-search processes when
start-up dominates (1 s starts, short searches) and 1.04x when tactics dominate, the
usual case of a real run (starts of seconds to a minute, searches of minutes). So Ray
runs Lean searches one per worker process by default (``prover.run.cluster.plan_workers``);
with ``--num-workers`` and ``--searches-per-worker`` they share processes, safely.

    env = DojoEnv(tactic_timeout_s=60, startup_timeout_s=600)
    state = env.start(theorem)
    outcome = env.run_tactic(state, "norm_num")
    env.close()
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from search import (
    EnvCrashError,
    EnvError,
    EnvInitError,
    LeanError,
    Outcome,
    ProofFinished,
    ProofGivenUp,
    TacticState,
    Theorem,
    proof_text,
)

from prover.envs import replay_check
from prover.envs.lean import LeanConfig, git_head, require_lake
from prover.envs.sandbox import Limits, confine_lake_on_path
from prover.envs.session import RestartingSession
from prover.errors import MissingDependencyError, ProverError

# Held around every LeanDojo call that changes the process's working directory; see the
# module docstring. Re-entrant, so a caller may hold it around a group of such calls.
LEAN_DOJO_LOCK = threading.RLock()

# The axioms a kernel-checked proof may use; anything else (Lean.ofReduceBool from
# native_decide, Lean.trustCompiler, sorryAx, an `axiom` of the file) fails the re-check.
STANDARD_AXIOMS = ("propext", "Classical.choice", "Quot.sound")
_AXIOMS_LINE = re.compile(
    r"'(?P<name>[^\n]+?)' (?:depends on axioms: \[(?P<axioms>[^\]]*)\]|does not depend on any axioms)"
)
_SORRY_WARNING = re.compile(r"(?P<line>\d+):\d+:\s+warning:\s+declaration uses 'sorry'")
_ERROR_LINE = re.compile(r":\d+:\d+: error: ")


def import_lean_dojo():
    """The ``lean_dojo`` module, or a MissingDependencyError that says how to get it.

    LeanDojo reads its settings once, at import; ``DISABLE_REMOTE_CACHE`` is set first
    (see the module docstring).
    """
    os.environ.setdefault("DISABLE_REMOTE_CACHE", "1")
    # With GITHUB_ACCESS_TOKEN set, LeanDojo logs in to GitHub's API as it is imported, in
    # every process (and an offline one fails to import): hide it; only tracing needs it,
    # and ``github_for_tracing`` gives tracing an authenticated client.
    token = os.environ.pop("GITHUB_ACCESS_TOKEN", None)
    try:
        import lean_dojo
    except ImportError as exc:
        raise MissingDependencyError(
            f"the dojo environment needs LeanDojo ({exc}); install it with `pip install lean-dojo==4.20.0`"
        ) from None
    except Exception as exc:  # lean_dojo checks git and reads its settings on import
        raise MissingDependencyError(
            f"LeanDojo failed to load ({type(exc).__name__}: {exc}); it needs git >= 2.25 and a valid "
            "TACTIC_MEMORY_LIMIT such as `32g`"
        ) from None
    finally:
        if token is not None:
            os.environ["GITHUB_ACCESS_TOKEN"] = token
    return lean_dojo


def github_for_tracing() -> Any:
    """LeanDojo's GitHub client, logged in with ``GITHUB_ACCESS_TOKEN`` when that is set (as
    LeanDojo would have done at import, which ``import_lean_dojo`` prevents): tracing asks
    GitHub for the Lean toolchain's commit. Searches never call it."""
    import_lean_dojo()
    import lean_dojo.data_extraction.lean as lean_module

    token = os.environ.get("GITHUB_ACCESS_TOKEN")
    if token and lean_module.GITHUB.requester.auth is None:
        from github import Auth, Github

        lean_module.GITHUB = Github(auth=Auth.Token(token))
    return lean_module.GITHUB


# -- LeanDojo's cache: tracing once, checking before a run --------------------------------------


def cache_entry(repo_url: str, commit: str) -> Path:
    """Where LeanDojo keeps (or would keep) the traced ``repo_url`` at ``commit``:
    ``$CACHE_DIR/<user>-<repo>-<commit>/<repo>`` for GitHub, ``gitpython-<repo>-<commit>``
    for a local checkout. Reads nothing over the network."""
    import_lean_dojo()
    from lean_dojo.constants import CACHE_DIR
    from lean_dojo.data_extraction.lean import _format_cache_dirname

    if "://" not in repo_url and not repo_url.startswith("git@"):
        repo_url = os.path.abspath(repo_url)  # what LeanGitRepo does to a local path
    name = os.path.basename(repo_url.rstrip("/"))
    return Path(CACHE_DIR) / _format_cache_dirname(repo_url, commit) / name


def traced(repo_url: str, commit: str) -> bool:
    """Whether LeanDojo's cache holds ``repo_url`` at ``commit``, traced for Dojo."""
    if "://" not in repo_url and not (Path(repo_url) / ".git").exists():
        return False  # a local checkout that is gone cannot be addressed either
    return (cache_entry(repo_url, commit) / "Lean4Repl.lean").is_file()


def require_traced(theorems: Iterable[Theorem]) -> None:
    """Raise a ProverError, naming ``prover setup-lean``, unless LeanDojo's cache holds the
    repository of every theorem; the CLI calls it before any search starts. Without Lean
    at all, it says what ``--env repl`` says: `lake` is missing (``require_lake``)."""
    from prover.envs.lean import require_lake

    require_lake()
    seen: set[tuple[str, str]] = set()
    for theorem in theorems:
        if not theorem.repo_url:
            raise ProverError(
                f"'{theorem.name}' has no repository address; --env dojo proves theorems of a repository that "
                "`prover setup-lean` traced (for a typed-in statement use --env repl)"
            )
        key = (theorem.repo_url, theorem.commit)
        if key in seen:
            continue
        seen.add(key)
        if not traced(*key):
            from lean_dojo.constants import CACHE_DIR

            raise ProverError(
                f"LeanDojo has not traced {theorem.repo_url} at {theorem.commit[:12] or '(no commit)'} "
                f"(it is not in its cache {CACHE_DIR}); run `prover setup-lean` first"
            )


def trace_into_cache(repo: Any) -> Path:
    """LeanDojo's own tracing of ``repo`` (a ``LeanGitRepo``) into its cache, without its
    dependencies (tracing Mathlib too takes hours and ~100 GB and serves only premise
    retrieval, which this prover does not do). It clones the repository into a temporary
    directory, runs ``lake exe cache get`` and ``lake build`` there, extracts every file's
    AST, builds ``Lean4Repl``, and looks up the Lean toolchain's commit through the GitHub
    API (``TracedRepo.from_traced_files``): the one network call, made here, in set-up."""
    github_for_tracing()
    from lean_dojo.data_extraction.trace import get_traced_repo_path

    return get_traced_repo_path(repo, build_deps=False)


def trace_checkout(checkout: str | Path, echo: Callable[[str], None] = print) -> Path:
    """Trace a local git checkout at its HEAD into LeanDojo's cache (``trace_into_cache``),
    in this process, with progress; returns the traced copy. A no-op when traced."""
    checkout = Path(checkout).resolve()
    commit = git_head(checkout)
    if traced(str(checkout), commit):
        echo(f"LeanDojo has traced {checkout.name} at {commit[:12]} already: {cache_entry(str(checkout), commit)}")
        return cache_entry(str(checkout), commit)
    ld = import_lean_dojo()
    echo(
        f"tracing {checkout} at {commit[:12]} with LeanDojo into {cache_entry(str(checkout), commit).parent} "
        "(for miniF2F: tens of minutes and a few GB; LeanDojo logs its steps below)"
    )
    started = time.monotonic()
    try:
        repo = ld.LeanGitRepo(str(checkout), commit)
        path = Path(trace_into_cache(repo))
    except Exception as exc:
        raise ProverError(
            f"LeanDojo could not trace {checkout} ({type(exc).__name__}: {exc}); see its log above"
        ) from None
    echo(f"traced in {time.monotonic() - started:.0f} s: {path}")
    return path


# -- the re-check: the whole file with the proof in place, and its axioms -------------------------


def check_file(theorem: Any, proof: str, timeout_s: float | None = None) -> str | None:
    """Compile ``theorem``'s file (a ``lean_dojo.Theorem``) in its traced repository with
    ``proof`` in place and ``#print axioms`` after it, through ``lake env lean``: None when
    Lean accepts it with no ``sorry`` and only the standard axioms, else why not.

    The file is built as ``lean_dojo.check_proof`` builds it (the code before the theorem
    without comments, ``set_option maxHeartbeats 0 in``, the statement, the proof, the rest
    of the file), so a proof found in a Dojo session is checked under the same options.
    """
    import_lean_dojo()
    from lean_dojo.constants import TACTIC_CPU_LIMIT, TACTIC_MEMORY_LIMIT
    from lean_dojo.data_extraction.traced_data import TracedFile, get_code_without_comments
    from lean_dojo.utils import to_json_path

    root = cache_entry(theorem.repo.url, theorem.repo.commit)
    if not (root / "Lean4Repl.lean").is_file():
        return f"{theorem.repo.url} is not traced in LeanDojo's cache; run `prover setup-lean`"
    try:
        traced_file = TracedFile.from_traced_file(
            root, to_json_path(root, theorem.file_path, theorem.repo), theorem.repo
        )
    except FileNotFoundError:
        return f"LeanDojo's cache has no *.ast.json for {theorem.file_path}"
    traced_theorem = traced_file.get_traced_theorem(theorem)
    if traced_theorem is None:
        return f"no theorem named {theorem.full_name} in {theorem.file_path}"
    proof_start, proof_end = traced_theorem.locate_proof()
    lean_file = traced_file.lean_file
    before = get_code_without_comments(lean_file, lean_file.start_pos, traced_theorem.start, traced_file.comments)
    statement = get_code_without_comments(lean_file, traced_theorem.start, proof_start, traced_file.comments).strip()
    if not statement.endswith(":="):
        statement += " := "
    code = "import Lean4Repl\n" + before + "\n\nset_option maxHeartbeats 0 in\n"
    first_line = code.count("\n") + 1
    code += statement + f"{proof}\n"
    last_line = code.count("\n") + 1
    code += f"\n#print axioms {theorem.full_name}\n" + lean_file[proof_end:]

    with tempfile.NamedTemporaryFile(
        "w",
        encoding="utf-8",
        prefix=f"{theorem.file_path.stem}_check_",
        suffix=".lean",
        dir=traced_file.abs_path.parent,
        delete=True,
    ) as modified:
        modified.write(code)
        modified.flush()
        command = [
            "lake",
            "env",
            "lean",
            f"--threads={TACTIC_CPU_LIMIT}",
            f"--memory={1024 * int(TACTIC_MEMORY_LIMIT[:-1])}",
            str(Path(modified.name).relative_to(root)),
        ]
        try:
            done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return f"compiling the file with the proof in place ran past {timeout_s:g} s"
    output = done.stdout + done.stderr
    if done.returncode != 0:
        errors = [line for line in output.splitlines() if _ERROR_LINE.search(line)]
        return f"Lean rejected the file with the proof in place: {(errors or output.splitlines() or ['no output'])[0]}"
    for match in _SORRY_WARNING.finditer(output):
        if first_line <= int(match.group("line")) <= last_line:
            return "the proof uses `sorry`"
    return axioms_problem(output, theorem.full_name)


def axioms_problem(output: str, full_name: str) -> str | None:
    """Why Lean's ``#print axioms`` output for ``full_name`` is not acceptable, or None."""
    for match in _AXIOMS_LINE.finditer(output):
        if match.group("name").replace("«", "").replace("»", "") != full_name:
            continue
        axioms = [a.strip() for a in (match.group("axioms") or "").split(",") if a.strip()]
        extra = [a for a in axioms if a not in STANDARD_AXIOMS]
        if extra:
            return (
                f"the proof depends on the axiom{'s' * (len(extra) > 1)} {', '.join(extra)}, beyond "
                f"{', '.join(STANDARD_AXIOMS[:-1])} and {STANDARD_AXIOMS[-1]}"
            )
        return None
    return f"Lean printed no axioms of {full_name}, so they could not be checked"


# -- the environment -------------------------------------------------------------------------------

_DEFAULT: Any = object()  # "use the default checker", distinct from None ("none at all")
_REPOS: dict[tuple[str, str], Any] = {}  # (url, commit) -> LeanGitRepo, built once per process


class DojoEnv(RestartingSession):
    """LeanDojo as a ``ProofEnv``; see the module docstring.

    ``dojo_factory`` (default ``lean_dojo.Dojo``) is called as
    ``dojo_factory(lean_dojo_theorem, timeout=startup_seconds, build_deps=...)`` and must
    return a context manager whose ``__enter__`` gives ``(dojo, initial_state)``; tests
    pass a fake. ``repo_factory`` (default ``lean_dojo.LeanGitRepo``) likewise;
    ``proof_checker(lean_dojo_theorem, proof)`` (default ``check_file``; None turns the
    whole-file check off) returns None or why the proof is not accepted.
    """

    def __init__(
        self,
        tactic_timeout_s: float = 60.0,
        startup_timeout_s: float = 600.0,
        max_crash_retries: int = 2,
        dojo_factory: Callable[..., Any] | None = None,
        repo_factory: Callable[[str, str], Any] | None = None,
        proof_checker: Callable[[Any, str], str | None] | None = _DEFAULT,
        trace_dependencies: bool = False,
    ):
        super().__init__(tactic_timeout_s, max_crash_retries)
        self._ld = import_lean_dojo()
        self.startup_timeout_s = startup_timeout_s
        self.dojo_factory = dojo_factory or self._ld.Dojo
        self.repo_factory = repo_factory or self._ld.LeanGitRepo
        if proof_checker is _DEFAULT:
            proof_checker = lambda theorem, proof: check_file(theorem, proof, timeout_s=startup_timeout_s)  # noqa: E731
        self.proof_checker = proof_checker
        # Tracing Mathlib too (LeanDojo's default) takes hours and ~100 GB, and serves only
        # premise retrieval, which this prover does not do: trace the theorem's repo alone.
        self.trace_dependencies = trace_dependencies
        self._theorem: Any = None  # lean_dojo.Theorem of the current session
        self._context: Any = None  # the Dojo context manager, to exit on close
        self._dojo: Any = None

    # -- the ProofEnv protocol -------------------------------------------------------------

    def start(self, theorem: Theorem) -> TacticState:
        """Open a session on ``theorem``; EnvInitError when LeanDojo cannot start it."""
        self.close()
        self._theorem = self._dojo_theorem(theorem)
        _, initial = self._open_session()
        self._begin(initial.pp, initial)
        return TacticState(initial.pp, initial.message or "")

    def check_proof(self, theorem: Theorem, tactics: Sequence[str]) -> str | None:
        """Re-check ``tactics`` from scratch: None when they prove ``theorem``, else why not.

        ``proof_checker`` compiles the whole file with the proof in place and ``#print
        axioms`` after it: Lean elaborates every tactic again, the kernel checks the complete
        proof term, and the axioms are listed. That is the re-check; a replay of the tactics
        in a fresh LeanDojo session first would only repeat a weaker part of it (an error, a
        goal left open, a tactic after the proof is finished all fail the compile too) at the
        price of one more Lean start-up, so there is none. Without a ``proof_checker`` the
        replay in a fresh session is the re-check (run again when Lean crashes or stalls, up
        to ``max_crash_retries`` times).
        """
        if not tactics:
            return "the proof has no tactics"
        try:
            ld_theorem = self._dojo_theorem(theorem)
        except EnvInitError as exc:
            return f"the theorem could not be started for the re-check: {exc}"
        if self.proof_checker is not None:
            self.close()  # the search's Lean process is not needed while the file compiles
            try:
                return self.proof_checker(ld_theorem, proof_text("", tactics))
            except Exception as exc:
                return f"the whole-file check could not run: {type(exc).__name__}: {exc}"
        for attempt in range(1 + self.max_crash_retries):
            try:
                return replay_check(self, theorem, tactics)
            except EnvError as exc:  # Lean crashed, stalled or could not start: not the proof's fault
                failure = f"{type(exc).__name__}: {exc}"
        return f"the re-check's Lean session failed {1 + self.max_crash_retries} times (last: {failure})"

    def close(self) -> None:
        """Exit the Dojo context, which kills the Lean process; safe to call twice."""
        context, self._context, self._dojo = self._context, None, None
        self._live = {}
        if context is not None:
            _exit_quietly(context)

    # -- sessions ---------------------------------------------------------------------------

    def _dojo_theorem(self, theorem: Theorem) -> Any:
        if not theorem.repo_url:
            raise EnvInitError(
                f"'{theorem.name}' has no repository address; --env dojo proves theorems of a traced repository "
                "(for a typed-in statement use --env repl)"
            )
        if not (theorem.commit and theorem.file_path):
            raise EnvInitError(f"'{theorem.name}' lacks a commit or file path for LeanDojo")
        key = (theorem.repo_url, theorem.commit)
        try:
            with LEAN_DOJO_LOCK:  # LeanGitRepo copies a local repository in a temporary working directory
                if key not in _REPOS:
                    _REPOS[key] = self.repo_factory(theorem.repo_url, theorem.commit)
            return self._ld.Theorem(_REPOS[key], theorem.file_path, theorem.full_name or theorem.name)
        except Exception as exc:  # unknown commit, not a git repository, ...
            raise EnvInitError(f"LeanDojo cannot address {theorem.repo_url}@{theorem.commit[:12]}: {exc}") from None

    def _open_session(self) -> tuple[str, Any]:
        """Enter a new Dojo context for the current theorem: (its initial goal, its state)."""
        context = self.dojo_factory(self._theorem, timeout=self.startup_timeout_s, build_deps=self.trace_dependencies)
        try:
            with LEAN_DOJO_LOCK:  # Dojo.__enter__ spawns Lean inside os.chdir
                dojo, initial = context.__enter__()
        except Exception as exc:
            _exit_quietly(context)  # Dojo.__enter__ may fail after it spawned Lean
            if isinstance(exc, self._ld.DojoInitError):
                raise EnvInitError(str(exc) or "LeanDojo could not initialise the theorem") from None
            if isinstance(exc, self._ld.DojoCrashError):  # an init error, so a restart tries again
                raise EnvInitError(f"Lean crashed while starting: {exc}") from None
            # tracing failed, Lean4Repl missing, `lake` missing, ...
            raise EnvInitError(f"{type(exc).__name__}: {exc}") from None
        process = getattr(dojo, "proc", None)
        if process is not None:  # from now on each expect() waits a tactic's time, not the start-up's
            process.timeout = self.tactic_timeout_s
        self._context, self._dojo = context, dojo
        return initial.pp, initial

    def _session_is_open(self) -> bool:
        return self._dojo is not None

    def _timeout_errors(self) -> tuple[type[BaseException], ...]:
        return (self._ld.DojoTacticTimeoutError,)

    def _step(self, handle: Any, tactic: str) -> tuple[Outcome, Any]:
        """One ``run_tac``, its LeanDojo result mapped onto the engine's outcome types."""
        ld = self._ld
        result = self._dojo.run_tac(handle, tactic)
        if isinstance(result, ld.TacticState):
            return TacticState(result.pp, result.message or ""), result
        if isinstance(result, ld.ProofFinished):
            return ProofFinished(result.tactic_state_id, result.message or ""), None
        if isinstance(result, ld.LeanError):
            return LeanError(result.error), None
        if isinstance(result, ld.ProofGivenUp):
            return ProofGivenUp(), None
        raise EnvCrashError(f"LeanDojo returned an unknown result {type(result).__name__}")


def _exit_quietly(context: Any) -> None:
    """Exit a Dojo context, which kills its Lean process; one that never started is fine."""
    try:
        context.__exit__(None, None, None)
    except Exception:
        pass  # e.g. no process was spawned, or it is already gone


@dataclass(frozen=True)
class DojoConfig(LeanConfig):
    pass


def build(config: DojoConfig) -> DojoEnv:
    """A ``DojoEnv`` (needs lean-dojo and ``lake``)."""
    require_lake()
    # LeanDojo reads its per-process memory limit once, at import, from this variable.
    os.environ.setdefault("TACTIC_MEMORY_LIMIT", f"{max(1, math.ceil(config.memory_limit_mb / 1024))}g")
    # LeanDojo's `lake env lean` (search and re-check) finds a `lake` that confines Lean first on PATH.
    confine_lake_on_path(config.sandbox, Limits(config.memory_limit_mb, processes=config.max_lean_processes))
    return DojoEnv(tactic_timeout_s=config.tactic_timeout_s, startup_timeout_s=config.startup_timeout_s)
