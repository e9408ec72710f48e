"""Failures injected into the stand-ins: rate limits, server errors, lost answers, refused
credentials, slow answers, expired sessions. Over real HTTP."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest
from channel_testkit import (
    ACCOUNTS,
    ALT,
    POST_NETWORK,
    STANDIN_NETWORK,
    Alerts,
    make_account,
    make_post,
    store_post,
)
from pydantic import SecretStr

from newsroom.channels import PublishResult, publish_with_retries, publisher_for
from newsroom.channels.responses import map_error
from newsroom.errors import AmbiguousPublishError, PermanentPublishError, TransientPublishError
from newsroom.notify import ALERT_TAG
from newsroom.posts import MediaItem
from newsroom.publishing import publish_post

pytestmark = pytest.mark.anyio

# The path fragment of the request that makes the post, per account.
CREATE = {"mastodon": "/api/v1/statuses", "bluesky": "createRecord", "linkedin": "/rest/posts",
          "facebook": "/feed", "instagram": "/media_publish", "threads": "/threads_publish",
          "telegram": "/sendMessage", "website": "/cms/posts"}
IMAGE_URL = "https://www.darmstadt.de/bilder/trikottag.jpg"


class Sleeps(list):
    """Stands in for asyncio.sleep: records the delays instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def post_for(channel: str, **kwargs):
    if channel == "instagram":
        kwargs.setdefault("media", (MediaItem(source=IMAGE_URL, alt=ALT),))
    return make_post(channel, **kwargs)


def fault(channel: str, kind: str, **rule) -> dict:
    return {"network": STANDIN_NETWORK[channel], "path_contains": CREATE[channel],
            "kind": kind, **rule}


def creating(standins, channel: str) -> list[dict]:
    return [r for r in standins.requests(STANDIN_NETWORK[channel])
            if CREATE[channel] in r["path"]]


# How each network says "wait 7 s" on a 429 and what the publisher makes of it. Meta
# throttles with HTTP 400 / code 4 and no wait, so the backoff's first step applies.
@pytest.mark.parametrize(("channel", "low", "high"), [
    ("mastodon", 6.5, 7.0),  # X-RateLimit-Reset, ISO 8601
    ("bluesky", 6.0, 8.0),  # RateLimit-Reset, epoch seconds
    ("linkedin", 7.0, 7.0),  # Retry-After: seconds
    ("facebook", 1.0, 1.0),  # Graph code 4: backoff
    ("telegram", 7.0, 7.0),  # parameters.retry_after
    ("website", 5.9, 7.0),  # Retry-After: HTTP-date
])
async def test_429_waits_as_the_network_says(channel, low, high, standins,
                                             make_publisher) -> None:
    standins.set_faults([fault(channel, "429", retry_after=7)])
    sleeps = Sleeps()
    result = await publish_with_retries(make_publisher(channel), post_for(channel), "k-429",
                                        sleep=sleeps)
    assert len(sleeps) == 1 and low <= sleeps[0] <= high, sleeps
    assert result.attempts == 2
    assert [r.get("fault") for r in creating(standins, channel)] == ["429", None]
    assert len(standins.posts(POST_NETWORK[channel])) == 1


async def test_429_with_retry_after_really_waits(standins, make_publisher) -> None:
    standins.set_faults([fault("linkedin", "429", retry_after=1)])
    await publish_with_retries(make_publisher("linkedin"), post_for("linkedin"), "k")
    first, second = (r["received_at"]["monotonic"] for r in creating(standins, "linkedin"))
    assert 1.0 <= second - first < 2.0
    assert len(standins.posts("linkedin")) == 1


@pytest.mark.parametrize("channel", list(CREATE))
async def test_500_then_success_publishes_once(channel, standins, make_publisher) -> None:
    standins.set_faults([fault(channel, "500")])
    sleeps = Sleeps()
    result = await publish_with_retries(make_publisher(channel), post_for(channel), "k-500",
                                        sleep=sleeps)
    # Mastodon and Bluesky send rate-limit reset headers on the 500 too: not a reason to wait.
    assert sleeps == [1.0]
    assert result.attempts == 2
    assert len(creating(standins, channel)) == 2
    assert len(standins.posts(POST_NETWORK[channel])) == 1


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
@pytest.mark.parametrize("channel", ["mastodon", "bluesky", "website"])
async def test_lost_answer_is_retried_without_a_second_post(channel, reset, standins,
                                                            make_publisher) -> None:
    standins.set_faults([fault(channel, "drop_after_receive", reset=reset)])
    sleeps = Sleeps()
    result = await publish_with_retries(make_publisher(channel), post_for(channel), "k-drop",
                                        sleep=sleeps)
    requests = creating(standins, channel)
    assert len(requests) == 2 and requests[0].get("dropped")
    assert len(standins.posts(POST_NETWORK[channel])) == 1
    assert result.attempts == 2
    if channel == "bluesky":  # the PDS refused the repeated record key; we found ours
        assert result.raw["existing"] is True
        assert requests[1]["status"] == 500


