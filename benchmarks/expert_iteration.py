"""Expert iteration on the learnable synthetic benchmark: held-out pass rate, round by round.

Runs one ``prover iterate`` (in this process, through ``prover.cli.main``) on the learnable
synthetic environment (``--rule learnable``: the working tactic is a function of the goal's
text the policy never sees) and prints each round's pass rate on held-out theorems that
no round trains on, proved with the same budget every round:

    round 1  the model-free fixed policy (it does not know the rule)
    round 2  a tiny Llama trained from scratch on round 1's proofs
    round 3  that model trained further on the proofs of rounds 1 and 2

    python benchmarks/expert_iteration.py                  # 5-10 minutes on 2 CPU cores
    python benchmarks/expert_iteration.py --out runs/iter  # keep the rounds; rerun to resume
    prover report runs/iter/round-*/heldout                # the held-out curve

Goal: the held-out pass rate rises by at least 15 points from round 1 to round 3, and the
whole command takes under 15 minutes on 2 CPU cores. ``--threads`` sets torch's threads
(on a machine shared with other work, 1 thread per process avoids threads waiting on each
other; by default torch's own choice).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from prover.cli import main as prover


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train", type=int, default=60, help="theorems proved (and trained on) each round")
    parser.add_argument("--heldout", type=int, default=100, help="held-out theorems, never trained on")
    parser.add_argument("--budget", type=int, default=16, help="expansions per theorem, every round")
    parser.add_argument("--depth", type=int, default=8, help="longest proof")
    parser.add_argument("--steps", type=int, default=150, help="training steps per round")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated problems and of the training")
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's choice]")
    parser.add_argument("--out", default=None, help="iteration directory [default: a temporary one]")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="expert-iteration-")) / "iter"
    command = ["iterate", "--env", "synthetic", "--rule", "learnable", "--depth", str(args.depth),
               "--num-theorems", str(args.train), "--num-heldout", str(args.heldout),
               "--max-expansions", str(args.budget), "--rounds", str(args.rounds), "--steps", str(args.steps),
               "--env-seed", str(args.seed), "--train-seed", str(args.seed),
               "--num-workers", "0", "--no-progress", "--out", str(out)]
    print("prover " + " ".join(command), flush=True)
    started = time.perf_counter()
    prover(command)
    elapsed = time.perf_counter() - started

    rounds = [json.loads((out / f"round-{n}" / "round.json").read_text()) for n in range(1, args.rounds + 1)]
    print()
    print(f"held-out pass rate ({args.heldout} theorems never trained on, {args.budget} expansions each):")
    for result in rounds:
        held, train = result["heldout"], result["train"]
        print(f"  round {result['round']}: {held['pass_rate']:6.1%} ({held['num_proved']}/{held['num_theorems']})"
              f"   [training set {train['pass_rate']:6.1%}; round took {result['time_s']['total']:.0f}s]")
    gain = (rounds[-1]["heldout"]["pass_rate"] - rounds[0]["heldout"]["pass_rate"]) * 100
    print(f"round 1 -> round {args.rounds}: {gain:+.1f} points; the whole command took {elapsed / 60:.1f} min")


if __name__ == "__main__":
    main()
