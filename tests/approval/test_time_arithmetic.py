"""One time arithmetic: every "before" and "after" of a campaign file means the same thing
everywhere, across every change of the clocks in Europe/Berlin from 2026 to 2040.

The rule (newsroom.timeutil.before): days count on the Darmstadt wall clock, hours, minutes
and seconds are elapsed time; a wall-clock result the clocks skip or repeat is the earlier
of its two instants.

Three layers:
- properties of ``before``/``after`` (hypothesis), for each change of the clocks;
- for each change and each kind of duration (deadline_before in days, in hours, mixed, one
  landing in the skipped/repeated hour, the approval lead, reminders, the grace window):
  the planner, the gate (fed with the UTC time read back from the store, as the flow does),
  the signed link's expiry, the reminder mails, the e-mail text, the calendar and the ICS
  export agree, and agree with the wall-clock time worked out by hand;
- the case of the issue through the CLI (``newsroom preview`` and ``newsroom calendar``).
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import icalendar
import pytest
from approval_testkit import Outbox, load, requests_by_person, store_posts
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from newsroom import approval, delivery, store
from newsroom.calendar import build_ics, deadline_entries
from newsroom.catalog.catalog import Catalog
from newsroom.cli import cli
from newsroom.planning import planned_run_for
from newsroom.store import make_engine, upgrade_database
from newsroom.timeutil import (
    BERLIN,
    Duration,
    after,
    before,
    format_local,
    format_local_german,
    parse_duration,
)

CET, CEST = timedelta(hours=1), timedelta(hours=2)
SEED = Path(__file__).resolve().parents[2] / "campaigns"
BASE = "https://newsroom.example.org"


def _clock_changes(first: int, last: int) -> list[tuple[date, str]]:
    """Every day the clocks change in Europe/Berlin, found from the zone data itself."""
    changes = []
    day = date(first, 1, 1)
    while day.year <= last:
        noon = datetime.combine(day, time(12), BERLIN).utcoffset()
        next_noon = datetime.combine(day + timedelta(days=1), time(12), BERLIN).utcoffset()
        if noon != next_noon:
            changes.append((day + timedelta(days=1), "spring" if next_noon == CEST else "fall"))
        day += timedelta(days=1)
    return changes


CHANGES = _clock_changes(2026, 2040)


def test_every_change_of_the_clocks_from_2026_to_2040_is_covered() -> None:
    assert len(CHANGES) == 30
    assert [kind for _, kind in CHANGES] == ["spring", "fall"] * 15
    assert (date(2027, 3, 28), "spring") in CHANGES and (date(2027, 10, 31), "fall") in CHANGES
    assert all(day.weekday() == 6 for day, _ in CHANGES)  # the last Sundays


def _ids(change: tuple[date, str]) -> str:
    return f"{change[0].isoformat()}-{change[1]}"


# --- the rule, as properties ---------------------------------------------------------

durations = st.builds(
    Duration,
    days=st.integers(0, 3),
    elapsed=st.integers(0, 60 * 3600).map(lambda s: timedelta(seconds=s)),
)


def _wall(moment: datetime) -> datetime:
    return moment.astimezone(BERLIN).replace(tzinfo=None)


def _exists_once(naive: datetime) -> bool:
    first, second = (naive.replace(tzinfo=BERLIN, fold=f) for f in (0, 1))
    return first.utcoffset() == second.utcoffset() and _wall(first.astimezone(UTC)) == naive


@st.composite
def moments_near(draw: st.DrawFn, change: date) -> datetime:
    """An instant within three days of ``change`` (as the store keeps it: UTC)."""
    start = datetime.combine(change - timedelta(days=3), time(0), BERLIN).astimezone(UTC)
    seconds = draw(st.integers(0, 6 * 86400))
    return start + timedelta(seconds=seconds)


@pytest.mark.parametrize("change", CHANGES, ids=_ids)
@settings(max_examples=40, deadline=None)
@given(data=st.data(), duration=durations)
def test_before_and_after_follow_the_rule(change, data, duration: Duration) -> None:
    moment = data.draw(moments_near(change[0]))
    for shift, sign in ((before, -1), (after, 1)):
        result = shift(moment, duration)
        # The zone it is given in does not matter (planner: Berlin; gate: UTC from the store).
        assert result == shift(moment.astimezone(BERLIN), duration)
        assert result.utcoffset() == timedelta(0)
        # Days on the wall clock first, then the elapsed part as real time.
        days_only = shift(moment, Duration(days=duration.days))
        assert result - days_only == sign * duration.elapsed
        # The days keep the time of day whenever that time exists once on the target day.
        target = _wall(moment) + sign * timedelta(days=duration.days)
        if not duration.days:  # no days: the instant itself (also the second pass of 02:30)
            assert days_only == moment
        elif _exists_once(target):
            assert _wall(days_only) == target
        else:  # skipped or repeated: the earlier of the two readings, one hour apart
            readings = sorted(target.replace(tzinfo=BERLIN, fold=f).astimezone(UTC)
                              for f in (0, 1))
            assert days_only == readings[0]
            assert readings[1] - readings[0] == timedelta(hours=1)
        # A day lasts 23 to 25 hours; the search windows rely on it.
        assert duration.shortest <= abs(result - moment) <= duration.longest


@pytest.mark.parametrize("change", CHANGES, ids=_ids)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_reminders_and_grace_are_elapsed_hours(change, data) -> None:
    deadline = data.draw(moments_near(change[0]))
    assert approval.reminder_times(deadline) == [deadline - timedelta(hours=24),
                                                 deadline - timedelta(hours=2)]
    assert after(deadline, parse_duration("2h")) == deadline + timedelta(hours=2)


def test_parse_duration_keeps_the_days() -> None:
    assert parse_duration("1d") == Duration(days=1)
    assert parse_duration("24h") == Duration(elapsed=timedelta(hours=24))
    assert parse_duration("1d 12h") == Duration(days=1, elapsed=timedelta(hours=12))
    assert str(parse_duration("1d 12h 30m")) == "1d 12h 30m"


# --- every code path, for each change and each kind of duration ----------------------


@dataclass(frozen=True)
class Case:
    """One campaign: its one slot, its deadline_before and grace, and what they mean,
    worked out by hand (wall clock for days, real hours for hours)."""

    kind: str
    slot: datetime  # naive, Darmstadt wall clock
    deadline_before: str
    grace: str
    change: date
    direction: str

    @property
    def campaign_id(self) -> str:
        return f"dst-{self.change.isoformat()}-{self.kind}"

    @property
    def slot_at(self) -> datetime:
        return self.slot.replace(tzinfo=BERLIN).astimezone(UTC)

    def expected_deadline(self) -> datetime:
        t = self.change
        if self.kind == "days":  # 1d before T 10:00 is T-1 10:00 on the clock
            return datetime.combine(t - timedelta(days=1), time(10), BERLIN).astimezone(UTC)
        if self.kind == "hours":  # 30 real hours before the slot
            return self.slot_at - timedelta(hours=30)
        if self.kind == "mixed":  # 1d: T 10:00 on the clock, then 12 real hours
            return datetime.combine(t, time(10), BERLIN).astimezone(UTC) - timedelta(hours=12)
        if self.kind == "odd-hour":  # 1d before T+1 02:30 is T 02:30, skipped or repeated
            # Spring: skipped, the earlier reading is 01:30 CET (00:30 UTC); fall: repeated,
            # the first pass is 02:30 CEST (00:30 UTC) -- the same instant in UTC, by chance.
            return datetime.combine(t, time(0, 30), UTC)
        if self.kind == "lead":  # 1d before T+2 10:00
            return datetime.combine(t + timedelta(days=1), time(10), BERLIN).astimezone(UTC)
        if self.kind == "reminders":  # 2 real hours before T 12:00
            return self.slot_at - timedelta(hours=2)
        raise AssertionError(self.kind)

    def expected_grace_end(self, publish_at: datetime) -> datetime:
        if self.grace.endswith("d"):
            wall = _wall(publish_at) + timedelta(days=int(self.grace[:-1]))
            return wall.replace(tzinfo=BERLIN).astimezone(UTC)
        return publish_at + timedelta(hours=int(self.grace[:-1]))


def _cases(change: date, direction: str) -> list[Case]:
    t = change
    at = datetime.combine
    return [
        Case("days", at(t, time(10)), "1d", "1d", t, direction),
        Case("hours", at(t, time(10)), "30h", "30h", t, direction),
        Case("mixed", at(t + timedelta(days=1), time(10)), "1d 12h", "1d", t, direction),
        Case("odd-hour", at(t + timedelta(days=1), time(2, 30)), "1d", "2h", t, direction),
        Case("lead", at(t + timedelta(days=2), time(10)), "1d", "1d", t, direction),
        Case("reminders", at(t, time(12)), "2h", "26h", t, direction),
    ]


CASES = [case for day, direction in CHANGES for case in _cases(day, direction)]

CAMPAIGN = """\
id: {id}
title: "Zeitumstellung {id}"
topic: Test
kind: service_information
requested_by: {{office: amt-kommunikation}}
approval:
  approvers: [{{person: benz}}]
  mode: one
  deadline_before: {deadline_before}
  on_timeout: cancel
