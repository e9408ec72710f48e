"""Runs left behind by a worker that died: found and handed back to "Scheduled".

The Newsroom worker runs each flow run inside its own process
(``newsroom/orchestration/worker.py``). When
that process is killed (SIGKILL, the OOM killer, a power cut) its runs stay "Running" or
"Pending" in Prefect for good: the server does not know that nobody executes them any
more, and no worker picks up a run that is not "Scheduled". Their posts would be lost.

Prefect's own answer ("zombie flows": flow-run heartbeat events every ≥ 30 s plus an
automation that marks runs without heartbeats "Crashed") does not fit: "Crashed" is final
(nothing starts the run again, the posts are still lost), detection takes at least 90 s
(three missed heartbeats), and it needs a heartbeat thread per run. Newsroom uses what
Prefect already has for workers instead:

- Each worker has a **name that identifies its process**: ``newsroom <host> <pid> <start>
  #<n>`` (``start``: the process's start time in clock ticks since boot, so a reused pid is
  not mistaken for the old process; ``n``: several workers may share one process).
- The worker writes its name on every run it claims (Prefect's own run label
  ``prefect.worker.name``), and sends Prefect's worker heartbeat every 30 s.
- When it starts, and every heartbeat after, it looks at the Running/Pending runs of its
  work pool (:func:`recover_orphaned_runs`). A run is **orphaned** when its worker is gone:

  * a worker on this host whose process no longer exists (or is another process under a
    reused pid) is gone at once — a restarted worker recovers its predecessor's runs in
    its first second;
  * any other worker (another host, or a stock worker) is gone when the work pool's
    heartbeat record says so: no record, or no heartbeat for three intervals (what
    Prefect itself calls "offline"), and the run has not changed state for that long;
  * a run with no worker name at all (the worker died between claiming it and labelling
    it) is orphaned when it has not changed state for that long either (a live worker
    repairs its own runs' labels on every pass).

  An orphaned run is set back to "Scheduled" (forced: the server would refuse Running →
  Scheduled), due now; a worker claims it within a poll. Running it again is safe by
  design: rendering and asking are idempotent, and every publication is reserved in
  Newsroom's store — what the dead worker had published is not sent again, and what it
  may have been sending is resent only where the network recognises a repeat (Mastodon,
  Bluesky, the website), elsewhere reported "unknown" to the office.

Works with the Prefect server on SQLite and on PostgreSQL (plain API calls only).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import socket
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from newsroom.processes import process_start_ticks

logger = logging.getLogger("newsroom.recovery")

NAME_PREFIX = "newsroom"
# newsroom <host> <pid> <start ticks> #<n>
_NAME = re.compile(rf"^{NAME_PREFIX} (?P<host>\S+) (?P<pid>\d+) (?P<start>\d+) #(?P<n>\d+)$")
_COUNTER = itertools.count(1)
# Prefect calls a worker offline after this many missed heartbeats.
MISSED_HEARTBEATS = 3
DEFAULT_HEARTBEAT_SECONDS = 30
WORKER_LABEL = "prefect.worker.name"
PAGE = 200


def _host() -> str:
    return socket.gethostname().split(".")[0] or "localhost"


def instance_name() -> str:
    """A new worker name that says which process on which host the worker lives in."""
    pid = os.getpid()
    return f"{NAME_PREFIX} {_host()} {pid} {process_start_ticks(pid) or 0} #{next(_COUNTER)}"


@dataclass(frozen=True)
class Instance:
    host: str
    pid: int
    start: int


def parse_instance(name: str | None) -> Instance | None:
    match = _NAME.match(name or "")
    if match is None:
        return None
    return Instance(match["host"], int(match["pid"]), int(match["start"]))


def process_is_gone(instance: Instance) -> bool | None:
    """True: the worker's process is certainly gone; False: it exists; None: cannot tell
    from here (another host)."""
    if instance.host != _host():
        return None
    start = process_start_ticks(instance.pid)
    if start is None:
        return True
    return bool(instance.start and start and start != instance.start)


@dataclass(frozen=True)
class Orphan:
    flow_run_id: UUID
    name: str
    state: str
    worker: str | None
    why: str


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def judge(run: Any, workers: dict[str, Any], *, me: str, executing: Collection[UUID],
          now: datetime, default_heartbeat: int = DEFAULT_HEARTBEAT_SECONDS) -> str | None:
    """Why ``run`` (a Running/Pending FlowRun of the pool) is orphaned, or None if it is
    not. ``workers``: the pool's workers by name; ``me``: the asking worker's name;
    ``executing``: the runs the asking worker executes now."""
    if run.id in executing:
        return None
    owner = (run.labels or {}).get(WORKER_LABEL)
    if owner == me:
        return None  # ours, and just starting (not yet in ``executing``)
    state_at = _aware(run.state.timestamp if run.state else None) or now
    quiet = now - state_at
    instance = parse_instance(owner)
    if instance is not None:
        gone = process_is_gone(instance)
        if gone:
            return f"its worker {owner!r} (process {instance.pid} on this host) is gone"
    worker = workers.get(owner) if owner else None
    interval = (getattr(worker, "heartbeat_interval_seconds", None) or default_heartbeat)
    grace = timedelta(seconds=MISSED_HEARTBEATS * interval)
    if quiet < grace:
        return None
    if owner is None:
        return f"no worker has claimed it for {quiet.total_seconds():.0f} s"
    if worker is None:
        return f"its worker {owner!r} is not registered with the work pool"
    beat = _aware(worker.last_heartbeat_time)
    if beat is None or now - beat >= grace:
        ago = "never" if beat is None else f"{(now - beat).total_seconds():.0f} s ago"
        return f"its worker {owner!r} sent its last heartbeat {ago}"
    return None


async def find_orphaned_runs(client: Any, work_pool: str, *, me: str,
                             executing: Collection[UUID] = (),
                             now: datetime | None = None) -> list[Orphan]:
    """The Running/Pending runs of ``work_pool`` whose worker is gone."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        WorkPoolFilter,
        WorkPoolFilterName,
    )
    from prefect.client.schemas.objects import StateType

    now = now or datetime.now(UTC)
    runs: list[Any] = []
    while True:  # the server answers at most 200 per page
        page = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING]))),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[work_pool])),
            limit=PAGE, offset=len(runs))
        runs += page
        if len(page) < PAGE:
            break
    if not runs:
        return []
    workers = {w.name: w for w in await client.read_workers_for_work_pool(work_pool)}
    orphans = []
    for run in runs:
        why = judge(run, workers, me=me, executing=executing, now=now)
        if why:
            orphans.append(Orphan(run.id, run.name, run.state.name if run.state else "?",
                                  (run.labels or {}).get(WORKER_LABEL), why))
    return orphans