@pytest.mark.parametrize("channel", ["linkedin", "facebook", "instagram", "threads", "telegram"])
async def test_lost_answer_is_ambiguous_where_the_network_does_not_deduplicate(
        channel, standins, make_publisher) -> None:
    standins.set_faults([fault(channel, "drop_after_receive")])
    sleeps = Sleeps()
    with pytest.raises(AmbiguousPublishError) as raised:
        await publish_with_retries(make_publisher(channel), post_for(channel), "k-drop",
                                   sleep=sleeps)
    assert "the post may exist" in str(raised.value)
    assert sleeps == [] and len(creating(standins, channel)) == 1
    assert len(standins.posts(POST_NETWORK[channel])) == 1  # it does exist


# --- a gateway's 502/504 to the request that makes the post ------------------------------

NOT_DEDUPLICATING = ["linkedin", "facebook", "instagram", "threads", "telegram"]


@pytest.mark.parametrize("status", ["502", "504"])
@pytest.mark.parametrize("channel", NOT_DEDUPLICATING)
async def test_gateway_error_after_sending_is_ambiguous_where_the_network_does_not_deduplicate(
        channel, status, standins, make_publisher) -> None:
    standins.set_faults([fault(channel, status)])
    sleeps = Sleeps()
    with pytest.raises(AmbiguousPublishError) as raised:
        await publish_with_retries(make_publisher(channel), post_for(channel), "k-gw",
                                   sleep=sleeps)
    assert raised.value.status_code == int(status)
    assert "the post may exist" in str(raised.value)
    assert sleeps == []  # not repeated: that would be a second post
    (request,) = creating(standins, channel)
    assert request["status"] == int(status) and request["upstream_status"] < 300
    assert len(standins.posts(POST_NETWORK[channel])) == 1  # it does exist


@pytest.mark.parametrize("status", ["502", "504"])
@pytest.mark.parametrize("channel", ["mastodon", "bluesky", "website"])
async def test_gateway_error_is_retried_where_a_repeat_is_harmless(
        channel, status, standins, make_publisher) -> None:
    standins.set_faults([fault(channel, status)])
    sleeps = Sleeps()
    result = await publish_with_retries(make_publisher(channel), post_for(channel), "k-gw",
                                        sleep=sleeps)
    assert creating(standins, channel)[0]["status"] == int(status)
    if channel == "bluesky":  # it looks its record key up at once and finds the post
        assert sleeps == [] and result.raw["existing"] is True
    else:  # the network answers the repeated Idempotency-Key with the first post
        assert sleeps == [1.0] and result.attempts == 2
    assert len(standins.posts(POST_NETWORK[channel])) == 1


@pytest.mark.parametrize("channel", ["linkedin", "telegram"])
async def test_gateway_error_before_the_network_is_still_unknown(channel, standins,
                                                                 make_publisher) -> None:
    """A 502 cannot tell whether the upstream got the request: it is ambiguous even when,
    as here, nothing was made (a person finds that out and resolves it)."""
    standins.set_faults([fault(channel, "502", forward=False)])
    with pytest.raises(AmbiguousPublishError):
        await publish_with_retries(make_publisher(channel), post_for(channel), "k-gw",
                                   sleep=Sleeps())
    assert standins.posts(POST_NETWORK[channel]) == []


async def test_gateway_error_to_a_preparatory_request_is_retried(standins,
                                                                 make_publisher) -> None:
    """Instagram's media container is not the post: a 502 to it is merely transient."""
    standins.set_faults([{"network": "graph", "path_contains": "/media", "kind": "502"}])
    sleeps = Sleeps()
    result = await publish_with_retries(make_publisher("instagram"), post_for("instagram"),
                                        "k-gw", sleep=sleeps)
    statuses = [(r["path"].rsplit("/", 1)[-1], r.get("status"))
                for r in standins.requests("graph") if r["method"] == "POST"]
    assert statuses[0] == ("media", 502) and ("media_publish", 200) in statuses
    assert sleeps == [1.0] and result.attempts == 2
    assert len(standins.posts("instagram")) == 1


async def test_503_to_a_create_stays_transient(standins, make_publisher) -> None:
    """Service Unavailable is the upstream itself refusing: nothing was made."""
    error = map_error(httpx.Response(503, request=httpx.Request("POST", "https://x/rest/posts")),
                      channel="linkedin", creates_post=True, repeat_safe=False)
    assert isinstance(error, TransientPublishError)


