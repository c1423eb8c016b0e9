"""Drive the real ``lean_dojo`` in a fresh interpreter: ``python dojo_driver.py < ops.json``.

LeanDojo reads ``CACHE_DIR``, ``NUM_PROCS`` and ``DISABLE_REMOTE_CACHE`` once, at import,
and keeps a module-level cache object; a test process may have imported it already, so the
tests run it here, in a process whose environment is set before the import. Each op is a
JSON object; the answers, one per op, are printed as one JSON list on the last line, after
``RESULT_MARKER``.

- ``{"op": "cache", "repo": PATH, "commit": C}``: put the traced repo in LeanDojo's cache
  (``trace_into_cache``, below).
- ``{"op": "trace", "repo", "commit"}``: LeanDojo's own ``get_traced_repo_path``; the
  answer says where it failed, if it did.
- ``{"op": "dojo", "repo", "commit", "file", "theorem", "timeout", "steps": [[k, tactic],
  ...], "env": {...}}``: a ``Dojo`` session; step ``k`` runs ``tactic`` at result ``k``
  (0 is the initial state). ``env`` is set in ``os.environ`` first (stand-in knobs).
- ``{"op": "check_proof", "repo", "commit", "file", "theorem", "proof"}``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

RESULT_MARKER = "DOJO_DRIVER_RESULT "


def trace_into_cache(repo) -> Path:
    """LeanDojo's ``get_traced_repo_path`` for a cache miss, minus one call that needs GitHub.

    ``get_traced_repo_path`` runs ``_trace`` (clone, ``lake exe cache get``, ``lake build``,
    ``lean --print-prefix``/``--version``, ``lake env lean --run ExtractData.lean``, copying
    ``Lean4Repl.lean`` and ``lake build Lean4Repl``: all served by the stand-in), then
    ``TracedRepo.from_traced_files``, whose ``repo.get_dependencies`` turns the
    ``lean-toolchain`` into a commit of leanprover/lean4 through the GitHub API
    (``get_lean4_commit_from_config`` -> ``GITHUB.get_repo``), which an offline machine cannot
    reach. This function runs the same real steps around that call: ``_trace``, then each
    ``*.ast.json`` parsed by ``TracedFile.from_traced_file`` and saved as ``*.trace.xml`` by
    ``_save_xml_to_disk`` (what ``save_to_disk`` does per file), then ``cache.store``. Only
    the dependency list and the file graph (``build_deps=False`` has none) are missing,
    which ``Dojo`` and ``check_proof`` do not read.
    """
    from lean_dojo.data_extraction.cache import cache
    from lean_dojo.data_extraction.trace import _trace
    from lean_dojo.data_extraction.traced_data import TracedFile, _save_xml_to_disk
    from lean_dojo.utils import working_directory

    relative = repo.get_cache_dirname() / repo.name
    cached = cache.get(relative)
    if cached is not None:
        return cached
    with working_directory() as tmp_dir:
        _trace(repo, build_deps=False)
        src_dir = (tmp_dir / repo.name).resolve()
        for json_path in sorted(src_dir.glob("**/*.ast.json")):
            _save_xml_to_disk(TracedFile.from_traced_file(src_dir, json_path, repo))
        return cache.store(src_dir, relative)


def describe(result) -> dict:
    import lean_dojo as ld

    if isinstance(result, ld.TacticState):
        return {
            "type": "TacticState",
            "pp": result.pp,
            "id": result.id,
            "message": result.message,
            "num_goals": result.num_goals,
        }
    if isinstance(result, ld.ProofFinished):
        return {"type": "ProofFinished", "id": result.tactic_state_id, "message": result.message}
    if isinstance(result, ld.LeanError):
        return {"type": "LeanError", "error": result.error}
    if isinstance(result, ld.ProofGivenUp):
        return {"type": "ProofGivenUp"}
    return {"type": type(result).__name__, "repr": repr(result)}


def exception(exc: BaseException) -> dict:
    frames = [frame.name for frame in traceback.extract_tb(exc.__traceback__)]
    return {"type": "exception", "class": type(exc).__name__, "text": str(exc), "frames": frames}


def run(op: dict) -> dict | list:
    import lean_dojo as ld
    from lean_dojo.data_extraction.trace import get_traced_repo_path

    os.environ.update(op.get("env", {}))
    repo = ld.LeanGitRepo(op["repo"], op["commit"])
    if op["op"] == "cache":
        return {"path": str(trace_into_cache(repo))}
    if op["op"] == "trace":
        try:
            return {"path": str(get_traced_repo_path(repo, build_deps=False))}
        except Exception as exc:  # noqa: BLE001 (reported to the test)
            return exception(exc)
    theorem = ld.Theorem(repo, op["file"], op["theorem"])
    if op["op"] == "check_proof":
        try:
            return {"accepted": ld.check_proof(theorem, op["proof"])}
        except Exception as exc:  # noqa: BLE001
            return exception(exc)
    assert op["op"] == "dojo", op
    results: list[dict] = []
    states: dict[int, object] = {}
    try:
        with ld.Dojo(theorem, timeout=op.get("timeout", 10), build_deps=False) as (dojo, initial):
            results.append(describe(initial))
            states[0] = initial
            for at, tactic in op.get("steps", []):
                result = dojo.run_tac(states[at], tactic)
                states[len(results)] = result
                results.append(describe(result))
    except Exception as exc:  # noqa: BLE001
        results.append(exception(exc))
    return results


def main() -> None:
    ops = json.loads(sys.stdin.read())
    answers = [run(op) for op in ops]
    sys.stdout.flush()
    print(RESULT_MARKER + json.dumps(answers, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
