"""Theorem sets: the synthetic set, the theorems of a trace file, miniF2F, or a list file.

    theorems = load_theorems(TheoremSetConfig(theorem_set="minif2f", split="valid"), env_spec)

``THEOREM_SETS`` is the registry of named sets (``--theorem-set``): each entry lists its
theorems for a ``TheoremSetConfig`` and an environment, and may find a theorem named
outside that list (any ``synthetic_NNNN``; a miniF2F theorem of the other split) or make
held-out theorems of the same kind. A set with no ``--theorem-set`` is the environment's own
(its registry entry's ``default_theorem_set``).

miniF2F has two sources. The Lean backends (``--env dojo|repl``) read it from its source
of truth, the checkout of yangky11/miniF2F-lean4 at the commit pinned to Lean/Mathlib
v4.20.0 that ``prover setup-lean`` makes in the Lean project (``minif2f_checkout``): the
theorems of ``MiniF2F/Valid.lean`` and ``MiniF2F/Test.lean`` in file order, their
statements as written there, and the checkout's path and commit as their LeanDojo
address, so no process asks GitHub for the repository. Each checkout file is compared
with the shipped list (``prover.data.minif2f_source.compare_with_shipped``); a difference
beyond the documented ones (``imo_2006_p3`` is ``imo_2006_p6`` at the pin, 7 test
statements are older versions) is reported in one warning line on stderr. Where there is
no checkout (no Lean, or an offline environment), the shipped ``minif2f.jsonl`` serves, with
the GitHub address at the pin.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from search import Registry, Theorem

from prover.data import minif2f_path
from prover.data.minif2f_source import RENAMED_AFTER_PIN, UNEXPECTED, compare_with_shipped, parse_lean_theorems
from prover.envs.lean import MINIF2F_COMMIT, LeanConfig, git_head, minif2f_checkout
from prover.envs.lean import MINIF2F_URL as MINIF2F_REPO_URL
from prover.errors import ProverError, did_you_mean
from prover.registry import backend

SPLITS = ("valid", "test")

# MINIF2F_REPO_URL and MINIF2F_COMMIT: miniF2F at the pin, the address where there is no
# checkout (shared/data/minif2f/pins-v4.20.0 holds the pins of that commit).
MINIF2F_FILES = {"valid": "MiniF2F/Valid.lean", "test": "MiniF2F/Test.lean"}
# Theorems named differently in that commit's files than in minif2f.jsonl.
MINIF2F_NAMES_AT_PIN = {shipped: pinned for pinned, shipped in RENAMED_AFTER_PIN.items()}
_warned: set[tuple[str, str]] = set()  # (checkout, split) whose differences were reported


@dataclass(frozen=True)
class TheoremSet:
    """A named theorem set: ``load(spec, env)`` lists it; ``find(name, spec, env)``, where
    given, finds a theorem named outside that list (or None); ``heldout(count)``, where
    given, makes theorems of the same kind that are never trained on."""

    name: str
    summary: str
    load: Callable[[Any, Any], list[Theorem]]
    find: Callable[[str, Any, Any], Theorem | None] | None = None
    heldout: Callable[[int], list[Theorem]] | None = None


MAX_SYNTHETIC_THEOREMS = 1_000_000  # a million searches is days of work; more is a typo


def _synthetic(spec, env) -> list[Theorem]:
    # Built up to the limit only: the set may be named far larger than what is run.
    count = spec.num_theorems if spec.limit is None else min(spec.num_theorems, spec.limit)
    if count > MAX_SYNTHETIC_THEOREMS:
        raise ProverError(
            f"--num-theorems {spec.num_theorems} is more theorems than one run takes (at most "
            f"{MAX_SYNTHETIC_THEOREMS:,}); give a smaller number, or --limit N"
        )
    return [Theorem(f"synthetic_{i:04d}") for i in range(count)]


def _find_synthetic(name: str, spec, env) -> Theorem | None:
    return Theorem(name) if name.startswith("synthetic_") else None  # the synthetic set is unbounded


def _synthetic_heldout(count: int) -> list[Theorem]:
    from prover.envs.synthetic import heldout_theorems

    return heldout_theorems(count)


def _replay(spec, env) -> list[Theorem]:
    from prover.traces import load_traces

    traces = getattr(env.options, "traces", None)  # the replay environment's own trace file
    # Recorded miniF2F theorems carry their statements, so a proof prints as Lean source.
    known = {t.name: t for t in minif2f("test") + minif2f("valid")}
    return [_recorded(name, known) for name in load_traces(traces).names()]


def _minif2f(spec, env) -> list[Theorem]:
    return minif2f(spec.split, lean_project=lean_project_of(env))


def _find_minif2f(name: str, spec, env) -> Theorem | None:
    # A name from the other split is still a miniF2F theorem, and so is a name used at the pin.
    for split in (spec.split, "test" if spec.split == "valid" else "valid"):
        for theorem in minif2f(split, lean_project=lean_project_of(env)):
            if name in (theorem.name, theorem.full_name):
                return theorem
    return None


THEOREM_SETS: Registry[TheoremSet] = Registry(
    "theorem set",
    {
        t.name: t
        for t in (
            TheoremSet(
                "synthetic",
                "synthetic_0000, ... (--num-theorems of them)",
                _synthetic,
                _find_synthetic,
                _synthetic_heldout,
            ),
            TheoremSet("replay", "the theorems of the recorded traces", _replay),
            TheoremSet("minif2f", "miniF2F (--split valid or test)", _minif2f, _find_minif2f),
        )
    },
    error=ProverError,
)


def theorem_set_of(spec, env) -> str:
    """The named theorem set a run uses: ``--theorem-set``, else the environment's own."""
    name = spec.theorem_set or backend("environment", env.name).default_theorem_set
    THEOREM_SETS.lookup(name)
    return name


