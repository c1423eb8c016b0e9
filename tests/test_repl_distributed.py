"""``prover prove-split --env repl`` on Ray, end to end: the CLI in a fresh process joins the
test session's Ray (``ray_local``), 2 search workers run 2 searches each, and every search
drives the real lean-interact against the stand-in Lean toolchain (tests/lean_standin),
with its proofs re-checked from scratch (compiled with ``#print axioms``).

Ray's workers are started by the session's Ray, not by the CLI, so they do not see the
test's environment; the stand-in's tools are given by absolute path (``--lake-path``,
``--repl-path``) and read their installation from ``environment.json``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("lean_interact")
pytest.importorskip("ray")

from search import SearchTree

from tests.lean_standin import install, read_costs, read_log
from tests.test_env_repl import lean_project, traces_file  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.standin, pytest.mark.slow]


def recorded_minif2f_theorems(traces_path: Path, count: int) -> list[str]:
    """The first ``count`` theorems of the shipped traces, in their order (all are miniF2F's)."""
    names: list[str] = []
    with open(traces_path, encoding="utf-8") as lines:
        for line in lines:
            name = json.loads(line)["theorem"]
            if name not in names:
                names.append(name)
    return names[:count]


def prove_split(
    tmp_path: Path,
    traces: Path,
    theorems: list[str],
    ray_address: str,
    label: str,
    extra: tuple[str, ...] = (),
    timeout_s: float = 120,
    **knobs,
) -> tuple[dict, list[dict], dict]:
    """``prove-split --env repl --policy replay`` over ``theorems`` (names, or JSON lines) on
    2 workers x 2 searches; returns (stand-in environment, results, summary)."""
    env = install(tmp_path / label, traces=traces, **knobs)
    project = lean_project(tmp_path / label / "project")
    listing = tmp_path / label / "theorems.txt"
    listing.write_text("\n".join(theorems) + "\n", encoding="utf-8")
    out = tmp_path / label / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "prover.cli",
            "prove-split",
            "--env",
            "repl",
            "--policy",
            "replay",
            "--traces",
            str(traces),
            "--theorems-file",
            str(listing),
            "--lean-project",
            str(project),
            "--repl-path",
            env["LEAN_STANDIN_REPL_DIR"],
            "--lake-path",
            env["LEAN_STANDIN_LAKE"],
            "--ray-address",
            ray_address,
            "--num-workers",
            "2",
            "--searches-per-worker",
            "2",
            "--worker-cpus",
            "0.25",
            "--lean-memory-gb",
            "0.5",
            "--no-progress",
            *extra,
            "--out",
            str(out),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    results = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return env, results, summary


def test_prove_split_on_ray_proves_and_rechecks_every_theorem(tmp_path, traces_file, traces_path, ray_local):  # noqa: F811
    names = recorded_minif2f_theorems(traces_path, 8)
    native = {
        "name": "standin_native",
        "statement": "theorem standin_native : 2 ^ 10 = 1024 :=",
        "header": "import Mathlib\n",
    }
    env, results, summary = prove_split(
        tmp_path, traces_file, [*names, json.dumps(native)], ray_local, "clean", extra=("--allow-native-decide",)
    )
    by_name = {r["theorem"]: r for r in results}
    assert sorted(by_name) == sorted([*names, "standin_native"]) and len(results) == len(by_name)
    assert all(by_name[name]["status"] == "proved" for name in names), [(r["theorem"], r["error"]) for r in results]
    # found by the search (native_decide is let through), refused by the re-check
    assert by_name["standin_native"]["status"] == "rejected"
    assert by_name["standin_native"]["error"].endswith("the proof depends on the axiom Lean.ofReduceBool")
    assert summary["num_theorems"] == 9 and summary["num_proved"] == 8
    log = read_log(env)
    # Warm REPLs: each imported its header once; statements ran as commands on fewer REPLs than theorems.
    costs = read_costs(env)
    imports = Counter(c["pid"] for c in costs if c["kind"] == "import")
    commands = Counter(c["pid"] for c in costs if c["kind"] == "command")
    assert set(imports.values()) == {1}
    assert (
        2 <= len([pid for pid, n in commands.items() if n > 1]) <= 6
    )  # 2 workers x 2 searches, + checkers a search moved to
    assert sum(c["kind"] == "check" for c in costs) == 9 and len({c["pid"] for c in costs if c["kind"] == "check"}) <= 4
    assert all(e["argv"] != ["lake", "build"] or e["cwd"] == env["LEAN_STANDIN_REPL_DIR"] for e in log)


def test_prove_split_loses_nothing_under_ten_percent_crashes_and_timeouts(
    tmp_path,
    traces_file,  # noqa: F811 (the fixture imported above)
    traces_path,
    ray_local,
):
    names = recorded_minif2f_theorems(traces_path, 24)
    timeout = ("--tactic-timeout", "1")
    clean_env, clean, _ = prove_split(tmp_path, traces_file, names, ray_local, "clean", extra=timeout)
    env, faulty, _ = prove_split(
        tmp_path,
        traces_file,
        names,
        ray_local,
        "faulty",
        extra=timeout,
        timeout_s=300,
        crash_prob=0.1,
        slow_prob=0.1,
        tactic_delay_s=10,
        fault_seed=1,
    )
    counts = Counter(r["theorem"] for r in faulty)
    assert sorted(counts) == sorted(names), f"lost: {sorted(set(names) - set(counts))}"
    assert max(counts.values()) == 1, f"recorded twice: {[n for n, c in counts.items() if c > 1]}"
    proved_clean = {r["theorem"] for r in clean if r["status"] == "proved"}
    proved_faulty = {r["theorem"] for r in faulty if r["status"] == "proved"}
    assert len(proved_clean) == len(names)
    assert len(proved_faulty & proved_clean) >= 0.9 * len(proved_clean), (
        f"with faults {len(proved_faulty)} proved, without {len(proved_clean)}; not proved with faults: "
        + "; ".join(f"{r['theorem']}: {r['status']} {r['error']}" for r in faulty if r["status"] != "proved")
    )

    # The faults did happen: REPLs restarted after crashes and timeouts, and timeouts were failed edges.
    def repls(env: dict) -> int:
        return len({e["pid"] for e in read_log(env) if e["tool"] == "repl"})

    restarts = repls(env) - repls(clean_env)
    timeouts = sum(
        "ran past" in (edge.get("error") or "")
        for path in (tmp_path / "faulty/run/trees").iterdir()
        for edge in SearchTree.load(path).to_json()["edges"]
    )
    assert restarts >= 5 and timeouts >= 2, (restarts, timeouts)
