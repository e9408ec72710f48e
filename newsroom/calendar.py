"""The editorial calendar: every scheduled post across campaigns, with holidays and clashes,
and every approval deadline.

An entry is one campaign publishing at one instant (its slots at the same time merged).
Entries on a public holiday in Hessen carry the holiday's German name; two posts on the
same channel within :data:`CONFLICT_WINDOW` of each other are flagged on both entries.
A :class:`DeadlineEntry` is the approval deadline of one occurrence ("Freigabefrist"), as
the gate computes it (:func:`newsroom.approval.gate_deadline`); in iCalendar it is an
event of its own, so a calendar shows it on its day and can remind of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import holidays
import icalendar

from .approval import gate_deadline
from .catalog.catalog import Catalog
from .catalog.models import Campaign
from .catalog.schedule import occurrence_on, occurrences, slot_instants
from .timeutil import BERLIN, format_local, format_local_clock, parse_duration

CONFLICT_WINDOW = timedelta(minutes=30)
EVENT_DURATION = timedelta(minutes=15)
UID_DOMAIN = "newsroom.darmstadt.example.org"
PRODID = "-//Wissenschaftsstadt Darmstadt//Newsroom//DE"
TZID = "Europe/Berlin"


@dataclass
class CalendarEntry:
    at: datetime  # aware, Europe/Berlin
    campaign_id: str
    title: str
    kind: str
    channels: tuple[str, ...]
    occurrence_date: date
    holiday: str | None = None
    conflicts: list[str] = field(default_factory=list)
    approval_deadline: datetime | None = None  # of its occurrence; None: pre-approved

    @property
    def uid(self) -> str:
        return f"{self.campaign_id}-{self.at.isoformat(timespec='minutes')}@{UID_DOMAIN}"


@dataclass(frozen=True)
class DeadlineEntry:
    """The approval deadline of one occurrence."""

    at: datetime  # UTC, as the gate keeps it
    campaign_id: str
    title: str
    occurrence_date: date
    first_publish_at: datetime

    @property
    def uid(self) -> str:
        return (f"{self.campaign_id}-{self.occurrence_date.isoformat()}-freigabefrist"
                f"@{UID_DOMAIN}")


def hessen_holidays(years: range | list[int]) -> holidays.HolidayBase:
    """Public holidays in Hessen, with German names."""
    try:
        return holidays.country_holidays("DE", subdiv="HE", years=years, language="de")
    except (TypeError, NotImplementedError):  # an old `holidays` without translations
        return holidays.country_holidays("DE", subdiv="HE", years=years)


def _entries_between(catalog: Catalog, start: datetime, end: datetime) -> list[CalendarEntry]:
    entries: list[CalendarEntry] = []
    for source in catalog.campaigns.values():
        campaign = source.campaign
        merged: dict[datetime, CalendarEntry] = {}
        for instant in slot_instants(campaign, start, end):
            entry = merged.get(instant.at)
            if entry is None:
                merged[instant.at] = CalendarEntry(
                    at=instant.at,
                    campaign_id=campaign.id,
                    title=campaign.title,
                    kind=campaign.kind.value,
                    channels=tuple(dict.fromkeys(instant.channels)),
                    occurrence_date=instant.at.date(),
                )
                continue
            for channel in instant.channels:
                if channel in entry.channels:
                    entry.conflicts.append(
                        f"{channel}: listed twice by {campaign.id!r} at "
                        f"{format_local_clock(instant.at)}"
                    )
                else:
                    entry.channels += (channel,)
        entries.extend(merged.values())
    entries.sort(key=_sort_key)
    return entries


def _sort_key(entry: CalendarEntry) -> tuple[datetime, str]:
    return entry.at.astimezone(UTC), entry.campaign_id


def _flag_conflicts(entries: list[CalendarEntry]) -> None:
    """Tell each entry about other posts on its channels within the conflict window."""
    by_channel: dict[str, list[CalendarEntry]] = {}
    for entry in entries:  # sorted by time
        for channel in entry.channels:
            by_channel.setdefault(channel, []).append(entry)
    for channel, posts in by_channel.items():
        for i, entry in enumerate(posts):
            here = entry.at.astimezone(UTC)
            for other in posts[i + 1 :]:
                if other.at.astimezone(UTC) - here > CONFLICT_WINDOW:
                    break
                entry.conflicts.append(_conflict_message(channel, other))
                other.conflicts.append(_conflict_message(channel, entry))


def _conflict_message(channel: str, other: CalendarEntry) -> str:
    minutes = int(CONFLICT_WINDOW.total_seconds() // 60)
    when = format_local_clock(other.at)
    return f"{channel}: also {other.campaign_id!r} at {when} (within {minutes} min)"


def calendar_entries(catalog: Catalog, start: date, end: date) -> list[CalendarEntry]:
    """Scheduled posts from ``start`` to ``end`` (both inclusive, local dates), by time.

    On-demand (crisis) slots have no date and do not appear.
    """
    if end < start:
        raise ValueError(f"the end {end.isoformat()} is before the start {start.isoformat()}")
    first = datetime(start.year, start.month, start.day, tzinfo=BERLIN)
    after = end + timedelta(days=1)
    last = datetime(after.year, after.month, after.day, tzinfo=BERLIN)
    # Look a little beyond the range so clashes with posts just outside it show too.
    around = _entries_between(catalog, first - CONFLICT_WINDOW, last + CONFLICT_WINDOW)
    _flag_conflicts(around)
    entries = [e for e in around if start <= e.at.astimezone(BERLIN).date() <= end]
    days = hessen_holidays(range(start.year, end.year + 1))
    for entry in entries:
        entry.holiday = days.get(entry.at.astimezone(BERLIN).date())
        entry.approval_deadline = _deadline_of(catalog, entry.campaign_id, entry.occurrence_date)
    return entries


def _deadline_of(catalog: Catalog, campaign_id: str, day: date) -> datetime | None:
    campaign = catalog.campaign(campaign_id).campaign
    occurrence = occurrence_on(campaign, day)
    if campaign.approval.pre_approved or occurrence is None:
        return None
    return gate_deadline(catalog, campaign_id, occurrence.first_publish_at)


def _deadline_search_window(campaign: Campaign, first: datetime, last: datetime
                            ) -> tuple[datetime, datetime]:
    """Where the first publications of occurrences with a deadline in [first, last) lie."""
    policy = campaign.approval
    if policy.deadline_before:
        return first, last + parse_duration(policy.deadline_before).longest
    # An absolute deadline serves one-off slots only (validation): any time after it.
    return first, last + timedelta(days=366 * 10)


def deadline_entries(catalog: Catalog, start: date, end: date) -> list[DeadlineEntry]:
    """Approval deadlines from ``start`` to ``end`` (both inclusive, local dates), by time.

    Pre-approved and on-demand campaigns have none.
    """
    if end < start:
        raise ValueError(f"the end {end.isoformat()} is before the start {start.isoformat()}")
    first = datetime(start.year, start.month, start.day, tzinfo=BERLIN)
    after = end + timedelta(days=1)
    last = datetime(after.year, after.month, after.day, tzinfo=BERLIN)
    found: list[DeadlineEntry] = []
    for campaign_id in sorted(catalog.campaigns):
        campaign = catalog.campaign(campaign_id).campaign
        if campaign.approval.pre_approved:
            continue
        for occurrence in occurrences(campaign, *_deadline_search_window(campaign, first, last)):
            full = occurrence_on(campaign, occurrence.date) or occurrence
            deadline = gate_deadline(catalog, campaign_id, full.first_publish_at)
            if first <= deadline < last:
                found.append(DeadlineEntry(deadline, campaign_id, campaign.title, full.date,
                                           full.first_publish_at))
    return sorted(found, key=lambda d: (d.at, d.campaign_id))


# --- text -----------------------------------------------------------------------------


def format_calendar(entries: list[CalendarEntry],
                    deadlines: list[DeadlineEntry] | tuple[DeadlineEntry, ...] = ()) -> str:
    """A table: date, time, campaign, channels, holiday; clashes below their entry; each
    approval deadline a row of its own, in time order with the posts."""
    if not entries and not deadlines:
        return "No scheduled posts in this period."
    rows: list[tuple[datetime, tuple[str, ...], list[str]]] = []
    for entry in entries:
        local = entry.at.astimezone(BERLIN)
        cells: tuple[str, ...] = (
            local.strftime("%a %Y-%m-%d"),
            format_local_clock(local),
            entry.campaign_id,
            ", ".join(entry.channels),
            f"🎌 {entry.holiday}" if entry.holiday else "",
        )
        rows.append((local, cells, [f"⚠ {c}" for c in entry.conflicts]))
    for deadline in deadlines:
        local = deadline.at.astimezone(BERLIN)
        cells = (
            local.strftime("%a %Y-%m-%d"),
            format_local_clock(local),
            deadline.campaign_id,
            f"⏳ approval deadline (posts from {format_local(deadline.first_publish_at)})",
            "",
        )
        rows.append((local, cells, []))
    rows.sort(key=lambda row: row[0].astimezone(UTC))  # stable: posts before a deadline
    header: tuple[str, ...] = ("Date", "Time", "Campaign", "Channels", "Holiday (Hessen)")
    widths = [max(len(r[i]) for r in [header, *(c for _, c, _ in rows)])
              for i in range(len(header) - 1)]

    def line(cells: tuple[str, ...]) -> str:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])]
        return "  ".join([*padded, cells[-1]]).rstrip()

    out = [line(header), "  ".join("─" * w for w in widths) + "  " + "─" * len(header[-1])]
    indent = " " * (widths[0] + 2)
    for _, cells, notes in rows:
        out.append(line(cells))
        out.extend(f"{indent}{note}" for note in notes)
    clashes = sum(1 for e in entries if e.conflicts)
    on_holidays = sum(1 for e in entries if e.holiday)
    summary = f"{len(entries)} posting time{'s' if len(entries) != 1 else ''}"
    if on_holidays:
        summary += f", {on_holidays} on a public holiday"
    if clashes:
        summary += f", ⚠ {clashes} with clashes (same channel within 30 min)"
    if deadlines:
        summary += f", {len(deadlines)} approval deadline{'s' if len(deadlines) != 1 else ''}"
    out += ["", summary]
    return "\n".join(out)


# --- iCalendar ------------------------------------------------------------------------


def _description(entry: CalendarEntry) -> str:
    lines = [
        f"Campaign: {entry.campaign_id}",
        f"Kind: {entry.kind}",
        f"Channels: {', '.join(entry.channels)}",
        f"Occurrence: {entry.occurrence_date.isoformat()}",
    ]
    if entry.approval_deadline is not None:
        lines.append(f"Approval deadline: {format_local(entry.approval_deadline)}")
    if entry.holiday:
        lines.append(f"Holiday (Hessen): {entry.holiday}")
    for conflict in entry.conflicts:
        lines.append(f"Conflict: {conflict}")
    return "\n".join(lines)


def _deadline_event(deadline: DeadlineEntry, stamp: datetime) -> icalendar.Event:
    # An event of its own at the deadline (zero length, an alarm a day before): what a
    # calendar user looks for; the summary in German, as the approvers say it.
    event = icalendar.Event()
    event.add("uid", deadline.uid)
    event.add("dtstamp", stamp)
    event.add("dtstart", deadline.at.astimezone(BERLIN))
    event.add("duration", timedelta(0))
    event.add("summary", f"Freigabefrist: {deadline.title}")
    event.add("description", "\n".join([
        f"Campaign: {deadline.campaign_id}",
        f"Occurrence: {deadline.occurrence_date.isoformat()}",
        f"Approval deadline: {format_local(deadline.at)}",
        f"First post: {format_local(deadline.first_publish_at)}",
    ]))
    event.add("categories", ["approval_deadline"])
    event.add("transp", "TRANSPARENT")
    alarm = icalendar.Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", f"Freigabefrist: {deadline.title}")
    alarm.add("trigger", timedelta(hours=-24))
    event.add_component(alarm)
    return event


def build_ics(entries: list[CalendarEntry],
              deadlines: list[DeadlineEntry] | tuple[DeadlineEntry, ...] = (), *,
              stamp: datetime | None = None) -> icalendar.Calendar:
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", "Newsroom Darmstadt")
    cal.add("x-wr-timezone", TZID)
    stamp = (stamp or datetime.now(UTC)).astimezone(UTC)
    for entry in entries:
        event = icalendar.Event()
        event.add("uid", entry.uid)
        event.add("dtstamp", stamp)
        event.add("dtstart", entry.at.astimezone(BERLIN))
        event.add("duration", EVENT_DURATION)
        event.add("summary", f"{entry.title} ({', '.join(entry.channels)})")
        event.add("description", _description(entry))
        event.add("categories", [entry.kind])
        cal.add_component(event)
    for deadline in deadlines:
        cal.add_component(_deadline_event(deadline, stamp))
    if entries or deadlines:
        years = [e.at.year for e in entries] + [d.at.year for d in deadlines]
        cal.add_missing_timezones(
            first_date=date(min(years) - 1, 1, 1), last_date=date(max(years) + 1, 12, 31)
        )
    return cal


def write_ics(entries: list[CalendarEntry], path: Path,
              deadlines: list[DeadlineEntry] | tuple[DeadlineEntry, ...] = (), *,
              stamp: datetime | None = None) -> Path:
    """Write ``entries`` (and ``deadlines``) as an iCalendar file (times in Europe/Berlin
    with a VTIMEZONE)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(build_ics(entries, deadlines, stamp=stamp).to_ical())
    return path
