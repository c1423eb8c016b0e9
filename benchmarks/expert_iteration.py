"""Expert iteration on the hard synthetic benchmark: held-out pass rate, round by round,
for fine-tuning alone (SFT) and fine-tuning followed by DPO on the preference pairs.

Runs ``prover iterate`` (in this process, through ``prover.cli.main``) once per arm on the
synthetic environment (``--rule hard`` by default: the working tactic follows the goal's
structure, tempting tactics lead into false goals that look true, 8 of 12 tactics tried;
``--rule learnable`` gives the old smoke test) and prints each round's pass rate on
held-out theorems that no round trains on, proved with the same budget every round:

    round 1  the model-free fixed policy (it does not know the rule)
    round 2  a tiny Llama trained from scratch on round 1's proofs (SFT), then, in the
             SFT+DPO arm, trained by DPO on round 1's preference pairs (proof tactic over
             a failed one at the same state)
    round 3  that model trained further on the proofs of rounds 1 and 2 (and DPO again)

``--curate`` curates the data between rounds in both arms (``prover iterate --curate``).

    python benchmarks/expert_iteration.py                  # about 20 minutes on 2 CPU cores
    python benchmarks/expert_iteration.py --arms sft --rule learnable --depth 8   # the smoke test
    python benchmarks/expert_iteration.py --out runs/iter  # keep the rounds; rerun to resume
    prover report runs/iter/sft/round-*/heldout            # the held-out curve

Goal: the held-out pass rate rises from round 1 to round 3, and DPO adds to SFT; the
figures say where it does not. ``--threads`` sets torch's threads (on a machine shared
with other work, 1 thread per process avoids threads waiting on each other).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from prover.cli import main as prover

ARMS = {"sft": ("SFT", []), "dpo": ("SFT+DPO", ["--dpo"])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rule", default="hard", choices=("hard", "learnable"), help="the synthetic rule")
    parser.add_argument("--arms", default="sft,dpo", help="comma-separated: sft, dpo (SFT then DPO)")
    parser.add_argument("--train", type=int, default=80, help="theorems proved (and trained on) each round")
    parser.add_argument("--heldout", type=int, default=60, help="held-out theorems, never trained on")
    parser.add_argument("--budget", type=int, default=16, help="expansions per theorem, every round")
    parser.add_argument("--depth", type=int, default=3, help="longest proof")
    parser.add_argument("--steps", type=int, default=150, help="training steps per round")
    parser.add_argument("--dpo-steps", type=int, default=50, help="DPO steps per round (the dpo arm)")
    parser.add_argument("--curate", action="store_true", help="curate the data between rounds (both arms)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated problems and of the training")
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's choice]")
    parser.add_argument("--out", default=None, help="iteration directory [default: a temporary one]")
    args = parser.parse_args(argv)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if not arms or set(arms) - set(ARMS):
        parser.error(f"--arms takes sft and/or dpo, not {args.arms!r}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="expert-iteration-"))
    started = time.perf_counter()
    figures: dict[str, list[dict]] = {}
    for arm in arms:
        command = [
            "iterate",
            "--env",
            "synthetic",
            "--rule",
            args.rule,
            "--depth",
            str(args.depth),
            "--num-theorems",
            str(args.train),
            "--num-heldout",
            str(args.heldout),
            "--max-expansions",
            str(args.budget),
            "--rounds",
            str(args.rounds),
            "--steps",
            str(args.steps),
            "--env-seed",
            str(args.seed),
            "--train-seed",
            str(args.seed),
            "--train-device",
            "cpu",
            *ARMS[arm][1],
            *(["--dpo-steps", str(args.dpo_steps)] if arm == "dpo" else []),
            *(["--curate"] if args.curate else []),
            "--num-workers",
            "0",
            "--no-progress",
            "--out",
            str(out / arm),
        ]
        print("prover " + " ".join(command), flush=True)
        prover(command)
        figures[arm] = [
            json.loads((out / arm / f"round-{n}" / "round.json").read_text()) for n in range(1, args.rounds + 1)
        ]
    elapsed = time.perf_counter() - started

    print()
    print(
        f"held-out pass rate, {args.rule} synthetic benchmark (depth {args.depth}; {args.heldout} theorems never "
        f"trained on, {args.budget} expansions each{'; curated data' if args.curate else ''}):"
    )
    print("round  " + "".join(f"{ARMS[arm][0]:<22}" for arm in arms))
    for index in range(args.rounds):
        cells = []
        for arm in arms:
            held = figures[arm][index]["heldout"]
            cells.append(f"{held['pass_rate']:6.1%} ({held['num_proved']}/{held['num_theorems']})".ljust(22))
        print(f"{index + 1:<7}" + "".join(cells))
    for arm in arms:
        rounds = figures[arm]
        gain = (rounds[-1]["heldout"]["pass_rate"] - rounds[0]["heldout"]["pass_rate"]) * 100
        dpo = [r["dpo"]["num_preferences"] for r in rounds if r.get("dpo")]
        print(
            f"{ARMS[arm][0]}: round 1 -> round {args.rounds}: {gain:+.1f} points"
            + (f" (DPO on {', '.join(map(str, dpo))} pairs)" if dpo else "")
        )
    if len(arms) == 2:
        last = {arm: figures[arm][-1]["heldout"]["pass_rate"] for arm in arms}
        print(f"SFT+DPO vs SFT at round {args.rounds}: {(last['dpo'] - last['sft']) * 100:+.1f} points")
    print(f"the whole command took {elapsed / 60:.1f} min; runs in {out}")


if __name__ == "__main__":
    main()
