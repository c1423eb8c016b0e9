"""Running searches: one theorem, or a theorem set into a run directory.

``search_theorem`` runs the configured search algorithm on one theorem with a fresh
environment. ``prove_set`` is the one batch driver: it owns resume (finished theorems
are skipped), saving (the driver alone writes the run directory), the summary and
progress, and takes its results from an executor:

- ``InProcessExecutor``: one search at a time in this process (``--num-workers 0``);
- ``prover.run.cluster.RayExecutor``: search workers and a batching policy server on Ray.

``prover.run.batch.executor_for`` chooses between them. An executor is a context manager
whose ``prove(theorems)`` yields ``(theorem, result)`` once per theorem, in any order, as
each search ends; ``prove_set`` enters it.

    summary = prove_set(theorems, RunDir.create("runs/demo", config), InProcessExecutor(config))
"""

from __future__ import annotations

from typing import Callable, Iterator, Protocol, Sequence

from search import (
    ResultRecord,
    Scorer,
    SearchResult,
    StopReason,
    TacticPolicy,
    Theorem,
    ValueModel,
    get_algorithm,
    get_scorer,
)

from prover.config import RunConfig
from prover.envs import make_env
from prover.errors import ProverError
from prover.policies import make_critic, make_policy
from prover.run.rundir import RunDir, Summary


def search_theorem(
    theorem: Theorem,
    policy: TacticPolicy,
    config: RunConfig,
    on_expansion: Callable | None = None,
    value_model: ValueModel | None = None,
) -> SearchResult:
    """One search with a fresh environment; any failure of one theorem becomes an ERROR result.

    A ProverError (a bad setting, a missing dependency, a lost policy server) is the same
    for every theorem, so it is raised and ends the run. ``on_expansion(tree, node)`` is
    called after each expansion (live progress). ``value_model`` None means the one
    ``config.search.critic`` names, if any (loaded once per process).
    """
    if value_model is None:
        value_model = make_value_model(config)
    scorer = make_scorer(config)
    if getattr(scorer, "needs_value", False) and value_model is None:
        raise ProverError(
            f"--scorer {config.search.scorer} needs a value model: give --critic DIR "
            "(one written by prover train-critic)"
        )
    env = make_env(config.env, config.safety)
    search = get_algorithm(config.search.algorithm)
    try:
        return search(theorem, policy, env, config.limits, scorer, value_model=value_model, on_expansion=on_expansion)
    except ProverError:
        raise
    except Exception as exc:  # a crashing policy or environment must not end the batch
        return SearchResult.failure(theorem.name, StopReason.EXCEPTION, f"{type(exc).__name__}: {exc}")


def make_scorer(config: RunConfig) -> Scorer:
    """The configured scorer, with its parameters (``value_mixed``: ``--value-weight``)."""
    return get_scorer(config.search.scorer, weight=config.search.value_weight)


def make_value_model(config: RunConfig) -> ValueModel | None:
    """The value model ``config.search.critic`` names (loaded once per process), or None."""
    return make_critic(config.search.critic) if config.search.critic else None


class RunStopped(ProverError):
    """The run cannot go on (the machines it needs are gone, not one theorem failing); what
    is finished is kept, and ``prove_set`` says how to resume."""


class Executor(Protocol):
    """Runs searches for ``prove_set``; see the module docstring. It may also have
    ``stats() -> dict``: sections that ``prove_set`` adds to summary.json at the end."""

    def __enter__(self) -> "Executor": ...

    def __exit__(self, *exc_info) -> None: ...

    def prove(self, theorems: Sequence[Theorem]) -> Iterator[tuple[Theorem, SearchResult]]: ...


