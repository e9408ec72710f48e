"""Recalls on Mastodon and Bluesky, over real HTTP against the stand-ins: a published post
is deleted (``DELETE /api/v1/statuses/:id``, ``com.atproto.repo.deleteRecord``), a repeat
finds it gone without a second deletion, rate limits, server errors, gateways and lost
answers are retried, a refused credential is not."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from channel_testkit import GERMAN_TEXT, make_account, make_post
from pydantic import SecretStr

from newsroom.channels import (
    Publisher,
    PublishResult,
    WithdrawResult,
    publish_with_retries,
    publisher_for,
    withdraw_with_retries,
)
from newsroom.errors import CredentialRefused, PermanentPublishError, TransientPublishError
from newsroom.standins import config as standin
from newsroom.standins.mastodon import DELETE_LIMIT, DELETE_PERIOD

pytestmark = pytest.mark.anyio

CHANNELS = ["mastodon", "bluesky"]
# The path fragment of each network's delete call (a fault rule's path_contains).
DELETE = {"mastodon": "/api/v1/statuses/", "bluesky": "deleteRecord"}


class Sleeps(list):
    """Stands in for asyncio.sleep: records the delays instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def deleting(standins, channel: str) -> list[dict[str, Any]]:
    """The delete requests the network received, in order."""
    if channel == "mastodon":
        return [r for r in standins.requests("mastodon")
                if r["method"] == "DELETE" and DELETE["mastodon"] in r["path"]]
    return [r for r in standins.requests("bluesky") if DELETE["bluesky"] in r["path"]]


def shown(standins, network: str) -> list[dict[str, Any]]:
    """The posts the stand-in still shows (``/_standin/posts?shown=1``)."""
    response = httpx.get(f"{standins.base_url}/_standin/posts",
                         params={"network": network, "shown": "1"})
    response.raise_for_status()
    return response.json()["posts"]


def the_post(standins, network: str) -> dict[str, Any]:
    (post,) = standins.posts(network)  # deleted ones too, with deleted_at and deletions
    return post


def network_look(standins, channel: str, remote_id: str) -> httpx.Response:
    """The network's own public read of the post: Mastodon's GET /api/v1/statuses/:id,
    the PDS's com.atproto.repo.getRecord (no token, as anyone would ask)."""
    if channel == "mastodon":
        return httpx.get(f"{standins.base_url}/mastodon/api/v1/statuses/{remote_id}")
    did, collection, rkey = remote_id.removeprefix("at://").split("/")
    return httpx.get(f"{standins.base_url}/bluesky/xrpc/com.atproto.repo.getRecord",
                     params={"repo": did, "collection": collection, "rkey": rkey})


def assert_not_shown_any_more(standins, channel: str, remote_id: str) -> None:
    assert shown(standins, channel) == []
    look = network_look(standins, channel, remote_id)
    if channel == "mastodon":
        assert (look.status_code, look.json()) == (404, {"error": "Record not found"})
    else:  # the reference PDS answers a missing record 400 RecordNotFound, not 404
        assert look.status_code == 400 and look.json()["error"] == "RecordNotFound"


async def published(standins, publisher: Publisher, channel: str, key: str = "k-post"
                    ) -> PublishResult:
    result = await publish_with_retries(publisher, make_post(channel), key)
    assert network_look(standins, channel, result.remote_id).status_code == 200
    return result


async def withdraw(publisher: Publisher, result: PublishResult, *, sleep: Sleeps | None = None,
                   **options: Any) -> WithdrawResult:
    return await withdraw_with_retries(publisher, result.remote_id, remote_url=result.url,
                                       idempotency_key="recall-1",
                                       sleep=Sleeps() if sleep is None else sleep,
                                       **options)


# --- the delete and its repeat ------------------------------------------------------------


