"""``prover fill FILE.lean``: prove the `sorry`s of a Lean file and write the proofs back, checked.

The Lean REPL elaborates the file (its leading ``import`` lines as the header, the rest as
one command on top) and lists its ``sorries``, each with a position, a goal and a proof
state. Each becomes a ``Hole`` (``prover.holes``) and a ``Theorem`` whose ``statement`` is
the file's body and ``sorry_at`` the hole's position in it: the REPL backend starts a
search there (``hole_start``) and re-checks a found proof by elaborating the body with the
proof in its place (``check_hole_proof``). The holes run as a theorem set through the
batch driver (``prover.run.driver.prove_set``) into a run directory, so records, trees,
``prover viz RUN`` and ``--resume`` work as for ``prove-split``; one hole runs in this
process, several on Ray unless ``--num-workers 0``.

Then every found proof is put in its place and the whole file is checked again in Lean
(``check_fills``): no error, no `sorry` left where a proof went, and ``#print axioms`` of
each changed declaration within ``propext``/``Classical.choice``/``Quot.sound`` (plus
``sorryAx`` while the declaration keeps another, unfilled hole). A declaration whose proofs
fail the check gets none of them, and the check runs again without them. Only then is the
result written: ``FILE.filled.lean`` by default, or ``FILE`` itself with ``--write`` after a
backup ``FILE.bak``; an existing output or backup is never replaced without ``--overwrite``.

    report = fill_file(FillRequest(Path("Foo.lean")), config)
    report.rows()  # declaration, line, status, tactics, time
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prover.errors import ProverError
from prover.holes import (
    Hole,
    apply_edits,
    declarations,
    make_holes,
    offset_of,
    replacement,
    split_header,
)
from search import EnvInitError, SearchStatus, Theorem

STANDARD_AXIOMS = frozenset({"propext", "Classical.choice", "Quot.sound"})
SORRY_WARNINGS = ("declaration uses 'sorry'", "declaration uses `sorry`")
FILL_RECORD = "fill.json"  # in the run directory: which file, and its hash when the run began

Elaborate = Callable[[str], Any]  # a file's body -> the REPL's answer (a CommandResponse)


# -- the REPL's answers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    severity: str
    line: int
    column: int
    data: str


@dataclass(frozen=True)
class SorryAnswer:
    line: int
    column: int
    end_line: int
    end_column: int
    goal: str
    proof_state: int | None


def messages_of(response: Any) -> list[Message]:
    return [Message(m.severity, m.start_pos.line, m.start_pos.column, m.data) for m in getattr(response, "messages", [])]


def sorries_of(response: Any) -> list[SorryAnswer]:
    found = []
    for s in getattr(response, "sorries", []) or []:
        end = s.end_pos or s.start_pos
        found.append(SorryAnswer(s.start_pos.line, s.start_pos.column, end.line, end.column, s.goal, s.proof_state))
    return found


def _parse_position(sorry_at: str) -> tuple[int, int]:
    line, _, column = sorry_at.partition(":")
    return int(line), int(column)


def hole_start(response: Any, theorem: Theorem) -> tuple[str, int]:
    """(goal, proof state) of the `sorry` at ``theorem.sorry_at`` in the REPL's answer to the
    file's body; an ``EnvInitError`` when there is none there (the file changed)."""
    line, column = _parse_position(theorem.sorry_at)
    for sorry in sorries_of(response):
        if (sorry.line, sorry.column) == (line, column) and sorry.proof_state is not None:
            return sorry.goal, sorry.proof_state
    raise EnvInitError(
        f"Lean gave no proof state for a `sorry` at line {line}, column {column} of the file's body "
        f"for '{theorem.name}' (has the file changed?)"
    )


# -- checking proofs in their places ----------------------------------------------------------


_CHECK_NAME = "prover_fill_check_{}"  # an `example` is renamed so that `#print axioms` can name it


@dataclass
class Checked:
    """The whole-file check of some proofs put in place: the patched body (as it is to be
    written), and what is wrong, per declaration (by its full name) and overall."""

    patched: str
    problems: dict[str, str] = field(default_factory=dict)  # declaration -> why its proofs are refused
    overall: str | None = None  # an error outside every changed declaration


