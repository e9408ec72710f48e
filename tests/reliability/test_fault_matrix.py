"""The fault matrix: every network of the stand-ins (and the press e-mail over a real SMTP
server) × every fault, published through ``newsroom.publishing`` over real HTTP on
127.0.0.1 with a real store. Each cell asserts what happens (posts counted at the
stand-in: never two), what the office is told, and what a re-run does. The expectations
are ``fault_table.py``, which is also the table in docs/RELIABILITY.md.

Not repeated here (tests/channels/test_channel_faults.py and
tests/publishing/test_publishing_exactly_once.py have them): the exact waits per network,
crashes between reserving and sending, races between workers, resolving "unknown".
"""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import httpx
import pytest
from fault_table import FAULTS, MARK_BEGIN, MARK_END, cells, markdown
from pydantic import SecretStr
from reliability_kit import (
    CREATE,
    HTTP_CHANNELS,
    POST_NETWORK,
    RECIPIENTS,
    STANDIN_NETWORK,
    Alerts,
    Sleeps,
    account,
    rendered,
    secret,
    store_occurrence,
)

from newsroom import store
from newsroom.notify import ALERT_TAG
from newsroom.publishing import publish_occurrence, publish_post

pytestmark = pytest.mark.anyio
DOC = Path(__file__).resolve().parents[2] / "docs" / "RELIABILITY.md"
SLOW_CLIENT_TIMEOUT = 0.7


def _params():
    for channel, fault, code in cells():
        if code is None:
            continue
        yield pytest.param(channel, fault, code, id=f"{channel}-{fault}")


def _count(channel: str, standins, smtp) -> dict[str, int]:
    """Posts (or mails per recipient) the network holds."""
    if channel == "presse":
        delivered = smtp[0].delivered()
        return {r: delivered.count(r) for r in RECIPIENTS}
    return {channel: len(standins.posts(POST_NETWORK[channel]))}


def _creates(channel: str, standins) -> int:
    if channel == "presse":
        return -1
    return len([r for r in standins.requests(STANDIN_NETWORK[channel])
                if CREATE[channel] in r["path"]])


