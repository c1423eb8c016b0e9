"""What the two Lean backends share: their settings, the toolchain checks, and set-up.

``LeanConfig`` holds the settings of both ``dojo`` and ``repl``; ``require_lake`` and
the ``import_*`` helpers turn a missing toolchain or library into one sentence.

``prover setup-lean`` (``setup_lean_project``) makes ``lean_project/`` ready for them.

It runs, in the Lean project, ``lake exe cache get`` (Mathlib's prebuilt .olean files,
a few GB, instead of hours of compiling) and ``lake build``; then it fetches and builds
the Lean REPL for the project's Lean version (what ``--env repl`` runs); then it clones
miniF2F (yangky11/miniF2F-lean4 at the commit pinned to Lean v4.20.0) into
``lean_project/.lake/prover/miniF2F-lean4`` (``minif2f_checkout``), the source of the
miniF2F theorems for both Lean backends, and hands that checkout to a tracer (the CLI
passes LeanDojo's, ``prover.envs.dojo.trace_checkout``). It needs elan (which provides
``lake`` and the pinned Lean toolchain) and network access.

    setup_lean_project("lean_project")
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from prover.data.minif2f_source import PIN_COMMIT
from prover.errors import MissingDependencyError, ProverError
from prover.settings import REPO_ROOT, Settings, setting

ELAN_URL = "https://github.com/leanprover/elan"
STEPS = (["lake", "exe", "cache", "get"], ["lake", "build"])
DEFAULT_LEAN_PROJECT = str(REPO_ROOT / "lean_project")

# miniF2F as the Lean backends prove it: this repository at the commit pinned to Lean and
# Mathlib v4.20.0 (shared/data/minif2f/pins-v4.20.0 holds its pins), cloned by
# `prover setup-lean` into the Lean project (PROVER_MINIF2F_URL/_COMMIT name a mirror).
MINIF2F_URL = "https://github.com/yangky11/miniF2F-lean4"
MINIF2F_COMMIT = PIN_COMMIT
CHECKOUT_DIR = Path(".lake") / "prover" / "miniF2F-lean4"  # under the Lean project


@dataclass(frozen=True)
class LeanConfig(Settings):
    """Settings of every Lean backend."""

    lean_project: str = setting(
        DEFAULT_LEAN_PROJECT, "The Lake project that holds the theorems' dependencies.", metavar="DIR"
    )
    tactic_timeout_s: float = setting(60.0, "Seconds per tactic.", min=0, min_open=True)
    startup_timeout_s: float = setting(
        600.0,
        "Seconds to start Lean on a theorem (elaborating its file up to it), also for each restart and the "
        "re-check; the search's --time-limit starts after it.",
        min=0,
        min_open=True,
    )
    memory_limit_mb: int = setting(16_000, "Memory limit of each Lean process.", min=256)
    sandbox: str = setting(
        "auto",
        "How each Lean process is confined (no network, read-only files outside its work directory, limits): "
        "bwrap (bubblewrap), landlock (Landlock + seccomp), auto (bwrap, else landlock, else off with a warning), "
        "off. See `prover doctor`.",
        choices=("auto", "bwrap", "landlock", "off"),
        resumable=True,
    )
    max_lean_processes: int = setting(
        1024, "Most processes and threads each sandboxed Lean process may run (RLIMIT_NPROC).", min=8, resumable=True
    )


def require_lake() -> None:
    """Raise a MissingDependencyError unless Lean's ``lake`` is on PATH."""
    if shutil.which("lake") is None:
        raise MissingDependencyError(
            f"Lean's `lake` is not on PATH; install elan ({ELAN_URL}), then run `prover setup-lean`"
        )


def import_lean_interact():
    """The ``lean_interact`` module, or a MissingDependencyError that says how to get it."""
    try:
        import lean_interact
    except ImportError as exc:
        raise MissingDependencyError(
            f"the repl environment needs lean-interact ({exc}); install it with `pip install lean-interact`"
        ) from None
    return lean_interact


# lean-interact's set-up runs `lake` with the process's environment; see prepare_repl.
_ELAN_TOOLCHAIN_LOCK = threading.Lock()


def prepare_repl(
    lean_project: str | Path,
    repl_path: str | None = None,
    lake_path: str = "lake",
    memory_limit_mb: int | None = None,
    verbose: bool = True,
    echo: Callable[[str], None] = print,
):
    """Fetch (unless ``repl_path`` names one) and build the Lean REPL that lean-interact
    runs for ``lean_project``; returns lean-interact's ``LeanREPLConfig`` for it.

    Without ``repl_path`` lean-interact clones its REPL (augustepoiroux/repl) at the tag
    for the project's Lean version into its own cache, inside its package directory, and
    builds it; with one it builds that checkout (a no-op when it is built). ``lake_path``
    is the ``lake`` that builds and runs it. With ``verbose`` it prints where the REPL is.

    lean-interact runs ``lake --version`` in the current directory first; where elan was
    installed with no default toolchain (as the README says) that fails outside a Lean
    project. So the project's ``lean-toolchain`` is put in ``ELAN_TOOLCHAIN`` while the
    configuration is made, unless the user set that variable (elan lets it override the
    REPL's own ``lean-toolchain`` in ``lake build`` too, which is right: the REPL must
    run the project's Lean to load its ``.olean`` files). The variable is process-wide, so
    a lock keeps two set-ups from interleaving; another thread's subprocess started in
    that window sees the same project toolchain. The REPL processes themselves run in
    the project directory, where elan finds ``lean-toolchain`` on its own.
    """
    li = import_lean_interact()
    project = Path(lean_project).resolve()
    toolchain_file = project / "lean-toolchain"
    if not toolchain_file.is_file():
        raise ProverError(f"{project} has no lean-toolchain file, so its Lean version is unknown; pass --lean-project")
    toolchain = toolchain_file.read_text(encoding="utf-8").strip()
    options = {"lake_path": lake_path, "memory_hard_limit_mb": memory_limit_mb, "verbose": verbose}
    if repl_path is not None:
        if not Path(repl_path).is_dir():
            raise ProverError(f"the Lean REPL directory {repl_path} does not exist (--repl-path)")
        options["local_repl_path"] = str(Path(repl_path).resolve())
    with _ELAN_TOOLCHAIN_LOCK:
        saved = os.environ.get("ELAN_TOOLCHAIN")
        if saved is None:
            os.environ["ELAN_TOOLCHAIN"] = toolchain
        try:
            local = li.LocalProject(directory=str(project), lake_path=lake_path, auto_build=False)
            config = li.LeanREPLConfig(project=local, **options)
        finally:
            if saved is None:
                os.environ.pop("ELAN_TOOLCHAIN", None)
    if verbose:
        echo(f"the Lean REPL for Lean {config.lean_version} is built in {config.cache_repl_dir}")
    return config


