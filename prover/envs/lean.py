"""What the two Lean backends share: their settings, the toolchain checks, and set-up.

``LeanConfig`` holds the settings of both ``dojo`` and ``repl``; ``require_lake`` and
the ``import_*`` helpers turn a missing toolchain or library into one sentence.

``prover setup-lean`` (``setup_lean_project``) makes ``lean_project/`` ready for them.

It runs, in the Lean project, ``lake exe cache get`` (Mathlib's prebuilt .olean files,
a few GB, instead of hours of compiling) and ``lake build``; then it fetches and builds
the Lean REPL for the project's Lean version (what ``--env repl`` runs). It needs elan
(which provides ``lake`` and the pinned Lean toolchain) and network access.

    setup_lean_project("lean_project")
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from prover.config import REPO_ROOT, Settings, setting
from prover.errors import MissingDependencyError, ProverError

ELAN_URL = "https://github.com/leanprover/elan"
STEPS = (["lake", "exe", "cache", "get"], ["lake", "build"])
DEFAULT_LEAN_PROJECT = str(REPO_ROOT / "lean_project")


@dataclass(frozen=True)
class LeanConfig(Settings):
    """Settings of every Lean backend."""

    lean_project: str = setting(
        DEFAULT_LEAN_PROJECT, "The Lake project that holds the theorems' dependencies.", metavar="DIR"
    )
    tactic_timeout_s: float = setting(60.0, "Seconds per tactic.", min=0, min_open=True)
    memory_limit_mb: int = setting(16_000, "Memory limit of each Lean process.", min=256)


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


def prepare_repl(lean_project: Path) -> None:
    """Fetch and build the Lean REPL that lean-interact runs for this project."""
    li = import_lean_interact()
    li.LeanREPLConfig(project=li.LocalProject(directory=str(lean_project), auto_build=False), verbose=True)


def setup_lean_project(
    lean_project: str | Path,
    run: Callable[..., object] = subprocess.run,
    which: Callable[[str], str | None] = shutil.which,
    repl: Callable[[Path], None] | None = prepare_repl,
    echo: Callable[[str], None] = print,
) -> None:
    """Run the set-up steps in ``lean_project``; a ProverError says which step failed.

    ``run``, ``which`` and ``repl`` are injectable so tests need no Lean; ``repl=None``
    skips the REPL step.
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
            raise ProverError(f"`{' '.join(step)}` failed in {project} (exit code {exc.returncode}); see its output above") from None
    if repl is not None:
        echo("preparing the Lean REPL for --env repl")
        try:
            repl(project)
        except ProverError:
            raise
        except Exception as exc:
            raise ProverError(f"the Lean REPL could not be prepared: {type(exc).__name__}: {exc}") from None
    echo(f"{project} is ready: try `prover attack mathd_algebra_182 --env repl --policy fixed --tactic ring`")
