"""Recalls on Facebook, Instagram, Threads and LinkedIn: the post is deleted at the
network (the stand-ins, over real HTTP), a second recall finds it gone, transient failures
and lost answers are retried without harm, a refused token is said so, Threads' daily
delete quota is a wait, and what Instagram cannot delete is handed to a person."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from channel_testkit import ACCOUNTS, ALT, POST_NETWORK, STANDIN_NETWORK, make_account, make_post
from pydantic import SecretStr

from newsroom.channels import Publisher, publisher_for, withdraw_with_retries
from newsroom.channels.linkedin import DEFAULT_VERSION
from newsroom.channels.threads import ThreadsPublisher
from newsroom.errors import CredentialRefused, PermanentPublishError, TransientPublishError
from newsroom.posts import MediaItem
from newsroom.standins import StandinConfig, StandinControl, running_standins
from newsroom.standins import config as standin

pytestmark = pytest.mark.anyio

NETWORKS = ["facebook", "instagram", "threads", "linkedin"]
META = ["facebook", "instagram", "threads"]
IMAGE_URL = "https://www.darmstadt.de/bilder/trikottag.jpg"
# What the token must be allowed, as the refusal names it.
DELETE_PERMISSION = {"facebook": "pages_manage_posts", "instagram": "instagram_manage_contents",
                     "threads": "threads_delete", "linkedin": "w_organization_social"}


class Sleeps(list):
    """Stands in for asyncio.sleep: records the delays instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def post_for(channel: str, **kwargs: Any):
    if channel == "instagram":
        kwargs.setdefault("media", (MediaItem(source=IMAGE_URL, alt=ALT),))
    return make_post(channel, **kwargs)


async def publish(publisher: Publisher, channel: str, key: str = "k", **kwargs: Any) -> str:
    result = await publisher.publish(post_for(channel, **kwargs), idempotency_key=key)
    assert result.remote_id
    return result.remote_id


async def withdraw(publisher: Publisher, remote_id: str, **kwargs: Any):
    return await publisher.withdraw(remote_id, remote_url=None, idempotency_key="recall-1",
                                    **kwargs)


def recorded_posts(standins: StandinControl, channel: str, *, shown: bool = False
                   ) -> list[dict[str, Any]]:
    params = {"network": POST_NETWORK[channel], **({"shown": "1"} if shown else {})}
    return httpx.get(f"{standins.base_url}/_standin/posts", params=params).json()["posts"]


def deletes(standins: StandinControl, channel: str, remote_id: str) -> list[dict[str, Any]]:
    """The DELETE requests for ``remote_id`` the network received (paths are recorded
    decoded)."""
    return [r for r in standins.requests(STANDIN_NETWORK[channel])
            if r["method"] == "DELETE" and r["path"].endswith("/" + remote_id)]


async def network_read(client: httpx.AsyncClient, standins: StandinControl, channel: str,
                       remote_id: str) -> httpx.Response:
    """The post as the network's own GET answers it."""
    if channel == "linkedin":
        return await client.get(
            f"{standins.base_url}/linkedin/rest/posts/{quote(remote_id, safe='')}",
            headers={"Authorization": f"Bearer {standin.LINKEDIN_TOKEN}",
                     "LinkedIn-Version": DEFAULT_VERSION, "X-Restli-Protocol-Version": "2.0.0"})
    return await client.get(f"{standins.base_url}{ACCOUNTS[channel]['base']}/{remote_id}",
                            params={"fields": "id"},
                            headers={"Authorization": f"Bearer {standin.GRAPH_TOKEN}"})


def not_found(response: httpx.Response, channel: str) -> bool:
    if channel == "linkedin":
        return response.status_code == 404
    error = response.json().get("error") or {}
    return (response.status_code == 400 and error.get("code") == 100
            and error.get("error_subcode") == 33)


# --- taking a post down -----------------------------------------------------------------


@pytest.mark.parametrize("channel", NETWORKS)
async def test_a_recall_deletes_the_post_and_the_network_no_longer_shows_it(
        channel, standins, make_publisher, client) -> None:
    publisher = make_publisher(channel)
    remote_id = await publish(publisher, channel)
    assert (await network_read(client, standins, channel, remote_id)).status_code == 200

    result = await withdraw(publisher, remote_id)

    assert (result.gone, result.already_gone, result.manual) == (True, False, False)
    assert remote_id in result.detail
    assert recorded_posts(standins, channel, shown=True) == []
    [post] = recorded_posts(standins, channel)
    assert post["id"] == remote_id and post["deletions"] == 1 and post["deleted_at"]
    assert not_found(await network_read(client, standins, channel, remote_id), channel)
    [delete] = deletes(standins, channel, remote_id)
    assert delete["status"] == 204 if channel == "linkedin" else delete["status"] == 200
    assert delete["headers"]["authorization"] == "Bearer ***"
    assert "access_token" not in delete["query"]  # the token never goes in the URL
    if channel == "linkedin":
        assert delete["headers"]["linkedin-version"] == DEFAULT_VERSION
        assert delete["headers"]["x-restli-protocol-version"] == "2.0.0"
    else:
        assert result.raw["success"] is True
    if channel in ("instagram", "threads"):
        assert result.raw["deleted_id"] == remote_id


