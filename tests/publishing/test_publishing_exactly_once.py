"""Exactly once: a post reaches each network once, whatever repeats, races, lost answers
and crashes happen. Over real HTTP to the stand-ins, on a real store."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from publishing_testkit import (
    CREATE_PATH,
    NIE_WIEDER,
    POST_NETWORK,
    STANDIN_NETWORK,
    Alerts,
    Sleeps,
    actions,
    credential,
    publication,
    store_occurrence,
    stored_post,
)
from pydantic import SecretStr

from newsroom import store
from newsroom.channels import publisher_for
from newsroom.errors import StoreError
from newsroom.notify import ALERT_TAG
from newsroom.publishing import (
    OWED_ALERT_SETTLE,
    idempotency_key_for,
    publish_occurrence,
    publish_post,
    resolve_unknown,
    send_owed_alerts,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def publish(engine, catalog, client, post, **kwargs):
    kwargs.setdefault("credential", credential(post.channel))
    kwargs.setdefault("sleep", Sleeps())
    return await publish_post(engine=engine, post_id=post.id,
                              account=catalog.accounts[post.channel], client=client,
                              media_root=catalog.root, **kwargs)


def creates(standins, channel: str) -> list[dict]:
    return [r for r in standins.requests(STANDIN_NETWORK[channel])
            if CREATE_PATH[channel] in r["path"]]


def posts_at(standins, channel: str) -> list[dict]:
    return standins.posts(POST_NETWORK[channel])


def crashed_worker(engine, post) -> tuple[store.Publication, str]:
    """What a worker that died mid-publish leaves behind: reserved and "publishing"."""
    key = idempotency_key_for(post.to_rendered().post_key, post.content_hash)
    with store.session_scope(engine) as session:
        reserved = store.reserve_publication(session, post_id=post.id, channel=post.channel,
                                             idempotency_key=key)
        store.mark_publishing(session, publication_id=reserved.id)
    return reserved, key


async def race(database_url: str, catalog, post, workers: int = 2) -> list:
    """``workers`` processes-alike (own thread, event loop, engine, client) at once."""
    barrier = threading.Barrier(workers)

    def worker():
        async def run():
            engine = store.make_engine(database_url)
            try:
                async with httpx.AsyncClient(timeout=5) as http:
                    barrier.wait()
                    return await publish(engine, catalog, http, post, notifier=Alerts())
            finally:
                engine.dispose()
        return asyncio.run(run())

    return list(await asyncio.gather(*(asyncio.to_thread(worker) for _ in range(workers))))


# --- repeats and races ------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["mastodon", "linkedin"])
async def test_publishing_the_same_post_twice_posts_it_once(
        channel, engine, catalog, client, standins, alerts) -> None:
    post = stored_post(engine, catalog, channel)
    first = await publish(engine, catalog, client, post, notifier=alerts)
    second = await publish(engine, catalog, client, post, notifier=alerts)

    assert first.status == second.status == "published"
    assert first.network_called and not second.network_called
    assert first.remote_id and second.remote_id == first.remote_id
    assert second.remote_url == first.remote_url
    assert len(posts_at(standins, channel)) == 1
    assert len(creates(standins, channel)) == 1
    assert actions(engine, NIE_WIEDER[0], channel) == [
        "publication.reserved", "publication.attempt", "publication.published"]
    assert alerts.sent == []


@pytest.mark.parametrize("channel", ["mastodon", "linkedin"])
async def test_concurrent_calls_post_once(channel, engine, catalog, client, standins) -> None:
    post = stored_post(engine, catalog, channel)
    outcomes = await asyncio.gather(*(publish(engine, catalog, client, post)
                                      for _ in range(5)))
    assert {o.status for o in outcomes} == {"published"}
    assert len({o.remote_id for o in outcomes}) == 1
    assert len(posts_at(standins, channel)) == 1
    assert len(creates(standins, channel)) == 1


@pytest.mark.parametrize("channel", ["mastodon", "linkedin"])
async def test_two_workers_racing_post_once(channel, database_url, engine, catalog,
                                            standins) -> None:
    post = stored_post(engine, catalog, channel)
    await race(database_url, catalog, post)
    assert len(posts_at(standins, channel)) == 1
    assert publication(engine, post.id, channel).status == "published"


# --- lost answers, refusals, rate limits ----------------------------------------------


@pytest.mark.parametrize(("channel", "expected"), [
    ("mastodon", "published"), ("bluesky", "published"),
    ("linkedin", "unknown"), ("facebook", "unknown"), ("telegram", "unknown"),
])
async def test_a_lost_answer_is_repeated_only_where_the_network_deduplicates(
        channel, expected, engine, catalog, client, standins, alerts) -> None:
    post = stored_post(engine, catalog, channel)
    standins.set_faults([{"network": STANDIN_NETWORK[channel],
                          "path_contains": CREATE_PATH[channel],
                          "kind": "drop_after_receive"}])
    outcome = await publish(engine, catalog, client, post, notifier=alerts)

    assert outcome.status == expected
    assert len(posts_at(standins, channel)) == 1  # the one the network made
    stored = publication(engine, post.id, channel)
    assert stored.status == expected
    if expected == "published":
        assert len(creates(standins, channel)) == 2  # repeated, and recognised
        assert alerts.sent == []
        if channel == "mastodon":
            keys = {r["headers"]["idempotency-key"] for r in creates(standins, channel)}
            assert keys == {outcome.idempotency_key}
        return
    assert len(creates(standins, channel)) == 1
    assert "no answer arrived" in stored.last_error
    [alert] = alerts.tagged(ALERT_TAG)
    assert "unklar" in alert["subject"] and f"channels resolve {stored.id}" in alert["text"]
    again = await publish(engine, catalog, client, post, notifier=alerts)
    assert again.status == "unknown" and not again.network_called
    assert len(creates(standins, channel)) == 1 and len(alerts.sent) == 1


async def test_a_refused_credential_fails_at_once(engine, catalog, client, standins,
                                                  alerts) -> None:
    post = stored_post(engine, catalog, "mastodon")
    sleeps = Sleeps()
    outcome = await publish(engine, catalog, client, post, notifier=alerts, sleep=sleeps,
                            credential=SecretStr("wrong-token-0815"))

    assert outcome.status == "failed" and sleeps == []
    stored = publication(engine, post.id, "mastodon")
    assert "The access token is invalid" in stored.last_error
    assert [r["status"] for r in standins.requests("mastodon") if r.get("status") == 401] == [401]
    assert posts_at(standins, "mastodon") == []
    [alert] = alerts.tagged(ALERT_TAG)
    assert "The access token is invalid" in alert["text"]
    assert "wrong-token-0815" not in alert["text"] + (stored.last_error or "")

    # A permanent refusal waits for a person, even with the right token …
    again = await publish(engine, catalog, client, post, notifier=alerts)
    assert again.status == "failed" and not again.network_called
    # … who fixed the cause and asks for a retry.
    retried = await publish(engine, catalog, client, post, retry_failed=True)
    assert retried.status == "published" and len(posts_at(standins, "mastodon")) == 1


async def test_429_with_retry_after_then_success_posts_once(engine, catalog, client,
                                                            standins) -> None:
    post = stored_post(engine, catalog, "linkedin")
    standins.set_faults([{"network": "linkedin", "path_contains": "/rest/posts",
                          "kind": "429", "retry_after": 3}])
    sleeps = Sleeps()
    outcome = await publish(engine, catalog, client, post, sleep=sleeps)
    assert outcome.status == "published"
    assert sleeps == [3.0]
    assert [r["status"] for r in creates(standins, "linkedin")] == [429, 201]
    assert len(posts_at(standins, "linkedin")) == 1


async def test_a_transient_failure_is_tried_again_by_the_next_run(engine, catalog, client,
                                                                  standins, alerts) -> None:
    post = stored_post(engine, catalog, "linkedin")
    standins.set_faults([{"network": "linkedin", "path_contains": "/rest/posts",
                          "kind": "500", "times": 2}])
    first = await publish(engine, catalog, client, post, notifier=alerts, max_attempts=2)
    assert first.status == "failed" and alerts.sent == []  # nothing went out; no alarm
    second = await publish(engine, catalog, client, post, notifier=alerts)
    assert second.status == "published"
    assert [r["status"] for r in creates(standins, "linkedin")] == [500, 500, 201]
    assert len(posts_at(standins, "linkedin")) == 1


async def test_a_failing_channel_does_not_stop_the_others(engine, catalog, client,
                                                          standins, alerts) -> None:
    occurrence_id, _ = store_occurrence(engine, catalog, *NIE_WIEDER)
    standins.set_faults([{"network": "bluesky", "path_contains": "createRecord",
                          "kind": "401"},
                         {"network": "bluesky", "path_contains": "uploadBlob",
                          "kind": "slow", "delay": 0.3}])
    result = await publish_occurrence(
        engine=engine, occurrence_id=occurrence_id, accounts=catalog.accounts,
        client=client, credentials={c: credential(c) for c in ("mastodon", "bluesky")},
        notifier=alerts, sleep=Sleeps(), media_root=catalog.root,
        channels=["mastodon", "bluesky", "whatsapp"],
    )
    assert result.outcomes["mastodon"].status == "published"
    assert result.outcomes["bluesky"].status == "failed"
    assert isinstance(result.errors["whatsapp"], ValueError)  # no confirmation link set up
    assert result.published == ["mastodon"]
    assert result.needs_attention == ["bluesky", "whatsapp"]
    assert len(standins.posts("mastodon")) == 1 and standins.posts("bluesky") == []
    # Mastodon did not wait for the slow Bluesky upload.
    mastodon_done = standins.posts("mastodon")[0]["created_at"]["monotonic"]
    bluesky_refused = creates(standins, "bluesky")[0]["received_at"]["monotonic"]
    assert mastodon_done < bluesky_refused


# --- crashes ----------------------------------------------------------------------------


async def test_after_a_crash_linkedin_is_marked_unknown_not_posted_again(
        engine, catalog, client, standins, alerts) -> None:
    post = stored_post(engine, catalog, "linkedin")
    left, key = crashed_worker(engine, post)
    publisher = publisher_for(catalog.accounts["linkedin"], client=client,
                              credential=credential("linkedin"), media_root=catalog.root)
    await publisher.publish(post.to_rendered(), idempotency_key=key)  # went out, then death

    outcome = await publish(engine, catalog, client, post, notifier=alerts)
    assert outcome.status == "unknown" and not outcome.network_called
    assert "interrupted" in publication(engine, post.id, "linkedin").last_error
    assert len(creates(standins, "linkedin")) == 1
    assert len(posts_at(standins, "linkedin")) == 1
    [alert] = alerts.tagged(ALERT_TAG)
    assert f"newsroom channels resolve {left.id}" in alert["text"]


async def test_an_unknown_whose_alert_was_lost_is_alerted_once_by_the_sweep(
        engine, catalog, client, standins, alerts) -> None:
    """A worker killed between recording "unknown" and sending its alert: the periodic
    sweep (housekeeping, every minute) sends that alert, once, after the settle time."""
    post = stored_post(engine, catalog, "linkedin")
    crashed_worker(engine, post)
    outcome = await publish(engine, catalog, client, post, notifier=Alerts(ok=False))
    assert outcome.status == "unknown" and not outcome.alerted
    now = datetime.now(UTC)
    assert send_owed_alerts(engine, catalog.accounts, alerts, now=now) == []  # settling
    later = now + OWED_ALERT_SETTLE + timedelta(seconds=1)
    assert send_owed_alerts(engine, catalog.accounts, alerts,
                            now=later) == [outcome.publication_id]
    [alert] = alerts.tagged(ALERT_TAG)
    assert "unklar" in alert["subject"]
    assert f"newsroom channels resolve {outcome.publication_id}" in alert["text"]
    assert send_owed_alerts(engine, catalog.accounts, alerts, now=later) == []
    assert len(alerts.sent) == 1
    assert actions(engine, NIE_WIEDER[0], "linkedin")[-1] == "publication.alerted"


async def test_an_unknown_alerted_at_once_is_not_alerted_again(
        engine, catalog, client, standins, alerts) -> None:
    post = stored_post(engine, catalog, "linkedin")
    crashed_worker(engine, post)
    outcome = await publish(engine, catalog, client, post, notifier=alerts)
    assert outcome.status == "unknown" and outcome.alerted
    later = datetime.now(UTC) + OWED_ALERT_SETTLE + timedelta(seconds=1)
    assert send_owed_alerts(engine, catalog.accounts, alerts, now=later) == []
    assert len(alerts.tagged(ALERT_TAG)) == 1


async def test_after_a_crash_mastodon_is_resent_with_the_same_key(engine, catalog, client,
                                                                  standins, alerts) -> None:
    post = stored_post(engine, catalog, "mastodon")
    _, key = crashed_worker(engine, post)
    publisher = publisher_for(catalog.accounts["mastodon"], client=client,
                              credential=credential("mastodon"), media_root=catalog.root)
    made = await publisher.publish(post.to_rendered(), idempotency_key=key)

    outcome = await publish(engine, catalog, client, post, notifier=alerts)
    assert outcome.status == "published" and outcome.network_called
    assert outcome.remote_id == made.remote_id
    assert [r["headers"]["idempotency-key"] for r in creates(standins, "mastodon")] == [key, key]
    assert len(posts_at(standins, "mastodon")) == 1
    assert alerts.sent == []


async def test_mastodon_is_not_resent_once_its_key_may_have_expired(engine, catalog, client,
                                                                     standins, alerts) -> None:
    post = stored_post(engine, catalog, "mastodon")
    left, _ = crashed_worker(engine, post)
    with store.session_scope(engine) as session:
        row = session.get(store.Publication, left.id)
        row.reserved_at = row.reserved_at - timedelta(hours=2)
        session.add(row)
    outcome = await publish(engine, catalog, client, post, notifier=alerts)
    assert outcome.status == "unknown"
    assert creates(standins, "mastodon") == [] and len(alerts.tagged(ALERT_TAG)) == 1


async def test_a_reservation_without_an_attempt_is_published(engine, catalog, client,
                                                             standins) -> None:
    post = stored_post(engine, catalog, "linkedin")
    key = idempotency_key_for(post.to_rendered().post_key, post.content_hash)
    with store.session_scope(engine) as session:  # died after reserving, before sending
        store.reserve_publication(session, post_id=post.id, channel="linkedin",
                                  idempotency_key=key)
    outcome = await publish(engine, catalog, client, post)
    assert outcome.status == "published" and len(posts_at(standins, "linkedin")) == 1


async def test_unknown_waits_for_a_person(engine, catalog, client, standins, alerts) -> None:
    post = stored_post(engine, catalog, "linkedin")
    left, _ = crashed_worker(engine, post)  # died before the request left
    assert (await publish(engine, catalog, client, post, notifier=alerts)).status == "unknown"
    assert (await publish(engine, catalog, client, post)).status == "unknown"
    assert creates(standins, "linkedin") == []

    resolved = resolve_unknown(engine, left.id, outcome="not_published", by="admin:test")
    assert resolved.status == "failed"
    outcome = await publish(engine, catalog, client, post)
    assert outcome.status == "published" and len(posts_at(standins, "linkedin")) == 1
    assert "publication.resolved" in actions(engine, NIE_WIEDER[0], "linkedin")
    with pytest.raises(StoreError, match="not unknown"):
        resolve_unknown(engine, left.id, outcome="published", by="admin:test")


async def test_resolving_as_published_records_the_address(engine, catalog, client,
                                                          standins, alerts) -> None:
    post = stored_post(engine, catalog, "facebook")
    left, _ = crashed_worker(engine, post)
    await publish(engine, catalog, client, post, notifier=alerts)
    resolved = resolve_unknown(engine, left.id, outcome="published", by="admin:test",
                               remote_url="https://www.facebook.com/100000000000001/posts/1")
    assert resolved.status == "published"
    assert resolved.remote_url == "https://www.facebook.com/100000000000001/posts/1"
    again = await publish(engine, catalog, client, post)
    assert again.status == "published" and not again.network_called
    assert creates(standins, "facebook") == []


# --- the same on PostgreSQL -------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("channel", ["mastodon", "linkedin"])
async def test_exactly_once_on_postgresql(channel, postgres_url, postgres_engine, catalog,
                                          client, standins) -> None:
    post = stored_post(postgres_engine, catalog, channel)
    raced = await race(postgres_url, catalog, post, workers=3)
    repeated = await asyncio.gather(*(publish(postgres_engine, catalog, client, post)
                                      for _ in range(3)))
    assert {o.status for o in repeated} == {"published"}
    assert not any(o.network_called for o in repeated)
    assert len({o.remote_id for o in [*raced, *repeated] if o.status == "published"}) == 1
    assert len(posts_at(standins, channel)) == 1
    assert publication(postgres_engine, post.id, channel).status == "published"
