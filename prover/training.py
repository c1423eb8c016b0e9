"""A tiny Llama tactic policy, trained on the CPU in minutes, for offline runs and tests.

It learns the (state_before -> tactic) pairs of a trace file (the format of
``prover.traces``; by default the shipped ``prover/data/tactic_traces.jsonl``): records
whose tactic Lean accepted, each once. The tokenizer is a byte-level BPE trained on the
same text, the model a small random-initialised ``LlamaForCausalLM``; both are saved with
``save_pretrained``, so the directory loads like any hub model:

    python -m prover.training --out runs/tiny-policy   # 2-5 min on 2 CPU cores
    prover attack --env replay --policy hf --model runs/tiny-policy ...

The directory also holds ``prover_policy.json`` recording the prompt format the model
was trained on (``goal_proofstep`` by default, or ``llemma``) and its prompt-token limit;
``HFPolicy`` reads it and uses that format, since the model knows no other.

It memorises the traces rather than learning Lean: evaluated on the replay environment
of the same traces it shows the whole pipeline (tokenizer, model, batched generation,
scores, search) working end to end, not a prover that generalises.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from prover.data import traces_path as default_traces_path
from prover.policies.hf import POLICY_METADATA, HFConfig
from prover.policies.prompts import PROMPTS, get_prompt

SPECIAL_TOKENS = ("<s>", "</s>")  # Llama's names for BOS and EOS


@dataclass(frozen=True)
class TinyLlamaShape:
    """Sizes of the tiny model: small enough to train on two CPU cores in minutes."""

    vocab_size: int = 2048
    hidden_size: int = 128
    intermediate_size: int = 384
    num_hidden_layers: int = 3
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 1024
    initializer_range: float = 0.02  # larger gives a peakier (less uniform) untrained model


def build_tokenizer(texts: Iterable[str], vocab_size: int = 2048):
    """A byte-level BPE tokenizer trained on ``texts``, as a ``PreTrainedTokenizerFast``.

    Byte-level, so any Lean text (⊢, ℕ, ℝ, subscripts) encodes without unknown tokens.
    Like Llama's, it prepends ``<s>`` and knows ``</s>`` as end of sequence; it has no pad
    token (the policy pads with EOS, as for Llama).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    bos, eos = SPECIAL_TOKENS
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tokenizer.token_to_id(bos))]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=bos, eos_token=eos)


def build_tiny_llama(tokenizer, shape: TinyLlamaShape = TinyLlamaShape(), seed: int = 0):
    """A ``LlamaForCausalLM`` of ``shape`` with seeded random weights, matching ``tokenizer``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        max_position_embeddings=shape.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
        initializer_range=shape.initializer_range,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def training_pairs(traces_path: str | Path | None = None) -> list[tuple[str, str]]:
    """(state_before, tactic) for every record whose tactic Lean accepted, each pair once."""
    path = Path(traces_path) if traces_path else default_traces_path()
    pairs: dict[tuple[str, str], None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        if record.get("error") or not record.get("tactic", "").strip():
            continue
        pairs[(record["state_before"], record["tactic"].strip())] = None
    return list(pairs)


def train_tiny_policy(
    traces_path: str | Path | None,
    out_dir: str | Path,
    steps: int = 1200,
    seed: int = 0,
    prompt: str = "goal_proofstep",
    batch_size: int = 16,
    learning_rate: float = 3e-3,
    max_prompt_tokens: int = 384,
    shape: TinyLlamaShape = TinyLlamaShape(),
    progress: Callable[[str], None] | None = print,
) -> Path:
    """Train a tiny Llama on a trace file's (state -> tactic) pairs; return its directory.

    ``traces_path`` None means the shipped traces (``prover.data.traces_path()``). The
    loss is the cross-entropy of the tactic tokens (and the closing EOS) given the prompt,
    in the ``prompt`` format, with states cut from the top exactly as ``HFPolicy`` cuts them at
    inference. Writes ``out_dir`` with the model, tokenizer and ``prover_policy.json``
    (prompt format, prompt-token limit, losses), loadable by ``--policy hf --model out_dir``.
    """
    import torch

    from prover.policies.hf import HFPolicy

    fmt = get_prompt(prompt)
    pairs = training_pairs(traces_path)
    if not pairs:
        raise ValueError(f"no accepted tactics in {traces_path or default_traces_path()}")
    out = Path(out_dir)
    started = time.perf_counter()
    corpus = [fmt.render(state) + fmt.target(tactic) for state, tactic in pairs]
    tokenizer = build_tokenizer(corpus, vocab_size=shape.vocab_size)
    model = build_tiny_llama(tokenizer, shape, seed=seed)
    # The policy object renders (and cuts) prompts exactly as inference will.
    policy = HFPolicy(model, tokenizer, HFConfig(prompt=prompt, max_prompt_tokens=max_prompt_tokens))
    examples = [_encode(tokenizer, policy.render(state), fmt.target(tactic)) for state, tactic in pairs]

    torch.manual_seed(seed)
    rng = random.Random(seed)
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    losses: list[float] = []
    order: list[int] = []
    for step in range(steps):
        if len(order) < batch_size:
            order += rng.sample(range(len(examples)), len(examples))
        batch, order = [examples[i] for i in order[:batch_size]], order[batch_size:]
        loss = _batch_loss(model, batch, tokenizer.eos_token_id)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        if progress and (step % 50 == 0 or step == steps - 1):
            progress(f"step {step + 1}/{steps}  loss {sum(losses[-50:]) / len(losses[-50:]):.3f}  "
                     f"{time.perf_counter() - started:.0f}s")
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    metadata = {
        "prompt": prompt,
        "max_prompt_tokens": max_prompt_tokens,
        "trained_on": str(traces_path or default_traces_path()),
        "num_pairs": len(pairs),
        "steps": steps,
        "seed": seed,
        "first_loss": losses[0],
        "final_loss": sum(losses[-20:]) / len(losses[-20:]),
        "train_time_s": round(time.perf_counter() - started, 1),
    }
    (out / POLICY_METADATA).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return out


def _encode(tokenizer, prompt: str, target: str) -> tuple[list[int], int]:
    """Token ids of prompt + target + EOS, and where the target starts."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return prompt_ids + target_ids, len(prompt_ids)


