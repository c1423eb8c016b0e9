"""The LeanDojo backend: real Lean 4 through ``lean_dojo.Dojo``, one session per theorem.

This is the only module that imports ``lean_dojo``, and it does so lazily, so the rest of
the code imports and runs without it. ``DojoEnv`` adapts LeanDojo to the engine:

- LeanDojo's results (``TacticState``, ``ProofFinished``, ``LeanError``, ``ProofGivenUp``)
  become the engine's outcome types of the same names (``pp`` and ``id`` kept);
- each tactic runs under a time limit (``Dojo(theorem, timeout=...)``);
- after a ``DojoTacticTimeoutError`` the session is restarted and the tactic path to the
  state is replayed, because after one timeout every later tactic of that session times
  out too (LeanDojo issue #218); the timeout itself is reported as ``EnvTimeoutError``;
- after a ``DojoCrashError`` the session is restarted, the path replayed and the tactic
  retried, up to ``max_crash_retries`` times, then ``EnvCrashError`` ends the search;
- a ``DojoInitError`` becomes ``EnvInitError`` (the theorem is an ERROR result);
- ``check_proof`` re-checks a found proof from scratch: a fresh session runs the tactics
  in order, then ``lean_dojo.check_proof`` compiles the whole file with the proof in it.

Theorems are addressed as LeanDojo expects: ``LeanGitRepo(repo_url, commit)``,
``file_path``, ``full_name`` (miniF2F: see ``prover.benchmarks``). A theorem typed in as a
statement has no repository; it is written to ``LeanProver/Scratch/<name>.lean`` in a
small git repository under ``<lean_project>/.lake/prover-scratch`` (LeanDojo reads
theorems only from a commit of a git repository), committed, and traced from there.

    env = DojoEnv(lean_project="lean_project", tactic_timeout_s=60)
    state = env.start(theorem)
    outcome = env.run_tactic(state, "norm_num")
    env.close()
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from search import (
    EnvCrashError,
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
from prover.envs.lean import LeanConfig, require_lake
from prover.envs.session import RestartingSession
from prover.errors import MissingDependencyError

SCRATCH_DIR = Path(".lake") / "prover-scratch"  # under the Lean project
SCRATCH_PACKAGE = "LeanProverScratch"


def import_lean_dojo():
    """The ``lean_dojo`` module, or a MissingDependencyError that says how to get it."""
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
    return lean_dojo


def scratch_file_stem(name: str) -> str:
    """A Lean module name for a theorem name (module names must be ASCII identifiers here);
    a name that had to be changed gets a hash, so ``foo'`` and ``foo_`` do not clash."""
    stem = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not stem[:1].isalpha():
        stem = f"T_{stem}"
    if stem != name:
        stem += "_" + hashlib.blake2b(name.encode(), digest_size=4).hexdigest()
    return stem


class ScratchRepo:
    """A git repository for theorems typed in as statements, so LeanDojo can trace them.

    It copies the Lean project's toolchain and dependency pins, writes each statement to
    ``LeanProver/Scratch/<name>.lean`` as ``header + statement + " by sorry"`` and commits
    it; ``address(theorem)`` returns the theorem with ``repo_url``/``commit``/``file_path``.
    """

    def __init__(self, lean_project: str | Path, root: str | Path | None = None):
        self.lean_project = Path(lean_project)
        self.root = Path(root) if root else self.lean_project / SCRATCH_DIR

    def address(self, theorem: Theorem) -> Theorem:
        if not theorem.statement:
            raise EnvInitError(f"'{theorem.name}' has neither a repository address nor a statement")
        self._initialise()
        relative = Path("LeanProver") / "Scratch" / f"{scratch_file_stem(theorem.name)}.lean"
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        header = theorem.header.rstrip() + "\n\n" if theorem.header.strip() else ""
        path.write_text(f"{header}{theorem.statement.rstrip()} by sorry\n", encoding="utf-8")
        self._git("add", str(relative))
        if self._git("status", "--porcelain", "--", str(relative)).strip():
            self._git("commit", "-q", "-m", f"statement of {theorem.name}")
        commit = self._git("rev-parse", "HEAD").strip()
        return Theorem(
            theorem.name,
            statement=theorem.statement,
            header=theorem.header,
            repo_url=str(self.root.resolve()),
            commit=commit,
            file_path=str(relative),
            full_name=theorem.full_name or theorem.name,
        )

    def _initialise(self) -> None:
        if (self.root / ".git").exists():
            return
        toolchain = self.lean_project / "lean-toolchain"
        manifest = self.lean_project / "lake-manifest.json"
        if not toolchain.exists() or not manifest.exists():
            raise EnvInitError(f"{self.lean_project} is not the prover's Lean project (no lean-toolchain or lake-manifest.json)")
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(toolchain, self.root / "lean-toolchain")
        pins = json.loads(manifest.read_text(encoding="utf-8"))
        pins["name"] = SCRATCH_PACKAGE
        (self.root / "lake-manifest.json").write_text(json.dumps(pins, indent=1) + "\n", encoding="utf-8")
        mathlib = next((p for p in pins.get("packages", []) if p.get("name") == "mathlib"), None)
        require = (
            f'require mathlib from git "{mathlib["url"]}" @ "{mathlib.get("inputRev") or mathlib["rev"]}"\n'
            if mathlib
            else ""
        )
        # Every scratch file must be built: LeanDojo traces only files that `lake build` compiled.
        (self.root / "lakefile.lean").write_text(
            "import Lake\nopen Lake DSL\n\n"
            f"package {SCRATCH_PACKAGE}\n\n@[default_target]\nlean_lib LeanProver where\n"
            f"  globs := #[.submodules `LeanProver]\n\n{require}",
            encoding="utf-8",
        )
        (self.root / ".gitignore").write_text(".lake/\n", encoding="utf-8")
        self._git("init", "-q")
        self._git("add", "lean-toolchain", "lake-manifest.json", "lakefile.lean", ".gitignore")
        self._git("commit", "-q", "-m", "scratch project for typed-in statements")

    def _git(self, *args: str) -> str:
        command = ["git", "-c", "user.name=prover", "-c", "user.email=prover@localhost", *args]
        try:
            done = subprocess.run(command, cwd=self.root, capture_output=True, text=True, check=True)
        except FileNotFoundError:
            raise EnvInitError("git is not installed; LeanDojo needs it") from None
        except subprocess.CalledProcessError as exc:
            raise EnvInitError(f"`git {' '.join(args)}` failed in {self.root}: {exc.stderr.strip()}") from None
        return done.stdout


