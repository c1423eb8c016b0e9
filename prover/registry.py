"""What can be named on the command line, and what each named thing can do.

``ENVS`` and ``POLICIES`` (``--env``, ``--policy``) are ``search.Registry`` tables, like the
engine's algorithms and scorers, the theorem sets (``prover.theorem_sets``), the prompt
formats and the presets: one lookup, one "did you mean" sentence. Each entry names the
module that implements it, resolved lazily (this module is the only one that imports
backends by name, and sits above them: a backend imports neither it nor the run config);
backend modules import their heavy dependency (torch,
lean_dojo, vLLM) only inside the builder, so ``--policy fixed`` never imports torch and
``--env synthetic`` never imports lean_dojo.

Each backend entry also says what the backend can do, so that no code outside the
backends tests a backend's name: whether an environment takes typed-in statements, needs
its theorems' repository traced first, runs Lean processes (GBs each), which theorem sets
it serves and its default policy and theorem set; whether a policy loads a model and shares
a prefix cache between requests (so a theorem's requests should stay on one replica).
Adding an environment is one module (a ``build(config)`` and a ``Settings`` class, see
``prover.settings``) plus one entry here. ``hidden`` backends exist for tests and benchmarks
(fault injection, a policy that sleeps like a model) and are not offered on the command
line; a config file or the Python API can still name them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from search import Registry

from prover.errors import ProverError
from prover.settings import from_dict


@dataclass(frozen=True)
class Backend:
    """A registered environment or policy: where its builder and config class live, and
    what it can do."""

    name: str
    module: str  # defines ``build(config)`` and the config class
    config_class: str
    summary: str  # one line for --help
    hidden: bool = False
    # environments
    default_policy: str = "fixed"  # the policy used when --policy is not given
    default_theorem_set: str = "minif2f"  # the theorem set used when --theorem-set is not given
    theorem_sets: tuple[str, ...] = ("minif2f",)  # the named theorem sets whose theorems it can start
    typed_statements: bool = False  # proves a theorem typed in (``attack --statement``)
    needs_trace: bool = False  # its module's ``require_traced(theorems)`` must pass before a run
    lean_files: bool = False  # lists a Lean file's holes with their proof states (``prover fill``, ``--lean-file``)
    lean_process: bool = False  # runs a Lean process per search (GBs each: Ray reserves memory for it)
    wraps: bool = False  # built around another environment, named by its ``inner``/``inner_options``
    # policies
    loads_model: bool = False  # runs a model (a GPU where there is one; slow to start)
    prefix_cache: bool = False  # keeps a prefix cache: a theorem's requests go to one replica


ENVS: Registry[Backend] = Registry(
    "environment",
    {
        b.name: b
        for b in (
            Backend(
                "synthetic",
                "prover.envs.synthetic",
                "SyntheticConfig",
                "generated problems of tunable shape",
                default_policy="fixed",
                default_theorem_set="synthetic",
                theorem_sets=("synthetic",),
            ),
            Backend(
                "replay",
                "prover.envs.replay",
                "ReplayConfig",
                "recorded real Lean interactions",
                default_policy="replay",
                default_theorem_set="replay",
                theorem_sets=("replay",),
            ),
            Backend(
                "dojo",
                "prover.envs.dojo",
                "DojoConfig",
                "Lean 4 through LeanDojo",
                default_policy="hf",
                theorem_sets=("minif2f", "replay"),
                needs_trace=True,
                lean_process=True,
            ),
            Backend(
                "repl",
                "prover.envs.repl",
                "ReplConfig",
                "Lean 4 through the Lean REPL (lean-interact)",
                default_policy="hf",
                theorem_sets=("minif2f", "replay"),
                typed_statements=True,
                lean_process=True,
                lean_files=True,
            ),
            Backend(
                "faulty",
                "prover.envs.faulty",
                "FaultyConfig",
                "fault injection around another environment",
                hidden=True,
                wraps=True,
                theorem_sets=("synthetic", "replay", "minif2f"),
            ),
        )
    },
    error=ProverError,
)

POLICIES: Registry[Backend] = Registry(
    "policy",
    {
        b.name: b
        for b in (
            Backend("fixed", "prover.policies.fixed", "FixedConfig", "the same list of tactics for every state"),
            Backend("replay", "prover.policies.replay", "ReplayPolicyConfig", "recorded tactics mixed with wrong ones"),
            Backend(
                "hf",
                "prover.policies.hf",
                "HFConfig",
                "a causal LM on transformers (Llemma by default)",
                loads_model=True,
            ),
            Backend(
                "vllm",
                "prover.policies.vllm",
                "VLLMConfig",
                "a causal LM on vLLM (GPU)",
                loads_model=True,
                prefix_cache=True,
            ),
            Backend(
                "sleeping",
                "prover.policies.sleeping",
                "SleepingConfig",
                "a fixed policy that takes as long as a model (benchmarks)",
                hidden=True,
            ),
        )
    },
    error=ProverError,
)

KINDS: dict[str, Registry[Backend]] = {"environment": ENVS, "policy": POLICIES}


def envs_with(capability: str) -> list[str]:
    """The user-facing environments that have ``capability`` (a true ``Backend`` field), in order."""
    return [name for name, entry in ENVS.items() if not entry.hidden and getattr(entry, capability)]


def backend(kind: str, name: str) -> Backend:
    """The registered backend ``name`` of ``kind``; a ProverError with "did you mean" if none."""
    return KINDS[kind].lookup(name)


def load(module: str, attribute: str) -> Any:
    """``module.attribute``, importing the module (the registry's only import by name)."""
    return getattr(importlib.import_module(module), attribute)


def resolve_config_class(kind: str, name: str) -> type:
    """The config class of backend ``name``."""
    entry = backend(kind, name)
    return load(entry.module, entry.config_class)


def build(kind: str, name: str, options: Any) -> Any:
    """Build backend ``name`` from its config; its ValueErrors become one ProverError.

    A backend that ``wraps`` another gets it built first, from its ``inner`` and
    ``inner_options`` (a JSON object of that backend's settings), as ``build(config, inner)``.
    """
    entry = backend(kind, name)
    builder = load(entry.module, "build")
    try:
        if entry.wraps:
            return builder(options, _inner(kind, name, options))
        return builder(options)
    except ProverError:
        raise
    except ValueError as exc:
        raise ProverError(f"bad settings for the {name} {kind}: {exc}") from None


def _inner(kind: str, name: str, options: Any) -> Any:
    import json

    if options.inner == name or backend(kind, options.inner).wraps:
        raise ValueError(f"inner must name another {kind}, not '{options.inner}'")
    try:
        settings = json.loads(options.inner_options)
    except json.JSONDecodeError as exc:
        raise ValueError(f"inner_options is not a JSON object: {exc}") from None
    except RecursionError:
        raise ValueError("inner_options is nested too deeply to be a JSON object of settings") from None
    if not isinstance(settings, dict):
        raise ValueError("inner_options must be a JSON object")
    inner_config = from_dict(resolve_config_class(kind, options.inner), settings, f"the {name} {kind}'s inner_options")
    return build(kind, options.inner, inner_config)
