"""The Newsroom worker: a Prefect worker that runs flow runs inside its own process.

Why not the stock process worker: each flow run there is a new Python process of about
90 MB that needs 2-3 s to start (see ../shared/PREFECT-NOTES.md). Newsroom's runs are
short bursts of I/O — render, ask, publish — and many are due at the same second (a
commemoration day on eight channels, forty campaigns in one minute). This worker polls
its work pool like any worker (``prefect worker``'s own polling, claiming and heartbeat
code, from :class:`prefect.workers.base.BaseWorker`), but executes each claimed run as an
asyncio task in this process with Prefect's flow engine: no process start, no import per
run, and the run begins within one poll interval (0.5 s) of its scheduled time (runs are
prefetched, and the flows themselves wait for the exact second). A run that becomes
Scheduled for now — a crisis message, a campaign resumed after approval, a run started in
the UI — does not wait for the next poll: Prefect's events stream wakes the worker
(:meth:`NewsroomWorker._poll_when_scheduled`). The Prefect internals
this takes (the engine, the worker's private hooks) are wrapped in
newsroom/orchestration/prefect_internals.py.

Waiting for approval holds nothing here: the campaign flow *suspends* (the run ends and
is rescheduled when resumed), so a thousand waiting campaigns are a thousand rows in
Prefect's database, not a thousand processes or tasks.

The deployments in ``prefect.yaml`` also run on a stock ``process`` pool (``prefect
worker start --pool newsroom-process``): slower to start, same results.

A worker that dies (SIGKILL, OOM, power cut) leaves its runs "Running" in Prefect; the
next worker to start on the pool — and every worker on each heartbeat, every 30 s — sets
such orphaned runs back to "Scheduled" (``newsroom/orchestration/recovery.py``): each worker is
named after
its process and writes that name on the runs it claims, so a dead worker is recognised.

An admin's *Cancel* in the Prefect UI stops a run executing here within
:data:`CANCEL_CHECK_SECONDS`: the stock worker stops only runs not yet started, and a run
in this process has no process of its own that Prefect could end. The run ends
"Cancelled", never handed back; a run the worker stops is handed back only while Prefect
still has it running (a run cancelled or finished meanwhile stays so).

It also keeps house: at start and at every heartbeat it makes sure the pool has its one
long-lived ``housekeeping`` run (reminders, deadlines, resumes, owed alerts, the request
sweep every minute: flows/housekeeping.py) and starts one when none is there.

Start it with ``newsroom worker`` (or ``newsroom up``, which runs it embedded).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import logging
import os
from typing import Any

import anyio.abc
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import Abort, Pause
from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.workers.base import BaseJobConfiguration, BaseVariables, BaseWorker, BaseWorkerResult

from newsroom.orchestration import suspension
from newsroom.orchestration.housekeeping_run import ensure_housekeeping_run
from newsroom.orchestration.prefect_internals import (
    WorkerHooks,
    run_async_flow_handing_back,
    run_sync_flow,
)
from newsroom.orchestration.recovery import (
    WORKER_LABEL,
    instance_name,
    recover_orphaned_runs,
    schedule_again,
)
from newsroom.redaction import install_log_redaction
from newsroom.settings import PROJECT_ROOT

logger = logging.getLogger("newsroom.worker")

WORKER_TYPE = "newsroom-inprocess"
CANCEL_CHECK_SECONDS = 2.0  # how soon a Cancel in the Prefect UI stops a run here
SCHEDULED_EVENT = "prefect.flow-run.Scheduled"
# Runs that become Scheduled within this of each other are fetched by one poll.
WAKE_GATHER_SECONDS = 0.02


async def cancelled_among(client: Any, flow_run_ids: list[Any]) -> list[Any]:
    """Those of ``flow_run_ids`` that Prefect has cancelled or is cancelling (one read)."""
    runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
        id=FlowRunFilterId(any_=flow_run_ids),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[
            StateType.CANCELLING, StateType.CANCELLED]))))
    return [run.id for run in runs]


class NewsroomWorkerResult(BaseWorkerResult):
    """The outcome of one run executed in this process."""


class NewsroomJobConfiguration(BaseJobConfiguration):
    """Nothing to configure: the run executes in the worker's own process."""


