"""A value model trained on one round of searches: held-out pass rate with and without it.

On the learnable synthetic benchmark (``--rule learnable``: the working tactic is a
function of the goal's text, and a wrong one fails or turns the goal into ``⊢ False``),
in one run:

1. round 1: the model-free ``fixed`` policy proves ``--train`` theorems (``--round-budget``
   expansions each) into a run directory, as ``prover iterate``'s first round does;
2. ``prover export`` of that run, and ``prover train-critic`` on it: a tiny Llama from
   scratch learns "provable" from the states on proofs and "not provable" from the states
   the search found failed;
3. the same policy proves ``--heldout`` theorems it never saw at a fixed small budget
   (``--budget``), once ordered by log-prob alone (``--scorer cumulative``) and once with
   the critic (``--scorer value_mixed --critic DIR --value-weight W``).

Every step goes through the command line's code (``prover.cli.main``), so the run
directories it leaves can be opened with ``prover report``:

    python benchmarks/critic.py                      # 2-3 minutes on 2 CPU cores
    python benchmarks/critic.py --budget 12 --value-weight 3 --out runs/critic-bench

Goal: the critic raises the held-out pass rate at the same budget.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from prover.cli import main as prover

ENV = ["--env", "synthetic", "--rule", "learnable", "--depth", "8"]
QUIET = ["--num-workers", "0", "--no-progress"]


def pass_rate(run: Path) -> tuple[int, int]:
    summary = json.loads((run / "summary.json").read_text())
    return summary["num_proved"], summary["num_theorems"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=60, help="theorems of round 1 (the critic's data)")
    parser.add_argument("--heldout", type=int, default=100, help="held-out theorems it is measured on")
    parser.add_argument("--round-budget", type=int, default=16, help="expansions per theorem in round 1")
    parser.add_argument("--budget", type=int, default=8, help="expansions per held-out theorem")
    parser.add_argument("--value-weight", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=150, help="training steps of the critic")
    parser.add_argument("--out", default=None, help="keep the runs and the critic here [default: a temporary dir]")
    args = parser.parse_args(argv)

    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="critic-bench-"))
    started = time.perf_counter()
    prover(
        [
            "prove-split",
            *ENV,
            "--num-theorems",
            str(args.train),
            "--max-expansions",
            str(args.round_budget),
            *QUIET,
            "--out",
            str(out / "round-1"),
        ]
    )
    prover(["export", str(out / "round-1"), "--out", str(out / "data")])
    prover(
        [
            "train-critic",
            "--data",
            str(out / "data"),
            "--out",
            str(out / "critic"),
            "--steps",
            str(args.steps),
            "--vocab-size",
            "320",
            "--device",
            "cpu",
        ]
    )
    trained = time.perf_counter()

    heldout_list = out / "heldout.txt"
    heldout_list.write_text("".join(f"synthetic_heldout_{i:04d}\n" for i in range(args.heldout)))
    held = ["--theorems-file", str(heldout_list), "--max-expansions", str(args.budget), *QUIET]
    prover(["prove-split", *ENV, *held, "--out", str(out / "logprob")])
    prover(
        [
            "prove-split",
            *ENV,
            *held,
            "--scorer",
            "value_mixed",
            "--critic",
            str(out / "critic"),
            "--value-weight",
            str(args.value_weight),
            "--out",
            str(out / "critic-guided"),
        ]
    )
    finished = time.perf_counter()

    alone, guided = pass_rate(out / "logprob"), pass_rate(out / "critic-guided")
    critic = json.loads((out / "critic" / "prover_critic.json").read_text())
    print()
    print(
        f"critic: trained on {critic['num_provable']} provable and {critic['num_failed']} failed states "
        f"from {args.train} round-1 searches ({trained - started:.0f}s with round 1 and the export)"
    )
    print(f"held-out pass rate, fixed policy, {args.budget} expansions per theorem, {alone[1]} theorems:")
    print(
        f"  log-prob alone (--scorer cumulative):                       {alone[0] / alone[1]:6.1%}  "
        f"({alone[0]}/{alone[1]})"
    )
    print(
        f"  with the critic (--scorer value_mixed --value-weight {args.value_weight:g}):     "
        f"{guided[0] / guided[1]:6.1%}  ({guided[0]}/{guided[1]})"
    )
    print(
        f"  difference: {(guided[0] / guided[1] - alone[0] / alone[1]) * 100:+.1f} points "
        f"(held-out searches {finished - trained:.0f}s); runs in {out}"
    )


if __name__ == "__main__":
    main()
