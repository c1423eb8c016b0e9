"""Training tactic policies and value models: a tiny Llama on the CPU in minutes, or a
Hugging Face model fine-tuned on a GPU (in full, or with LoRA).

A policy learns (state -> tactic) pairs: the accepted steps of a trace file (the format
of ``prover.traces``; by default the shipped ``prover/data/tactic_traces.jsonl``), or the
proof steps of a data directory written by ``prover export`` (``prover.learn.export``). The loss
is the cross-entropy of the tactic tokens (and the closing EOS) given the prompt, cut from
the top exactly as ``HFPolicy`` cuts it at inference.

- With no base model, a tiny ``LlamaForCausalLM`` is built with seeded random weights and a
  byte-level BPE tokenizer trained on the same text: 2-5 minutes on 2 CPU cores.
- With ``base_model`` (a local directory, e.g. an earlier tiny policy, or a hub id such as
  Llemma) that model is fine-tuned: in full, or with ``lora`` through ``peft``
  (``pip install 'lean-prover[train]'``), the adapters merged into the saved weights so the
  directory loads like any model. The loop runs on ``accelerate``; several GPUs take
  ``accelerate launch -m prover.cli train-policy --data DATA --model BASE --out DIR``.

Either way the directory is written with ``save_pretrained`` and holds ``prover_policy.json``:
the prompt format the model was trained on (``HFPolicy`` reads it and uses that format,
since the model knows no other), its prompt-token limit, the base model, and where its data
came from (the data path and, for an export, its ``export.json``: run directories, their
policies, statistics):

    prover train-policy --steps 1200 --vocab-size 2048 --out runs/tiny-policy   # the shipped traces
    prover train-policy --data data/round-1 --out runs/policy-1   # an export
    prover attack --env replay --policy hf --model runs/tiny-policy ...

``train_critic`` trains a value model (``prover.policies.critic``) the same way, on an
export's provable and failed states (``prover train-critic``).

Trained on the shipped traces and evaluated on the replay environment of the same traces,
the tiny policy memorises rather than learns Lean: it shows the pipeline working end to
end. The learnable synthetic benchmark (``prover.envs.synthetic``, ``--rule learnable``)
is where a tiny model does learn something, from its own searches (``prover iterate``).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from prover.data import traces_path as default_traces_path
from prover.errors import MissingDependencyError, ProverError
from prover.policies.critic import CriticConfig
from prover.policies.hf import POLICY_METADATA, HFConfig
from prover.policies.prompts import PROMPTS, get_prompt
from prover.settings import Settings, setting

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


MAX_VOCAB_SIZE = 1_000_000  # a tokenizer this large is no tiny model's; beyond it is a typo
MAX_SEED = 2**32 - 1  # what numpy's seeding takes


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
    """(state_before, tactic) of every step on a proof, each pair once: the records of a
    trace file whose tactic Lean accepted, or the proof records of an export (a data
    directory or one of its JSONL files)."""
    from prover.learn.export import data_file, read_records, training_data

    path = data_file(traces_path) if traces_path else default_traces_path()
    return training_data(read_records(path)).pairs


LEARNING_RATE_RULE = (
    "3e-3 for a tiny model from scratch, 2e-4 with --lora, and for fine-tuning in full "
    "1e-3 for a small model (under 100M parameters, such as an earlier tiny policy) or 1e-5 for "
    "a large one"
)


@dataclass(frozen=True)
class TrainOptions(Settings):
    """How a policy or value model is trained (one object, passed whole): the flags of
    ``prover train-policy``, ``train-critic`` and, but for the model and prompt (a round's
    policy decides them), ``prover iterate``.

    The defaults suit the small data of an export or of the shipped traces (a few hundred
    proof steps): 150 steps, and a tokenizer with few merges (merges learned from a few
    hundred proof steps are whole chunks of those states, and a model reading them
    memorises instead of learning). The README's tiny trace policy asks for more steps.
    """

    steps: int = setting(150, "Optimiser steps.", min=1)
    batch_size: int = setting(16, "Examples per step.", min=1)
    learning_rate: float | None = setting(None, f"[default: {LEARNING_RATE_RULE}]", min=0, min_open=True)
    seed: int = setting(
        0, "Seed of the initial weights and the batches (iterate: and of the data split).", min=0, max=MAX_SEED
    )
    device: str = setting("auto", "auto, cpu, cuda or cuda:N.")
    vocab_size: int = setting(
        320,
        "A tiny model from scratch: its tokenizer's vocabulary (256 bytes, 2 special tokens, merges); few "
        "merges generalise better from little data.",
        min=260,
        max=MAX_VOCAB_SIZE,
    )
    prompt: str = setting(
        "goal_proofstep",
        "Prompt format to train on (the model directory remembers it; a --model keeps the one it records).",
        choices=sorted(PROMPTS),
    )
    max_prompt_tokens: int | None = setting(
        None,
        "Prompt tokens kept (cut from the top, as the policy cuts them); the model directory records it and "
        "the policy keeps to it [default: the model's context length less room for a tactic].",
        min=16,
        metavar="TOKENS",
    )
    base_model: str | None = setting(
        None,
        "A model to fine-tune: a local directory or a Hugging Face id [default: a tiny Llama from scratch].",
        flag="--model",
        metavar="MODEL",
    )
    lora: bool = setting(False, "Fine-tune LoRA adapters (merged into the saved model); needs peft.")
    lora_rank: int = setting(16, "--lora: rank of the adapters.", min=1)
    precision: str = setting(
        "fp32",
        "Arithmetic of the passes: fp32, or bf16/fp16 mixed precision, the weights and optimiser state "
        "kept in float32 (master weights: updates of 1e-5 vanish in bfloat16).",
        choices=("fp32", "bf16", "fp16"),
    )
    optimizer: str = setting(
        "adamw",
        "adamw (float32 state, 8 bytes a parameter), or adamw_8bit (bitsandbytes on a GPU: 2 bytes).",
        choices=("adamw", "adamw_8bit"),
    )
    gradient_checkpointing: bool = setting(
        False,
        "Recompute activations in the backward pass instead of keeping them: far less memory, about a third more time.",
    )
    gradient_accumulation: int = setting(
        1,
        "Micro-batches of --batch-size per optimiser step: a larger effective batch in the same memory.",
        min=1,
    )
    # Not a setting: the other sizes of the tiny model (tests shrink it); None: TinyLlamaShape with vocab_size.
    shape: TinyLlamaShape | None = None

    def model_shape(self) -> TinyLlamaShape:
        """The shape of a tiny model from scratch."""
        return self.shape if self.shape is not None else TinyLlamaShape(vocab_size=self.vocab_size)

    def resolved_learning_rate(self, num_parameters: int) -> float:
        """``learning_rate``, or where it is None the rule in its help."""
        if self.learning_rate is not None:
            return self.learning_rate
        if self.base_model is None:
            return 3e-3
        if self.lora:
            return 2e-4
        return 1e-3 if num_parameters < 100_000_000 else 1e-5


def train_policy(
    data: str | Path | None,
    out_dir: str | Path,
    options: TrainOptions = TrainOptions(),
    progress: Callable[[str], None] | None = print,
) -> Path:
    """Train a policy on the proof steps of ``data`` (a data directory from ``prover export``,
    a JSONL file, or None for the shipped traces); return the model directory.

    Writes ``out_dir`` with the model, tokenizer and ``prover_policy.json`` (prompt format,
    prompt-token limit, base model, data provenance, losses), loadable by
    ``--policy hf --model out_dir``. With an export that has a validation split, the
    validation loss is recorded too.
    """
    from prover.learn.export import data_file, provenance, read_records, training_data
    from prover.policies.hf import HFPolicy

    source = data_file(data) if data else default_traces_path()
    pairs = training_pairs(source)
    if not pairs:
        raise ProverError(f"no proof steps to learn from in {source}")
    valid_pairs: list[tuple[str, str]] = []
    if data and Path(data).is_dir() and (Path(data) / "valid.jsonl").is_file():
        valid_pairs = training_data(read_records(Path(data) / "valid.jsonl")).pairs
    started = time.perf_counter()
    session = _Session.start(options, prompt_texts=lambda fmt: [fmt.render(s) + fmt.target(t) for s, t in pairs])
    fmt = get_prompt(session.prompt)
    # The policy object renders (and cuts) prompts exactly as inference will.
    policy = HFPolicy(
        session.model, session.tokenizer, HFConfig(prompt=session.prompt, max_prompt_tokens=session.max_prompt_tokens)
    )
    encode = lambda items: [_encode(session.tokenizer, policy.render(s), fmt.target(t)) for s, t in items]  # noqa: E731
    examples, valid_examples = encode(pairs), encode(valid_pairs)
    eos = session.tokenizer.eos_token_id
    losses = session.optimise(lambda rng: None, examples, lambda model, batch: _batch_loss(model, batch, eos), progress)
    valid_loss = session.mean_loss(valid_examples, lambda model, batch: _batch_loss(model, batch, eos))
    metadata = {
        "prompt": session.prompt,
        "max_prompt_tokens": session.max_prompt_tokens,
        "trained_on": str(source),
        "provenance": provenance(data) if data else {"data": str(source)},
        "base_model": options.base_model,
        "lora": {"rank": options.lora_rank} if options.lora else None,
        "precision": options.precision,
        "optimizer": options.optimizer,
        "gradient_checkpointing": options.gradient_checkpointing,
        "gradient_accumulation": options.gradient_accumulation,
        "num_pairs": len(pairs),
        "num_valid_pairs": len(valid_pairs),
        "steps": options.steps,
        "seed": options.seed,
        "learning_rate": session.learning_rate,
        "first_loss": losses[0],
        "final_loss": sum(losses[-20:]) / len(losses[-20:]),
        "valid_loss": valid_loss,
        "device": str(session.accelerator.device),
        "train_time_s": round(time.perf_counter() - started, 1),
    }
    return session.save(out_dir, POLICY_METADATA, metadata)


def train_critic(
    data: str | Path,
    out_dir: str | Path,
    options: TrainOptions = TrainOptions(),
    progress: Callable[[str], None] | None = print,
) -> Path:
    """Train a value model on an export's states: provable (on a proof) against failed;
    return its directory (``prover.policies.critic`` loads it, ``--critic DIR`` uses it).

    The loss is the cross-entropy of the two-way choice between the ``yes`` and ``no``
    continuations, the quantity ``HFCritic.score`` reads. Batches hold as many provable as
    failed states where there are both, so neither class drowns the other.
    """
    from prover.learn.export import data_file, provenance, read_records, training_data
    from prover.policies.critic import CRITIC_METADATA, CRITIC_PROMPT, LABELS, HFCritic, label_logprobs

    source = data_file(data)
    values = training_data(read_records(source)).values
    positives = [s for s, provable in values if provable]
    negatives = [s for s, provable in values if not provable]
    if not positives or not negatives:
        raise ProverError(
            f"a value model needs provable and failed states; {source} has "
            f"{len(positives)} provable and {len(negatives)} failed"
        )
    valid_values: list[tuple[str, bool]] = []
    if Path(data).is_dir() and (Path(data) / "valid.jsonl").is_file():
        valid_values = training_data(read_records(Path(data) / "valid.jsonl")).values
    started = time.perf_counter()
    session = _Session.start(
        options, prompt_texts=lambda _: [CRITIC_PROMPT.render(s) + label for s, p in values for label in LABELS]
    )
    critic = HFCritic(session.model, session.tokenizer, CriticConfig(max_prompt_tokens=session.max_prompt_tokens))

    def encode(items):  # (prompt ids, class): 0 provable, 1 not
        return [(session.tokenizer(critic.render(s))["input_ids"], int(not p)) for s, p in items]

    by_class = [encode([(s, True) for s in positives]), encode([(s, False) for s in negatives])]
    pad = session.tokenizer.pad_token_id

    def loss(model, batch):
        import torch

        logprobs = label_logprobs(model, [ids for ids, _ in batch], critic.label_ids, pad)
        targets = torch.tensor([label for _, label in batch], device=logprobs.device)
        return torch.nn.functional.cross_entropy(logprobs, targets)

    half = max(1, options.batch_size // 2)
    balanced = lambda rng: rng.choices(by_class[0], k=half) + rng.choices(by_class[1], k=half)  # noqa: E731
    losses = session.optimise(balanced, by_class[0] + by_class[1], loss, progress)
    valid_loss = session.mean_loss(encode(valid_values), loss)
    metadata = {
        "prompt": CRITIC_PROMPT.name,
        "labels": list(LABELS),
        "max_prompt_tokens": session.max_prompt_tokens,
        "trained_on": str(source),
        "provenance": provenance(data),
        "base_model": options.base_model,
        "lora": {"rank": options.lora_rank} if options.lora else None,
        "precision": options.precision,
        "optimizer": options.optimizer,
        "gradient_checkpointing": options.gradient_checkpointing,
        "gradient_accumulation": options.gradient_accumulation,
        "num_provable": len(positives),
        "num_failed": len(negatives),
        "steps": options.steps,
        "seed": options.seed,
        "learning_rate": session.learning_rate,
        "first_loss": losses[0],
        "final_loss": sum(losses[-20:]) / len(losses[-20:]),
        "valid_loss": valid_loss,
        "train_time_s": round(time.perf_counter() - started, 1),
    }
    return session.save(out_dir, CRITIC_METADATA, metadata)


# Room left for the tactic when a model's prompt limit defaults to its context length: the
# hf policy's default --max-new-tokens.
TACTIC_ROOM_TOKENS = 128


def default_prompt_tokens(model) -> int:
    """A model's prompt limit when none is given: its context length (``max_position_embeddings``)
    less ``TACTIC_ROOM_TOKENS`` for the tactic, and at least half the context."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    context = getattr(config, "max_position_embeddings", None) or 2048
    return max(context // 2, context - TACTIC_ROOM_TOKENS)


@dataclass
class _Session:
    """A model and tokenizer being trained, with the ``accelerate`` state around them."""

    model: Any
    tokenizer: Any
    prompt: str
    max_prompt_tokens: int
    options: TrainOptions
    accelerator: Any
    learning_rate: float
    prepared: Any = None  # the model as accelerate wrapped it for training

    @classmethod
    def start(cls, options: TrainOptions, prompt_texts: Callable[[Any], list[str]]) -> "_Session":
        """The model to train: a tiny one from scratch (its tokenizer trained on
        ``prompt_texts(format)``), or ``options.base_model`` loaded, with LoRA adapters if asked."""
        import torch

        if options.lora and options.base_model is None:
            raise ProverError("--lora adapts a model: give --model, the model to fine-tune")
        accelerator = _accelerator(options.device, options.precision)
        prompt, max_prompt_tokens = options.prompt, options.max_prompt_tokens
        if options.base_model is None:
            tokenizer = build_tokenizer(prompt_texts(get_prompt(prompt)), vocab_size=options.model_shape().vocab_size)
            model = build_tiny_llama(tokenizer, options.model_shape(), seed=options.seed)
        else:
            from prover.policies.hf import load_model, recorded_settings

            device = str(accelerator.device)
            model, tokenizer = load_model(options.base_model, device if device.startswith("cuda") else "cpu")
            if not options.lora:
                model = model.float()  # the trained weights are the float32 master copy; LoRA's base is frozen
            recorded = recorded_settings(options.base_model)
            prompt = recorded.get("prompt", prompt)  # the model knows that format
            if recorded.get("max_prompt_tokens"):
                max_prompt_tokens = min(
                    max_prompt_tokens or recorded["max_prompt_tokens"], recorded["max_prompt_tokens"]
                )
        if max_prompt_tokens is None:
            max_prompt_tokens = default_prompt_tokens(model)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if options.gradient_checkpointing:
            # Non-reentrant: works with frozen inputs (LoRA) and keeps the RNG state per segment.
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.config.use_cache = False
        if options.lora:
            model = _with_lora(model, options.lora_rank)
        torch.manual_seed(options.seed)
        learning_rate = options.resolved_learning_rate(sum(p.numel() for p in model.parameters()))
        return cls(model, tokenizer, prompt, max_prompt_tokens, options, accelerator, learning_rate)

    def optimise(self, sample: Callable, examples: list, loss_of: Callable, progress) -> list[float]:
        """``options.steps`` AdamW steps with warm-up and cosine decay; the loss of each step.

        ``sample(rng)`` draws a batch, or returns None for the default: passes over
        ``examples`` in a fresh random order each time. Each step sums the gradients of
        ``gradient_accumulation`` such batches (each loss divided by their number). Under
        ``accelerate launch`` each process draws its own batches and the gradients are
        averaged; under mixed precision accelerate runs the passes in bf16/fp16 while the
        weights and the optimiser's state stay float32.
        """
        import torch

        options, accelerator = self.options, self.accelerator
        steps, batch_size = options.steps, options.batch_size
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        optimiser = _optimiser(options.optimizer, trainable, self.learning_rate)
        warmup = max(1, steps // 20)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
        )
        model, optimiser = accelerator.prepare(self.model, optimiser)
        torch.manual_seed(options.seed)
        rng = random.Random(options.seed + accelerator.process_index)
        started = time.perf_counter()
        model.train()
        losses: list[float] = []
        order: list[int] = []
        micro_batches = options.gradient_accumulation
        for step in range(steps):
            optimiser.zero_grad()
            step_loss = 0.0
            for _ in range(micro_batches):
                batch = sample(rng)
                if batch is None:
                    if len(order) < batch_size:
                        order += rng.sample(range(len(examples)), len(examples))
                    batch, order = [examples[i] for i in order[:batch_size]], order[batch_size:]
                with accelerator.autocast():
                    loss = loss_of(model, batch) / micro_batches
                accelerator.backward(loss)
                step_loss += loss.item()
            accelerator.clip_grad_norm_(trainable, 1.0)
            optimiser.step()
            schedule.step()
            losses.append(step_loss)
            if progress and accelerator.is_main_process and (step % 50 == 0 or step == steps - 1):
                progress(
                    f"step {step + 1}/{steps}  loss {sum(losses[-50:]) / len(losses[-50:]):.3f}  "
                    f"{time.perf_counter() - started:.0f}s"
                )
        model.eval()
        self.prepared = model  # sharded under FSDP or DeepSpeed: save() gathers it
        self.model = accelerator.unwrap_model(model)
        return losses

    def mean_loss(self, examples: list, loss_of: Callable) -> float | None:
        """The mean loss over ``examples`` (batches of ``batch_size``), or None if there are none."""
        import torch

        if not examples:
            return None
        total = 0.0
        size = self.options.batch_size
        with torch.no_grad():
            for start in range(0, len(examples), size):
                batch = examples[start : start + size]
                total += loss_of(self.model, batch).item() * len(batch)
        return total / len(examples)

    def save(self, out_dir: str | Path, metadata_name: str, metadata: dict) -> Path:
        """Write the model (LoRA adapters merged), tokenizer and metadata; return the directory."""
        out = Path(out_dir)
        self.accelerator.wait_for_everyone()
        # Sharded weights (FSDP, DeepSpeed ZeRO-3) are gathered on every process, saved by one.
        sharded = self.accelerator.distributed_type.value in ("FSDP", "DEEPSPEED")
        state_dict = self.accelerator.get_state_dict(self.prepared) if sharded and self.prepared is not None else None
        if self.accelerator.is_main_process:
            model = self.model.merge_and_unload() if self.options.lora else self.model
            out.mkdir(parents=True, exist_ok=True)
            model.save_pretrained(out, state_dict=state_dict if not self.options.lora else None)
            self.tokenizer.save_pretrained(out)
            (out / metadata_name).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
        self.accelerator.wait_for_everyone()
        return out


def _accelerator(device: str, precision: str = "fp32"):
    """``accelerate``'s state for this process: the GPU it was given, or the CPU, with the
    mixed precision asked for (fp32: none)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from prover.policies.hf import resolve_device

    resolved = resolve_device(device)  # a missing GPU asked for is one sentence
    if precision == "fp16" and resolved == "cpu":
        raise ProverError("--precision fp16 needs a CUDA GPU; on the CPU use bf16 or fp32")
    # One process may train several models with other precisions (iterate, tests): the
    # mixed-precision state is per model; the distributed state (PartialState) is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(cpu=resolved == "cpu", mixed_precision="no" if precision == "fp32" else precision)


def _optimiser(name: str, parameters: list, learning_rate: float):
    """AdamW over ``parameters``: torch's (float32 state) or bitsandbytes' 8-bit one."""
    import torch

    if name == "adamw_8bit":
        try:
            import bitsandbytes
        except ImportError:
            raise MissingDependencyError(
                "--optimizer adamw_8bit needs bitsandbytes (and a CUDA GPU), which is not installed here; "
                "install it with pip install bitsandbytes, or use --optimizer adamw"
            ) from None
        return bitsandbytes.optim.AdamW8bit(parameters, lr=learning_rate, weight_decay=0.0)
    return torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=0.0)


def _with_lora(model, rank: int):
    """``model`` with LoRA adapters on every linear layer, only they trainable."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise MissingDependencyError(
            "--lora needs peft, which is not installed here; install it with pip install 'lean-prover[train]'"
        ) from None
    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    return get_peft_model(model, config)