@pytest.mark.parametrize("channel", META)
async def test_a_second_recall_finds_the_meta_post_gone_and_deletes_nothing(
        channel, standins, make_publisher) -> None:
    publisher = make_publisher(channel)
    remote_id = await publish(publisher, channel)
    await withdraw(publisher, remote_id)

    again = await withdraw(publisher, remote_id)

    assert (again.gone, again.already_gone, again.manual) == (True, True, False)
    assert "already deleted" in again.detail
    [post] = recorded_posts(standins, channel)
    assert post["deletions"] == 1
    first, second = deletes(standins, channel, remote_id)
    assert (first["status"], second["status"]) == (200, 400)  # then Graph's 100/33


async def test_a_second_linkedin_recall_is_answered_204_as_linkedin_documents(
        standins, make_publisher) -> None:
    """ "Post deletions are idempotent": LinkedIn answers a post it deleted before with 204
    too, so the second recall is gone but cannot tell that it was gone already."""
    publisher = make_publisher("linkedin")
    remote_id = await publish(publisher, "linkedin")
    await withdraw(publisher, remote_id)

    again = await withdraw(publisher, remote_id)

    assert (again.gone, again.already_gone) == (True, False)
    assert "deleted before" in again.detail
    [post] = recorded_posts(standins, "linkedin")
    assert post["deletions"] == 1
    assert [r["status"] for r in deletes(standins, "linkedin", remote_id)] == [204, 204]


async def test_a_linkedin_post_the_network_does_not_know_counts_as_gone(
        standins, make_publisher) -> None:
    result = await withdraw(make_publisher("linkedin"), "urn:li:share:7100000000000000001")
    assert (result.gone, result.already_gone) == (True, True)
    assert "404" in result.detail


async def test_the_linkedin_urn_goes_url_encoded_in_the_path(standins, make_publisher,
                                                              client) -> None:
    """The stand-in refuses a URN that is not encoded ("{encoded ugcPostUrn|shareUrn}"),
    so the recall above passing means the publisher encodes it."""
    remote_id = await publish(make_publisher("linkedin"), "linkedin")
    plain = await client.delete(
        f"{standins.base_url}/linkedin/rest/posts/{remote_id}",
        headers={"Authorization": f"Bearer {standin.LINKEDIN_TOKEN}",
                 "LinkedIn-Version": DEFAULT_VERSION, "X-Restli-Protocol-Version": "2.0.0"})
    assert plain.status_code == 400
    assert len(recorded_posts(standins, "linkedin", shown=True)) == 1


async def test_graphs_does_not_exist_for_an_object_still_shown_is_not_taken_for_gone(
        standins, make_publisher, image) -> None:
    """100/33 also means "cannot be loaded due to missing permissions, or does not support
    this operation": the publisher reads the object; readable, it is not gone. (Here: a
    photo id, which the stand-in does not delete; its Page post stays.)"""
    publisher = make_publisher("facebook")
    result = await publisher.publish(make_post("facebook", media=(image(),)),
                                     idempotency_key="photo")
    photo_id = str(result.raw["id"])
    assert photo_id != result.remote_id

    with pytest.raises(PermanentPublishError) as refused:
        await withdraw(publisher, photo_id)

    assert not isinstance(refused.value, CredentialRefused)
    assert "still shown" in str(refused.value)
    assert "does not exist" in refused.value.network_message
    assert len(recorded_posts(standins, "facebook", shown=True)) == 1


# --- failures on the way ----------------------------------------------------------------


