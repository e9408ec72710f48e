"""`newsroom channels check`: what publishing needs, asked of each network without posting,
over real HTTP to the stand-ins (newsroom/standins/), which answer these calls as the
networks do: the token's scopes, the account that will post, the rights to post, and on
Mastodon's API what discovery finds. See docs/CHANNELS.md, "Credential check"."""

from __future__ import annotations

import httpx
import pytest
from channel_testkit import ACCOUNTS, make_account
from pydantic import SecretStr

from newsroom.channels import publisher_for
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
    with pytest.raises(Exception, match="outside the authorized scopes"):
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
