"""Running searches: one theorem (``attack``) or a theorem set into a run directory.

This is the single-process path; ``prover.distributed`` runs the same per-theorem work
on Ray actors.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence

from search import SCORERS, SearchResult, SearchStatus, TacticPolicy, Theorem, best_first_search, proof_text

from prover.config import RunConfig
from prover.envs import make_env
from prover.errors import ProverError
from prover.runs import RunDir


def scorer_named(name: str):
    if name not in SCORERS:
        raise ProverError(f"unknown scorer '{name}'; choose one of: {', '.join(SCORERS)}")
    return SCORERS[name]


def search_theorem(theorem: Theorem, policy: TacticPolicy, config: RunConfig) -> SearchResult:
    """One search with a fresh environment; any failure becomes an ERROR result."""
    env = make_env(config.env)  # a ProverError here is the same for every theorem: it ends the run
    try:
        return best_first_search(theorem, policy, env, config.limits, scorer_named(config.scorer))
    except ProverError:
        raise
    except Exception as exc:  # a crashing policy or environment must not end the batch
        return SearchResult(theorem.name, SearchStatus.ERROR, "exception", error=f"{type(exc).__name__}: {exc}")


def result_record(theorem: Theorem, result: SearchResult) -> dict:
    """The results.jsonl line for a search, with the Lean proof text where it is known."""
    record = result.to_record()
    if result.proved and result.proof is not None and theorem.statement:
        record["proof_text"] = proof_text(theorem.statement, result.proof)
    return record


@contextlib.contextmanager
def progress_bar(total: int, done: int, proved: int, enabled: bool) -> Iterator[Callable[[bool], None]]:
    """A progress bar with ETA and the running pass rate; yields ``advance(proved)``."""
    if not enabled:
        yield lambda _proved: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("[bold]proving"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("pass {task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    counts = {"done": done, "proved": proved}

    def rate() -> str:
        return f"{counts['proved']}/{counts['done']}" if counts["done"] else "-"

    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("prove", total=total, completed=done, rate=rate())

        def advance(was_proved: bool) -> None:
            counts["done"] += 1
            counts["proved"] += was_proved
            progress.update(task, advance=1, rate=rate())

        yield advance


def prove_locally(
    theorems: Sequence[Theorem], policy: TacticPolicy, config: RunConfig, run: RunDir, show_progress: bool = True
) -> dict:
    """Prove every unfinished theorem of the set in this process; returns the summary."""
    records = run.records()
    finished = {r["theorem"] for r in records}
    todo = [t for t in theorems if t.name not in finished]
    names = [t.name for t in theorems]
    proved = sum(r["status"] == "proved" for r in records if r["theorem"] in set(names))
    with progress_bar(len(theorems), len(theorems) - len(todo), proved, show_progress) as advance:
        for theorem in todo:
            result = search_theorem(theorem, policy, config)
            run.save(result, result_record(theorem, result))
            run.write_summary(names)
            advance(result.proved)
    return run.write_summary(names)