late:
  grace: {grace}
slots:
  - at: "{slot}"
    channels: [mastodon]
content:
  text: "Hinweis zur Zeitumstellung: {{{{ link }}}}"
  link: https://www.darmstadt.example.org/zeitumstellung
"""


def _write_campaign(root: Path, case: Case) -> None:
    (root / f"{case.campaign_id}.yaml").write_text(CAMPAIGN.format(
        id=case.campaign_id, deadline_before=case.deadline_before, grace=case.grace,
        slot=case.slot.strftime("%Y-%m-%d %H:%M")), encoding="utf-8")


@pytest.fixture(scope="module")
def dst_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dst") / "campaigns"
    shutil.copytree(SEED, root)
    for case in CASES:
        _write_campaign(root, case)
    return root


@pytest.fixture(scope="module")
def dst_catalog(dst_root: Path) -> Catalog:
    return load(dst_root)


@pytest.fixture(scope="module")
def dst_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One store for all cases (a migration per case costs more than the case); each case
    has its own occurrence and settles its gate at the end."""
    url = f"sqlite:///{tmp_path_factory.mktemp('dst-store') / 'newsroom.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def ics_deadlines(dst_catalog: Catalog) -> dict[str, datetime]:
    """The ICS export of every deadline from 2026 to 2040, read back: uid -> start."""
    deadlines = deadline_entries(dst_catalog, date(2026, 1, 1), date(2041, 1, 31))
    ics = icalendar.Calendar.from_ical(build_ics([], deadlines).to_ical())
    # In UTC: an aware time in the repeated hour never equals one in another zone (PEP 495).
    # RFC 5545 reads a repeated local time as its first pass, as timeutil does.
    return {str(e["UID"]): e.decoded("DTSTART").astimezone(UTC) for e in ics.walk("VEVENT")
            if str(e["SUMMARY"]).startswith("Freigabefrist: ")}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.campaign_id)
