"""``prover fill FILE.lean``: prove the `sorry`s of a Lean file and write the proofs back, checked.

The Lean REPL elaborates the file (its leading ``import`` lines as the header, the rest as
one command on top) and lists its ``sorries``, each with a position, a goal and a proof
state. Each becomes a ``Hole`` (``prover.holes``) and a ``Theorem`` whose ``statement`` is
the file's body and ``sorry_at`` the hole's position in it: the REPL backend starts a
search there and re-checks a found proof by elaborating the body with the proof in its
place (both in ``prover.envs.filecheck``). The holes run as a theorem set through the
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

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search import SearchStatus, Theorem

from prover.envs.filecheck import Elaborate, check_fills
from prover.errors import ProverError
from prover.holes import Hole
from prover.lean_files import LeanFile, body_hole, file_elaborator, find_holes, hole_theorem, require_file_holes

FILL_RECORD = "fill.json"  # in the run directory: which file, and its hash when the run began


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
            "name": self.hole.name,
            "declaration": self.hole.declaration,
            "line": self.hole.line,
            "column": self.hole.column,
            "kind": self.hole.kind,
            "goal": self.hole.goal,
            "status": self.status,
            "tactics": self.tactics,
            "num_tactics": len(self.tactics),
            "wall_time_s": round(self.wall_time_s, 3),
            "error": self.error,
        }


@dataclass
class FillReport:
    file: Path
    run: Path | None  # None when the file has no hole
    holes: list[HoleResult]
    written: Path | None
    backup: Path | None
    check: str  # what the final whole-file check said

    @property
    def num_filled(self) -> int:
        return sum(h.status == "filled" for h in self.holes)

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """(declaration, line, status, tactics, time) per hole, for the summary table."""
        return [
            (
                h.hole.declaration,
                str(h.hole.line),
                h.status + (f": {h.error}" if h.error else ""),
                str(len(h.tactics)) if h.tactics else "-",
                f"{h.wall_time_s:.2f} s",
            )
            for h in self.holes
        ]

    def to_json(self) -> dict:
        return {
            "file": str(self.file),
            "run": str(self.run) if self.run else None,
            "written": str(self.written) if self.written else None,
            "backup": str(self.backup) if self.backup else None,
            "num_holes": len(self.holes),
            "num_filled": self.num_filled,
            "check": self.check,
            "holes": [h.to_json() for h in self.holes],
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


def fill_file(
    request: FillRequest, config: Any, echo: Callable[[str], None] = print, prove: Callable | None = None
) -> FillReport:
    """Find, prove, check and write back the holes of ``request.file``; see the module
    docstring. ``prove(theorems, config, run)`` runs the searches into the run directory
    [default: ``prove_holes``]."""
    from prover.run.rundir import RunDir

    require_file_holes(config.env.name, "prover fill")
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
            return FillReport(lean_file.path, None, [], None, None, "no holes")
        if request.resume is None:
            out = request.out or Path("runs") / f"fill-{lean_file.path.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
            run = RunDir.create(out, config, command_line=request.command_line)
            (run.path / FILL_RECORD).write_text(
                json.dumps({"file": str(lean_file.path), "sha256": lean_file.sha256, "holes": len(holes)}, indent=1),
                encoding="utf-8",
            )
        run.command_line = request.command_line
        theorems = [hole_theorem(lean_file, hole) for hole in holes]
        echo(f"{len(holes)} hole{'s' * (len(holes) != 1)} in {lean_file.path}; run directory {run.path}")
        try:
            (prove or prove_holes)(theorems, config, run)
        except BaseException:
            if request.resume is None and run.discard_if_empty():
                (run.path / FILL_RECORD).unlink(missing_ok=True)
                run.discard_if_empty()
            raise
        records = {r.theorem: r for r in run.records()}
        results = []
        for hole in holes:
            record = records.get(hole.name)
            if record is None:
                results.append(HoleResult(hole, "not run", [], 0.0))
                continue
            tactics = list(record.proof or []) if record.status is SearchStatus.PROVED else []
            results.append(HoleResult(hole, record.status.value, tactics, record.wall_time_s, record.error))
        _refuse_unsafe(results, config)
        final, check = _checked_fills(lambda body: elaborate_file(lean_file.header, body), lean_file, results)
    finally:
        env.close()
    written = None
    if any(r.status == "filled" for r in results):
        if LeanFile.read(request.file).sha256 != lean_file.sha256:
            raise ProverError(
                f"{lean_file.path} changed while the search ran; nothing was written (the proofs are in {run.path})"
            )
        if backup is not None:
            backup.write_text(lean_file.text, encoding="utf-8")
        _write_atomically(target, lean_file.header + final)
        written = target
    return FillReport(lean_file.path, run.path, results, written, backup if written else None, check)


def _refuse_unsafe(results: list[HoleResult], config: Any) -> None:
    """Mark "rejected" every proof with a tactic the safety filter refuses: the proofs come
    from result files on disk, and nothing untrusted reaches Lean unfiltered."""
    from prover.envs.safety import TacticFilter

    screen = TacticFilter(allow_native_decide=bool(config.safety.allow_native_decide))
    for result in results:
        if result.status != SearchStatus.PROVED.value:
            continue
        refusal = next((r for r in map(screen.refusal, result.tactics) if r is not None), None)
        if refusal is not None:
            result.status, result.error = "rejected", f"the tactic filter {refusal}"


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
            return (
                checked.patched,
                f"the patched file checks: no error, {len(pending)} proof(s) in place, axioms standard",
            )
        line = {id(r): body_hole(lean_file, r.hole).decl_line for r in pending}
        refused = [
            r
            for r in pending
            if line[id(r)] in checked.problems or (checked.overall is not None and not checked.problems)
        ]
        for r in refused:
            r.status = "rejected"
            r.error = "the whole-file check refused it: " + (checked.problems.get(line[id(r)]) or checked.overall)
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
    """The searches of the holes into ``run``, with the executor ``prove-split`` would
    choose (one hole in this process)."""
    from prover.run.batch import executor_for
    from prover.run.driver import prove_set

    prove_set(theorems, run, executor_for(config, theorems))