class NewsroomVariables(BaseVariables):
    """No infrastructure variables: the run executes in the worker's own process."""


def flow_for_entrypoint(entrypoint: str) -> Flow[..., Any]:
    """The flow object of a deployment's entrypoint (``flows/campaign.py:campaign``).

    Entrypoints inside this project are imported as modules (``flows.campaign``), so the
    flow, its tasks and its RunInput classes exist once per process.
    """
    path, _, name = entrypoint.rpartition(":")
    if path.endswith(".py") and not os.path.isabs(path):
        module = path[:-3].replace("/", ".").replace(os.sep, ".")
        if (PROJECT_ROOT / path).is_file():
            return getattr(importlib.import_module(module), name)
    return load_flow_from_entrypoint(entrypoint)


class NewsroomWorker(WorkerHooks, BaseWorker[NewsroomJobConfiguration, NewsroomVariables,
                                             NewsroomWorkerResult]):
    type = WORKER_TYPE
    job_configuration = NewsroomJobConfiguration
    job_configuration_variables = NewsroomVariables
    worker_description = "Runs Newsroom's flows in the worker's own process (no process per run)."

    def __init__(self, *args: Any, housekeeping: bool = True, **kwargs: Any):
        if not kwargs.get("name"):
            kwargs["name"] = instance_name()  # recognisable as this process (recovery)
        super().__init__(*args, **kwargs)
        self.keeps_house = housekeeping
        self._flows: dict[str, Flow[..., Any]] = {}
        self._entrypoints: dict[Any, str] = {}
        # The flow runs executing in this worker now, each with its cancel scope.
        self._scopes: dict[Any, anyio.CancelScope] = {}
        self._cancelled: set[Any] = set()  # runs cancelled in Prefect, being stopped here
        self._cancel_watch: asyncio.Task[None] | None = None
        self._wake_watch: asyncio.Task[None] | None = None
        self.wakes = 0  # polls made at once because a run of the pool became Scheduled
        # Runs labelled at their claim, whose second labelling by Prefect (right after,
        # when it submits them) would write the same labels again.
        self._labelled: set[Any] = set()
        self.recovered: list[Any] = []  # orphaned runs this worker scheduled again

    async def setup(self) -> None:
        # One watcher of external suspensions for all runs here, not a thread, loop,
        # client and websocket per run that also stalls the shared loop
        # (newsroom/orchestration/suspension.py).
        suspension.install()
        suspension.log_waits_as_info()
        await super().setup()
        self._cancel_watch = asyncio.create_task(self._watch_cancellations(),
                                                 name="newsroom-cancel-watch")
        self._wake_watch = asyncio.create_task(self._poll_when_scheduled(),
                                               name="newsroom-wake-watch")

    async def teardown(self, *exc_info: Any) -> None:
        for task in (self._cancel_watch, self._wake_watch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            await super().teardown(*exc_info)
        finally:
            # Stopped while the Prefect server is still there (newsroom up stops it next).
            await asyncio.to_thread(suspension.release)

    async def on_synced(self) -> None:
        """After Prefect's sync (heartbeat, work pool), at start and every heartbeat interval:
        the runs of dead workers go back to Scheduled (see newsroom/orchestration/recovery.py), and
        then
        the pool gets a housekeeping run if it has none (a recovered one counts)."""
        await self.recover_orphans()
        if self.keeps_house:
            await self.keep_house()

    async def keep_house(self) -> Any:
        """Start the pool's housekeeping run when none is there; never raises."""
        if not self.has_client:
            return None
        try:
            with anyio.fail_after(30):
                return await ensure_housekeeping_run(self.client, self.work_pool_name)
        except Exception as exc:  # noqa: BLE001 - the next heartbeat tries again
            logger.warning("could not check the housekeeping run: %s", exc)
            return None

    async def recover_orphans(self) -> list[Any]:
        """Schedule again the pool's runs whose worker is gone; never raises."""
        if not self.has_client:
            return []
        try:
            with anyio.fail_after(30):
                await self._repair_labels()
        except Exception as exc:  # noqa: BLE001 - cosmetic; the next heartbeat tries again
            logger.debug("labels of this worker's runs not checked: %s", exc)
        try:
            with anyio.fail_after(60):
                recovered = await recover_orphaned_runs(
                    self.client, self.work_pool_name, me=self.name,
                    executing=set(self._scopes))
        except Exception as exc:  # noqa: BLE001 - the next heartbeat tries again
            logger.warning("looking for orphaned flow runs failed: %s", exc)
            return []
        self.recovered.extend(recovered)
        return recovered

    async def _repair_labels(self) -> None:
        """Runs this worker executes whose worker label could not be written (a busy
        server): write it now, so no other worker takes them for orphans."""
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        executing = list(self._scopes)
        for start in range(0, len(executing), 200):  # one request per 200 runs
            runs = await self.client.read_flow_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=executing[start:start + 200])))
            for run in runs:
                if (run.labels or {}).get(WORKER_LABEL) == self.name:
                    continue
                try:
                    await self.prefect_label_flow_run(run.id)
                except Exception as exc:  # noqa: BLE001 - retried on the next heartbeat
                    logger.debug("labels of flow run %s not repaired: %s", run.id, exc)

    async def label_flow_run(self, flow_run_id: Any) -> None:
        """Prefect labels a run when it submits it, right after the claim: a run labelled
        at its claim (:meth:`claim_flow_run`) is not written again."""
        if flow_run_id in self._labelled:
            self._labelled.discard(flow_run_id)
            return
        await self._label_with_retries(flow_run_id)

    async def _label_with_retries(self, flow_run_id: Any) -> bool:
        """The worker's labels on the run are for display only: a busy server (SQLite
        answers 503 under load) must not make the worker give up the run — the stock
        worker then marks it "Crashed" and nothing starts it again. Whether written."""
        for attempt in range(3):
            try:
                await self.prefect_label_flow_run(flow_run_id)
                return True
            except Exception as exc:  # noqa: BLE001 - cosmetic; the run goes on
                if attempt == 2:
                    logger.warning("flow run %s runs without worker labels: %s",
                                   flow_run_id, exc)
                else:
                    await asyncio.sleep(0.5 * (attempt + 1))
        return False

    async def claim_flow_run(self, flow_run: FlowRun) -> bool:
        """Claim the run with this worker's name already on it: killed between the claim
        and Prefect's labelling (right after), the run would carry no worker at all and
        recovery would have to wait for its timeout (see newsroom/orchestration/recovery.py)."""
        labelled = await self._label_with_retries(flow_run.id)
        claimed = await self.prefect_claim_flow_run(flow_run)
        if labelled and claimed and self.has_client:
            self._labelled.add(flow_run.id)
        return claimed

    async def mark_submitting(self, flow_run: FlowRun) -> None:
        """No "Submitting" state: the run starts in this process at once (Prefect's stock
        workers show it while they create a process or container), and it saves a state
        transaction per run. The run goes from Pending to Running."""

    def poll_limit(self) -> int | None:
        """With a run limit, a poll fetches no more runs than there are free slots (none
        when the limit is reached); without one, what Prefect fetches."""
        limiter = self.run_limiter
        if limiter is None:
            return None
        return int(limiter.available_tokens)

    async def _entrypoint(self, flow_run: FlowRun) -> str:
        if flow_run.deployment_id is None:
            raise RuntimeError(f"flow run {flow_run.id} has no deployment; "
                               "the Newsroom worker runs deployment runs only")
        entrypoint = self._entrypoints.get(flow_run.deployment_id)
        if entrypoint is None:
            deployment = await self.client.read_deployment(flow_run.deployment_id)
            if not deployment.entrypoint:
                raise RuntimeError(f"deployment {deployment.name!r} has no entrypoint")
            entrypoint = self._entrypoints[flow_run.deployment_id] = deployment.entrypoint
        return entrypoint

    async def _poll_when_scheduled(self) -> None:
        """Poll the pool at once when one of its runs becomes Scheduled — a crisis
        message started, a campaign resumed after its approval, a run started in the UI —
        instead of up to a poll interval later: Prefect's events stream
        (``prefect.flow-run.Scheduled`` with the pool as related resource), one websocket
        for the worker. The regular poll goes on beside it; while the stream is down
        (an old server, a proxy without websockets) nothing is lost but the head start.
        Events that come together make one poll (:data:`WAKE_GATHER_SECONDS`)."""
        from prefect.events.clients import get_events_subscriber
        from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter

        while (work_pool := getattr(self, "_work_pool", None)) is None:  # after the sync
            await asyncio.sleep(0.1)
        pool = f"prefect.work-pool.{work_pool.id}"
        wanted = EventFilter(event=EventNameFilter(name=[SCHEDULED_EVENT]),
                             related=EventRelatedFilter(id=[pool]))
        wake = asyncio.Event()
        poller = asyncio.create_task(self._poll_on(wake), name="newsroom-wake-poll")
        pause = 1.0
        try:
            while True:
                try:
                    async with get_events_subscriber(filter=wanted,
                                                     reconnection_attempts=0) as events:
                        pause = 1.0
                        async for _event in events:
                            wake.set()
                except Exception as exc:  # noqa: BLE001 - the regular poll goes on
                    logger.debug("events stream for the pool's new runs: %s; again in "
                                 "%.0f s", exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 60.0)
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    async def _poll_on(self, wake: asyncio.Event) -> None:
        while True:
            await wake.wait()
            await asyncio.sleep(WAKE_GATHER_SECONDS)
            wake.clear()
            try:
                self.wakes += 1
                await self.get_and_submit_flow_runs()
            except Exception as exc:  # noqa: BLE001 - the regular poll tries again
                logger.debug("poll on a new run failed: %s", exc)

    async def _watch_cancellations(self) -> None:
        """Every :data:`CANCEL_CHECK_SECONDS`: the runs executing here that Prefect has
        cancelled (or is cancelling) are stopped. One request per check, none while
        nothing runs."""
        while True:
            await asyncio.sleep(CANCEL_CHECK_SECONDS)
            if not self._scopes or not self.has_client:
                continue
            try:
                for run_id in await cancelled_among(self.client, list(self._scopes)):
                    self.stop_cancelled(run_id)
            except Exception as exc:  # noqa: BLE001 - the next check tries again
                logger.debug("cancellations not checked: %s", exc)

    def stop_cancelled(self, flow_run_id: Any) -> bool:
        """Stop a run executing here because Prefect cancelled it; whether one was."""
        scope = self._scopes.get(flow_run_id)
        if scope is None or flow_run_id in self._cancelled:
            return False
        logger.info("flow run %s was cancelled in Prefect: stopping it here", flow_run_id)
        self._cancelled.add(flow_run_id)
        scope.cancel()
        return True

    async def run(self, flow_run: FlowRun, configuration: NewsroomJobConfiguration,
                  task_status: anyio.abc.TaskStatus[int] | None = None
                  ) -> NewsroomWorkerResult:
        if task_status is not None:
            task_status.started(os.getpid())
        scope = self._scopes[flow_run.id] = anyio.CancelScope()
        try:
            with scope:
                return await self._run(flow_run)
            # Only a cancellation in Prefect gets here (the scope swallowed it).
            return NewsroomWorkerResult(identifier=str(flow_run.id), status_code=1)
        finally:
            self._scopes.pop(flow_run.id, None)
            self._cancelled.discard(flow_run.id)
            self._labelled.discard(flow_run.id)

    async def _run(self, flow_run: FlowRun) -> NewsroomWorkerResult:
        entrypoint = await self._entrypoint(flow_run)
        flow = self._flows.get(entrypoint)
        if flow is None:
            flow = self._flows[entrypoint] = flow_for_entrypoint(entrypoint)
        try:
            if flow.isasync:
                await run_async_flow_handing_back(flow, flow_run)
            else:
                await asyncio.to_thread(run_sync_flow, flow, flow_run)
        except (Pause, Abort):
            pass  # suspended (waits for input without a process) or aborted by the server
        except asyncio.CancelledError:
            if flow_run.id in self._cancelled:  # by an admin, in Prefect: it ends here
                with anyio.CancelScope(shield=True):
                    await self._end_cancelled(flow_run)
                raise
            # The worker is stopping (Ctrl-C, SIGTERM, a deploy). A run that was waiting for
            # its post's second, or publishing, must not end "Crashed" (nothing would start
            # it again, and the alert automation would mail the office about a normal
            # stop): it goes back to Scheduled, now, for the next worker. Running it again
            # is safe: rendering and asking are idempotent, publications are reserved in
            # the store (at most once; an interrupted one is reported "unknown"). The
            # engine proposes no Crashed state first (prefect_internals.handing_back_engine).
            with anyio.CancelScope(shield=True):
                await self._reschedule(flow_run)
            raise
        return NewsroomWorkerResult(identifier=str(flow_run.id), status_code=0)

    async def _end_cancelled(self, flow_run: FlowRun) -> None:
        from prefect.states import Cancelled

        try:
            with anyio.fail_after(10):
                current = await self.client.read_flow_run(flow_run.id)
                if current.state is None or not current.state.is_final():
                    await self.client.set_flow_run_state(
                        flow_run.id, Cancelled(message="cancelled in Prefect; the Newsroom "
                                                       "worker stopped the run"), force=True)
        except Exception as exc:  # noqa: BLE001 - the run is stopped either way
            logger.warning("could not mark flow run %s cancelled: %s", flow_run.id, exc)

    async def _reschedule(self, flow_run: FlowRun) -> None:
        try:
            with anyio.fail_after(10):
                current = await self.client.read_flow_run(flow_run.id)
                if current.state is not None and not (current.state.is_running()
                                                      or current.state.is_pending()):
                    # Cancelled, finished or suspended meanwhile: Prefect's word stands.
                    logger.info("flow run %s is %s: not handed back", flow_run.id,
                                current.state.name)
                    return
                await schedule_again(self.client, flow_run.id, "the Newsroom worker "
                                     "stopped during the run; scheduled again")
            logger.info("flow run %s rescheduled: the worker stopped during it", flow_run.id)
        except Exception as exc:  # noqa: BLE001 - best effort while shutting down
            logger.warning("could not reschedule flow run %s while stopping: %s",
                           flow_run.id, exc)


