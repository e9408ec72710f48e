"""Local time in Europe/Berlin, done right across daylight-saving changes.

Campaign files speak wall-clock time in Darmstadt. A wall-clock time can fail to exist
(02:30 on the last Sunday of March) or exist twice (02:30 on the last Sunday of October);
both are refused with a precise message rather than guessed.

Every "before" and "after" of a campaign file (deadline_before, late.grace, the approval
lead, the reminders) is a :class:`Duration` counted by :func:`before` / :func:`after`: days
on the wall clock, hours and less as elapsed time. Every time shown to a person goes through
:func:`format_local` (English) or :func:`format_local_german` / :func:`german_clock` (German):
Darmstadt time, seconds when the time has them, always the zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from newsroom.errors import NewsroomError

BERLIN = ZoneInfo("Europe/Berlin")

_LOCAL_DATETIME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[ T](?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?$"
)
_YEARLY = re.compile(r"^(?P<month>\d{2})-(?P<day>\d{2}) (?P<hour>\d{1,2}):(?P<minute>\d{2})$")
# Campaign times outside these years are typos; refusing them keeps date arithmetic
# (a year's search window, a deadline before a slot) away from datetime's limits.
MIN_YEAR, MAX_YEAR = 1970, 2999
_DURATION = re.compile(r"(?P<value>\d+)\s*(?P<unit>d|h|m|min|s)\b")


class LocalTimeError(NewsroomError, ValueError):
    """A wall-clock time that cannot be used; ``hint`` says what to write instead."""

    def __init__(self, message: str, hint: str):
        self.hint = hint
        super().__init__(message)


def parse_local_datetime(value: str) -> datetime:
    """Parse ``YYYY-MM-DD HH:MM`` as a naive wall-clock time (not yet checked for DST)."""
    match = _LOCAL_DATETIME.match(value.strip())
    if not match:
        raise LocalTimeError(
            f"{value!r} is not a date and time",
            "write it as YYYY-MM-DD HH:MM in Darmstadt time, e.g. 2027-01-27 09:00",
        )
    try:
        day = date.fromisoformat(match["date"])
        clock = time(int(match["hour"]), int(match["minute"]), int(match["second"] or 0))
    except ValueError as exc:
        raise LocalTimeError(
            f"{value!r} is not a valid date and time ({exc})",
            "check the day of the month and write hours 00-23, minutes 00-59",
        ) from None
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise LocalTimeError(
            f"{value!r} is not a valid date and time "
            f"(the year must lie between {MIN_YEAR} and {MAX_YEAR})",
            "check the year",
        )
    return datetime.combine(day, clock)


def parse_yearly(value: str) -> tuple[int, int, time]:
    """Parse ``MM-DD HH:MM`` (a date that comes back every year)."""
    match = _YEARLY.match(value.strip())
    if not match:
        raise LocalTimeError(
            f"{value!r} is not a yearly date",
            "write it as MM-DD HH:MM, e.g. 01-27 09:00 for every 27 January at 09:00",
        )
    month, day = int(match["month"]), int(match["day"])
    try:
        date(2024, month, day)  # a leap year admits 29 February
        clock = time(int(match["hour"]), int(match["minute"]))
    except ValueError as exc:
        raise LocalTimeError(
            f"{value!r} is not a valid yearly date ({exc})",
            "use a month 01-12, a day that exists in that month, hours 00-23, minutes 00-59",
        ) from None
    if (month, day) == (2, 29):
        raise LocalTimeError(
            "29 February exists only in leap years",
            "choose 28 February or 1 March, or use an RRULE with BYMONTHDAY=-1",
        )
    return month, day, clock


def localize(naive: datetime) -> datetime:
    """Attach Europe/Berlin to a wall-clock time, refusing times that DST skips or repeats."""
    first = naive.replace(tzinfo=BERLIN, fold=0)
    second = naive.replace(tzinfo=BERLIN, fold=1)
    shown = naive.strftime("%Y-%m-%d %H:%M")
    if first.astimezone(UTC).astimezone(BERLIN).replace(tzinfo=None) != naive:
        raise LocalTimeError(
            f"{shown} does not exist in Europe/Berlin: the clocks jump from 02:00 to 03:00 "
            "that night (summer time begins)",
            "choose a time before 02:00 or from 03:00 on that day",
        )
    if first.utcoffset() != second.utcoffset():
        raise LocalTimeError(
            f"{shown} happens twice in Europe/Berlin: the clocks go back from 03:00 to 02:00 "
            "that night (summer time ends)",
            "choose a time before 02:00 or from 03:00 on that day",
        )
    return first


@dataclass(frozen=True)
class Duration:
    """A "before" or "after" from a campaign file or a setting: ``2d``, ``36h``, ``1d 12h``.

    The two parts mean different things and are kept apart (see :func:`before`):
    ``days`` are calendar days on the Darmstadt wall clock, ``elapsed`` (the hours, minutes
    and seconds) is elapsed time. ``1d`` and ``24h`` differ on the two nights a year the
    clocks change.
    """

    days: int = 0
    elapsed: timedelta = timedelta(0)

    @property
    def is_zero(self) -> bool:
        return self.days == 0 and self.elapsed == timedelta(0)

    @property
    def longest(self) -> timedelta:
        """The most real time it can span (a calendar day lasts 23 to 25 hours): for search
        windows, never for a time people see."""
        return timedelta(hours=25 * self.days) + self.elapsed

    @property
    def shortest(self) -> timedelta:
        """The least real time it can span."""
        return timedelta(hours=23 * self.days) + self.elapsed

    def __str__(self) -> str:
        parts = [f"{self.days}d"] if self.days else []
        rest = int(self.elapsed.total_seconds())
        for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
            if rest >= size:
                parts.append(f"{rest // size}{unit}")
                rest %= size
        return " ".join(parts) or "0s"


def parse_duration(value: str | int | float) -> Duration:
    """Parse ``2d``, ``36h``, ``90m``, ``1d 12h`` (or a number of seconds, elapsed)."""
    if isinstance(value, (int, float)):
        return Duration(elapsed=timedelta(seconds=value))
    text = value.strip().lower()
    parts = list(_DURATION.finditer(text))
    if not parts or _DURATION.sub("", text).strip():
        raise LocalTimeError(
            f"{value!r} is not a duration",
            "write e.g. 48h, 2d, 90m or 1d 12h",
        )
    days = seconds = 0
    factors = {"h": 3600, "m": 60, "min": 60, "s": 1}
    for part in parts:
        if part["unit"] == "d":
            days += int(part["value"])
        else:
            seconds += int(part["value"]) * factors[part["unit"]]
    try:
        duration = Duration(days=days, elapsed=timedelta(seconds=seconds))
        duration.longest  # noqa: B018 - fits datetime arithmetic at all
    except OverflowError:
        raise LocalTimeError(
            f"{value!r} is too long a duration", "write e.g. 48h, 2d or 90m"
        ) from None
    return duration


def wall_clock_instant(naive: datetime) -> datetime:
    """The instant (UTC) of a Darmstadt wall-clock time that arithmetic arrived at.

    A time the clocks skip (02:30 on the last Sunday of March) or repeat (02:30 on the last
    Sunday of October) has two readings, one per offset; it means the EARLIER of the two:
    a skipped 02:30 is 01:30 CET, a repeated 02:30 is its first pass (02:30 CEST). The
    earlier one, because a deadline must never end later than anyone could read it.
    (A time typed into a campaign file is refused instead, see :func:`localize`.)
    """
    readings = (naive.replace(tzinfo=BERLIN, fold=fold).astimezone(UTC) for fold in (0, 1))
    return min(readings)


def _shift(moment: datetime, duration: Duration, sign: int) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; campaign times are aware")
    try:
        start = moment.astimezone(UTC)
        if duration.days:  # (without days, no detour over the wall clock: it loses the fold)
            wall = moment.astimezone(BERLIN).replace(tzinfo=None)
            start = wall_clock_instant(wall + timedelta(days=sign * duration.days))
        return start + sign * duration.elapsed
    except OverflowError:
        raise LocalTimeError(
            f"{duration} from {format_local(moment)} lies outside the calendar",
            "write a shorter duration",
        ) from None


def before(moment: datetime, duration: Duration) -> datetime:
    """``duration`` before ``moment`` (UTC): THE meaning of every "before" in a campaign file.

    First the days, on the Darmstadt wall clock: ``1d`` before 10:00 is 10:00 the day
    before, whether the clocks changed in between or not (the result lies 23, 24 or 25
    hours earlier). Then the hours, minutes and seconds, as elapsed time: ``24h`` before
    10:00 on the day after a change is 09:00 or 11:00 on the clock. A wall-clock time that
    does not exist or exists twice resolves as :func:`wall_clock_instant` says (the
    earlier instant). The zone of ``moment`` does not matter: a UTC time read back from the
    store gives the same answer as the Europe/Berlin time it was made from.

    deadline_before, the approval lead, the reminders and the late policy's grace all go
    through here (or :func:`after`).
    """
    return _shift(moment, duration, -1)


def after(moment: datetime, duration: Duration) -> datetime:
    """``duration`` after ``moment`` (UTC), with the meaning of :func:`before`: days on the
    wall clock first, then elapsed hours, minutes and seconds."""
    return _shift(moment, duration, +1)


# The zone names office staff read in German texts.
GERMAN_ZONE_NAMES = {"CET": "MEZ", "CEST": "MESZ"}


def _clock(local: datetime) -> str:
    # Seconds only where the time has them: 09:00 reads better than 09:00:00, and a slot
    # at 09:00:30 must never be shown as 09:00.
    return local.strftime("%H:%M:%S" if local.second or local.microsecond else "%H:%M")


def format_local(moment: datetime) -> str:
    """``2027-01-27 09:00 (CET)``, ``2027-03-28 10:00:30 (CEST)``: how the CLI, logs and
    English pages show a time — Europe/Berlin, seconds when it has them, always the zone."""
    local = moment.astimezone(BERLIN)
    return f"{local:%Y-%m-%d} {_clock(local)} ({local.tzname()})"


def format_local_clock(moment: datetime) -> str:
    """``09:00 CET``, ``10:00:30 CEST``: the time of day alone, where the date stands beside
    it (a calendar row); seconds when it has them, always the zone."""
    local = moment.astimezone(BERLIN)
    return f"{_clock(local)} {local.tzname()}"


def german_clock(moment: datetime) -> str:
    """``09:00 Uhr (MEZ)``, ``10:00:30 Uhr (MESZ)``: the German time of day, for texts that
    write the date their own way (``am 15.05.2026 um …``)."""
    local = moment.astimezone(BERLIN)
    zone = local.tzname() or ""
    return f"{_clock(local)} Uhr ({GERMAN_ZONE_NAMES.get(zone, zone)})"


def format_local_german(moment: datetime, *, weekday: bool = True) -> str:
    """``Mittwoch, 27. Januar 2027, 09:00 Uhr (MEZ)``: the same for German texts (e-mails,
    approval and request pages); seconds when it has them, always the zone (MEZ/MESZ)."""
    from babel.dates import format_date

    local = moment.astimezone(BERLIN)
    day = format_date(local, "EEEE, d. MMMM yyyy" if weekday else "d. MMMM yyyy", locale="de_DE")
    return f"{day}, {german_clock(local)}"


def now_berlin() -> datetime:
    return datetime.now(BERLIN)
