"""LeanDojo searches in one process behind ``LEAN_DOJO_LOCK`` versus one search per process.

LeanDojo changes the process's working directory while it starts Lean, so ``DojoEnv``
holds a per-process lock through ``Dojo.__enter__``, which also waits for Lean's start-up
(see ``prover/envs/dojo.py``). This measures what that costs: the same searches (the
replay policy, re-check included) run as K threads of one process, then as K processes
of one thread each, against the stand-in Lean toolchain (``tests/lean_standin``) with a
start-up delay and a per-tactic delay standing in for Lean's. It prints the wall time of
each layout and their ratio.

    python benchmarks/dojo_concurrency.py                       # 16 theorems, K=4, 1 s start, 0.05 s tactics
    python benchmarks/dojo_concurrency.py --startup-delay 0.2 --tactic-delay 0.5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def prepare(directory: Path, num_theorems: int, startup_delay_s: float, tactic_delay_s: float) -> dict:
    """A stand-in miniF2F repository of recorded theorems, traced into LeanDojo's cache."""
    from prover.data import minif2f_path, traces_path
    from prover.traces import load_traces

    from tests.lean_standin import install, lean_dojo_env, make_git_repo, minif2f_source, run_dojo_driver

    names = load_traces(None).names()[:num_theorems]
    env = {
        **install(directory, traces=traces_path(), startup_delay_s=startup_delay_s, tactic_delay_s=tactic_delay_s),
        **lean_dojo_env(directory),
    }
    commit = make_git_repo(directory / "miniF2F-lean4", {"MiniF2F/Test.lean": minif2f_source(names, minif2f_path())})
    run_dojo_driver([{"op": "cache", "repo": str(directory / "miniF2F-lean4"), "commit": commit}], env)
    return {"env": env, "repo": str(directory / "miniF2F-lean4"), "commit": commit, "names": names}


def worker(spec: dict) -> None:
    """Search ``spec["names"]`` with ``spec["threads"]`` threads in this process; prints a JSON line."""
    import queue
    import threading

    from search import SearchLimits, Theorem, best_first_search

    from prover.envs.dojo import DojoEnv
    from prover.policies.replay import ReplayPolicy
    from prover.traces import load_traces

    policy = ReplayPolicy(load_traces(None))
    todo: queue.Queue = queue.Queue()
    for name in spec["names"]:
        todo.put(name)
    results: list[tuple[str, str]] = []

    def run() -> None:
        while True:
            try:
                name = todo.get_nowait()
            except queue.Empty:
                return
            theorem = Theorem(
                name, repo_url=spec["repo"], commit=spec["commit"], file_path="MiniF2F/Test.lean", full_name=name
            )
            env = DojoEnv(tactic_timeout_s=30, startup_timeout_s=60)
            result = best_first_search(theorem, policy, env, SearchLimits(max_expansions=20, tactics_per_node=4))
            results.append((name, result.status.value))

    threads = [threading.Thread(target=run) for _ in range(spec["threads"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print("RESULTS " + json.dumps(results), flush=True)


def run_layout(setup: dict, processes: int, threads: int) -> tuple[float, list]:
    """Wall time and results of the searches spread over ``processes`` x ``threads``."""
    names = setup["names"]
    slices = [names[k::processes] for k in range(processes)]
    started = time.perf_counter()
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", json.dumps({**setup, "names": part, "threads": threads})],
            env=setup["env"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for part in slices
    ]
    results = []
    for child in children:
        out, _ = child.communicate()
        for line in out.splitlines():
            if line.startswith("RESULTS "):
                results += json.loads(line[len("RESULTS ") :])
    return time.perf_counter() - started, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--theorems", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=4, help="K: threads of one process, or processes")
    parser.add_argument("--startup-delay", type=float, default=1.0, help="stand-in Lean's start-up, seconds")
    parser.add_argument("--tactic-delay", type=float, default=0.05, help="stand-in Lean's time per tactic, seconds")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    with tempfile.TemporaryDirectory() as directory:
        setup = prepare(Path(directory), args.theorems, args.startup_delay, args.tactic_delay)
        one_process, results_a = run_layout(setup, 1, args.concurrency)
        one_each, results_b = run_layout(setup, args.concurrency, 1)
    proved = lambda results: sum(status == "proved" for _, status in results)  # noqa: E731
    print(
        f"{args.theorems} theorems, start-up {args.startup_delay:g} s, {args.tactic_delay:g} s per tactic, "
        f"K={args.concurrency} on {os.cpu_count()} CPUs"
    )
    print(f"  1 process x {args.concurrency} threads (lock): {one_process:6.1f} s, proved {proved(results_a)}")
    print(f"  {args.concurrency} processes x 1 thread:       {one_each:6.1f} s, proved {proved(results_b)}")
    print(f"  lock / one search per process: {one_process / one_each:.2f}x the wall time")


if __name__ == "__main__":
    main()
