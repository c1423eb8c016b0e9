"""Tactic policies: ``fixed`` and ``replay`` need no model; ``hf`` (transformers) and
``vllm`` load a causal LM such as Llemma. Choose one by name through ``make_policy``."""

from __future__ import annotations

from search import TacticPolicy


def make_policy(config) -> TacticPolicy:
    """The policy named by ``config.name`` (a ``PolicyConfig``)."""
    from prover.registry import POLICIES, build

    return build("policy", POLICIES, config)