def test_planner_gate_link_mails_reminders_and_calendar_agree(
        case: Case, dst_catalog: Catalog, ics_deadlines, dst_engine, signer) -> None:
    catalog, cid, day, engine = dst_catalog, case.campaign_id, case.slot.date(), dst_engine
    title = dst_catalog.campaign(cid).campaign.title
    expected = case.expected_deadline()
    opened = expected - timedelta(days=10)

    # The planner (Berlin-aware slot times), and the approval lead from its deadline.
    plan = planned_run_for(catalog, cid, day, now=opened - timedelta(days=30))
    assert plan is not None and plan.deadline == expected, (
        f"{format_local(plan.deadline)} != {format_local(expected)}")
    week_before = _wall(expected) - timedelta(days=7)
    assert _wall(plan.opens_at) == week_before or not _exists_once(week_before)
    hours = planned_run_for(catalog, cid, day, now=opened - timedelta(days=30),
                            lead=parse_duration("170h"))
    assert hours.opens_at == expected - timedelta(hours=170)

    # The gate, from the first publication read back from the store (UTC).
    occurrence_id = store_posts(engine, catalog, cid, day)
    status = approval.open_gate(engine, catalog, occurrence_id=occurrence_id, now=opened)
    assert status.deadline == expected
    request = requests_by_person(engine, occurrence_id)["benz"]
    assert request.deadline == expected

    # The link that is mailed expires exactly then.
    outbox = Outbox()
    approval.notify_approvers(engine, catalog, occurrence_id=occurrence_id,
                              notifier=outbox, signer=signer, base_url=BASE, now=opened)
    [mail] = [m for m in outbox.to("benz") if title in m["subject"]]
    assert f"Freigabe bis: {format_local_german(expected)}" in mail["text"]
    token = approval.approval_link(signer, request, BASE).rsplit("/", 1)[1]
    target = approval.check_link(engine, signer, token, now=expected - timedelta(seconds=1))
    assert target.claims.expires_at == expected
    with pytest.raises(approval.LinkExpired):
        approval.check_link(engine, signer, token, now=expected)

    # Reminders: 24 and 2 real hours before, each at its second, not a second before.
    def sweep(at: datetime) -> list[dict]:
        approval.process_deadlines(engine, catalog, notifier=outbox, signer=signer,
                                   base_url=BASE, now=at)
        return [m for m in outbox.to("benz")
                if m["subject"].startswith("Erinnerung") and title in m["subject"]]

    for count, hours_before in enumerate((24, 2), start=1):
        due = expected - timedelta(hours=hours_before)
        assert len(sweep(due - timedelta(seconds=1))) == count - 1
        reminders = sweep(due)
        assert len(reminders) == count
        assert f"Die Frist endet am {format_local_german(expected)}." in reminders[-1]["text"]

    # At the deadline, not a second before, the gate closes (no answer: cancelled).
    sweep(expected - timedelta(seconds=1))
    assert approval.evaluate_gate(engine, catalog, occurrence_id=occurrence_id,
                                  now=expected - timedelta(seconds=1)).outcome == (
        approval.GateOutcome.PENDING)
    sweep(expected)
    with store.session_scope(engine) as session:
        assert session.get(store.Occurrence, occurrence_id).gate_outcome == "cancelled"

    # The calendar and its ICS export show the same deadline.
    [entry] = [d for d in deadline_entries(catalog, _wall(expected).date(),
                                           _wall(expected).date()) if d.campaign_id == cid]
    assert entry.at == expected
    assert ics_deadlines[entry.uid] == expected

    # The grace window, counted from the slot, with the campaign's own grace.
    publish_at = case.slot_at
    ends = delivery.grace_ends(catalog, cid, publish_at)
    assert ends == case.expected_grace_end(publish_at)
    assert delivery.late_reason(catalog, cid, publish_at, ends) is None
    assert "grace window" in delivery.late_reason(catalog, cid, publish_at,
                                                   ends + timedelta(seconds=1))


