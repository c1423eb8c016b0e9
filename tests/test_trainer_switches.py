# ruff: noqa: F811  (the fixtures imported from test_export and test_iterate are named as parameters)
"""The trainer's switches for a 7B model, each checked on the tiny model: mixed precision
with float32 master weights, gradient checkpointing, gradient accumulation, full
fine-tuning and LoRA, the 8-bit optimiser, prompt and target tokenised together, and the
accelerate configs shipped for several GPUs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from prover.errors import MissingDependencyError, ProverError
from prover.learn import training
from prover.learn.training import TinyLlamaShape, TrainOptions, train_policy

from tests.test_export import SMALL, synthetic_export  # noqa: F401 (a fixture)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def spy(monkeypatch):
    """Records, at every loss computed in training, what the trainer had set up."""
    import torch

    seen: list[dict] = []
    real = training._batch_loss

    def recording(model, batch, pad_id):
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        if not model.training:
            return real(model, batch, pad_id)  # the validation loss, after training
        checkpointing = getattr(inner, "is_activation_checkpointing", None)
        if checkpointing is None:
            checkpointing = inner.is_gradient_checkpointing
        seen.append(
            {
                "rows": len(batch),
                "autocast": torch.is_autocast_enabled("cpu"),
                "autocast_dtype": torch.get_autocast_dtype("cpu"),
                "weights": {p.dtype for p in model.parameters() if p.requires_grad},
                "checkpointing": bool(checkpointing),
                "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
                "total": sum(p.numel() for p in model.parameters()),
            }
        )
        return real(model, batch, pad_id)

    monkeypatch.setattr(training, "_batch_loss", recording)
    return seen


def tiny(**overrides) -> TrainOptions:
    return TrainOptions(**{"steps": 2, "batch_size": 4, "shape": TinyLlamaShape(**SMALL), "device": "cpu", **overrides})


def test_bf16_mixed_precision_runs_the_passes_in_bf16_on_float32_master_weights(synthetic_export, tmp_path, spy):
    import torch

    out = train_policy(synthetic_export, tmp_path / "bf16", tiny(precision="bf16"), progress=None)
    assert spy and all(s["autocast"] and s["autocast_dtype"] == torch.bfloat16 for s in spy)
    assert all(s["weights"] == {torch.float32} for s in spy)  # the optimiser updates float32 weights
    assert json.loads((out / "prover_policy.json").read_text())["precision"] == "bf16"
    spy.clear()
    train_policy(synthetic_export, tmp_path / "fp32", tiny(), progress=None)
    assert not any(s["autocast"] for s in spy)


def test_fp16_on_the_cpu_is_one_sentence(synthetic_export, tmp_path):
    with pytest.raises(ProverError, match="--precision fp16 needs a CUDA GPU; on the CPU use bf16 or fp32"):
        train_policy(synthetic_export, tmp_path / "m", tiny(precision="fp16"), progress=None)


def test_gradient_checkpointing_is_on_while_training(synthetic_export, tmp_path, spy):
    train_policy(synthetic_export, tmp_path / "ckpt", tiny(gradient_checkpointing=True), progress=None)
    assert spy and all(s["checkpointing"] for s in spy)
    spy.clear()
    train_policy(synthetic_export, tmp_path / "plain", tiny(), progress=None)
    assert not any(s["checkpointing"] for s in spy)


def test_gradient_accumulation_takes_that_many_batches_per_step(synthetic_export, tmp_path, spy):
    out = train_policy(synthetic_export, tmp_path / "accumulate", tiny(steps=3, gradient_accumulation=3), progress=None)
    assert len(spy) == 9 and all(s["rows"] == 4 for s in spy)
    metadata = json.loads((out / "prover_policy.json").read_text())
    assert metadata["gradient_accumulation"] == 3 and metadata["steps"] == 3


def test_accumulated_micro_batches_give_the_gradient_of_the_whole_batch(synthetic_export):
    """Two micro-batches of 4, each loss halved, sum to the gradient of their mean loss."""
    import torch

    from prover.learn.training import _Session

    session = _Session.start(tiny(), prompt_texts=lambda fmt: ["[GOAL]x[PROOFSTEP]simp", "[GOAL]y[PROOFSTEP]ring"])
    tok = session.tokenizer
    rows = [training._encode(tok, f"[GOAL]x{i}[PROOFSTEP]", "simp") for i in range(8)]
    model = session.model.train()
    model.zero_grad()
    (sum(training._batch_loss(model, rows[i : i + 4], tok.eos_token_id) / 2 for i in (0, 4))).backward()
    accumulated = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    # Equal-length rows: the mean over 8 rows equals the mean of the two means of 4.
    training._batch_loss(model, rows, tok.eos_token_id).backward()
    for a, b in zip(accumulated, (p.grad for p in model.parameters())):
        assert torch.allclose(a, b, atol=1e-6)


def test_full_fine_tuning_trains_every_weight_in_float32_and_lora_only_adapters(synthetic_export, tmp_path, spy):
    pytest.importorskip("peft", reason="LoRA needs peft (pip install 'lean-prover[train]')")
    import torch

    base = train_policy(synthetic_export, tmp_path / "base", tiny(steps=1), progress=None)
    spy.clear()
    train_policy(synthetic_export, tmp_path / "full", tiny(base_model=str(base), shape=None), progress=None)
    assert all(s["trainable"] == s["total"] and s["weights"] == {torch.float32} for s in spy)
    spy.clear()
    train_policy(
        synthetic_export,
        tmp_path / "lora",
        tiny(base_model=str(base), shape=None, lora=True, lora_rank=2, gradient_checkpointing=True),
        progress=None,
    )
    assert all(0 < s["trainable"] < s["total"] / 4 and s["checkpointing"] for s in spy)


def test_the_8bit_optimiser_without_bitsandbytes_is_one_sentence(synthetic_export, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    with pytest.raises(MissingDependencyError, match=r"--optimizer adamw_8bit needs bitsandbytes \(and a CUDA GPU\)"):
        train_policy(synthetic_export, tmp_path / "m", tiny(optimizer="adamw_8bit"), progress=None)


@pytest.mark.gpu
def test_the_8bit_optimiser_and_bf16_train_on_the_gpu(synthetic_export, tmp_path):
    pytest.importorskip("bitsandbytes")
    base = train_policy(synthetic_export, tmp_path / "base", tiny(steps=1), progress=None)
    out = train_policy(
        synthetic_export,
        tmp_path / "gpu",
        tiny(
            base_model=str(base),
            shape=None,
            device="cuda",
            precision="bf16",
            optimizer="adamw_8bit",
            gradient_checkpointing=True,
        ),
        progress=None,
    )
    assert json.loads((out / "prover_policy.json").read_text())["optimizer"] == "adamw_8bit"


def test_prompt_and_target_are_tokenised_together(synthetic_export, tmp_path):
    from prover.learn.training import build_tokenizer

    tokenizer = build_tokenizer(["[GOAL]x : ℕ\n⊢ x = x[PROOFSTEP]rfl"] * 20, vocab_size=300)
    prompt, target = "[GOAL]x : ℕ\n⊢ x = x[PROOFSTEP]", "rfl"
    ids, start = training._encode(tokenizer, prompt, target)
    assert ids[:-1] == tokenizer(prompt + target)["input_ids"] and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids[start:-1]).endswith(target) and target not in tokenizer.decode(ids[:start])


class WordStartTokenizer:
    """Like Llama's sentencepiece: a text tokenised on its own starts with a word-start token."""

    eos_token_id = 2

    def __call__(self, text, add_special_tokens=True, return_offsets_mapping=False):
        ids = ([1] if add_special_tokens else []) + [29871] + [ord(c) for c in text]  # 29871: "▁"
        offsets = ([(0, 0)] if add_special_tokens else []) + [(0, 0)] + [(i, i + 1) for i in range(len(text))]
        return {"input_ids": ids, **({"offset_mapping": offsets} if return_offsets_mapping else {})}


def test_a_target_gains_no_stray_word_start_token():
    ids, start = training._encode(WordStartTokenizer(), "ab", "cd")
    assert ids == [1, 29871, ord("a"), ord("b"), ord("c"), ord("d"), 2]  # one marker, at the start of the text
    assert ids[start:] == [ord("c"), ord("d"), 2]


def test_the_shipped_accelerate_configs_name_fsdp_and_deepspeed():
    import yaml

    fsdp = yaml.safe_load((REPO / "configs" / "accelerate" / "fsdp.yaml").read_text())
    deepspeed = yaml.safe_load((REPO / "configs" / "accelerate" / "deepspeed_zero3.yaml").read_text())
    assert fsdp["distributed_type"] == "FSDP" and fsdp["mixed_precision"] == "bf16"
    assert deepspeed["distributed_type"] == "DEEPSPEED" and deepspeed["deepspeed_config"]["zero_stage"] == 3
    from accelerate.commands.config.config_args import ClusterConfig

    for path in ("fsdp.yaml", "deepspeed_zero3.yaml"):  # accelerate reads them
        ClusterConfig.from_yaml_file(str(REPO / "configs" / "accelerate" / path))
