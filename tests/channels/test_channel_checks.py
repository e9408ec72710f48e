"""`newsroom channels check`: what publishing needs, asked of each network without posting,
over real HTTP to the stand-ins (newsroom/standins/), which answer these calls as the
networks do: the token's scopes, the account that will post, the rights to post, and on
Mastodon's API what discovery finds. See docs/CHANNELS.md, "Credential check"."""

from __future__ import annotations

import pytest
from channel_testkit import make_account, make_post
from pydantic import SecretStr

from newsroom.channels import publisher_for
from newsroom.channels.linkedin import DEFAULT_VERSION
from newsroom.errors import CredentialRefused, PermanentPublishError
from newsroom.publishing import check_accounts
from newsroom.standins import config as standin

pytestmark = pytest.mark.anyio


def mastodon(standins, quirks: str = "", **overrides):
    base = f"{standins.base_url}/mastodon" + (f"/~{quirks}" if quirks else "")
    return make_account("mastodon", standins.base_url, base_url=base, **overrides)


async def check(account, client, secret: str):
    return await publisher_for(account, client=client, credential=SecretStr(secret)).check()


async def check_line(account, client, secret: str, monkeypatch) -> tuple[bool, str]:
    """The account's line of `newsroom channels check`, its credential in the environment
    variable the registry names."""
    monkeypatch.setenv(account.credential.env, secret)
    (status,) = await check_accounts([account], client=client)
    return status.ok, status.message


# --- Mastodon and servers of its API ------------------------------------------------------


async def test_mastodon_ok_names_the_account_the_scopes_and_what_discovery_found(
        standins, client, monkeypatch) -> None:
    ok, line = await check_line(mastodon(standins, account_id="@darmstadt"), client,
                                standin.MASTODON_TOKEN, monkeypatch)
    assert ok, line
    assert line.startswith("@darmstadt@127.0.0.1; limits from /api/v2/instance (500 characters)")
    assert "mastodon 4.3.2 recognises a repeated Idempotency-Key" in line
    assert "scopes read write follow push" in line


@pytest.mark.parametrize(("token", "missing", "purpose"), [
    (standin.MASTODON_READ_ONLY_TOKEN, "write:statuses and write:media",
     "posting and an image needs"),
    (standin.MASTODON_NO_MEDIA_TOKEN, "write:media", "an image needs"),
])
async def test_a_mastodon_token_without_a_write_scope_fails(standins, client, monkeypatch,
                                                           token, missing, purpose) -> None:
    account = mastodon(standins)
    ok, line = await check_line(account, client, token, monkeypatch)
    assert not ok
    assert f"the token lacks the scope {missing} (it has " in line and purpose in line
    assert "create a token with the scopes read:accounts write:statuses write:media" in line
    assert line.endswith("and store it in NEWSROOM_TEST_MASTODON")
    assert token not in line
    # The check read it right: the server refuses what the token lacks.
    with pytest.raises(CredentialRefused, match="outside the authorized scopes"):
        publisher = publisher_for(account, client=client, credential=SecretStr(token))
        await publisher._request("POST", f"{account.base_url}/api/v2/media",
                                 headers=publisher._headers(), files={"file": ("a.png", b"x")})


async def test_a_mastodon_token_of_another_account_fails(standins, client, monkeypatch) -> None:
    ok, line = await check_line(mastodon(standins, account_id="darmstadt@127.0.0.1"), client,
                                standin.MASTODON_OTHER_ACCOUNT_TOKEN, monkeypatch)
    assert not ok
    assert ("the token posts as @kultur@127.0.0.1, but the registry's account_id is "
            "'darmstadt@127.0.0.1'; use a token of that account, or correct account_id") in line


@pytest.mark.parametrize("account_id", ["darmstadt", "@darmstadt", "@darmstadt@127.0.0.1",
                                        "109000000000000001"])
async def test_the_registered_mastodon_account_may_be_named_in_any_usual_form(
        standins, client, account_id) -> None:
    checked = await check(mastodon(standins, account_id=account_id), client,
                          standin.MASTODON_TOKEN)
    assert checked.ok, checked
    wrong = await check(mastodon(standins, account_id="@darmstadt@elsewhere.example"), client,
                        standin.MASTODON_TOKEN)
    assert not wrong.ok


async def test_on_gotosocial_the_check_says_scopes_are_not_told_and_repeats_not_recognised(
        standins, client) -> None:
    checked = await check(mastodon(standins, "ignores-idempotency+no-v2-instance"), client,
                          standin.MASTODON_TOKEN)
    assert checked.ok, checked
    discovery, scopes = checked.details
    assert discovery == (
        "no /api/v2/instance: limits from /api/v1/instance (500 characters); gotosocial "
        "0.19.1 git-8f2a1c3 does not recognise a repeated Idempotency-Key: a lost answer is "
        "settled by looking at the account's statuses")
    assert scopes.startswith("scopes not told by this server")
    # … and where lookups settle lost answers, the token must read statuses too.
    assert "write:statuses or write:media or read:statuses fails at the first post" in scopes


