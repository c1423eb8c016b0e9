"""Batch proving on Ray: search workers and one batching policy server.

    prover prove-split --env replay --num-workers 2 --searches-per-worker 8
    prover prove-split --ray-address auto ...          # join a running cluster
    prover prove-split --num-workers 0 ...             # in-process, for debugging

The layout, on one machine or many:

    driver (runner.prove_set)          the only writer of the run directory
      │  prove(theorem) ─────────────►  SearchWorker × num_workers  (threaded actors, CPU)
      │  ◄──── result                     searches_per_worker searches at once,
      │                                   each with its own environment
      │                                          │ propose(states, k)
      │                                          ▼
      └─────────────────────────────────  BatchingServer  (async actor, the GPU)
                                            one model; requests from every search are
                                            queued and served in batches (prover.serving)

Workers run ``prover.runner.search_theorem`` with a ``PolicyClient`` that forwards
``propose`` to the server, so a search on Ray is the same search as in-process. Threads
suffice for concurrency: a search spends its time waiting on Lean (a subprocess) or on
the policy server, not on the CPU.

Lean searches (``--env dojo|repl``) are placed by memory as well as CPUs: each reserves
``--lean-memory-gb`` of Ray's ``memory`` resource and ``--worker-cpus`` CPUs, so a node
runs at most min(CPUs, memory / lean-memory-gb) of them, and by default exactly that many,
one per worker (``plan_workers``). One search per process also spares dojo searches a
queue: LeanDojo changes the whole process's working directory while it starts Lean, so
searches sharing a process take turns starting (``prover.envs.dojo.LEAN_DOJO_LOCK``);
``benchmarks/dojo_concurrency.py`` measured 4 threads of one process at 2.1x the wall time
of 4 processes when start-up dominates, 1.04x when tactics do.

Faults: a worker that dies (killed, OOM) has its in-flight theorems retried on a fresh
worker up to ``max_retries`` times, then recorded with status "error"; a theorem that
runs past ``theorem_timeout_s`` (a hung Lean) has its worker killed, with the same
retries. The policy server restarts itself and clients retry their call. The driver
records each theorem exactly once.

This is the only module that imports ``ray``, and it does so inside functions, so
``import prover.cli`` (and this module) work without starting or even installing Ray.
"""

from __future__ import annotations

import collections
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from search import Proposal, SearchResult, StopReason, Theorem

from prover.config import BackendSpec, DistributedConfig, RunConfig
from prover.envs.lean import LeanConfig
from prover.errors import MissingDependencyError, ProverError
from prover.serving import BatchingServer


class PolicyServerLostError(ProverError):
    """The policy server stayed unreachable: no search can go on, so the run stops."""


class PolicyClient:
    """A ``TacticPolicy`` that forwards to the policy server, riding out its restarts.

    A call that meets a dead or restarting server is sent again until
    ``restart_wait_s`` has passed; then ``PolicyServerLostError`` ends the run (every
    search needs the policy, so recording errors would only fill the run with them).
    """

    def __init__(self, server: Any, restart_wait_s: float = 300.0):
        self.server = server
        self.restart_wait_s = restart_wait_s

    def propose(self, states: Sequence[str], k: int) -> list[list[Proposal]]:
        import ray

        give_up_at = time.monotonic() + self.restart_wait_s
        delay_s = 0.2
        while True:
            try:
                return ray.get(self.server.propose.remote(list(states), k))
            except ray.exceptions.RayActorError as exc:
                if time.monotonic() + delay_s > give_up_at:
                    raise PolicyServerLostError(
                        f"the policy server stayed unreachable for {self.restart_wait_s:g} s ({type(exc).__name__})"
                    ) from None
                time.sleep(delay_s)
                delay_s = min(delay_s * 2, 5.0)


class SearchWorker:
    """Runs whole searches, several at once (a threaded Ray actor, one thread per search).

    Each search gets a fresh environment from ``search_theorem``; the policy is the
    shared ``PolicyClient``. The worker's process may be killed at any time: the driver
    owns every result, so nothing is lost with it.
    """

    def __init__(self, config: RunConfig, policy_server: Any, restart_wait_s: float = 300.0):
        from prover.envs.faulty import allow_process_exit

        allow_process_exit()  # a worker is disposable: injected process deaths may hit it
        self.config = config
        self.policy = PolicyClient(policy_server, restart_wait_s)

    def pid(self) -> int:
        return os.getpid()

    def prove(self, theorem: Theorem) -> SearchResult:
        """One search; returns the result with its tree."""
        from prover.runner import search_theorem

        return search_theorem(theorem, self.policy, self.config)