async def reschedule_orphan(client: Any, orphan: Orphan, *,
                            still_orphaned: Callable[[Any], bool] | None = None) -> bool:
    """Set the orphaned run back to Scheduled (due now); False if it moved meanwhile."""
    run = await client.read_flow_run(orphan.flow_run_id)
    state = run.state
    if state is None or state.name != orphan.state or not (state.is_running()
                                                          or state.is_pending()):
        return False
    if (run.labels or {}).get(WORKER_LABEL) != orphan.worker:
        return False  # claimed by another worker a moment ago
    if still_orphaned is not None and not still_orphaned(run):
        return False
    await schedule_again(client, orphan.flow_run_id,
                         f"recovered by the Newsroom worker: {orphan.why}; scheduled again")
    return True


async def schedule_again(client: Any, flow_run_id: Any, message: str) -> None:
    """Set a run that no process executes any more back to Scheduled, due now.

    Its old process id goes too: Prefect cancels a Scheduled run without one at once
    (a Cancel in the UI), while one with an id stays "Cancelling" for a process that
    no longer exists."""
    from prefect.states import Scheduled

    await client.set_flow_run_state(
        flow_run_id, Scheduled(scheduled_time=datetime.now(UTC), message=message), force=True)
    # Prefect's REST API (PATCH /flow_runs/{id}); the client's update_flow_run skips a null.
    response = await client.request("PATCH", "/flow_runs/{id}", path_params={"id": flow_run_id},
                                    json={"infrastructure_pid": None})
    response.raise_for_status()


async def recover_orphaned_runs(client: Any, work_pool: str, *, me: str,
                                executing: Collection[UUID] = ()) -> list[Orphan]:
    """Find the pool's orphaned runs and schedule them again; the ones rescheduled."""
    recovered = []
    for orphan in await find_orphaned_runs(client, work_pool, me=me, executing=executing):
        try:
            if await reschedule_orphan(client, orphan):
                logger.warning("flow run %s (%s, %s) scheduled again: %s", orphan.flow_run_id,
                               orphan.name, orphan.state, orphan.why)
                recovered.append(orphan)
        except Exception as exc:  # noqa: BLE001 - one run must not stop the others
            logger.warning("could not reschedule orphaned flow run %s: %s",
                           orphan.flow_run_id, exc)
    return recovered
