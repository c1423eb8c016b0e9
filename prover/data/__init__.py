"""The data the offline jobs need, shipped inside the package (provenance in ``DATA.md``).

- ``minif2f.jsonl``: the 488 miniF2F statements (244 ``valid`` + 244 ``test``).
- ``tactic_traces.jsonl``: recorded real Lean tactic steps on miniF2F, for ``--env replay``,
  ``--policy replay`` and ``prover train-policy``.
- ``repl_fixtures.jsonl``: tactic steps from the Lean REPL's own tests, for tests only; their
  "theorems" are snippets such as ``example : 1 = 0 := sorry``, not benchmark problems.

Nothing here reads a directory beside the repository: a pip-installed package finds its
files through ``importlib.resources``. To use other copies, point ``$PROVER_DATA`` at a
directory holding files of the same names::

    PROVER_DATA=/data/prover prover prove-split --env replay   # /data/prover/tactic_traces.jsonl

    >>> from prover.data import traces_path
    >>> traces_path().name
    'tactic_traces.jsonl'
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

__all__ = [
    "DATA_DIR_ENV_VAR",
    "MINIF2F_FILE",
    "REPL_FIXTURES_DATASET",
    "REPL_FIXTURES_FILE",
    "TRACES_FILE",
    "data_dir",
    "is_repl_fixture",
    "minif2f_path",
    "repl_fixtures_path",
    "traces_path",
]

DATA_DIR_ENV_VAR = "PROVER_DATA"
MINIF2F_FILE = "minif2f.jsonl"
TRACES_FILE = "tactic_traces.jsonl"
REPL_FIXTURES_FILE = "repl_fixtures.jsonl"

# The ``dataset`` of the records taken from the Lean REPL's tests. The recorded file
# (shared/data/minif2f/tactic_traces.jsonl) mixes them with the miniF2F steps, whose dataset
# is "minif2f_test_proofsearch"; this package ships the two apart.
REPL_FIXTURES_DATASET = "lean_repl_test_fixtures"


def data_dir() -> Path:
    """The directory the data files are read from: ``$PROVER_DATA`` if set and not empty,
    else this package's own directory (also inside a wheel install)."""
    override = os.environ.get(DATA_DIR_ENV_VAR)
    if override:
        return Path(override).expanduser()
    shipped = files(__name__)
    if not isinstance(shipped, Path):
        # Only an import from a zip archive gets here; installed wheels are plain directories.
        raise RuntimeError(
            f"prover.data is not a directory on disk ({shipped!r}); "
            f"set ${DATA_DIR_ENV_VAR} to a directory holding {MINIF2F_FILE} and {TRACES_FILE}"
        )
    return shipped


def minif2f_path() -> Path:
    """The miniF2F statements: one JSON object per problem (``name``, ``split``, ``header``,
    ``formal_statement`` ending in ``:=``, ...)."""
    return data_dir() / MINIF2F_FILE


def traces_path() -> Path:
    """The recorded miniF2F tactic steps: one JSON object per step (``theorem``,
    ``state_before``, ``tactic``, ``state_after``, ``proof_finished``, ...)."""
    return data_dir() / TRACES_FILE


def repl_fixtures_path() -> Path:
    """Tactic steps from the Lean REPL's tests, in the trace format; for tests only."""
    return data_dir() / REPL_FIXTURES_FILE


def is_repl_fixture(record: dict) -> bool:
    """Whether a trace record comes from the Lean REPL's tests rather than miniF2F: the rule
    that splits the recorded traces into ``tactic_traces.jsonl`` and ``repl_fixtures.jsonl``."""
    return record.get("dataset") == REPL_FIXTURES_DATASET
