"""Which campaign runs should exist: the catalog turned into a plan of dated runs.

Every active campaign that publishes on dates (not on demand) gets one run per occurrence —
a yearly campaign one per year, each with its own approval. A run starts when the
occurrence's approval should open: ``lead`` (a setting, default 7 days) before the
approval deadline, never in the past. The plan covers a horizon (default 60 days); a
yearly campaign's next date is always in it, however far away (27 January seen from
February), and so is any occurrence whose approval opens within the horizon.

The Prefect side (``newsroom/orchestration/scheduling.py``) compares this plan with the scheduled
runs of
the ``campaign`` deployment. Nothing here knows Prefect.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .approval import gate_deadline, step_deadline
from .catalog.catalog import Catalog
from .catalog.models import ApprovalPolicy, ApprovalStep, Campaign
from .catalog.schedule import Occurrence, next_occurrence, occurrence_on, occurrences
from .timeutil import BERLIN, Duration, before, format_local, parse_duration

DEFAULT_HORIZON = timedelta(days=60)
DEFAULT_LEAD = parse_duration("7d")
# A run whose start moved by less than this is not moved (clock noise, rounding).
TOLERANCE = timedelta(seconds=1)
TAG_PREFIXES = ("topic:", "dezernat:", "channel:", "kind:")


@dataclass(frozen=True)
class PlannedRun:
    """One campaign run as it should be scheduled."""

    campaign_id: str
    occurrence_date: date
    slots: tuple[tuple[datetime, tuple[str, ...]], ...]  # (local time, channels), in order
    deadline: datetime  # approval deadline, UTC
    opens_at: datetime  # when the approval should open, UTC (may lie in the past)
    start_at: datetime  # when the run starts: opens_at, or now when that has passed
    tags: tuple[str, ...]
    definition_hash: str

    @property
    def key(self) -> tuple[str, date]:
        return self.campaign_id, self.occurrence_date

    @property
    def name(self) -> str:
        """The flow run's name, as the campaign flow names itself."""
        return f"{self.campaign_id} {self.occurrence_date.isoformat()}"

    @property
    def parameters(self) -> dict[str, str]:
        return {"campaign_id": self.campaign_id,
                "occurrence_date": self.occurrence_date.isoformat()}

    @property
    def first_publish_at(self) -> datetime:
        return self.slots[0][0]

    @property
    def idempotency_key(self) -> str:
        """Stable for one definition and opening time: two syncs at once create one run."""
        return (f"plan:{self.campaign_id}:{self.occurrence_date.isoformat()}:"
                f"{self.definition_hash[:12]}:{int(self.opens_at.timestamp())}")

    def describe(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign_id,
            "date": self.occurrence_date.isoformat(),
            "slots": [f"{format_local(at)} {', '.join(channels)}" for at, channels in self.slots],
            "deadline": format_local(self.deadline),
            "starts": format_local(self.start_at),
        }

    def start_differs(self, scheduled: datetime | None, now: datetime) -> bool:
        """Whether a run scheduled at ``scheduled`` must move to match this plan.

        A run whose opening has passed starts "now"; one already due is left where it is
        rather than chased with every sync's "now"."""
        if scheduled is None:
            return True
        if self.opens_at <= now and scheduled <= now + TOLERANCE:
            return False
        return abs(scheduled - self.start_at) >= TOLERANCE


def planning_defaults() -> tuple[timedelta, Duration]:
    """(horizon, lead) from the settings."""
    from .settings import get_settings

    settings = get_settings()
    return timedelta(days=settings.schedule_horizon_days), parse_duration(settings.approval_lead)