def check_fills(elaborate: Elaborate, body: str, fills: Sequence[tuple[Hole, Sequence[str]]]) -> Checked:
    """Put each hole's tactics in ``body`` (holes in body coordinates) and elaborate the
    result with ``#print axioms`` of each changed declaration; see the module docstring."""
    decls = declarations(body)
    edits, filled_spans = [], []
    changed: dict[int, list[Hole]] = {}  # index of the declaration -> its filled holes
    for hole, tactics in fills:
        start = offset_of(body, hole.line, hole.column)
        end = offset_of(body, hole.end_line, hole.end_column)
        if body[start:end] != "sorry":
            raise ValueError(f"there is no `sorry` at line {hole.line}, column {hole.column}")
        edits.append(replacement(body, start, end, hole.kind, tactics))
        filled_spans.append(len(edits) - 1)
        index = max(i for i, d in enumerate(decls) if d.start <= start)
        changed.setdefault(index, []).append(hole)
    patched, _ = apply_edits(body, edits)
    # The copy that is checked: examples renamed, `#print axioms` at the end.
    renames = []
    for index in changed:
        declaration = decls[index]
        if declaration.keyword == "example":
            at = body.index("example", declaration.start)
            renames.append((at, at + len("example"), "theorem " + _CHECK_NAME.format(index)))
    checked_text, spans = apply_edits(body, edits + renames)
    checked_decls = declarations(checked_text)
    assert len(checked_decls) == len(decls), "putting proofs in place changed the declarations"
    names = {index: checked_decls[index].full_name for index in changed}
    lines = checked_text.rstrip("\n").count("\n") + 1
    tail = "".join(f"\n#print axioms {names[index]}" for index in sorted(changed))
    source = checked_text.rstrip("\n") + "\n" + tail + "\n"
    axioms_line = {index: lines + 1 + k + 1 for k, index in enumerate(sorted(changed))}
    response = elaborate(source)
    messages = messages_of(response)
    sorries = sorries_of(response)

    def declaration_of(line: int) -> int | None:
        starts = [d.line for d in checked_decls]
        found = None
        for i, start in enumerate(starts):
            if start <= line:
                found = i
        return found

    result = Checked(patched)
    label = {index: decls[index].full_name or f"example at line {decls[index].line}" for index in changed}
    for message in messages:
        if message.severity != "error":
            continue
        if message.line > lines:  # at the `#print axioms` lines
            index = next((i for i, line in axioms_line.items() if line == message.line), None)
            if index is not None:
                result.problems.setdefault(label[index], f"Lean could not print its axioms: {message.data}")
            continue
        index = declaration_of(message.line)
        text = f"Lean reports an error at line {message.line}: {message.data.splitlines()[0] if message.data else ''}"
        if index in changed:
            result.problems.setdefault(label[index], text)
        elif result.overall is None:
            result.overall = text
    filled_ranges = [spans[i] for i in filled_spans]
    for sorry in sorries:
        offset = offset_of(checked_text, sorry.line, sorry.column) if sorry.line <= lines else -1
        if any(start <= offset < end for start, end in filled_ranges):
            index = declaration_of(sorry.line)
            if index in changed:
                result.problems.setdefault(label[index], "a `sorry` is left where the proof was put")
    still_open = {index for index in changed
                  if any(declaration_of(s.line) == index for s in sorries if s.line <= lines)}
    for index in changed:
        if label[index] in result.problems:
            continue
        printed = _printed_axioms(messages, axioms_line[index])
        if printed is None:
            result.problems[label[index]] = "Lean did not answer `#print axioms`, so its axioms are unknown"
            continue
        allowed = STANDARD_AXIOMS | ({"sorryAx"} if index in still_open else set())
        extra = [a for a in printed if a not in allowed]
        if extra:
            result.problems[label[index]] = f"the proof depends on {', '.join(extra)}"
            continue
        if index not in still_open and any(
            m.severity == "warning" and m.data.strip() in SORRY_WARNINGS and declaration_of(m.line) == index
            for m in messages
        ):
            result.problems[label[index]] = "the declaration still uses `sorry`"
    return result


def _printed_axioms(messages: Sequence[Message], line: int) -> list[str] | None:
    from prover.envs.repl import PRINTED_AXIOMS

    for message in messages:
        if message.line != line or message.severity != "info":
            continue
        found = PRINTED_AXIOMS.match(message.data.strip())
        if found is not None:
            return [a.strip() for a in (found.group("axioms") or "").split(",") if a.strip()]
    return None


def hole_in_body(body: str, sorry_at: str) -> Hole:
    """The ``Hole`` at ``sorry_at`` ("LINE:COLUMN") of a file's body."""
    line, column = _parse_position(sorry_at)
    return make_holes(body, [(line, column, line, column + len("sorry"), "")])[0]


