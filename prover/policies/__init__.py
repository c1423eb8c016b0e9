"""Tactic policies: ``fixed`` and ``replay`` need no model; ``hf`` (transformers) and
``vllm`` load a causal LM such as Llemma. ``make_policy`` builds one by name;
``make_critic`` loads a value model (``critic``)."""

from __future__ import annotations

from search import TacticPolicy, ValueModel


def make_policy(spec) -> TacticPolicy:
    """The policy that ``spec`` (a ``prover.config.BackendSpec``) names."""
    return spec.build()  # through the registry, which imports this package's modules by name


def make_critic(directory: str) -> ValueModel:
    """The value model in ``directory`` (``--critic``), loaded once per process."""
    from prover.policies.critic import CriticConfig, build

    return build(CriticConfig(model=directory))