def publication_run_start(first_publish_at: datetime, occurrence_id: int, *,
                          preroll: timedelta, spread: timedelta) -> datetime:
    """When the publication run of an occurrence approved well ahead starts: ``preroll``
    before its first post, and earlier by an offset in [0, ``spread``) fixed by the
    occurrence (its id's hash, so a repeated scheduling gives the same time).

    Many occurrences due at one second (the Europawahl call of the whole Magistrat on
    every channel, a busy morning) then start one after another over the spread instead
    of all at the pre-roll: starting a run costs the Prefect server and the worker about
    0.6-0.8 s of CPU on a 2-core machine, so 200 runs asked to start 45 s ahead were
    still starting after their second, and Prefect marked them Late. A run that started
    early waits in the worker's process (a coroutine) for its second.
    """
    if spread <= timedelta(0):
        return first_publish_at - preroll
    digest = hashlib.sha256(f"publication-run/{occurrence_id}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return first_publish_at - preroll - spread * fraction


def definition_hash(campaign: Campaign) -> str:
    data = json.dumps(campaign.model_dump(mode="json", by_alias=True), sort_keys=True,
                      ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def schedulable(campaign: Campaign) -> bool:
    """Campaigns published on dates; crisis templates (on demand only) are triggered."""
    return any(not slot.on_demand for slot in campaign.slots)


def is_yearly(campaign: Campaign) -> bool:
    return any(slot.yearly for slot in campaign.slots if not slot.on_demand)


def run_tags(campaign: Campaign, occurrence: Occurrence) -> tuple[str, ...]:
    """``topic:…``, ``dezernat:<portfolio or office>``, ``channel:…`` each, ``kind:…``."""
    requester = campaign.requested_by.portfolio or campaign.requested_by.office or ""
    channels = sorted({c for instant in occurrence.instants for c in instant.channels})
    return (f"topic:{campaign.topic}", f"dezernat:{requester}",
            *(f"channel:{name}" for name in channels), f"kind:{campaign.kind.value}")


def _opens_at(deadline: datetime, lead: Duration) -> datetime:
    # As every "before": 7d before 09:00 is 09:00 across DST (timeutil.before).
    return before(deadline, lead)


def planned_run(catalog: Catalog, occurrence: Occurrence, *, now: datetime,
                lead: Duration = DEFAULT_LEAD) -> PlannedRun:
    campaign = catalog.campaign(occurrence.campaign_id).campaign
    instants = sorted(occurrence.instants, key=lambda i: (i.at, i.slot_index))
    deadline = gate_deadline(catalog, campaign.id, occurrence.first_publish_at)
    # An approval chain opens the lead before its first step is due.
    opens = _opens_at(step_deadline(catalog, campaign.id, 0, occurrence.first_publish_at),
                      lead)
    return PlannedRun(
        campaign_id=campaign.id,
        occurrence_date=occurrence.date,
        slots=tuple((i.at.astimezone(BERLIN), i.channels) for i in instants),
        deadline=deadline,
        opens_at=opens,
        start_at=max(opens, now.astimezone(UTC)),
        tags=run_tags(campaign, occurrence),
        definition_hash=definition_hash(campaign),
    )


def planned_run_for(catalog: Catalog, campaign_id: str, day: date, *, now: datetime,
                    lead: Duration = DEFAULT_LEAD) -> PlannedRun | None:
    """The plan for one campaign on one date, or None when that occurrence does not exist
    (file removed, date changed, campaign now on demand only)."""
    source = catalog.campaigns.get(campaign_id)
    if source is None or not schedulable(source.campaign):
        return None
    occurrence = occurrence_on(source.campaign, day)
    if occurrence is None:
        return None
    return planned_run(catalog, occurrence, now=now, lead=lead)


def _campaign_runs(catalog: Catalog, campaign: Campaign, now: datetime, horizon: timedelta,
                   lead: Duration) -> list[PlannedRun]:
    limit = now + horizon
    policy = campaign.approval
    rules: list[ApprovalPolicy | ApprovalStep] = [policy, *policy.steps]
    relative = max(parse_duration(r.deadline_before or 0).longest for r in rules)
    window_end = limit + lead.longest + relative + timedelta(days=1)
    days = {o.date for o in occurrences(campaign, now, window_end)}
    upcoming = None
    if is_yearly(campaign) or (any(r.deadline for r in rules)
                               and _opens_at(step_deadline(catalog, campaign.id, 0, now),
                                             lead) <= limit):
        # The next date of a yearly campaign, however far; the one-off whose absolute
        # deadline opens its approval within the horizon. (Not for every campaign: a
        # weekly RRULE over five years costs seconds.)
        upcoming = next_occurrence(campaign, now)
        if upcoming is not None:
            days.add(upcoming.date)
    runs = []
    for day in sorted(days):
        full = occurrence_on(campaign, day)  # every slot of that day, also passed ones
        if full is None:
            continue
        run = planned_run(catalog, full, now=now, lead=lead)
        in_horizon = run.first_publish_at <= limit or run.opens_at <= limit
        if in_horizon or (upcoming is not None and day == upcoming.date and is_yearly(campaign)):
            runs.append(run)
    return runs


def plan_runs(catalog: Catalog, *, now: datetime | None = None,
              horizon: timedelta | None = None, lead: Duration | None = None
              ) -> list[PlannedRun]:
    """Every run that should be scheduled, ordered by start."""
    default_horizon, default_lead = planning_defaults()
    now = (now or datetime.now(UTC)).astimezone(UTC)
    horizon = default_horizon if horizon is None else horizon
    lead = default_lead if lead is None else lead
    runs: list[PlannedRun] = []
    for campaign_id in sorted(catalog.campaigns):
        campaign = catalog.campaign(campaign_id).campaign
        if schedulable(campaign):
            runs += _campaign_runs(catalog, campaign, now, horizon, lead)
    return sorted(runs, key=lambda r: (r.start_at, r.campaign_id, r.occurrence_date))


def next_runs(catalog: Catalog, campaign_id: str, *, now: datetime, count: int = 5,
              lead: Duration = DEFAULT_LEAD) -> list[PlannedRun]:
    """The next ``count`` runs of one campaign, however far ahead (a yearly calendar)."""
    campaign = catalog.campaign(campaign_id).campaign
    runs: list[PlannedRun] = []
    after = now
    while len(runs) < count:
        upcoming = next_occurrence(campaign, after)
        if upcoming is None:
            break
        full = occurrence_on(campaign, upcoming.date) or upcoming
        runs.append(planned_run(catalog, full, now=now, lead=lead))
        after = datetime(upcoming.date.year, upcoming.date.month, upcoming.date.day,
                         tzinfo=BERLIN) + timedelta(days=1)
    return runs
