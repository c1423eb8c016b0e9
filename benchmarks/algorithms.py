"""Search algorithms compared at equal expansion budgets on the hard synthetic benchmark:
best-first, MCTS and RMaxTS, each with and without a critic; pass@1 and pass@8 with 95%
Wilson intervals, over 3 seeds of held-out theorems.

The hard rule (``--rule hard``, ``prover.envs.synthetic_hard``): the working tactic depends
on the goal's structure, tempting tactics lead into false goals that look true, and a node
tries 8 of 12 tactics. The policy is the fixed policy's priors *sampled* (Gumbel top-k
at temperature 1, seeded per attempt and state: a stand-in for sampling a model), so
attempts differ and pass@8 means 8 independent attempts; attempt ``a`` samples the same
way under every algorithm. Each seed is an ``--env-seed``: another draw of the problems.

The critics, each used by every algorithm (best-first through ``--scorer value_mixed``):

- ``trained``: a tiny Llama trained (``prover train-critic``) on the searches of the
  unsampled fixed policy over ``--train`` training theorems, as ``benchmarks/critic.py``
  does: it reads the state's text only;
- ``oracle``: evaluates the goal under its hypotheses (the truth a critic would have to
  learn): an upper bound on what a critic can give each algorithm.

    python benchmarks/algorithms.py                        # about 10 minutes on 2 CPU cores
    python benchmarks/algorithms.py --heldout 100 --budget 64 --critics none,trained

Goal: a table in one run; a method's row shows where it helps and where it does not.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from search import Proposal, SearchLimits, ValueMixed, cumulative_logprob, get_algorithm

from prover.envs.synthetic import SyntheticConfig, SyntheticEnv, heldout_theorems
from prover.envs.synthetic_hard import HARD_TACTICS, is_true
from prover.policies.fixed import DEFAULT_TACTICS
from prover.views.report import wilson_interval

ALGORITHMS = ("best_first", "mcts", "rmaxts")


class SampledPolicy:
    """The fixed policy's priors over the hard benchmark's tactics (those it does not
    list at -3), ``k`` of them sampled without replacement (Gumbel top-k), seeded by
    (``seed``, state); each proposal keeps its prior log-prob."""

    def __init__(self, seed: int):
        listed = dict(DEFAULT_TACTICS)
        self.priors = [(t, listed.get(t, -3.0)) for t in HARD_TACTICS]
        self.seed = seed

    def propose(self, states: Sequence[str], k: int) -> list[list[Proposal]]:
        answers = []
        for state in states:
            rng = random.Random(f"{self.seed}:{state}")
            keyed = [(lp - math.log(-math.log(rng.random() or 1e-12)), t, lp) for t, lp in self.priors]
            answers.append([Proposal(t, lp) for _, t, lp in sorted(keyed, reverse=True)[:k]])
        return answers


class OracleCritic:
    """log P(provable): near 0 for a true goal, -8 for a false one."""

    def score(self, states: Sequence[str]) -> list[float]:
        return [-0.05 if is_true(s) else -8.0 for s in states]


class CachedCritic:
    """A critic whose scores are remembered by state (the attempts share many states)."""

    def __init__(self, critic):
        self.critic = critic
        self.cache: dict[str, float] = {}

    def score(self, states: Sequence[str]) -> list[float]:
        missing = [s for s in dict.fromkeys(states) if s not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.critic.score(missing)))
        return [self.cache[s] for s in states]


def train_critic(out: Path, train: int, budget: int, steps: int) -> CachedCritic:
    """Round 1 of the fixed policy on the training theorems, exported, a critic trained on it."""
    from prover.cli import main as prover
    from prover.policies.critic import CriticConfig
    from prover.policies.critic import build as build_critic

    env = ["--env", "synthetic", "--rule", "hard"]
    quiet = ["--num-workers", "0", "--no-progress"]
    prover(
        [
            "prove-split",
            *env,
            "--num-theorems",
            str(train),
            "--max-expansions",
            str(budget),
            *quiet,
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
            str(steps),
            "--vocab-size",
            "320",
            "--device",
            "cpu",
        ]
    )
    return CachedCritic(build_critic(CriticConfig(model=str(out / "critic"), device="cpu")))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heldout", type=int, default=40, help="held-out theorems per seed")
    parser.add_argument("--budget", type=int, default=32, help="expansions per search, every algorithm")
    parser.add_argument("--attempts", type=int, default=8, help="attempts per theorem (pass@ATTEMPTS)")
    parser.add_argument("--seeds", type=int, default=3, help="problem seeds (--env-seed 0..SEEDS-1)")
    parser.add_argument("--depth", type=int, default=5, help="--depth of the hard rule (longest proof)")
    parser.add_argument(
        "--critics",
        default="none,trained,oracle",
        help="comma-separated: none, trained (a tiny critic trained here), oracle",
    )
    parser.add_argument("--train", type=int, default=60, help="training theorems of the trained critic")
    parser.add_argument("--round-budget", type=int, default=100, help="expansions per training theorem")
    parser.add_argument("--steps", type=int, default=150, help="training steps of the trained critic")
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's choice]")
    parser.add_argument("--out", default=None, help="where the critic is trained [default: a temporary dir]")
    args = parser.parse_args(argv)
    critics = [c.strip() for c in args.critics.split(",") if c.strip()]
    unknown = set(critics) - {"none", "trained", "oracle"}
    if unknown:
        sys.exit(f"--critics: unknown critic {sorted(unknown)[0]!r}; choose from none, trained, oracle")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    models = {"none": None, "oracle": OracleCritic()}
    if "trained" in critics:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="algorithms-bench-"))
        models["trained"] = train_critic(out, args.train, args.round_budget, args.steps)
        print(f"trained critic in {out / 'critic'} ({time.perf_counter() - started:.0f}s)", flush=True)

    limits = SearchLimits(max_expansions=args.budget)
    rows = []
    for critic in critics:
        for algorithm in ALGORITHMS:
            t0 = time.perf_counter()
            first = any_ = trials = 0
            search = get_algorithm(algorithm)
            for seed in range(args.seeds):
                config = SyntheticConfig(rule="hard", depth=args.depth, seed=seed)
                for theorem in heldout_theorems(args.heldout):
                    proved = []
                    for attempt in range(args.attempts):
                        result = search(
                            theorem,
                            SampledPolicy(attempt),
                            SyntheticEnv(config),
                            limits,
                            ValueMixed(1.0) if models[critic] else cumulative_logprob,
                            value_model=models[critic],
                        )
                        proved.append(result.proved)
                    first += proved[0]
                    any_ += any(proved)
                    trials += 1
            rows.append((algorithm, critic, first, any_, trials, time.perf_counter() - t0))
            print(
                f"  {algorithm:<10} critic {critic:<8} pass@1 {first}/{trials}  pass@{args.attempts} {any_}/{trials}"
                f"  ({rows[-1][-1]:.0f}s)",
                flush=True,
            )

    print()
    print(
        f"hard synthetic benchmark, depth {args.depth}: {args.heldout} held-out theorems x {args.seeds} seeds, "
        f"{args.budget} expansions per search, 8 of 12 tactics per state, {args.attempts} sampled attempts"
    )
    print(
        f"{'algorithm':<11}{'critic':<9}{'pass@1':>8}  {'95% interval':<15}{f'pass@{args.attempts}':>8}  95% interval"
    )
    for algorithm, critic, first, any_, trials, _ in rows:
        low1, high1 = wilson_interval(first, trials)
        lowk, highk = wilson_interval(any_, trials)
        print(
            f"{algorithm:<11}{critic:<9}{first / trials:>8.1%}  [{low1:.1%}, {high1:.1%}]".ljust(44)
            + f"{any_ / trials:>8.1%}  [{lowk:.1%}, {highk:.1%}]"
        )
    baseline = {(a, c): f / t for a, c, f, _, t, _ in rows}
    for critic in critics:
        if ("best_first", critic) in baseline:
            for algorithm in ALGORITHMS[1:]:
                gain = (baseline[(algorithm, critic)] - baseline[("best_first", critic)]) * 100
                print(f"{algorithm} vs best_first, critic {critic}: pass@1 {gain:+.1f} points")
    for critic in critics:
        if critic != "none" and ("best_first", "none") in baseline:
            gains = ", ".join(f"{a} {(baseline[(a, critic)] - baseline[(a, 'none')]) * 100:+.1f}" for a in ALGORITHMS)
            print(f"critic {critic} vs none: pass@1 {gains} points")
    print(f"the whole run took {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
