"""Crisis mode: the crisis flow on a real Prefect server (test harness) with the Newsroom
worker, the stand-in channels and a mail catcher; the freeze and the release in-process.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flow_testkit import create_run, flow_stack, wait_done, wait_for, wait_for_state

from newsroom import approval, crisis, store
from newsroom.delivery import deliver_occurrence, prepare_occurrence
from newsroom.runtime import get_runtime
from newsroom.standins import StandinControl
from newsroom.timeutil import BERLIN

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
POOL = "newsroom-crisis"
# The stand-in network of each API channel of unwetterwarnung; presse is e-mail, whatsapp
# is manual (its owner, the Amt für Kommunikation, gets the copy-ready text).
API_CHANNELS = {"mastodon": "mastodon", "bluesky": "bluesky", "facebook": "facebook",
                "telegram": "telegram", "website": "cms"}
PRESS = "newsdesk@example.org"
OFFICE = "kommunikation@example.org"


@pytest.fixture(scope="module")
def stack(prefect_server, tmp_path_factory):
    with flow_stack(tmp_path_factory.mktemp("crisis"), POOL) as ns:
        yield ns


@pytest.fixture(autouse=True)
def no_crisis_left(stack):
    yield
    crisis.end_crisis(get_runtime().engine, by="test-cleanup")


def _posts_with(control: StandinControl, network: str, marker: str) -> list[dict]:
    return [p for p in control.posts(network) if marker in str(p)]


def test_crisis_run_publishes_on_every_crisis_channel_at_once(stack):
    marker = "Testunwetter Alpha"
    run_id = create_run(stack.deployments["crisis"], {
        "campaign_id": "unwetterwarnung", "ereignis": marker, "gueltig_bis": "heute, 23:00 Uhr",
        "started_by": "demir"})
    message = wait_done(run_id)
    assert "published on 6 channel(s), 1 awaiting manual post" in message
    arrivals = []
    for channel, network in API_CHANNELS.items():
        posts = _posts_with(stack.standins, network, marker)
        assert len(posts) == 1, (channel, posts)
        arrivals.append(posts[0]["created_at"]["monotonic"])
    # Published concurrently: all arrive within a short window of each other.
    assert max(arrivals) - min(arrivals) < 1.5
    press = wait_for(lambda: [m for m in stack.mail.to(PRESS) if marker in str(m)])
    assert len(press) == 1
    assert wait_for(lambda: [m for m in stack.mail.to(OFFICE) if marker in str(m)])

    engine = get_runtime().engine
    active = crisis.active_crisis(engine)
    assert [c.started_by for c in active] == ["demir"]
    assert active[0].variables["ereignis"] == marker
    with store.session_scope(engine) as session:
        actions = [e.action for e in store.audit_trail(session, campaign_id="unwetterwarnung")]
    assert "crisis.started" in actions and actions.count("publication.reserved") >= 7


def test_same_trigger_retried_never_publishes_twice(stack):
    marker = "Testunwetter Beta"
    params = {"campaign_id": "unwetterwarnung", "ereignis": marker, "started_by": "wolf",
              "trigger_key": "test-retry-beta"}
    wait_done(create_run(stack.deployments["crisis"], params))
    # The same trigger again: through Prefect (a retried run) and in-process (another
    # process holding the same trigger key).
    wait_done(create_run(stack.deployments["crisis"], params))
    runtime = get_runtime()
    start = crisis.start_crisis(runtime, "unwetterwarnung", {"ereignis": marker}, by="wolf",
                                trigger_key="test-retry-beta")
    assert not start.created
    report = asyncio.run(crisis.publish_crisis(runtime, start))
    assert not report.published and set(report.already) >= set(API_CHANNELS)
    for network in API_CHANNELS.values():
        assert len(_posts_with(stack.standins, network, marker)) == 1, network
    assert len([m for m in stack.mail.to(PRESS) if marker in str(m)]) == 1
    assert len([c for c in crisis.active_crisis(runtime.engine)
                if c.trigger_key == "test-retry-beta"]) == 1


def test_crisis_twice_the_same_day_publishes_twice(stack):
    runtime = get_runtime()
    markers = ["Testunwetter Gamma eins", "Testunwetter Gamma zwei"]
    for marker in markers:
        start = crisis.start_crisis(runtime, "unwetterwarnung", {"ereignis": marker},
                                    by="wolf")
        report = asyncio.run(crisis.publish_crisis(runtime, start))
        assert set(report.published) == set(API_CHANNELS) | {"presse"}, report
    with store.session_scope(runtime.engine) as session:
        days = {o.occurrence_date for o in session.exec(
            store.Occurrence.__table__.select().where(
                store.Occurrence.campaign_id == "unwetterwarnung"))}
    assert datetime.now(BERLIN).date() in days
    for network in API_CHANNELS.values():
        for marker in markers:
            # "Gamma eins" is not in "Gamma zwei": each message once, distinct posts
            assert len(_posts_with(stack.standins, network, marker)) == 1, (network, marker)


def _routine_campaign(catalog: Path, campaign_id: str, slot: datetime, grace: str, *,
                      pre_approved: bool = True, later: datetime | None = None) -> None:
    """A routine post on Mastodon at ``slot`` (and on Bluesky at ``later``, if given)."""
    slots = [(slot, "mastodon")] + ([(later, "bluesky")] if later else [])
    slot_lines = "".join(f'  - at: "{at.astimezone(BERLIN):%Y-%m-%d %H:%M:%S}"\n'
                         f"    channels: [{channel}]\n" for at, channel in slots)
    (catalog / f"{campaign_id}.yaml").write_text(f"""\
