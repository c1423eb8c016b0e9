"""Name -> backend tables for ``--env`` and ``--policy``, resolved lazily.

A backend module is imported only when its name is chosen, so ``--policy fixed`` never
imports torch and ``--env synthetic`` never imports lean_dojo. A misspelt name gets
"did you mean".
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Callable

from prover.errors import ProverError

ENVS: dict[str, str] = {
    "synthetic": "prover.envs.synthetic:build",
    "replay": "prover.envs.replay:build",
    "dojo": "prover.envs.dojo:build",
    "repl": "prover.envs.repl:build",
    "faulty": "prover.faults:build",
}

POLICIES: dict[str, str] = {
    "fixed": "prover.policies.fixed:build",
    "replay": "prover.policies.replay:build",
    "hf": "prover.policies.hf:build",
    "vllm": "prover.policies.vllm:build",
}


def check_name(kind: str, name: str, table: dict[str, str]) -> None:
    """Raise a ProverError with "did you mean" unless ``name`` is registered in ``table``."""
    if name not in table:
        close = difflib.get_close_matches(name, table, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; choose one of: {', '.join(table)}."
        raise ProverError(f"unknown {kind} '{name}'{hint}")


def resolve(kind: str, name: str, table: dict[str, str]) -> Callable[..., Any]:
    """The builder registered as ``name`` in ``table``; ``kind`` names the table in errors."""
    check_name(kind, name, table)
    module_name, _, attribute = table[name].partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def build(kind: str, table: dict[str, str], config: Any) -> Any:
    """Build the backend that ``config.name`` names; bad settings become a ProverError."""
    builder = resolve(kind, config.name, table)
    try:
        return builder(config)
    except ValueError as exc:
        raise ProverError(f"bad settings for the {config.name} {kind}: {exc}") from None