@pytest.mark.parametrize("channel", ["linkedin", "facebook", "telegram"])
async def test_gateway_error_makes_the_publication_unknown_and_alerts(
        channel, standins, make_publisher, engine, client) -> None:
    standins.set_faults([fault(channel, "504")])
    alerts = Alerts()
    post_id = store_post(engine, post_for(channel))
    account = make_account(channel, standins.base_url)
    credential = SecretStr(ACCOUNTS[channel]["secret"])

    outcome = await publish_post(engine=engine, post_id=post_id, account=account,
                                 client=client, credential=credential, notifier=alerts,
                                 sleep=Sleeps())
    assert outcome.status == "unknown" and outcome.network_called and outcome.alerted
    assert "504" in (outcome.error or "")
    (alert,) = alerts.sent
    assert alert["tag"] == ALERT_TAG and "unklar" in alert["subject"]
    assert f"newsroom channels resolve {outcome.publication_id}" in alert["text"]

    again = await publish_post(engine=engine, post_id=post_id, account=account,
                               client=client, credential=credential, notifier=alerts,
                               sleep=Sleeps())
    assert again.status == "unknown" and not again.network_called  # never a second post
    assert len(creating(standins, channel)) == 1
    assert len(standins.posts(POST_NETWORK[channel])) == 1


@pytest.mark.parametrize(("channel", "path", "message"), [
    ("mastodon", "/api/v1/statuses", "The access token is invalid"),
    ("bluesky", "createSession", "Invalid identifier or password"),
    ("linkedin", "/rest/posts", "Invalid access token"),
    ("facebook", "/feed", "Error validating access token: Session has expired."),
    ("threads", "/threads", "Error validating access token: Session has expired."),
    ("telegram", "/sendMessage", "Unauthorized"),
    ("website", "/cms/posts", "Invalid token"),
])
async def test_401_fails_at_once_with_the_networks_words(channel, path, message, standins,
                                                         make_publisher) -> None:
    standins.set_faults([{"network": STANDIN_NETWORK[channel], "path_contains": path,
                          "kind": "401", "times": 5}])
    sleeps = Sleeps()
    with pytest.raises(PermanentPublishError) as raised:
        await publish_with_retries(make_publisher(channel), post_for(channel), "k-401",
                                   sleep=sleeps)
    assert raised.value.network_message.endswith(message)
    assert message in str(raised.value)
    assert sleeps == []
    hits = [r for r in standins.requests(STANDIN_NETWORK[channel]) if r.get("fault")]
    assert len(hits) == 1
    assert standins.posts(POST_NETWORK[channel]) == []


async def test_a_failing_network_does_not_stop_the_others(standins, make_publisher) -> None:
    standins.set_faults([{"network": "bluesky", "kind": "500", "times": 100}])
    sleeps = Sleeps()
    bluesky, mastodon = await asyncio.gather(
        publish_with_retries(make_publisher("bluesky"), post_for("bluesky"), "k", sleep=sleeps,
                             max_attempts=3),
        publish_with_retries(make_publisher("mastodon"), post_for("mastodon"), "k",
                             sleep=sleeps),
        return_exceptions=True,
    )
    assert isinstance(bluesky, TransientPublishError)
    assert isinstance(mastodon, PublishResult)
    assert len(standins.posts("mastodon")) == 1 and standins.posts("bluesky") == []


async def _wait_for_posts(standins, network: str, count: int) -> list[dict]:
    deadline = time.monotonic() + 5
    while len(posts := standins.posts(network)) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return posts


async def test_a_slow_answer_is_ambiguous_and_the_post_appears_anyway(
        standins, make_publisher) -> None:
    standins.set_faults([fault("telegram", "slow", delay=0.6)])
    async with httpx.AsyncClient(timeout=0.2) as impatient:
        with pytest.raises(AmbiguousPublishError, match="ReadTimeout"):
            await publish_with_retries(make_publisher("telegram", http=impatient),
                                       post_for("telegram"), "k", sleep=Sleeps())
    assert len(await _wait_for_posts(standins, "telegram", 1)) == 1


async def test_a_slow_mastodon_is_retried_with_the_same_key(standins, make_publisher) -> None:
    standins.set_faults([fault("mastodon", "slow", delay=0.6)])
    async with httpx.AsyncClient(timeout=0.2) as impatient:
        await make_publisher("mastodon", http=impatient).instance_limits()  # warm, not slow
        result = await publish_with_retries(make_publisher("mastodon", http=impatient),
                                            post_for("mastodon"), "k-slow", sleep=Sleeps())
    await asyncio.sleep(0.7)  # let the slow request finish on the server
    posts = standins.posts("mastodon")
    assert len(posts) == 1 and posts[0]["id"] == result.remote_id
    keys = {r["headers"]["idempotency-key"] for r in creating(standins, "mastodon")}
    assert keys == {"k-slow"}


