"""Flow ``housekeeping``: one run a day that does Newsroom's periodic work every minute.

Each *pass* (every ``every_seconds``, 60 by default, on the minute):

- sends the approval reminders that are due (24 h and 2 h before the deadline, each once)
  and applies each campaign's timeout policy at its deadline (cancel, publish with the
  signatures so far when the quorum is met, or escalate to the office), then resumes the
  suspended campaign runs whose gate has settled — also those whose resume failed when
  the decision was made (Prefect unreachable for a moment);
- sends the office the alerts still owed: a publication left "unknown" by a worker killed
  before it could send its alert (``newsroom.publishing.send_owed_alerts``);
- sweeps the office's requests: starts the run of a request stored while Prefect was
  unreachable, resumes one whose decision was stored while resuming failed
  (``newsroom.orchestration.request_runs.sweep_requests``).

Between passes, every 10 s, it looks at the catalog folder (and the stack's overlay): at
the start and after each edit that validates it starts a ``catalog-sync`` run, which
records the catalog and schedules its campaign runs (:class:`CatalogChanges`). An edit
that does not validate is never synced or scheduled; the office gets one mail naming the
broken file (``newsroom.runtime.CatalogWatch``), and the fix is synced when it validates.

Why one long run and not a run per pass: a Prefect flow run costs a round of API calls, a
row in the run list and three to five console lines (see ../shared/PREFECT-NOTES.md). At
one run per minute that was about 2,100 housekeeping runs a day. Now there is one a day
(plus one after each restart of a failed run): it starts at once when the Newsroom worker
finds none (:func:`ensure_housekeeping_run`, at every worker heartbeat), runs until the
next midnight in Berlin and, before it ends, schedules its successor for that midnight.

In the Prefect UI the run shows its last pass in the artifact ``housekeeping`` (updated in
place) and logs a line only for a pass that changed something: an idle day is quiet.

The guarantees of a run per minute still hold:

- **Exactly one at a time.** A run that starts while an older one is pending or running
  ends at once (Completed, "… is active"); the worker creates a run only when none is
  scheduled, pending, running or paused, with an idempotency key, so two workers create one.
- **A stop hands it back.** When the worker stops, the run goes back to Scheduled (not
  Crashed, no alert) and the next worker continues it (newsroom/orchestration/worker.py); a killed
  worker's
  run is recovered like any other (newsroom/orchestration/recovery.py).
- **A failure still alerts.** A pass that raises fails the run — the office's alert
  automation mails about it, as it did about a failed run per minute — and the worker starts
  a new run at its next heartbeat (30 s).

A broken campaign file does not stop a pass: the runtime's catalog is then the last one
that validated (``newsroom.catalog.keeper``), and the pass says so in the log.

On a stock ``process`` pool the run holds one process all day (about 90 MB), and nothing
but its own successor starts the next one: start the first with ``prefect deployment run
housekeeping/housekeeping``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.states import Completed

from newsroom.orchestration.housekeeping_run import FLOW_NAME
from newsroom.timeutil import BERLIN, format_local, localize

logger = logging.getLogger("newsroom.housekeeping")

ARTIFACT_KEY = "housekeeping"
PASS_SECONDS = 60.0
# How often the catalog folder is looked at between passes: an edit is synced and
# scheduled within this long (plus the catalog-sync run's few seconds).
CATALOG_CHECK_SECONDS = 10.0
CATALOG_SYNC_DEPLOYMENT = "catalog-sync/catalog-sync"


def next_midnight(moment: datetime) -> datetime:
    """The first midnight in Berlin after ``moment`` (aware, UTC)."""
    day = moment.astimezone(BERLIN).date() + timedelta(days=1)
    return localize(datetime.combine(day, time())).astimezone(UTC)


@dataclass
class HousekeepingPass:
    """What one pass did."""

    at: datetime
    changed: list[str] = field(default_factory=list)  # gates settled or escalated
    resumed: list[str] = field(default_factory=list)  # campaign runs resumed
    owed_alerts: list[int] = field(default_factory=list)  # publications alerted late
    requests_started: list[int] = field(default_factory=list)
    requests_resumed: list[int] = field(default_factory=list)
    recalls: list[str] = field(default_factory=list)  # recalls carried on: "channel status"
    catalog_broken: str | None = None

    @property
    def did_something(self) -> bool:
        return bool(self.changed or self.resumed or self.owed_alerts
                    or self.requests_started or self.requests_resumed or self.recalls)

    def summary(self) -> str:
        parts = [f"{len(self.changed)} gate(s) changed", f"{len(self.resumed)} run(s) "
                 f"resumed", f"{len(self.owed_alerts)} owed alert(s) sent",
                 f"requests started {self.requests_started or '–'}, resumed "
                 f"{self.requests_resumed or '–'}",
                 f"recalls carried on {self.recalls or '–'}"]
        return ", ".join(parts)


async def housekeeping_pass(runtime: Any = None, log: Any = logger) -> HousekeepingPass:
    """One pass: reminders and deadlines, resumes, owed alerts, unfinished recalls, the
    request sweep."""
    from newsroom import approval
    from newsroom.orchestration.gate import resume_for_gate, resume_waiting_runs
    from newsroom.orchestration.request_runs import sweep_requests
    from newsroom.publishing import send_owed_alerts
    from newsroom.recall import finish_recalls
    from newsroom.runtime import get_runtime

    runtime = runtime or get_runtime()
    done = HousekeepingPass(at=datetime.now(UTC))
    broken = await asyncio.to_thread(lambda: runtime.catalog_broken)
    if broken is not None:
        done.catalog_broken = broken.summary()
        log.warning("the catalog does not validate; working with the last catalog that "
                    "did: %s", done.catalog_broken)
    changed = await asyncio.to_thread(
        approval.process_deadlines, runtime.engine, runtime.catalog,
        notifier=runtime.notifier, signer=runtime.signer, base_url=runtime.base_url)
    for status in changed:
        done.changed.append(f"{status.campaign_id} {status.occurrence_date}: "
                            f"{status.outcome.value}")
        log.info("%s %s: gate %s (%s)", status.campaign_id, status.occurrence_date,
                 status.outcome.value, status.reason)
        await resume_for_gate(status, runtime)
    done.resumed = await resume_waiting_runs(runtime)
    done.owed_alerts = await asyncio.to_thread(send_owed_alerts, runtime.engine,
                                               runtime.catalog.accounts, runtime.notifier)
    if done.owed_alerts:
        log.warning("alerted the office about %d unknown publication(s) whose alert was "
                    "lost: %s", len(done.owed_alerts), done.owed_alerts)
    done.recalls = [f"{r.channel} {r.status}" for r in await finish_recalls(runtime)]
    if done.recalls:
        log.info("recalls carried on: %s", done.recalls)
    swept = await sweep_requests(runtime)
    done.requests_started, done.requests_resumed = swept["started"], swept["resumed"]
    if done.resumed or done.requests_started or done.requests_resumed:
        log.info("resumed runs %s; requests started %s, resumed %s", done.resumed,
                 done.requests_started, done.requests_resumed)
    return done


class CatalogChanges:
    """Starts a ``catalog-sync`` run when the catalog that validates is a new one: at the
    housekeeping run's start, and after every edit of the catalog folder (or its overlay)
    that validates. An edit that does not validate starts nothing — nothing of it is
    scheduled; the runtime has told the office which file is broken — and the fix that
    validates again starts the sync."""

    def __init__(self, client: Any, runtime: Any = None):
        self.client = client
        self.runtime = runtime
        self._synced: Any = None  # the catalog object last synced

    async def check(self, log: Any = logger) -> UUID | None:
        """The catalog-sync run started, or None (nothing new, or no such deployment)."""
        import httpx
        from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

        from newsroom.runtime import get_runtime

        runtime = self.runtime or get_runtime()
        catalog, broken = await asyncio.to_thread(
            lambda: (runtime.catalog, runtime.catalog_broken))
        if catalog is self._synced or broken is not None:
            return None
        try:
            deployment = await self.client.read_deployment_by_name(CATALOG_SYNC_DEPLOYMENT)
            run = await self.client.create_flow_run_from_deployment(deployment.id)
        except ObjectNotFound:
            self._synced = catalog
            return None
        except (httpx.HTTPError, PrefectHTTPStatusError) as exc:  # tried again in 10 s
            log.warning("the catalog changed; starting catalog-sync failed (%s), trying "
                        "again", exc)
            return None
        first = self._synced is None
        self._synced = catalog
        log.info("%s (%d campaigns): catalog-sync run %s validates, records and schedules it",
                 "the catalog at start" if first else "the catalog changed",
                 len(catalog.campaigns), run.name)
        return run.id


def _markdown(last: HousekeepingPass, passes: int, busy: int, until: datetime) -> str:
    lines = ["# Housekeeping", "",
             f"Last pass: **{format_local(last.at)}** (pass {passes} of this run, "
             f"{busy} of them changed something); this run ends at {format_local(until)}.",
             "", "| | |", "|---|---|",
             f"| gates settled or escalated | {', '.join(last.changed) or '–'} |",
             f"| campaign runs resumed | {', '.join(last.resumed) or '–'} |",
             f"| owed alerts sent (publication ids) | "
             f"{', '.join(map(str, last.owed_alerts)) or '–'} |",
             f"| requests started | {', '.join(map(str, last.requests_started)) or '–'} |",
             f"| requests resumed | {', '.join(map(str, last.requests_resumed)) or '–'} |"]
    if last.catalog_broken:
        lines += ["", f"The catalog does not validate (working with the last one that did): "
                      f"{last.catalog_broken}"]
    return "\n".join(lines)


async def _older_active_run(client: Any, me: Any) -> Any:
    """A pending or running housekeeping run of the same deployment created before ``me``."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
        deployment_id=FlowRunFilterDeploymentId(any_=[me.deployment_id]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(
            any_=[StateType.PENDING, StateType.RUNNING]))))
    older = [run for run in runs if run.id != me.id
             and (run.created, str(run.id)) < (me.created, str(me.id))]
    return min(older, key=lambda run: (run.created, str(run.id))) if older else None


