"""Lean time per theorem: the process-per-theorem REPL path, the warm REPL pool, and LeanDojo.

On a real machine a proof search is bound by Lean, and what a design pays beyond the
tactics themselves is imports (``import Mathlib``: seconds to a minute), statement
elaboration, re-checks and restarts after timeouts. This runs the same searches (the
replay policy on the recorded miniF2F theorems, repeated as ``copyK.NAME`` to make N;
best-first search, re-check included, as ``prove-split``'s in-process executor runs them:
a fresh environment per theorem) against the stand-in Lean (``tests/lean_standin``) at
Lean's costs (``tests/lean_standin/costs.py``): an import of ``--import-delay`` seconds,
``--tactic-cost`` per tactic, ``--command-delay`` per declaration elaborated, and
``--slow-fraction`` of (goal, tactic) pairs that run long. Lean's heartbeat limit stops
such a REPL proof step after ``--heartbeat-s`` seconds (the REPL answers an error and goes
on), under the ``--tactic-timeout`` that kills a process as a wall-clock backstop; LeanDojo
sets ``maxHeartbeats 0``, so its slow tactics always run into the timeout. In one run:

- ``repl, a process per theorem`` (``--no-repl-pool``): each theorem and each restart
  starts a REPL that imports, and the re-check imports again;
- ``repl, warm pool`` (the default): REPLs import once and serve every theorem; a worker
  holds its search REPL and its checker, and imports again only to recycle a REPL;
- ``repl, warm pool, killed at timeouts`` (``--kill-theorems``, 0 skips it): the pool with
  slow tactics that no heartbeat limit stops, so each one is killed at the timeout (what
  a ``--tactic-timeout`` shorter than the time Lean takes to reach its limit costs);
- ``dojo`` (``--dojo-theorems``, 0 skips it): each theorem starts a LeanDojo session (an
  import, and the file above the theorem elaborated) and the re-check compiles the file.

It prints, per way, the Lean time split as the search saw it (starts, tactics, restarts
with their replays, re-checks; imports counted by the stand-in, and the seconds of those on
the search's path, which lie within the other parts), the overhead ratio (Lean
wall time beyond the tactics' own time, a timed-out tactic counted up to its timeout,
divided by that time), the pool's imports against what it must import (2 per worker
process, its search REPL and its checker, plus one per recycle), the Lean wall-time ratio
of the two REPL ways and whether they proved the same theorems.

    python benchmarks/lean_throughput.py                          # 244 theorems: hours for the old paths
    python benchmarks/lean_throughput.py --theorems 24 --baseline-theorems 6 --dojo-theorems 4
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOJO_FILE = "MiniF2F/Test.lean"


def copies(num_theorems: int) -> list[tuple[str, str]]:
    """(run name, recorded name) for N theorems: the recorded ones, then ``copyK.NAME``."""
    from prover.traces import load_traces

    known = statements()
    names = [n for n in load_traces(None).names() if n in known]  # not the NAME@2 variants of a first goal
    out = []
    for k in range(num_theorems):
        name = names[k % len(names)]
        round_ = k // len(names)
        out.append((name if round_ == 0 else f"copy{round_}.{name}", name))
    return out


def statements() -> dict[str, dict]:
    from prover.data import minif2f_path

    with open(minif2f_path(), encoding="utf-8") as lines:
        return {r["name"]: r for r in map(json.loads, lines)}


def renamed(statement: str, name: str, run_name: str) -> str:
    return re.sub(rf"\btheorem {re.escape(name)}\b", f"theorem {run_name}", statement, count=1)


def dojo_source(pairs: list[tuple[str, str]], records: dict[str, dict]) -> str:
    """One file of the theorems, a copy in ``namespace copyK`` (as miniF2F's Test.lean, one file)."""
    parts = [
        "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\nopen BigOperators Real Nat Topology Rat\n"
    ]
    for run_name, name in pairs:
        statement = records[name]["formal_statement"].rstrip()
        if "." in run_name:
            space = run_name.split(".")[0]
            parts.append(f"\nnamespace {space}\n\n{statement} by sorry\n\nend {space}\n")
        else:
            parts.append(f"\n{statement} by sorry\n")
    return "".join(parts)


class Timed:
    """A proof environment with its Lean wall time split: starts, tactics (a timed-out one up
    to its timeout), restarts with their replays, re-checks."""

    def __init__(self, env, times: Counter, timeout_s: float):
        self.env, self.times, self.timeout_s = env, times, timeout_s

    def start(self, theorem):
        started = time.perf_counter()
        try:
            return self.env.start(theorem)
        finally:
            self.times["starts"] += time.perf_counter() - started

    def run_tactic(self, state, tactic):
        from search import EnvTimeoutError

        self.times["tactic_calls"] += 1
        replayed, started, timed_out = self.env.replay_s, time.perf_counter(), False
        stops = getattr(self.env, "num_heartbeat_stops", 0)
        try:
            return self.env.run_tactic(state, tactic)
        except EnvTimeoutError:
            timed_out = True
            raise
        finally:
            spent = time.perf_counter() - started
            if timed_out:  # the tactic up to its timeout; then the kill, the restart and the replay
                self.times["tactics"] += min(spent, self.timeout_s)
                self.times["restarts"] += max(0.0, spent - self.timeout_s)
                self.times["timeouts"] += 1
                self.times["heartbeat_stops"] += getattr(self.env, "num_heartbeat_stops", 0) - stops
            else:  # a replay on the way (a state lost in a restart) is not the tactic's own time
                replay = self.env.replay_s - replayed
                self.times["tactics"] += spent - replay
                self.times["restarts"] += replay

    def check_proof(self, theorem, tactics):
        started = time.perf_counter()
        try:
            return self.env.check_proof(theorem, tactics)
        finally:
            self.times["checks"] += time.perf_counter() - started

    def close(self):
        self.env.close()


def worker(spec: dict) -> None:
    """Search every theorem of ``spec`` one after another in this process; prints a JSON line."""
    from search import SearchLimits, Theorem, best_first_search

    from prover.policies.replay import ReplayPolicy
    from prover.traces import load_traces

    policy = ReplayPolicy(load_traces(None))
    limits = SearchLimits(max_expansions=spec["max_expansions"], tactics_per_node=spec["tactics_per_node"])
    times: Counter = Counter()
    results = {}
    pool = None
    if spec["way"] == "dojo":
        from prover.envs.dojo import DojoEnv

        make = lambda: DojoEnv(tactic_timeout_s=spec["timeout"], startup_timeout_s=600)  # noqa: E731
        theorems = [
            Theorem(run, repo_url=spec["repo"], commit=spec["commit"], file_path=DOJO_FILE, full_name=run)
            for run, _ in spec["pairs"]
        ]
    else:
        from prover.envs.repl import ReplConfig, build

        config = ReplConfig(
            lean_project=spec["project"],
            repl_path=spec["repl_dir"],
            lake_path=spec["lake"],
            tactic_timeout_s=spec["timeout"],
            startup_timeout_s=600,
            memory_limit_mb=spec["memory_mb"],
            repl_pool=spec["way"] != "per-theorem",
        )
        make = lambda: build(config)  # noqa: E731
        records = statements()
        theorems = [
            Theorem(
                run, statement=renamed(records[name]["formal_statement"], name, run), header=records[name]["header"]
            )
            for run, name in spec["pairs"]
        ]
    started = time.perf_counter()
    for theorem in theorems:
        env = make()
        pool = getattr(env, "pool", None) or pool
        result = best_first_search(theorem, policy, Timed(env, times, spec["timeout"]), limits)
        results[theorem.name] = [result.status.value, result.startup_time_s + result.env_time_s]
        times["lean_wall"] += result.startup_time_s + result.env_time_s
    wall = time.perf_counter() - started
    if pool is not None:
        pool.settle(600)  # a replacement importing in the background counts once it has landed
    stats = pool.stats() if pool is not None else {}
    if pool is not None:
        pool.close()
    print("RESULT " + json.dumps({"times": times, "results": results, "wall": wall, "pool": stats}), flush=True)


def prepare(directory: Path, args) -> dict:
    """The stand-in installed with Lean's costs, a Lean project, and (for dojo) a traced repository."""
    from prover.data import traces_path

    from tests.lean_standin import install, lean_dojo_env, make_git_repo, run_dojo_driver, set_knobs
    from tests.test_env_repl import lean_project

    env = {**install(directory, traces=traces_path()), **lean_dojo_env(directory)}
    env.pop("ELAN_TOOLCHAIN", None)
    setup = {
        "env": env,
        "project": str(lean_project(directory / "project")),
        "repl_dir": env["LEAN_STANDIN_REPL_DIR"],
        "lake": env["LEAN_STANDIN_LAKE"],
    }
    if args.dojo_theorems:
        pairs = copies(args.dojo_theorems)
        repo = directory / "miniF2F-lean4"
        commit = make_git_repo(repo, {DOJO_FILE: dojo_source(pairs, statements())})
        run_dojo_driver([{"op": "cache", "repo": str(repo), "commit": commit}], env, timeout_s=600)  # before the costs
        setup.update(repo=str(repo), commit=commit)
    set_knobs(
        env,
        import_delay_s=args.import_delay,
        import_memory_mb=args.import_memory_mb,
        command_delay_s=args.command_delay,
        tactic_cost_s=args.tactic_cost,
        slow_fraction=args.slow_fraction,
        tactic_delay_s=args.tactic_timeout * 10,
    )
    return setup


def run_way(setup: dict, way: str, pairs: list, args) -> dict:
    """One way's searches in a fresh worker process, with the stand-in's costs it caused."""
    from tests.lean_standin import read_costs, set_knobs

    set_knobs(setup["env"], heartbeat_s=None if way == "killed" else args.heartbeat_s)
    before = len(read_costs(setup["env"]))
    spec = {
        **{k: v for k, v in setup.items() if k != "env"},
        "way": way,
        "pairs": pairs,
        "timeout": args.tactic_timeout,
        "max_expansions": args.max_expansions,
        "tactics_per_node": args.tactics_per_node,
        "memory_mb": args.memory_limit_mb,
    }
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        env=setup["env"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"the {way} worker failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    out = json.loads(lines[-1][len("RESULT ") :])
    costs = read_costs(setup["env"])[before:]
    out["imports"] = sum(c["kind"] == "import" for c in costs)
    out["import_s"] = sum(c["seconds"] for c in costs if c["kind"] == "import")
    return out


def report(label: str, out: dict, import_delay_s: float) -> float:
    t = out["times"]
    own = t.get("tactics", 0.0)
    overhead = (t["lean_wall"] - own) / own if own else float("nan")
    proved = sum(status == "proved" for status, _ in out["results"].values())
    stats = out.get("pool") or {}
    on_path = stats["imports"] - stats["background_imports"] if stats else out["imports"]
    print(
        f"{label:<36} {len(out['results']):>4} {proved:>6} {out['imports']:>7} {on_path:>8} "
        f"{t['lean_wall']:>9.1f} {on_path * import_delay_s:>8.1f} {t.get('starts', 0):>8.1f} {own:>8.1f} "
        f"{t.get('restarts', 0):>9.1f} "
        f"{t.get('checks', 0):>7.1f} {int(t.get('timeouts', 0)):>8} {int(t.get('heartbeat_stops', 0)):>7} "
        f"{overhead:>9.3f}"
    )
    return overhead


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--theorems", type=int, default=244, help="N theorems through each REPL way")
    parser.add_argument(
        "--baseline-theorems",
        type=int,
        default=None,
        help="the first M of them through the process-per-theorem REPL path [default: N]",
    )
    parser.add_argument(
        "--dojo-theorems", type=int, default=None, help="the first M through LeanDojo [default: N; 0 skips]"
    )
    parser.add_argument("--import-delay", type=float, default=10.0, help="seconds per import of the header")
    parser.add_argument("--import-memory-mb", type=float, default=64.0, help="resident memory per import (scaled down)")
    parser.add_argument("--command-delay", type=float, default=0.05, help="seconds per declaration elaborated")
    parser.add_argument("--tactic-cost", type=float, default=0.1, help="seconds per tactic")
    parser.add_argument("--slow-fraction", type=float, default=0.1, help="fraction of tactics that run long")
    parser.add_argument(
        "--heartbeat-s",
        type=float,
        default=0.9,
        help="seconds a long-running REPL tactic takes to reach Lean's heartbeat limit (0: never)",
    )
    parser.add_argument("--tactic-timeout", type=float, default=1.0, help="the wall-clock backstop per tactic")
    parser.add_argument(
        "--kill-theorems",
        type=int,
        default=None,
        help="the first M through the pool with no heartbeat limit, killed at timeouts [default: as baseline; 0 skips]",
    )
    parser.add_argument("--max-expansions", type=int, default=8)
    parser.add_argument(
        "--tactics-per-node",
        type=int,
        default=32,
        help="tactics the policy proposes per expansion, the recorded ones and wrong ones (32: the llemma-f2f preset)",
    )
    parser.add_argument("--memory-limit-mb", type=int, default=4096)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    if args.dojo_theorems is None:
        args.dojo_theorems = args.theorems
    if args.baseline_theorems is None:
        args.baseline_theorems = args.theorems
    if args.kill_theorems is None:
        args.kill_theorems = args.baseline_theorems
    if (
        args.theorems < 1
        or not 1 <= args.baseline_theorems <= args.theorems
        or not 0 <= args.dojo_theorems <= args.theorems
        or not 0 <= args.kill_theorems <= args.theorems
        or args.heartbeat_s < 0
    ):
        parser.error(
            "--theorems must be at least 1, --baseline-theorems between 1 and it, --dojo-theorems and "
            "--kill-theorems between 0 and it, --heartbeat-s not negative"
        )
    pairs = copies(args.theorems)
    with tempfile.TemporaryDirectory() as directory:
        setup = prepare(Path(directory), args)
        started = time.perf_counter()
        old = run_way(setup, "per-theorem", pairs[: args.baseline_theorems], args)
        pool = run_way(setup, "pool", pairs, args)
        killed = run_way(setup, "killed", pairs[: args.kill_theorems], args) if args.kill_theorems else None
        dojo = run_way(setup, "dojo", copies(args.dojo_theorems), args) if args.dojo_theorems else None
        elapsed = time.perf_counter() - started
    heartbeats = (
        f"Lean's heartbeat limit stops them after {args.heartbeat_s:g} s"
        if args.heartbeat_s
        else "no heartbeat limit stops them"
    )
    print(
        f"{args.theorems} theorems (dojo: {args.dojo_theorems}); import {args.import_delay:g} s, tactic "
        f"{args.tactic_cost:g} s, {args.slow_fraction:.0%} of tactics run long: {heartbeats}, a "
        f"{args.tactic_timeout:g} s timeout kills; one worker process; {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}; {elapsed:.0f} s in all"
    )
    print(
        f"{'way':<36} {'thms':>4} {'proved':>6} {'imports':>7} {'on path':>8} {'Lean s':>9} {'import s':>8} "
        f"{'starts':>8} "
        f"{'tactics':>8} {'restarts':>9} {'checks':>7} {'timeouts':>8} {'stopped':>7} {'overhead':>9}"
    )
    report("repl, a process per theorem", old, args.import_delay)
    ratio = report("repl, warm pool", pool, args.import_delay)
    if killed is not None:
        report("repl, warm pool, killed at timeouts", killed, args.import_delay)
    if dojo is not None:
        report("dojo", dojo, args.import_delay)
    stats = pool.get("pool", {})
    expected = 2 + stats.get("recycles", 0)
    print(
        f"pool: {stats.get('imports', 0)} imports ({stats.get('background_imports', 0)} in the background) for "
        f"{stats.get('leases', 0)} leases and {stats.get('checks', 0)} re-checks; {stats.get('recycles', 0)} "
        f"recycles, {stats.get('drops', 0)} dead REPLs replaced, {stats.get('checker_moves', 0)} checkers moved "
        f"to a search"
    )
    print(
        "(import s: the imports on the search's path, as the stand-in charges them; within starts, restarts and "
        "checks, whose rest is starting processes and elaborating statements, replays, and re-checking)"
    )
    print(
        f"pool imports = 2 per worker process (its search REPL and its checker) + recycles: "
        f"{stats.get('imports', 0)} = 2 + {stats.get('recycles', 0)}? "
        f"{'meets' if stats.get('imports', 0) == expected else 'misses'}"
    )
    tried = pool["times"].get("tactic_calls", 0)
    print(
        f"pool: {tried / max(1, len(pool['results'])):.1f} tactics run per theorem ({args.tactics_per_node} "
        f"proposed per expansion, at most {args.max_expansions} expansions)"
    )
    common = list(old["results"])  # the baseline's theorems, the first M of the pool's
    lean = lambda out: sum(out["results"][name][1] for name in common)  # noqa: E731
    proved = lambda out: {name for name in common if out["results"][name][0] == "proved"}  # noqa: E731
    print(
        f"on the {len(common)} theorems both REPL ways ran: Lean wall time, process per theorem / pool: "
        f"{lean(old) / lean(pool):.1f}x (goal >= 3x); same theorems proved: "
        f"{'yes' if proved(old) == proved(pool) else 'no'} ({len(proved(pool))} of {len(common)})"
    )
    print(
        f"pool overhead ratio over its {args.theorems} theorems: {ratio:.3f} (goal <= 0.10: "
        f"{'meets' if ratio <= 0.10 else 'misses'})"
    )


if __name__ == "__main__":
    main()
