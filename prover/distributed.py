"""Distributed batch proving on Ray: search workers and one batching policy server.

    prover prove-split --env replay --num-workers 2 --searches-per-worker 8
    prover prove-split --ray-address auto ...          # join a running cluster
    prover prove-split --num-workers 0 ...             # in-process, for debugging

The layout, on one machine or many:

    driver (prove_distributed)        the only writer of the run directory
      │  prove(theorem) ─────────────►  SearchWorker × num_workers  (threaded actors, CPU)
      │  ◄──── (result, record)           searches_per_worker best-first searches at once,
      │                                   each with its own environment
      │                                          │ propose(states, k)
      │                                          ▼
      └─────────────────────────────────  BatchingPolicyServer  (async actor, the GPU)
                                            one model; requests from every search are
                                            queued and served in batches

Workers run ``prover.runner.search_theorem`` with a ``PolicyClient`` that forwards
``propose`` to the server, so a search on Ray is the same search as in-process. Threads
suffice for concurrency: a search spends its time waiting on Lean (a subprocess) or on
the policy server, not on the CPU.

Faults: a worker that dies (killed, OOM) has its in-flight theorems retried on a fresh
worker up to ``max_retries`` times, then recorded with status "error"; a theorem that
runs past ``theorem_timeout_s`` (a hung Lean) has its worker killed, with the same
retries. The policy server restarts itself (``max_restarts``) and clients retry their
call. The driver records each theorem exactly once.

This is the only module that imports ``ray``, and it does so inside functions, so
``import prover.cli`` (and this module) work without starting or even installing Ray.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from search import Proposal, SearchResult, SearchStatus, TacticPolicy, Theorem

from prover.config import PolicyConfig, RunConfig
from prover.errors import MissingDependencyError, ProverError
from prover.runs import RunDir

PolicyFactory = Callable[[], TacticPolicy]
"""Builds a policy in the server's process; an alternative to a ``PolicyConfig`` (benchmarks)."""