# --- the case of the issue, through the CLI ------------------------------------------


@pytest.fixture
def issue_catalog(tmp_path: Path) -> Path:
    root = tmp_path / "campaigns"
    shutil.copytree(SEED, root)
    _write_campaign(root, Case("issue", datetime(2027, 3, 28, 10, 0), "1d", "2h",
                               date(2027, 3, 28), "spring"))
    return root


def test_preview_and_calendar_show_the_deadline_of_the_issue(issue_catalog: Path,
                                                              tmp_path: Path) -> None:
    cid = "dst-2027-03-28-issue"
    runner = CliRunner()
    html = tmp_path / "preview.html"
    result = runner.invoke(cli, ["preview", cid, "--on", "2027-03-28", "--catalog",
                                 str(issue_catalog), "--html", str(html)])
    assert result.exit_code == 0, result.output
    assert "Approval deadline: 2027-03-27 10:00 (CET)" in result.output
    assert "2027-03-28 10:00 (CEST)" in result.output
    assert "Approval deadline: 2027-03-27 10:00 (CET)" in html.read_text(encoding="utf-8")

    ics = tmp_path / "cal.ics"
    result = runner.invoke(cli, ["calendar", "--from", "2027-03-26", "--to", "2027-03-29",
                                 "--catalog", str(issue_catalog), "--ics", str(ics)])
    assert result.exit_code == 0, result.output
    [row] = [line for line in result.output.splitlines()
             if cid in line and "approval deadline" in line]
    assert row.startswith("Sat 2027-03-27  10:00 CET")
    assert "posts from 2027-03-28 10:00 (CEST)" in row
    events = icalendar.Calendar.from_ical(ics.read_bytes()).walk("VEVENT")
    [deadline] = [e for e in events if str(e["SUMMARY"]) == f"Freigabefrist: Zeitumstellung {cid}"]
    start = deadline.decoded("DTSTART")
    assert (start.date(), start.hour, start.minute, start.utcoffset()) == (
        date(2027, 3, 27), 10, 0, CET)
    assert "DTSTART;TZID=Europe/Berlin:20270327T100000" in ics.read_text(encoding="utf-8")
    [post] = [e for e in events if str(e["UID"]).startswith(f"{cid}-2027-03-28T10:00")]
    assert "Approval deadline: 2027-03-27 10:00 (CET)" in str(post["DESCRIPTION"])