async def test_on_mastodon_before_4_3_scopes_are_not_told(standins, client) -> None:
    checked = await check(mastodon(standins, "no-v2-instance"), client,
                          standin.MASTODON_NO_MEDIA_TOKEN)
    assert checked.ok  # Mastodon 3.5 does not say what the token may do
    assert checked.details[1].startswith("scopes not told by this server")


async def test_a_server_without_any_instance_answer_is_ok_with_the_registry_limit(
        standins, client) -> None:
    checked = await check(mastodon(standins, "no-instance", max_characters=480), client,
                          standin.MASTODON_TOKEN)
    assert checked.ok
    assert checked.details[0].startswith(
        "the server told no limits: the registry's 480 characters apply; the server does "
        "not recognise a repeated Idempotency-Key")


async def test_a_registry_override_of_repeats_is_named(standins, client) -> None:
    checked = await check(mastodon(standins, idempotency="ignored"), client,
                          standin.MASTODON_TOKEN)
    assert "repeats ignored (idempotency: ignored in the registry)" in checked.details[0]


@pytest.mark.parametrize(("quirks", "status", "said"), [
    ("token-422", 422, "This method requires an authenticated user"),
    ("", 401, "The access token is invalid"),
])
async def test_a_refused_mastodon_token_is_a_credential_problem_in_the_servers_words(
        standins, client, monkeypatch, quirks, status, said) -> None:
    ok, line = await check_line(mastodon(standins, quirks), client, "revoked-token", monkeypatch)
    assert not ok
    assert line == (f"the credential was refused: {said}; renew it and store it in "
                    "NEWSROOM_TEST_MASTODON")


# --- Bluesky --------------------------------------------------------------------------------


def bluesky_secret(handle: str = standin.BLUESKY_HANDLE) -> str:
    return f"{handle}:{standin.BLUESKY_APP_PASSWORD}"


async def test_bluesky_ok_names_handle_did_and_that_an_app_password_is_used(
        standins, client) -> None:
    checked = await check(make_account("bluesky", standins.base_url,
                                       account_id=standin.BLUESKY_HANDLE),
                          client, bluesky_secret())
    assert checked.ok, checked
    assert checked.identity.startswith(f"@{standin.BLUESKY_HANDLE} (did:plc:")
    assert checked.details == ("an app password",)


async def test_a_bluesky_app_password_of_another_account_fails(standins, client,
                                                               monkeypatch) -> None:
    account = make_account("bluesky", standins.base_url, account_id=standin.BLUESKY_HANDLE)
    ok, line = await check_line(account, client, bluesky_secret(standin.BLUESKY_OTHER_HANDLE),
                                monkeypatch)
    assert not ok
    assert line.startswith(f"the app password logs in as @{standin.BLUESKY_OTHER_HANDLE} "
                           "(did:plc:")
    assert f"but the registry's account_id is '{standin.BLUESKY_HANDLE}'" in line
    assert standin.BLUESKY_APP_PASSWORD not in line


async def test_a_deactivated_bluesky_account_fails_and_cannot_post(standins, client) -> None:
    handle = standin.BLUESKY_DEACTIVATED_HANDLE
    account = make_account("bluesky", standins.base_url, account_id=handle)
    checked = await check(account, client, bluesky_secret(handle))
    assert not checked.ok and not checked.about_credential
    assert "the account is deactivated" in checked.message
    publisher = publisher_for(account, client=client, credential=SecretStr(bluesky_secret(handle)))
    with pytest.raises(PermanentPublishError, match="AccountDeactivated"):
        await publisher.publish(make_post("bluesky"), idempotency_key="k")


# --- LinkedIn, Meta, Telegram -------------------------------------------------------------


async def test_linkedin_ok_names_the_organization_and_the_members_role(standins, client) -> None:
    checked = await check(make_account("linkedin", standins.base_url), client,
                          standin.LINKEDIN_TOKEN)
    assert checked.ok, checked
    assert checked.identity == "urn:li:organization:2414183 (Wissenschaftsstadt Darmstadt)"
    assert checked.details == ("the member is ADMINISTRATOR",)


async def test_a_linkedin_member_without_a_posting_role_fails(standins, client,
                                                              monkeypatch) -> None:
    ok, line = await check_line(make_account("linkedin", standins.base_url), client,
                                standin.LINKEDIN_ANALYST_TOKEN, monkeypatch)
    assert not ok
    assert line.startswith("the token's member has no role that may post for "
                           "urn:li:organization:2414183 (roles there: ANALYST); have a super "
                           "admin of the LinkedIn page make the member an administrator")


