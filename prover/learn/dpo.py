"""Preference training (DPO) of a policy on an export's preference pairs, through TRL.

An export (``prover export``) lists, at every state of a proof, the proof's tactic and
the tactics that failed there (Lean's errors, or states the search found failed): each
(state, proof tactic, failed tactic) is a preference pair, BFS-Prover's DPO data. ``train_dpo``
fine-tunes a policy (a model directory, typically the round's SFT model) with TRL's
``DPOTrainer``: the prompt rendered (and cut) exactly as ``HFPolicy`` renders it, the
chosen and rejected tactics as the prompt format's targets, the starting model as the
frozen reference. The settings are ``TrainOptions``' (steps, batch, learning rate, LoRA,
precision, checkpointing, accumulation) plus ``beta``.

    train_dpo("data/round-1", "models/round-1-dpo", "models/round-1", TrainOptions(steps=50))

TRL is an optional extra: ``pip install 'lean-prover[dpo]'``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from prover.errors import MissingDependencyError, ProverError
from prover.learn.training import TrainOptions, default_prompt_tokens

DPO_LEARNING_RATE = 5e-5  # with no --learning-rate: a policy already trained, nudged


def train_dpo(
    data: str | Path,
    out_dir: str | Path,
    model_dir: str | Path,
    options: TrainOptions = TrainOptions(),
    beta: float = 0.1,
    progress: Callable[[str], None] | None = print,
) -> Path:
    """DPO of the policy in ``model_dir`` on the preference pairs of ``data``; returns
    ``out_dir``, a model directory like ``train_policy``'s (its ``prover_policy.json`` is
    the starting model's, with a ``dpo`` section)."""
    try:
        from datasets import Dataset
        from trl import DPOConfig, DPOTrainer
    except ImportError:
        raise MissingDependencyError(
            "DPO needs TRL, which is not installed here; install it with pip install 'lean-prover[dpo]'"
        ) from None
    from prover.learn.export import data_file, read_records, training_data
    from prover.policies.hf import POLICY_METADATA, HFConfig, HFPolicy, load_model, recorded_settings
    from prover.policies.prompts import get_prompt

    source = data_file(data)
    preferences = training_data(read_records(source)).preferences
    if not preferences:
        raise ProverError(f"no preference pairs to learn from in {source} (a proof step with a failed alternative)")
    started = time.perf_counter()
    recorded = recorded_settings(str(model_dir))
    prompt = recorded.get("prompt", options.prompt)
    model, tokenizer = load_model(str(model_dir), "cpu" if options.device == "cpu" else options.device)
    recorded_limit = recorded.get("max_prompt_tokens")
    max_prompt_tokens = options.max_prompt_tokens or recorded_limit or default_prompt_tokens(model)
    if recorded_limit:
        max_prompt_tokens = min(max_prompt_tokens, recorded_limit)  # the policy keeps to what it was trained on
    if not options.lora:
        model = model.float()  # float32 master weights; --precision sets the passes
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    fmt = get_prompt(prompt)
    policy = HFPolicy(model, tokenizer, HFConfig(prompt=prompt, max_prompt_tokens=max_prompt_tokens))
    rows = [
        {"prompt": policy.render(state), "chosen": fmt.target(chosen), "rejected": fmt.target(rejected)}
        for state, chosen, rejected in preferences
    ]
    peft_config = None
    if options.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=options.lora_rank,
            lora_alpha=2 * options.lora_rank,
            lora_dropout=0.0,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
    scratch = Path(tempfile.mkdtemp(prefix="dpo-"))
    try:
        config = DPOConfig(
            output_dir=str(scratch),
            beta=beta,
            max_steps=options.steps,
            per_device_train_batch_size=options.batch_size,
            gradient_accumulation_steps=options.gradient_accumulation,
            gradient_checkpointing=options.gradient_checkpointing,
            learning_rate=options.learning_rate or DPO_LEARNING_RATE,
            bf16=options.precision == "bf16",
            fp16=options.precision == "fp16",
            optim="adamw_bnb_8bit" if options.optimizer == "adamw_8bit" else "adamw_torch",
            use_cpu=options.device == "cpu",
            seed=options.seed,
            logging_steps=max(1, options.steps // 10),
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,
        )
        trainer = DPOTrainer(
            model=model,
            args=config,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=peft_config,
        )
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # a dict of metrics a step on stdout; the losses are kept
        output = trainer.train()
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        trained = trainer.model
        if options.lora:
            trained = trained.merge_and_unload()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trained.save_pretrained(out)
    tokenizer.save_pretrained(out)
    metadata = (
        json.loads((Path(model_dir) / POLICY_METADATA).read_text(encoding="utf-8"))
        if (Path(model_dir) / POLICY_METADATA).is_file()
        else {"prompt": prompt, "max_prompt_tokens": max_prompt_tokens}
    )
    metadata["dpo"] = {
        "from": str(model_dir),
        "data": str(source),
        "num_preferences": len(preferences),
        "beta": beta,
        "steps": options.steps,
        "learning_rate": options.learning_rate or DPO_LEARNING_RATE,
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else output.training_loss,
        "train_time_s": round(time.perf_counter() - started, 1),
    }
    (out / POLICY_METADATA).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    if progress:
        progress(f"DPO on {len(preferences)} preference pairs: loss {metadata['dpo']['final_loss']:.3f}")
    return out