_DEFAULT: Any = object()  # "use LeanDojo's own", distinct from None ("none at all")
_REPOS: dict[tuple[str, str], Any] = {}  # (url, commit) -> LeanGitRepo; building one queries GitHub


class DojoEnv(RestartingSession):
    """LeanDojo as a ``ProofEnv``; see the module docstring.

    ``dojo_factory`` (default ``lean_dojo.Dojo``) is called as
    ``dojo_factory(lean_dojo_theorem, timeout=seconds, build_deps=...)`` and must return a
    context manager whose ``__enter__`` gives ``(dojo, initial_state)``; tests pass a fake.
    ``repo_factory`` (default ``lean_dojo.LeanGitRepo``) and ``proof_checker`` (default
    ``lean_dojo.check_proof``; None turns the whole-file check off) likewise.
    """

    def __init__(
        self,
        lean_project: str | Path = "lean_project",
        tactic_timeout_s: float = 60.0,
        max_crash_retries: int = 2,
        dojo_factory: Callable[..., Any] | None = None,
        repo_factory: Callable[[str, str], Any] | None = None,
        proof_checker: Callable[[Any, str], bool] | None = _DEFAULT,
        trace_dependencies: bool = False,
    ):
        # LeanDojo takes whole seconds
        super().__init__(max(1, math.ceil(tactic_timeout_s)), max_crash_retries)
        self._ld = import_lean_dojo()
        self.lean_project = Path(lean_project)
        self.dojo_factory = dojo_factory or self._ld.Dojo
        self.repo_factory = repo_factory or self._ld.LeanGitRepo
        self.proof_checker = self._ld.check_proof if proof_checker is _DEFAULT else proof_checker
        # Tracing Mathlib too (LeanDojo's default) takes hours and ~100 GB, and serves only
        # premise retrieval, which this prover does not do: trace the theorem's repo alone.
        self.trace_dependencies = trace_dependencies
        self.scratch = ScratchRepo(self.lean_project)
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

        A fresh LeanDojo session runs them in order (the last must finish the proof), then
        ``lean_dojo.check_proof`` compiles the whole file with the proof in place, which
        also runs the kernel on the complete proof term.
        """
        if not tactics:
            return "the proof has no tactics"
        try:
            ld_theorem = self._dojo_theorem(theorem)
        except EnvInitError as exc:
            return f"the theorem could not be started for the re-check: {exc}"
        problem = replay_check(self, theorem, tactics)
        if problem is not None or self.proof_checker is None:
            return problem
        try:
            accepted = self.proof_checker(ld_theorem, proof_text("", tactics))
        except Exception as exc:
            return f"the whole-file check could not run: {type(exc).__name__}: {exc}"
        return None if accepted else "Lean rejected the file with the proof in place (an error or a `sorry`)"

    def close(self) -> None:
        """Exit the Dojo context, which kills the Lean process; safe to call twice."""
        context, self._context, self._dojo = self._context, None, None
        self._live = {}
        if context is not None:
            _exit_quietly(context)

    # -- sessions ---------------------------------------------------------------------------

    def _dojo_theorem(self, theorem: Theorem) -> Any:
        if not theorem.repo_url:
            theorem = self.scratch.address(theorem)
        if not (theorem.commit and theorem.file_path):
            raise EnvInitError(f"'{theorem.name}' lacks a commit or file path for LeanDojo")
        key = (theorem.repo_url, theorem.commit)
        try:
            if key not in _REPOS:
                _REPOS[key] = self.repo_factory(theorem.repo_url, theorem.commit)
            return self._ld.Theorem(_REPOS[key], theorem.file_path, theorem.full_name or theorem.name)
        except Exception as exc:  # network, unknown commit, not a git repository, ...
            raise EnvInitError(f"LeanDojo cannot address {theorem.repo_url}@{theorem.commit[:12]}: {exc}") from None

    def _open_session(self) -> tuple[str, Any]:
        """Enter a new Dojo context for the current theorem: (its initial goal, its state)."""
        context = self.dojo_factory(
            self._theorem, timeout=self.tactic_timeout_s, build_deps=self.trace_dependencies
        )
        try:
            dojo, initial = context.__enter__()
        except Exception as exc:
            _exit_quietly(context)  # Dojo.__enter__ may fail after it spawned Lean
            if isinstance(exc, self._ld.DojoInitError):
                raise EnvInitError(str(exc) or "LeanDojo could not initialise the theorem") from None
            if isinstance(exc, self._ld.DojoCrashError):
                raise EnvCrashError(f"Lean crashed while starting: {exc}") from None
            # tracing failed, Lean4Repl missing, `lake` missing, ...
            raise EnvInitError(f"{type(exc).__name__}: {exc}") from None
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
    return DojoEnv(lean_project=config.lean_project, tactic_timeout_s=config.tactic_timeout_s)