@pytest.mark.parametrize("channel", CHANNELS)
async def test_withdraw_deletes_the_post_and_the_network_no_longer_shows_it(
        channel, standins, make_publisher) -> None:
    publisher = make_publisher(channel)
    result = await published(standins, publisher, channel)
    assert len(shown(standins, channel)) == 1

    sleeps = Sleeps()
    withdrawn = await withdraw(publisher, result, sleep=sleeps)

    assert withdrawn.gone and not withdrawn.already_gone and not withdrawn.manual
    assert withdrawn.attempts == 1 and sleeps == []
    assert_not_shown_any_more(standins, channel, result.remote_id)
    post = the_post(standins, channel)
    assert post["deletions"] == 1 and post["deleted_at"]
    (request,) = deleting(standins, channel)
    assert request["status"] == 200
    if channel == "mastodon":
        # The deleted status comes back with its source text (for delete-and-redraft);
        # the images are asked to go at once, not kept 24 hours for a redraft.
        assert withdrawn.raw["id"] == result.remote_id and withdrawn.raw["text"] == GERMAN_TEXT
        assert request["path"] == f"/mastodon/api/v1/statuses/{result.remote_id}"
        assert request["query"] == {"delete_media": "true"}
        assert request["headers"]["authorization"] == "Bearer ***"
    else:
        did, _, rkey = result.remote_id.removeprefix("at://").split("/")
        assert request["body"] == {"repo": did, "collection": "app.bsky.feed.post",
                                   "rkey": rkey}
        assert withdrawn.raw["commit"]["rev"]


@pytest.mark.parametrize("channel", CHANNELS)
async def test_withdrawing_again_finds_it_already_gone_without_a_second_deletion(
        channel, standins, make_publisher) -> None:
    publisher = make_publisher(channel)
    result = await published(standins, publisher, channel)
    first = await withdraw(publisher, result)
    again = await withdraw(make_publisher(channel), result)  # another run, another publisher

    assert first.gone and not first.already_gone
    assert again.gone and again.already_gone and again.attempts == 1
    assert the_post(standins, channel)["deletions"] == 1
    requests = deleting(standins, channel)
    assert len(requests) == 2
    if channel == "mastodon":
        assert requests[1]["status"] == 404  # "Record not found" …
        looks = [r for r in standins.requests("mastodon") if r["method"] == "GET"
                 and r["path"].endswith(f"/statuses/{result.remote_id}")]
        assert looks and looks[-1]["status"] == 404  # … and a public look agrees
    else:  # the reference PDS's no-op: 200 without a commit
        assert requests[1]["status"] == 200 and again.raw == {}
    assert_not_shown_any_more(standins, channel, result.remote_id)


# --- rate limits, server errors, gateways, lost answers -----------------------------------


# How each network says "wait 7 s" on a 429: X-RateLimit-Reset (ISO 8601) on Mastodon,
# RateLimit-Reset (epoch seconds) on Bluesky.
@pytest.mark.parametrize(("channel", "low", "high"), [("mastodon", 6.5, 7.0),
                                                      ("bluesky", 6.0, 8.0)])
async def test_429_waits_as_the_network_says_and_then_deletes(channel, low, high, standins,
                                                              make_publisher) -> None:
    publisher = make_publisher(channel)
    result = await published(standins, publisher, channel)
    standins.set_faults([{"network": channel, "path_contains": DELETE[channel],
                          "kind": "429", "retry_after": 7}])
    sleeps = Sleeps()
    withdrawn = await withdraw(publisher, result, sleep=sleeps)

    assert len(sleeps) == 1 and low <= sleeps[0] <= high, sleeps
    assert withdrawn.gone and not withdrawn.already_gone and withdrawn.attempts == 2
    assert [r.get("fault") for r in deleting(standins, channel)] == ["429", None]
    assert the_post(standins, channel)["deletions"] == 1
    assert_not_shown_any_more(standins, channel, result.remote_id)


