"""Expand a campaign's slots into concrete instants and group them into occurrences.

An *occurrence* is a campaign on one local date: everything it publishes that day is
approved together. A yearly campaign has one occurrence per year, and each needs its own
approval.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dateutil.rrule import rrulestr

from ..timeutil import BERLIN, LocalTimeError, localize, parse_local_datetime, parse_yearly
from .models import Campaign, Slot

# How far ahead recurring slots are checked for DST gaps when validating.
CHECK_YEARS = 10


@dataclass(frozen=True)
class SlotInstant:
    """One slot at one concrete time."""

    slot_index: int
    at: datetime  # aware, Europe/Berlin
    channels: tuple[str, ...]


@dataclass(frozen=True)
class Occurrence:
    campaign_id: str
    date: date
    instants: tuple[SlotInstant, ...]

    @property
    def first_publish_at(self) -> datetime:
        return min(i.at for i in self.instants)

    def channel_times(self) -> dict[str, datetime]:
        """Each channel's publication time (the earliest, should a channel repeat)."""
        times: dict[str, datetime] = {}
        for instant in sorted(self.instants, key=lambda i: i.at):
            for channel in instant.channels:
                times.setdefault(channel, instant.at)
        return times


def _until_bound(slot: Slot) -> datetime | None:
    if not slot.until:
        return None
    text = slot.until.strip()
    if len(text) == 4 and text.isdigit():
        return parse_local_datetime(text + "-12-31 23:59")
    if len(text) == 10:
        return parse_local_datetime(text + " 23:59")
    return parse_local_datetime(text)


def naive_slot_times(slot: Slot, start: datetime, end: datetime) -> Iterator[datetime]:
    """Wall-clock times of ``slot`` in [start, end) (naive, Europe/Berlin)."""
    if slot.on_demand:
        return
    until = _until_bound(slot)
    if until is not None:
        end = min(end, until + timedelta(minutes=1))
    if slot.at:
        moment = parse_local_datetime(slot.at)
        if start <= moment < end:
            yield moment
    elif slot.yearly:
        month, day, clock = parse_yearly(slot.yearly)
        for year in range(start.year, end.year + 1):
            moment = datetime(year, month, day, clock.hour, clock.minute)
            if start <= moment < end:
                yield moment
    elif slot.rrule:
        first = parse_local_datetime(slot.start or "")
        rule = rrulestr(slot.rrule, dtstart=first, cache=False)
        # One pass over the rule (``after`` in a loop started from dtstart each time:
        # a daily rule over ten years took half a minute to validate).
        moments = rule.xafter(start - timedelta(seconds=1), inc=True) if start > first \
            else iter(rule)
        for count, moment in enumerate(moments):
            if moment >= end or count >= 5000:  # a minutely rule over years is a mistake
                break
            if moment >= start:
                yield moment


def slot_instants(campaign: Campaign, start: datetime, end: datetime) -> list[SlotInstant]:
    """All slot instants of ``campaign`` between two aware datetimes."""
    naive_start = start.astimezone(BERLIN).replace(tzinfo=None)
    naive_end = end.astimezone(BERLIN).replace(tzinfo=None)
    instants = []
    for index, slot in enumerate(campaign.slots):
        for naive in naive_slot_times(slot, naive_start, naive_end):
            instants.append(SlotInstant(index, localize(naive), tuple(slot.channels)))
    return sorted(instants, key=lambda i: (i.at, i.slot_index))


def on_demand_occurrence(campaign: Campaign, at: datetime) -> Occurrence:
    """A crisis campaign triggered now: its on-demand slots, all at ``at``."""
    instants = tuple(
        SlotInstant(index, at.astimezone(BERLIN), tuple(slot.channels))
        for index, slot in enumerate(campaign.slots)
        if slot.on_demand
    )
    return Occurrence(campaign.id, at.astimezone(BERLIN).date(), instants)


def occurrences(campaign: Campaign, start: datetime, end: datetime) -> list[Occurrence]:
    by_day: dict[date, list[SlotInstant]] = {}
    for instant in slot_instants(campaign, start, end):
        by_day.setdefault(instant.at.date(), []).append(instant)
    return [Occurrence(campaign.id, day, tuple(items)) for day, items in sorted(by_day.items())]


def occurrence_on(campaign: Campaign, day: date) -> Occurrence | None:
    start = datetime(day.year, day.month, day.day, tzinfo=BERLIN)
    found = occurrences(campaign, start, start + timedelta(days=1))
    return found[0] if found else None


def next_occurrence(
    campaign: Campaign, after: datetime, horizon_years: int = 5
) -> Occurrence | None:
    found = occurrences(campaign, after, after + timedelta(days=366 * horizon_years))
    return found[0] if found else None


def check_slot_times(slot: Slot, today: date) -> None:
    """Raise LocalTimeError for the first time of ``slot`` that DST makes impossible.

    One-off times are checked as given; recurring ones over the next CHECK_YEARS years.
    """
    if slot.on_demand:
        return
    if slot.at:
        localize(parse_local_datetime(slot.at))
        return
    if slot.yearly:
        parse_yearly(slot.yearly)
    if slot.rrule:
        try:
            rrulestr(slot.rrule, dtstart=parse_local_datetime(slot.start or ""), cache=False)
        except LocalTimeError:
            raise
        except (ValueError, TypeError) as exc:
            raise LocalTimeError(
                f"the RRULE cannot be read: {exc}",
                "write an RFC 5545 rule such as FREQ=WEEKLY;BYDAY=MO (the time comes from `start`)",
            ) from None
    begin = datetime(today.year, 1, 1)
    if slot.rrule:
        begin = min(begin, parse_local_datetime(slot.start or ""))
    end = datetime(today.year + CHECK_YEARS, 1, 1)
    try:
        for naive in naive_slot_times(slot, begin, end):
            localize(naive)
    except LocalTimeError:
        raise
    except (ValueError, TypeError, ArithmeticError) as exc:  # e.g. INTERVAL=0
        raise LocalTimeError(
            f"the RRULE cannot be expanded: {exc}",
            "write an RFC 5545 rule such as FREQ=WEEKLY;BYDAY=MO; INTERVAL must be 1 or more",
        ) from None
