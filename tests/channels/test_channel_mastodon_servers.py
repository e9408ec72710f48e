"""Servers that speak Mastodon's client API without being (today's) Mastodon, played by
the Mastodon stand-in's profiles (``/mastodon/~QUIRK+…``, see newsroom/standins/mastodon.py):
no v2 instance, no instance at all, Idempotency-Key ignored (GoToSocial), connections
closed after every answer, 422 for a refused token. Real HTTP to the stand-ins."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from channel_testkit import ACCOUNTS, Alerts, make_account, make_post, store_post
from pydantic import SecretStr

from newsroom import store
from newsroom.channels import publish_with_retries, publisher_for
from newsroom.channels.mastodon import recognises_repeats, status_text
from newsroom.channels.responses import map_error
from newsroom.errors import AmbiguousPublishError, CredentialRefused, PermanentPublishError
from newsroom.notify import ALERT_TAG
from newsroom.publishing import idempotency_key_for, publish_post
from newsroom.store.models import PostRecord

pytestmark = pytest.mark.anyio
TOKEN = ACCOUNTS["mastodon"]["secret"]
TEXT = ("Heute ist Trikottag 🎉 #Trikottag https://www.darmstadt.de/trikottag\n\n"
        "Mit @lilien@social.example")


class Sleeps(list):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def server(standins, quirks: str = "", **overrides):
    """The account on the stand-in server with these quirks ("" plain Mastodon) and the
    label its posts are recorded under."""
    base = f"{standins.base_url}/mastodon" + (f"/~{quirks}" if quirks else "")
    account = make_account("mastodon", standins.base_url, base_url=base, **overrides)
    return account, "mastodon" + (f"~{quirks}" if quirks else "")


def publisher(account, client, secret: str = TOKEN):
    made = publisher_for(account, client=client, credential=SecretStr(secret), settle_delay=0)
    made.media_poll_interval = 0.01
    return made


def creates(standins) -> list[dict]:
    return [r for r in standins.requests("mastodon")
            if r["method"] == "POST" and r["path"].endswith("/api/v1/statuses")]


# --- discovery --------------------------------------------------------------------------


async def test_a_post_publishes_on_a_server_without_v2_instance(standins, client) -> None:
    account, label = server(standins, "no-v2-instance")
    mastodon = publisher(account, client)
    result = await mastodon.publish(make_post("mastodon", text=TEXT), idempotency_key="k-1")
    assert result.remote_id and [p["text"] for p in standins.posts(label)] == [TEXT]
    facts = await mastodon.discover()
    assert (facts.source, facts.max_characters, facts.characters_reserved_per_url) == (
        "v1", 500, 23)
    asked = [r["path"] for r in standins.requests("mastodon") if "instance" in r["path"]]
    assert asked == ["/mastodon/api/v2/instance", "/mastodon/api/v1/instance"]  # once each
    assert [r.get("status") for r in standins.requests("mastodon")
            if r["path"].endswith("/v2/instance")] == [404]


async def test_without_any_instance_answer_the_registry_limit_applies_with_a_warning(
        standins, client, caplog) -> None:
    account, label = server(standins, "no-instance", max_characters=30)
    mastodon = publisher(account, client)
    with caplog.at_level(logging.WARNING, logger="newsroom.channels"):
        result = await mastodon.publish(make_post("mastodon", text="Kurz und gut."),
                                        idempotency_key="k-1")
    assert result.remote_id and len(standins.posts(label)) == 1
    assert any("registry's max_characters 30" in r.getMessage() for r in caplog.records)
    assert not mastodon.idempotent_retries  # nothing known: repeats not trusted
    with pytest.raises(PermanentPublishError, match="too long"):  # the registry's 30 holds
        await mastodon.publish(make_post("mastodon", text="x" * 31), idempotency_key="k-2")
    assert len(standins.posts(label)) == 1


@pytest.mark.parametrize(("software", "version", "recognised"), [
    ("", "4.3.2", True),
    ("", "4.4.0-beta.1", True),
    ("", "2.9.3", True),
    ("", "1.6.1", False),  # before the key was kept
    ("", "0.19.1 git-8f2a1c3", False),  # GoToSocial
    ("", "3.5.3+0.19.1-git-8f2a1c3", False),  # GoToSocial, instance-inject-mastodon-version
    ("", "2.7.2 (compatible; Pleroma 2.6.0)", False),
    ("", "2.7.2 (compatible; Akkoma 3.13.2)", False),
    ("", "", False),
    ("mastodon", "4.2.1+glitch", True),  # nodeinfo says Mastodon: its code, its key
    ("gotosocial", "3.5.3", False),
    ("pleroma", "2.6.0", False),
])
def test_which_servers_recognise_a_repeated_key(software, version, recognised) -> None:
    assert recognises_repeats(software, version) is recognised


@pytest.mark.parametrize(("quirks", "override", "recognised"), [
    ("", "auto", True),
    ("no-v2-instance", "auto", True),  # Mastodon 3.5
    ("ignores-idempotency", "auto", False),  # GoToSocial, by nodeinfo
    ("ignores-idempotency", "recognised", True),  # the registry says otherwise
    ("", "ignored", False),
])
async def test_repeat_recognition_per_account(standins, client, quirks, override,
                                              recognised) -> None:
    account, _ = server(standins, quirks, idempotency=override)
    mastodon = publisher(account, client)
    assert mastodon.idempotent_retries is (override == "recognised")  # before it knows
    await mastodon.warm_up()
    assert mastodon.idempotent_retries is recognised


def test_status_html_reads_back_as_the_text() -> None:
    html = ('<p>Heute ist Trikottag 🎉 <a href="https://social.example/tags/Trikottag" '
            'class="mention hashtag" rel="tag">#<span>Trikottag</span></a> <a href="https://'
            'www.darmstadt.de/trikottag" rel="nofollow noopener" target="_blank"><span class='
            '"invisible">https://www.</span><span class="">darmstadt.de/trikottag</span><span '
            'class="invisible"></span></a></p><p>Mit <span class="h-card"><a href="https://'
            'social.example/@lilien" class="u-url mention">@<span>lilien</span></a></span></p>')
    assert status_text(html) == " ".join(TEXT.replace("@lilien@social.example",
                                                      "@lilien").split())


# --- repeats on a server that ignores Idempotency-Key -------------------------------------


@pytest.mark.parametrize("fault", [{"kind": "504"}, {"kind": "502"},
                                   {"kind": "drop_after_receive"}])
async def test_a_lost_answer_is_settled_by_looking_not_by_sending_again(
        standins, client, fault) -> None:
    """The gateway (or a cut connection) lost the answer after the status was made: the
    publisher finds it among the account's statuses and reports it; one create, one post."""
    account, label = server(standins, "ignores-idempotency")
    mastodon = publisher(account, client)
    standins.set_faults([{"network": "mastodon", "path_contains": "/api/v1/statuses",
                          **fault}])
    sleeps = Sleeps()
    result = await publish_with_retries(mastodon, make_post("mastodon", text=TEXT), "k-1",
                                        sleep=sleeps)
    (post,) = standins.posts(label)
    assert result.remote_id == str(post["id"]) and result.raw.get("existing") is True
    assert len(creates(standins)) == 1 and sleeps == []


