"""Local time in Europe/Berlin, done right across daylight-saving changes.

Campaign files speak wall-clock time in Darmstadt. A wall-clock time can fail to exist
(02:30 on the last Sunday of March) or exist twice (02:30 on the last Sunday of October);
both are refused with a precise message rather than guessed.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")

_LOCAL_DATETIME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[ T](?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?$"
)
_YEARLY = re.compile(r"^(?P<month>\d{2})-(?P<day>\d{2}) (?P<hour>\d{1,2}):(?P<minute>\d{2})$")
# Campaign times outside these years are typos; refusing them keeps date arithmetic
# (a year's search window, a deadline before a slot) away from datetime's limits.
MIN_YEAR, MAX_YEAR = 1970, 2999
_DURATION = re.compile(r"(?P<value>\d+)\s*(?P<unit>d|h|m|min|s)\b")


class LocalTimeError(ValueError):
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
    if first.astimezone(timezone.utc).astimezone(BERLIN).replace(tzinfo=None) != naive:
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


def parse_duration(value: str | int | float) -> timedelta:
    """Parse ``2d``, ``36h``, ``90m``, ``1d 12h`` (or a number of seconds)."""
    if isinstance(value, (int, float)):
        return timedelta(seconds=value)
    text = value.strip().lower()
    parts = list(_DURATION.finditer(text))
    if not parts or _DURATION.sub("", text).strip():
        raise LocalTimeError(
            f"{value!r} is not a duration",
            "write e.g. 48h, 2d, 90m or 1d 12h",
        )
    seconds = 0
    factors = {"d": 86400, "h": 3600, "m": 60, "min": 60, "s": 1}
    for part in parts:
        seconds += int(part["value"]) * factors[part["unit"]]
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise LocalTimeError(
            f"{value!r} is too long a duration", "write e.g. 48h, 2d or 90m"
        ) from None


def format_local(moment: datetime) -> str:
    """``2027-01-27 09:00 (CET)``: how people in the office read a time."""
    local = moment.astimezone(BERLIN)
    return local.strftime("%Y-%m-%d %H:%M ") + f"({local.tzname()})"


def now_berlin() -> datetime:
    return datetime.now(BERLIN)