def check_served(spec, env) -> None:
    """Refuse, in one sentence, a named theorem set that the environment cannot start (its
    registry entry lists the sets it serves); a ``--theorems-file`` is the user's to judge."""
    entry = backend("environment", env.name)
    name = theorem_set_of(spec, env)
    if not (spec.theorems_file or spec.lean_file) and name not in entry.theorem_sets:
        raise ProverError(
            f"the {env.name} environment proves the theorems of {' or '.join(entry.theorem_sets)}, "
            f"not of --theorem-set {name}; give one of those, or a --theorems-file"
        )


def load_theorems(spec, env) -> list[Theorem]:
    """The theorems that ``spec`` (a ``TheoremSetConfig``) names for ``env`` (a ``BackendSpec``),
    in a stable order, at most ``spec.limit`` of them."""
    theorems = _named_or_listed(spec, env)
    if not theorems and not (spec.lean_file or spec.theorems_file):
        raise ProverError(f"the {theorem_set_of(spec, env)} theorem set is empty: there is nothing to prove")
    return theorems[: spec.limit] if spec.limit is not None else theorems


def _named_or_listed(spec, env) -> list[Theorem]:
    """The theorems of a Lean file, a list file or a named set, before ``limit``; may be empty
    (a split with no theorem in a checkout, where ``find_theorem`` still looks in the other)."""
    if spec.only is not None and not spec.theorems_file:
        raise ProverError(
            f"--only {spec.only} picks records of a run's results.jsonl: give that file with --theorems-file"
        )
    if spec.lean_file:
        from prover.lean_files import theorems_from_lean_file

        return theorems_from_lean_file(spec.lean_file, env)
    if spec.theorems_file:
        return theorems_from_file(spec.theorems_file, spec, env)
    return THEOREM_SETS[theorem_set_of(spec, env)].load(spec, env)


def _recorded(name: str, known: dict[str, Theorem]) -> Theorem:
    """A theorem of a trace file: ``name`` (``foo@2`` is a variant of ``foo``), with the
    statement of the miniF2F theorem of that name where there is one."""
    statement = known.get(name.split("@")[0])
    if statement is None:
        return Theorem(name)
    return Theorem(name, statement=statement.statement, header=statement.header)


