"""The only module of Newsroom that names Prefect's private symbols (known to work: 3.9.1).

Newsroom leans on a few parts of Prefect that are not its public API: private hooks of
the worker, the flow engine's classes, the observer of suspended runs, the server's SQLite
configuration and a private keyword of ``Block.load``. Each is wrapped here in a small named
function, class or constant whose docstring says what it wraps, since which Prefect version
it is known to work and why Newsroom needs it. The rest of Newsroom
(newsroom/orchestration/worker.py,
newsroom/orchestration/suspension.py, newsroom/orchestration/prefect_server.py,
newsroom/channels/credentials.py) uses only
these names.

``tests/orchestration/test_prefect_contract.py`` checks every wrapped symbol against the
installed Prefect — it exists, has the arguments and attributes used here, and, where that
is cheap, still behaves so — with a message naming what changed. It also fails when a
private Prefect name turns up anywhere else in newsroom/, flows/ or tasks/. After a Prefect
upgrade that test is the list of what to look at, and this module the one to change.

How each kind of use is kept here:

* Private modules, functions and attributes (``prefect._flow_run_suspension``,
  ``BaseWorker._client``, ``Secret.load(_sync=True)``, …): a function or class here uses
  them; the callers use that.
* Patches of Prefect (the flow engine's ``observe_flow_run_suspension``, the SQLite
  configuration's ``begin_transaction``): the function that installs one is here.
* Overrides of private methods (the worker's ``_sync_and_initialize``,
  ``_give_worker_labels_to_flow_run``, ``_propose_pending_state``). An override has to carry
  Prefect's private name, so it cannot leave its class as a function. :class:`WorkerHooks`
  is a mixin that holds those overrides and forwards each to a method with a public Newsroom
  name (:meth:`~WorkerHooks.on_synced`, :meth:`~WorkerHooks.label_flow_run`,
  :meth:`~WorkerHooks.claim_flow_run`); Prefect's own implementation stays reachable as
  :meth:`~WorkerHooks.prefect_label_flow_run` and :meth:`~WorkerHooks.prefect_claim_flow_run`.
  The worker lists the mixin before ``BaseWorker`` and overrides the public names. A mixin,
  not a list of names checked on the worker class: so the private names appear nowhere
  else, and a hook Prefect renames fails in the contract test instead of silently never
  being called. The flow-engine subclass holds nothing of Newsroom's own, so it lives here
  whole (:func:`run_async_flow_handing_back`).

Importing this module imports no Prefect (each Prefect import is inside the function that
needs it): the domain core (newsroom/channels/credentials.py) uses it and needs Prefect only
when a Secret block is named.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.client.schemas.objects import FlowRun, State
    from prefect.flows import Flow

__all__ = [
    "ENGINE_SUSPENSION_OBSERVER",
    "KNOWN_PREFECT_VERSION",
    "SQLITE_PATCH_MARKER",
    "WORKER_HOOKS",
    "HandedBackLog",
    "SuspensionObserver",
    "WorkerHooks",
    "handing_back_engine",
    "immediate_begin_transaction",
    "load_secret_block",
    "make_sqlite_transactions_immediate",
    "replace_engine_suspension_observer",
    "run_async_flow_handing_back",
    "run_sync_flow",
]

KNOWN_PREFECT_VERSION = "3.9.1"
"""The Prefect version every wrapper here was written and checked against."""


# --- Secret blocks (newsroom/channels/credentials.py) ------------------------------------

def load_secret_block(name: str) -> Any:
    """The Prefect ``Secret`` block ``name``, loaded synchronously even where an event loop
    is running.

    Wraps ``prefect.blocks.system.Secret.load(name, _sync=True)``; ``_sync`` is the private
    keyword of ``prefect._internal.compatibility.async_dispatch.async_dispatch``, the
    decorator on ``Block.load`` (known to work: 3.9.1). Newsroom needs it because
    :func:`newsroom.channels.credentials.resolve_credential` is synchronous but is also
    called inside a running event loop (a publisher built in an async flow), where plain
    ``load`` would return a coroutine instead of the block. Async code uses the public
    ``Secret.aload``.
    """
    from prefect.blocks.system import Secret  # lazily: the domain core does not need Prefect

    return Secret.load(name, _sync=True)  # type: ignore[call-arg]


# --- Suspension of running flow runs (newsroom/orchestration/suspension.py) -----------------------

ENGINE_SUSPENSION_OBSERVER = "observe_flow_run_suspension"
"""The name, in ``prefect.flow_engine``, of the per-run suspension observer (3.9.1)."""


class SuspensionObserver:
    """Prefect's observer of flow runs suspended from outside (API, UI), for many runs.

    Wraps ``prefect._internal.observers.FlowRunSuspendingObserver`` (an async context
    manager; ``watch_flow_run_id``, ``remove_in_flight_flow_run_id``) with
    ``prefect._flow_run_suspension.mark_flow_run_suspension_requested`` as its callback —
    what Prefect's own ``observe_flow_run_suspension`` sets up for one run (known to work:
    3.9.1). The callback finds the suspension request the engine registered for the run
    (``register_flow_run_suspension_request``) and marks it; the engine then raises
    ``Pause`` at the next orchestration boundary. Newsroom needs it because Prefect's
    per-run observer is a thread, loop, client and websocket per run
    (newsroom/orchestration/suspension.py
    keeps one of these for all runs of a worker).

    Use it on the loop that watches: ``async with SuspensionObserver() as observer``, then
    :meth:`watch` and :meth:`unwatch` on that loop.
    """

    def __init__(self) -> None:
        from prefect._flow_run_suspension import mark_flow_run_suspension_requested
        from prefect._internal.observers import FlowRunSuspendingObserver

        self._observer: Any = FlowRunSuspendingObserver(
            on_suspended=mark_flow_run_suspension_requested)  # type: ignore[arg-type]
        self._entered: Any = None

    async def __aenter__(self) -> SuspensionObserver:
        self._entered = await self._observer.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self._observer.__aexit__(*exc_info)
        finally:
            self._entered = None

    async def watch(self, flow_run_id: UUID) -> None:
        """Watch ``flow_run_id`` (returns once its state has been read)."""
        await self._entered.watch_flow_run_id(flow_run_id)

    def unwatch(self, flow_run_id: UUID) -> None:
        """Stop watching ``flow_run_id``."""
        self._entered.remove_in_flight_flow_run_id(flow_run_id)


def replace_engine_suspension_observer(
        observe: Callable[..., AbstractContextManager[None]]) -> bool:
    """Make Prefect's flow engine, in this process, watch deployment runs for suspension
    with ``observe``; False (nothing changed) when this Prefect has no such hook.

    Replaces the module global ``prefect.flow_engine.observe_flow_run_suspension``
    (imported there from ``prefect._flow_run_suspension``), which
    ``BaseFlowRunEngine.setup_flow_run_suspension_request`` calls as
    ``observe_flow_run_suspension(flow_run_id, suspension_request)`` and enters as a context
    manager around the run (known to work: 3.9.1). ``observe`` takes the same arguments
    (and ``polling_interval``). Newsroom needs it so that the worker's runs share one
    :class:`SuspensionObserver` instead of a thread each (newsroom/orchestration/suspension.py).
    """
    import prefect.flow_engine as engine

    if not hasattr(engine, ENGINE_SUSPENSION_OBSERVER):
        return False
    setattr(engine, ENGINE_SUSPENSION_OBSERVER, observe)
    return True


# --- The flow engine (newsroom/orchestration/worker.py) -------------------------------------------

class HandedBackLog(logging.LoggerAdapter):  # type: ignore[type-arg,unused-ignore]
    """The engine's run log once the run is handed back: Prefect ends every run it did
    not see finish with ``ERROR Finished in state Running()`` (the end of
    ``AsyncFlowRunEngine.start``, 3.9.1); a hand-back is no error, so that one line becomes
    an INFO line saying what happened. Everything else passes as it was."""

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if level >= logging.ERROR and str(msg).startswith("Finished in state Running"):
            level, msg = logging.INFO, "Finished here: handed back to Scheduled"
        self.logger.log(level, msg, *args, **kwargs)


@functools.cache
def handing_back_engine() -> type[Any]:
    """Prefect's async flow engine, except when the worker stops during the run.

    A subclass of ``prefect.flow_engine.AsyncFlowRunEngine`` (known to work: 3.9.1) that
    overrides ``handle_crash`` and sets the engine's ``logger`` and ``_raised``; built on
    first use, so that importing this module imports no Prefect. Why Newsroom needs it: in
    the Newsroom worker a run's asyncio task is cancelled only when the worker stops (its
    task group is cancelled). Prefect's engine takes that cancellation for a crash: it logs
    "Crash detected!" and forces the run "Crashed" — an event the office's alert
    automation mails about (newsroom/orchestration/stack.py) — before the worker sets it back to
    Scheduled.
    Here that cancellation proposes no state at all: the worker hands the run back
    (``NewsroomWorker._reschedule``). Any other crash is Prefect's as before, and a worker
    killed outright (SIGKILL) runs no code at all: its runs are recovered by the next
    worker (newsroom/orchestration/recovery.py).
    """
    from prefect.flow_engine import AsyncFlowRunEngine

    class HandingBackEngine(AsyncFlowRunEngine):
        __doc__ = handing_back_engine.__doc__

        async def handle_crash(self, exc: BaseException) -> None:
            if not isinstance(exc, asyncio.CancelledError):
                await super().handle_crash(exc)
                return
            self.logger.info("the Newsroom worker is stopping: the run is handed back to "
                             "Scheduled for the next worker")
            # Prefect's engine logs its end through ``self.logger`` (flow_engine.py, 3.9).
            self.logger = HandedBackLog(self.logger, {})  # type: ignore[assignment]
            self._raised = exc  # type: ignore[assignment]

    return HandingBackEngine


async def run_async_flow_handing_back(flow: Flow[..., Any], flow_run: FlowRun) -> State:
    """Run an async flow's ``flow_run`` in this process; its final state.

    What ``prefect.flow_engine.run_flow_async(flow, flow_run, parameters,
    return_type="state")`` does (its loop over ``start``, ``is_running``, ``run_context``
    and ``call_flow_fn``, known to work: 3.9.1), with :func:`handing_back_engine` in place
    of ``AsyncFlowRunEngine``. Newsroom needs it to run flows inside its worker's process
    and hand a run back, not crash it, when the worker stops.
    """
    engine = handing_back_engine()(flow=flow, parameters=dict(flow_run.parameters),
                                   flow_run=flow_run)
    async with engine.start():
        while engine.is_running():
            async with engine.run_context():
                await engine.call_flow_fn()
    return engine.state


def run_sync_flow(flow: Flow[..., Any], flow_run: FlowRun) -> State:
    """Run a synchronous flow's ``flow_run`` in this thread; its final state.

    Wraps ``prefect.flow_engine.run_flow_sync(flow, flow_run=…, parameters=…,
    return_type="state")``, the engine function ``prefect.flow_engine.run_flow`` picks for a
    sync flow (known to work: 3.9.1). Newsroom needs it to run a claimed deployment run
    inside its worker's process (in a thread) rather than in a process of its own.
    """
    from prefect.flow_engine import run_flow_sync

    return run_flow_sync(flow, flow_run=flow_run,  # type: ignore[return-value]
                         parameters=dict(flow_run.parameters), return_type="state")


# --- The worker (newsroom/orchestration/worker.py) ------------------------------------------------

WORKER_HOOKS = ("_sync_and_initialize", "_give_worker_labels_to_flow_run",
                "_propose_pending_state", "_propose_submitting_state",
                "_get_scheduled_flow_runs")
"""The private methods of ``prefect.workers.base.BaseWorker`` that :class:`WorkerHooks`
overrides (3.9.1)."""


class WorkerHooks:
    """Prefect's private worker hooks and attributes under public Newsroom names.

    A mixin for a subclass of ``prefect.workers.base.BaseWorker``; list it before
    ``BaseWorker`` in the bases (its ``super()`` calls reach ``BaseWorker``). It overrides
    the private methods in :data:`WORKER_HOOKS` (known to work: 3.9.1), each forwarding to
    a public method the worker overrides:

    * ``_sync_and_initialize`` — Prefect's sync (heartbeat, work pool), at start and every
      heartbeat interval — then :meth:`on_synced`. Newsroom recovers dead workers' runs and
      keeps the housekeeping run there.
    * ``_give_worker_labels_to_flow_run`` — :meth:`label_flow_run`; Prefect's own is
      :meth:`prefect_label_flow_run`. Newsroom retries it: a busy server must not make the
      worker give up a run.
    * ``_propose_pending_state`` (the claim of a run) — :meth:`claim_flow_run`; Prefect's
      own is :meth:`prefect_claim_flow_run`. Newsroom labels the run before claiming it.
    * ``_propose_submitting_state`` (the "Submitting" state between the claim and the
      run) — :meth:`mark_submitting`; Prefect's own is :meth:`prefect_mark_submitting`.
      Newsroom's runs start in the worker's process at once: no infrastructure to wait
      for, and one state transaction less per run.
    * ``_get_scheduled_flow_runs`` (each poll of the work pool) — asks the API for at most
      :meth:`poll_limit` runs (None: Prefect's query, the server's default of 200), and
      not at all when that is 0: a worker whose run limit is reached does not fetch, parse
      and drop the pool's whole backlog every poll.

    It also gives read access to ``BaseWorker._client`` (:attr:`has_client`),
    ``BaseWorker._limiter`` (:attr:`run_limiter`) and
    ``BaseWorker._work_pool_name`` (:attr:`work_pool_name`), and sets
    ``BaseWorker._description`` (what ``get_description()`` and Prefect's worker listing
    show) from :attr:`worker_description`.
    """

    worker_description: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "worker_description" in vars(cls):
            cls._description = cls.worker_description  # type: ignore[attr-defined]

    @property
    def has_client(self) -> bool:
        """Whether the worker has its API client (``BaseWorker._client``): from ``setup``
        to ``teardown``. ``BaseWorker.client`` raises outside that."""
        return self._client is not None  # type: ignore[attr-defined]

    @property
    def run_limiter(self) -> Any:
        """The worker's limit of runs at once (``BaseWorker._limiter``, an anyio
        ``CapacityLimiter``), None without a limit or before setup."""
        return self._limiter  # type: ignore[attr-defined]

    @property
    def work_pool_name(self) -> str:
        """The name of the pool the worker was started on (``BaseWorker._work_pool_name``),
        known before the pool itself has been read from the API."""
        return self._work_pool_name  # type: ignore[attr-defined]

    async def _sync_and_initialize(self) -> None:
        await super()._sync_and_initialize()  # type: ignore[misc]
        await self.on_synced()

    async def on_synced(self) -> None:
        """After each of Prefect's syncs with the API (at start and every heartbeat)."""

    async def _give_worker_labels_to_flow_run(self, flow_run_id: UUID) -> None:
        await self.label_flow_run(flow_run_id)

    async def label_flow_run(self, flow_run_id: UUID) -> None:
        """Write this worker's labels on the run (wherever Prefect does it)."""
        await self.prefect_label_flow_run(flow_run_id)

    async def prefect_label_flow_run(self, flow_run_id: UUID) -> None:
        """Prefect's own labelling of the run: one attempt; raises when it fails."""
        await super()._give_worker_labels_to_flow_run(flow_run_id)  # type: ignore[misc]

    async def _propose_pending_state(self, flow_run: FlowRun) -> bool:
        return await self.claim_flow_run(flow_run)

    async def claim_flow_run(self, flow_run: FlowRun) -> bool:
        """Claim the run (propose Pending); whether it is this worker's to run."""
        return await self.prefect_claim_flow_run(flow_run)

    async def prefect_claim_flow_run(self, flow_run: FlowRun) -> bool:
        """Prefect's own claim: proposes Pending; False when the server refuses."""
        return await super()._propose_pending_state(flow_run)  # type: ignore[misc]

    async def _propose_submitting_state(self, flow_run: FlowRun) -> None:
        await self.mark_submitting(flow_run)

    async def mark_submitting(self, flow_run: FlowRun) -> None:
        """Between the claim and the run (Prefect: propose "Submitting")."""
        await self.prefect_mark_submitting(flow_run)

    async def prefect_mark_submitting(self, flow_run: FlowRun) -> None:
        """Prefect's own: proposes the "Submitting" state (errors are logged, not raised)."""
        await super()._propose_submitting_state(flow_run)  # type: ignore[misc]

    def poll_limit(self) -> int | None:
        """How many scheduled runs one poll may fetch; None: as many as Prefect fetches."""
        return None

    async def _get_scheduled_flow_runs(self) -> list[Any]:
        limit = self.poll_limit()
        if limit is None:
            return await super()._get_scheduled_flow_runs()  # type: ignore[misc]
        if limit <= 0:
            return []
        # Runs still being submitted come back from the query (they hold their slot
        # already and are skipped): room for them on top.
        return await self._get_scheduled_flow_runs_limited(
            limit + len(self._submitting_flow_run_ids))  # type: ignore[attr-defined]

    async def _get_scheduled_flow_runs_limited(self, limit: int) -> list[Any]:
        """What ``BaseWorker._get_scheduled_flow_runs`` asks (the pool's runs due before
        now + the prefetch, of the worker's queues), with the API's ``limit`` in the body
        (``POST /work_pools/{name}/get_scheduled_flow_runs``; the client's method has no
        such parameter). Earliest first, as the server orders them."""
        from datetime import UTC, datetime, timedelta

        from prefect.client.schemas.responses import WorkerFlowRunResponse
        from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

        before = datetime.now(UTC) + timedelta(
            seconds=int(self._prefetch_seconds))  # type: ignore[attr-defined]
        body: dict[str, Any] = {"scheduled_before": before.isoformat(), "limit": limit}
        if self._work_queues:  # type: ignore[attr-defined]
            body["work_queue_names"] = list(self._work_queues)  # type: ignore[attr-defined]
        try:
            response = await self._client.request(  # type: ignore[attr-defined]
                "POST", "/work_pools/{name}/get_scheduled_flow_runs",
                path_params={"name": self._work_pool_name},  # type: ignore[attr-defined]
                json=body)
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code == 404:  # the pool is created on the next heartbeat
                return []
            raise
        except ObjectNotFound:
            return []
        return [WorkerFlowRunResponse.model_validate(item) for item in response.json()]


