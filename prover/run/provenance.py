"""Where a run came from: what tool, code, libraries, Lean and hardware produced it.

Written into a run's ``config.json`` (when the run starts) and ``summary.json`` (each
session), so a result file can be traced back and two runs compared honestly.
Nothing here imports a heavy library: versions come from the installed distributions'
metadata, GPUs from ``nvidia-smi`` where it exists.

    provenance(config)   # {"started_at": "...", "tool_version": "0.1.0", "git_commit": ..., ...}
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

from prover.envs.lean import LeanConfig
from prover.settings import REPO_ROOT

LIBRARIES = ("torch", "transformers", "vllm", "lean-dojo", "lean-interact", "ray", "networkx")


def now() -> str:
    """The current time, ISO 8601 in UTC, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def git_commit(root: Path = REPO_ROOT) -> str | None:
    """The checkout's commit (with "+dirty" when it has changes), or None outside a checkout."""
    if not (root / ".git").exists() or shutil.which("git") is None:
        return None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def gpus() -> list[str]:
    """The GPUs ``nvidia-smi -L`` lists (names), or none."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split(":", 1)[1].split("(")[0].strip() for line in listing.splitlines() if ":" in line]


def lean_versions(lean_project: str | Path) -> dict[str, str | None]:
    """The Lean toolchain and Mathlib revision a Lean project is pinned to."""
    project = Path(lean_project)
    toolchain = mathlib = None
    try:
        toolchain = (project / "lean-toolchain").read_text(encoding="utf-8").strip()
    except OSError:
        pass
    try:
        packages = json.loads((project / "lake-manifest.json").read_text(encoding="utf-8")).get("packages", [])
        mathlib = next((p.get("rev") for p in packages if p.get("name") == "mathlib"), None)
    except (OSError, ValueError, AttributeError):
        pass
    return {"toolchain": toolchain, "mathlib_rev": mathlib}


def provenance(config: Any = None, command_line: Sequence[str] | None = None) -> dict:
    """What produced a run now: time, tool, code, command line (default: this process's),
    libraries, hardware, Lean."""
    if command_line is None:
        command_line = [Path(sys.argv[0]).name, *sys.argv[1:]]
    record: dict[str, Any] = {
        "started_at": now(),
        "tool_version": _version("lean-prover"),
        "git_commit": git_commit(),
        "command_line": shlex.join(command_line),
        "python": platform.python_version(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "hardware": {"cpus": os.cpu_count(), "gpus": gpus(), "machine": platform.machine()},
    }
    if config is not None and isinstance(config.env.options, LeanConfig):
        record["lean"] = lean_versions(config.env.options.lean_project)
    return record