def find_theorem(name: str, spec, env) -> Theorem:
    """The theorem called ``name`` in the set; "did you mean" when there is none."""
    everything = dataclasses.replace(
        spec, limit=None, only=None, num_theorems=min(spec.num_theorems, MAX_SYNTHETIC_THEOREMS)
    )
    theorems = _named_or_listed(everything, env)
    by_name = {t.name: t for t in theorems}
    if name in by_name:
        return by_name[name]
    if not spec.theorems_file:
        finder = THEOREM_SETS[theorem_set_of(spec, env)].find
        found = finder(name, spec, env) if finder is not None else None
        if found is not None:
            return found
    where = spec.theorems_file or theorem_set_of(spec, env)
    hint = did_you_mean(name, by_name) if len(by_name) <= 1000 else ""
    if hint.startswith("; choose"):
        hint = ""  # listing a whole theorem set helps nobody
    raise ProverError(f"no theorem named '{name}' in {where}{hint}")


def lean_project_of(env) -> str | None:
    """The Lean project of a Lean environment (where its miniF2F checkout is), else None."""
    return env.options.lean_project if isinstance(env.options, LeanConfig) else None


def minif2f(split: str, path: str | Path | None = None, lean_project: str | Path | None = None) -> list[Theorem]:
    """The miniF2F theorems of ``split`` ("valid" or "test"): from the checkout that
    ``prover setup-lean`` made in ``lean_project`` where there is one, else from the
    shipped statements file ``path`` (see the module docstring)."""
    if split not in SPLITS:
        raise ProverError(f"unknown miniF2F split '{split}'; choose 'valid' or 'test'")
    shipped = _shipped_minif2f(split, path)
    if lean_project is not None and (minif2f_checkout(lean_project) / ".git").exists():
        return _checked_out_minif2f(split, minif2f_checkout(lean_project), shipped, path)
    return shipped