async def test_a_lost_answer_without_a_status_stays_unknown(standins, client) -> None:
    """The gateway never reached the server: the lookup finds nothing, and since a second
    create could be a second post, none is sent; the error stays ambiguous."""
    account, label = server(standins, "ignores-idempotency")
    mastodon = publisher(account, client)
    standins.set_faults([{"network": "mastodon", "path_contains": "/api/v1/statuses",
                          "kind": "504", "forward": False}])
    with pytest.raises(AmbiguousPublishError, match="do not show it") as caught:
        await publish_with_retries(mastodon, make_post("mastodon", text=TEXT), "k-1",
                                   sleep=Sleeps())
    assert "gotosocial" in str(caught.value)
    assert len(creates(standins)) == 1 and standins.posts(label) == []


async def test_an_older_post_with_the_same_text_is_not_taken_for_this_one(
        standins, client) -> None:
    account, label = server(standins, "ignores-idempotency")
    mastodon = publisher(account, client)
    post = make_post("mastodon", text=TEXT)
    await mastodon.publish(post, idempotency_key="last-year")
    assert await mastodon.find_published(post, since=datetime.now(UTC)
                                         + timedelta(hours=1)) is None
    found = await mastodon.find_published(post, since=datetime.now(UTC) - timedelta(hours=1))
    assert found is not None and found.remote_id == str(standins.posts(label)[0]["id"])


async def test_on_mastodon_itself_a_lost_answer_is_repeated_with_the_key(
        standins, client) -> None:
    account, label = server(standins)
    mastodon = publisher(account, client)
    standins.set_faults([{"network": "mastodon", "path_contains": "/api/v1/statuses",
                          "kind": "504"}])
    sleeps = Sleeps()
    await publish_with_retries(mastodon, make_post("mastodon", text=TEXT), "k-1", sleep=sleeps)
    assert len(creates(standins)) == 2 and len(standins.posts(label)) == 1 and sleeps


