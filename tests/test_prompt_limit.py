"""A trained model's prompt limit: the --max-prompt-tokens given to train-policy, else the
model's context length less room for a tactic (not a fixed 384)."""

from __future__ import annotations

import json

import pytest

from prover.learn.training import TACTIC_ROOM_TOKENS, TinyLlamaShape
from prover.policies.hf import POLICY_METADATA, HFConfig, HFPolicy

from tests.test_presets import run_cli
from tests.tiny_llama import train_tiny_policy

SHAPE = TinyLlamaShape(
    vocab_size=300,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=1,
    num_attention_heads=2,
    num_key_value_heads=1,
    max_position_embeddings=1536,
)


@pytest.mark.slow
def test_a_trained_models_prompt_limit_is_its_context_length_unless_given(tmp_path):
    default = train_tiny_policy(None, tmp_path / "default", steps=1, shape=SHAPE, progress=None)
    recorded = json.loads((default / POLICY_METADATA).read_text())
    assert recorded["max_prompt_tokens"] == 1536 - TACTIC_ROOM_TOKENS
    policy = HFPolicy.from_config(HFConfig(model=str(default), device="cpu", prompt="llemma"))
    assert policy.config.max_prompt_tokens == 1536 - TACTIC_ROOM_TOKENS  # the few-shot prompt keeps its goal

    given = train_tiny_policy(None, tmp_path / "given", steps=1, shape=SHAPE, max_prompt_tokens=600, progress=None)
    assert json.loads((given / POLICY_METADATA).read_text())["max_prompt_tokens"] == 600


def test_train_policy_takes_max_prompt_tokens_as_a_flag(capsys):
    code, out, _ = run_cli(capsys, "train-policy", "--help")
    assert code == 0 and "--max-prompt-tokens" in out and "context length" in " ".join(out.split())