def check_hole_proof(elaborate: Elaborate, theorem: Theorem, tactics: Sequence[str]) -> str | None:
    """The REPL backend's re-check of one hole's proof: None when the file's body, with the
    tactics in the hole's place, passes ``check_fills``; else why not."""
    try:
        hole = hole_in_body(theorem.statement, theorem.sorry_at)
        checked = check_fills(elaborate, theorem.statement, [(hole, list(tactics))])
    except ValueError as exc:
        return str(exc)
    except EnvInitError as exc:
        return f"the whole-file check could not run: {exc}"
    if checked.problems:
        return next(iter(checked.problems.values()))
    return checked.overall


# -- a file and its holes ---------------------------------------------------------------------


@dataclass(frozen=True)
class LeanFile:
    """A Lean file split as the REPL elaborates it."""

    path: Path
    text: str
    header: str
    body: str

    @property
    def header_lines(self) -> int:
        return self.header.count("\n")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @classmethod
    def read(cls, path: str | Path) -> LeanFile:
        path = Path(path)
        if path.suffix != ".lean":
            raise ProverError(f"{path} is not a Lean file (its name must end in .lean)")
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ProverError(f"{path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ProverError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
        header, body = split_header(text)
        return cls(path.resolve(), text, header, body)


def project_of(path: str | Path) -> Path:
    """The Lake project that holds ``path``: the nearest directory above it with a
    ``lean-toolchain`` file; a ProverError when there is none."""
    for directory in Path(path).resolve().parents:
        if (directory / "lean-toolchain").is_file():
            return directory
    raise ProverError(f"{path} is not inside a Lake project (no lean-toolchain file above it); pass --lean-project DIR")


def find_holes(lean_file: LeanFile, elaborate_file: Callable[[str, str], Any]) -> list[Hole]:
    """The file's holes, in file coordinates; a ProverError when Lean reports an error."""
    try:
        response = elaborate_file(lean_file.header, lean_file.body)
    except EnvInitError as exc:
        raise ProverError(f"{lean_file.path} could not be elaborated: {exc}") from None
    errors = [m for m in messages_of(response) if m.severity == "error"]
    if errors:
        first = errors[0]
        line = first.line + lean_file.header_lines
        text = (first.data.splitlines() or [""])[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ProverError(f"{lean_file.path} does not elaborate: line {line}: {text}{more}; fix it first, "
                          "nothing was written")
    shift = lean_file.header_lines
    sorries = [(s.line + shift, s.column, s.end_line + shift, s.end_column, s.goal)
               for s in sorries_of(response) if s.proof_state is not None]
    return make_holes(lean_file.text, sorries)


def hole_theorem(lean_file: LeanFile, hole: Hole) -> Theorem:
    """The theorem a search of ``hole`` starts from (positions relative to the body)."""
    return Theorem(
        hole.name,
        statement=lean_file.body,
        header=lean_file.header,
        file_path=str(lean_file.path),
        full_name=hole.declaration,
        sorry_at=f"{hole.line - lean_file.header_lines}:{hole.column}",
    )


def body_hole(lean_file: LeanFile, hole: Hole) -> Hole:
    """``hole`` in the coordinates of the body."""
    shift = lean_file.header_lines
    return dataclasses.replace(hole, line=hole.line - shift, end_line=hole.end_line - shift,
                               decl_line=hole.decl_line - shift)


def file_elaborator(env_options: Any) -> tuple[Any, Callable[[str, str], Any]]:
    """A REPL environment for ``env_options`` (a ``ReplConfig``) and its ``elaborate``."""
    from prover.envs.repl import build

    env = build(env_options)
    return env, env.elaborate


def theorems_from_lean_file(path: str | Path, env_spec: Any) -> list[Theorem]:
    """``prove-split --lean-file``: every hole of the file as a theorem (needs ``--env repl``)."""
    if env_spec.name != "repl":
        raise ProverError(f"--lean-file needs --env repl (the Lean REPL lists a file's `sorry`s), not --env {env_spec.name}")
    lean_file = LeanFile.read(path)
    env, elaborate_file = file_elaborator(env_spec.options)
    try:
        holes = find_holes(lean_file, elaborate_file)
    finally:
        env.close()
    if not holes:
        raise ProverError(f"{lean_file.path} has no `sorry` to prove")
    return [hole_theorem(lean_file, hole) for hole in holes]


def filled_text(theorem: Theorem, tactics: Sequence[str]) -> str:
    """The declaration of a hole with ``tactics`` in its place (a record's ``proof_text``)."""
    hole = hole_in_body(theorem.statement, theorem.sorry_at)
    start = offset_of(theorem.statement, hole.line, hole.column)
    edit = replacement(theorem.statement, start, start + len("sorry"), hole.kind, tactics)
    patched, spans = apply_edits(theorem.statement, [edit])
    decls = declarations(patched)
    begin = max(d.start for d in decls if d.start <= spans[0][0])
    following = [d.start for d in decls if d.start > begin]
    return patched[begin : following[0] if following else len(patched)].rstrip()


# -- prover fill ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FillRequest:
    """What ``prover fill`` was asked (besides the search settings)."""

    file: Path
    write: bool = False  # in place, with a backup
    output: Path | None = None  # default FILE.filled.lean
    overwrite: bool = False  # replace an existing output or backup
    out: Path | None = None  # the run directory [default: runs/fill-<stem>-<time>]
    resume: Path | None = None
    command_line: list[str] | None = None


@dataclass
class HoleResult:
    hole: Hole
    status: str  # filled | rejected | proved (not written) | failed | open | error | ...
    tactics: list[str]
    wall_time_s: float
    error: str | None = None

    def to_json(self) -> dict:
        return {
            "name": self.hole.name, "declaration": self.hole.declaration, "line": self.hole.line,
            "column": self.hole.column, "kind": self.hole.kind, "goal": self.hole.goal, "status": self.status,
            "tactics": self.tactics, "num_tactics": len(self.tactics), "wall_time_s": round(self.wall_time_s, 3),
            "error": self.error,
        }


@dataclass
class FillReport:
    file: Path
    run: Path
    holes: list[HoleResult]
    written: Path | None
    backup: Path | None
    check: str  # what the final whole-file check said

    @property
    def num_filled(self) -> int:
        return sum(h.status == "filled" for h in self.holes)

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """(declaration, line, status, tactics, time) per hole, for the summary table."""
        return [(h.hole.declaration, str(h.hole.line), h.status + (f": {h.error}" if h.error else ""),
                 str(len(h.tactics)) if h.tactics else "-", f"{h.wall_time_s:.2f} s") for h in self.holes]

    def to_json(self) -> dict:
        return {
            "file": str(self.file), "run": str(self.run), "written": str(self.written) if self.written else None,
            "backup": str(self.backup) if self.backup else None, "num_holes": len(self.holes),
            "num_filled": self.num_filled, "check": self.check, "holes": [h.to_json() for h in self.holes],
        }


def output_paths(request: FillRequest) -> tuple[Path, Path | None]:
    """(where the result goes, the backup or None); a ProverError when one exists already
    and ``--overwrite`` was not given. Checked before any search starts."""
    file = request.file.resolve()
    if request.write:
        target, backup = file, file.with_name(file.name + ".bak")
        if backup.exists() and not request.overwrite:
            raise ProverError(f"the backup {backup} exists already; move it away or pass --overwrite")
        return target, backup
    target = request.output.resolve() if request.output else file.with_name(file.stem + ".filled.lean")
    if target == file:
        raise ProverError(f"--output is the file itself; use --write to fill {file} in place (it keeps a backup)")
    if target.exists() and not request.overwrite:
        raise ProverError(f"{target} exists already; pass --overwrite to replace it, or --output PATH")
    return target, None


def fill_file(request: FillRequest, config: Any, echo: Callable[[str], None] = print,
              prove: Callable | None = None) -> FillReport:
    """Find, prove, check and write back the holes of ``request.file``; see the module
    docstring. ``prove(theorems, config, run)`` runs the searches into the run directory
    [default: ``prove_holes``]."""
    from prover.run.rundir import RunDir

    if config.env.name != "repl":
        raise ProverError(f"prover fill needs --env repl (the Lean REPL lists a file's `sorry`s), not --env {config.env.name}")
    lean_file = LeanFile.read(request.file)
    target, backup = output_paths(request)
    if request.resume is not None:
        run = RunDir.open(request.resume)
        _check_same_file(run.path, lean_file)
    env, elaborate_file = file_elaborator(config.env.options)
    try:
        holes = find_holes(lean_file, elaborate_file)
        if not holes:
            echo(f"{lean_file.path} has no `sorry`; nothing to do")
            return FillReport(lean_file.path, Path(request.resume or ""), [], None, None, "no holes")
        if request.resume is None:
            out = request.out or Path("runs") / f"fill-{lean_file.path.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
            run = RunDir.create(out, config, command_line=request.command_line)
            (run.path / FILL_RECORD).write_text(json.dumps({"file": str(lean_file.path), "sha256": lean_file.sha256,
                                                            "holes": len(holes)}, indent=1), encoding="utf-8")
        run.command_line = request.command_line
        theorems = [hole_theorem(lean_file, hole) for hole in holes]
        echo(f"{len(holes)} hole{'s' * (len(holes) != 1)} in {lean_file.path}; run directory {run.path}")
        (prove or prove_holes)(theorems, config, run)
        records = {r.theorem: r for r in run.records()}
        results = []
        for hole in holes:
            record = records.get(hole.name)
            if record is None:
                results.append(HoleResult(hole, "not run", [], 0.0))
                continue
            tactics = list(record.proof or []) if record.status is SearchStatus.PROVED else []
            results.append(HoleResult(hole, record.status.value, tactics, record.wall_time_s, record.error))
        final, check = _checked_fills(lambda body: elaborate_file(lean_file.header, body), lean_file, results)
    finally:
        env.close()
    written = None
    if any(r.status == "filled" for r in results):
        if LeanFile.read(request.file).sha256 != lean_file.sha256:
            raise ProverError(f"{lean_file.path} changed while the search ran; nothing was written (the proofs are "
                              f"in {run.path})")
        if backup is not None:
            backup.write_text(lean_file.text, encoding="utf-8")
        _write_atomically(target, lean_file.header + final)
        written = target
    return FillReport(lean_file.path, run.path, results, written, backup if written else None, check)


def _checked_fills(elaborate: Elaborate, lean_file: LeanFile, results: list[HoleResult]) -> tuple[str, str]:
    """The body with every proof that passes the whole-file check in place; the refused ones
    are marked "rejected". Returns (body, what the last check said)."""
    pending = [r for r in results if r.status == SearchStatus.PROVED.value]
    if not pending:
        return lean_file.body, "nothing to check: no hole was proved"
    while pending:
        checked = check_fills(elaborate, lean_file.body, [(body_hole(lean_file, r.hole), r.tactics) for r in pending])
        if not checked.problems and checked.overall is None:
            for r in pending:
                r.status = "filled"
            return checked.patched, f"the patched file checks: no error, {len(pending)} proof(s) in place, axioms standard"
        refused = [r for r in pending if r.hole.declaration in checked.problems or
                   (checked.overall is not None and not checked.problems)]
        for r in refused:
            r.status = "rejected"
            r.error = "the whole-file check refused it: " + (checked.problems.get(r.hole.declaration) or checked.overall)
        pending = [r for r in pending if r not in refused]
    return lean_file.body, "every proof found was refused by the whole-file check"


def _check_same_file(run_path: Path, lean_file: LeanFile) -> None:
    try:
        saved = json.loads((run_path / FILL_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ProverError(f"{run_path} is not a `prover fill` run (it has no {FILL_RECORD})") from None
    if saved.get("file") != str(lean_file.path):
        raise ProverError(f"{run_path} filled {saved.get('file')}, not {lean_file.path}; start a new run with --out")
    if saved.get("sha256") != lean_file.sha256:
        raise ProverError(f"{lean_file.path} changed since the run in {run_path} began; start a new run with --out")


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
    except OSError as exc:
        raise ProverError(f"cannot write {path}: {exc.strerror or exc}") from None


def prove_holes(theorems: Sequence[Theorem], config: Any, run: Any) -> None:
    """The searches of the holes into ``run``: one hole in this process, several on Ray
    unless ``--num-workers 0``."""
    from prover.run.driver import InProcessExecutor, prove_set

    if len(theorems) == 1 or config.distributed.num_workers == 0:
        executor = InProcessExecutor(config)
    else:
        from prover.run.cluster import RayExecutor

        executor = RayExecutor(config)
    prove_set(theorems, run, executor)


def with_file_project(config: Any, file: str | Path, project_given: bool) -> Any:
    """``config`` with the Lean project that holds ``file`` unless ``--lean-project`` was given."""
    if project_given or config.env.name != "repl":
        return config
    project = project_of(file)
    options = dataclasses.replace(config.env.options, lean_project=str(project))
    return dataclasses.replace(config, env=dataclasses.replace(config.env, options=options))