# ---- the driver --------------------------------------------------------------------------


@dataclass
class _Worker:
    handle: Any
    pid_ref: Any
    active: int = 0
    alive: bool = True
    alone: bool = False  # running a retried theorem, which may be what kills workers


@dataclass
class _Attempt:
    theorem: Theorem
    number: int  # 0 for the first attempt
    worker: _Worker
    started: float = field(default_factory=time.monotonic)


GIB = 2**30


@dataclass(frozen=True)
class WorkerPlan:
    """How a batch run is laid out on Ray: workers, searches in each, and what each reserves."""

    num_workers: int
    searches_per_worker: int
    cpus_per_worker: float
    memory_per_worker: int = 0  # bytes of Ray's `memory` resource; 0 reserves none


def is_lean(env: BackendSpec) -> bool:
    """Whether the environment runs Lean processes (dojo, repl), which need GBs each."""
    return isinstance(env.options, LeanConfig)


def plan_workers(env: BackendSpec, dist: DistributedConfig, nodes: Sequence[dict[str, float]]) -> WorkerPlan:
    """The layout for a cluster whose alive nodes have ``nodes`` resources (``ray.nodes()``).

    Offline environments: ``--num-workers`` (default: one per ``--worker-cpus`` CPUs) workers
    of ``--searches-per-worker`` searches. Lean environments: each search reserves
    ``--worker-cpus`` CPUs and ``--lean-memory-gb`` of memory, so a node holds at most
    min(CPUs, memory / that) searches. By default every node runs that many, as workers of
    one search each (Ray places each where it fits; and a search alone in its process never
    waits for another's Lean to start, see the module docstring); with ``--num-workers``,
    workers of ``--searches-per-worker`` searches, at most as many as one node holds.
    A ProverError when the layout does not fit.
    """
    cpus = sum(node.get("CPU", 0.0) for node in nodes)
    if not is_lean(env):
        num_workers = dist.num_workers
        if num_workers is None:
            num_workers = max(1, int(cpus // dist.worker_cpus)) if dist.worker_cpus else max(1, int(cpus))
        plan = WorkerPlan(num_workers, dist.searches_per_worker, dist.worker_cpus)
    else:
        search_memory = int(dist.lean_memory_gb * GIB)
        slots = [min(int(node.get("CPU", 0.0) // (dist.worker_cpus or 1.0)), int(node.get("memory", 0.0) // search_memory))
                 for node in nodes]  # the Lean searches each node holds
        if max(slots, default=0) < 1:
            largest = max((node.get("memory", 0.0) for node in nodes), default=0.0) / GIB
            raise ProverError(
                f"no node of the Ray cluster can hold a Lean search, which reserves {dist.lean_memory_gb:g} GB "
                f"and {dist.worker_cpus:g} CPUs (the largest node offers Ray {largest:.1f} GB); "
                "lower --lean-memory-gb, or add memory"
            )
        if dist.num_workers is None:
            num_workers, per_worker = sum(slots), 1
        else:
            num_workers, per_worker = dist.num_workers, min(dist.searches_per_worker, max(slots))
        plan = WorkerPlan(num_workers, per_worker, per_worker * dist.worker_cpus, per_worker * search_memory)
        memory = sum(node.get("memory", 0.0) for node in nodes)
        if plan.num_workers * plan.memory_per_worker > memory:
            raise ProverError(
                f"{plan.num_workers} workers of {per_worker} Lean searches reserve "
                f"{plan.num_workers * plan.memory_per_worker / GIB:g} GB, but the Ray cluster offers "
                f"{memory / GIB:.1f} GB; lower --num-workers, --searches-per-worker or --lean-memory-gb"
            )
    if plan.num_workers < 1:
        raise ProverError("the Ray path needs at least one worker; --num-workers 0 runs in-process")
    if plan.num_workers * plan.cpus_per_worker > cpus + 1e-9:
        raise ProverError(
            f"{plan.num_workers} workers of {plan.cpus_per_worker:g} CPUs need "
            f"{plan.num_workers * plan.cpus_per_worker:g} CPUs, but the Ray cluster has {cpus:g}; "
            "lower --num-workers, --searches-per-worker or --worker-cpus"
        )
    return plan


def _ray():
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(
            "Ray is not installed; install it with `pip install 'ray[default]'` or run in-process with --num-workers 0"
        ) from None
    return ray


class RayExecutor:
    """The policy server and the search workers on Ray, as an executor of
    ``prover.runner.prove_set``: ``prove`` yields (theorem, result) as searches end.

        with RayExecutor(config) as executor:
            for theorem, result in executor.prove(theorems):
                ...

    The settings are ``config.distributed``. Joins Ray if it is already initialised in
    this process, else starts (or, with ``ray_address``, connects to) it and shuts it
    down on exit. Actors are killed on exit, also on Ctrl-C. ``on_submit(theorem,
    worker_pid)``, if given, is called as each attempt is sent (tests use it to kill
    the worker mid-search).
    """

    def __init__(self, config: RunConfig, on_submit: Callable[[Theorem, int], None] | None = None):
        self.config = config
        self.dist = config.distributed
        self.on_submit = on_submit
        self.server: Any = None
        self.workers: list[_Worker] = []
        self.num_workers = 0
        self.plan: WorkerPlan | None = None
        self.num_workers_lost = 0
        self._started_ray = False
        self._worker_class: Any = None

    # -- start and stop

    def __enter__(self) -> "RayExecutor":
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _start(self) -> None:
        ray = _ray()
        if not ray.is_initialized():
            options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
            try:
                if self.dist.ray_address:
                    ray.init(address=self.dist.ray_address, **options)
                else:
                    ray.init(num_cpus=os.cpu_count() or 1, **options)
            except ConnectionError as exc:
                raise ProverError(
                    f"cannot join the Ray cluster at {self.dist.ray_address} ({exc}); start one with "
                    "`ray start --head`, or leave out --ray-address for a local one"
                ) from None
            self._started_ray = True
        resources = ray.cluster_resources()
        gpus = resources.get("GPU", 0.0)
        nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")] or [resources]
        self.plan = plan_workers(self.config.env, self.dist, nodes)
        num_workers = self.plan.num_workers
        policy_gpus = self.dist.policy_gpus
        if policy_gpus is None:
            policy_gpus = 1.0 if gpus >= 1 else 0.0
        if policy_gpus > gpus + 1e-9:
            raise ProverError(
                f"the policy server asks for {policy_gpus:g} GPUs, but the Ray cluster has {gpus:g}; "
                "lower --policy-gpus"
            )
        self.num_workers = num_workers

        # The server holds no CPU reservation: it waits on the GPU (or sleeps between
        # batches), and reserving a CPU would take one search worker away on small machines.
        server_class = ray.remote(BatchingServer).options(
            num_cpus=0, num_gpus=policy_gpus, max_restarts=-1, max_task_retries=-1, max_concurrency=10_000
        )
        self.server = server_class.remote(
            self.config.policy, self.dist.max_batch_size, self.dist.max_wait_ms, self.dist.batch_idle_ms
        )
        try:
            ray.get(self.server.ready.remote())
        except ray.exceptions.RayTaskError as exc:
            raise _as_prover_error(exc, "the policy server could not load the policy") from None
        reservation = {"memory": self.plan.memory_per_worker} if self.plan.memory_per_worker else {}
        self._worker_class = ray.remote(SearchWorker).options(
            num_cpus=self.plan.cpus_per_worker, max_concurrency=self.plan.searches_per_worker,
            max_restarts=0, max_task_retries=0, **reservation,
        )
        self.workers = [self._new_worker() for _ in range(num_workers)]
        try:
            ray.get([worker.pid_ref for worker in self.workers])  # all up before the clock starts
        except ray.exceptions.RayError as exc:
            raise ProverError(f"the search workers could not start: {exc}") from None

    def _new_worker(self) -> _Worker:
        handle = self._worker_class.remote(self.config, self.server, self.dist.policy_restart_wait_s)
        return _Worker(handle, handle.pid.remote())

    def close(self) -> None:
        """Kill the actors (and Ray, if this pool started it). Safe to call twice."""
        try:
            import ray
        except ImportError:
            return
        if not ray.is_initialized():
            return
        for worker in self.workers:
            _kill(worker.handle)
        self.workers = []
        if self.server is not None:
            _kill(self.server)
            self.server = None
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False

    # -- introspection

    def policy_stats(self) -> dict:
        """The policy server's ``BatchStats`` since the start or the last reset."""
        import ray

        return ray.get(self.server.get_stats.remote())

    def reset_policy_stats(self) -> None:
        import ray

        ray.get(self.server.reset_stats.remote())

    # -- proving

    def prove(self, theorems: Sequence[Theorem]) -> Iterator[tuple[Theorem, SearchResult]]:
        """Search every theorem; yields (theorem, result) once per theorem, as each ends."""
        ray = _ray()
        queue: collections.deque[tuple[Theorem, int]] = collections.deque((t, 0) for t in theorems)
        # Theorems whose worker died. Any of the searches on that worker may have killed it,
        # so each retry runs alone on a worker: a theorem that kills workers then uses up
        # only its own retries, not those of the theorems that happened to share with it.
        retries: collections.deque[tuple[Theorem, int]] = collections.deque()
        in_flight: dict[Any, _Attempt] = {}
        timeout_s = self.dist.theorem_timeout_s or default_theorem_timeout_s(self.config)
        capacity = self.plan.searches_per_worker

        def submit(worker: _Worker, theorem: Theorem, number: int) -> None:
            in_flight[worker.handle.prove.remote(theorem)] = _Attempt(theorem, number, worker)
            worker.active += 1
            if self.on_submit is not None:
                self.on_submit(theorem, ray.get(worker.pid_ref))

        while queue or retries or in_flight:
            for index, worker in enumerate(self.workers):
                if not worker.alive:  # a fresh worker in its place, idle: it takes a retry first
                    worker = self.workers[index] = self._new_worker()
                if worker.active == 0 and retries:
                    worker.alone = True
                    submit(worker, *retries.popleft())
                while not worker.alone and worker.active < capacity and queue:
                    submit(worker, *queue.popleft())

            if not in_flight:
                continue  # every worker was just replaced; submit again
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
            if ready:  # take everything that has finished, not just the first
                ready, _ = ray.wait(list(in_flight), num_returns=len(in_flight), timeout=0)
            for ref in ready:
                attempt = in_flight.pop(ref)
                attempt.worker.active -= 1
                attempt.worker.alone = False  # an alone worker ran only this attempt
                result = self._collect(ray, ref, attempt, retries)
                if result is not None:
                    yield attempt.theorem, result

            now = time.monotonic()
            for attempt in in_flight.values():
                if attempt.worker.alive and now - attempt.started > timeout_s:
                    # A hung search cannot be interrupted inside its thread: kill its
                    # process, and the normal retry path takes every search it held.
                    self._lose(attempt.worker)
                    _kill(attempt.worker.handle)

    def _collect(self, ray, ref, attempt: _Attempt, retries) -> SearchResult | None:
        """The result of a finished attempt, or None when the theorem went into ``retries``."""
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            # search_theorem turns every failure into a result except a ProverError, which
            # is the same for every theorem (a bad setting, a lost policy server): stop.
            raise _as_prover_error(exc, "a search worker failed") from None
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.OutOfMemoryError) as exc:
            self._lose(attempt.worker)
            if attempt.number < self.dist.max_retries:
                retries.append((attempt.theorem, attempt.number + 1))
                return None
            tries = attempt.number + 1
            return SearchResult.failure(
                attempt.theorem.name,
                StopReason.WORKER_LOST,
                f"the search worker died on each of {tries} attempt{'s' * (tries > 1)} "
                f"(killed, out of memory, or hung past the theorem time limit): {type(exc).__name__}",
            )

    def _lose(self, worker: _Worker) -> None:
        if worker.alive:
            worker.alive = False
            self.num_workers_lost += 1


def default_theorem_timeout_s(config: RunConfig) -> float:
    """How long a search may run before its worker is killed as hung: twice the search
    budget and a minute, plus, for Lean, three start-up allowances (the start, and the
    re-check's start and compile), which the budget does not count."""
    timeout_s = 2 * config.limits.time_limit_s + 60
    if is_lean(config.env):
        timeout_s += 3 * config.env.options.startup_timeout_s
    return timeout_s


def _kill(handle) -> None:
    import ray

    try:
        ray.kill(handle, no_restart=True)
    except Exception:  # already dead, or Ray is going down: nothing left to free
        pass


def _as_prover_error(exc, context: str) -> ProverError:
    """The error for people behind a failed Ray task: its own ProverError, or one sentence."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, ProverError):
        return cause
    if cause is not None:
        return ProverError(f"{context}: {type(cause).__name__}: {cause}")
    return ProverError(f"{context}: {exc}")