@dataclass(frozen=True)
class DistributedConfig:
    """How a batch run is spread over Ray; saved in the run's config.json.

    ``num_workers=0`` means no Ray at all (the in-process runner). ``None`` fields are
    decided from the cluster when the run starts: one worker per ``worker_cpus`` CPUs,
    and a GPU for the policy server where the cluster has one.
    """

    ray_address: str | None = None  # None: start a local Ray on this machine's CPUs
    num_workers: int | None = None
    searches_per_worker: int = 4
    worker_cpus: float = 1.0
    policy_gpus: float | None = None
    max_batch_size: int = 32  # states per policy batch
    max_wait_ms: float = 5.0  # how long a batch waits for more requests once one arrived
    batch_idle_ms: float | None = None  # set: a batch also closes once requests stop this long
    max_retries: int = 2  # extra attempts for a theorem whose worker died
    theorem_timeout_s: float | None = None  # None: 2 × the search time limit + 60 s
    policy_restart_wait_s: float = 300.0  # how long a search waits for a restarting server

    def __post_init__(self) -> None:
        if self.num_workers is not None and self.num_workers < 0:
            raise ValueError(f"num_workers must not be negative, not {self.num_workers}")
        for name in ("searches_per_worker", "max_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.batch_idle_ms is not None and not self.batch_idle_ms > 0:
            raise ValueError(f"batch_idle_ms must be positive, not {self.batch_idle_ms}")
        for name in ("worker_cpus", "max_wait_ms", "max_retries"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, not {getattr(self, name)}")
        if self.policy_gpus is not None and self.policy_gpus < 0:
            raise ValueError(f"policy_gpus must not be negative, not {self.policy_gpus}")
        if self.theorem_timeout_s is not None and not self.theorem_timeout_s > 0:
            raise ValueError(f"theorem_timeout_s must be positive, not {self.theorem_timeout_s}")


class PolicyServerLostError(ProverError):
    """The policy server stayed unreachable: no search can go on, so the run stops."""


# ---- the policy server -------------------------------------------------------------------


@dataclass
class _Request:
    states: list[str]
    k: int
    future: asyncio.Future


@dataclass
class BatchStats:
    """What the policy server did: how many batches, and how full they were."""

    num_batches: int = 0
    num_requests: int = 0
    num_states: int = 0
    largest_batch: int = 0
    busy_s: float = 0.0  # time inside the policy's propose

    def add(self, num_requests: int, num_states: int, busy_s: float) -> None:
        self.num_batches += 1
        self.num_requests += num_requests
        self.num_states += num_states
        self.largest_batch = max(self.largest_batch, num_states)
        self.busy_s += busy_s

    def to_dict(self) -> dict:
        return {
            "num_batches": self.num_batches,
            "num_requests": self.num_requests,
            "num_states": self.num_states,
            "mean_batch_size": self.num_states / self.num_batches if self.num_batches else 0.0,
            "largest_batch": self.largest_batch,
            "busy_s": self.busy_s,
        }


class BatchingPolicyServer:
    """One policy serving many searches: ``propose`` calls are queued and run in batches.

    A batch starts when a request arrives and closes when it holds ``max_batch_size``
    states or ``max_wait_ms`` has passed, whichever is first; with ``batch_idle_ms`` it
    also closes once no request has come for that long. Searches that shared a batch
    come back together (after their tactics), so requests arrive in bursts: the idle gap
    takes a whole burst without waiting out ``max_wait_ms``. Requests that arrive while
    the model is busy wait for the next batch, so under load batches fill by themselves.
    The model runs in one thread beside the event loop (one model copy: one batch at a
    time), and the loop keeps collecting requests meanwhile.

    Run as a Ray async actor by ``ProverPool``; it is plain asyncio, so tests can drive
    it directly.
    """

    def __init__(
        self,
        policy_config: PolicyConfig | None,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        policy_factory: PolicyFactory | None = None,
        batch_idle_ms: float | None = None,
    ):
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000
        self.idle_s = batch_idle_ms / 1000 if batch_idle_ms else None
        self.stats = BatchStats()
        self._waiting: collections.deque[_Request] = collections.deque()
        self._num_waiting_states = 0
        self._arrived: asyncio.Event | None = None
        self._serving: asyncio.Task | None = None
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy")
        # A constructor that raises would make Ray restart the actor in a loop; keep the
        # error and report it from ready() instead.
        self._load_error: Exception | None = None
        self.policy: TacticPolicy | None = None
        try:
            if policy_factory is not None:
                self.policy = policy_factory()
            else:
                from prover.policies import make_policy

                self.policy = make_policy(policy_config)
        except Exception as exc:
            self._load_error = exc

    def _ensure_serving(self) -> None:
        if self._serving is None:  # the actor's event loop exists only once a method runs
            self._arrived = asyncio.Event()
            self._serving = asyncio.get_running_loop().create_task(self._serve())

    async def ready(self) -> int:
        """Raise the error that loading the policy met, if any; else this process's id."""
        if self._load_error is not None:
            raise self._load_error
        self._ensure_serving()
        return os.getpid()

    async def propose(self, states: Sequence[str], k: int) -> list[list[Proposal]]:
        """``TacticPolicy.propose``, answered from the next batch that this request joins."""
        if self._load_error is not None:
            raise self._load_error
        self._ensure_serving()
        request = _Request(list(states), k, asyncio.get_running_loop().create_future())
        self._waiting.append(request)
        self._num_waiting_states += len(request.states)
        self._arrived.set()
        return await request.future

    async def get_stats(self) -> dict:
        return self.stats.to_dict()

    async def reset_stats(self) -> None:
        self.stats = BatchStats()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._waiting:
                self._arrived.clear()
                await self._arrived.wait()
            deadline = loop.time() + self.max_wait_s
            while self._num_waiting_states < self.max_batch_size:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), min(remaining, self.idle_s or remaining))
                except asyncio.TimeoutError:
                    break
            batch = self._take_batch()
            try:
                await self._run(batch)
            except Exception as exc:  # never let the serving loop die with requests waiting
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(exc)

    def _take_batch(self) -> list[_Request]:
        batch: list[_Request] = []
        size = 0
        while self._waiting:
            request = self._waiting[0]
            if batch and size + len(request.states) > self.max_batch_size:
                break  # the next batch takes it; a single oversized request goes alone
            self._waiting.popleft()
            self._num_waiting_states -= len(request.states)
            batch.append(request)
            size += len(request.states)
        return batch

    async def _run(self, batch: list[_Request]) -> None:
        loop = asyncio.get_running_loop()
        by_k: dict[int, list[_Request]] = collections.defaultdict(list)
        for request in batch:
            by_k[request.k].append(request)
        started = time.perf_counter()
        for k, requests in by_k.items():
            states = [state for request in requests for state in request.states]
            try:
                proposals = await loop.run_in_executor(self._model_thread, self.policy.propose, states, k)
            except Exception as exc:
                for request in requests:
                    request.future.set_exception(exc)
                continue
            offset = 0
            for request in requests:
                if not request.future.done():  # the caller may have gone away
                    request.future.set_result(proposals[offset : offset + len(request.states)])
                offset += len(request.states)
        self.stats.add(len(batch), sum(len(r.states) for r in batch), time.perf_counter() - started)