def test_the_gate_of_the_issue_asks_and_signs_until_27_march_10_00(
        issue_catalog: Path, sqlite_engine, signer) -> None:
    catalog = load(issue_catalog)
    cid, day = "dst-2027-03-28-issue", date(2027, 3, 28)
    occurrence_id = store_posts(sqlite_engine, catalog, cid, day)
    now = datetime(2027, 3, 20, 9, 0, tzinfo=UTC)
    approval.open_gate(sqlite_engine, catalog, occurrence_id=occurrence_id, now=now)
    outbox = Outbox()
    approval.notify_approvers(sqlite_engine, catalog, occurrence_id=occurrence_id,
                              notifier=outbox, signer=signer, base_url=BASE, now=now)
    [mail] = outbox.to("benz")
    assert "Freigabe bis: Samstag, 27. März 2027, 10:00 Uhr (MEZ)" in mail["text"]
    request = requests_by_person(sqlite_engine, occurrence_id)["benz"]
    assert request.deadline == datetime(2027, 3, 27, 9, 0, tzinfo=UTC)  # 10:00 CET
    token = approval.approval_link(signer, request, BASE).rsplit("/", 1)[1]
    claims = approval.check_link(sqlite_engine, signer, token,
                                 now=datetime(2027, 3, 27, 8, 59, 59, tzinfo=UTC)).claims
    assert claims.expires_at == datetime(2027, 3, 27, 9, 0, tzinfo=UTC)
    with pytest.raises(approval.LinkExpired):
        approval.check_link(sqlite_engine, signer, token,
                            now=datetime(2027, 3, 27, 9, 0, tzinfo=UTC))


def test_publication_runs_due_at_one_second_start_spread_over_the_window():
    """200 occurrences due at one second: their publication runs start within
    [T - preroll - spread, T - preroll], each always at the same time, and spread out —
    no 10-second stretch holds more than three times its share (all at the pre-roll,
    200 runs started after their second on a 2-core machine)."""
    from newsroom.planning import publication_run_start

    due = datetime(2027, 6, 9, 8, 0, tzinfo=BERLIN)
    preroll, spread = timedelta(seconds=45), timedelta(seconds=240)
    starts = [publication_run_start(due, occurrence, preroll=preroll, spread=spread)
              for occurrence in range(1, 201)]
    assert all(due - preroll - spread <= s <= due - preroll for s in starts)
    assert starts == [publication_run_start(due, o, preroll=preroll, spread=spread)
                      for o in range(1, 201)]
    buckets = Counter(int((due - preroll - s).total_seconds() // 10) for s in starts)
    assert len(buckets) == 24 and max(buckets.values()) <= 3 * 200 / 24, buckets
    assert publication_run_start(due, 7, preroll=preroll, spread=timedelta(0)) == due - preroll