@flow(name=FLOW_NAME, flow_run_name="housekeeping", persist_result=False)
async def housekeeping(every_seconds: float = PASS_SECONDS, until: datetime | None = None):
    """Passes every ``every_seconds`` until ``until`` (default: the next midnight in
    Berlin), then schedule the successor for that moment and end."""
    from prefect.artifacts import acreate_markdown_artifact
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactUpdate
    from prefect.context import FlowRunContext

    log = get_run_logger()
    context = FlowRunContext.get()
    assert context is not None and context.flow_run is not None  # in this flow's own run
    me = context.flow_run
    start = me.expected_start_time
    if start is not None and start > datetime.now(UTC):  # prefetched: wait for our time
        await asyncio.sleep((start - datetime.now(UTC)).total_seconds())
    started = datetime.now(UTC)
    until = until or next_midnight(started)
    async with get_client() as client:
        if me.deployment_id is not None:
            older = await _older_active_run(client, me)
            if older is not None:
                message = f"housekeeping run {older.name!r} ({older.id}) is active"
                log.info("%s: this one ends", message)
                return Completed(message=message)
        log.info("housekeeping every %g s until %s", every_seconds, format_local(until))
        artifact: UUID | None = None
        passes = busy = 0
        next_pass = started
        changes = CatalogChanges(client)
        while True:
            # Until the next pass (after the last one: until the end), the catalog is
            # looked at every CATALOG_CHECK_SECONDS.
            target = min(next_pass, until)
            await changes.check(log)
            while (left := (target - datetime.now(UTC)).total_seconds()) > 0:
                await asyncio.sleep(min(left, CATALOG_CHECK_SECONDS))
                if left > CATALOG_CHECK_SECONDS:
                    await changes.check(log)
            if next_pass >= until:
                break
            done = await housekeeping_pass(log=log)
            passes += 1
            busy += done.did_something
            markdown = _markdown(done, passes, busy, until)
            if artifact is None:
                artifact = await acreate_markdown_artifact(
                    markdown, key=ARTIFACT_KEY, description="Newsroom housekeeping: last pass")
            else:
                await client.update_artifact(artifact, ArtifactUpdate(data=markdown))
            next_pass = started + timedelta(seconds=every_seconds * passes)
        if me.deployment_id is not None:
            successor = await _schedule_successor(client, me.deployment_id, every_seconds,
                                                  until)
            log.info("%d passes, %d changed something; the next run (%s) starts at %s",
                     passes, busy, successor, format_local(until))
    return Completed(message=f"{passes} passes, {busy} changed something")


async def _schedule_successor(client: Any, deployment_id: UUID, every_seconds: float,
                              at: datetime) -> UUID:
    from prefect.states import Scheduled

    run = await client.create_flow_run_from_deployment(
        deployment_id, parameters={"every_seconds": every_seconds},
        state=Scheduled(scheduled_time=at),
        idempotency_key=f"newsroom-housekeeping-{deployment_id}-{at.isoformat()}")
    return run.id
