"""Policy batching: states per second when ``propose`` gets 1, 4, 16 or 64 states per call.

The same 64 proof states (from the shipped miniF2F traces) go through ``HFPolicy.propose``
in calls of each batch size, ``k`` candidates per state, and the states/s of each size is
compared with one state per call, all measured in one run. By default the model is a tiny
random Llama (CPU, built in seconds, the shape ``prover.training`` trains); with
``--model`` any causal LM, e.g. Llemma on a GPU:

    python benchmarks/policy_batching.py                          # tiny Llama on the CPU
    python benchmarks/policy_batching.py --model EleutherAI/llemma_7b --prompt llemma --device cuda

Goal: a 16-state batch gives at least 4x the states/s of one state at a time. Each size
runs ``--repeats`` times, in alternating order, and keeps its fastest round.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from prover.data import traces_path
from prover.policies.hf import HFConfig, HFPolicy, load_model
from prover.policies.prompts import get_prompt

BATCH_SIZES = (1, 4, 16, 64)
FALLBACK_STATES = [f"x y : ℕ\nh₀ : x + y = {n}\nh₁ : x - y = {n % 7}\n⊢ x = {n // 2}" for n in range(64)]


def benchmark_states(count: int = 64) -> list[str]:
    """``count`` distinct states from the shipped traces (made-up ones where too few)."""
    path = traces_path()
    states: dict[str, None] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                states.setdefault(json.loads(line)["state_before"], None)
    picked = [s for s in states if len(s) < 600][:count]  # a few states run to 4k characters
    return (picked + FALLBACK_STATES)[:count]


def tiny_policy(config: HFConfig, states: list[str]) -> HFPolicy:
    """An untrained tiny Llama (the trainer's shape), its tokenizer trained on ``states``."""
    from prover.training import build_tiny_llama, build_tokenizer

    fmt = get_prompt(config.prompt)
    tokenizer = build_tokenizer([fmt.render(s) for s in states])
    model = build_tiny_llama(tokenizer)
    with tempfile.TemporaryDirectory() as directory:  # through from_pretrained, as a user's model
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        model, tokenizer = load_model(directory, config.device)
    return HFPolicy(model, tokenizer, config)


def time_batches(policy: HFPolicy, states: list[str], batch_size: int, k: int) -> float:
    """Seconds to propose for every state, ``batch_size`` states per call."""
    started = time.perf_counter()
    for start in range(0, len(states), batch_size):
        policy.propose(states[start : start + batch_size], k)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="states/s of HFPolicy.propose by batch size")
    parser.add_argument("--model", default=None, help="model directory or hub id (default: a tiny random Llama)")
    parser.add_argument("--prompt", default="goal_proofstep", choices=["llemma", "goal_proofstep"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--k", type=int, default=8, help="candidates per state")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--states", type=int, default=64)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(BATCH_SIZES))
    parser.add_argument("--repeats", type=int, default=2, help="rounds over all sizes; the fastest round counts")
    args = parser.parse_args(argv)

    config = HFConfig(
        model=args.model or "tiny", prompt=args.prompt, device=args.device,
        decoding="sampling", max_new_tokens=args.max_new_tokens,
    )
    states = benchmark_states(args.states)
    policy = HFPolicy.from_config(config) if args.model else tiny_policy(config, states)
    policy.propose(states[:2], args.k)  # warm-up: first-call allocations and kernel selection
    print(f"model {args.model or 'tiny random Llama'} on {policy.device}, prompt {config.prompt}, "
          f"k={args.k}, {args.max_new_tokens} new tokens, {len(states)} states")
    rates: dict[int, float] = {}
    for round_number in range(args.repeats):
        # Rounds alternate the order of sizes, and each size keeps its fastest round, so
        # a burst of load from other processes on a shared machine does not pick a winner.
        order = args.sizes if round_number % 2 == 0 else list(reversed(args.sizes))
        for size in order:
            seconds = time_batches(policy, states, size, args.k)
            rates[size] = max(rates.get(size, 0.0), len(states) / seconds)
    base = rates[args.sizes[0]]
    print(f"{'states/call':>12} {'seconds':>9} {'states/s':>9} {'vs ' + str(args.sizes[0]):>8}")
    for size in args.sizes:
        print(f"{size:>12} {len(states) / rates[size]:>9.2f} {rates[size]:>9.2f} {rates[size] / base:>7.1f}x")
    if 1 in rates and 16 in rates:
        ratio = rates[16] / rates[1]
        verdict = "met" if ratio >= 4 else "NOT met"
        print(f"goal: 16 states per call >= 4x the states/s of 1: {ratio:.1f}x, {verdict}")


if __name__ == "__main__":
    main()