def minif2f_checkout(lean_project: str | Path) -> Path:
    """Where ``prover setup-lean`` clones miniF2F: ``<lean_project>/.lake/prover/miniF2F-lean4``."""
    return Path(lean_project) / CHECKOUT_DIR


def git_head(repository: str | Path) -> str:
    """The commit checked out in a git repository; a ProverError when it is not one."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repository, capture_output=True, text=True, check=True)
    except FileNotFoundError:
        if shutil.which("git") is None:
            raise MissingDependencyError("git is not installed; the Lean backends need it") from None
        raise ProverError(f"{repository} does not exist; run `prover setup-lean`") from None
    except subprocess.CalledProcessError:
        raise ProverError(f"{repository} is not a git checkout; run `prover setup-lean`") from None
    return done.stdout.strip()


def checkout_minif2f(
    lean_project: str | Path,
    url: str = MINIF2F_URL,
    commit: str = MINIF2F_COMMIT,
    run: Callable[..., object] = subprocess.run,
    echo: Callable[[str], None] = print,
) -> Path:
    """Clone miniF2F from ``url`` into ``minif2f_checkout(lean_project)`` at ``commit``
    (or move an earlier clone there); returns the checkout."""
    destination = minif2f_checkout(lean_project)
    if (destination / ".git").exists():
        if git_head(destination) == commit:
            echo(f"miniF2F is checked out at {commit[:12]} in {destination}")
            return destination
        steps = [
            ["git", "fetch", "--quiet", "--tags", url, "+refs/heads/*:refs/remotes/origin/*"],
            ["git", "checkout", "--quiet", commit],
        ]
        where = destination
    else:
        destination.parent.mkdir(parents=True, exist_ok=True)
        steps = [
            ["git", "clone", "--quiet", "--no-checkout", url, str(destination)],
            ["git", "-C", str(destination), "checkout", "--quiet", commit],
        ]
        where = destination.parent
    for step in steps:
        echo(f"$ {' '.join(step)}")
        try:
            run(step, cwd=where, check=True)
        except FileNotFoundError:
            raise MissingDependencyError("git is not installed; the Lean backends need it") from None
        except subprocess.CalledProcessError as exc:
            raise ProverError(f"`{' '.join(step)}` failed (exit code {exc.returncode}); see its output above") from None
    return destination


def setup_lean_project(
    lean_project: str | Path,
    run: Callable[..., object] = subprocess.run,
    which: Callable[[str], str | None] = shutil.which,
    repl: Callable[[Path], None] | None = prepare_repl,
    echo: Callable[[str], None] = print,
    minif2f_url: str | None = MINIF2F_URL,
    minif2f_commit: str = MINIF2F_COMMIT,
    trace: Callable[[Path], object] | None = None,
) -> None:
    """Run the set-up steps in ``lean_project``; a ProverError says which step failed.

    The Lake steps, the REPL (``repl``; None skips it), the miniF2F checkout (from
    ``minif2f_url`` at ``minif2f_commit``; a None URL skips it) and ``trace(checkout)``
    (None skips it). ``run``, ``which`` and ``repl`` are injectable so tests need no Lean.
    """
    project = Path(lean_project)
    if which("lake") is None:
        raise MissingDependencyError(
            f"Lean's `lake` is not on PATH; install elan ({ELAN_URL}), open a new shell, and run `prover setup-lean` again"
        )
    if not (project / "lakefile.lean").exists():
        raise ProverError(f"{project} is not a Lake project (it has no lakefile.lean); pass --lean-project")
    for step in STEPS:
        echo(f"$ {' '.join(step)}   (in {project})")
        try:
            run(step, cwd=project, check=True)
        except subprocess.CalledProcessError as exc:
            raise ProverError(
                f"`{' '.join(step)}` failed in {project} (exit code {exc.returncode}); see its output above"
            ) from None
    if repl is not None:
        echo("preparing the Lean REPL for --env repl")
        try:
            repl(project)
        except ProverError:
            raise
        except Exception as exc:
            raise ProverError(f"the Lean REPL could not be prepared: {type(exc).__name__}: {exc}") from None
    if minif2f_url is not None:
        checkout = checkout_minif2f(project, minif2f_url, minif2f_commit, run=run, echo=echo)
        if trace is not None:
            trace(checkout)
    echo(f"{project} is ready: try `prover attack mathd_algebra_182 --env dojo --policy fixed --tactic ring`")