def _interrupted(engine, post_id: int, post) -> int:
    """A publication left in "publishing": a worker died between sending and recording."""
    with store.session_scope(engine) as session:
        record = session.get(PostRecord, post_id)
        assert record is not None
        key = idempotency_key_for(post.post_key, record.content_hash)
        left = store.reserve_publication(session, post_id=post_id, channel="mastodon",
                                         idempotency_key=key)
        store.mark_publishing(session, publication_id=left.id)
        return left.id


@pytest.mark.parametrize("made", [True, False])
async def test_a_repeated_create_after_a_crash_never_makes_a_second_status(
        standins, client, engine, made) -> None:
    """The earlier worker died mid-call. If its status is there, the lookup records it as
    published; if not, the publication is "unknown" with an alert: never a second status."""
    account, label = server(standins, "ignores-idempotency")
    post = make_post("mastodon", text=TEXT)
    post_id = store_post(engine, post)
    _interrupted(engine, post_id, post)
    if made:  # the dead worker's create did arrive
        await publisher(account, client).publish(post, idempotency_key="earlier")
    alerts = Alerts()
    before = len(creates(standins))
    outcome = await publish_post(engine=engine, post_id=post_id, account=account,
                                 client=client, credential=SecretStr(TOKEN), notifier=alerts,
                                 sleep=Sleeps())
    assert len(creates(standins)) == before  # not sent again
    assert len(standins.posts(label)) == (1 if made else 0)
    if made:
        assert outcome.status == "published" and alerts.sent == []
        assert outcome.remote_id == str(standins.posts(label)[0]["id"])
    else:
        assert outcome.status == "unknown"
        (alert,) = alerts.sent
        assert alert["tag"] == ALERT_TAG and "unklar" in alert["subject"]


# --- credentials ----------------------------------------------------------------------------


async def test_a_422_for_a_bad_token_is_a_credential_error(standins, client) -> None:
    account, label = server(standins, "token-422")
    mastodon = publisher(account, client, secret="revoked-token")
    with pytest.raises(CredentialRefused, match="the credential was refused") as caught:
        await mastodon.publish(make_post("mastodon", text=TEXT), idempotency_key="k-1")
    assert caught.value.status_code == 422
    assert caught.value.network_message == "This method requires an authenticated user"
    checked = await mastodon.check()
    assert not checked.ok and checked.message == "This method requires an authenticated user"
    assert standins.posts(label) == []


@pytest.mark.parametrize(("status", "said", "credential"), [
    (422, "This method requires an authenticated user", True),
    (422, "Your login is currently disabled", True),
    (422, "Invalid access token", True),
    (401, "The access token is invalid", True),
    (403, "This action is outside the authorized scopes", True),
    (422, "Validation failed: Text character limit of 500 exceeded", False),
    (422, "Validation failed: Media attachments are invalid", False),
    (422, "Cannot attach files that have not finished processing. Try again in a moment!",
     False),
])
def test_which_refusals_are_about_the_credential(status, said, credential) -> None:
    response = httpx.Response(status, json={"error": said},
                              request=httpx.Request("POST", "https://x.test/api/v1/statuses"))
    error = map_error(response, channel="mastodon")
    assert isinstance(error, PermanentPublishError)
    assert isinstance(error, CredentialRefused) is credential
    assert error.network_message == said


# --- connections closed after every answer --------------------------------------------------


@pytest.mark.parametrize(("quirks", "keep_alive"), [
    ("closes-connections", True),  # Mastodon: a lost create is repeated with its key
    # Repeats not recognised: the create always goes on a new connection, so it never
    # meets one the server already closed; keep_alive: false does so for every request.
    ("closes-connections+ignores-idempotency+no-v2-instance", True),
    ("closes-connections+ignores-idempotency+no-v2-instance", False),
])
async def test_connections_closed_after_every_answer_neither_lose_nor_double_posts(
        standins, client, quirks, keep_alive) -> None:
    account, label = server(standins, quirks, keep_alive=keep_alive)
    mastodon = publisher(account, client)
    texts = [f"Beitrag {i}: Trikottag #Trikottag" for i in range(25)]
    for i, text in enumerate(texts):
        result = await publish_with_retries(mastodon, make_post("mastodon", text=text),
                                            f"k-{i}", sleep=Sleeps())
        assert result.remote_id
    assert [p["text"] for p in standins.posts(label)] == texts
