"""Batch proving on Ray: search workers and batching policy replicas, on one machine or many.

    prover prove-split --env replay --num-workers 2 --searches-per-worker 8
    prover prove-split --ray-address auto ...          # join a running cluster
    prover prove-split --num-workers 0 ...             # in-process, for debugging

The layout, on one machine or many:

    driver (runner.prove_set)          runs where it is started; the only writer of the run directory
      │  prove(theorem) ─────────────►  SearchWorker × num_workers  (threaded actors: CPUs, Lean's memory)
      │  ◄──── result                     searches_per_worker searches at once,
      │                                   each with its own environment
      │                                          │ propose(states, k), score(states),
      │                                          │ each to the least-loaded replica
      │                                          ▼
      └─────────────────────────────────  PolicyReplica × policy_replicas  (async actors, policy_gpus GPUs each)
                                            one copy of the policy each (and of the critic, with
                                            --critic); requests from every search are queued and
                                            served in batches (prover.run.serving)

Workers run ``prover.run.driver.search_theorem`` with a ``PolicyClient`` that forwards
``propose`` to a replica, so a search on Ray is the same search as in-process. With
``--critic`` the same client is the search's value model too: the replicas hold the
critic beside the policy, on the same GPUs, and batch the ``score`` calls of every search
as they batch ``propose``; no worker loads a model. Threads suffice for concurrency: a
search spends its time waiting on Lean (a subprocess) or on the replicas, not on the CPU.

Placement is Ray's, from what each actor reserves. A replica reserves ``policy_gpus``
GPUs, all on one node (several for a tensor-parallel model), so replicas land on GPU
nodes and Ray sets ``CUDA_VISIBLE_DEVICES`` for them; by default there is one replica per
``policy_gpus`` GPUs of the cluster. A worker reserves CPUs (and, for Lean, memory: see
below); Ray keeps actors that ask for no GPU off GPU nodes while other nodes have room,
and ``worker_node_label`` (``KEY=VALUE``, nodes started with ``ray start --labels``)
keeps them to the labelled nodes only, whose CPUs and memory then size the default.

Lean searches (``--env dojo|repl``) are placed by memory as well as CPUs: each reserves
``--lean-memory-gb`` of Ray's ``memory`` resource and ``--worker-cpus`` CPUs, so a node
runs at most min(CPUs, memory / lean-memory-gb) of them, and by default exactly that many,
one per worker (``plan_workers``). One search per process also spares dojo searches a
queue: LeanDojo changes the whole process's working directory while it starts Lean, so
searches sharing a process take turns starting (``prover.envs.dojo.LEAN_DOJO_LOCK``);
``benchmarks/dojo_concurrency.py`` measured 4 threads of one process at 2.1x the wall time
of 4 processes when start-up dominates, 1.04x when tactics do.

Routing: each worker process's ``PolicyClient`` sends a call to the replica with the
fewest queued states: the states it has waiting there itself, plus the rest of that
replica's queue as the replica last reported it (every answer carries it). A search
sticks to one replica only with the ``vllm`` policy: vLLM keeps the KV cache of prompts it
has served (automatic prefix caching) and the states of one search share long prefixes
(the theorem's hypotheses), so one replica per search turns them into cache hits. The
``hf`` policy keeps nothing between calls, so there every call goes where the queue is
shortest.

Faults, none of which loses or repeats a theorem (the driver records each exactly once):

- a worker that dies (killed, OOM) has its in-flight theorems retried on a fresh worker,
  each alone, up to ``max_retries`` times, then recorded with status "error"; a theorem
  that runs past ``theorem_timeout_s`` (a hung Lean) has its worker killed, likewise;
- a worker whose node is lost has its theorems sent again at once, to the workers left,
  without counting an attempt (the node failed, not the theorem); a replacement worker
  starts wherever Ray finds room, and the run goes on without it until then;
- a replica that dies, or loses its node, is restarted by Ray (where its GPUs are free);
  calls go to the other replicas meanwhile. When no replica answers for
  ``policy_restart_wait_s``, or no worker can be placed for that long, the run stops
  with ``RunStopped``: every finished theorem is kept, and ``--resume`` continues.

This is the only module that imports ``ray``, and it does so inside functions, so
``import prover.cli`` (and this module) work without starting or even installing Ray.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from search import ProofContext, Proposal, SearchResult, StopReason, Theorem

from prover.config import BackendSpec, DistributedConfig, RunConfig
from prover.errors import MissingDependencyError, ProverError
from prover.run.driver import RunStopped
from prover.run.serving import PROPOSE_IN_CONTEXT, BatchingServer

# How often the driver asks each replica where it runs and what it has served.
REPORT_INTERVAL_S = 2.0
# A theorem whose worker's node was lost is sent again without counting an attempt, this
# many times; past that it counts (a theorem that takes its node down, e.g. by memory).
MAX_NODE_LOSSES = 3
# A worker cut off before Ray knew why is asked again until Ray says whether its node
# died; past this, its loss counts as the worker's (a cluster's health checks take ~30 s).
UNSETTLED_LOSS_WAIT_S = 60.0


class PolicyServerLostError(RunStopped):
    """No policy replica answered for ``policy_restart_wait_s``: no search can go on."""


class PolicyReplica(BatchingServer):
    """A ``BatchingServer`` as a Ray actor: its answers carry its queue (for routing), and
    it reports where it runs and what it has served. It holds the policy and, when the run
    has a ``critic``, the value model beside it (``prover.run.serving.PolicyWithCritic``)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.queued_states = 0  # states of calls not yet answered, of every method: one model queue

    async def call_routed(self, method: str, states: Sequence[str], *args: Any) -> tuple[list, int]:
        """``call(method, states, *args)``, and how many states are still queued here once
        it is answered."""
        self.queued_states += len(states)
        try:
            answers = await self.call(method, states, *args)
        finally:
            self.queued_states -= len(states)
        return answers, self.queued_states

    async def report(self) -> dict:
        import ray

        return {
            "pid": os.getpid(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "gpu_ids": [str(gpu) for gpu in ray.get_gpu_ids()],
            "stats": self.stats.to_dict(),
        }


class PolicyClient:
    """A ``TacticPolicy``, and a ``ValueModel`` where the replicas hold a critic, that sends
    each call to the least-loaded policy replica.

    A replica that fails a call (dead, restarting, its node lost) is left out until a
    probe finds it answering again, and the call goes to another one. When none answers
    for ``restart_wait_s``, ``PolicyServerLostError`` ends the run (every search needs
    the policy, so recording errors would only fill the run with them). One client is
    shared by the searches (threads) of a worker; ``search()`` scopes one of them.

    ``propose`` and ``score`` share all of this: a replica's load is its queued states of
    both kinds, a sticky search keeps both kinds of call on its replica, and both go
    around a lost replica.
    """

    def __init__(self, replicas: Sequence[Any], restart_wait_s: float = 300.0, sticky: bool = False):
        self.replicas = list(replicas)
        self.restart_wait_s = restart_wait_s
        self.sticky = sticky
        self._lock = threading.Lock()
        self._sent = [0] * len(self.replicas)  # states this client has waiting at each replica
        self._others = [0] * len(self.replicas)  # everyone else's there, as the replica last said
        # Replicas left out, until a probe finds them serving: index -> (the pending ready()
        # call, or None after a failed one; when the next may be sent).
        self._probes: dict[int, tuple[Any, float]] = {}
        self._search = threading.local()  # with sticky: the replica of this thread's search
        self._random = random.Random()

    @contextlib.contextmanager
    def search(self) -> Iterator[None]:
        """The scope of one search: with ``sticky``, its calls go to the replica of its first."""
        self._search.replica = None
        try:
            yield
        finally:
            self._search.replica = None

    def propose(self, states: Sequence[str], k: int) -> list[list[Proposal]]:
        """``TacticPolicy.propose``, answered by a replica."""
        return self._call("propose", states, k)

    def propose_in_context(
        self, states: Sequence[str], contexts: Sequence[ProofContext], k: int
    ) -> list[list[Proposal]]:
        """``ContextualPolicy.propose_in_context``, answered by a replica (whose policy may
        ignore the contexts: the replica then asks it ``propose``)."""
        return self._call(PROPOSE_IN_CONTEXT, list(zip(states, contexts)), k)

    def score(self, states: Sequence[str]) -> list[float]:
        """``ValueModel.score``, answered by a replica's critic (a run with ``--critic``)."""
        return self._call("score", states)

    def _call(self, method: str, states: Sequence[str], *args: Any) -> list:
        import ray

        give_up_at = time.monotonic() + self.restart_wait_s
        while True:
            index = self._choose(ray)
            if index is None:
                self._wait_for_a_replica(ray, give_up_at)
                continue
            with self._lock:
                self._sent[index] += len(states)
            try:
                answers, queued = ray.get(self.replicas[index].call_routed.remote(method, list(states), *args))
            except ray.exceptions.RayActorError:
                self._leave_out(index)
                continue
            finally:
                with self._lock:
                    self._sent[index] -= len(states)
            with self._lock:
                self._others[index] = max(0, queued - self._sent[index])
            return answers

    def _choose(self, ray) -> int | None:
        with self._lock:
            self._poll_probes(ray)
            up = [i for i in range(len(self.replicas)) if i not in self._probes]
            bound = getattr(self._search, "replica", None) if self.sticky else None
            if bound in up:
                return bound
            if not up:
                return None
            index = min(up, key=lambda i: (self._sent[i] + self._others[i], self._random.random()))
            if self.sticky:
                self._search.replica = index
            return index

    def _leave_out(self, index: int) -> None:
        with self._lock:
            if index not in self._probes:
                # ready() answers once the replica serves again: at once if it is up, after
                # its restart if Ray is restarting it; or it fails, and is sent again later.
                self._probes[index] = (self.replicas[index].ready.remote(), time.monotonic() + 1.0)

    def _poll_probes(self, ray) -> None:
        now = time.monotonic()
        for index, (probe, next_at) in list(self._probes.items()):
            if probe is None:
                if now >= next_at:
                    self._probes[index] = (self.replicas[index].ready.remote(), now + 1.0)
                continue
            done, _ = ray.wait([probe], timeout=0)
            if not done:
                continue
            try:
                ray.get(probe)
            except ray.exceptions.RayError:
                self._probes[index] = (None, next_at)
                continue
            del self._probes[index]
            self._others[index] = 0

    def _wait_for_a_replica(self, ray, give_up_at: float) -> None:
        remaining = give_up_at - time.monotonic()
        if remaining <= 0:
            raise PolicyServerLostError(
                f"no policy replica answered for {self.restart_wait_s:g} s (their nodes are gone "
                "and no GPU is free to restart them, or they keep dying)"
            )
        with self._lock:
            probes = [probe for probe, _ in self._probes.values() if probe is not None]
        if probes:
            ray.wait(probes, num_returns=1, timeout=min(0.5, remaining))
        else:
            time.sleep(min(0.2, remaining))


class SearchWorker:
    """Runs whole searches, several at once (a threaded Ray actor, one thread per search).

    Each search gets a fresh environment from ``search_theorem``; the policy is the
    shared ``PolicyClient``, and so is the value model with ``--critic`` (the replicas
    hold it: a worker never loads a model). The worker's process (or its node) may be
    lost at any time: the driver owns every result, so nothing is lost with it.
    """

    def __init__(self, config: RunConfig, replicas: Sequence[Any], restart_wait_s: float = 300.0, sticky: bool = False):
        from prover.envs import DISPOSABLE_PROCESS_VARIABLE

        os.environ[DISPOSABLE_PROCESS_VARIABLE] = "1"  # losing this process loses nothing: the driver owns every result
        self.config = config
        self.policy = PolicyClient(replicas, restart_wait_s, sticky)
        self.value_model = self.policy if config.search.critic else None
        self._cancelled: set[str] = set()  # theorems whose attempts are to stop (--attempts)

    def cancel(self, name: str) -> None:
        """Stop this worker's searches of theorem ``name`` after their current expansion."""
        self._cancelled.add(name)

    def where(self) -> dict:
        """This process's id and its Ray node's."""
        import ray

        return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id()}

    def lacks(self, repos: list[tuple[str, str]]) -> str | None:
        """What this worker's node lacks for Lean searches (``prover.envs.nodes.node_lacks``)."""
        from prover.envs.nodes import node_lacks

        return node_lacks(self.config.env.name, self.config.env.options, repos)

    def prove(self, theorem: Theorem) -> SearchResult:
        """One search; returns the result with its tree."""
        from prover.run.driver import search_theorem

        if theorem.name in self._cancelled:
            from prover.run.attempts import cancelled_result

            return cancelled_result(theorem)
        with self.policy.search():
            return search_theorem(
                theorem,
                self.policy,
                self.config,
                value_model=self.value_model,
                on_expansion=lambda tree, node: theorem.name in self._cancelled,
            )  # True: stop


