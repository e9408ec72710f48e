"""What the networks' own documentation says about versions, containers and limits, held
against the publishers over real HTTP to the stand-ins, which behave so too (the sources
are named in docs/CHANNELS.md)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from channel_testkit import ACCOUNTS, make_account, make_post
from pydantic import SecretStr

from newsroom.channels import publisher_for
from newsroom.channels.linkedin import DEFAULT_VERSION
from newsroom.errors import PermanentPublishError, TransientPublishError
from newsroom.posts import MediaItem
from newsroom.standins import StandinConfig, StandinControl, running_standins

pytestmark = pytest.mark.anyio
REMOTE_IMAGE = MediaItem(source="https://www.darmstadt.de/media/trikottag.jpg",
                         alt="Ein Kind im Lilien-Trikot jubelt.")


@pytest.fixture(scope="module")
def strict_standins() -> Iterator[StandinControl]:
    """Stand-ins whose Meta containers need processing (two IN_PROGRESS answers, text
    containers too) and whose Instagram account may publish one post a day."""
    config = StandinConfig(graph_container_polls=2, graph_instagram_publish_limit=1)
    with running_standins(config) as url, StandinControl(url) as control:
        yield control


@pytest.fixture
def strict(strict_standins: StandinControl) -> StandinControl:
    strict_standins.reset()
    return strict_standins


def publisher(name: str, standins: StandinControl, client: httpx.AsyncClient, **overrides):
    account = make_account(name, standins.base_url, **overrides)
    made = publisher_for(account, client=client,
                         credential=SecretStr(ACCOUNTS[name]["secret"]))
    if hasattr(made, "container_poll_interval"):
        made.container_poll_interval = 0.01
    return made


def posts_to(standins: StandinControl, network: str, path_end: str) -> list[dict]:
    return [r for r in standins.requests(network)
            if r["method"] == "POST" and r["path"].endswith(path_end)]


# --- LinkedIn: a version LinkedIn still serves -----------------------------------------


async def test_linkedin_publishes_with_its_default_version(standins, client) -> None:
    """LinkedIn serves a LinkedIn-Version for about a year, then answers 426
    NONEXISTENT_VERSION (202411, the default before, was sunset on 17 November 2025)."""
    linkedin = publisher("linkedin", standins, client)
    result = await linkedin.publish(make_post("linkedin"), idempotency_key="li-version")
    assert result.remote_id.startswith("urn:li:share:")
    [create] = posts_to(standins, "linkedin", "/rest/posts")
    assert create["headers"]["linkedin-version"] == DEFAULT_VERSION
    assert create["headers"]["x-restli-protocol-version"] == "2.0.0"


async def test_a_sunset_linkedin_version_says_what_to_change(standins, client) -> None:
    linkedin = publisher("linkedin", standins, client, api_version="202411")
    with pytest.raises(PermanentPublishError) as refused:
        await linkedin.publish(make_post("linkedin"), idempotency_key="li-sunset")
    assert refused.value.status_code == 426
    assert "Requested version 20241101 is not active" in refused.value.network_message
    assert "api_version" in str(refused.value)
    assert standins.posts("linkedin") == []


async def test_the_accounts_api_version_is_the_one_sent(standins, client) -> None:
    linkedin = publisher("linkedin", standins, client, api_version="202603")
    await linkedin.publish(make_post("linkedin"), idempotency_key="li-account-version")
    [create] = posts_to(standins, "linkedin", "/rest/posts")
    assert create["headers"]["linkedin-version"] == "202603"


# --- Threads: every container is processed before it can be published -----------------


async def test_a_threads_text_post_waits_for_its_container(strict, client) -> None:
    threads = publisher("threads", strict, client)
    result = await threads.publish(make_post("threads", text="Heute ist Trikottag."),
                                   idempotency_key="threads-text")
    assert result.url and result.url.startswith("https://www.threads.net/")
    [post] = strict.posts("threads")
    assert post["media_type"] == "TEXT"
    status_reads = [r for r in strict.requests("graph")
                    if r["method"] == "GET" and r["query"].get("fields") == "status"]
    assert len(status_reads) >= 2  # IN_PROGRESS twice, then FINISHED
    [publish] = posts_to(strict, "graph", "/threads_publish")
    assert publish["status"] == 200


# --- Instagram: the content publishing limit -------------------------------------------


async def test_instagrams_publishing_limit_is_a_wait_not_a_refusal(strict, client) -> None:
    """Code 9, subcode 2207042: the account reached the posts it may publish through the
    API in 24 hours. Nothing was published; it frees up later, so the post waits."""
    instagram = publisher("instagram", strict, client)
    first = make_post("instagram", media=(REMOTE_IMAGE,), campaign="erster")
    await instagram.publish(first, idempotency_key="ig-1")
    second = make_post("instagram", media=(REMOTE_IMAGE,), campaign="zweiter")
    with pytest.raises(TransientPublishError) as limited:
        await instagram.publish(second, idempotency_key="ig-2")
    assert limited.value.status_code == 400
    assert "maximum number of posts" in limited.value.network_message
    assert len(strict.posts("instagram")) == 1