async def serve_worker(work_pool: str, *, poll_seconds: float = 0.5,
                       prefetch_seconds: float = 90.0, limit: int | None = None,
                       name: str | None = None, housekeeping: bool = True) -> None:
    """Run the Newsroom worker on ``work_pool`` until cancelled (creates the pool);
    ``housekeeping``: keep the pool's housekeeping run alive.

    Prefect's worker gives up when its API stays unreachable for several minutes
    ("Service exceeded error threshold"); then a new worker starts here after a pause,
    so a long Prefect outage does not leave Newsroom without a worker. The runs the
    old one had in hand are recovered like a dead worker's (newsroom/orchestration/recovery.py: its
    heartbeat stops).
    """
    from prefect.settings import PREFECT_WORKER_QUERY_SECONDS, temporary_settings

    install_log_redaction()
    pause = 5.0
    with temporary_settings({PREFECT_WORKER_QUERY_SECONDS: poll_seconds}):
        for attempt in itertools.count():
            # Never the old name again: the old worker's runs must look orphaned.
            this_name = f"{name} (restart {attempt})" if name and attempt else name
            worker = NewsroomWorker(work_pool_name=work_pool,
                                    prefetch_seconds=prefetch_seconds, limit=limit,
                                    name=this_name, housekeeping=housekeeping)
            started = asyncio.get_running_loop().time()
            try:
                await worker.start(printer=lambda message: logger.info("%s", message))
                return
            except Exception as exc:  # noqa: BLE001 - Cancelled/KeyboardInterrupt pass
                if asyncio.get_running_loop().time() - started > 600:
                    pause = 5.0  # it ran a good while: not a start-up loop
                logger.error("the Newsroom worker stopped (%s: %s); a new one starts in "
                             "%.0f s", type(exc).__name__, exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 60.0)