@pytest.mark.parametrize(("channel", "detail"), [
    ("facebook", "page token with pages_manage_posts"),
    ("instagram", "may publish: 0 of 50 posts of the last 24 hours used"),
    ("threads", "may publish: 0 of 250 posts of the last 24 hours used"),
])
async def test_meta_ok_says_the_token_may_publish(standins, client, channel, detail) -> None:
    checked = await check(make_account(channel, standins.base_url), client,
                          standin.GRAPH_TOKEN)
    assert checked.ok, checked
    assert checked.details == (detail,)


@pytest.mark.parametrize(("channel", "said", "permissions"), [
    ("facebook", "the token lacks the permission pages_manage_posts (it has pages_show_list, "
     "pages_read_engagement, instagram_basic, threads_basic)",
     "pages_manage_posts, pages_read_engagement"),
    ("instagram", "the token may not publish for 178414: (#10) Application does not have "
     "permission for this action", "instagram_basic, instagram_content_publish"),
    ("threads", "the token may not publish for 256302: (#10) Application does not have "
     "permission for this action", "threads_basic, threads_content_publish"),
])
async def test_a_meta_token_without_the_publishing_permission_fails(
        standins, client, monkeypatch, channel, said, permissions) -> None:
    ok, line = await check_line(make_account(channel, standins.base_url), client,
                                standin.GRAPH_READ_ONLY_TOKEN, monkeypatch)
    assert not ok
    assert line.startswith(f"{said}; create a token with the permissions {permissions}")
    assert standin.GRAPH_READ_ONLY_TOKEN not in line


async def test_telegram_ok_says_the_bot_may_post_in_the_channel(standins, client) -> None:
    checked = await check(make_account("telegram", standins.base_url), client,
                          standin.TELEGRAM_BOT_TOKEN)
    assert checked.ok, checked
    assert checked.identity == "@darmstadt_newsroom_bot"
    assert checked.details == ("administrator of channel @darmstadt (may post messages)",)


@pytest.mark.parametrize(("chat", "said"), [
    (standin.TELEGRAM_CHANNEL_NO_POST_RIGHT, "is an administrator without the right to post "
     "messages (can_post_messages false)"),
    (standin.TELEGRAM_CHANNEL_WITHOUT_BOT, "is not an administrator (status left)"),
])
async def test_a_telegram_bot_that_may_not_post_in_the_channel_fails(
        standins, client, monkeypatch, chat, said) -> None:
    account = make_account("telegram", standins.base_url, account_id=chat)
    ok, line = await check_line(account, client, standin.TELEGRAM_BOT_TOKEN, monkeypatch)
    assert not ok
    assert line == (f"the bot @darmstadt_newsroom_bot {said} in channel {chat}; make the bot "
                    "an administrator of the channel with the right to post messages "
                    "(channel → Administrators)")  # no credential to renew


async def test_a_refusal_that_is_not_about_the_credential_says_to_check_the_account(
        standins, client) -> None:
    account = make_account("mastodon", standins.base_url,
                           base_url=f"{standins.base_url}/mastodon/nothing-here")
    checked = await check(account, client, standin.MASTODON_TOKEN)
    assert not checked.ok and not checked.about_credential
    assert checked.message.startswith("the network refused: HTTP 404")
    assert "base_url" in checked.fix


async def test_the_stand_in_refuses_what_the_check_says_is_missing(standins, client) -> None:
    """The stand-ins answer the networks' refusals too, so a FAIL of the check is what the
    first post would meet."""
    response = await client.post(
        f"{standins.base_url}/graph/v21.0/104598/feed",
        data={"message": "x", "access_token": standin.GRAPH_READ_ONLY_TOKEN})
    assert response.status_code == 400 and response.json()["error"]["code"] == 200
    response = await client.post(
        f"{standins.base_url}/telegram/bot{standin.TELEGRAM_BOT_TOKEN}/sendMessage",
        json={"chat_id": standin.TELEGRAM_CHANNEL_WITHOUT_BOT, "text": "x"})
    assert response.status_code == 403
    assert response.json()["description"] == "Forbidden: bot is not a member of the channel chat"
    response = await client.post(
        f"{standins.base_url}/linkedin/rest/posts", json={},
        headers={"Authorization": f"Bearer {standin.LINKEDIN_ANALYST_TOKEN}",
                 "LinkedIn-Version": DEFAULT_VERSION, "X-Restli-Protocol-Version": "2.0.0"})
    assert response.status_code == 403 and response.json()["code"] == "ACCESS_DENIED"
