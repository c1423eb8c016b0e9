"""A batch run from the driver's side: which executor proves the set, and the run with its
progress display (``prover prove-split`` and each round of ``prover iterate`` call this).

``executor_for(config, theorems)`` is the one place the executor is chosen. With
``--num-workers auto`` (the default) a small job whose environment and policy are cheap
runs in this process, and anything else on Ray; the registry's capabilities say what is
cheap, not the backends' names:

- in this process: one theorem (``prover fill`` of one hole), or at most
  ``SMALL_JOB_THEOREMS`` theorems with an environment that runs no Lean process and a
  policy that loads no model (the README's demo: a second, where starting Ray alone takes
  10-16 s on a small machine);
- on Ray: a Lean environment (each search needs GBs and a process of its own), a model
  policy (batched on a GPU by the policy server), a large set, ``--num-workers N`` or
  ``--ray-address``. ``--num-workers 0`` always runs in this process.

``choose_executor`` says which in one line, and why.
"""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

from search import Theorem

from prover.config import RunConfig
from prover.run.driver import Executor, InProcessExecutor, prove_set
from prover.run.progress import RunProgress
from prover.run.rundir import RunDir

SMALL_JOB_THEOREMS = 100  # more than this, and Ray's start-up is a small part of the run


@dataclass(frozen=True)
class ExecutorChoice:
    """Where a batch runs: on Ray or in this process, and why (one line for the user)."""

    uses_ray: bool
    reason: str

    def line(self) -> str:
        where = "on Ray" if self.uses_ray else "in this process"
        return f"running {where}: {self.reason}"


def choose_executor(config: RunConfig, num_theorems: int) -> ExecutorChoice:
    """In this process or on Ray (see the module docstring)."""
    dist = config.distributed
    if dist.num_workers == 0:
        return ExecutorChoice(False, "--num-workers 0")
    if dist.num_workers is not None:
        return ExecutorChoice(True, f"--num-workers {dist.num_workers}")
    if dist.ray_address:
        return ExecutorChoice(True, f"--ray-address {dist.ray_address}")
    env, policy = config.env.capabilities, config.policy.capabilities
    if num_theorems <= 1:
        return ExecutorChoice(False, "one theorem (Ray's start-up would be all overhead)")
    if env.lean_process:
        return ExecutorChoice(True, f"the {env.name} environment runs a Lean process per search")
    if policy.loads_model:
        return ExecutorChoice(True, f"the {policy.name} policy runs a model (batched by a policy server)")
    if num_theorems > SMALL_JOB_THEOREMS:
        return ExecutorChoice(True, f"{num_theorems} theorems (over {SMALL_JOB_THEOREMS})")
    return ExecutorChoice(
        False,
        f"a small job ({num_theorems} theorems, the {env.name} environment, the "
        f"{policy.name} policy); --num-workers N runs it on Ray",
    )


def executor_for(config: RunConfig, theorems: Sequence[Theorem]) -> Executor:
    """The executor that proves ``theorems`` (``choose_executor``); inside a
    ``prover.run.cluster.RaySession`` a Ray one joins the session's Ray."""
    if not choose_executor(config, len(theorems)).uses_ray:
        return InProcessExecutor(config)
    from prover.run.cluster import RayExecutor

    return RayExecutor(config)


def check_environment(config: RunConfig, theorems: Sequence[Theorem]) -> None:
    """What must hold before any search starts: the environment serves the named theorem
    set, and one that needs a trace (LeanDojo) has one for every theorem's repository
    (``prover setup-lean``): tracing inside a search would spend its budget, and inside
    Ray it fails."""
    from prover.registry import load
    from prover.theorem_sets import check_served

    check_served(config.theorems, config.env)
    able = config.env.capabilities
    if able.needs_trace:
        load(able.module, "require_traced")(theorems)


def stop_on_sigterm() -> None:
    """SIGTERM (kill, SLURM's time limit) stops like Ctrl-C: the results are kept (and the
    exit code says which: ``stopped_by_sigterm``)."""
    signal.signal(signal.SIGTERM, _interrupt)


_sigterm_received = False


def stopped_by_sigterm() -> bool:
    """Whether this process is stopping because of a SIGTERM (exit 143, not Ctrl-C's 130)."""
    return _sigterm_received


def _interrupt(signum, frame) -> None:
    global _sigterm_received
    _sigterm_received = True
    raise KeyboardInterrupt


def prove_batch(
    theorems: Sequence[Theorem],
    config: RunConfig,
    run: RunDir,
    show_bar: bool = False,
    echo: Callable[[str], None] | None = None,
):
    """Prove ``theorems`` into ``run`` with a progress display (lines on stderr, and a bar
    over them when ``show_bar`` and stderr is a terminal); returns the run's summary.
    ``echo`` gets the one line that says where the run goes (``choose_executor``)."""
    choice = choose_executor(config, len(theorems))
    if echo is not None:
        echo(choice.line())
    executor = executor_for(config, theorems)
    starting = "starting Ray, its search workers and the policy server" if choice.uses_ray else "loading the policy"
    names = {t.name for t in theorems}
    done = len(run.finished() & names)
    mode = "bar" if show_bar and sys.stderr.isatty() else "log"  # the lines always; the bar on a terminal
    with _ray_logs(run, choice.uses_ray), RunProgress(len(names), done, mode, starting) as progress:

        def started() -> None:
            stop_on_sigterm()  # Ray's start-up put in its own handler
            progress.on_started()

        return prove_set(theorems, run, executor, on_result=progress.on_result, on_started=started)


def _ray_logs(run: RunDir, uses_ray: bool):
    """Ray's driver-side log messages into ``run/ray.log`` (only where Ray runs)."""
    if not uses_ray:
        import contextlib

        return contextlib.nullcontext()
    from prover.run.cluster import ray_logs_to

    return ray_logs_to(run.path / "ray.log")
