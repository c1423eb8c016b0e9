"""Tactic policies: ``fixed`` and ``replay`` need no model; ``hf`` (transformers) and
``vllm`` load a causal LM such as Llemma. ``make_policy`` builds one by name."""

from __future__ import annotations

from search import TacticPolicy


def make_policy(spec) -> TacticPolicy:
    """The policy that ``spec`` (a ``prover.config.BackendSpec``) names."""
    from prover.registry import build

    return build("policy", spec.name, spec.options)