# --- The Prefect server's SQLite transactions (newsroom/orchestration/prefect_server.py) ----------

SQLITE_PATCH_MARKER = "_newsroom_immediate_writes"
"""Set on ``AioSqliteConfiguration`` once :func:`make_sqlite_transactions_immediate` ran."""


def immediate_begin_transaction() -> Callable[..., Any]:
    """Prefect's SQLite ``begin_transaction``, but always ``BEGIN IMMEDIATE``: the method
    :func:`make_sqlite_transactions_immediate` installs (also for the contract test)."""
    from prefect.server.database.configurations import SQLITE_BEGIN_MODE

    @asynccontextmanager
    async def begin_transaction(self: Any, session: Any, with_for_update: bool = False
                                ) -> AsyncGenerator[Any, None]:
        token = SQLITE_BEGIN_MODE.set("IMMEDIATE")
        try:
            async with session.begin() as transaction:
                yield transaction
        finally:
            SQLITE_BEGIN_MODE.reset(token)

    begin_transaction.__doc__ = ("Prefect's SQLite transaction, always BEGIN IMMEDIATE "
                                 "(newsroom/orchestration/prefect_server.py)")
    return begin_transaction


def make_sqlite_transactions_immediate() -> bool:
    """Make the Prefect server's SQLite transactions in this process ``BEGIN IMMEDIATE``;
    True if it changed anything (False if already done).

    Replaces ``prefect.server.database.configurations.AioSqliteConfiguration
    .begin_transaction(self, session, with_for_update=False)`` with
    :func:`immediate_begin_transaction`'s, which sets the module's ``SQLITE_BEGIN_MODE``
    context variable that ``begin_sqlite_stmt`` turns into the ``BEGIN`` statement (known to
    work: 3.9.1). Newsroom needs it because Prefect's ``BEGIN DEFERRED`` fails at once with
    ``SQLITE_BUSY_SNAPSHOT`` when another writer committed meanwhile, which the API answers
    with 503 (newsroom/orchestration/prefect_server.py says more).
    """
    from prefect.server.database.configurations import AioSqliteConfiguration

    if getattr(AioSqliteConfiguration, SQLITE_PATCH_MARKER, False):
        return False
    AioSqliteConfiguration.begin_transaction = (  # type: ignore[method-assign]
        immediate_begin_transaction())
    setattr(AioSqliteConfiguration, SQLITE_PATCH_MARKER, True)
    return True