async def test_bluesky_reuses_one_session(standins, make_publisher) -> None:
    publisher = make_publisher("bluesky")
    posts = [make_post("bluesky", text=f"Beitrag {n} #Darmstadt", campaign=f"c{n}")
             for n in range(5)]
    await asyncio.gather(*(publish_with_retries(publisher, p, f"k{n}")
                           for n, p in enumerate(posts)))
    sessions = [r for r in standins.requests("bluesky") if "createSession" in r["path"]]
    assert len(sessions) == 1 and publisher.sessions_created == 1
    assert sessions[0]["body"] == {"identifier": "darmstadt.standin.test", "password": "***"}
    assert len(standins.posts("bluesky")) == 5


async def test_bluesky_refreshes_an_expired_session(standins, make_publisher) -> None:
    publisher = make_publisher("bluesky")
    await publish_with_retries(publisher, make_post("bluesky", campaign="a"), "k1")
    standins.set_faults([{"network": "bluesky", "path_contains": "createRecord",
                          "kind": "expired_token"}])
    result = await publish_with_retries(publisher, make_post("bluesky", campaign="b"), "k2")
    paths = [r["path"].rsplit(".", 1)[-1] for r in standins.requests("bluesky")]
    assert paths.count("createSession") == 1 and paths.count("refreshSession") == 1
    assert result.attempts == 1 and len(standins.posts("bluesky")) == 2


async def test_bluesky_refuses_a_reused_key_for_another_text(standins, make_publisher) -> None:
    publisher = make_publisher("bluesky")
    await publish_with_retries(publisher, make_post("bluesky", text="Erster Text"), "same")
    with pytest.raises(PermanentPublishError, match="idempotency key was reused"):
        await publish_with_retries(publisher, make_post("bluesky", text="Anderer Text"), "same",
                                   sleep=Sleeps())
    assert len(standins.posts("bluesky")) == 1


async def test_mastodon_waits_for_media_processing(standins, make_publisher, image) -> None:
    big = image(160, 160, noise=True)  # > 64 KiB: the stand-in answers 202
    result = await publish_with_retries(make_publisher("mastodon"),
                                        make_post("mastodon", media=(big,)), "k")
    statuses = [(r["method"], r["path"].split("/api/")[1], r["status"])
                for r in standins.requests("mastodon") if "/media" in r["path"]]
    assert statuses[0] == ("POST", "v2/media", 202)
    assert statuses[1][0:2] == ("GET", f"v1/media/{statuses[1][1].rsplit('/', 1)[-1]}")
    assert statuses[1][2] == 200
    assert result.raw["media_attachments"][0]["description"] == ALT


async def test_changed_image_is_refused_before_anything_is_sent(standins, make_publisher,
                                                                image) -> None:
    item = image()
    with open(item.source, "ab") as handle:
        handle.write(b"swapped")
    with pytest.raises(PermanentPublishError, match="differs from the approved one"):
        await publish_with_retries(make_publisher("mastodon"),
                                   make_post("mastodon", media=(item,)), "k")
    assert not [r for r in standins.requests("mastodon") if r["method"] == "POST"]


@pytest.mark.parametrize(("channel", "text", "media", "match"), [
    ("mastodon", "x" * 501, (), "501/500 characters"),
    ("bluesky", "ä" * 301, (), "301/300 characters"),
    ("bluesky", "👨‍👩‍👧‍👦" * 200, (), "5000/3000 bytes"),
    ("instagram", "Ohne Bild", None, "Instagram needs an image"),
    ("instagram", "Bild als Datei", (MediaItem(source="bilder/a.jpg", alt=ALT),),
     "needs a public URL"),
    ("telegram", "x" * 4097, (), "4097/4096 characters"),
    ("linkedin", "x" * 3001, (), "3001/3000 characters"),
])
async def test_posts_a_network_would_refuse_fail_before_sending(
        channel, text, media, match, standins, make_publisher) -> None:
    post = make_post(channel, text=text, media=media or ())
    with pytest.raises(PermanentPublishError, match=match):
        await publish_with_retries(make_publisher(channel), post, "k", sleep=Sleeps())
    assert not [r for r in standins.requests(STANDIN_NETWORK[channel])
                if CREATE[channel] in r["path"]]


async def test_a_refused_connection_is_transient_and_retried(client) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nobody listens here
    account = make_account("telegram", f"http://127.0.0.1:{port}")
    publisher = publisher_for(account, client=client, credential=SecretStr("1:secret-token"))
    sleeps = Sleeps()
    with pytest.raises(TransientPublishError, match="nothing was sent") as raised:
        await publish_with_retries(publisher, post_for("telegram"), "k", max_attempts=3,
                                   sleep=sleeps)
    assert sleeps == [1.0, 2.0]
    assert "secret-token" not in str(raised.value)
