"""A run that dies between arming its posts and their second leaves them provably unsent:
the next run takes the claim over and sends them — also on a network that does not
recognise a repeat (Telegram) — instead of handing them to a person as "unknown". Only
after the burst's mark ("a request may leave now") is a post treated as possibly sent.
The first claimant, should it wake, finds its claim gone and sends nothing.
Real store, real stand-ins over HTTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from publishing_testkit import delivery_runtime, received, write_service_campaign

from newsroom import store
from newsroom.delivery import deliver_occurrence, prepare_occurrence
from newsroom.publishing import arm_occurrence, disarm
from newsroom.publishing.burst import mark_for_sending
from newsroom.runtime import Runtime
from newsroom.timeutil import BERLIN

pytestmark = pytest.mark.anyio


@pytest.fixture
def runtime(tmp_path: Path, standins_url: str, engine, monkeypatch) -> Runtime:
    return delivery_runtime(tmp_path, standins_url, engine, monkeypatch,
                            secret_key="takeover-test-secret-key-0123456789-abcdef")


def prepared(runtime: Runtime, campaign_id: str, slot: datetime):
    return prepare_occurrence(runtime, campaign_id, slot.astimezone(BERLIN).date())


def publications(runtime: Runtime, armed) -> dict[str, store.Publication]:
    with store.session_scope(runtime.engine) as session:
        return {channel: session.get(store.Publication, p.id) for channel, p in armed.items()}


def actions(runtime: Runtime, campaign_id: str) -> list[tuple[str, str | None, dict]]:
    with store.session_scope(runtime.engine) as session:
        return [(e.action, e.channel, e.detail)
                for e in store.audit_trail(session, campaign_id=campaign_id)]


async def test_armed_by_a_run_that_died_is_sent_by_the_next_once(runtime, standins):
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    write_service_campaign(runtime, "uebernahme-tot", slot)
    ready = prepared(runtime, "uebernahme-tot", slot)
    armed, _ = arm_occurrence(runtime.engine, occurrence_id=ready.occurrence_id)  # then killed
    assert {(p.status, p.send_started_at) for p in publications(runtime, armed).values()} == {
        ("publishing", None)}

    report = await deliver_occurrence(runtime, ready, None)
    assert sorted(report.published) == ["mastodon", "telegram"], report
    assert report.unknown == {}
    assert len(received(standins, "telegram", "uebernahme-tot")) == 1
    assert len(received(standins, "mastodon", "uebernahme-tot")) == 1
    taken = [(channel, detail["attempt"]) for action, channel, detail
             in actions(runtime, "uebernahme-tot")
             if action == "publication.attempt" and detail.get("taken_over")]
    assert sorted(taken) == [("mastodon", 2), ("telegram", 2)]

    # The first run wakes after all: its claim is gone, it may send nothing.
    assert await mark_for_sending(runtime.engine, armed) == set()
    disarm(runtime.engine, armed, "late")  # nor hand anything back
    assert {p.status for p in publications(runtime, armed).values()} == {"published"}
    assert len(received(standins, "telegram", "uebernahme-tot")) == 1


async def test_marked_for_sending_then_killed_is_never_sent_blindly(runtime, standins):
    """After the mark a request may have left: Mastodon repeats it under its Idempotency-Key
    (one status), Telegram cannot tell a repeat and becomes "unknown" for a person."""
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    write_service_campaign(runtime, "uebernahme-markiert", slot)
    ready = prepared(runtime, "uebernahme-markiert", slot)
    armed, _ = arm_occurrence(runtime.engine, occurrence_id=ready.occurrence_id)
    ours = await mark_for_sending(runtime.engine, armed)  # then killed before the sends
    assert ours == {p.id for p in armed.values()}
    assert all(p.send_started_at is not None for p in publications(runtime, armed).values())

    report = await deliver_occurrence(runtime, ready, None)
    assert sorted(report.published) == ["mastodon"]
    assert sorted(report.unknown) == ["telegram"]
    assert received(standins, "telegram", "uebernahme-markiert") == []
    assert len(received(standins, "mastodon", "uebernahme-markiert")) == 1


async def test_armed_by_a_dead_run_and_now_too_late_is_skipped_not_unknown(runtime, standins):
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    write_service_campaign(runtime, "uebernahme-verpasst", slot, grace="2h")
    ready = prepared(runtime, "uebernahme-verpasst", slot)
    arm_occurrence(runtime.engine, occurrence_id=ready.occurrence_id)  # then killed

    report = await deliver_occurrence(runtime, ready, None)
    assert report.unknown == {}
    assert sorted(report.skipped) == ["mastodon", "telegram"]
    with store.session_scope(runtime.engine) as session:
        statuses = {p.channel: p.status for p, _ in
                    store.occurrence_publications(session, occurrence_id=ready.occurrence_id)}
    assert statuses == {"mastodon": "skipped", "telegram": "skipped"}


async def test_a_burst_is_marked_in_one_transaction(runtime, standins, monkeypatch):
    slot = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    ids = [f"uebernahme-welle-{n}" for n in range(12)]
    armings = []
    for campaign_id in ids:
        write_service_campaign(runtime, campaign_id, slot)
    for campaign_id in ids:
        ready = prepared(runtime, campaign_id, slot)
        armings.append(arm_occurrence(runtime.engine, occurrence_id=ready.occurrence_id)[0])
    transactions = []
    real = store.mark_sending

    def counted(session, *, claims, **kwargs):
        transactions.append(len(claims))
        return real(session, claims=claims, **kwargs)

    monkeypatch.setattr(store, "mark_sending", counted)
    marked = await asyncio.gather(*(mark_for_sending(runtime.engine, armed)
                                    for armed in armings))
    assert transactions == [24]  # 12 occurrences x 2 channels, one commit
    for armed, ours in zip(armings, marked, strict=True):
        assert ours == {p.id for p in armed.values()}  # each occurrence gets its own
