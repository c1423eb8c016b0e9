"""Run directories: what a batch run was asked, and everything it finished, on disk.

    RUN_DIR/config.json     the RunConfig, written once (resumable settings updated on --resume)
    RUN_DIR/results.jsonl   one ResultRecord per finished theorem, appended and fsync'd as each ends
    RUN_DIR/trees/*.json.gz one search tree per theorem (SearchTree.save, gzip-compressed)
    RUN_DIR/summary.json    pass rate over the whole theorem set, rewritten as results come

    RUN_DIR/.lock           the process id of the driver writing the run (held with flock)

A run killed at any moment keeps every line it wrote; a torn last line (the process died
mid-write) is dropped on the next open, and a resumed run skips every finished theorem.
The run directory reads ``results.jsonl`` once, when it is opened, and keeps its summary
up to date in memory from then on.

One driver at a time: ``create`` and ``open`` take an exclusive ``flock`` on ``.lock``,
held until ``close`` or the process ends (the kernel drops the lock of a dead process, so a
killed driver never blocks the next). A second driver is refused with the first's pid.

Records are verified when read (``verify_record``): a ``proved`` record needs its proof
and its tree, the proof must be a proof path of that tree, and a tree path must stay
inside the run directory. A record that fails counts as unfinished (a resumed run searches
its theorem again) and ``repair_results`` moves it aside.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import math
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterable

from search import (
    QED,
    ROOT,
    RecordFormatError,
    ResultRecord,
    SearchResult,
    SearchStatus,
    SearchTree,
    Status,
    Theorem,
    TreeFormatError,
    proof_text,
)

from prover.config import RunConfig
from prover.errors import ProverError
from prover.run.provenance import now, provenance
from prover.settings import ConfigError


def tree_filename(theorem: str) -> str:
    """A safe, unique file name for a theorem's tree (names may hold spaces or symbols)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", theorem).strip("_.")[:80] or "theorem"
    if slug == theorem:
        return f"{slug}.json"
    return f"{slug}-{hashlib.blake2b(theorem.encode(), digest_size=4).hexdigest()}.json"


LOCK_FILE = ".lock"
_held_locks: dict[str, int] = {}  # run directory (resolved) -> the fd of its lock file, in this process


