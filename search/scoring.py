"""Scorers: which open state the search expands next.

A ``Scorer`` maps what the search knows of a state (a ``NodeView``) to its priority;
the state with the highest priority is expanded first. ``SCORERS`` names the built-in
ones for configuration files and the command line.

    from search import NodeView, get_scorer
    get_scorer("length_normalised")(NodeView(cumulative_logprob=-1.2, depth=3))  # -0.4

A scorer that uses a critic reads ``view.value``, which is set when the search runs with
a ``ValueModel`` (and ``None`` otherwise):

    def value_first(view: NodeView) -> float:
        return view.value if view.value is not None else view.cumulative_logprob
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

from search.registry import Registry


class NodeView(NamedTuple):  # one per queued state: immutable, and the quickest to build
    """What a scorer may know of an open state."""

    cumulative_logprob: float  # the policy's log-prob of the best known path to the state
    depth: int  # tactics on that path
    value: float | None = None  # the value model's score, when the search has one


Scorer = Callable[[NodeView], float]
"""Maps a state to its priority; higher is expanded first."""


def cumulative_logprob(view: NodeView) -> float:
    """The log-probability of the path: best-first search as in GPT-f and ReProver."""
    return view.cumulative_logprob


def length_normalised(view: NodeView) -> float:
    """The mean log-probability per tactic, which lets confident long paths compete."""
    return view.cumulative_logprob / max(view.depth, 1)


@dataclass(frozen=True)
class ValueMixed:
    """The path's log-probability plus ``weight`` times the value model's score (the
    log-probability that the state is provable), so a likely path to a hopeless state
    waits behind a less likely one to a promising state. A state without a value (no
    value model) is scored by its log-probability alone.

        ValueMixed(weight=2.0)(NodeView(cumulative_logprob=-1.0, depth=1, value=-0.5))  # -2.0
    """

    weight: float = 1.0
    needs_value = True  # a search with this scorer should run with a ValueModel

    def __call__(self, view: NodeView) -> float:
        if view.value is None:
            return view.cumulative_logprob
        return view.cumulative_logprob + self.weight * view.value


SCORERS: Registry[Scorer] = Registry(
    "scorer",
    {
        "cumulative": cumulative_logprob,
        "length_normalised": length_normalised,
        "value_mixed": ValueMixed(),
    },
)


def get_scorer(name: str, **parameters: Any) -> Scorer:
    """The scorer registered as ``name`` (a ValueError with "did you mean" otherwise), with
    the ``parameters`` it has set (a scorer with parameters is a dataclass: ``ValueMixed``
    takes ``weight``; the others ignore them)."""
    scorer = SCORERS.lookup(name)
    if dataclasses.is_dataclass(scorer):
        own = {f.name for f in dataclasses.fields(scorer)}
        scorer = dataclasses.replace(scorer, **{key: value for key, value in parameters.items() if key in own})
    return scorer
