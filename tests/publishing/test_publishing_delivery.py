"""Delivering an approved occurrence: at its time, never early, never twice; a missed slot
inside the grace window still goes out, outside it (or the day after, for a campaign that
publishes on its day only) it is skipped and reported. Real store, real stand-ins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from publishing_testkit import delivery_runtime, write_service_campaign

from newsroom import store
from newsroom.delivery import DeliveryError, deliver_occurrence, prepare_occurrence
from newsroom.runtime import Runtime
from newsroom.timeutil import BERLIN

pytestmark = pytest.mark.anyio


@pytest.fixture
def runtime(tmp_path: Path, standins_url: str, engine, monkeypatch) -> Runtime:
    return delivery_runtime(tmp_path, standins_url, engine, monkeypatch,
                            secret_key="delivery-test-secret-key-0123456789-abcdef")


def posts_for(standins, campaign_id: str) -> list[dict]:
    return [p for network in ("mastodon", "telegram") for p in standins.posts(network)
            if campaign_id in str(p)]


def prepared(runtime: Runtime, campaign_id: str, slot: datetime):
    return prepare_occurrence(runtime, campaign_id, slot.astimezone(BERLIN).date())


async def test_waits_for_the_slot_and_is_never_early(runtime, standins):
    slot = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    write_service_campaign(runtime, "zustellung-puenktlich", slot)
    report = await deliver_occurrence(runtime, prepared(runtime, "zustellung-puenktlich", slot),
                                      None)
    assert sorted(report.published) == ["mastodon", "telegram"]
    received = posts_for(standins, "zustellung-puenktlich")
    assert len(received) == 2
    for post in received:
        arrived = datetime.fromisoformat(post["created_at"]["wall"])
        assert arrived >= slot, (arrived, slot)
        assert (arrived - slot).total_seconds() < 5


async def test_delivering_twice_publishes_once(runtime, standins):
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    write_service_campaign(runtime, "zustellung-einmal", slot)
    first = await deliver_occurrence(runtime, prepared(runtime, "zustellung-einmal", slot), None)
    second = await deliver_occurrence(runtime, prepared(runtime, "zustellung-einmal", slot), None)
    assert sorted(first.published) == ["mastodon", "telegram"]
    assert second.published == {}
    assert sorted(second.already) == ["mastodon", "telegram"]
    assert len(posts_for(standins, "zustellung-einmal")) == 2


async def test_missed_slot_inside_the_grace_window_is_published(runtime, standins):
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=50)
    write_service_campaign(runtime, "zustellung-spaet", slot, grace="1h")
    report = await deliver_occurrence(runtime, prepared(runtime, "zustellung-spaet", slot), None)
    assert sorted(report.published) == ["mastodon", "telegram"]
    assert report.lateness_s["mastodon"] > 50 * 60 - 5
    assert len(posts_for(standins, "zustellung-spaet")) == 2


async def test_missed_slot_outside_the_grace_window_is_skipped_and_reported(runtime, standins):
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    write_service_campaign(runtime, "zustellung-verpasst", slot, grace="2h")
    ready = prepared(runtime, "zustellung-verpasst", slot)
    report = await deliver_occurrence(runtime, ready, None)
    assert report.published == {}
    assert sorted(report.skipped) == ["mastodon", "telegram"]
    assert "more than 2h late" in report.skipped["mastodon"]
    assert "skipped" in report.markdown(runtime.catalog)
    assert posts_for(standins, "zustellung-verpasst") == []
    with store.session_scope(runtime.engine) as session:
        events = store.audit_trail(session, campaign_id="zustellung-verpasst")
        occurrence = session.get(store.Occurrence, ready.occurrence_id)
        assert occurrence.status == "skipped"
    assert [e.channel for e in events if e.action == "publication.skipped_late"] == [
        "mastodon", "telegram"]


async def test_a_day_only_campaign_never_goes_out_the_day_after(runtime, standins):
    """Due 23:30, delivered 40 minutes later (inside the 2 h grace, but the next day)."""
    due = datetime(2027, 1, 27, 23, 30, tzinfo=BERLIN)
    write_service_campaign(runtime, "zustellung-gedenktag", due, grace="2h", same_day_only=True)
    report = await deliver_occurrence(
        runtime, prepared(runtime, "zustellung-gedenktag", due), None,
        clock=lambda: datetime(2027, 1, 28, 0, 10, tzinfo=BERLIN).astimezone(UTC))
    assert report.published == {}
    assert "on its day only" in report.skipped["mastodon"]
    assert posts_for(standins, "zustellung-gedenktag") == []


async def test_same_day_only_refuses_the_next_day_inside_the_grace_window(runtime, standins):
    """The rule itself, independent of the wall clock: due 23:30, now 00:10 the next day."""
    from newsroom.delivery import late_reason

    write_service_campaign(runtime, "zustellung-tagesgenau", datetime.now(UTC), same_day_only=True)
    due = datetime(2027, 1, 27, 23, 30, tzinfo=BERLIN)
    reason = late_reason(runtime.catalog, "zustellung-tagesgenau", due,
                          datetime(2027, 1, 28, 0, 10, tzinfo=BERLIN))
    assert reason is not None and "on its day only" in reason
    assert late_reason(runtime.catalog, "zustellung-tagesgenau", due,
                        datetime(2027, 1, 27, 23, 50, tzinfo=BERLIN)) is None


async def test_nothing_is_published_without_approval(runtime, standins):
    from newsroom import approval

    slot = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=5)
    ready = prepare_occurrence(runtime, "tag-der-kinderhospizarbeit",
                               datetime(2027, 2, 10).date())
    approval.open_gate(runtime.engine, runtime.catalog, occurrence_id=ready.occurrence_id)
    status = approval.evaluate_gate(runtime.engine, runtime.catalog,
                                    occurrence_id=ready.occurrence_id)
    assert not status.settled
    with pytest.raises(DeliveryError, match="nothing is published"):
        await deliver_occurrence(runtime, ready, status)
    assert slot  # the seed campaign's own date is used
    assert standins.posts("mastodon") == []


async def test_armed_then_disarmed_publications_go_out_once_later(runtime, standins):
    """Armed ahead of the second, then not sent (e.g. held): back to "reserved" with the
    attempt uncounted; the next delivery publishes each channel once."""
    from newsroom.publishing import arm_occurrence, disarm

    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    write_service_campaign(runtime, "zustellung-scharf", slot)
    ready = prepared(runtime, "zustellung-scharf", slot)
    armed, posts = arm_occurrence(runtime.engine, occurrence_id=ready.occurrence_id)
    assert sorted(armed) == ["mastodon", "telegram"] and len(posts) == 2
    assert {p.status for p in armed.values()} == {"publishing"}
    again, _ = arm_occurrence(runtime.engine, occurrence_id=ready.occurrence_id)
    assert again == {}  # already publishing: never armed twice
    disarm(runtime.engine, armed, "held: test")
    with store.session_scope(runtime.engine) as session:
        rows = [session.get(store.Publication, p.id) for p in armed.values()]
        assert {(r.status, r.attempts) for r in rows} == {("reserved", 0)}
    report = await deliver_occurrence(runtime, ready, None)
    assert sorted(report.published) == ["mastodon", "telegram"]
    assert len(posts_for(standins, "zustellung-scharf")) == 2


async def test_delivering_again_tries_a_transient_failure_and_reports_a_refusal(runtime,
                                                                               standins):
    """The campaign run again (Prefect's *Retry*): what failed without going out is sent
    (once); what the network refused stays failed and says so, until the office retries."""
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    write_service_campaign(runtime, "zustellung-nochmal", slot)
    # Telegram asks to wait longer than a run waits: failed, nothing went out.
    standins.set_faults([{"network": "telegram", "path_contains": "/sendMessage",
                          "kind": "429", "retry_after": 600},
                         {"network": "mastodon", "path_contains": "/api/v1/statuses",
                          "kind": "401"}])
    ready = prepared(runtime, "zustellung-nochmal", slot)
    first = await deliver_occurrence(runtime, ready, None)
    assert set(first.failed) == {"mastodon", "telegram"}, first
    second = await deliver_occurrence(runtime, ready, None)
    assert set(second.published) == {"telegram"}, second
    assert set(second.failed) == {"mastodon"} and "HTTP 401" in second.failed["mastodon"]
    assert second.already == {}
    assert [p["network"] for p in posts_for(standins, "zustellung-nochmal")] == ["telegram"]
