"""Errors meant for people: each says in one sentence what went wrong and what to do.

The CLI prints ``str(error)`` and exits 2 for these; any other exception is an internal
error (exit 3). A traceback is shown only with ``--debug``.
"""

from __future__ import annotations

from search.registry import did_you_mean  # the one "did you mean" sentence, for prover's tables too

__all__ = ["MissingDependencyError", "ProverError", "did_you_mean"]


class ProverError(Exception):
    """A failure the user can act on (bad input, missing file, missing dependency)."""


class MissingDependencyError(ProverError):
    """Something the chosen backend needs is not installed here (Lean, a GPU, weights, ...)."""
