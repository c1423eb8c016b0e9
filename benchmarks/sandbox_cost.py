"""What the Lean sandbox costs: the same REPL sessions with ``--sandbox off`` and confined.

Each session is what a search does on the Lean side through the real lean-interact: start
a REPL process (``lake env repl``, through the confining ``lake`` when the sandbox is on),
elaborate the header and the statement, run the four tactics of a recorded proof, and
re-check the whole proof with ``#print axioms``. The Lean is the stand-in toolchain
(``tests/lean_standin``) charging what Lean charges (``tests/lean_standin/costs.py``): by
default 8 s per import of the header (``import Mathlib`` on an idle machine, as Mathlib's
users report it; the search REPL and the checker REPL each import once) and 0.1 s per
tactic. ``--import-s 0 --tactic-s 0`` measures the bare process start instead, the upper
bound of the sandbox's share (tens of milliseconds against a stand-in that answers at once).
The modes take turns session by session, so a change of the machine's load hits them alike,
and the medians are compared; the load average is printed.

    python benchmarks/sandbox_cost.py                            # 4 sessions per mode at Lean's costs
    python benchmarks/sandbox_cost.py --import-s 0 --tactic-s 0 --sessions 20 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HEADER = "import Mathlib\n"
STATEMENT = "theorem complex_and (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r :="
PROOF = ["apply And.intro", "exact h1.left", "apply h2", "exact h1.right"]


def prepare(directory: Path, startup_delay_s: float, import_s: float, tactic_s: float) -> dict:
    """The stand-in toolchain, charging ``import_s`` per import and ``tactic_s`` per tactic,
    on this process's PATH, and a Lake project for it."""
    from prover.data import repl_fixtures_path

    from tests.lean_standin import LEAN_TOOLCHAIN, install, standin_variables

    env = install(
        directory,
        traces=repl_fixtures_path(),
        log=False,
        startup_delay_s=startup_delay_s or None,
        import_delay_s=import_s or None,
        tactic_cost_s=tactic_s or None,
    )
    os.environ.update(standin_variables(env))
    os.environ.pop("ELAN_TOOLCHAIN", None)
    project = directory / "project"
    project.mkdir()
    (project / "lean-toolchain").write_text(LEAN_TOOLCHAIN + "\n")
    (project / "lakefile.lean").write_text("import Lake\nopen Lake DSL\n\npackage project\n")
    return {"env": env, "project": project}


def make_env(standin: dict, mode: str):
    from prover.envs.repl import ReplEnv

    return ReplEnv(
        lean_project=standin["project"],
        repl_path=standin["env"]["LEAN_STANDIN_REPL_DIR"],
        lake_path=standin["env"]["LEAN_STANDIN_LAKE"],
        tactic_timeout_s=60,
        startup_timeout_s=120,
        memory_limit_mb=4096,
        sandbox=mode,
    )


def session(env) -> float:
    """Seconds the Lean side takes for one session: a new Lean process, the proof, the re-check."""
    from search import ProofFinished, Theorem

    theorem = Theorem("complex_and", statement=STATEMENT, header=HEADER)
    started = time.perf_counter()
    state = env.start(theorem)
    for tactic in PROOF:
        state = env.run_tactic(state, tactic)
    assert isinstance(state, ProofFinished), state
    problem = env.check_proof(theorem, PROOF)
    assert problem is None, problem
    env.close()
    return time.perf_counter() - started


def available(mode: str) -> bool:
    from prover.envs import sandbox

    try:
        return sandbox.resolve(mode) == mode
    except Exception:  # the machine lacks it
        return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=4, help="REPL sessions per mode and round")
    parser.add_argument("--rounds", type=int, default=1, help="rounds; the modes alternate within each")
    parser.add_argument("--import-s", type=float, default=8.0, help="seconds the stand-in takes per import")
    parser.add_argument("--tactic-s", type=float, default=0.1, help="seconds the stand-in takes per tactic")
    parser.add_argument(
        "--startup-delay",
        type=float,
        default=0.0,
        help="seconds the stand-in waits before its first answer, standing in for Lean's imports",
    )
    args = parser.parse_args(argv)

    modes = [m for m in ("bwrap", "landlock") if available(m)]
    if not modes:
        print("no sandbox is available here (install bubblewrap); nothing to compare")
        return
    times: dict[str, list[float]] = {mode: [] for mode in ["off", *modes]}
    with tempfile.TemporaryDirectory() as directory:
        standin = prepare(Path(directory), args.startup_delay, args.import_s, args.tactic_s)
        envs = {mode: make_env(standin, mode) for mode in times}
        for env in envs.values():
            session(env)  # warm the file cache and lean-interact's set-up
        for round_ in range(args.rounds):
            for k in range(args.sessions):  # the modes take turns, session by session
                order = list(times) if (round_ + k) % 2 == 0 else list(reversed(times))
                for mode in order:
                    times[mode].append(session(envs[mode]))
    count = args.sessions * args.rounds
    print(
        f"{count} REPL sessions per mode (a new Lean process, 4 tactics, the re-check), taking turns; "
        f"stand-in import {args.import_s:g} s, tactic {args.tactic_s:g} s, start-up delay {args.startup_delay:g} s; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    off = statistics.median(times["off"])
    print(f"  sandbox off      median {1000 * off:7.1f} ms per session  (total {sum(times['off']):6.2f} s)")
    for mode in modes:
        median = statistics.median(times[mode])
        cost = (median - off) / off
        print(
            f"  sandbox {mode:<8} median {1000 * median:7.1f} ms per session  (total {sum(times[mode]):6.2f} s)  "
            f"cost {100 * cost:+.1f}% of the Lean side's time (goal <= 5%: {'meets' if cost <= 0.05 else 'misses'})"
        )


if __name__ == "__main__":
    main()
