"""Errors meant for people: each says in one sentence what went wrong and what to do.

The CLI prints ``str(error)`` and exits non-zero; it shows a traceback only with ``--debug``.
"""


class ProverError(Exception):
    """A failure the user can act on (bad input, missing file, missing dependency)."""


class MissingDependencyError(ProverError):
    """Something the chosen backend needs is not installed here (Lean, a GPU, weights, ...)."""