# How each network says "slow down" or fails to the DELETE, and the wait it means: Graph
# throttles with HTTP 400 and code 4 (no wait told: the backoff's first step), LinkedIn
# with 429 and Retry-After.
@pytest.mark.parametrize(("channel", "kind", "wait"), [
    *[(channel, kind, 0.5) for channel in META for kind in ("429", "500")],
    ("linkedin", "429", 3.0), ("linkedin", "500", 0.5),
])
async def test_a_transient_failure_is_retried_and_deletes_once(
        channel, kind, wait, standins, make_publisher) -> None:
    publisher = make_publisher(channel)
    remote_id = await publish(publisher, channel)
    standins.set_faults([{"network": STANDIN_NETWORK[channel], "path_contains": remote_id,
                          "kind": kind, "retry_after": 3}])
    sleeps = Sleeps()

    result = await withdraw_with_retries(publisher, remote_id, remote_url=None,
                                         idempotency_key="recall-1", sleep=sleeps)

    assert result.gone and not result.already_gone and result.attempts == 2
    assert sleeps == [wait]
    assert [r.get("fault") for r in deletes(standins, channel, remote_id)] == [kind, None]
    [post] = recorded_posts(standins, channel)
    assert post["deletions"] == 1
    if channel == "threads" and kind == "429":  # a 4xx refusal: the quota was read
        [quota] = [r for r in standins.requests("graph")
                   if r["path"].endswith("/threads_publishing_limit")]
        assert quota["query"]["fields"] == "delete_quota_usage,delete_config"


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
@pytest.mark.parametrize("channel", NETWORKS)
async def test_a_lost_answer_is_sent_again_and_the_post_is_deleted_once(
        channel, reset, standins, make_publisher) -> None:
    publisher = make_publisher(channel)
    remote_id = await publish(publisher, channel)
    standins.set_faults([{"network": STANDIN_NETWORK[channel], "path_contains": remote_id,
                          "kind": "drop_after_receive", "reset": reset}])

    result = await withdraw_with_retries(publisher, remote_id, remote_url=None,
                                         idempotency_key="recall-1", sleep=Sleeps())

    assert result.gone and not result.manual
    first, second = deletes(standins, channel, remote_id)
    assert first.get("dropped") and not second.get("dropped")
    [post] = recorded_posts(standins, channel)
    assert post["deletions"] == 1
    assert recorded_posts(standins, channel, shown=True) == []


@pytest.mark.parametrize("kind", ["502", "504"])
@pytest.mark.parametrize("channel", NETWORKS)
async def test_a_gateway_that_lost_the_answer_is_retried_and_the_post_deleted_once(
        channel, kind, standins, make_publisher) -> None:
    """The network deleted the post, the proxy in front answered 502/504: for a delete that
    is only transient (a repeat is harmless), never ambiguous."""
    publisher = make_publisher(channel)
    remote_id = await publish(publisher, channel)
    standins.set_faults([{"network": STANDIN_NETWORK[channel], "path_contains": remote_id,
                          "kind": kind}])
    sleeps = Sleeps()

    result = await withdraw_with_retries(publisher, remote_id, remote_url=None,
                                         idempotency_key="recall-1", sleep=sleeps)

    assert result.gone and result.attempts == 2 and sleeps == [0.5]
    first, _second = deletes(standins, channel, remote_id)
    assert first["status"] == int(kind) and first["upstream_status"] in (200, 204)
    [post] = recorded_posts(standins, channel)
    assert post["deletions"] == 1


@pytest.mark.parametrize("channel", NETWORKS)
async def test_a_401_injected_on_the_delete_is_credential_refused(
        channel, standins, make_publisher) -> None:
    publisher = make_publisher(channel)
    remote_id = await publish(publisher, channel)
    standins.set_faults([{"network": STANDIN_NETWORK[channel], "path_contains": remote_id,
                          "kind": "401"}])

    with pytest.raises(CredentialRefused):
        await withdraw_with_retries(publisher, remote_id, remote_url=None,
                                    idempotency_key="recall-1", sleep=Sleeps())

    assert [r.get("fault") for r in deletes(standins, channel, remote_id)] == ["401"]
    assert len(recorded_posts(standins, channel, shown=True)) == 1


@pytest.mark.parametrize("channel", NETWORKS)
async def test_a_refused_token_is_credential_refused_and_the_post_stays(
        channel, standins, make_publisher) -> None:
    remote_id = await publish(make_publisher(channel), channel)

    with pytest.raises(CredentialRefused) as refused:
        await withdraw(make_publisher(channel, secret="not-a-token-the-network-knows"),
                       remote_id)

    assert DELETE_PERMISSION[channel] in str(refused.value)
    assert refused.value.status_code in (400, 401)
    assert len(recorded_posts(standins, channel, shown=True)) == 1


@pytest.mark.parametrize(("channel", "secret"), [
    ("facebook", standin.GRAPH_READ_ONLY_TOKEN), ("instagram", standin.GRAPH_READ_ONLY_TOKEN),
    ("threads", standin.GRAPH_READ_ONLY_TOKEN), ("linkedin", standin.LINKEDIN_ANALYST_TOKEN),
])
async def test_a_token_that_may_not_delete_names_what_it_lacks(
        channel, secret, standins, make_publisher) -> None:
    remote_id = await publish(make_publisher(channel), channel)

    with pytest.raises(CredentialRefused) as refused:
        await withdraw(make_publisher(channel, secret=secret), remote_id)

    assert DELETE_PERMISSION[channel] in str(refused.value)
    assert len(recorded_posts(standins, channel, shown=True)) == 1


