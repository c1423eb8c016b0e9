"""Errors meant for people: each says in one sentence what went wrong and what to do.

The CLI prints ``str(error)`` and exits 2 for these; any other exception is an internal
error (exit 3). A traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import difflib
from typing import Iterable


class ProverError(Exception):
    """A failure the user can act on (bad input, missing file, missing dependency)."""


class MissingDependencyError(ProverError):
    """Something the chosen backend needs is not installed here (Lean, a GPU, weights, ...)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """The end of an "unknown name" sentence: "; did you mean 'x'?" or the list of choices.

    >>> "unknown scorer 'cumulativ'" + did_you_mean("cumulativ", ["cumulative", "length_normalised"])
    "unknown scorer 'cumulativ'; did you mean 'cumulative'?"
    """
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=1)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; choose one of: {', '.join(choices)}" if choices else ""