@pytest.mark.parametrize("channel", CHANNELS)
async def test_500_then_success_deletes_once(channel, standins, make_publisher) -> None:
    publisher = make_publisher(channel)
    result = await published(standins, publisher, channel)
    standins.set_faults([{"network": channel, "path_contains": DELETE[channel],
                          "kind": "500"}])
    sleeps = Sleeps()
    withdrawn = await withdraw(publisher, result, sleep=sleeps)

    # Both send rate-limit reset headers on the 500 too: not a reason to wait for them.
    assert sleeps == [0.5] and withdrawn.attempts == 2
    assert withdrawn.gone and not withdrawn.already_gone
    assert [r["status"] for r in deleting(standins, channel)] == [500, 200]
    assert the_post(standins, channel)["deletions"] == 1


@pytest.mark.parametrize("status", ["502", "504"])
@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_gateway_error_after_the_delete_is_retried_and_ends_gone(
        channel, status, standins, make_publisher) -> None:
    """The network deleted the post and the gateway lost its answer: for a delete that is
    merely transient (deleting again is harmless), never "unknown"."""
    publisher = make_publisher(channel)
    result = await published(standins, publisher, channel)
    standins.set_faults([{"network": channel, "path_contains": DELETE[channel],
                          "kind": status}])
    sleeps = Sleeps()
    withdrawn = await withdraw(publisher, result, sleep=sleeps)

    first, second = deleting(standins, channel)
    assert first["status"] == int(status) and first["upstream_status"] == 200
    assert sleeps == [0.5] and withdrawn.attempts == 2
    assert withdrawn.gone and withdrawn.already_gone  # the first one had done it
    assert the_post(standins, channel)["deletions"] == 1
    assert_not_shown_any_more(standins, channel, result.remote_id)


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_lost_answer_is_retried_and_ends_gone_with_one_deletion(
        channel, reset, standins, make_publisher) -> None:
    publisher = make_publisher(channel)
    result = await published(standins, publisher, channel)
    standins.set_faults([{"network": channel, "path_contains": DELETE[channel],
                          "kind": "drop_after_receive", "reset": reset}])
    withdrawn = await withdraw(publisher, result)

    requests = deleting(standins, channel)
    assert len(requests) == 2 and requests[0]["dropped"] and "dropped" not in requests[1]
    assert withdrawn.gone and withdrawn.already_gone  # the dropped one had deleted it
    post = the_post(standins, channel)
    assert post["deletions"] == 1 and post["deleted_at"]
    assert_not_shown_any_more(standins, channel, result.remote_id)


async def test_a_slow_delete_is_retried_and_ends_gone(standins, make_publisher) -> None:
    """A read timeout: the delete may or may not have been done. Deleting again is
    harmless: retried (transient, not "unknown"), and the post is deleted once."""
    publisher = make_publisher("mastodon")
    result = await published(standins, publisher, "mastodon")
    standins.set_faults([{"network": "mastodon", "path_contains": DELETE["mastodon"],
                          "kind": "slow", "delay": 0.6}])
    async with httpx.AsyncClient(timeout=0.2) as impatient:
        slow = make_publisher("mastodon", http=impatient)
        sleeps = Sleeps()
        withdrawn = await withdraw(slow, result, sleep=sleeps)
    await asyncio.sleep(0.7)  # let the slow request finish on the server
    assert sleeps == [0.5] and withdrawn.attempts == 2 and withdrawn.gone
    assert the_post(standins, "mastodon")["deletions"] == 1
    assert shown(standins, "mastodon") == []


# --- refused credentials and posts that are not this account's -----------------------------


@pytest.mark.parametrize(("channel", "message"), [
    ("mastodon", "The access token is invalid"),
    ("bluesky", "Invalid identifier or password"),
])
async def test_a_refused_credential_fails_at_once(channel, message, standins,
                                                  make_publisher) -> None:
    publisher = make_publisher(channel)
    result = await published(standins, publisher, channel)
    standins.set_faults([{"network": channel, "path_contains": DELETE[channel],
                          "kind": "401", "times": 5}])
    sleeps = Sleeps()
    with pytest.raises(CredentialRefused) as raised:
        await withdraw(publisher, result, sleep=sleeps)
    assert raised.value.status_code == 401 and message in str(raised.value)
    assert sleeps == [] and len(deleting(standins, channel)) == 1
    assert len(shown(standins, channel)) == 1  # still there
    assert "deletions" not in the_post(standins, channel)