async def test_a_sunset_linkedin_version_says_what_to_change_on_delete(
        standins, make_publisher, client) -> None:
    remote_id = await publish(make_publisher("linkedin"), "linkedin")
    old = publisher_for(make_account("linkedin", standins.base_url, api_version="202411"),
                        client=client, credential=SecretStr(standin.LINKEDIN_TOKEN))

    with pytest.raises(PermanentPublishError) as refused:
        await withdraw(old, remote_id)

    assert refused.value.status_code == 426 and "api_version" in str(refused.value)
    assert len(recorded_posts(standins, "linkedin", shown=True)) == 1


# --- Threads: 100 deletes a day ---------------------------------------------------------


@pytest.fixture(scope="module")
def one_delete_a_day() -> Iterator[StandinControl]:
    with running_standins(StandinConfig(threads_deletes_per_day=1)) as url, \
            StandinControl(url) as control:
        yield control


async def test_threads_daily_delete_quota_is_a_wait_until_the_window_frees(
        one_delete_a_day, client) -> None:
    standins = one_delete_a_day
    standins.reset()
    threads = publisher_for(make_account("threads", standins.base_url), client=client,
                            credential=SecretStr(standin.GRAPH_TOKEN))
    assert isinstance(threads, ThreadsPublisher)
    threads.container_poll_interval = 0.01
    first = await publish(threads, "threads", "t1", text="Erster Beitrag")
    second = await publish(threads, "threads", "t2", text="Zweiter Beitrag")
    assert (await withdraw(threads, first)).gone
    sleeps = Sleeps()

    with pytest.raises(TransientPublishError) as waits:
        await withdraw_with_retries(threads, second, remote_url=None,
                                    idempotency_key="recall-2", sleep=sleeps)

    assert waits.value.retry_after == 86_400  # beyond max_delay: raised at once
    assert sleeps == []
    assert "1 deletes per profile in 24 hours" in str(waits.value)
    assert second in str(waits.value)
    [refusal] = deletes(standins, "threads", second)
    assert refusal["status"] == 400
    assert [p["id"] for p in recorded_posts(standins, "threads", shown=True)] == [second]


# --- Instagram: what a person must delete -----------------------------------------------


async def test_instagram_through_instagram_login_is_handed_to_a_person(
        standins, client) -> None:
    """The Instagram API with Instagram Login (graph.instagram.com) has no delete: the
    recall names the account and the app, and sends nothing."""
    account = make_account("instagram", standins.base_url,
                           base_url="https://graph.instagram.com/v25.0")
    instagram = publisher_for(account, client=client, credential=SecretStr("IGAA-token"))

    result = await instagram.withdraw(
        "17841400000000009", remote_url="https://www.instagram.com/p/Trikottag/",
        idempotency_key="recall-ig")

    assert (result.gone, result.manual) == (False, True)
    assert account.label in result.detail and "178414" in result.detail
    assert "Instagram app" in result.detail
    assert "https://www.instagram.com/p/Trikottag/" in result.detail
    assert standins.requests("graph") == []


async def test_instagram_media_its_api_cannot_delete_is_handed_to_a_person(
        standins, make_publisher, client) -> None:
    """A child of a carousel album: "Individually deleting media within a carousel is not
    supported" (-1/2207073). The whole album can be deleted, and its children go with it."""
    instagram = make_publisher("instagram")
    two = (MediaItem(source=IMAGE_URL, alt=ALT), MediaItem(source=IMAGE_URL, alt="Zweites"))
    album = await publish(instagram, "instagram", media=two)
    children = (await client.get(
        f"{standins.base_url}/graph/v21.0/{album}", params={"fields": "children"},
        headers={"Authorization": f"Bearer {standin.GRAPH_TOKEN}"})).json()["children"]["data"]
    child = children[0]["id"]

    by_hand = await withdraw(instagram, child)

    assert (by_hand.gone, by_hand.manual) == (False, True)
    assert "The media type is not supported for this endpoint" in by_hand.detail
    assert "Instagram app" in by_hand.detail and "178414" in by_hand.detail
    assert len(recorded_posts(standins, "instagram", shown=True)) == 1

    assert (await withdraw(instagram, album)).gone
    assert not_found(await network_read(client, standins, "instagram", child), "instagram")