def _lock(path: Path) -> None:
    """Hold the run directory's lock for this process; a ProverError naming the holder if
    another process has it. A process that holds it already may open the run again."""
    key = str(path.resolve())
    if key in _held_locks:
        return
    try:
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ProverError(f"cannot lock the run directory {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise ProverError(f"cannot lock the run directory {path}: {exc.strerror or exc}") from None
        who = f"process {holder}" if holder.isdigit() else "another process"
        stop = f"`kill {holder}`" if holder.isdigit() else "stopping it"
        raise ProverError(
            f"{path} is in use by another prover run ({who}); wait for it to end (or stop it with {stop}), "
            f"then continue with: prover prove-split --resume {path}"
        ) from None
    try:  # who holds it, for the message above; the lock itself is the flock
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:
        pass  # a full disk: the lock holds all the same
    _held_locks[key] = fd


def _unlock(path: Path) -> None:
    fd = _held_locks.pop(str(path.resolve()), None)
    if fd is not None:
        os.close(fd)  # closing the only descriptor releases the flock


def tree_file(run_path: str | Path, tree: str) -> Path | None:
    """The file a record's ``tree`` names, or None when it points outside the run directory
    (an absolute path, ``..``, or a link that leads out)."""
    relative = Path(tree)
    if not tree or relative.is_absolute() or ".." in relative.parts:
        return None
    root = Path(run_path).resolve()
    path = (root / relative).resolve()
    return path if path.is_relative_to(root) and path != root else None


def proof_path_in(tree: SearchTree, proof: tuple[str, ...] | list[str]) -> bool:
    """Whether ``proof`` is a path of ``tree`` from its root to QED through proved states."""
    if tree.status(ROOT) is not Status.PROVED or not proof:
        return False
    node = ROOT
    for tactic in proof:
        if node == QED:
            return False
        node = next((target for target, name, _ in tree.tactic_edges(node) if name == tactic), None)
        if node is None or (node != QED and tree.status(node) is not Status.PROVED):
            return False
    return node == QED


def verify_record(run_path: str | Path, record: ResultRecord) -> str | None:
    """Why ``record`` cannot be trusted, or None when it can: a ``proved`` record needs its
    proof and its tree, and the proof must be a proof path of the tree (re-derived from the
    file, not taken on the record's word); a tree must be inside the run directory."""
    path = None
    if record.tree is not None:
        path = tree_file(run_path, record.tree)
        if path is None:
            return f"its tree {record.tree!r} is outside the run directory"
    if record.status is not SearchStatus.PROVED:
        return None
    if not record.proof:
        return "it says proved but holds no proof"
    if path is None:
        return "it says proved but has no tree"
    try:
        tree = SearchTree.load(path)
    except TreeFormatError as exc:
        return f"it says proved but its tree cannot be read ({exc})"
    if tree.theorem != record.theorem or not proof_path_in(tree, record.proof):
        return "its proof is not a proof in its tree"
    return None


def make_record(theorem: Theorem, result: SearchResult) -> ResultRecord:
    """The record of a search, with the Lean proof text where the statement is known."""
    record = result.to_record()
    if result.proved and result.proof is not None and theorem.sorry_at:  # a hole of a file: its declaration
        from prover.envs.filecheck import filled_text

        record = replace(record, proof_text=filled_text(theorem, result.proof))
    elif result.proved and result.proof is not None and theorem.statement:
        record = replace(record, proof_text=proof_text(theorem.statement, result.proof))
    return record


class Summary:
    """Pass rate over a whole theorem set, updated one record at a time.

    Unfinished, failed and errored theorems all count against the pass rate. Records of
    theorems outside the set (an older run's, with another ``--limit``) are ignored.
    """

    def __init__(self, theorem_names: Iterable[str]):
        self.theorem_names = set(theorem_names)
        self.num_finished = 0
        self.num_proved = 0
        self.status_counts: dict[str, int] = {}
        self.total_expansions = 0
        self.total_search_time_s = 0.0
        self._seen: set[str] = set()
        self.attempt_counts: list[tuple[int, int]] = []  # (searches run to their end, proofs) per theorem
        self.max_attempts = 0

    @classmethod
    def of(cls, theorem_names: Iterable[str], records: Iterable[ResultRecord]) -> "Summary":
        """The summary of ``records`` over the theorem set ``theorem_names``."""
        summary = cls(theorem_names)
        for record in records:
            summary.add(record)
        return summary

    def add(self, record: ResultRecord) -> None:
        if record.theorem not in self.theorem_names or record.theorem in self._seen:
            return
        self._seen.add(record.theorem)
        self.num_finished += 1
        self.num_proved += record.status is SearchStatus.PROVED
        self.status_counts[record.status.value] = self.status_counts.get(record.status.value, 0) + 1
        self.total_expansions += record.num_expansions
        self.total_search_time_s += record.wall_time_s
        if record.attempts:
            ran = [a for a in record.attempts if a.get("stop_reason") != "cancelled"]
            self.attempt_counts.append((len(ran), sum(a.get("status") == "proved" for a in ran)))
            self.max_attempts = max(self.max_attempts, len(record.attempts))

    @property
    def num_theorems(self) -> int:
        return len(self.theorem_names)

    @property
    def pass_rate(self) -> float:
        return self.num_proved / self.num_theorems if self.num_theorems else 0.0

    def to_json(self) -> dict:
        return {
            "num_theorems": self.num_theorems,
            "num_finished": self.num_finished,
            "num_proved": self.num_proved,
            "pass_rate": self.pass_rate,
            "status_counts": dict(sorted(self.status_counts.items())),
            "total_expansions": self.total_expansions,
            "total_search_time_s": self.total_search_time_s,
        } | self._pass_at_k()

    def _pass_at_k(self) -> dict:
        """pass@1..pass@N with intervals, for runs with several searches per theorem."""
        if not self.attempt_counts:
            return {}
        from prover.run.passk import pass_at_k_table

        return {
            "attempts": self.max_attempts,
            "pass_at_k": pass_at_k_table(self.attempt_counts, self.num_theorems, self.max_attempts),
        }


def _number(value: Any, default: float = 0.0) -> float:
    """``value`` if it is a finite number (not a bool), else ``default``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return default


@dataclass(frozen=True)
class SessionFigures:
    """One session of a run (a start or a ``--resume``) as summary.json keeps it."""

    started_at: str | None
    updated_at: str | None
    wall_time_s: float
    theorems_finished: int
    theorems_per_hour: float
    expansions_per_s: float
    ended_at: str | None = None  # set once the session has ended (not while it runs)

    def to_json(self) -> dict:
        data = asdict(self)
        if self.ended_at is None:
            del data["ended_at"]
        return data

    @classmethod
    def from_json(cls, data: Any) -> "SessionFigures | None":
        """A session read back (None for anything that is not one: a damaged file)."""
        if not isinstance(data, dict) or _number(data.get("wall_time_s"), -1.0) < 0:
            return None
        text = {
            key: data.get(key) if isinstance(data.get(key), str) else None
            for key in ("started_at", "updated_at", "ended_at")
        }
        return cls(
            wall_time_s=float(data["wall_time_s"]),
            theorems_finished=int(_number(data.get("theorems_finished"))),
            theorems_per_hour=float(_number(data.get("theorems_per_hour"))),
            expansions_per_s=float(_number(data.get("expansions_per_s"))),
            **text,
        )


@dataclass(frozen=True)
class RunSummary:
    """summary.json: the pass rate over the whole theorem set (unfinished, failed and errored
    theorems count against it), pass@k where theorems had several searches, every session's
    figures (``sessions``, oldest first; on disk ``session`` repeats the last), what produced
    the run, and the sections an executor adds (``executor``: Ray's policy batches and workers,
    each under its own key on disk)."""

    num_theorems: int = 0
    num_finished: int = 0
    num_proved: int = 0
    pass_rate: float = 0.0
    status_counts: dict[str, int] = field(default_factory=dict)
    total_expansions: int = 0
    total_search_time_s: float = 0.0
    attempts: int | None = None
    pass_at_k: dict | None = None
    sessions: tuple[SessionFigures, ...] = ()
    provenance: dict | None = None
    executor: dict[str, Any] = field(default_factory=dict)

    _COUNTS = ("num_theorems", "num_finished", "num_proved", "total_expansions")

    @property
    def session(self) -> SessionFigures | None:
        """The last session, or None before one has finished a theorem."""
        return self.sessions[-1] if self.sessions else None

    def to_json(self) -> dict:
        data: dict[str, Any] = {
            "num_theorems": self.num_theorems,
            "num_finished": self.num_finished,
            "num_proved": self.num_proved,
            "pass_rate": self.pass_rate,
            "status_counts": dict(sorted(self.status_counts.items())),
            "total_expansions": self.total_expansions,
            "total_search_time_s": self.total_search_time_s,
        }
        if self.attempts is not None:
            data["attempts"] = self.attempts
            data["pass_at_k"] = self.pass_at_k
        if self.provenance is not None:
            data["provenance"] = self.provenance
        data.update(self.executor)
        if self.sessions:
            data["sessions"] = [session.to_json() for session in self.sessions]
            data["session"] = self.sessions[-1].to_json()
        return data

    @classmethod
    def from_json(cls, data: Any) -> "RunSummary":
        """A summary read back, tolerant of files written by older versions or damaged: what
        cannot be read takes its default."""
        if not isinstance(data, dict):
            return cls()
        counts = {key: int(_number(data.get(key))) for key in cls._COUNTS}
        sessions = data.get("sessions")
        if not isinstance(sessions, list):  # written before every session was kept
            sessions = [data["session"]] if "session" in data else []
        read = tuple(s for s in map(SessionFigures.from_json, sessions) if s is not None)
        status_counts = data.get("status_counts")
        known = {f.name for f in fields(cls)} | {"session"}
        return cls(
            **counts,
            pass_rate=float(_number(data.get("pass_rate"))),
            status_counts={k: int(_number(v)) for k, v in status_counts.items()}
            if isinstance(status_counts, dict)
            else {},
            total_search_time_s=float(_number(data.get("total_search_time_s"))),
            attempts=data["attempts"] if isinstance(data.get("attempts"), int) else None,
            pass_at_k=data["pass_at_k"] if isinstance(data.get("pass_at_k"), dict) else None,
            sessions=read,
            provenance=data["provenance"] if isinstance(data.get("provenance"), dict) else None,
            executor={k: v for k, v in data.items() if k not in known and isinstance(v, dict)},
        )


class RunDir:
    """A run directory; ``create`` starts one, ``open`` continues one."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config_path = self.path / "config.json"
        self.results_path = self.path / "results.jsonl"
        self.summary_path = self.path / "summary.json"
        self.trees_dir = self.path / "trees"
        self._records: dict[str, ResultRecord] | None = None
        self.summary = Summary(())
        self._session: dict = {}
        self._previous: dict = {}  # summary.json as this session found it (begin)
        self.executor_stats: dict = {}  # sections of summary.json the executor fills (prove_set)
        self.command_line: list[str] | None = None  # what started this session (provenance)
        self.untrusted: list[tuple[ResultRecord, str]] = []  # records that failed verify_record

    def close(self) -> None:
        """Release the run directory's lock (also released when the process ends)."""
        _unlock(self.path)

    def __enter__(self) -> "RunDir":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @classmethod
    def create(cls, path: str | Path, config: RunConfig, command_line: list[str] | None = None) -> "RunDir":
        """A new run in ``path``, which must not exist, be an empty directory, or hold only
        what a start that failed left (``config.tmp``, an empty ``trees/``)."""
        run = cls(path)
        run.command_line = command_line
        if run.config_path.exists():
            raise ProverError(
                f"{run.path} already holds a run; continue it with --resume {run.path} or choose another --out"
            )
        if run.path.exists() and (not run.path.is_dir() or not run._holds_only_leftovers()):
            raise ProverError(f"{run.path} exists and is not an empty directory; choose another --out")
        try:
            run.trees_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProverError(f"cannot create the run directory {run.path}: {exc.strerror or exc}") from None
        _lock(run.path)
        try:
            if run.config_path.exists():  # another driver created it in the meantime
                raise ProverError(f"{run.path} already holds a run; continue it with --resume {run.path}")
            run.config_path.with_suffix(".tmp").unlink(missing_ok=True)
            run.write_config(config, provenance(config, command_line))
            run.results_path.touch()
        except OSError as exc:
            run.discard_if_empty()
            raise ProverError(
                f"cannot start a run in {run.path}: {exc.strerror or exc}"
                f"{_DISK_HINT.get(exc.errno, '')}; nothing was kept, start it again with "
                f"--out {run.path} once there is room"
            ) from None
        except BaseException:
            run.close()
            raise
        run._records = {}
        return run

    def _holds_only_leftovers(self) -> bool:
        """Whether the directory holds nothing but what a start that failed leaves behind."""
        for entry in self.path.iterdir():
            if entry.name in (LOCK_FILE, "config.tmp"):
                continue
            if entry == self.trees_dir and entry.is_dir() and not any(entry.iterdir()):
                continue
            if entry == self.results_path and entry.is_file() and entry.stat().st_size == 0:
                continue
            return False
        return True

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        run = cls(path)
        if not run.config_path.is_file():
            leftovers = run.config_path.with_suffix(".tmp").exists() or run.trees_dir.is_dir()
            if leftovers and run._holds_only_leftovers():
                raise ProverError(
                    f"{run.path} holds no run (its start failed before the settings were saved); "
                    f"start it again with --out {run.path}"
                )
            raise ProverError(f"{run.path} is not a run directory (it has no config.json)")
        _lock(run.path)
        try:
            run.trees_dir.mkdir(exist_ok=True)
            run.results_path.touch()
        except OSError as exc:
            run.close()
            raise ProverError(f"cannot write to the run directory {run.path}: {exc.strerror or exc}") from None
        return run

    def discard_if_empty(self) -> bool:
        """Remove what ``create`` wrote when no theorem has finished (a run that could not
        start, or was stopped at once); True if it did. A run with results is kept."""
        try:
            if self.results_path.exists() and self.results_path.stat().st_size > 0:
                return False
            for path in (
                self.config_path,
                self.results_path,
                self.summary_path,
                self.path / "ray.log",
                self.config_path.with_suffix(".tmp"),
                self.path / LOCK_FILE,
            ):
                path.unlink(missing_ok=True)
            self.close()
            if self.trees_dir.is_dir() and not any(self.trees_dir.iterdir()):
                self.trees_dir.rmdir()
            if self.path.is_dir() and not any(self.path.iterdir()):
                self.path.rmdir()
        except OSError:
            return False
        return True

    def config(self) -> RunConfig:
        try:
            data = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ProverError(
                f"{self.config_path} is not a readable run config ({type(exc).__name__})"
                if isinstance(exc, RecursionError)
                else f"{self.config_path} is not a readable run config ({exc})"
            ) from None
        try:
            return RunConfig.from_dict(data, where=str(self.config_path), strict=False)
        except ConfigError as exc:
            raise ProverError(f"{self.config_path} is not a run config this version can read: {exc}") from None

    def write_config(self, config: RunConfig, origin: dict | None = None) -> None:
        """Write ``config`` (and where the run came from; on a resume, the saved origin is kept)."""
        if origin is None and self.config_path.exists():
            try:
                origin = json.loads(self.config_path.read_text(encoding="utf-8")).get("provenance")
            except (OSError, ValueError, AttributeError):
                origin = None
        data = config.to_dict() | ({"provenance": origin} if origin else {})
        _write_atomically(self.config_path, json.dumps(data, indent=2, ensure_ascii=False))

    # -- results ----------------------------------------------------------------------------

    def records(self) -> list[ResultRecord]:
        """Every finished theorem's record (read from disk once), first kept if a name repeats."""
        if self._records is None:
            self._drop_torn_tail()
            self._records = {}
            records, self.untrusted = trusted_records(self.path, read_records(self.results_path))
            for record in records:
                self._records.setdefault(record.theorem, record)
            warn_untrusted(self.path, self.untrusted, "count as unfinished and are searched again")
        return list(self._records.values())

    def finished(self) -> set[str]:
        self.records()
        return set(self._records)

    def begin(self, theorem_names: Iterable[str]) -> Summary:
        """Start summarising over ``theorem_names`` with what is already finished."""
        self.summary = Summary(theorem_names)
        for record in self.records():
            self.summary.add(record)
        self._session = {
            "provenance": provenance(command_line=self.command_line),
            "clock": time.monotonic(),
            "finished_before": self.summary.num_finished,
            "expansions_before": self.summary.total_expansions,
        }
        self._previous = _previous_summary(self.summary_path)
        return self.summary

    def _drop_torn_tail(self) -> None:
        """Cut a last line that has no newline: a write the process did not finish."""
        with open(self.results_path, "rb+") as handle:
            data = handle.read()
            if data and not data.endswith(b"\n"):
                handle.truncate(data.rfind(b"\n") + 1)

    def append(self, record: ResultRecord) -> None:
        """Append one record as a single write, and make it durable before returning."""
        line = (json.dumps(record.to_json(), ensure_ascii=False) + "\n").encode()
        try:
            fd = os.open(self.results_path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise self._cannot_write(exc) from None
        try:
            size = os.fstat(fd).st_size
            try:
                written = 0
                while written < len(line):
                    written += os.write(fd, line[written:])
                os.fsync(fd)
            except OSError as exc:
                try:
                    os.ftruncate(fd, size)  # no torn line: the record is whole or absent
                except OSError:
                    pass  # the next open drops a torn last line all the same
                raise self._cannot_write(exc) from None
        finally:
            os.close(fd)
        self.records()
        self._records.setdefault(record.theorem, record)
        self.summary.add(record)

    def save(self, theorem: Theorem, result: SearchResult) -> ResultRecord:
        """Keep one finished search: its tree first, then its line in results.jsonl."""
        record = make_record(theorem, result)
        if result.tree is not None:
            path = self.trees_dir / (tree_filename(theorem.name) + ".gz")  # gzip: a tenth of the JSON's size
            temporary = path.with_suffix(".tmp.gz")
            try:
                result.tree.save(temporary, extra=record.to_json())
                os.replace(temporary, path)  # a tree file is whole or absent
            except OSError as exc:
                temporary.unlink(missing_ok=True)
                raise self._cannot_write(exc) from None
            record = replace(record, tree=str(path.relative_to(self.path)))
        self.append(record)
        return record

    def write_summary(self, final: bool = False) -> RunSummary:
        """Write summary.json (a ``RunSummary``): the pass rate over the set, and every
        session's wall-clock time and throughput (search times are in
        ``total_search_time_s``). A session that finishes no theorem (a resume of a finished
        run) adds nothing: what earlier sessions wrote is kept as it was."""
        previous = RunSummary.from_json(self._previous)
        counts = self.summary.to_json()
        summary = replace(
            previous,
            **{
                key: counts.get(key)
                for key in (
                    "num_theorems",
                    "num_finished",
                    "num_proved",
                    "pass_rate",
                    "status_counts",
                    "total_expansions",
                    "total_search_time_s",
                    "attempts",
                    "pass_at_k",
                )
            },
        )
        if self._session and self.summary.num_finished > self._session["finished_before"]:
            wall_s = time.monotonic() - self._session["clock"]
            finished = self.summary.num_finished - self._session["finished_before"]
            expansions = self.summary.total_expansions - self._session["expansions_before"]
            updated_at = now()
            session = SessionFigures(
                started_at=self._session["provenance"]["started_at"],
                updated_at=updated_at,
                wall_time_s=wall_s,
                theorems_finished=finished,
                theorems_per_hour=finished * 3600 / wall_s if wall_s > 0 else 0.0,
                expansions_per_s=expansions / wall_s if wall_s > 0 else 0.0,
                ended_at=updated_at if final else None,
            )
            summary = replace(
                summary,
                sessions=(*previous.sessions, session),
                provenance=self._session["provenance"],
                executor={**previous.executor, **self.executor_stats},
            )
        try:
            _write_atomically(self.summary_path, json.dumps(summary.to_json(), indent=2, ensure_ascii=False))
        except OSError as exc:
            raise self._cannot_write(exc) from None
        return summary

    def _cannot_write(self, exc: OSError) -> ProverError:
        """The one sentence for a write to the run directory that failed (a full disk, a
        file-size limit): what is kept, and the command that continues the run."""
        done = len(self._records or ())
        return ProverError(
            f"cannot write to {self.path}: {exc.strerror or exc}{_DISK_HINT.get(exc.errno, '')}; "
            f"the run stopped with {done} finished theorem{'s' * (done != 1)} saved, "
            f"continue it with: prover prove-split --resume {self.path}"
        )


_DISK_HINT = {
    errno.ENOSPC: " (the disk is full: free some space)",
    errno.EDQUOT: " (the disk quota is used up)",
    errno.EFBIG: " (a file-size limit was reached: see `ulimit -f`)",
}


def _previous_summary(path: Path) -> dict:
    """What summary.json held when this session began ({} if absent or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def unique_path(directory: Path, stem: str, suffix: str) -> Path:
    """``directory/stem-TIME<suffix>`` (a number added if need be), so a new file never
    replaces an older one: ``("a", ".json")`` -> ``a-20250101-120000.json``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = directory / f"{stem}-{stamp}{suffix}"
    number = 2
    while path.exists():
        path = directory / f"{stem}-{stamp}-{number}{suffix}"
        number += 1
    return path


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise


def trusted_records(
    run_path: str | Path, records: Iterable[ResultRecord]
) -> tuple[list[ResultRecord], list[tuple[ResultRecord, str]]]:
    """``records`` split by ``verify_record``: (those that can be trusted, (record, why) for the others)."""
    kept, untrusted = [], []
    for record in records:
        reason = verify_record(run_path, record)
        if reason is None:
            kept.append(record)
        else:
            untrusted.append((record, reason))
    return kept, untrusted


def warn_untrusted(run_path: str | Path, untrusted: list[tuple[ResultRecord, str]], consequence: str) -> None:
    """One warning line on stderr for the records of a run that failed verification."""
    if not untrusted:
        return
    record, reason = untrusted[0]
    count = len(untrusted)
    print(
        f"warning: {count} record{'s' * (count != 1)} of {run_path} cannot be trusted (first: "
        f"{record.theorem!r}: {reason}); they {consequence}; `prover repair {run_path}` moves them aside",
        file=sys.stderr,
        flush=True,
    )


def read_records(results_path: Path) -> list[ResultRecord]:
    """The records of ``results.jsonl``, in file order.

    A last line without its newline is a write still in progress, or one the process died
    in; it is skipped, never cut, so reading a live run leaves it alone.
    """
    try:
        data = results_path.read_bytes()
    except OSError as exc:
        raise ProverError(f"cannot read {results_path}: {exc.strerror or exc}") from None
    lines = data.split(b"\n")[:-1]  # the part after the last newline is empty or unfinished
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(ResultRecord.from_json(json.loads(line.decode("utf-8"))))
        except (
            UnicodeDecodeError,
            json.JSONDecodeError,
            RecordFormatError,
            TypeError,
            AttributeError,
            RecursionError,
        ) as exc:
            why = {UnicodeDecodeError: "it is not UTF-8 text", RecursionError: "it is nested too deeply"}.get(
                type(exc), str(exc)
            )
            raise ProverError(
                f"line {number} of {results_path} is not a result record ({why}); "
                f"`prover repair {results_path.parent}` keeps every good line and moves the bad ones aside"
            ) from None
    return records


def repair_results(run_path: str | Path) -> tuple[int, int, Path | None]:
    """Keep the readable records of a run's results.jsonl and move the others (and a
    torn last line) to ``results.bad.jsonl`` beside it: (kept, moved, where moved)."""
    results_path = Path(run_path) / "results.jsonl"
    try:
        data = results_path.read_bytes()
    except OSError as exc:
        raise ProverError(f"cannot read {results_path}: {exc.strerror or exc}") from None
    good, bad = [], []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = ResultRecord.from_json(json.loads(line.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError, RecordFormatError, TypeError, AttributeError, RecursionError):
            bad.append(line)
            continue
        (good if verify_record(run_path, record) is None else bad).append(line)
    if not bad:
        return len(good), 0, None
    bad_path = results_path.with_name("results.bad.jsonl")
    with open(bad_path, "ab") as handle:
        handle.write(b"\n".join(bad) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    temporary = results_path.with_suffix(".tmp")
    temporary.write_bytes(b"".join(line + b"\n" for line in good))
    os.replace(temporary, results_path)
    return len(good), len(bad), bad_path