@pytest.mark.parametrize(("channel", "secret", "status"), [
    ("mastodon", "not-a-token-the-server-knows", 401),
    ("mastodon", standin.MASTODON_READ_ONLY_TOKEN, 403),  # lacks write:statuses
    ("bluesky", f"{standin.BLUESKY_HANDLE}:wrong-app-password", 401),  # createSession
])
async def test_a_wrong_credential_is_refused_and_nothing_is_deleted(
        channel, secret, status, standins, make_publisher) -> None:
    result = await published(standins, make_publisher(channel), channel)
    sleeps = Sleeps()
    with pytest.raises(CredentialRefused) as raised:
        await withdraw(make_publisher(channel, secret=secret), result, sleep=sleeps)
    assert raised.value.status_code == status and sleeps == []
    assert len(shown(standins, channel)) == 1
    assert network_look(standins, channel, result.remote_id).status_code == 200


@pytest.mark.parametrize(("profile", "answer"), [
    ("", 404),  # Mastodon looks only among the token's own statuses: "Record not found"
    ("/~ignores-idempotency", 403),  # GoToSocial: "status doesn't belong to …" Forbidden
])
async def test_another_accounts_status_is_not_taken_for_gone(profile, answer, standins,
                                                             client) -> None:
    def publisher(token: str) -> Publisher:
        account = make_account("mastodon", standins.base_url,
                               base_url=f"{standins.base_url}/mastodon{profile}")
        return publisher_for(account, client=client, credential=SecretStr(token))

    result = await publish_with_retries(publisher(standin.MASTODON_TOKEN),
                                        make_post("mastodon"), "k")
    sleeps = Sleeps()
    with pytest.raises(CredentialRefused) as raised:
        await withdraw(publisher(standin.MASTODON_OTHER_ACCOUNT_TOKEN), result, sleep=sleeps)
    assert sleeps == []
    if answer == 404:
        assert "still shown" in str(raised.value)
    assert [r["status"] for r in deleting(standins, "mastodon")] == [answer]
    (post,) = standins.posts("mastodon~ignores-idempotency" if profile else "mastodon")
    assert "deleted_at" not in post


async def test_bluesky_renews_an_expired_session_and_deletes(standins,
                                                             make_publisher) -> None:
    publisher = make_publisher("bluesky")
    result = await published(standins, publisher, "bluesky")
    standins.set_faults([{"network": "bluesky", "path_contains": DELETE["bluesky"],
                          "kind": "expired_token"}])
    withdrawn = await withdraw(publisher, result)
    paths = [r["path"].rsplit(".", 1)[-1] for r in standins.requests("bluesky")]
    assert paths.count("createSession") == 1 and paths.count("refreshSession") == 1
    assert [r["status"] for r in deleting(standins, "bluesky")] == [400, 200]
    assert withdrawn.gone and not withdrawn.already_gone and withdrawn.attempts == 1
    assert the_post(standins, "bluesky")["deletions"] == 1


@pytest.mark.parametrize("uri", [
    "at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/app.bsky.feed.post/3kabcdefghij2",  # another account
    "at://{did}/app.bsky.feed.like/3kabcdefghij2",  # not a post
    "at://{did}/app.bsky.feed.post/a/b",
    "https://bsky.app/profile/darmstadt.standin.test/post/3kabcdefghij2",  # the web URL
])
async def test_bluesky_refuses_what_is_not_a_post_of_this_account(uri, standins,
                                                                  make_publisher) -> None:
    publisher = make_publisher("bluesky")
    result = await published(standins, publisher, "bluesky")
    did = result.remote_id.removeprefix("at://").split("/")[0]
    with pytest.raises(PermanentPublishError, match="not") as raised:
        await withdraw_with_retries(publisher, uri.format(did=did), remote_url=None,
                                    idempotency_key="r", sleep=Sleeps())
    assert not isinstance(raised.value, CredentialRefused)
    assert deleting(standins, "bluesky") == []
    assert len(shown(standins, "bluesky")) == 1


