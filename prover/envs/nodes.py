"""What a machine needs to run Lean searches, checked where they run (a cluster's nodes).

A cluster's nodes share no file system: what ``prover setup-lean`` made on the driver's
machine must be on every Lean node at the same absolute paths. ``RayExecutor`` asks one
search worker per node (``SearchWorker.lacks``) before any search starts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from prover.envs.lean import LeanConfig


def node_lacks(env_name: str, options: LeanConfig, repos: list[tuple[str, str]]) -> str | None:
    """What this machine lacks to run Lean searches as the driver set them up, at the
    driver's absolute paths: the Lean project, Lean's ``lake``, and for ``dojo`` LeanDojo's
    trace of each (repository, commit) of ``repos``; None when it lacks nothing. A cluster's
    nodes share no file system, so ``prover setup-lean`` must have run on each Lean node."""
    project = Path(options.lean_project)
    if not (project / "lean-toolchain").is_file():
        return f"the Lean project {project} (with its lean-toolchain file)"
    lake = getattr(options, "lake_path", "lake")
    if shutil.which(lake) is None:
        return f"Lean's `lake` ({lake}) on PATH"
    if env_name == "dojo":
        from prover.envs.dojo import cache_entry, traced

        for url, commit in repos:
            if not traced(url, commit):
                return f"LeanDojo's trace of {url} at {commit[:12]} ({cache_entry(url, commit)})"
    return None
