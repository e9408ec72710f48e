"""Schedules from the catalog: the plan of ``newsroom/planning.py`` as Prefect flow runs.

:func:`sync_schedules` makes the *scheduled* runs of the ``campaign`` deployment match
the catalog, so the Prefect UI shows what is coming:

- a planned occurrence without a run gets one (state Scheduled at the time its approval
  opens, name "<campaign> <date>", tags ``topic:``, ``dezernat:``, ``channel:``,
  ``kind:`` and ``planned``);
- a run whose campaign file changed is moved (new time, name, tags — or, when a date
  moved, new parameters: the same run now stands for the new date);
- a run whose campaign or occurrence disappeared (file removed, date changed) is deleted.

Only runs this sync created (tag ``planned``) that have not started (state Scheduled or
Late, never run) are changed. A run that started — Pending, Running, Suspended/Paused,
Completed, Cancelled, Failed, a resumed or retrying run — is never touched, and its
occurrence gets no second run (an admin who cancelled this year's run has decided). Runs
made by hand or by the campaign flow itself (``publish`` runs) are left alone too.

Called by the ``catalog-sync`` flow after the store sync, and by ``newsroom schedule``.
Each change re-reads the run first; a run a worker claims in the same instant can still
slip through (Prefect has no compare-and-set for states), which costs at most one moved
or deleted run that was about to start — the next sync recreates it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterExpectedStartTime,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound
from prefect.states import Scheduled

from newsroom.catalog.catalog import Catalog
from newsroom.planning import (
    TAG_PREFIXES,
    PlannedRun,
    plan_runs,
    planned_run_for,
    planning_defaults,
)
from newsroom.timeutil import Duration

logger = logging.getLogger("newsroom.scheduling")

CAMPAIGN_DEPLOYMENT = "campaign/campaign"
PLANNED_TAG = "planned"
NOT_STARTED = {"Scheduled", "Late"}  # not "AwaitingRetry", "Resuming": those ran already
# Runs older than this are not read (their occurrences are long past).
LOOKBACK = timedelta(days=400)
PAGE = 200
CREATE_CONCURRENCY = 4


@dataclass
class Change:
    action: str  # created, moved, removed, unchanged, kept
    name: str  # "<campaign> <date>"
    run_id: str | None = None
    starts: datetime | None = None
    detail: str = ""


@dataclass
class ScheduleSummary:
    created: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # a started run exists: left alone
    changes: list[Change] = field(default_factory=list)
    plan: list[PlannedRun] = field(default_factory=list)
    dry_run: bool = False
    skipped: str | None = None  # why nothing was compared (no campaign deployment)
    listener: Callable[[Change], None] | None = field(default=None, repr=False, compare=False)

    def add(self, change: Change) -> None:
        self.changes.append(change)
        getattr(self, change.action).append(change.name)
        if self.listener is not None:
            self.listener(change)

    def counts(self) -> dict[str, int]:
        return {k: len(getattr(self, k))
                for k in ("created", "moved", "removed", "unchanged", "kept")}

    def as_dict(self) -> dict[str, Any]:
        return {k: sorted(getattr(self, k))
                for k in ("created", "moved", "removed", "unchanged", "kept")} | {
            "dry_run": self.dry_run, "skipped": self.skipped}


def _key_of(run: FlowRun) -> tuple[str, date] | None:
    params = run.parameters or {}
    try:
        day = params["occurrence_date"]
        day = day if isinstance(day, date) else date.fromisoformat(str(day))
        return str(params["campaign_id"]), day
    except (KeyError, ValueError, TypeError):
        return None


def is_pending_planned(run: FlowRun) -> bool:
    """A run this sync may change: created by it and not started."""
    state = run.state
    tags = run.tags or []
    return (PLANNED_TAG in tags and "publish" not in tags and state is not None
            and state.type == StateType.SCHEDULED and state.name in NOT_STARTED
            and not run.run_count and run.start_time is None)


def _scheduled_time(run: FlowRun) -> datetime | None:
    state = run.state
    when = (state.state_details.scheduled_time if state is not None else None) \
        or run.next_scheduled_start_time or run.expected_start_time
    return when.astimezone(UTC) if when is not None else None


def _plan_tags(tags: list[str] | None) -> set[str]:
    return {t for t in tags or [] if t == PLANNED_TAG or t.startswith(TAG_PREFIXES)}


def _wanted_tags(run: FlowRun, plan: PlannedRun) -> list[str] | None:
    """The run's new tags, or None when they are right already."""
    wanted = {PLANNED_TAG, *plan.tags}
    if _plan_tags(run.tags) == wanted:
        return None
    others = [t for t in run.tags or [] if t not in _plan_tags(run.tags)]
    return others + [PLANNED_TAG, *plan.tags]


