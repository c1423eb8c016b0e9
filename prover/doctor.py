"""``prover doctor``: which sandbox is in force, and what Lean, lake, REPL, GPU and libraries
this machine has, one line each, with what to do about anything missing.

    for check in diagnose(): print(check.line())

Nothing here changes the machine; ``lake --version`` and ``lean --version`` run unconfined
(as ``prover setup-lean`` does), each with a short timeout.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from prover.envs import sandbox
from prover.envs.lean import DEFAULT_LEAN_PROJECT, ELAN_URL

LIBRARIES = ("lean-dojo", "lean-interact", "torch", "transformers", "vllm", "ray", "pyseccomp")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    text: str

    def line(self) -> str:
        return f"{'ok ' if self.ok else '-- '} {self.name:<14} {self.text}"


def _version(command: list[str], cwd: str | None = None) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return None
    output = (done.stdout or done.stderr).strip().splitlines()
    return output[0] if done.returncode == 0 and output else None


def check_sandbox(mode: str = "auto") -> Check:
    line = sandbox.describe(mode)
    return Check("sandbox", not line.startswith(("off", f"{mode}: unavailable")) or mode == "off", line)


def check_lean(lean_project: str | os.PathLike = DEFAULT_LEAN_PROJECT, lake_path: str = "lake") -> list[Check]:
    project = Path(lean_project)
    cwd = str(project) if project.is_dir() else None  # elan picks the project's toolchain there
    checks = []
    lake = shutil.which(lake_path)
    if lake is None:
        checks.append(Check("lake", False, f"not on PATH: install elan ({ELAN_URL}), then run `prover setup-lean`"))
    else:
        version = _version([lake, "--version"], cwd)
        checks.append(
            Check("lake", version is not None, f"{lake}: {version or 'does not run (`lake --version` failed)'}")
        )
    lean = shutil.which("lean")
    version = _version([lean, "--version"], cwd) if lean else None
    checks.append(
        Check(
            "lean",
            version is not None,
            f"{lean}: {version}" if version else f"no working `lean` on PATH: install elan ({ELAN_URL})",
        )
    )
    toolchain = project / "lean-toolchain"
    built = project / ".lake" / "build"
    if not toolchain.is_file():
        checks.append(Check("lean project", False, f"{project} has no lean-toolchain; pass --lean-project"))
    else:
        state = "built" if built.is_dir() else "not built: run `prover setup-lean`"
        checks.append(
            Check(
                "lean project", built.is_dir(), f"{project} ({toolchain.read_text(encoding='utf-8').strip()}), {state}"
            )
        )
    return checks


def check_repl(repl_path: str | None = None) -> Check:
    if repl_path is not None:
        binary = Path(repl_path) / ".lake" / "build" / "bin" / "repl"
        return Check(
            "lean REPL",
            binary.is_file(),
            f"{binary}"
            if binary.is_file()
            else f"{repl_path} has no .lake/build/bin/repl: build it (`prover setup-lean --repl-path {repl_path}`)",
        )
    try:
        from lean_interact.config import DEFAULT_CACHE_DIR
    except ImportError:
        return Check("lean REPL", False, "lean-interact is not installed (`pip install lean-interact`)")
    built = sorted(Path(DEFAULT_CACHE_DIR).glob("**/.lake/build/bin/repl"))
    if built:
        return Check("lean REPL", True, f"lean-interact's, built: {built[0]}")
    return Check("lean REPL", False, f"lean-interact has built none in {DEFAULT_CACHE_DIR}: run `prover setup-lean`")


def check_gpu() -> Check:
    try:
        import torch
    except ImportError:
        return Check("gpu", False, "torch is not installed")
    if not torch.cuda.is_available():
        return Check("gpu", False, f"none visible to torch {torch.__version__} (CPU only)")
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return Check("gpu", True, f"{len(names)}: {', '.join(names)}")


def check_libraries() -> list[Check]:
    checks = []
    for name in LIBRARIES:
        try:
            checks.append(Check(name, True, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            checks.append(Check(name, False, "not installed"))
    return checks


def diagnose(
    sandbox_mode: str = "auto",
    lean_project: str | os.PathLike = DEFAULT_LEAN_PROJECT,
    repl_path: str | None = None,
    lake_path: str = "lake",
) -> list[Check]:
    """Every check, in the order ``prover doctor`` prints them."""
    return [
        check_sandbox(sandbox_mode),
        *check_lean(lean_project, lake_path),
        check_repl(repl_path),
        check_gpu(),
        *check_libraries(),
    ]
