"""One model serving many searches: calls are queued and run in batches (plain asyncio).

``BatchingServer`` holds one policy (or any object with batched methods, such as a
``ValueModel``) and answers ``propose(states, k)``, ``propose_in_context(states,
contexts, k)`` (each state with its ``search.ProofContext``: the items are then
(state, context) pairs) and ``score(states)`` — any method
whose first argument is a list of items and whose answer is one entry per item — by
joining concurrent calls of the same method and arguments into one call of the model.

A batch starts when a request arrives and closes when it holds ``max_batch_size``
items or ``max_wait_ms`` has passed, whichever is first; with ``batch_idle_ms`` it also
closes once no request has come for that long. Searches that shared a batch come back
together (after their tactics), so requests arrive in bursts: the idle gap takes a
whole burst without waiting out ``max_wait_ms``. Requests that arrive while the model is
busy wait for the next batch, so under load batches fill by themselves. The model runs
in one thread beside the event loop (one model copy: one batch at a time), and the loop
keeps collecting requests meanwhile.

With a ``critic`` directory the server holds the value model beside the policy
(``PolicyWithCritic``): one process, one device, and ``score`` calls are queued and
batched with the ``propose`` calls, sharing the same batches.

``prover.run.cluster`` hosts it in a Ray async actor; tests drive it directly:

    server = BatchingServer(spec)            # a BackendSpec of a policy
    proposals = await server.propose(["⊢ 1 + 1 = 2"], 8)
    server = BatchingServer(spec, critic="runs/critic")   # and a value model
    values = await server.score(["⊢ 1 + 1 = 2"])
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence

from search import ProofContext, Proposal, propose

from prover.errors import ProverError

# The method whose items are (state, ProofContext) pairs: a call of it carries each state's
# context to the policy, and a target that ignores contexts is asked ``propose`` instead.
PROPOSE_IN_CONTEXT = "propose_in_context"


@dataclass
class _Request:
    method: str
    args: tuple
    items: list
    future: asyncio.Future


@dataclass
class BatchStats:
    """What the server did: how many batches, and how full they were; also requests and
    states by method (``propose``, ``score``)."""

    num_batches: int = 0
    largest_batch: int = 0
    busy_s: float = 0.0  # time inside the model
    requests_by_method: collections.Counter = field(default_factory=collections.Counter)
    states_by_method: collections.Counter = field(default_factory=collections.Counter)

    @property
    def num_requests(self) -> int:
        return sum(self.requests_by_method.values())

    @property
    def num_states(self) -> int:
        return sum(self.states_by_method.values())

    def add(self, batch: Sequence[_Request], busy_s: float) -> None:
        self.num_batches += 1
        self.largest_batch = max(self.largest_batch, sum(len(request.items) for request in batch))
        self.busy_s += busy_s
        for request in batch:
            method = "propose" if request.method == PROPOSE_IN_CONTEXT else request.method  # proposals either way
            self.requests_by_method[method] += 1
            self.states_by_method[method] += len(request.items)

    def to_dict(self) -> dict:
        return {
            "num_batches": self.num_batches,
            "num_requests": self.num_requests,
            "num_states": (num_states := self.num_states),
            "mean_batch_size": num_states / self.num_batches if self.num_batches else 0.0,
            "largest_batch": self.largest_batch,
            "busy_s": self.busy_s,
            "requests_by_method": dict(self.requests_by_method),
            "states_by_method": dict(self.states_by_method),
        }


class PolicyWithCritic:
    """One target for a server holding two models: ``propose`` goes to the policy,
    ``score`` to the critic (a ``ValueModel``)."""

    def __init__(self, policy: Any, critic: Any):
        self.policy = policy
        self.critic = critic

    def propose(self, states: Sequence[str], k: int) -> list[list[Proposal]]:
        return self.policy.propose(states, k)

    def propose_in_context(
        self, states: Sequence[str], contexts: Sequence[ProofContext], k: int
    ) -> list[list[Proposal]]:
        return propose(self.policy, states, contexts, k)

    def score(self, states: Sequence[str]) -> list[float]:
        return self.critic.score(states)


class BatchingServer:
    """See the module docstring. ``spec`` names the policy to build (a ``BackendSpec``)
    and ``critic`` a value model directory to load beside it (``--critic``), if any;
    ``target`` gives an object already built instead (tests)."""

    def __init__(
        self,
        spec: Any = None,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        batch_idle_ms: float | None = None,
        target: Any = None,
        critic: str | None = None,
    ):
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000
        self.idle_s = batch_idle_ms / 1000 if batch_idle_ms else None
        self.stats = BatchStats()
        self._waiting: collections.deque[_Request] = collections.deque()
        self._num_waiting_items = 0
        self._arrived: asyncio.Event | None = None
        self._serving: asyncio.Task | None = None
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        # A constructor that raises would make Ray restart the actor in a loop; keep the
        # error and report it from ready() instead.
        self._load_error: Exception | None = None
        self.target = target
        if target is None:
            loading = "the policy"
            try:
                from prover.policies import make_critic, make_policy

                self.target = make_policy(spec)
                if critic:
                    loading = f"the critic {critic}"
                    self.target = PolicyWithCritic(self.target, make_critic(critic))
            except ProverError as exc:  # already one sentence, naming what to fix
                self._load_error = exc
            except Exception as exc:
                self._load_error = ProverError(
                    f"the policy server could not load {loading}: {type(exc).__name__}: {exc}"
                )
                self._load_error.__cause__ = exc

    def _ensure_serving(self) -> None:
        if self._serving is None:  # the actor's event loop exists only once a method runs
            self._arrived = asyncio.Event()
            self._serving = asyncio.get_running_loop().create_task(self._serve())

    async def ready(self) -> int:
        """Raise the error that loading the models met, if any; else this process's id."""
        if self._load_error is not None:
            raise self._load_error
        self._ensure_serving()
        return os.getpid()

    async def call(self, method: str, items: Sequence[Any], *args: Any) -> list:
        """``target.method(items, *args)``, answered from the next batch this request joins."""
        if self._load_error is not None:
            raise self._load_error
        self._ensure_serving()
        request = _Request(method, args, list(items), asyncio.get_running_loop().create_future())
        self._waiting.append(request)
        self._num_waiting_items += len(request.items)
        self._arrived.set()
        return await request.future

    async def propose(self, states: Sequence[str], k: int) -> list[list[Proposal]]:
        """``TacticPolicy.propose``, batched."""
        return await self.call("propose", states, k)

    async def propose_in_context(
        self, states: Sequence[str], contexts: Sequence[ProofContext], k: int
    ) -> list[list[Proposal]]:
        """``ContextualPolicy.propose_in_context``, batched with every other search's calls
        (a target that ignores contexts gets ``propose``)."""
        return await self.call(PROPOSE_IN_CONTEXT, list(zip(states, contexts)), k)

    async def score(self, states: Sequence[str]) -> list[float]:
        """``ValueModel.score``, batched (for a target that is a critic)."""
        return await self.call("score", states)

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
            while self._num_waiting_items < self.max_batch_size:
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
            if batch and size + len(request.items) > self.max_batch_size:
                break  # the next batch takes it; a single oversized request goes alone
            self._waiting.popleft()
            self._num_waiting_items -= len(request.items)
            batch.append(request)
            size += len(request.items)
        return batch

    def _function(self, method: str):
        """What answers ``method``'s batched items: the target's method of that name, except
        for proposals in context, whose items are (state, context) pairs."""
        if method == PROPOSE_IN_CONTEXT:
            target = self.target
            return lambda pairs, k: propose(target, [state for state, _ in pairs], [c for _, c in pairs], k)
        return getattr(self.target, method)

    async def _run(self, batch: list[_Request]) -> None:
        loop = asyncio.get_running_loop()
        groups: dict[tuple, list[_Request]] = collections.defaultdict(list)
        for request in batch:
            groups[(request.method, request.args)].append(request)
        started = time.perf_counter()
        for (method, args), requests in groups.items():
            items = [item for request in requests for item in request.items]
            try:
                function = self._function(method)
                answers = await loop.run_in_executor(self._model_thread, function, items, *args)
            except Exception as exc:
                for request in requests:
                    if not request.future.done():
                        request.future.set_exception(exc)
                continue
            offset = 0
            for request in requests:
                if not request.future.done():  # the caller may have gone away
                    request.future.set_result(answers[offset : offset + len(request.items)])
                offset += len(request.items)
        self.stats.add(batch, time.perf_counter() - started)