@pytest.mark.parametrize(("channel", "fault", "code"), list(_params()))
async def test_fault_matrix(channel, fault, code, standins, smtp, engine, tmp_path) -> None:
    handler, port = smtp
    spec = FAULTS[fault]
    _, ids = store_occurrence(engine, [rendered(channel)])
    alerts, sleeps = Alerts(), Sleeps()
    if channel == "presse":
        handler.set_fault(spec.smtp[0], times=spec.smtp[1],
                          delay=(spec.http or {}).get("delay", 0.0))
    else:
        standins.set_faults([{"network": STANDIN_NETWORK[channel],
                              "path_contains": CREATE[channel], **spec.http}])
    timeout = SLOW_CLIENT_TIMEOUT if fault == "slow" else 10.0
    options = {"website": {"feed_path": tmp_path / "feed.atom"},
               "presse": {"smtp_timeout": timeout}}.get(channel)
    async with httpx.AsyncClient(timeout=timeout) as client:
        def run():
            return publish_post(
                engine=engine, post_id=ids[channel], account=account(channel,
                                                                     standins.base_url, port),
                client=client, credential=SecretStr(secret(channel)), notifier=alerts,
                sleep=sleeps, max_attempts=5, publisher_options=options)

        first = await run()
        if fault == "slow":  # let the network finish what it was slow at
            await asyncio.sleep(spec.http["delay"] + 0.5)
        if channel == "presse":
            assert handler.times < spec.smtp[1] or handler.fault is None, "fault not hit"
        else:
            assert any(r.get("fault") for r in standins.requests()), "fault not hit"
        standins.set_faults([])
        handler.set_fault(None)
        creates_before = _creates(channel, standins)
        again = await run()  # the next run (or a repeat), faults gone

    counts = _count(channel, standins, smtp)
    assert max(counts.values()) <= 1, f"posted twice: {counts}"  # never two
    with store.session_scope(engine) as session:
        stored = store.get_publication(session, post_id=ids[channel], channel=channel)
    assert stored is not None

    if code == "found":
        assert first.status == again.status == "published", first.error
        assert set(counts.values()) == {1}
        assert sleeps == [] and alerts.sent == []  # looked up, not sent again
        assert creates_before == 1  # one create, ever
        assert stored.remote_id == str(standins.posts(POST_NETWORK[channel])[0]["id"])
        assert not again.network_called and _creates(channel, standins) == creates_before
        with store.session_scope(engine) as session:  # the audit trail says how it was known
            [published] = [e for e in store.audit_trail(session, campaign_id="trikottag")
                           if e.action == "publication.published" and e.channel == channel]
        assert published.detail.get("found_by_lookup") is True, published.detail
    elif code == "once":
        assert first.status == again.status == "published", first.error
        assert set(counts.values()) == {1}
        # Retried after a pause; Bluesky looks its record key up at once after a gateway error.
        assert sleeps or (channel == "bluesky" and fault in ("502", "504"))
        if fault == "429" and channel in ("mastodon", "linkedin", "telegram"):
            assert 2.5 <= sleeps[0] <= 3.0  # waited as the network said
        assert alerts.sent == []
        assert not again.network_called and _creates(channel, standins) == creates_before
    elif code == "next":
        assert first.status == "failed" and first.network_called
        assert len(sleeps) == 4 and alerts.sent == []  # 5 attempts; nothing went out
        assert again.status == "published" and again.network_called
        assert set(counts.values()) == {1}
    elif code == "unknown":
        assert first.status == again.status == "unknown"
        assert sleeps == []  # never repeated: that could be a second post
        assert set(counts.values()) == {1}  # it was made
        assert not again.network_called and _creates(channel, standins) == creates_before
        (alert,) = alerts.sent
        assert alert["tag"] == ALERT_TAG and "unklar" in alert["subject"]
        assert f"newsroom channels resolve {stored.id} --published" in alert["text"]
        assert f"newsroom channels resolve {stored.id} --not-published" in alert["text"]
    elif code == "refused":
        assert first.status == again.status == "failed"
        assert sleeps == []  # a refusal is not retried
        assert set(counts.values()) == {0}
        assert not again.network_called
        (alert,) = alerts.sent
        assert alert["tag"] == ALERT_TAG and "fehlgeschlagen" in alert["subject"]
        assert "Zugangsdaten" in alert["text"] and "newsroom channels check" in alert["text"]
        assert stored.last_error and stored.last_error in alert["text"]  # the network's words
        assert "refused" in stored.last_error or "access token" in stored.last_error
        assert secret(channel) not in alert["text"] + (stored.last_error or "")
    else:
        raise AssertionError(f"no assertions for outcome {code!r}")


# --- 401 in the middle of a run -----------------------------------------------------------


