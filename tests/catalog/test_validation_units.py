"""Unit tests of the pure functions under the validator: local time, durations, lengths,
hashtags, schedules and the YAML reader's line map."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from newsroom.catalog.models import Campaign, Slot
from newsroom.catalog.schedule import (
    check_slot_times,
    next_occurrence,
    occurrence_on,
    occurrences,
)
from newsroom.catalog.yamlsource import YamlProblem, parse_yaml
from newsroom.rendering.hashtags import check_hashtag, hashtags_in
from newsroom.timeutil import (
    BERLIN,
    Duration,
    LocalTimeError,
    format_local,
    format_local_german,
    localize,
    parse_duration,
    parse_local_datetime,
    parse_yearly,
)

FAMILY = "👩\u200d👩\u200d👧"
FLAG = "🇩🇪"
HOUR = timedelta(hours=1)

# --- timeutil --------------------------------------------------------------------------


def test_localize_winter_and_summer_offsets() -> None:
    assert localize(datetime(2027, 1, 27, 9, 0)).utcoffset() == HOUR
    assert localize(datetime(2027, 7, 1, 9, 0)).utcoffset() == 2 * HOUR
    assert localize(datetime(2027, 1, 27, 9, 0)).tzinfo is BERLIN


@pytest.mark.parametrize("clock", ["02:00", "02:30", "02:59"])
def test_localize_refuses_the_spring_gap(clock: str) -> None:
    with pytest.raises(LocalTimeError, match="does not exist in Europe/Berlin") as info:
        localize(parse_local_datetime(f"2027-03-28 {clock}"))
    assert "2027-03-28 " + clock in str(info.value)
    assert "before 02:00 or from 03:00" in info.value.hint


def test_localize_around_the_spring_gap() -> None:
    before = localize(datetime(2027, 3, 28, 1, 59))
    after = localize(datetime(2027, 3, 28, 3, 0))
    assert before.utcoffset() == HOUR and after.utcoffset() == 2 * HOUR
    # 01:59 CET and 03:00 CEST are one minute apart (same-zone subtraction is wall-clock)
    assert after.astimezone(UTC) - before.astimezone(UTC) == timedelta(minutes=1)


@pytest.mark.parametrize("clock", ["02:00", "02:30", "02:59"])
def test_localize_refuses_the_autumn_fold(clock: str) -> None:
    with pytest.raises(LocalTimeError, match="happens twice in Europe/Berlin"):
        localize(parse_local_datetime(f"2027-10-31 {clock}"))


def test_localize_around_the_autumn_fold() -> None:
    before = localize(datetime(2027, 10, 31, 1, 59))
    after = localize(datetime(2027, 10, 31, 3, 0))
    assert before.utcoffset() == 2 * HOUR and after.utcoffset() == HOUR
    assert after.astimezone(UTC) - before.astimezone(UTC) == timedelta(hours=2, minutes=1)


def test_the_gap_is_not_on_a_fixed_date() -> None:
    localize(datetime(2028, 3, 28, 2, 30))  # in 2028 summer time begins on 26 March
    with pytest.raises(LocalTimeError):
        localize(datetime(2028, 3, 26, 2, 30))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-01-27 09:00", datetime(2027, 1, 27, 9, 0)),
        ("2027-01-27T09:00", datetime(2027, 1, 27, 9, 0)),
        (" 2027-01-27 9:05:30 ", datetime(2027, 1, 27, 9, 5, 30)),
    ],
)
def test_parse_local_datetime(text: str, expected: datetime) -> None:
    assert parse_local_datetime(text) == expected


@pytest.mark.parametrize(
    "text", ["", "2027-01-27", "27.01.2027 09:00", "2027-02-30 09:00", "2027-01-27 24:00", "heute"]
)
def test_parse_local_datetime_refuses(text: str) -> None:
    with pytest.raises(LocalTimeError) as info:
        parse_local_datetime(text)
    assert info.value.hint


def test_parse_yearly() -> None:
    month, day, clock = parse_yearly("01-27 09:00")
    assert (month, day, clock.hour, clock.minute) == (1, 27, 9, 0)
    for bad in ("02-29 09:00", "13-01 09:00", "02-30 09:00", "1-27 09:00", "01-27"):
        with pytest.raises(LocalTimeError):
            parse_yearly(bad)


@pytest.mark.parametrize(
    ("text", "days", "elapsed"),
    [
        ("48h", 0, timedelta(hours=48)),
        ("2d", 2, timedelta(0)),
        ("90m", 0, timedelta(minutes=90)),
        ("15min", 0, timedelta(minutes=15)),
        ("30s", 0, timedelta(seconds=30)),
        ("1d 12h", 1, timedelta(hours=12)),
        (" 2D ", 2, timedelta(0)),
        (3600, 0, timedelta(hours=1)),
        (1.5, 0, timedelta(seconds=1.5)),
    ],
)
def test_parse_duration_keeps_days_apart(text: str | int | float, days: int,
                                         elapsed: timedelta) -> None:
    assert parse_duration(text) == Duration(days=days, elapsed=elapsed)


@pytest.mark.parametrize("text", ["", "48", "drei Tage", "48x", "1d foo", "h", "-2h"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(LocalTimeError, match="is not a duration"):
        parse_duration(text)


def test_format_local() -> None:
    assert format_local(datetime(2027, 1, 27, 8, 0, tzinfo=UTC)) == "2027-01-27 09:00 (CET)"
    assert format_local(datetime(2027, 7, 1, 7, 0, tzinfo=UTC)) == "2027-07-01 09:00 (CEST)"
    assert format_local(datetime(2027, 7, 1, 7, 0, 30, tzinfo=UTC)) == "2027-07-01 09:00:30 (CEST)"


def test_format_local_german() -> None:
    assert (format_local_german(datetime(2027, 1, 27, 8, 0, tzinfo=UTC))
            == "Mittwoch, 27. Januar 2027, 09:00 Uhr (MEZ)")
    assert (format_local_german(datetime(2027, 3, 28, 8, 0, 5, tzinfo=UTC), weekday=False)
            == "28. März 2027, 10:00:05 Uhr (MESZ)")


# --- hashtags --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag", ["NieWiederIstJetzt", "#NieWiederIstJetzt", "ÖPNV", "EU", "GehWählen", "Darmstadt",
            "2027", "5G", "Ü18",
            # compound nouns are one word for a screen reader
            "Kinderhospizarbeit", "Trikottag", "Schadstoffmobil", "Unwetterwarnung",
            "Mitmachaktion", "Vorlesetag", "Zusammenhalt", "Wissenschaftsstadt", "Lilien_98"],
)
def test_hashtag_ok(tag: str) -> None:
    assert check_hashtag(tag) is None


@pytest.mark.parametrize(
    ("tag", "words"),
    [
        ("darmstadthältzusammen", "darmstadt · hält · zusammen"),
        ("#Darmstadthältzusammen", "darmstadt · hält · zusammen"),  # a capital is no fix
        ("niewiederistjetzt", "nie · wieder · ist · jetzt"),
        ("Niewiederistjetzt", "nie · wieder · ist · jetzt"),
        ("NIEWIEDER", "nie · wieder"),
        ("Sportindarmstadt", "sport · in · darmstadt"),
        ("TagDerKinderhospizarbeitistheute", "kinder · hospiz · arbeit · ist · heute"),
        ("weremember", "we · remember"),
    ],
)
def test_multi_word_hashtag_not_in_camel_case_is_refused_without_a_fake_fix(
        tag: str, words: str) -> None:
    problem = check_hashtag(tag)
    assert problem is not None
    assert "runs several words together" in problem.message and words in problem.message
    assert "capital initial (CamelCase)" in problem.hint
    bare = tag.lstrip("#")
    assert f"#{bare[:1].upper()}{bare[1:]}" not in problem.hint  # no capitalised first letter


@pytest.mark.parametrize(
    ("tag", "message", "fix"),
    [
        ("trikottag", "does not start with a capital letter", "#Trikottag"),
        ("#öpnv", "does not start with a capital letter", "#Öpnv"),
        ("DARMSTADT", "is in capitals only", "#Darmstadt"),
        ("TRIKOTTAG", "is in capitals only", "#Trikottag"),
    ],
)
def test_one_word_hashtag_gets_its_capital(tag: str, message: str, fix: str) -> None:
    problem = check_hashtag(tag)
    assert problem is not None
    assert message in problem.message
    assert fix in problem.hint


@pytest.mark.parametrize("tag", ["Nie-Wieder", "Nie Wieder", "Nie.Wieder", "#", ""])
def test_hashtag_broken(tag: str) -> None:
    problem = check_hashtag(tag)
    assert problem is not None and problem.hint


def test_hashtags_in_text() -> None:
    text = ("Heute #NieWieder und #ÖPNV! Mail: a#b, Link https://example.org/#anker, "
            "&#39;\n#Darmstadt")
    assert hashtags_in(text) == ["NieWieder", "ÖPNV", "Darmstadt"]


# --- schedule --------------------------------------------------------------------------


def make_campaign(*slots: dict) -> Campaign:
    return Campaign.model_validate(
        {
            "id": "test",
            "title": "Test",
            "topic": "Test",
            "kind": "awareness_day",
            "requested_by": {"office": "amt-kommunikation"},
            "approval": {"approvers": [{"person": "benz"}], "deadline_before": "48h"},
            "slots": list(slots),
            "content": {"text": "Hallo"},
        }
    )


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def test_yearly_next_five_occurrences_keep_local_time() -> None:
    # 28 March is in summer time when the last Sunday of March is on or before it
    # (2027: the 28th itself, 2028: 26th, 2029: 25th), in winter time in 2030 and 2031.
    campaign = make_campaign({"yearly": "03-28 09:00", "channels": ["mastodon"]})
    found = []
    after = berlin(2026, 12, 1)
    for _ in range(5):
        occurrence = next_occurrence(campaign, after)
        assert occurrence is not None
        found.append(occurrence.first_publish_at)
        after = occurrence.first_publish_at + timedelta(minutes=1)
    assert [m.date() for m in found] == [date(y, 3, 28) for y in range(2027, 2032)]
    assert all((m.hour, m.minute) == (9, 0) for m in found)
    assert [m.utcoffset() for m in found] == [2 * HOUR, 2 * HOUR, 2 * HOUR, HOUR, HOUR]
    assert [m.astimezone(UTC).hour for m in found] == [7, 7, 7, 8, 8]


def test_yearly_respects_until() -> None:
    campaign = make_campaign({"yearly": "01-27 09:00", "until": "2029", "channels": ["mastodon"]})
    found = occurrences(campaign, berlin(2026, 12, 1), berlin(2040, 1, 1))
    assert [o.date.year for o in found] == [2027, 2028, 2029]
    assert all(o.first_publish_at.utcoffset() == HOUR for o in found)


def test_rrule_monthly_across_dst_keeps_local_time() -> None:
    campaign = make_campaign(
        {"rrule": "FREQ=MONTHLY;BYDAY=1MO", "start": "2027-01-04 08:00", "channels": ["mastodon"]}
    )
    found = occurrences(campaign, berlin(2027, 1, 1), berlin(2028, 1, 1))
    moments = [o.first_publish_at for o in found]
    assert len(moments) == 12
    assert all(m.weekday() == 0 and m.day <= 7 for m in moments)  # first Mondays
    assert all((m.hour, m.minute) == (8, 0) for m in moments)
    summer = [m.month for m in moments if m.utcoffset() == 2 * HOUR]
    assert summer == [4, 5, 6, 7, 8, 9, 10]
    assert [m.astimezone(UTC).hour for m in moments] == [7, 7, 7, 6, 6, 6, 6, 6, 6, 6, 7, 7]


def test_one_day_with_two_slots_is_one_occurrence() -> None:
    campaign = make_campaign(
        {"at": "2027-01-12 10:05", "channels": ["whatsapp"]},
        {"at": "2027-01-12 10:00", "channels": ["mastodon", "bluesky"]},
    )
    occurrence = occurrence_on(campaign, date(2027, 1, 12))
    assert occurrence is not None
    assert occurrence.first_publish_at == berlin(2027, 1, 12, 10, 0)
    assert occurrence.channel_times() == {
        "mastodon": berlin(2027, 1, 12, 10, 0),
        "bluesky": berlin(2027, 1, 12, 10, 0),
        "whatsapp": berlin(2027, 1, 12, 10, 5),
    }
    assert occurrence_on(campaign, date(2027, 1, 13)) is None


@pytest.mark.parametrize(
    ("slot", "message"),
    [
        ({"yearly": "03-28 02:30"}, "2027-03-28 02:30 does not exist"),
        ({"yearly": "03-31 02:30"}, "2030-03-31 02:30 does not exist"),  # within ten years
        ({"yearly": "10-27 02:15"}, "2030-10-27 02:15 happens twice"),
        ({"rrule": "FREQ=WEEKLY;BYDAY=SU", "start": "2027-01-03 02:30"},
         "2027-03-28 02:30 does not"),
        ({"rrule": "FREQ=MONATLICH", "start": "2027-01-03 10:00"}, "the RRULE cannot be read"),
    ],
)
def test_check_slot_times_refuses(slot: dict, message: str) -> None:
    with pytest.raises(LocalTimeError, match=message):
        check_slot_times(Slot(channels=["mastodon"], **slot), date(2026, 11, 24))


def test_check_slot_times_accepts() -> None:
    for slot in (
        {"yearly": "03-28 09:00"},
        {"yearly": "03-28 02:30", "until": "2026"},
        {"rrule": "FREQ=MONTHLY;BYDAY=1MO", "start": "2027-01-04 08:00"},
        {"on_demand": True},
    ):
        check_slot_times(Slot(channels=["mastodon"], **slot), date(2026, 11, 24))


# --- yamlsource ------------------------------------------------------------------------


def test_parse_yaml_remembers_lines() -> None:
    doc = parse_yaml(
        "# comment\nid: x\nslots:\n  - at: '2027-01-27 09:00'\n    channels: [a, b]\n"
        "content:\n  text: |\n    Zeile 1\n    Zeile 2\n"
    )
    assert doc.data["slots"][0]["at"] == "2027-01-27 09:00"
    assert doc.line_of(("id",)) == 2
    assert doc.line_of(("slots", 0)) == 4
    assert doc.line_of(("slots", 0, "channels", 1)) == 5
    assert doc.line_of(("slots", 0, "nothing", "here")) == 4
    assert doc.line_of(("content", "text")) == 7
    assert doc.literal_blocks[("content", "text")] == 8


def test_parse_yaml_keeps_timestamps_as_text() -> None:
    doc = parse_yaml("at: 2027-01-27 09:00\nday: 2027-01-27\n")
    assert doc.data == {"at": "2027-01-27 09:00", "day": "2027-01-27"}


def test_parse_yaml_records_duplicate_keys() -> None:
    doc = parse_yaml("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n")
    assert doc.duplicate_keys == [(("b", "c"), 4), (("a",), 5)]


@pytest.mark.parametrize(
    ("text", "line", "hint"),
    [
        ("a: 1\nb: Achtung: Sturm\n", 2, "must be quoted"),
        ("a:\n\tb: 1\n", 2, "not tabs"),
        ("a: 1\n? [x]\n: 2\n", 2, "simple names"),
        ("a: !!python/name:os.system x\n", 1, "YAML tag"),
        ("a: 'offen\nb: 1\n", 3, "quotes are closed"),
    ],
)
def test_parse_yaml_problems_have_a_line_and_a_hint(text: str, line: int, hint: str) -> None:
    with pytest.raises(YamlProblem) as info:
        parse_yaml(text)
    assert info.value.line == line
    assert hint in info.value.hint
