"""Name tables: every table of named things (search algorithms, scorers, and above the
engine environments, policies, theorem sets, prompts, presets) is a ``Registry``, with one
lookup and one "did you mean" sentence for a name it does not hold.

    SCORERS.lookup("cumulativ")  # ValueError: unknown scorer 'cumulativ'; did you mean 'cumulative'?

An entry with a true ``hidden`` attribute (a test or benchmark backend) is found by
``lookup`` but not offered in the sentence nor by ``shown()``.
"""

from __future__ import annotations

import difflib
from typing import Generic, Iterable, Mapping, TypeVar

T = TypeVar("T")


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


class Registry(dict, Generic[T]):
    """A name -> entry table that says what it holds (``what``: "scorer", "environment")
    and raises ``error`` (a ValueError by default) for a name it does not hold."""

    def __init__(self, what: str, entries: Mapping[str, T] | None = None, error: type[Exception] = ValueError):
        super().__init__(entries or {})
        self.what = what
        self.error = error

    def lookup(self, name: str) -> T:
        """The entry called ``name``; ``error`` with "did you mean" otherwise."""
        if name in self:
            return self[name]
        raise self.error(f"unknown {self.what} '{name}'{did_you_mean(name, self.shown())}")

    def shown(self) -> list[str]:
        """The names offered to people (those of entries not ``hidden``), in order."""
        return [name for name, entry in self.items() if not getattr(entry, "hidden", False)]
