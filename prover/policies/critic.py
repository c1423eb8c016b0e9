"""A value model on Hugging Face ``transformers``: a causal LM that scores goal states.

The critic reads ``[GOAL]{state}[PROVABLE]`` and is asked to continue with ``yes`` or
``no``; a state's value is the log-probability of ``yes`` between the two,

    value(state) = log P(yes) - log(P(yes) + P(no))       (in (-inf, 0])

where each P is the model's probability of that whole continuation (so the labels may be
several tokens in any tokenizer). It implements the engine's ``ValueModel``: many states
go through one forward pass, and ``--scorer value_mixed`` adds ``--value-weight`` times
the value to a state's cumulative log-prob.

    critic = HFCritic.from_config(CriticConfig(model="runs/critic"))
    critic.score(["x : ℕ\\n⊢ x + 0 = x", "h : 1 < 0\\n⊢ False"])   # [-0.02, -4.1]

``prover train-critic --data DATA --out DIR`` trains one (``prover.learn.training``) and writes
``prover_critic.json`` beside the weights; ``--critic DIR`` makes a search use it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from prover.policies.hf import load_model
from prover.policies.prompts import PromptFormat, fit_prompt
from prover.settings import Settings, setting

CRITIC_METADATA = "prover_critic.json"  # written beside the weights by prover.learn.training
CRITIC_PROMPT = PromptFormat("critic", "[GOAL]", "[PROVABLE]", stop=())
LABELS = ("yes", "no")  # provable, not provable


@dataclass(frozen=True)
class CriticConfig(Settings):
    """How a critic is loaded and run. A run names only its directory (``--critic DIR``,
    ``SearchConfig.critic``); the rest keeps these defaults there."""

    model: str = setting("", "A value model directory written by prover train-critic.")
    device: str = setting("auto", "Where the value model runs: auto, cpu, cuda or cuda:N.")
    max_prompt_tokens: int = setting(512, "Longest critic prompt; longer states lose their first lines.", min=16)
    batch_size: int = setting(64, "Most states in one forward pass.", min=1)


class HFCritic:
    """Scores goal states with a causal LM; see the module docstring."""

    def __init__(self, model, tokenizer, config: CriticConfig = CriticConfig()):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = config
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.label_ids = [tokenizer(label, add_special_tokens=False)["input_ids"] for label in LABELS]
        fit_prompt(CRITIC_PROMPT, "", self.count_tokens, config.max_prompt_tokens)  # fails early if too long

    @classmethod
    def from_config(cls, config: CriticConfig) -> "HFCritic":
        """Load ``config.model`` (a directory written by ``prover train-critic``, or any causal LM)."""
        if not config.model:
            raise ValueError("the critic needs a model: --critic DIR")
        model, tokenizer = load_model(config.model, config.device, flag="--critic")
        recorded = recorded_critic_settings(config.model).get("max_prompt_tokens")
        if isinstance(recorded, int) and recorded < config.max_prompt_tokens:
            config = CriticConfig(config.model, config.device, recorded, config.batch_size)
        return cls(model, tokenizer, config)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text)["input_ids"])

    def render(self, state: str) -> str:
        return fit_prompt(CRITIC_PROMPT, state, self.count_tokens, self.config.max_prompt_tokens)

    def score(self, states: Sequence[str]) -> list[float]:
        """``ValueModel.score``: log P(provable) of each state, batched."""
        import torch

        values: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(states), self.config.batch_size):
                chunk = states[start : start + self.config.batch_size]
                prompt_ids = [self.tokenizer(self.render(s))["input_ids"] for s in chunk]
                logprobs = label_logprobs(self.model, prompt_ids, self.label_ids, self.tokenizer.pad_token_id)
                values += torch.log_softmax(logprobs.float(), dim=-1)[:, 0].tolist()
        return values


def label_logprobs(model, prompt_ids: list[list[int]], label_ids: list[list[int]], pad_id: int):
    """Log-probability of each label continuation after each prompt: shape (prompts, labels).

    One forward pass over every (prompt, label) row, right-padded; differentiable (the
    trainer uses it for its loss).
    """
    import torch

    rows = [(p, label) for p in prompt_ids for label in label_ids]
    width = max(len(p) + len(label) for p, label in rows)
    device = next(model.parameters()).device
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    predicts = torch.zeros((len(rows), width), dtype=torch.bool)  # position t predicts token t + 1
    for row, (prompt, label) in enumerate(rows):
        ids = prompt + label
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
        predicts[row, len(prompt) - 1 : len(ids) - 1] = True
    input_ids, attention, predicts = input_ids.to(device), attention.to(device), predicts.to(device)
    logits = model(input_ids=input_ids, attention_mask=attention).logits
    logprobs = torch.log_softmax(logits[predicts].float(), dim=-1)
    targets = input_ids[:, 1:][predicts[:, :-1]]
    chosen = logprobs.gather(1, targets.unsqueeze(1)).squeeze(1)
    row_of = torch.arange(len(rows), device=device).unsqueeze(1).expand(-1, width)[predicts]
    per_row = torch.zeros(len(rows), device=device, dtype=chosen.dtype).index_add(0, row_of, chosen)
    return per_row.view(len(prompt_ids), len(label_ids))


def recorded_critic_settings(model: str) -> dict:
    """What a critic directory's ``prover_critic.json`` records, or {} where there is none."""
    try:
        settings = json.loads((Path(model).expanduser() / CRITIC_METADATA).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return settings if isinstance(settings, dict) else {}


_LOADED: dict[tuple[str, str], HFCritic] = {}
_LOADING = threading.Lock()  # the searches of a Ray worker are threads: one loads, the others wait


def build(config: CriticConfig) -> HFCritic:
    """An ``HFCritic`` with ``config.model`` loaded, once per process and model (a search
    worker on Ray loads it once, for all its searches)."""
    path = Path(config.model).expanduser()
    key = (str(path.resolve()) if path.exists() else config.model, config.device)
    with _LOADING:
        if key not in _LOADED:
            _LOADED[key] = HFCritic.from_config(config)
        return _LOADED[key]
