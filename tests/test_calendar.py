"""The calendar over the seed catalog and small catalogs built in tmp_path."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import icalendar
import pytest

from newsroom.calendar import CalendarEntry, calendar_entries, format_calendar, write_ics
from newsroom.catalog.catalog import Catalog
from newsroom.catalog.validation import load_catalog
from newsroom.timeutil import BERLIN

SEED = Path(__file__).resolve().parents[1] / "campaigns"
TODAY = date(2026, 12, 1)
STAMP = datetime(2026, 12, 1, 8, 0, tzinfo=BERLIN)
CET, CEST = timedelta(hours=1), timedelta(hours=2)


def load(root: Path) -> Catalog:
    report = load_catalog(root, today=TODAY)
    assert report.ok, "\n".join(i.format() for i in report.errors)
    assert report.catalog is not None
    return report.catalog


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load(SEED)


@pytest.fixture
def add_campaigns(tmp_path: Path):
    """Copy the seed catalog and add campaigns: {id: slots YAML}; returns the loaded catalog."""
    root = tmp_path / "campaigns"
    shutil.copytree(SEED, root)

    def add(slots: dict[str, str], *, keep_seed: bool = True) -> Catalog:
        if not keep_seed:
            for path in root.glob("*.yaml"):
                path.unlink()
        for campaign_id, slot in slots.items():
            (root / f"{campaign_id}.yaml").write_text(
                f"""\
id: {campaign_id}
title: Test {campaign_id}
topic: Test
kind: service_information
requested_by: {{office: amt-kommunikation}}
approval:
  approvers:
    - person: benz
  deadline_before: 48h
slots:
{slot}
content:
  text: "Service-Info {{{{ datum }}}}: {{{{ link }}}}"
  link: https://www.darmstadt.example.org/test
