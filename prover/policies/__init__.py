"""Tactic policies: ``fixed`` and ``replay`` need no model; ``hf`` (transformers) and
``vllm`` load a causal LM such as Llemma. Choose one by name through ``make_policy``."""

from __future__ import annotations

from search import TacticPolicy


def make_policy(config) -> TacticPolicy:
    """The policy named by ``config.name`` (a ``PolicyConfig``)."""
    from prover.errors import ProverError
    from prover.registry import POLICIES, resolve

    builder = resolve("policy", config.name, POLICIES)
    try:
        return builder(config)
    except ValueError as exc:
        raise ProverError(f"bad settings for the {config.name} policy: {exc}") from None