# ---- the driver --------------------------------------------------------------------------


@dataclass
class _Worker:
    handle: Any
    where_ref: Any  # answers once the actor runs: Ray may hold a replacement until room is free
    pid: int | None = None
    node_id: str | None = None
    active: int = 0
    alive: bool = True
    alone: bool = False  # running a retried theorem, which may be what kills workers

    @property
    def ready(self) -> bool:
        return self.pid is not None


@dataclass
class _Attempt:
    theorem: Theorem
    number: int  # 0 for the first attempt
    worker: _Worker
    started: float = field(default_factory=time.monotonic)


@dataclass
class _Replica:
    handle: Any
    # One report per process the replica has run in, oldest first: (node, pid) -> report.
    incarnations: dict[tuple[str, int], dict] = field(default_factory=dict)
    report_ref: Any = None
    report_sent: float = float("-inf")

    def note(self, report: dict) -> None:
        self.incarnations[(report["node_id"], report["pid"])] = report


@dataclass
class _Loss:
    """An attempt whose worker was cut off before Ray knew why (node or process?)."""

    attempt: _Attempt
    probe: Any  # where() asked of the lost worker: Ray answers it once it knows
    error: str
    since: float = field(default_factory=time.monotonic)


@dataclass
class _Book:
    """The driver's account of the theorems of one ``prove`` call."""

    queue: collections.deque  # (theorem, attempt number) to send
    # Theorems whose worker died. Any of the searches on that worker may have killed it,
    # so each retry runs alone on a worker: a theorem that kills workers then uses up
    # only its own retries, not those of the theorems that happened to share with it.
    retries: collections.deque = field(default_factory=collections.deque)
    in_flight: dict[Any, _Attempt] = field(default_factory=dict)
    unsettled: list[_Loss] = field(default_factory=list)
    node_losses: collections.Counter = field(default_factory=collections.Counter)  # theorem -> count


