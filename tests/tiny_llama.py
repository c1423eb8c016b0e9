"""A tiny Llama with a tokenizer trained on the spot, saved like a hub model, for tests.

Built once per test session (a few seconds on a CPU, ``session_tiny_llama``) and loaded by
the policy tests through the same ``from_pretrained`` path a user's Llemma takes. Nothing
is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from prover.learn.training import TinyLlamaShape, TrainOptions, build_tiny_llama, build_tokenizer, train_policy
from prover.policies.prompts import PROMPTS

# Lean-flavoured text, so the tokenizer has merges for the symbols that states are made of.
STATES = (
    "x : ℕ\n⊢ x + 0 = x",
    "a b : ℝ\nh₀ : 0 < a ∧ 0 < b\nh₁ : a * b = 1\n⊢ a + b ≥ 2",
    "n : ℕ\nh : n % 5 = 3\n⊢ 2 * n % 5 = 1",
    "f : ℝ → ℝ\nh : ∀ x, f x = 3 * x + 1\n⊢ f 2 = 7",
    "⊢ Finset.card (Finset.filter (fun n => 3 ∣ n) (Finset.range 100)) = 34",
    "x y : ℤ\nh₀ : x + y = 10\nh₁ : x - y = 2\n⊢ x = 6",
    "s : Set ℂ\nz : ℂ\nh : z ∈ s\n⊢ Complex.abs z ≤ 1 ∨ z ∉ s",
)
TACTICS = ("norm_num", "simp", "linarith", "omega", "ring_nf", "nlinarith [sq_nonneg (a - b)]", "rw [h]", "exact h₀")

SHAPE = TinyLlamaShape(
    vocab_size=512,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=2048,
    initializer_range=0.2,
)

_BUILT: dict[Path, Path] = {}


def corpus() -> list[str]:
    texts = []
    for fmt in PROMPTS.values():
        for state in STATES:
            for tactic in TACTICS:
                texts.append(fmt.render(state) + fmt.target(tactic))
    return texts


def save_tiny_llama(directory: Path, seed: int = 0) -> Path:
    """Build the tiny model and tokenizer and ``save_pretrained`` both into ``directory``."""
    if directory not in _BUILT:
        tokenizer = build_tokenizer(corpus(), vocab_size=SHAPE.vocab_size)
        model = build_tiny_llama(tokenizer, SHAPE, seed=seed)
        directory.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        _BUILT[directory] = directory
    return _BUILT[directory]


def session_tiny_llama(tmp_path_factory) -> Path:
    """The test session's tiny Llama directory: built by the first module that asks, shared
    by the rest (pass pytest's ``tmp_path_factory``). Tests must not write into it."""
    return save_tiny_llama(tmp_path_factory.getbasetemp() / "tiny-llama")


def train_tiny_policy(
    traces_path: str | Path | None,
    out_dir: str | Path,
    steps: int = 1200,
    seed: int = 0,
    prompt: str = "goal_proofstep",
    batch_size: int = 16,
    learning_rate: float = 3e-3,
    max_prompt_tokens: int | None = None,
    shape: TinyLlamaShape = TinyLlamaShape(),
    progress: Callable[[str], None] | None = print,
) -> Path:
    """Train a tiny Llama from scratch on a trace file's (state -> tactic) pairs; return its
    directory (``train_policy`` with no base model). ``traces_path`` None means the shipped
    traces."""
    options = TrainOptions(
        steps=steps,
        seed=seed,
        prompt=prompt,
        batch_size=batch_size,
        learning_rate=learning_rate,
        max_prompt_tokens=max_prompt_tokens,
        shape=shape,
    )
    return train_policy(traces_path, out_dir, options, progress)