class InProcessExecutor:
    """Searches one theorem at a time in this process, with the policy built here."""

    def __init__(self, config: RunConfig, policy: TacticPolicy | None = None, value_model: ValueModel | None = None):
        self.config = config
        self.policy = policy
        self.value_model = value_model

    def __enter__(self) -> "InProcessExecutor":
        if self.policy is None:
            self.policy = make_policy(self.config.policy)
        if self.value_model is None:
            self.value_model = make_value_model(self.config)
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def prove(self, theorems: Sequence[Theorem]) -> Iterator[tuple[Theorem, SearchResult]]:
        """Each theorem in turn; the attempts of one theorem (``--attempts``) side by side."""
        from prover.run.attempts import AttemptRace, SerializedPolicy, group_by_theorem

        shared = SerializedPolicy(self.policy, self.value_model)
        self._race = AttemptRace(
            lambda theorem, on_expansion: search_theorem(
                theorem,
                shared,
                self.config,
                on_expansion=on_expansion,
                value_model=shared if self.value_model is not None else None,
            )
        )
        for group in group_by_theorem(theorems):
            if len(group) == 1 and group[0].attempt == 0:
                theorem = group[0]
                yield theorem, search_theorem(theorem, self.policy, self.config, value_model=self.value_model)
            else:
                yield from self._race.run(group)

    def cancel(self, name: str) -> None:
        """Stop the running attempts of theorem ``name`` after their current expansion."""
        self._race.cancel(name)


ResultCallback = Callable[[ResultRecord, Summary], None]


def prove_set(
    theorems: Sequence[Theorem],
    run: RunDir,
    executor: Executor,
    on_result: ResultCallback | None = None,
    on_started: Callable[[], None] | None = None,
) -> Summary:
    """Prove every unfinished theorem of the set into ``run``; returns the summary.

    Each result is saved (tree, then an fsync'd line) as it arrives, so a killed driver
    keeps every finished theorem and a rerun redoes none of them. A theorem named twice
    runs once, and a result for a theorem already recorded is never recorded again.
    ``on_result(record, summary)`` is called after each save, and ``on_started()`` once
    the executor is up (progress display: starting Ray takes seconds).
    """
    names = [t.name for t in theorems]
    summary = run.begin(names)
    finished = run.finished()
    todo = list({t.name: t for t in theorems if t.name not in finished}.values())
    attempts = _attempts_of(executor)
    if todo:
        with executor:
            if on_started is not None:
                on_started()
            if attempts > 1:
                from prover.run.attempts import run_attempts

                def record_theorem(theorem: Theorem, record: ResultRecord) -> None:
                    if theorem.name in finished:
                        return
                    finished.add(theorem.name)
                    run.append(record)
                    run.write_summary()
                    if on_result is not None:
                        on_result(record, summary)

                try:
                    run_attempts(todo, run, executor, attempts, record_theorem)
                except RunStopped as exc:
                    raise RunStopped(f"{exc}; continue it with: prover prove-split --resume {run.path}") from None
            for theorem, result in _resume_hint_on_stop(executor.prove(todo), run) if attempts == 1 else ():
                if theorem.name in finished:
                    continue
                finished.add(theorem.name)
                record = run.save(theorem, result)
                run.write_summary()
                if on_result is not None:
                    on_result(record, summary)
            if hasattr(executor, "stats"):  # its own sections of summary.json (Ray: the policy replicas)
                run.executor_stats = executor.stats()
    run.write_summary(final=True)
    return summary


def _attempts_of(executor) -> int:
    """``--attempts`` of the run the executor serves (1 where it has no config)."""
    config = getattr(executor, "config", None)
    return getattr(getattr(config, "search", None), "attempts", 1)


def _resume_hint_on_stop(results: Iterator, run: RunDir) -> Iterator:
    """``results``, with a RunStopped completed by what is saved and the command that resumes."""
    try:
        yield from results
    except RunStopped as exc:
        done = len(run.finished())
        raise RunStopped(
            f"{exc}; the run stopped with {done} finished theorem{'s' * (done != 1)} saved, "
            f"continue it with: prover prove-split --resume {run.path}"
        ) from None