async def _campaign_runs(client: PrefectClient, deployment_id: UUID, now: datetime
                         ) -> list[FlowRun]:
    runs: list[FlowRun] = []
    flow_filter = FlowRunFilter(
        deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
        # after_ is typed as Prefect's DateTime (pendulum on Python 3.11); its pydantic
        # validation takes any aware datetime.
        expected_start_time=FlowRunFilterExpectedStartTime(
            after_=now - LOOKBACK))  # type: ignore[arg-type]
    offset = 0
    while True:
        page = await client.read_flow_runs(flow_run_filter=flow_filter, sort=FlowRunSort.ID_DESC,
                                           limit=PAGE, offset=offset)
        runs += page
        if len(page) < PAGE:
            return runs
        offset += PAGE


async def _still_pending(client: PrefectClient, run: FlowRun) -> FlowRun | None:
    try:
        current = await client.read_flow_run(run.id)
    except ObjectNotFound:
        return None
    return current if is_pending_planned(current) else None


async def _move(client: PrefectClient, run: FlowRun, plan: PlannedRun, now: datetime,
                summary: ScheduleSummary, dry_run: bool) -> None:
    reasons = []
    new_params = _key_of(run) != plan.key
    if new_params:
        old = _key_of(run)
        reasons.append(f"date {old[1] if old else '?'} -> {plan.occurrence_date}")
    time_moves = plan.start_differs(_scheduled_time(run), now)
    if time_moves:
        before = _scheduled_time(run)
        reasons.append(f"start {before.isoformat() if before else '?'} -> "
                       f"{plan.start_at.isoformat()}")
    tags = _wanted_tags(run, plan)
    if tags is not None:
        reasons.append("tags")
    rename = run.name != plan.name
    if rename and not new_params:
        reasons.append("name")
    if not reasons:
        summary.add(Change("unchanged", plan.name, str(run.id), _scheduled_time(run)))
        return
    if not dry_run:
        if await _still_pending(client, run) is None:
            summary.add(Change("kept", plan.name, str(run.id), None, "started meanwhile"))
            return
        if new_params or tags is not None or rename:
            await client.update_flow_run(
                run.id, parameters=plan.parameters if new_params else None,
                name=plan.name if rename else None, tags=tags)
        if time_moves:
            await client.set_flow_run_state(run.id, Scheduled(scheduled_time=plan.start_at),
                                            force=True)
    summary.add(Change("moved", plan.name, str(run.id), plan.start_at, "; ".join(reasons)))


async def _create(client: PrefectClient, deployment_id: UUID, plan: PlannedRun,
                  summary: ScheduleSummary, dry_run: bool) -> None:
    if dry_run:
        summary.add(Change("created", plan.name, None, plan.start_at))
        return
    key = plan.idempotency_key
    for _ in range(2):
        run = await client.create_flow_run_from_deployment(
            deployment_id, parameters=plan.parameters, name=plan.name,
            state=Scheduled(scheduled_time=plan.start_at), tags=[PLANNED_TAG, *plan.tags],
            idempotency_key=key)
        if _key_of(run) == plan.key and is_pending_planned(run):
            summary.add(Change("created", plan.name, str(run.id), _scheduled_time(run)))
            return
        # The key named an older run (since moved to another date, or started): a new one.
        key = f"{plan.idempotency_key}:{uuid4().hex[:8]}"
    raise RuntimeError(f"could not create the run {plan.name}")


async def _delete(client: PrefectClient, run: FlowRun, summary: ScheduleSummary,
                  dry_run: bool, why: str) -> None:
    name = run.name
    if not dry_run:
        if await _still_pending(client, run) is None:
            summary.add(Change("kept", name, str(run.id), None, "started meanwhile"))
            return
        try:
            await client.delete_flow_run(run.id)
        except ObjectNotFound:
            pass
    summary.add(Change("removed", name, str(run.id), _scheduled_time(run), why))