# ---- the search workers ------------------------------------------------------------------


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
        from prover.faults import allow_process_exit

        allow_process_exit()  # a worker is disposable: injected process deaths may hit it
        self.config = config
        self.policy = PolicyClient(policy_server, restart_wait_s)

    def pid(self) -> int:
        return os.getpid()

    def prove(self, theorem: Theorem) -> tuple[SearchResult, dict]:
        """One search; returns the result (with its tree) and its results.jsonl record."""
        from prover.runner import result_record, search_theorem

        result = search_theorem(theorem, self.policy, self.config)
        return result, result_record(theorem, result)


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


def _ray():
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(
            "Ray is not installed; install it with `pip install 'ray[default]'` or run in-process with --num-workers 0"
        ) from None
    return ray


class ProverPool:
    """The policy server and the search workers on Ray; ``prove`` yields results as they end.

        with ProverPool(config, DistributedConfig(num_workers=2)) as pool:
            for theorem, result, record in pool.prove(theorems):
                ...

    Joins Ray if it is already initialised in this process, else starts (or, with
    ``ray_address``, connects to) it and shuts it down on exit. Actors are killed on
    exit, also on Ctrl-C.
    """

    def __init__(
        self, config: RunConfig, dist: DistributedConfig, policy_factory: PolicyFactory | None = None
    ):
        self.config = config
        self.dist = dist
        self.policy_factory = policy_factory
        self.server: Any = None
        self.workers: list[_Worker] = []
        self.num_workers = 0
        self.num_workers_lost = 0
        self._started_ray = False
        self._worker_class: Any = None

    # -- start and stop

    def __enter__(self) -> "ProverPool":
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
        cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
        worker_cpus = self.dist.worker_cpus
        num_workers = self.dist.num_workers
        if num_workers is None:
            num_workers = max(1, int(cpus // worker_cpus)) if worker_cpus else max(1, int(cpus))
        if num_workers < 1:
            raise ProverError("the Ray path needs at least one worker; --num-workers 0 runs in-process")
        if num_workers * worker_cpus > cpus + 1e-9:
            raise ProverError(
                f"{num_workers} workers of {worker_cpus:g} CPUs need {num_workers * worker_cpus:g} CPUs, "
                f"but the Ray cluster has {cpus:g}; lower --num-workers or --worker-cpus"
            )
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
        server_class = ray.remote(BatchingPolicyServer).options(
            num_cpus=0, num_gpus=policy_gpus, max_restarts=-1, max_task_retries=-1, max_concurrency=10_000
        )
        self.server = server_class.remote(
            self.config.policy, self.dist.max_batch_size, self.dist.max_wait_ms, self.policy_factory,
            self.dist.batch_idle_ms,
        )
        try:
            ray.get(self.server.ready.remote())
        except ray.exceptions.RayTaskError as exc:
            raise _as_prover_error(exc, "the policy server could not load the policy") from None
        self._worker_class = ray.remote(SearchWorker).options(
            num_cpus=worker_cpus, max_concurrency=self.dist.searches_per_worker, max_restarts=0, max_task_retries=0
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

    def worker_pids(self) -> list[int]:
        """The process ids of the live workers (tests kill them)."""
        import ray

        return ray.get([w.pid_ref for w in self.workers if w.alive])

    def policy_stats(self) -> dict:
        """The policy server's ``BatchStats`` since the start or the last reset."""
        import ray

        return ray.get(self.server.get_stats.remote())

    def reset_policy_stats(self) -> None:
        import ray

        ray.get(self.server.reset_stats.remote())

    # -- proving

    def prove(
        self, theorems: Sequence[Theorem], on_submit: Callable[[Theorem, int], None] | None = None
    ) -> Iterator[tuple[Theorem, SearchResult, dict]]:
        """Search every theorem; yields (theorem, result, record) once per theorem, as each ends.

        ``on_submit(theorem, worker_pid)``, if given, is called as each attempt is sent
        (tests use it to kill the worker mid-search).
        """
        ray = _ray()
        queue: collections.deque[tuple[Theorem, int]] = collections.deque((t, 0) for t in theorems)
        # Theorems whose worker died. Any of the searches on that worker may have killed it,
        # so each retry runs alone on a worker: a theorem that kills workers then uses up
        # only its own retries, not those of the theorems that happened to share with it.
        retries: collections.deque[tuple[Theorem, int]] = collections.deque()
        in_flight: dict[Any, _Attempt] = {}
        timeout_s = self.dist.theorem_timeout_s or 2 * self.config.limits.time_limit_s + 60
        capacity = self.dist.searches_per_worker

        def submit(worker: _Worker, theorem: Theorem, number: int) -> None:
            in_flight[worker.handle.prove.remote(theorem)] = _Attempt(theorem, number, worker)
            worker.active += 1
            if on_submit is not None:
                on_submit(theorem, ray.get(worker.pid_ref))

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
                outcome = self._collect(ray, ref, attempt, retries)
                if outcome is not None:
                    yield (attempt.theorem, *outcome)

            now = time.monotonic()
            for attempt in in_flight.values():
                if attempt.worker.alive and now - attempt.started > timeout_s:
                    # A hung search cannot be interrupted inside its thread: kill its
                    # process, and the normal retry path takes every search it held.
                    self._lose(attempt.worker)
                    _kill(attempt.worker.handle)

    def _collect(self, ray, ref, attempt: _Attempt, retries) -> tuple[SearchResult, dict] | None:
        """The result of a finished attempt, or None when the theorem went into ``retries``."""
        from prover.runner import result_record

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
            result = SearchResult(
                attempt.theorem.name,
                SearchStatus.ERROR,
                "worker_lost",
                error=f"the search worker died on each of {tries} attempt{'s' * (tries > 1)} "
                f"(killed, out of memory, or hung past {self.dist.theorem_timeout_s or 'the'} limit): "
                f"{type(exc).__name__}",
            )
            return result, result_record(attempt.theorem, result)

    def _lose(self, worker: _Worker) -> None:
        if worker.alive:
            worker.alive = False
            self.num_workers_lost += 1


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


def prove_distributed(
    theorems: Sequence[Theorem],
    config: RunConfig,
    run: RunDir,
    dist: DistributedConfig | None = None,
    show_progress: bool = True,
    policy_factory: PolicyFactory | None = None,
    on_submit: Callable[[Theorem, int], None] | None = None,
) -> dict:
    """Prove every unfinished theorem of the set on Ray into ``run``; returns the summary.

    The Ray counterpart of ``prover.runner.prove_locally``: the driver alone writes the
    run directory, appending each record (fsync'd) as its theorem finishes, so a killed
    driver keeps every finished theorem and ``--resume`` redoes none of them.
    """
    from prover.runner import progress_bar

    dist = dist or config.distributed or DistributedConfig()
    records = run.records()
    finished = {r["theorem"] for r in records}
    names = [t.name for t in theorems]
    wanted = set(names)
    unique = {t.name: t for t in theorems if t.name not in finished}  # a name listed twice runs once
    proved = sum(r["status"] == "proved" for r in records if r["theorem"] in wanted)
    with progress_bar(len(wanted), len(wanted) - len(unique), proved, show_progress) as advance:
        if unique:
            with ProverPool(config, dist, policy_factory) as pool:
                for theorem, result, record in pool.prove(list(unique.values()), on_submit=on_submit):
                    if theorem.name in finished:
                        continue  # never record a theorem twice
                    finished.add(theorem.name)
                    run.save(result, record)
                    run.write_summary(names)
                    advance(result.proved)
    return run.write_summary(names)