GIB = 2**30


@dataclass(frozen=True)
class WorkerPlan:
    """How a batch run is laid out on Ray: workers, searches in each, and what each reserves."""

    num_workers: int
    searches_per_worker: int
    cpus_per_worker: float
    memory_per_worker: int = 0  # bytes of Ray's `memory` resource; 0 reserves none


def is_lean(env: BackendSpec) -> bool:
    """Whether the environment runs Lean processes (its registry entry says so), which need GBs each."""
    return env.capabilities.lean_process


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
        slots = [
            min(int(node.get("CPU", 0.0) // (dist.worker_cpus or 1.0)), int(node.get("memory", 0.0) // search_memory))
            for node in nodes
        ]  # the Lean searches each node holds
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


def plan_replicas(policy: BackendSpec, dist: DistributedConfig, gpus_per_node: Sequence[float]) -> tuple[int, float]:
    """How many policy replicas, of how many GPUs each, for a cluster whose alive nodes have
    ``gpus_per_node``: by default one replica per GPU (per ``tensor_parallel_size`` GPUs for
    a split model) where there are GPUs, else one on no GPU. A replica's GPUs are all on one
    node. A ProverError when the asked replicas do not fit.

    A replica holds both models of a run with ``--critic``: the policy and the critic share
    its GPUs, so the plan is the same with or without one, and ``--policy-gpus`` must hold
    both (the critic is small beside a policy; with ``vllm``, which takes
    ``--gpu-memory-utilization`` of the GPU for itself, leave the critic room there).
    """
    policy_gpus = dist.policy_gpus
    if policy_gpus is None:
        split = float(getattr(policy.options, "tensor_parallel_size", 1))
        policy_gpus = split if max(gpus_per_node, default=0.0) >= 1 else 0.0
    if policy_gpus == 0:
        return dist.policy_replicas or 1, 0.0
    room = sum(int(node_gpus / policy_gpus + 1e-9) for node_gpus in gpus_per_node)  # replicas the nodes hold
    if room == 0:
        raise ProverError(
            f"a policy replica asks for {policy_gpus:g} GPUs on one node, but the Ray cluster has "
            f"{sum(gpus_per_node):g} GPUs, at most {max(gpus_per_node, default=0.0):g} on a node; lower --policy-gpus"
        )
    num_replicas = dist.policy_replicas or room
    if num_replicas > room:
        raise ProverError(
            f"{num_replicas} policy replicas of {policy_gpus:g} GPUs do not fit: the Ray cluster's "
            f"nodes hold {room}; lower --policy-replicas or --policy-gpus"
        )
    return num_replicas, policy_gpus


def _ray():
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(
            "Ray is not installed; install it with `pip install 'ray[default]'` or run in-process with --num-workers 0"
        ) from None
    return ray


class ray_messages_to_log:
    """While entered, what Ray's raylet reports to the driver ("A worker died or was killed
    while executing a task ...", in colour) goes to the ``ray`` logger (the run's ray.log)
    instead of the terminal. The driver's error listener prints those through
    ``ray._private.worker.print_to_stdstream``, looked up at each call; that function is
    swapped for the time of the run (``log_to_driver=False`` keeps workers' own output away)."""

    def __enter__(self) -> "ray_messages_to_log":
        import re

        import ray._private.worker as ray_worker

        self.ray_worker, self.saved = ray_worker, ray_worker.print_to_stdstream
        colour = re.compile(r"\x1b\[[0-9;]*m")
        logger = logging.getLogger("ray")

        def to_log(data: dict, ignore_prefix: bool = False) -> None:
            for line in data.get("lines", ()):
                logger.warning("(%s) %s", data.get("pid", "ray"), colour.sub("", str(line)))

        ray_worker.print_to_stdstream = to_log
        return self

    def __exit__(self, *exc_info) -> None:
        self.ray_worker.print_to_stdstream = self.saved


class RayExecutor:
    """The policy replicas and the search workers on Ray, as an executor of
    ``prover.run.driver.prove_set``: ``prove`` yields (theorem, result) as searches end.

        with RayExecutor(config) as executor:
            for theorem, result in executor.prove(theorems):
                ...

    The settings are ``config.distributed``. Joins Ray if it is already initialised in
    this process, else starts a local Ray (or, with ``ray_address``, connects to a
    cluster) and shuts it down on exit, unless it was made in a ``RaySession``, which keeps
    that Ray for the next executor. Actors are killed on exit, also on Ctrl-C.
    ``on_submit(theorem, worker_pid)``, if given, is called as each attempt is sent
    (tests use it to kill the worker mid-search). ``stats()`` gives the sections it adds
    to ``summary.json``: the replicas' batches and where workers ran.
    """

    def __init__(
        self,
        config: RunConfig,
        on_submit: Callable[[Theorem, int], None] | None = None,
        session: "RaySession | None" = None,
    ):
        self.config = config
        self.session = session if session is not None else _SESSION.get()
        self.dist = config.distributed
        self.on_submit = on_submit
        self.replicas: list[_Replica] = []
        self.workers: list[_Worker] = []
        self.num_workers = 0
        self.plan: WorkerPlan | None = None
        self.num_workers_lost = 0
        self.num_node_losses = 0  # attempts sent again because their worker's node was lost
        self.policy_gpus = 0.0
        self.worker_nodes: collections.Counter[str] = collections.Counter()  # node -> workers started
        self._started_ray = False
        self._worker_class: Any = None
        self._sticky = config.policy.capabilities.prefix_cache
        self._cancelled_names: set[str] = set()  # theorems whose attempts are cancelled (--attempts)

    @property
    def server(self) -> Any:
        """The first policy replica's actor (one-replica tests and benchmarks)."""
        return self.replicas[0].handle if self.replicas else None

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
                else:  # "local": a new Ray here, even where `ray start` left an address behind
                    ray.init(address="local", num_cpus=os.cpu_count() or 1, **options)
                    # Ray's helper processes can outlive a driver killed with -9: a watchdog ends them.
                    from prover.run.watchdog import watch

                    watch(os.getpid(), _session_dir(ray))
            except ConnectionError as exc:
                raise ProverError(
                    f"cannot join the Ray cluster at {self.dist.ray_address} ({exc}); start one with "
                    "`ray start --head`, or leave out --ray-address for a local one"
                ) from None
            self._started_ray = True
        nodes = [node for node in ray.nodes() if node.get("Alive")]
        selector = self.dist.worker_selector()
        if selector:
            nodes_for_workers = [node for node in nodes if labels_match(node.get("Labels", {}), selector)]
            if not nodes_for_workers:
                raise ProverError(
                    f"no node of the Ray cluster has the label {self.dist.worker_node_label}; start the "
                    f"nodes for Lean with `ray start --labels {self.dist.worker_node_label} ...`, or leave "
                    "out --worker-node-label"
                )
        else:
            nodes_for_workers = nodes
        self.plan = plan_workers(self.config.env, self.dist, [node["Resources"] for node in nodes_for_workers])
        self.num_workers = self.plan.num_workers
        num_replicas, self.policy_gpus = plan_replicas(
            self.config.policy, self.dist, [node["Resources"].get("GPU", 0.0) for node in nodes]
        )

        # A replica holds no CPU reservation: it waits on the GPU (or sleeps between
        # batches), and reserving a CPU would take one search worker away on small machines.
        # Ray restarts a replica that dies (max_restarts); a call it was serving fails
        # (max_task_retries=0) and the client sends it to another replica meanwhile.
        replica_class = ray.remote(PolicyReplica).options(
            num_cpus=0, num_gpus=self.policy_gpus, max_restarts=-1, max_task_retries=0, max_concurrency=10_000
        )
        critic = self.config.search.critic
        self.replicas = [
            _Replica(
                replica_class.remote(
                    self.config.policy,
                    self.dist.max_batch_size,
                    self.dist.max_wait_ms,
                    self.dist.batch_idle_ms,
                    critic=critic,
                )
            )
            for _ in range(num_replicas)
        ]
        try:
            ray.get([replica.handle.ready.remote() for replica in self.replicas])
        except ray.exceptions.RayTaskError as exc:
            raise _as_prover_error(exc, "the policy server could not start") from None
        reservation = {"memory": self.plan.memory_per_worker} if self.plan.memory_per_worker else {}
        worker_options: dict[str, Any] = dict(
            # one thread more than its searches: a cancel (--attempts) must not wait for a search to end
            num_cpus=self.plan.cpus_per_worker,
            max_concurrency=self.plan.searches_per_worker + 1,
            max_restarts=0,
            max_task_retries=0,
            **reservation,
        )
        if selector:
            worker_options["label_selector"] = selector
        try:
            self._worker_class = ray.remote(SearchWorker).options(**worker_options)
        except ValueError as exc:  # a Ray too old for label selectors
            raise ProverError(f"--worker-node-label needs a newer Ray than {ray.__version__} ({exc})") from None
        self.workers = [self._new_worker() for _ in range(self.plan.num_workers)]
        try:
            for worker in self.workers:  # all up before the clock starts
                self._place(worker, ray.get(worker.where_ref))
        except ray.exceptions.RayError as exc:
            raise ProverError(f"the search workers could not start: {exc}") from None

    def _check_lean_nodes(self, theorems: Sequence[Theorem]) -> None:
        """Every node with a search worker has what Lean searches need at the driver's paths
        (the nodes share no file system); else a ProverError naming the first node that
        lacks something, and what."""
        ray = _ray()
        repos = sorted({(t.repo_url, t.commit) for t in theorems if t.repo_url})
        one_per_node: dict[str, _Worker] = {}
        for worker in self.workers:
            if worker.node_id is not None:
                one_per_node.setdefault(worker.node_id, worker)
        try:
            problems = ray.get([worker.handle.lacks.remote(repos) for worker in one_per_node.values()])
        except ray.exceptions.RayError:
            return  # a node lost meanwhile: the searches are sent elsewhere, as for any lost node
        addresses = {node["NodeID"]: node.get("NodeManagerAddress", node["NodeID"]) for node in ray.nodes()}
        for node_id, problem in zip(one_per_node, problems):
            if problem is not None:
                raise ProverError(
                    f"the Lean node {addresses.get(node_id, node_id)} lacks {problem}; run `prover setup-lean` "
                    "there, at the same paths as on this machine (the nodes share no file system)"
                )

    def _new_worker(self) -> _Worker:
        handles = [replica.handle for replica in self.replicas]
        handle = self._worker_class.remote(self.config, handles, self.dist.policy_restart_wait_s, self._sticky)
        return _Worker(handle, handle.where.remote())

    def _place(self, worker: _Worker, where: dict) -> None:
        worker.pid, worker.node_id = where["pid"], where["node_id"]
        self.worker_nodes[worker.node_id] += 1

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
        for replica in self.replicas:
            _kill(replica.handle)
        self.replicas = []
        if self._started_ray:
            if self.session is not None:
                self.session.started = True  # the session shuts Ray down when it ends
            else:
                ray.shutdown()
            self._started_ray = False

    # -- introspection

    def policy_stats(self) -> dict:
        """The replicas' ``BatchStats`` since the start or the last reset, summed."""
        self._refresh_reports()
        return _sum_stats([report["stats"] for replica in self.replicas for report in replica.incarnations.values()])

    def reset_policy_stats(self) -> None:
        import ray

        ray.get([replica.handle.reset_stats.remote() for replica in self.replicas])
        for replica in self.replicas:
            replica.incarnations.clear()

    def stats(self) -> dict:
        """The sections this executor adds to summary.json: ``policy``, each replica's batches
        (summed over its restarts; its nodes, oldest first; the critic's ``score`` calls
        among them, by method) and their sum; ``workers``, how many ran on each node and how
        many were lost."""
        self._refresh_reports()
        replicas = []
        for replica in self.replicas:
            reports = list(replica.incarnations.values())
            replicas.append(
                {
                    "node_ids": [report["node_id"] for report in reports],
                    "gpu_ids": reports[-1]["gpu_ids"] if reports else [],
                    "restarts": max(0, len(reports) - 1),
                    **_sum_stats([report["stats"] for report in reports]),
                }
            )
        every = [report["stats"] for replica in self.replicas for report in replica.incarnations.values()]
        return {
            "policy": {
                "num_replicas": len(self.replicas),
                "gpus_per_replica": self.policy_gpus,
                **_sum_stats(every),
                "replicas": replicas,
            },
            "workers": {
                "num_workers": self.num_workers,
                "num_lost": self.num_workers_lost,
                "attempts_resent_after_node_loss": self.num_node_losses,
                "started_on_nodes": dict(self.worker_nodes),
            },
        }

    def _refresh_reports(self, timeout_s: float = 5.0) -> None:
        """A report from every replica that answers within ``timeout_s``."""
        import ray

        refs = {replica.handle.report.remote(): replica for replica in self.replicas}
        done, _ = ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
        for ref in done:
            try:
                refs[ref].note(ray.get(ref))
            except ray.exceptions.RayError:
                pass  # down now: its last report stands

    def _watch_replicas(self, ray) -> None:
        """Keep a recent report of every replica (where it runs, what it served), so the
        batches of a replica that is later lost still count."""
        now = time.monotonic()
        for replica in self.replicas:
            if replica.report_ref is not None:
                done, _ = ray.wait([replica.report_ref], timeout=0)
                if not done:
                    continue  # restarting: the report comes once it is back
                try:
                    replica.note(ray.get(replica.report_ref))
                except ray.exceptions.RayError:
                    pass
                replica.report_ref = None
            if now - replica.report_sent >= REPORT_INTERVAL_S:
                replica.report_ref = replica.handle.report.remote()
                replica.report_sent = now

    # -- proving

    def prove(self, theorems: Sequence[Theorem]) -> Iterator[tuple[Theorem, SearchResult]]:
        """Search every theorem; yields (theorem, result) once per theorem, as each ends."""
        ray = _ray()
        if is_lean(self.config.env):
            self._check_lean_nodes(theorems)
        book = _Book(collections.deque((t, 0) for t in theorems))
        timeout_s = self.dist.theorem_timeout_s or default_theorem_timeout_s(self.config)
        capacity = self.plan.searches_per_worker
        idle_since: float | None = None  # when every worker became unplaced (nodes lost)

        self._book = book

        def submit(worker: _Worker, theorem: Theorem, number: int) -> None:
            book.in_flight[worker.handle.prove.remote(theorem)] = _Attempt(theorem, number, worker)
            worker.active += 1
            if self.on_submit is not None:
                self.on_submit(theorem, worker.pid)

        while book.queue or book.retries or book.in_flight or book.unsettled:
            self._replace_lost_workers(ray)
            for worker in self.workers:
                if not worker.ready:
                    continue
                if worker.active == 0 and book.retries:
                    worker.alone = True
                    submit(worker, *book.retries.popleft())
                while not worker.alone and worker.active < capacity and book.queue:
                    theorem, number = book.queue.popleft()
                    if theorem.name in self._cancelled_names:  # another attempt proved it (--attempts)
                        from prover.run.attempts import cancelled_result

                        yield theorem, cancelled_result(theorem)
                        continue
                    submit(worker, theorem, number)
            self._watch_replicas(ray)

            if not book.in_flight:  # nothing to wait on but workers Ray has not placed yet
                now = time.monotonic()
                idle_since = idle_since or now
                if now - idle_since > self.dist.policy_restart_wait_s and not book.unsettled:
                    raise RunStopped(
                        f"no search worker could be placed for {self.dist.policy_restart_wait_s:g} s "
                        "(the nodes that held them are gone)"
                    )
                pending = [worker.where_ref for worker in self.workers if worker.alive and not worker.ready]
                pending += [loss.probe for loss in book.unsettled]
                if pending:
                    ray.wait(pending, num_returns=1, timeout=1.0)
                else:
                    time.sleep(0.2)
                ready = []
            else:
                idle_since = None
                ready, _ = ray.wait(list(book.in_flight), num_returns=1, timeout=1.0)
                if ready:  # take everything that has finished, not just the first
                    ready, _ = ray.wait(list(book.in_flight), num_returns=len(book.in_flight), timeout=0)
            stop: ProverError | None = None
            alive_nodes = _AliveNodes(ray)
            for ref in ready:
                attempt = book.in_flight.pop(ref)
                attempt.worker.active -= 1
                attempt.worker.alone = False  # an alone worker ran only this attempt
                try:
                    result = self._collect(ray, ref, attempt, book, alive_nodes)
                except ProverError as exc:  # keep the results that came with it, then stop
                    stop = stop or exc
                    continue
                if result is not None:
                    yield attempt.theorem, result
            for attempt, result in self._settle_losses(ray, book, alive_nodes):
                yield attempt.theorem, result
            if stop is not None:
                raise stop

            now = time.monotonic()
            for attempt in book.in_flight.values():
                if attempt.worker.alive and now - attempt.started > timeout_s:
                    # A hung search cannot be interrupted inside its thread: kill its
                    # process, and the normal retry path takes every search it held.
                    self._lose(attempt.worker)
                    _kill(attempt.worker.handle)

    def cancel(self, name: str) -> None:
        """Stop every attempt of theorem ``name`` (``--attempts``): queued ones are not started,
        running ones stop after their current expansion (their worker is told at once)."""
        self._cancelled_names.add(name)
        book = getattr(self, "_book", None)
        if book is None:
            return
        for attempt in list(book.in_flight.values()):
            if attempt.theorem.name == name and attempt.worker.alive:
                attempt.worker.handle.cancel.remote(name)

    def _replace_lost_workers(self, ray) -> None:
        """A fresh worker in place of each lost one, and note those that Ray has placed."""
        for index, worker in enumerate(self.workers):
            if not worker.alive:  # its attempts still in flight keep the old one
                self.workers[index] = self._new_worker()
        starting = {worker.where_ref: worker for worker in self.workers if worker.alive and not worker.ready}
        if not starting:
            return
        done, _ = ray.wait(list(starting), num_returns=len(starting), timeout=0)
        for ref in done:
            try:
                self._place(starting[ref], ray.get(ref))
            except ray.exceptions.RayError:  # died before it ran (its node went too): replace it
                self._lose(starting[ref])

    def _collect(self, ray, ref, attempt: _Attempt, book: "_Book", alive_nodes: "_AliveNodes") -> SearchResult | None:
        """The result of a finished attempt, or None when the theorem went back to a queue
        (or waits in ``book.unsettled`` to learn why its worker was lost)."""
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            # search_theorem turns every failure into a result except a ProverError, which
            # is the same for every theorem (a bad setting, a lost policy): stop.
            raise _as_prover_error(exc, "a search worker failed") from None
        except (
            ray.exceptions.RayActorError,
            ray.exceptions.WorkerCrashedError,
            ray.exceptions.OutOfMemoryError,
        ) as exc:
            self._lose(attempt.worker)
            if isinstance(exc, getattr(ray.exceptions, "ActorUnavailableError", ())):
                # The connection broke before Ray knew why: a node going down does this.
                # Ask the worker again until Ray says whether its node died with it.
                book.unsettled.append(_Loss(attempt, attempt.worker.handle.where.remote(), type(exc).__name__))
                return None
            return self._after_loss(attempt, book, not alive_nodes.has(attempt.worker.node_id), type(exc).__name__)

    def _settle_losses(self, ray, book: "_Book", alive_nodes: "_AliveNodes") -> Iterator[tuple[_Attempt, SearchResult]]:
        """Decide the unsettled losses whose probe has answered (or that waited too long)."""
        for loss in list(book.unsettled):
            done, _ = ray.wait([loss.probe], timeout=0)
            waited_too_long = time.monotonic() - loss.since > UNSETTLED_LOSS_WAIT_S
            if not done and not waited_too_long:
                continue
            if done:
                try:
                    ray.get(loss.probe)
                    node_lost = True  # it answers after all: the break was the network's, not the theorem's
                except getattr(ray.exceptions, "ActorUnavailableError", ()):
                    if not waited_too_long:
                        loss.probe = loss.attempt.worker.handle.where.remote()
                        continue
                    node_lost = False
                except ray.exceptions.RayError:  # dead: Ray now knows whether its node is
                    node_lost = not alive_nodes.has(loss.attempt.worker.node_id)
            else:
                node_lost = False
            book.unsettled.remove(loss)
            if node_lost:
                _kill(loss.attempt.worker.handle)  # lost to us either way
            result = self._after_loss(loss.attempt, book, node_lost, loss.error)
            if result is not None:
                yield loss.attempt, result

    def _after_loss(self, attempt: _Attempt, book: "_Book", node_lost: bool, error: str) -> SearchResult | None:
        """Send the theorem of an attempt whose worker was lost again, or give up on it.

        A lost node is not the theorem's doing: it goes back to the front of the queue
        without counting an attempt (up to MAX_NODE_LOSSES times). A lost worker may be:
        the theorem is retried alone, ``max_retries`` times, then recorded as an error.
        """
        name = attempt.theorem.name
        if node_lost and book.node_losses[name] < MAX_NODE_LOSSES:
            book.node_losses[name] += 1
            self.num_node_losses += 1
            book.queue.appendleft((attempt.theorem, attempt.number))
            return None
        if attempt.number < self.dist.max_retries:
            book.retries.append((attempt.theorem, attempt.number + 1))
            return None
        tries = attempt.number + 1
        return SearchResult.failure(
            name,
            StopReason.WORKER_LOST,
            f"the search worker died on each of {tries} attempt{'s' * (tries > 1)} "
            f"(killed, out of memory, or hung past the theorem time limit): {error}",
        )

    def _lose(self, worker: _Worker) -> None:
        if worker.alive:
            worker.alive = False
            self.num_workers_lost += 1


_SESSION: contextvars.ContextVar["RaySession | None"] = contextvars.ContextVar("ray_session", default=None)


class RaySession:
    """One Ray for several runs in a row (``prover iterate``'s rounds): the first
    ``RayExecutor`` made inside it starts Ray as it would alone, the later ones join that
    Ray, and Ray is shut down when the session ends rather than after each run.

        with RaySession():
            for config in rounds:
                with RayExecutor(config) as executor:  # joins the session
                    ...
    """

    def __init__(self) -> None:
        self.started = False  # Ray was started by an executor of this session and is still up
        self._token: Any = None

    def __enter__(self) -> "RaySession":
        self._token = _SESSION.set(self)  # executors made inside join it without being told
        return self

    def __exit__(self, *exc_info) -> None:
        _SESSION.reset(self._token)
        if self.started:
            ray = _ray()
            if ray.is_initialized():
                ray.shutdown()
            self.started = False


class ray_logs_to:
    """Send Ray's driver-side log messages (its start-up warnings, and what the raylet reports:
    ``ray_messages_to_log``) to a file, not the terminal."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> None:
        _ray()  # importing Ray sets up its loggers; they are replaced below
        self.logger = logging.getLogger("ray")
        self.saved = (self.logger.handlers[:], self.logger.propagate)
        self.handler = logging.FileHandler(self.path, delay=True, encoding="utf-8")
        self.logger.handlers = [self.handler]
        self.logger.propagate = False
        self.messages = ray_messages_to_log().__enter__()  # "A worker died ..." too

    def __exit__(self, *exc_info) -> None:
        self.messages.__exit__(*exc_info)
        self.logger.handlers, self.logger.propagate = self.saved
        self.handler.close()


def default_theorem_timeout_s(config: RunConfig) -> float:
    """How long a search may run before its worker is killed as hung: twice the search
    budget and a minute, plus, for Lean, three start-up allowances (the start, and the
    re-check's start and compile), which the budget does not count."""
    timeout_s = 2 * config.limits.time_limit_s + 60
    if is_lean(config.env):
        timeout_s += 3 * config.env.options.startup_timeout_s
    return timeout_s


class _AliveNodes:
    """The ids of the cluster's live nodes, asked of Ray once, when first needed."""

    def __init__(self, ray):
        self.ray = ray
        self.ids: set[str] | None = None

    def has(self, node_id: str | None) -> bool:
        if self.ids is None:
            self.ids = {node["NodeID"] for node in self.ray.nodes() if node.get("Alive")}
        return node_id in self.ids


def labels_match(labels: dict[str, str], selector: dict[str, str]) -> bool:
    """Whether a node's labels satisfy a Ray label selector (``value``, ``!value``,
    ``in(a,b)``, ``!in(a,b)``)."""
    for key, expression in selector.items():
        negated = expression.startswith("!")
        expression = expression[negated:]
        if expression.startswith("in(") and expression.endswith(")"):
            values = {value.strip() for value in expression[3:-1].split(",")}
        else:
            values = {expression}
        if (labels.get(key) in values) == negated:
            return False
    return True


def _sum_stats(stats: list[dict]) -> dict:
    """``BatchStats.to_dict`` of several servers (or one server's several lives), summed."""
    total = {name: sum(s[name] for s in stats) for name in ("num_batches", "num_requests", "num_states")}
    total["busy_s"] = sum(s["busy_s"] for s in stats)
    total["mean_batch_size"] = total["num_states"] / total["num_batches"] if total["num_batches"] else 0.0
    total["largest_batch"] = max((s["largest_batch"] for s in stats), default=0)
    for name in ("requests_by_method", "states_by_method"):
        total[name] = dict(sum((collections.Counter(s[name]) for s in stats), collections.Counter()))
    return total


def _session_dir(ray) -> str:
    """The directory of the Ray session this driver started (its processes name it)."""
    return ray._private.worker._global_node.get_session_dir_path()


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
