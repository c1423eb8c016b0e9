"""``prover fill`` on a file of holes: what the warm REPL pool saves, measured on the stand-in.

Filling a file costs Lean one elaboration of the file to list its holes, one per hole to
start each search at its proof state (and to restart), one per found proof to re-check it
in place, and one for the whole patched file. Each elaboration needs the file's imports;
with the pool (``--repl-pool``, the default) a REPL imports them once and every command
runs on that environment, without it (``--no-repl-pool``) each one imports again. This
runs the same ``prover fill`` both ways, in-process, against the stand-in Lean toolchain
(``tests/lean_standin``) with ``import_delay_s`` seconds per import standing in for
``import Mathlib``, on the test file of recorded miniF2F statements (5 holes, 4 fillable),
and prints for each: wall time, imports paid, REPL processes started, holes filled, and
the ratios.

    python benchmarks/fill.py                       # 2 s per import
    python benchmarks/fill.py --import-delay 8      # Mathlib's import on an idle machine
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(directory: Path, import_delay_s: float, pool: bool) -> dict:
    from prover.data import minif2f_path, traces_path

    from tests.lean_standin import install, read_log
    from tests.lean_standin.costs import read_costs
    from tests.lean_standin.files import holes_source
    from tests.test_env_repl import lean_project, standin_traces

    directory.mkdir(parents=True)
    traces = standin_traces(directory, traces_path())
    env = install(directory, traces=traces, import_delay_s=import_delay_s)
    project = lean_project(directory / "project")
    (project / "Holes.lean").write_text(holes_source(minif2f_path()), encoding="utf-8")
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "prover.cli",
            "fill",
            str(project / "Holes.lean"),
            "--policy",
            "replay",
            "--traces",
            str(traces),
            "--repl-path",
            env["LEAN_STANDIN_REPL_DIR"],
            "--lake-path",
            env["LEAN_STANDIN_LAKE"],
            "--num-workers",
            "0",
            "--repl-pool" if pool else "--no-repl-pool",
            "--startup-timeout",
            "600",
            "--out",
            str(directory / "run"),
            "--json",
        ],
        env=env,
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    wall_s = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"prover fill failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout)
    return {
        "wall_s": wall_s,
        "imports": sum(c["kind"] == "import" for c in read_costs(env)),
        "repls": sum(e["argv"] == ["repl"] for e in read_log(env)),
        "filled": report["num_filled"],
        "holes": report["num_holes"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--import-delay", type=float, default=2.0, help="seconds per import of the file's header")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pooled = run(Path(tmp) / "pool", args.import_delay, pool=True)
        fresh = run(Path(tmp) / "no-pool", args.import_delay, pool=False)
    print(f"prover fill, {pooled['holes']} holes, {args.import_delay:g} s per import (stand-in Lean)")
    print(f"{'':>14} {'wall s':>8} {'imports':>8} {'REPLs':>6} {'filled':>7}")
    for label, row in (("--repl-pool", pooled), ("--no-repl-pool", fresh)):
        print(f"{label:>14} {row['wall_s']:8.2f} {row['imports']:8d} {row['repls']:6d} {row['filled']:7d}")
    print(
        f"pool / no pool: wall time {pooled['wall_s'] / fresh['wall_s']:.2f}x, "
        f"imports {pooled['imports']}/{fresh['imports']}"
    )


if __name__ == "__main__":
    main()
