"""Name -> backend tables for ``--env`` and ``--policy``, resolved lazily.

Each backend is a module with a builder and its own frozen config class (see
``prover.settings``). A module is imported only when its name is looked up, and backend
modules import their heavy dependency (torch, lean_dojo, vLLM) only inside the builder,
so ``--policy fixed`` never imports torch and ``--env synthetic`` never imports
lean_dojo. A misspelt name gets "did you mean". ``hidden`` backends exist for tests and
benchmarks (fault injection, a policy that sleeps like a model) and are not offered on
the command line; a config file or the Python API can still name them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from prover.errors import ProverError, did_you_mean


@dataclass(frozen=True)
class Backend:
    """A registered environment or policy: where its builder and config class live."""

    name: str
    module: str  # defines ``build(config)`` and the config class
    config_class: str
    summary: str  # one line for --help
    hidden: bool = False
    default_policy: str = "fixed"  # environments: the policy used when --policy is not given
    default_benchmark: str = "minif2f"  # environments: the theorem set used when --benchmark is not given


ENVS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("synthetic", "prover.envs.synthetic", "SyntheticConfig", "generated problems of tunable shape",
                default_policy="fixed", default_benchmark="synthetic"),
        Backend("replay", "prover.envs.replay", "ReplayConfig", "recorded real Lean interactions",
                default_policy="replay", default_benchmark="replay"),
        Backend("dojo", "prover.envs.dojo", "DojoConfig", "Lean 4 through LeanDojo", default_policy="hf"),
        Backend("repl", "prover.envs.repl", "ReplConfig", "Lean 4 through the Lean REPL (lean-interact)",
                default_policy="hf"),
        Backend("faulty", "prover.envs.faulty", "FaultyConfig", "fault injection around another environment",
                hidden=True),
    )
}

POLICIES: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("fixed", "prover.policies.fixed", "FixedConfig", "the same list of tactics for every state"),
        Backend("replay", "prover.policies.replay", "ReplayPolicyConfig", "recorded tactics mixed with wrong ones"),
        Backend("hf", "prover.policies.hf", "HFConfig", "a causal LM on transformers (Llemma by default)"),
        Backend("vllm", "prover.policies.vllm", "VLLMConfig", "a causal LM on vLLM (GPU)"),
        Backend("sleeping", "prover.policies.sleeping", "SleepingConfig",
                "a fixed policy that takes as long as a model (benchmarks)", hidden=True),
    )
}

KINDS = {"environment": ENVS, "policy": POLICIES}


def backend(kind: str, name: str) -> Backend:
    """The registered backend ``name`` of ``kind``; a ProverError with "did you mean" if none."""
    table = KINDS[kind]
    if name not in table:
        shown = [n for n, b in table.items() if not b.hidden]
        raise ProverError(f"unknown {kind} '{name}'{did_you_mean(name, shown)}")
    return table[name]


def _attribute(kind: str, name: str, attribute: str) -> Any:
    return getattr(importlib.import_module(backend(kind, name).module), attribute)


def resolve_config_class(kind: str, name: str) -> type:
    """The config class of backend ``name``."""
    return _attribute(kind, name, backend(kind, name).config_class)


def build(kind: str, name: str, options: Any) -> Any:
    """Build backend ``name`` from its config; its ValueErrors become one ProverError."""
    builder = _attribute(kind, name, "build")
    try:
        return builder(options)
    except ProverError:
        raise
    except ValueError as exc:
        raise ProverError(f"bad settings for the {name} {kind}: {exc}") from None