def _shipped_minif2f(split: str, path: str | Path | None) -> list[Theorem]:
    path = Path(path) if path else minif2f_path()
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except FileNotFoundError:
        raise ProverError(f"the miniF2F statements file {path} does not exist (is PROVER_DATA right?)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ProverError(f"cannot read the miniF2F statements file {path}: {exc}") from None
    return [
        Theorem(
            row["name"],
            statement=row["formal_statement"],
            header=row.get("header", ""),
            repo_url=MINIF2F_REPO_URL,
            commit=MINIF2F_COMMIT,
            file_path=MINIF2F_FILES[split],
            full_name=MINIF2F_NAMES_AT_PIN.get(row["name"], row["name"]),
        )
        for row in rows
        if row.get("split") == split
    ]


def _checked_out_minif2f(split: str, checkout: Path, shipped: list[Theorem], path: str | Path | None) -> list[Theorem]:
    """The theorems of a split's file in the checkout, addressed there; a theorem renamed
    after the pin keeps its shipped name (``full_name`` is the name in the file), and the
    REPL's header comes from the shipped list (the file imports its own package)."""
    source = checkout / MINIF2F_FILES[split]
    try:
        parsed = parse_lean_theorems(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProverError(f"cannot read {source} ({exc.strerror or exc}); run `prover setup-lean` again") from None
    except ValueError as exc:
        raise ProverError(f"cannot read the theorems of {source}: {exc}") from None
    unexpected = [
        line[len(UNEXPECTED) :]
        for line in compare_with_shipped(parsed, split, Path(path) if path else None)
        if line.startswith(UNEXPECTED)
    ]
    if unexpected and (str(checkout), split) not in _warned:
        _warned.add((str(checkout), split))
        print(
            f"warning: {source} differs from the shipped miniF2F {split} list in {len(unexpected)} "
            f"undocumented way{'s' * (len(unexpected) > 1)} (first: {unexpected[0]}); its theorems are used",
            file=sys.stderr,
            flush=True,
        )
    by_name = {t.name: t for t in shipped}
    default_header = shipped[0].header if shipped else ""
    commit = git_head(checkout)
    theorems = []
    for pinned_name, statement in parsed:
        name = RENAMED_AFTER_PIN.get(pinned_name, pinned_name)
        if name not in by_name:
            name = pinned_name
        header = by_name[name].header if name in by_name else default_header
        theorems.append(
            Theorem(
                name,
                statement=statement,
                header=header,
                repo_url=str(checkout.resolve()),
                commit=commit,
                file_path=MINIF2F_FILES[split],
                full_name=pinned_name,
            )
        )
    return theorems


def theorems_from_file(path: str | Path, spec, env) -> list[Theorem]:
    """A list file: one theorem per line, either a bare name (looked up in the theorem set)
    or a JSON object with at least ``name`` (and any ``Theorem`` field, each text). ``#``
    comments. A run's ``results.jsonl`` is a list too: each record's ``theorem`` is looked
    up in the theorem set, and ``spec.only`` keeps the records with that outcome
    (``unproved``: every outcome but proved), so a run's failures can be retried."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ProverError(f"cannot read theorem list {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProverError(
            f"{path} is not a theorem list: it is not UTF-8 text (a binary file? byte {exc.start} "
            "is not UTF-8); give one theorem name or JSON object per line"
        ) from None
    base = dataclasses.replace(spec, theorems_file=None, limit=None, only=None)
    theorems: list[Theorem] = []
    recorded: set[str] = set()  # theorems of result records (a run keeps a theorem's first record)
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"line {number} of {path}"
        if not line.startswith("{"):
            _refuse_only(spec, where)
            theorems.append(find_theorem(line, base, env))
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise ProverError(f"{where} is not a theorem (JSON with a 'name', or a result record)") from None
        if not isinstance(row, dict):
            raise ProverError(f"{where} is not a theorem (JSON with a 'name', or a result record)")
        if "name" not in row and "theorem" in row:  # a line of a run's results.jsonl
            name, status = row["theorem"], row.get("status")
            if not isinstance(name, str) or not name or not isinstance(status, str):
                raise ProverError(f"{where} is not a result record (its 'theorem' and 'status' must be text)")
            if name in recorded:
                continue
            recorded.add(name)
            if spec.only is None or status == spec.only or (spec.only == "unproved" and status != "proved"):
                theorems.append(find_theorem(name, base, env))
            continue
        _refuse_only(spec, where)
        wrong = [key for key in Theorem.__dataclass_fields__ if key in row and not isinstance(row[key], str)]
        if wrong:
            raise ProverError(f"{where}: a theorem's '{wrong[0]}' must be text, not {repr(row[wrong[0]])[:40]}")
        theorem = Theorem.from_dict(row)
        if not theorem.name.strip():
            raise ProverError(f"{where} has no theorem name")
        theorems.append(theorem)
    if not theorems:
        which = f" whose record is {spec.only}" if spec.only else ""
        raise ProverError(f"{path} lists no theorem{which}: there is nothing to prove")
    return theorems


def _refuse_only(spec, where: str) -> None:
    if spec.only is not None:
        raise ProverError(
            f"--only {spec.only} picks records of a run's results.jsonl, but {where} is a theorem, not a result record"
        )


def attack_target(name: str | None, statement: str | None, spec, env) -> Theorem:
    """The theorem ``prover attack`` searches: ``name`` in the theorem set, or a typed-in
    ``statement`` (for an environment whose registry entry says it takes one)."""
    from prover.registry import ENVS
    from prover.statements import parse_statement

    if statement is None:
        if not name:
            raise ProverError('name a THEOREM, or type one in with --statement "theorem foo ... :="')
        return find_theorem(name, spec, env)
    target = parse_statement(statement)
    if name and name != target.name:
        raise ProverError(f"THEOREM '{name}' is not the name in --statement ('{target.name}'); give one of them")
    able = backend("environment", env.name)
    if not able.typed_statements:
        takers = " or ".join(f"--env {n}" for n in ENVS.shown() if ENVS[n].typed_statements)
        if able.needs_trace:
            raise ProverError(
                f"--env {env.name} proves theorems of a repository traced by `prover setup-lean`, "
                f"not typed-in statements; use {takers} for --statement"
            )
        raise ProverError(
            f"a typed-in statement needs Lean; the {env.name} environment has only its own theorems: use {takers}"
        )
    return target


def heldout_theorems(count: int, spec, env) -> list[Theorem]:
    """``count`` theorems of the same kind as the named set, never trained on (``prover
    iterate --num-heldout``); a set that cannot make them is refused in one sentence."""
    make = None if (spec.theorems_file or spec.lean_file) else THEOREM_SETS[theorem_set_of(spec, env)].heldout
    if make is None:
        able = [name for name, entry in THEOREM_SETS.items() if entry.heldout is not None]
        raise ProverError(
            f"--num-heldout makes held-out theorems of the {' or '.join(able)} set; with another "
            "theorem set give --heldout-file"
        )
    return make(count)
