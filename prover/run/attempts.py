"""Several independent searches of each theorem (``--attempts N``, pass@N).

Attempt ``a`` of a theorem is the ``Theorem`` with ``attempt=a``: its own environment, its
own tree, and a policy that may seed its sampling on it (``search.ProofContext.attempt``).
The executor runs the attempts (in-process side by side, on Ray spread over the workers);
as soon as one proof passes the re-check, the driver asks the executor to ``cancel`` the
theorem's other attempts, and each stops after the expansion it is in.

On disk, beside the usual files:

    RUN_DIR/attempts.jsonl              one line per finished attempt, fsync'd as each ends
    RUN_DIR/trees/<theorem>.attempt<a>.json.gz   each attempt's tree

A theorem's line in ``results.jsonl`` is written once every attempt has an outcome (run
to its end, or cancelled); it holds every attempt's figures (``ResultRecord.attempts``)
and, for a proved theorem, the proof and tree of its first proving attempt. A resumed run
runs only the attempts that have no line in ``attempts.jsonl``; ``summary.json`` gives
pass@1..pass@N (``prover.run.passk``).
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import Callable, Iterator, Sequence

from search import ResultRecord, SearchResult, SearchStatus, StopReason, Theorem, propose

from prover.errors import ProverError
from prover.run.rundir import RunDir, make_record, tree_filename

ATTEMPTS_FILE = "attempts.jsonl"
# Which outcome a theorem has when its attempts disagree: the first of these that any has.
_STATUS_ORDER = (SearchStatus.PROVED, SearchStatus.REJECTED, SearchStatus.OPEN, SearchStatus.FAILED, SearchStatus.ERROR)


def attempt_jobs(theorem: Theorem, attempts: int, done: dict[int, dict]) -> list[Theorem]:
    """The attempts of ``theorem`` still to run: none once one has proved it."""
    if any(entry["status"] == SearchStatus.PROVED.value for entry in done.values()):
        return []
    return [replace(theorem, attempt=a) for a in range(attempts) if a not in done]


def cancelled_result(theorem: Theorem) -> SearchResult:
    """The result of an attempt cancelled before it started."""
    return SearchResult(theorem.name, SearchStatus.OPEN, StopReason.CANCELLED)


def read_attempts(run: RunDir) -> dict[str, dict[int, dict]]:
    """theorem -> attempt -> its entry, from ``attempts.jsonl`` (a torn last line is skipped)."""
    path = run.path / ATTEMPTS_FILE
    done: dict[str, dict[int, dict]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return done
    for line in lines:
        try:
            entry = json.loads(line)
            done.setdefault(str(entry["theorem"]), {}).setdefault(int(entry["attempt"]), entry)
        except (ValueError, KeyError, TypeError):
            continue  # a line the process did not finish writing
    return done


def save_attempt(run: RunDir, theorem: Theorem, result: SearchResult) -> dict:
    """Keep one finished attempt: its tree, then its fsync'd line in ``attempts.jsonl``."""
    record = make_record(theorem, result)
    tree = None
    if result.tree is not None:
        name = tree_filename(theorem.name).removesuffix(".json") + f".attempt{theorem.attempt}.json.gz"
        path = run.trees_dir / name
        temporary = path.with_suffix(".tmp.gz")
        try:
            result.tree.save(temporary, extra=record.to_json())
            os.replace(temporary, path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise ProverError(
                f"cannot write {path}: {exc.strerror or exc}; continue the run with --resume {run.path}"
            ) from None
        tree = f"trees/{name}"
    entry = {
        "theorem": theorem.name,
        "attempt": theorem.attempt,
        **replace(record, tree=tree).to_json(),
    }
    if result.expansions_after_cancel is not None:
        entry["expansions_after_cancel"] = result.expansions_after_cancel
    entry.pop("attempts", None)
    line = (json.dumps(entry, ensure_ascii=False) + "\n").encode()
    fd = os.open(run.path / ATTEMPTS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return entry


def theorem_record(theorem: Theorem, entries: dict[int, dict]) -> ResultRecord:
    """The theorem's line of ``results.jsonl`` from its attempts: the outcome of the first
    proving attempt (else the best outcome, by ``_STATUS_ORDER``), with the costs summed
    over every attempt and every attempt's figures in ``attempts``."""
    ordered = [entries[a] for a in sorted(entries)]
    records = [ResultRecord.from_json(entry) for entry in ordered]
    best = min(records, key=lambda r: _STATUS_ORDER.index(r.status))
    total = lambda field: sum(getattr(r, field) for r in records)  # noqa: E731
    return replace(
        best,
        theorem=theorem.name,
        num_expansions=total("num_expansions"),
        num_tactics=total("num_tactics"),
        num_states=total("num_states"),
        wall_time_s=total("wall_time_s"),
        startup_time_s=total("startup_time_s"),
        env_time_s=total("env_time_s"),
        policy_time_s=total("policy_time_s"),
        attempts=tuple(_brief(entry) for entry in ordered),
    )


def _brief(entry: dict) -> dict:
    keep = (
        "attempt",
        "status",
        "stop_reason",
        "num_expansions",
        "num_tactics",
        "num_states",
        "wall_time_s",
        "tree",
        "proof",
        "error",
        "expansions_after_cancel",
    )
    return {key: entry[key] for key in keep if key in entry and entry[key] is not None}


def run_attempts(
    todo: Sequence[Theorem], run: RunDir, executor, attempts: int, on_record: Callable[[Theorem, ResultRecord], None]
) -> None:
    """Run ``attempts`` searches of every theorem of ``todo`` (those without a result line),
    skipping attempts already on disk; ``on_record`` saves each theorem's combined record."""
    done = read_attempts(run)
    jobs: list[Theorem] = []
    for theorem in todo:
        have = done.get(theorem.name, {})
        missing = attempt_jobs(theorem, attempts, have)
        if not missing:
            on_record(theorem, theorem_record(theorem, have))  # killed between the last attempt and its line
        jobs.extend(missing)
    by_name = {t.name: t for t in todo}
    cancel = getattr(executor, "cancel", None)
    for job, result in executor.prove(jobs):
        entry = save_attempt(run, job, result)
        have = done.setdefault(job.name, {})
        have[job.attempt] = entry
        if result.status is SearchStatus.PROVED and cancel is not None:
            cancel(job.name)
        if len(have) == attempts:
            on_record(by_name[job.name], theorem_record(by_name[job.name], have))


class SerializedPolicy:
    """A policy (and value model) shared by the attempts' threads: one call at a time."""

    def __init__(self, policy, value_model=None):
        self.policy, self.value_model = policy, value_model
        self._lock = threading.Lock()

    def propose(self, states, k):
        with self._lock:
            return self.policy.propose(states, k)

    def propose_in_context(self, states, contexts, k):
        with self._lock:
            return propose(self.policy, states, contexts, k)

    def score(self, states):
        with self._lock:
            return self.value_model.score(states)


class AttemptRace:
    """Runs the attempts of one theorem side by side in threads (in-process ``--attempts``),
    each told to stop after its current expansion once ``cancel`` is called.

    For each attempt it measures ``expansions_after_cancel``: how many expansions it
    finished after the cancel (at most one, the one it was in)."""

    def __init__(self, search: Callable[..., SearchResult]):
        self.search = search  # search(theorem, on_expansion) -> SearchResult
        self._cancelled: dict[str, threading.Event] = {}
        self._live: dict[tuple[str, int], list[int]] = {}  # (name, attempt) -> [expansions, at cancel]
        self._lock = threading.Lock()  # an attempt starts wholly before or wholly after a cancel

    def cancel(self, name: str) -> None:
        with self._lock:
            event = self._cancelled.get(name)
            if event is None or event.is_set():
                return
            for (theorem, _), counts in self._live.items():
                if theorem == name:
                    counts[1] = counts[0]  # expansions done when the cancel came
            event.set()

    def run(self, group: Sequence[Theorem]) -> Iterator[tuple[Theorem, SearchResult]]:
        name = group[0].name
        event = self._cancelled.setdefault(name, threading.Event())

        def one(theorem: Theorem) -> SearchResult:
            with self._lock:
                if event.is_set():
                    return replace(cancelled_result(theorem), expansions_after_cancel=0)
                counts = self._live[(name, theorem.attempt)] = [0, -1]

            def on_expansion(tree, node) -> bool:
                counts[0] = tree.num_expanded
                return event.is_set()  # True stops the search after this expansion

            result = self.search(theorem, on_expansion)
            if counts[1] >= 0:
                result = replace(result, expansions_after_cancel=max(0, result.num_expansions - counts[1]))
            return result

        with ThreadPoolExecutor(max_workers=len(group), thread_name_prefix="attempt") as pool:
            pending = {pool.submit(one, theorem): theorem for theorem in group}
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield pending.pop(future), future.result()


def group_by_theorem(jobs: Sequence[Theorem]) -> list[list[Theorem]]:
    """Consecutive attempts of one theorem, as groups."""
    groups: list[list[Theorem]] = []
    for job in jobs:
        if groups and groups[-1][0].name == job.name:
            groups[-1].append(job)
        else:
            groups.append([job])
    return groups
