"""The editorial calendar: every scheduled post across campaigns, with holidays and clashes.

An entry is one campaign publishing at one instant (its slots at the same time merged).
Entries on a public holiday in Hessen carry the holiday's German name; two posts on the
same channel within :data:`CONFLICT_WINDOW` of each other are flagged on both entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import holidays
import icalendar

from .catalog.catalog import Catalog
from .catalog.schedule import slot_instants
from .timeutil import BERLIN

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

    @property
    def uid(self) -> str:
        return f"{self.campaign_id}-{self.at.isoformat(timespec='minutes')}@{UID_DOMAIN}"


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
                        f"{channel}: listed twice by {campaign.id!r} at {instant.at:%H:%M}"
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
    when = other.at.astimezone(BERLIN)
    return f"{channel}: also {other.campaign_id!r} at {when:%H:%M} (within {minutes} min)"


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
    return entries


# --- text -----------------------------------------------------------------------------


def format_calendar(entries: list[CalendarEntry]) -> str:
    """A table: date, time, campaign, channels, holiday; clashes below their entry."""
    if not entries:
        return "No scheduled posts in this period."
    rows = []
    for entry in entries:
        local = entry.at.astimezone(BERLIN)
        rows.append(
            (
                local.strftime("%a %Y-%m-%d"),
                local.strftime("%H:%M ") + (local.tzname() or ""),
                entry.campaign_id,
                ", ".join(entry.channels),
                f"🎌 {entry.holiday}" if entry.holiday else "",
            )
        )
    header = ("Date", "Time", "Campaign", "Channels", "Holiday (Hessen)")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]

    def line(cells: tuple[str, ...]) -> str:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])]
        return "  ".join([*padded, cells[-1]]).rstrip()

    out = [line(header), "  ".join("─" * w for w in widths) + "  " + "─" * len(header[-1])]
    indent = " " * (widths[0] + 2)
    for entry, row in zip(entries, rows, strict=True):
        out.append(line(row))
        for conflict in entry.conflicts:
            out.append(f"{indent}⚠ {conflict}")
    clashes = sum(1 for e in entries if e.conflicts)
    on_holidays = sum(1 for e in entries if e.holiday)
    summary = f"{len(entries)} posting time{'s' if len(entries) != 1 else ''}"
    if on_holidays:
        summary += f", {on_holidays} on a public holiday"
    if clashes:
        summary += f", ⚠ {clashes} with clashes (same channel within 30 min)"
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
    if entry.holiday:
        lines.append(f"Holiday (Hessen): {entry.holiday}")
    for conflict in entry.conflicts:
        lines.append(f"Conflict: {conflict}")
    return "\n".join(lines)


def build_ics(entries: list[CalendarEntry], *, stamp: datetime | None = None) -> icalendar.Calendar:
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
    if entries:
        years = [e.at.year for e in entries]
        cal.add_missing_timezones(
            first_date=date(min(years) - 1, 1, 1), last_date=date(max(years) + 1, 12, 31)
        )
    return cal


def write_ics(entries: list[CalendarEntry], path: Path, *, stamp: datetime | None = None) -> Path:
    """Write ``entries`` as an iCalendar file (times in Europe/Berlin with a VTIMEZONE)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(build_ics(entries, stamp=stamp).to_ical())
    return path