""",
                encoding="utf-8",
            )
        return load(root)

    return add


def at(text: str) -> str:
    """A one-off slot on Mastodon."""
    return f'  - at: "{text}"\n    channels: [mastodon]'


def entries_of(entries: list[CalendarEntry], campaign_id: str) -> list[CalendarEntry]:
    return [e for e in entries if e.campaign_id == campaign_id]


# --- entries --------------------------------------------------------------------------


def test_entries_of_the_seed_catalog(catalog: Catalog) -> None:
    entries = calendar_entries(catalog, date(2027, 1, 1), date(2027, 12, 31))
    keys = [e.at for e in entries]
    assert keys == sorted(keys)
    assert not entries_of(entries, "unwetterwarnung")  # on demand: not in the calendar
    assert not entries_of(entries, "europawahl-2029")
    gedenken = entries_of(entries, "nie-wieder-ist-jetzt")
    assert [e.at for e in gedenken] == [datetime(2027, 1, 27, 9, 0, tzinfo=BERLIN)]
    entry = gedenken[0]
    assert entry.title == "Nie wieder ist jetzt – Gedenken am 27. Januar"
    assert entry.kind == "commemoration_day"
    assert entry.channels[:2] == ("mastodon", "bluesky")
    assert entry.occurrence_date == date(2027, 1, 27)
    assert entry.holiday is None and entry.conflicts == []
    assert len(entries_of(entries, "schadstoffmobil")) == 12
    # two slots of one campaign at different times are two entries
    launch = entries_of(entries, "whatsapp-kanal-start")
    assert [(e.at.strftime("%H:%M"), e.channels) for e in launch] == [
        ("10:00", ("mastodon", "bluesky", "instagram", "facebook", "telegram", "website")),
        ("10:05", ("whatsapp",)),
    ]
    assert all(not e.conflicts for e in entries)


def test_start_and_end_are_inclusive(catalog: Catalog) -> None:
    day = date(2027, 1, 27)
    assert [e.campaign_id for e in calendar_entries(catalog, day, day)] == ["nie-wieder-ist-jetzt"]
    assert calendar_entries(catalog, date(2027, 1, 28), date(2027, 1, 31)) == []
    with pytest.raises(ValueError, match="before the start"):
        calendar_entries(catalog, day, date(2027, 1, 26))


def test_hessian_public_holidays_are_marked(add_campaigns) -> None:
    catalog = add_campaigns(
        {
            "fronleichnam": at("2027-05-27 10:00"),
            "einheit": '  - yearly: "10-03 10:00"\n    channels: [bluesky]',
            "werktag": at("2027-05-28 10:00"),
        }
    )
    entries = calendar_entries(catalog, date(2027, 1, 1), date(2028, 12, 31))
    holiday = {(e.campaign_id, e.at.date()): e.holiday for e in entries}
    assert holiday[("fronleichnam", date(2027, 5, 27))] == "Fronleichnam"
    assert holiday[("einheit", date(2027, 10, 3))] == "Tag der Deutschen Einheit"
    assert holiday[("einheit", date(2028, 10, 3))] == "Tag der Deutschen Einheit"
    assert holiday[("werktag", date(2027, 5, 28))] is None
    assert holiday[("schadstoffmobil", date(2027, 4, 5))] is None
    table = format_calendar(entries)
    assert "Fronleichnam" in table and "Tag der Deutschen Einheit" in table
    assert "on a public holiday" in table


@pytest.mark.parametrize(
    ("time", "clash"),
    [("09:10", True), ("09:30", True), ("08:30", True), ("09:31", False), ("08:29", False)],
)
def test_conflicts_on_the_same_channel_within_30_minutes(
    add_campaigns, time: str, clash: bool
) -> None:
    catalog = add_campaigns({"nachbar": at(f"2027-01-27 {time}")})
    entries = calendar_entries(catalog, date(2027, 1, 27), date(2027, 1, 27))
    gedenken, nachbar = (
        entries_of(entries, "nie-wieder-ist-jetzt")[0],
        entries_of(entries, "nachbar")[0],
    )
    if clash:
        assert gedenken.conflicts == [f"mastodon: also 'nachbar' at {time} CET (within 30 min)"]
        assert nachbar.conflicts == [
            "mastodon: also 'nie-wieder-ist-jetzt' at 09:00 CET (within 30 min)"
        ]
        assert (
            f"⚠ mastodon: also 'nachbar' at {time} CET (within 30 min)" in format_calendar(entries)
        )
    else:
        assert gedenken.conflicts == [] and nachbar.conflicts == []
        assert "⚠" not in format_calendar(entries)


def test_no_conflict_on_different_channels(add_campaigns) -> None:
    catalog = add_campaigns(
        {"telegram-only": '  - at: "2027-01-27 09:00"\n    channels: [telegram]'}
    )
    entries = calendar_entries(catalog, date(2027, 1, 27), date(2027, 1, 27))
    assert all(e.conflicts == [] for e in entries)


def test_conflict_within_one_campaign(add_campaigns) -> None:
    catalog = add_campaigns(
        {"doppelt": at("2027-02-02 10:00") + "\n" + at("2027-02-02 10:20")}, keep_seed=False
    )
    first, second = calendar_entries(catalog, date(2027, 2, 2), date(2027, 2, 2))
    assert first.conflicts == ["mastodon: also 'doppelt' at 10:20 CET (within 30 min)"]
    assert second.conflicts == ["mastodon: also 'doppelt' at 10:00 CET (within 30 min)"]


def test_slots_at_the_same_instant_are_one_entry(add_campaigns) -> None:
    slots = (
        at("2027-02-02 10:00") + '\n  - at: "2027-02-02 10:00"\n    channels: [bluesky, mastodon]'
    )
    catalog = add_campaigns({"gleichzeitig": slots}, keep_seed=False)
    (entry,) = calendar_entries(catalog, date(2027, 2, 2), date(2027, 2, 2))
    assert entry.channels == ("mastodon", "bluesky")
    assert entry.conflicts == ["mastodon: listed twice by 'gleichzeitig' at 10:00 CET"]


def test_conflict_with_a_post_just_outside_the_range(add_campaigns) -> None:
    catalog = add_campaigns(
        {"spaet": at("2027-02-01 23:50"), "frueh": at("2027-02-02 00:10")}, keep_seed=False
    )
    (entry,) = calendar_entries(catalog, date(2027, 2, 2), date(2027, 2, 2))
    assert entry.campaign_id == "frueh"
    assert entry.conflicts == ["mastodon: also 'spaet' at 23:50 CET (within 30 min)"]


def test_conflict_window_counts_real_minutes_across_the_dst_change(add_campaigns) -> None:
    # 01:50 CET and 03:10 CEST on 28 March 2027 are 20 real minutes apart.
    catalog = add_campaigns(
        {"nachts-a": at("2027-03-28 01:50"), "nachts-b": at("2027-03-28 03:10")}, keep_seed=False
    )
    a, b = calendar_entries(catalog, date(2027, 3, 28), date(2027, 3, 28))
    assert a.conflicts == ["mastodon: also 'nachts-b' at 03:10 CEST (within 30 min)"]
    assert b.conflicts == ["mastodon: also 'nachts-a' at 01:50 CET (within 30 min)"]


def test_format_calendar(catalog: Catalog) -> None:
    table = format_calendar(calendar_entries(catalog, date(2027, 1, 1), date(2027, 1, 31)))
    lines = table.splitlines()
    assert lines[0].split() == ["Date", "Time", "Campaign", "Channels", "Holiday", "(Hessen)"]
    assert any(
        line.startswith("Wed 2027-01-27  09:00 CET") and "nie-wieder-ist-jetzt" in line
        for line in lines
    )
    assert lines[-1] == "4 posting times"  # without deadlines: posts only
    assert format_calendar([]) == "No scheduled posts in this period."


# --- iCalendar ------------------------------------------------------------------------


def read_ics(path: Path) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(path.read_bytes())


def test_ics_round_trip(catalog: Catalog, tmp_path: Path) -> None:
    entries = calendar_entries(catalog, date(2027, 1, 1), date(2029, 12, 31))
    path = write_ics(entries, tmp_path / "out" / "newsroom.ics", stamp=STAMP)
    cal = read_ics(path)
    assert cal["VERSION"] == "2.0"
    assert "Newsroom" in str(cal["PRODID"])
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/Berlin"]
    events = cal.walk("VEVENT")
    assert len(events) == len(entries)
    assert [str(e["UID"]) for e in events] == [e.uid for e in entries]
    assert len({str(e["UID"]) for e in events}) == len(events)
    for event in events:
        assert event.decoded("DURATION") == timedelta(minutes=15)
        assert event["DTSTART"].params["TZID"] == "Europe/Berlin"

    gedenken = [e for e in events if str(e["UID"]).startswith("nie-wieder-ist-jetzt-")]
    assert [e.decoded("DTSTART").date() for e in gedenken] == [
        date(2027, 1, 27),
        date(2028, 1, 27),
        date(2029, 1, 27),
    ]
    for event in gedenken:
        start = event.decoded("DTSTART")
        assert (start.hour, start.minute) == (9, 0)
        assert start.utcoffset() == CET
        assert str(event["CATEGORIES"].to_ical(), "utf-8") == "commemoration_day"
        assert str(event["SUMMARY"]).startswith(
            "Nie wieder ist jetzt – Gedenken am 27. Januar (mastodon, bluesky"
        )
        assert "Channels: mastodon, bluesky, instagram" in str(event["DESCRIPTION"])
    assert str(gedenken[0]["UID"]) == (
        "nie-wieder-ist-jetzt-2027-01-27T09:00+01:00@newsroom.darmstadt.example.org"
    )
    raw = path.read_text(encoding="utf-8")
    assert "DTSTART;TZID=Europe/Berlin:20270127T090000" in raw


def test_ics_is_stable(catalog: Catalog, tmp_path: Path) -> None:
    entries = calendar_entries(catalog, date(2027, 1, 1), date(2027, 12, 31))
    first = write_ics(entries, tmp_path / "a.ics", stamp=STAMP).read_bytes()
    again = calendar_entries(catalog, date(2027, 1, 1), date(2027, 12, 31))
    assert write_ics(again, tmp_path / "b.ics", stamp=STAMP).read_bytes() == first


def test_ics_monthly_rule_keeps_local_time_across_dst(catalog: Catalog, tmp_path: Path) -> None:
    entries = entries_of(
        calendar_entries(catalog, date(2027, 3, 1), date(2027, 11, 30)), "schadstoffmobil"
    )
    events = read_ics(write_ics(entries, tmp_path / "m.ics", stamp=STAMP)).walk("VEVENT")
    starts = {e.decoded("DTSTART").date(): e.decoded("DTSTART") for e in events}
    for day, offset in [
        (date(2027, 3, 1), CET),
        (date(2027, 4, 5), CEST),
        (date(2027, 10, 4), CEST),
        (date(2027, 11, 1), CET),
    ]:
        assert (starts[day].hour, starts[day].minute) == (8, 0)
        assert starts[day].utcoffset() == offset
    assert all((s.hour, s.minute) == (8, 0) for s in starts.values())


def test_ics_weekly_rule_across_both_dst_changes(add_campaigns, tmp_path: Path) -> None:
    catalog = add_campaigns(
        {
            "wochen-info": '  - rrule: "FREQ=WEEKLY;BYDAY=FR"\n'
            '    start: "2027-03-19 08:00"\n'
            "    channels: [mastodon, bluesky]"
        },
        keep_seed=False,
    )
    entries = calendar_entries(catalog, date(2027, 3, 19), date(2027, 11, 5))
    path = write_ics(entries, tmp_path / "w.ics", stamp=STAMP)
    events = read_ics(path).walk("VEVENT")
    starts = [e.decoded("DTSTART") for e in events]
    assert all((s.hour, s.minute, s.weekday()) == (8, 0, 4) for s in starts)
    offsets = {s.date(): s.utcoffset() for s in starts}
    assert offsets[date(2027, 3, 26)] == CET  # before 28 March
    assert offsets[date(2027, 4, 2)] == CEST
    assert offsets[date(2027, 10, 29)] == CEST  # before 31 October
    assert offsets[date(2027, 11, 5)] == CET
    utc_hours = {s.date(): s.astimezone(UTC).hour for s in starts}
    assert (utc_hours[date(2027, 3, 26)], utc_hours[date(2027, 4, 2)]) == (7, 6)
    assert (utc_hours[date(2027, 10, 29)], utc_hours[date(2027, 11, 5)]) == (6, 7)
    raw = path.read_text(encoding="utf-8")
    assert "DTSTART;TZID=Europe/Berlin:20270402T080000" in raw
    assert "DTSTART;TZID=Europe/Berlin:20271105T080000" in raw
    # Karfreitag is a holiday in Hessen, and the event says so.
    good_friday = next(e for e in events if e.decoded("DTSTART").date() == date(2027, 3, 26))
    assert "Holiday (Hessen): Karfreitag" in str(good_friday["DESCRIPTION"])


def test_ics_describes_conflicts(add_campaigns, tmp_path: Path) -> None:
    catalog = add_campaigns({"nachbar": at("2027-01-27 09:10")})
    entries = calendar_entries(catalog, date(2027, 1, 27), date(2027, 1, 27))
    events = read_ics(write_ics(entries, tmp_path / "c.ics", stamp=STAMP)).walk("VEVENT")
    descriptions = {str(e["UID"]).split("-2027")[0]: str(e["DESCRIPTION"]) for e in events}
    assert (
        "Conflict: mastodon: also 'nachbar' at 09:10 CET (within 30 min)"
        in descriptions["nie-wieder-ist-jetzt"]
    )
    assert str(events[1]["CATEGORIES"].to_ical(), "utf-8") == "service_information"