async def sync_schedules(catalog: Catalog, *, now: datetime | None = None,
                         horizon: timedelta | None = None, lead: Duration | None = None,
                         dry_run: bool = False, client: PrefectClient | None = None,
                         deployment: str = CAMPAIGN_DEPLOYMENT,
                         on_change: Callable[[Change], None] | None = None) -> ScheduleSummary:
    """Make the scheduled runs of the campaign deployment match the catalog's plan;
    ``on_change`` hears of each change as it is made (progress)."""
    default_horizon, default_lead = planning_defaults()
    horizon = default_horizon if horizon is None else horizon
    lead = default_lead if lead is None else lead
    now = (now or datetime.now(UTC)).astimezone(UTC)
    if client is None:
        async with get_client() as own:
            return await sync_schedules(catalog, now=now, horizon=horizon, lead=lead,
                                        dry_run=dry_run, client=own, deployment=deployment,
                                        on_change=on_change)

    plan = plan_runs(catalog, now=now, horizon=horizon, lead=lead)
    summary = ScheduleSummary(plan=plan, dry_run=dry_run, listener=on_change)
    try:
        deployment_id = (await client.read_deployment_by_name(deployment)).id
    except ObjectNotFound:
        summary.skipped = (f"no deployment {deployment!r} on the Prefect server: apply the "
                           "deployments first (newsroom up, or prefect deploy --all)")
        logger.warning("%s", summary.skipped)
        return summary

    desired = {p.key: p for p in plan}
    pending: dict[tuple[str, date], list[FlowRun]] = defaultdict(list)
    started: set[tuple[str, date]] = set()
    for run in await _campaign_runs(client, deployment_id, now):
        key = _key_of(run)
        if key is None:
            continue
        if is_pending_planned(run):
            pending[key].append(run)
        else:
            started.add(key)

    handled: set[tuple[str, date]] = set()
    orphans: dict[str, list[FlowRun]] = defaultdict(list)
    for key, runs in sorted(pending.items()):
        runs.sort(key=lambda r: r.created or now)
        for extra in runs[1:]:  # two syncs raced: one run per occurrence
            await _delete(client, extra, summary, dry_run, "duplicate")
        run = runs[0]
        wanted = desired.get(key) or planned_run_for(catalog, key[0], key[1], now=now,
                                                     lead=lead)
        if wanted is None:
            orphans[key[0]].append(run)
            continue
        handled.add(key)
        await _move(client, run, wanted, now, summary, dry_run)

    to_create = [p for p in plan if p.key not in handled and p.key not in started]
    for key in sorted((started & set(desired)) - handled):
        summary.add(Change("kept", desired[key].name, None, None, "a run has started"))
    by_campaign: dict[str, list[PlannedRun]] = defaultdict(list)
    for p in sorted(to_create, key=lambda p: p.occurrence_date):
        by_campaign[p.campaign_id].append(p)
    for campaign_id, runs in sorted(orphans.items()):
        # A date moved in the file: the run of the old date now stands for the new one.
        runs.sort(key=lambda r: _key_of(r)[1])  # type: ignore[index]
        fresh = by_campaign.get(campaign_id, [])
        for run in runs:
            if fresh:
                target = fresh.pop(0)
                await _move(client, run, target, now, summary, dry_run)
            else:
                await _delete(client, run, summary, dry_run, "occurrence no longer in the "
                              "catalog")
    # Creating is the slow part (~140 ms a run on SQLite): a few at a time.
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def create(p: PlannedRun) -> None:
        async with gate:
            await _create(client, deployment_id, p, summary, dry_run)

    await asyncio.gather(*(create(p) for runs in by_campaign.values() for p in runs))
    summary.created.sort()
    logger.info("schedules%s: %s", " (dry run)" if dry_run else "", summary.counts())
    return summary


def summary_markdown(summary: ScheduleSummary) -> str:
    """A Markdown table of the changes (catalog-sync's artifact)."""
    from newsroom.markdown import md_text

    if summary.skipped:
        return f"Schedules not synced: {md_text(summary.skipped)}\n"
    from newsroom.timeutil import format_local

    lines = ["| run | change | starts | detail |", "|---|---|---|---|"]
    for change in summary.changes:
        starts = format_local(change.starts) if change.starts else ""
        lines.append(f"| {md_text(change.name)} | {md_text(change.action)} | {md_text(starts)} "
                     f"| {md_text(change.detail)} |")
    return "\n".join(lines) + "\n"