async def test_token_refused_in_the_middle_of_a_run(standins, smtp, engine, tmp_path) -> None:
    """Two campaigns due one after the other on every network. The first goes out; then
    every token is refused: the second fails on each channel with a credential alert
    that says what to do, the first stays published, and re-runs publish nothing twice.
    After the credentials are renewed, a deliberate retry publishes the rest once."""
    handler, port = smtp
    channels = [*HTTP_CHANNELS, "presse"]
    accounts = {c: account(c, standins.base_url, port) for c in channels}
    credentials = {c: SecretStr(secret(c)) for c in channels}
    options = {"website": {"feed_path": tmp_path / "feed.atom"}}
    early_id, _ = store_occurrence(engine, [rendered(c, campaign="frueh") for c in channels])
    late_id, late_posts = store_occurrence(
        engine, [rendered(c, campaign="spaet", day=date(2026, 5, 16),
                          text="Zweiter Beitrag: Trikottag-Fotos #Trikottag") for c in channels])
    alerts = Alerts()

    async with httpx.AsyncClient(timeout=10) as client:
        async def run(occurrence_id: int):
            return await publish_occurrence(
                engine=engine, occurrence_id=occurrence_id, accounts=accounts, client=client,
                credentials=credentials, notifier=alerts, sleep=Sleeps(),
                publisher_options=options)

        early = await run(early_id)
        assert early.published == sorted(channels), early.outcomes
        # The tokens are revoked (or expire) between the two campaigns.
        standins.set_faults([{"network": n, "kind": "401", "times": 1000}
                             for n in sorted(set(STANDIN_NETWORK.values()))])
        handler.set_fault("535", times=1000)
        late = await run(late_id)
        assert late.published == [] and late.errors == {}
        assert {c: o.status for c, o in late.outcomes.items()} == dict.fromkeys(channels,
                                                                                "failed")
        by_channel = {a["subject"].rsplit("(", 1)[-1].rstrip(")"): a for a in alerts.sent}
        assert sorted(by_channel) == sorted(channels) and len(alerts.sent) == len(channels)
        for channel, alert in by_channel.items():
            assert alert["tag"] == ALERT_TAG and "fehlgeschlagen" in alert["subject"]
            assert "Spaet" in alert["subject"] or "spaet" in alert["text"]
            assert "Zugangsdaten: erneuern" in alert["text"]
            assert "newsroom channels check" in alert["text"]
            assert secret(channel) not in alert["text"]

        posts_after_failure = {c: _count(c, standins, smtp) for c in channels}
        creates_after_failure = {c: _creates(c, standins) for c in channels}
        # Re-runs (the same token still refused, then renewed): nothing is sent again.
        for occurrence_id in (early_id, late_id):
            rerun = await run(occurrence_id)
            assert not any(o.network_called for o in rerun.outcomes.values())
        standins.set_faults([])
        handler.set_fault(None)
        for occurrence_id in (early_id, late_id):
            rerun = await run(occurrence_id)
            assert not any(o.network_called for o in rerun.outcomes.values())
        assert {c: _creates(c, standins) for c in channels} == creates_after_failure
        assert {c: _count(c, standins, smtp) for c in channels} == posts_after_failure

        # A person renewed the credential and asks for the retry: each goes out once.
        for channel in channels:
            retried = await publish_post(
                engine=engine, post_id=late_posts[channel], account=accounts[channel],
                client=client, credential=credentials[channel], notifier=alerts,
                sleep=Sleeps(), retry_failed=True, publisher_options=options.get(channel))
            assert retried.status == "published", retried.error
    for channel in HTTP_CHANNELS:
        assert len(standins.posts(POST_NETWORK[channel])) == 2, channel  # early + late
    assert sorted(handler.delivered()) == sorted(RECIPIENTS * 2)
    with store.session_scope(engine) as session:
        for occurrence_id in (early_id, late_id):
            for post in store.current_posts(session, occurrence_id=occurrence_id):
                publication = store.get_publication(session, post_id=post.id,
                                                    channel=post.channel)
                assert publication.status == "published"


# --- the press e-mail after a cut connection ------------------------------------------------


async def test_press_email_cut_off_is_resolved_without_mailing_anyone_twice(
        standins, smtp, engine) -> None:
    """The second recipient's message is stored by the server, then the connection breaks
    before the 250: unknown (the first and third got theirs). A person finds it did not
    arrive (say, the server lost it) and resolves it: the next run writes to that
    recipient only."""
    from newsroom.publishing import resolve_unknown

    handler, port = smtp
    _, ids = store_occurrence(engine, [rendered("presse")])
    alerts = Alerts()
    handler.set_fault("drop", times=1)
    handler.fault_after = 1  # let the first message through
    async with httpx.AsyncClient() as client:
        async def run():
            return await publish_post(
                engine=engine, post_id=ids["presse"], account=account("presse", "", port),
                client=client, credential=SecretStr(secret("presse")), notifier=alerts,
                sleep=Sleeps())

        first = await run()
        assert first.status == "unknown", first.error
        assert RECIPIENTS[1] in (first.error or "") and "may have arrived" in first.error
        assert sorted(handler.delivered()) == sorted(RECIPIENTS)  # each once
        (alert,) = alerts.sent
        assert "unklar" in alert["subject"]
        with store.session_scope(engine) as session:
            assert store.get_publication(session, post_id=ids["presse"],
                                         channel="presse").status == "unknown"
        again = await run()
        assert again.status == "unknown" and not again.network_called
        handler.envelopes.clear()
        resolve_unknown(engine, first.publication_id, outcome="not_published",
                        by="amt-kommunikation")
        retried = await run()
    assert retried.status == "published", retried.error
    assert handler.delivered() == [RECIPIENTS[1]]


# --- the documentation shows this table ------------------------------------------------------


def test_the_document_shows_the_tested_matrix() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert MARK_BEGIN in text and MARK_END in text, "run: python bench/fault_matrix.py --write"
    shown = text[text.index(MARK_BEGIN):text.index(MARK_END) + len(MARK_END)]
    assert shown == markdown(), "docs/RELIABILITY.md is stale: python bench/fault_matrix.py --write"
