"""Recall (newsroom/recall.py) on a real store and the stand-ins over real HTTP: a
published occurrence taken down on every channel, once; a scheduled, an armed and a held
one never published; one waiting for approval closed with its links void; one being
published awaited and then taken down; a dead process's withdrawal taken over; who may
recall, and who is told."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from publishing_testkit import delivery_runtime, write_service_campaign

from newsroom import recall, store
from newsroom.catalog.roles import NotPermitted
from newsroom.delivery import deliver_occurrence, prepare_occurrence
from newsroom.runtime import Runtime
from newsroom.timeutil import BERLIN

pytestmark = pytest.mark.anyio

# Every API channel of the seed registry that takes a post without an image.
API_CHANNELS = ("mastodon", "bluesky", "linkedin", "facebook", "threads", "telegram",
                "website")


@pytest.fixture
def runtime(tmp_path: Path, standins_url: str, engine, monkeypatch) -> Runtime:
    return delivery_runtime(tmp_path, standins_url, engine, monkeypatch,
                            secret_key="recall-test-secret-key-0123456789-abcdef")


def _posts(standins, campaign_id: str) -> list[dict]:
    return [p for p in standins.posts() if campaign_id in str(p)]


def _shown(standins, campaign_id: str) -> dict[str, int]:
    """How many posts of the campaign each network still shows (by the stand-in's name
    of the network the post is on)."""
    shown: dict[str, int] = {}
    for post in _posts(standins, campaign_id):
        shown.setdefault(post["network"], 0)
        if not post.get("deleted_at"):
            shown[post["network"]] += 1
    return shown


def _deletions(standins, campaign_id: str) -> list[int]:
    return [p.get("deletions", 0) for p in _posts(standins, campaign_id)]


async def _published(runtime: Runtime, campaign_id: str, channels=API_CHANNELS) -> int:
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    write_service_campaign(runtime, campaign_id, slot, channels=channels)
    ready = prepare_occurrence(runtime, campaign_id, slot.astimezone(BERLIN).date())
    report = await deliver_occurrence(runtime, ready, None)
    assert sorted(report.published) == sorted(channels), report
    return ready.occurrence_id


def _actions(runtime: Runtime, campaign_id: str) -> list[tuple[str, str | None]]:
    with store.session_scope(runtime.engine) as session:
        return [(e.action, e.channel) for e in store.audit_trail(session, campaign_id=campaign_id)
                if e.action.startswith("recall.")]


async def test_a_published_occurrence_is_taken_down_on_every_channel_once(runtime, standins):
    occurrence_id = await _published(runtime, "rueckruf-alle")
    assert sum(_shown(standins, "rueckruf-alle").values()) == len(API_CHANNELS)
    report = await recall.recall_occurrence(
        runtime, occurrence_id=occurrence_id, reason="Falscher Termin genannt", by="wolf")
    assert report.ok, report.summary()
    assert {c.channel: c.status for c in report.channels} == dict.fromkeys(API_CHANNELS, "gone")
    assert sum(_shown(standins, "rueckruf-alle").values()) == 0
    assert set(_deletions(standins, "rueckruf-alle")) == {1}
    # The office and the campaign's approver were told, in German, with the reason.
    told = runtime.notifier_override.sent
    assert {m["tag"] for m in told} >= {"amt-kommunikation", "benz"}
    message = next(m for m in told if m["tag"] == "amt-kommunikation")
    assert message["subject"].startswith("Zurückgezogen: Zustellung rueckruf-alle")
    assert "Grund: Falscher Termin genannt" in message["text"]
    assert "Katrin Wolf" in message["text"]
    trail = _actions(runtime, "rueckruf-alle")
    assert sorted(c for a, c in trail if a == "recall.requested") == sorted(API_CHANNELS)
    assert sorted(c for a, c in trail if a == "recall.gone") == sorted(API_CHANNELS)
    assert ("recall.notified", "email") in trail

    # Recalling again deletes nothing twice and says each channel is gone.
    again = await recall.recall_occurrence(
        runtime, occurrence_id=occurrence_id, reason="noch einmal", by="demir")
    assert {c.status for c in again.channels} == {"gone"}
    assert set(_deletions(standins, "rueckruf-alle")) == {1}
    assert [a for a, _ in _actions(runtime, "rueckruf-alle")].count("recall.gone") == len(
        API_CHANNELS)
    with store.session_scope(runtime.engine) as session:
        rows = store.recalls_of(session, occurrence_id=occurrence_id)
    assert {r.requested_by for r in rows} == {"wolf"}  # who and why stay the first's


async def test_one_channel_only(runtime, standins):
    occurrence_id = await _published(runtime, "rueckruf-einer", ("mastodon", "telegram"))
    report = await recall.recall_occurrence(runtime, occurrence_id=occurrence_id,
                                            reason="Tippfehler", by="wolf",
                                            channels=["telegram"])
    assert [(c.channel, c.status) for c in report.channels] == [("telegram", "gone")]
    shown = _shown(standins, "rueckruf-einer")
    assert shown["mastodon"] == 1 and shown["telegram"] == 0
    with pytest.raises(recall.RecallError, match="has no post on instagram"):
        await recall.recall_occurrence(runtime, occurrence_id=occurrence_id,
                                       reason="x", by="wolf", channels=["instagram"])


async def test_a_scheduled_occurrence_is_never_published(runtime, standins):
    slot = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    write_service_campaign(runtime, "rueckruf-geplant", slot)
    ready = prepare_occurrence(runtime, "rueckruf-geplant", slot.astimezone(BERLIN).date())
    report = await recall.recall_occurrence(runtime, occurrence_id=ready.occurrence_id,
                                            reason="Veranstaltung abgesagt", by="wolf")
    assert {c.status for c in report.channels} == {"cancelled"} and report.ok
    delivered = await deliver_occurrence(runtime, ready, None)
    assert delivered.published == {}
    assert sorted(delivered.already) == ["mastodon", "telegram"]
    assert sum(_shown(standins, "rueckruf-geplant").values()) == 0


async def test_an_armed_occurrence_is_disarmed_before_its_second(runtime, standins):
    from newsroom.publishing import arm_occurrence

    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    write_service_campaign(runtime, "rueckruf-scharf", slot)
    ready = prepare_occurrence(runtime, "rueckruf-scharf", slot.astimezone(BERLIN).date())
    armed, _ = arm_occurrence(runtime.engine, occurrence_id=ready.occurrence_id)
    assert sorted(armed) == ["mastodon", "telegram"]
    report = await recall.recall_occurrence(runtime, occurrence_id=ready.occurrence_id,
                                            reason="abgesagt", by="wolf")
    assert {c.status for c in report.channels} == {"cancelled"}
    delivered = await deliver_occurrence(runtime, ready, None)
    assert delivered.published == {}
    assert sum(_shown(standins, "rueckruf-scharf").values()) == 0


async def test_a_post_being_published_is_awaited_then_taken_down(runtime, standins):
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    write_service_campaign(runtime, "rueckruf-laufend", slot, channels=("mastodon",))
    ready = prepare_occurrence(runtime, "rueckruf-laufend", slot.astimezone(BERLIN).date())
    standins.set_faults([{"network": "mastodon", "path_contains": "/api/v1/statuses",
                          "kind": "slow", "delay": 1.5}])
    delivering = asyncio.create_task(deliver_occurrence(runtime, ready, None))

    def sending() -> bool:
        with store.session_scope(runtime.engine) as session:
            rows = store.occurrence_publications(session, occurrence_id=ready.occurrence_id)
            return any(p.status == "publishing" and p.send_started_at for p, _ in rows)

    for _ in range(100):
        if await asyncio.to_thread(sending):
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the post never started being sent")
    report = await recall.recall_occurrence(runtime, occurrence_id=ready.occurrence_id,
                                            reason="falsches Bild", by="wolf")
    delivered = await delivering
    assert delivered.published == {"mastodon": delivered.published["mastodon"]}
    assert [(c.channel, c.status) for c in report.channels] == [("mastodon", "gone")]
    assert _shown(standins, "rueckruf-laufend")["mastodon"] == 0
    assert _deletions(standins, "rueckruf-laufend") == [1]


async def test_an_occurrence_waiting_for_approval_is_closed_and_its_links_void(
        runtime, standins):
    from newsroom import approval

    slot = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    day = slot.astimezone(BERLIN).date()
    write_service_campaign(runtime, "rueckruf-freigabe", slot)
    path = runtime.settings.catalog_dir / "rueckruf-freigabe.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "  pre_approved: true\n", "  deadline_before: 24h\n"), encoding="utf-8")
    ready = prepare_occurrence(runtime, "rueckruf-freigabe", day)
    approval.open_gate(runtime.engine, runtime.catalog, occurrence_id=ready.occurrence_id)
    with store.session_scope(runtime.engine) as session:
        [request] = store.approval_requests(session, occurrence_id=ready.occurrence_id)
    token = approval.approval_link(runtime.signer, request, "http://x").rsplit("/", 1)[1]
    report = await recall.recall_occurrence(runtime, occurrence_id=ready.occurrence_id,
                                            reason="Anlass entfällt", by="wolf")
    assert report.gate_closed and report.voided_links == 1
    assert {c.status for c in report.channels} == {"cancelled"}
    with pytest.raises(approval.ContentChanged):
        approval.check_link(runtime.engine, runtime.signer, token)
    status = approval.evaluate_gate(runtime.engine, runtime.catalog,
                                    occurrence_id=ready.occurrence_id)
    assert status.outcome.value == "cancelled"


async def test_only_who_may_recall_recalls(runtime, standins):
    occurrence_id = await _published(runtime, "rueckruf-rolle", ("mastodon",))
    with pytest.raises(NotPermitted):
        await recall.recall_occurrence(runtime, occurrence_id=occurrence_id,
                                       reason="x", by="hoffmann")
    with pytest.raises(recall.RecallError, match="give the reason"):
        await recall.recall_occurrence(runtime, occurrence_id=occurrence_id,
                                       reason="  ", by="wolf")
    assert _shown(standins, "rueckruf-rolle")["mastodon"] == 1
    assert _actions(runtime, "rueckruf-rolle") == [("recall.refused", None)]


async def test_a_dead_processs_withdrawal_is_taken_over_once(runtime, standins):
    occurrence_id = await _published(runtime, "rueckruf-uebernahme", ("mastodon",))
    with store.session_scope(runtime.engine) as session:
        row, _ = store.ensure_recall(session, occurrence_id=occurrence_id, channel="mastodon",
                                     requested_by="wolf", reason="abgebrochen")
        # A process claimed it three minutes ago and died before calling the network.
        claimed, _ = store.claim_withdrawal(
            session, recall_id=row.id, stale_after=recall.STALE_CLAIM,
            now=datetime.now(UTC) - timedelta(minutes=3))
        assert claimed is not None
    # A fresh claim is not taken over ...
    with store.session_scope(runtime.engine) as session:
        assert store.claim_withdrawal(session, recall_id=row.id,
                                      stale_after=timedelta(hours=1))[0] is None
    # ... a stale one is, by the housekeeping sweep, and the post is deleted once.
    done = await recall.finish_recalls(runtime)
    assert [(c.channel, c.status) for c in done] == [("mastodon", "gone")]
    assert _deletions(standins, "rueckruf-uebernahme") == [1]
    assert await recall.finish_recalls(runtime) == []


async def test_the_report_is_a_markdown_artifact_with_every_channel(runtime, standins):
    occurrence_id = await _published(runtime, "rueckruf-bericht", ("mastodon", "telegram"))
    report = await recall.recall_occurrence(runtime, occurrence_id=occurrence_id,
                                            reason="Name falsch | *Link* kaputt", by="wolf")
    markdown = report.markdown()
    assert "| mastodon | gelöscht (gone) |" in markdown
    assert "| telegram | gelöscht (gone) |" in markdown
    assert r"Name falsch \| \*Link\* kaputt" in markdown