def _batch_loss(model, batch: list[tuple[list[int], int]], pad_id: int):
    import torch

    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    predicts = torch.zeros((len(batch), width), dtype=torch.bool)  # position p predicts token p+1
    for row, (ids, target_start) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
        predicts[row, target_start - 1 : len(ids) - 1] = True
    hidden = model.model(input_ids=input_ids, attention_mask=attention).last_hidden_state
    # The LM head only where a target token is predicted: most positions are prompt.
    logits = model.lm_head(hidden[predicts])
    targets = input_ids[:, 1:][predicts[:, :-1]]
    return torch.nn.functional.cross_entropy(logits.float(), targets)


def evaluate_on_replay(
    model_dir: str | Path,
    traces_path: str | Path | None = None,
    k: int = 8,
    decoding: str = "beam",
    max_expansions: int = 32,
    time_limit_s: float = 60.0,
) -> tuple[int, int]:
    """(proved, total) of best-first search with the trained policy over every theorem of
    the replay environment built from ``traces_path``."""
    from search import SearchLimits, Theorem, best_first_search

    from prover.envs.replay import ReplayEnv
    from prover.policies.hf import build
    from prover.traces import load_traces

    policy = build(HFConfig(model=str(model_dir), decoding=decoding, max_new_tokens=96))
    traces = load_traces(str(traces_path) if traces_path else None)
    limits = SearchLimits(max_expansions=max_expansions, time_limit_s=time_limit_s, tactics_per_node=k)
    proved = 0
    for name in traces.names():
        result = best_first_search(Theorem(name), policy, ReplayEnv(traces), limits)
        proved += result.proved
    return proved, len(traces.names())


def main(argv: list[str] | None = None) -> None:
    """``python -m prover.training --out DIR``: train, then (unless --no-eval) report
    how many replay theorems the trained policy proves."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory to write the model to")
    parser.add_argument("--traces", default=None, help="trace file (default: the shipped miniF2F traces)")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prompt", default="goal_proofstep", choices=sorted(PROMPTS))
    parser.add_argument("--no-eval", action="store_true", help="skip the replay evaluation")
    args = parser.parse_args(argv)
    out = train_tiny_policy(args.traces, args.out, steps=args.steps, seed=args.seed, prompt=args.prompt)
    print(f"saved the trained policy to {out}")
    if not args.no_eval:
        started = time.perf_counter()
        proved, total = evaluate_on_replay(out, args.traces)
        print(f"replay: proved {proved} of {total} theorems (beam k=8, 32 expansions) "
              f"in {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