id: {campaign_id}
title: Routinepost {campaign_id}
topic: Service
kind: service_information
requested_by: {{office: amt-kommunikation}}
approval:
  approvers:
    - person: benz
  pre_approved: {"true" if pre_approved else "false"}
  deadline_before: 1s
slots:
{slot_lines}late:
  grace: {grace}
content:
  text: "Routinehinweis {campaign_id}: Der Wertstoffhof hat heute geöffnet."
""", encoding="utf-8")


def _freeze_and_hold(stack, campaign_id: str, grace: str, *, pre_approved: bool = True):
    runtime = get_runtime()
    start = crisis.start_crisis(runtime, "unwetterwarnung",
                                {"ereignis": f"Freeze {campaign_id}"}, by="wolf")
    asyncio.run(crisis.publish_crisis(runtime, start))
    slot = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0) + timedelta(
        seconds=1)
    _routine_campaign(stack.catalog, campaign_id, slot, grace, pre_approved=pre_approved)
    prepared = prepare_occurrence(runtime, campaign_id, slot.astimezone(BERLIN).date())
    status = None
    if not pre_approved:
        approval.open_gate(runtime.engine, runtime.catalog,
                           occurrence_id=prepared.occurrence_id)
        status = approval.admin_decision(runtime.engine, runtime.catalog,
                                         occurrence_id=prepared.occurrence_id,
                                         decision="approve", comment="ok", admin="wolf",
                                         via="cli")
    report = asyncio.run(deliver_occurrence(runtime, prepared, status))
    assert set(report.held) == {"mastodon"} and not report.published, report
    assert not _posts_with(stack.standins, "mastodon", f"Routinehinweis {campaign_id}")
    held = {h.occurrence_id: h for h in crisis.held_publications(runtime)}
    assert prepared.occurrence_id in held
    assert [c for c, _ in held[prepared.occurrence_id].channels] == ["mastodon"]
    with store.session_scope(runtime.engine) as session:
        events = store.audit_trail(session, campaign_id=campaign_id)
    assert [e.action for e in events if e.action == "publication.held"] == ["publication.held"]
    return runtime, prepared


def test_freeze_holds_a_scheduled_post_and_release_publishes_it_once(stack):
    runtime, prepared = _freeze_and_hold(stack, "routine-halten", "2h")
    with pytest.raises(crisis.CrisisError, match="still active"):
        asyncio.run(crisis.release_held(runtime, prepared.occurrence_id, by="Amt"))
    ended = crisis.end_crisis(runtime.engine, by="Einsatzleitung")
    assert ended and not crisis.active_crisis(runtime.engine)
    # Ending the crisis releases nothing by itself: the office looks first.
    time.sleep(0.5)
    assert not _posts_with(stack.standins, "mastodon", "Routinehinweis routine-halten")
    report = asyncio.run(crisis.release_held(runtime, prepared.occurrence_id,
                                             by="Amt für Kommunikation"))
    assert set(report.published) == {"mastodon"}, report
    assert len(_posts_with(stack.standins, "mastodon", "Routinehinweis routine-halten")) == 1
    with pytest.raises(crisis.CrisisError, match="not held"):
        asyncio.run(crisis.release_held(runtime, prepared.occurrence_id, by="Amt"))
    assert len(_posts_with(stack.standins, "mastodon", "Routinehinweis routine-halten")) == 1
    assert prepared.occurrence_id not in {h.occurrence_id
                                          for h in crisis.held_publications(runtime)}


def test_release_outside_the_grace_window_skips_and_reports(stack):
    runtime, prepared = _freeze_and_hold(stack, "routine-verpasst", "1s")
    time.sleep(2.5)
    crisis.end_crisis(runtime.engine, by="Einsatzleitung")
    held = {h.occurrence_id: h for h in crisis.held_publications(runtime)}
    assert "grace window" in (held[prepared.occurrence_id].late_reason or "")
    report = asyncio.run(crisis.release_held(runtime, prepared.occurrence_id, by="Amt"))
    assert not report.published
    assert "grace window" in report.skipped["mastodon"]
    assert not _posts_with(stack.standins, "mastodon", "Routinehinweis routine-verpasst")
    with store.session_scope(runtime.engine) as session:
        actions = [e.action for e in store.audit_trail(session,
                                                       campaign_id="routine-verpasst")]
        occurrence = session.get(store.Occurrence, prepared.occurrence_id)
        assert occurrence.status == "skipped"
    assert "publication.released" in actions and "publication.skipped_late" in actions


def test_reschedule_publishes_a_held_post_once_at_the_new_time(stack):
    runtime, prepared = _freeze_and_hold(stack, "routine-verschoben", "2h")
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    with pytest.raises(crisis.CrisisError, match="still active"):
        crisis.reschedule_held(runtime, prepared.occurrence_id, soon, by="Amt")
    crisis.end_crisis(runtime.engine, by="Einsatzleitung")
    with pytest.raises(crisis.CrisisError, match="not in the future"):
        crisis.reschedule_held(runtime, prepared.occurrence_id,
                               datetime.now(UTC) - timedelta(seconds=1), by="Amt")
    item = crisis.reschedule_held(runtime, prepared.occurrence_id, soon, by="Amt")
    assert [c for c, _ in item.channels] == ["mastodon"]
    assert prepared.occurrence_id not in {h.occurrence_id
                                          for h in crisis.held_publications(runtime)}

    moved = prepare_occurrence(runtime, "routine-verschoben", prepared.occurrence_date)
    assert [p.publish_at for p in moved.posts] == [soon]
    assert moved.bundle_hash != prepared.bundle_hash  # the time is part of the content
    report = asyncio.run(deliver_occurrence(runtime, moved, None))
    assert set(report.published) == {"mastodon"}, report
    [post] = _posts_with(stack.standins, "mastodon", "Routinehinweis routine-verschoben")
    received = datetime.fromisoformat(post["created_at"]["wall"])
    assert soon <= received < soon + timedelta(seconds=1), (soon, received)
    # Run again (a retried run): nothing twice (already recorded, or re-sent with the
    # same idempotency key while the first result was still being recorded).
    again = asyncio.run(deliver_occurrence(
        runtime, prepare_occurrence(runtime, "routine-verschoben", prepared.occurrence_date),
        None))
    assert (again.already == {"mastodon": "published"}
            or again.published == report.published), again
    assert len(_posts_with(stack.standins, "mastodon", "Routinehinweis routine-verschoben")) == 1
    with store.session_scope(runtime.engine) as session:
        actions = [e.action for e in store.audit_trail(session,
                                                       campaign_id="routine-verschoben")]
    assert "publication.rescheduled" in actions


def test_reschedule_of_a_partly_published_occurrence_moves_only_the_held_post(stack):
    """Mastodon went out before the crisis, Bluesky (three seconds later) was held: the
    move publishes Bluesky at the new time and never Mastodon again."""
    runtime = get_runtime()
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    second = first + timedelta(seconds=3)
    _routine_campaign(stack.catalog, "routine-zweiteilig", first, "2h", later=second)
    day = first.astimezone(BERLIN).date()
    prepared = prepare_occurrence(runtime, "routine-zweiteilig", day)
    crisis_starts = threading.Timer(
        (first - datetime.now(UTC)).total_seconds() + 1.0,
        lambda: crisis.start_crisis(runtime, "unwetterwarnung",
                                    {"ereignis": "Freeze zweiteilig"}, by="wolf"))
    crisis_starts.start()
    report = asyncio.run(deliver_occurrence(runtime, prepared, None))
    crisis_starts.join()
    assert set(report.published) == {"mastodon"} and set(report.held) == {"bluesky"}, report
    crisis.end_crisis(runtime.engine, by="Einsatzleitung")

    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    item = crisis.reschedule_held(runtime, prepared.occurrence_id, soon, by="Amt")
    assert [c for c, _ in item.channels] == ["bluesky"]
    moved = prepare_occurrence(runtime, "routine-zweiteilig", day)
    assert {p.channel: p.publish_at for p in moved.posts} == {"mastodon": first,
                                                              "bluesky": soon}
    again = asyncio.run(deliver_occurrence(runtime, moved, None))
    assert set(again.published) == {"bluesky"} and set(again.already) == {"mastodon"}, again
    marker = "Routinehinweis routine-zweiteilig"
    assert len(_posts_with(stack.standins, "mastodon", marker)) == 1
    [late_post] = _posts_with(stack.standins, "bluesky", marker)
    assert datetime.fromisoformat(late_post["created_at"]["wall"]) >= soon


def test_reschedule_respects_the_grace_window_of_the_original_time(stack):
    runtime, prepared = _freeze_and_hold(stack, "routine-zu-spaet", "1m")
    crisis.end_crisis(runtime.engine, by="Einsatzleitung")
    later = datetime.now(UTC) + timedelta(minutes=5)
    with pytest.raises(crisis.CrisisError, match="grace window"):
        crisis.reschedule_held(runtime, prepared.occurrence_id, later, by="Amt")
    held = {h.occurrence_id for h in crisis.held_publications(runtime)}
    assert prepared.occurrence_id in held  # refused: still held, nothing lost


def test_reschedule_asks_the_approvers_again_about_the_new_time(stack):
    runtime, prepared = _freeze_and_hold(stack, "routine-freigabe", "2h",
                                         pre_approved=False)
    crisis.end_crisis(runtime.engine, by="Einsatzleitung")
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=30)
    crisis.reschedule_held(runtime, prepared.occurrence_id, soon, by="Amt")
    moved = prepare_occurrence(runtime, "routine-freigabe", prepared.occurrence_date)
    status = approval.open_gate(runtime.engine, runtime.catalog,
                                occurrence_id=prepared.occurrence_id)
    assert status.outcome == approval.GateOutcome.PENDING, status
    assert status.asked == ("benz",) and status.bundle_hash == moved.bundle_hash
    with store.session_scope(runtime.engine) as session:
        requests = store.approval_requests(session, occurrence_id=prepared.occurrence_id)
        pending = [r for r in requests if r.status == "pending"]
    assert [r.bundle_hash for r in pending] == [moved.bundle_hash]
    with pytest.raises(Exception, match="gate"):
        asyncio.run(deliver_occurrence(runtime, moved, approval.evaluate_gate(
            runtime.engine, runtime.catalog, occurrence_id=prepared.occurrence_id)))
    assert not _posts_with(stack.standins, "mastodon", "Routinehinweis routine-freigabe")


def test_cli_reschedule_starts_the_campaign_run_that_publishes_at_the_new_time(stack):
    from click.testing import CliRunner

    from newsroom.cli import cli

    runtime, prepared = _freeze_and_hold(stack, "routine-cli-verschoben", "2h")
    runner = CliRunner()
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    at_text = at.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M:%S")
    args = ["crisis", "reschedule", str(prepared.occurrence_id), "--at", at_text,
            "--by", "Amt für Kommunikation"]
    refused = runner.invoke(cli, args)
    assert refused.exit_code == 1 and "still active" in refused.output, refused.output
    bad_time = runner.invoke(cli, [*args[:3], "--at", "25:00"])
    assert bad_time.exit_code == 2 and "hour must be in 0..23" in bad_time.output, (
        bad_time.output)
    assert "unexpected error" not in bad_time.output
    runner.invoke(cli, ["crisis", "end", "--by", "Leitstelle"])
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "moved to" in result.output and "campaign run" in result.output, result.output
    marker = "Routinehinweis routine-cli-verschoben"
    assert wait_for(lambda: _posts_with(stack.standins, "mastodon", marker), timeout=60)
    [post] = _posts_with(stack.standins, "mastodon", marker)
    assert datetime.fromisoformat(post["created_at"]["wall"]) >= at  # never early
    later = (datetime.now(UTC) + timedelta(minutes=5)).astimezone(BERLIN)
    again = runner.invoke(cli, [*args[:3], "--at", f"{later:%Y-%m-%d %H:%M}"])
    assert again.exit_code == 1 and "not held" in again.output, again.output


def test_fast_path_waits_for_the_one_approver_then_publishes(stack):
    """A crisis template that is not pre-approved: the one approver is asked (e-mail with a
    short deadline), the run suspends; an admin decides it from the CLI, naming the
    crisis (one campaign may be triggered several times a day), and it publishes."""
    from click.testing import CliRunner

    from newsroom.cli import cli

    template = (stack.catalog / "unwetterwarnung.yaml").read_text(encoding="utf-8")
    (stack.catalog / "gefahrenlage.yaml").write_text(
        template.replace("id: unwetterwarnung", "id: gefahrenlage")
        .replace("pre_approved: true", "pre_approved: false")
        .replace("[mastodon, bluesky, facebook, telegram, website, presse, whatsapp]",
                 "[mastodon, bluesky]"), encoding="utf-8")
    marker = "Testgefahr Zeta"
    run_id = create_run(stack.deployments["crisis"], {
        "campaign_id": "gefahrenlage", "ereignis": marker, "deadline_minutes": 5,
        "started_by": "wolf"})
    assert wait_for_state(run_id, {"Suspended"}, 60) == "Suspended"
    [message] = stack.mail.wait_for("ordnungsdezernat@example.org", timeout=30)
    assert "Freigabe" in message["subject"]
    assert not _posts_with(stack.standins, "mastodon", marker)

    runtime = get_runtime()
    [record] = [c for c in crisis.active_crisis(runtime.engine)
                if c.campaign_id == "gefahrenlage"]
    day = datetime.now(BERLIN).date().isoformat()
    runner = CliRunner()
    unnamed = runner.invoke(cli, ["approve", "gefahrenlage", day, "--as", "demir"])
    assert unnamed.exit_code == 1 and "--crisis" in unnamed.output, unnamed.output
    result = runner.invoke(cli, ["approve", "gefahrenlage", day, "--crisis", str(record.id),
                                 "--as", "demir", "--comment", "Lage bestätigt"])
    assert result.exit_code == 0 and "resumed" in result.output, result.output
    assert wait_for_state(run_id, {"Completed"}, 60) == "Completed"
    for network in ("mastodon", "bluesky"):
        assert len(_posts_with(stack.standins, network, marker)) == 1, network


def test_unknown_variable_is_refused_with_a_suggestion(stack):
    with pytest.raises(crisis.CrisisError, match="did you mean 'ereignis'"):
        crisis.start_crisis(get_runtime(), "unwetterwarnung", {"ereignis_": "x"}, by="wolf")
    with pytest.raises(crisis.CrisisError, match="not a crisis campaign"):
        crisis.start_crisis(get_runtime(), "trikottag", {}, by="wolf")


def test_cli_start_via_prefect_and_direct_then_status_and_end(stack):
    from click.testing import CliRunner

    from newsroom.cli import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["crisis", "start", "unwetterwarnung", "--set",
                                 "ereignis=Testunwetter Delta", "--set",
                                 "hinweise=Drinnen bleiben.|Notruf: 112.", "--by", "wolf"])
    assert result.exit_code == 0, result.output
    assert "crisis run" in result.output
    for network in API_CHANNELS.values():
        assert wait_for(lambda n=network: _posts_with(stack.standins, n,
                                                       "Testunwetter Delta")), network
    assert "Drinnen bleiben" in str(_posts_with(stack.standins, "mastodon",
                                                "Testunwetter Delta"))
    result = runner.invoke(cli, ["crisis", "start", "unwetterwarnung", "--direct", "--set",
                                 "ereignis=Testunwetter Epsilon", "--by", "wolf"])
    assert result.exit_code == 0, result.output
    assert "mastodon: published" in result.output
    assert len(_posts_with(stack.standins, "mastodon", "Testunwetter Epsilon")) == 1

    result = runner.invoke(cli, ["crisis", "status"])
    assert result.exit_code == 0 and "ACTIVE crisis" in result.output, result.output
    result = runner.invoke(cli, ["crisis", "end", "--by", "Leitstelle"])
    assert result.exit_code == 0 and "ended" in result.output, result.output
    assert "no active crisis" in runner.invoke(cli, ["crisis", "status"]).output