async def test_bluesky_deletes_by_a_uri_with_the_handle(standins, make_publisher) -> None:
    publisher = make_publisher("bluesky")
    result = await published(standins, publisher, "bluesky")
    rkey = result.remote_id.rsplit("/", 1)[-1]
    by_handle = f"at://{standin.BLUESKY_HANDLE}/app.bsky.feed.post/{rkey}"
    withdrawn = await withdraw_with_retries(publisher, by_handle, remote_url=result.url,
                                            idempotency_key="r", sleep=Sleeps())
    assert withdrawn.gone and not withdrawn.already_gone
    (request,) = deleting(standins, "bluesky")
    assert request["body"]["repo"].startswith("did:")  # the session's DID, not the handle
    assert_not_shown_any_more(standins, "bluesky", result.remote_id)


async def test_mastodon_refuses_what_is_not_a_status_id(standins, make_publisher) -> None:
    with pytest.raises(PermanentPublishError, match="not a status id"):
        await withdraw_with_retries(make_publisher("mastodon"), "../accounts/1",
                                    remote_url=None, idempotency_key="r", sleep=Sleeps())
    assert deleting(standins, "mastodon") == []


# --- Mastodon's throttle on deletes ---------------------------------------------------------


async def test_mastodon_throttles_deletes_to_30_per_30_minutes(standins,
                                                               make_publisher) -> None:
    """rack_attack.rb's throttle_api_delete counts every DELETE of an account (404s too);
    the 31st in a window answers 429 with the window's end, which is beyond what a retry
    loop waits: it is raised with its retry_after for the caller to schedule."""
    left = DELETE_PERIOD - time.time() % DELETE_PERIOD
    if left < 5:  # do not straddle two windows
        await asyncio.sleep(left + 0.1)
    publisher = make_publisher("mastodon")
    result = await published(standins, publisher, "mastodon")
    for n in range(DELETE_LIMIT - 1):  # missing statuses: 404, and counted
        gone = await publisher.withdraw(str(900 + n), remote_url=None, idempotency_key="r")
        assert gone.already_gone
    assert (await publisher.withdraw(result.remote_id, remote_url=result.url,
                                     idempotency_key="r")).gone  # the 30th: still allowed
    with pytest.raises(TransientPublishError) as raised:
        await withdraw_with_retries(publisher, "990", remote_url=None, idempotency_key="r",
                                    sleep=Sleeps())
    error = raised.value
    assert error.status_code == 429 and error.network_message == "Too many requests"
    assert error.retry_after is not None and 0 < error.retry_after <= DELETE_PERIOD
    statuses = [r["status"] for r in deleting(standins, "mastodon")]
    assert statuses[-1] == 429 and statuses.count(429) == 1 and len(statuses) == 31


async def test_the_stand_in_forgets_a_deleted_status_for_a_repeated_idempotency_key(
        standins, make_publisher) -> None:
    """A repeat of the create within the key's hour finds the status deleted: Mastodon's
    PostStatusService answers "Record not found" (it looks the remembered id up), and no
    second status is made."""
    publisher = make_publisher("mastodon")
    result = await published(standins, publisher, "mastodon", key="k-same")
    await withdraw(publisher, result)
    with pytest.raises(PermanentPublishError) as raised:
        await publish_with_retries(publisher, make_post("mastodon"), "k-same", sleep=Sleeps())
    assert raised.value.status_code == 404
    assert shown(standins, "mastodon") == [] and len(standins.posts("mastodon")) == 1