def _encode(tokenizer, prompt: str, target: str) -> tuple[list[int], int]:
    """Token ids of prompt + target + EOS, tokenised together, and where the target starts.

    Together, because a target tokenised on its own may gain a token it never has after
    its prompt (Llama's tokenizer starts a text with a word-start marker). The target
    starts at the first token that reaches past the prompt's text (a token that spans the
    boundary is the target's: the model must produce it).
    """
    encoded = tokenizer(prompt + target, return_offsets_mapping=True)
    ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    start = next((i for i, (_, end) in enumerate(offsets) if end > len(prompt)), len(ids))
    return ids + [tokenizer.eos_token_id], max(start, 1)


def _batch_loss(model, batch: list[tuple[list[int], int]], pad_id: int):
    """Mean cross-entropy of the target tokens (each row: prompt + target, target start)."""
    import torch

    device = next(model.parameters()).device
    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    predicts = torch.zeros((len(batch), width), dtype=torch.bool)  # position p predicts token p+1
    for row, (ids, target_start) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
        predicts[row, target_start - 1 : len(ids) - 1] = True
    input_ids, attention, predicts = input_ids.to(device), attention.to(device), predicts.to(device)
    targets = input_ids[:, 1:][predicts[:, :-1]]
    if _is_bare_causal_lm(model):
        # The LM head only where a target token is predicted: most positions are prompt.
        hidden = model.model(input_ids=input_ids, attention_mask=attention).last_hidden_state
        logits = model.lm_head(hidden[predicts])
    else:  # wrapped (LoRA, several GPUs): through the wrapper's forward
        logits = model(input_ids=input_ids, attention_mask=attention).logits[predicts]
    return torch.nn.functional.cross_entropy(logits.float(), targets)


def _is_bare_causal_lm(model) -> bool:
    from transformers import PreTrainedModel

    return isinstance(model, PreTrainedModel) and hasattr(model, "lm_head") and hasattr(model, "model")


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
