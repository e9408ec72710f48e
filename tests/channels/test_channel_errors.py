"""The one error mapping and the one retry loop, without a network."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from channel_testkit import make_post
from pydantic import SecretStr

from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels import Publisher, PublishResult, map_error, publish_with_retries
from newsroom.channels.base import AccountCheck
from newsroom.channels.responses import parse_retry_after
from newsroom.channels.telegram import TelegramPublisher
from newsroom.errors import (
    AmbiguousPublishError,
    CredentialRefused,
    PermanentPublishError,
    PublishError,
    TransientPublishError,
)

NOW = 1_800_000_000.0  # a fixed "now" (2027-01-15) for the epoch arithmetic


def response(status: int, body: Any = None, headers: dict[str, str] | None = None,
             url: str = "https://example.org/api/v1/statuses") -> httpx.Response:
    content = json.dumps(body).encode() if body is not None else b""
    return httpx.Response(status, content=content, headers={
        **({"content-type": "application/json"} if body is not None else {}),
        **(headers or {})}, request=httpx.Request("POST", url))


def iso(seconds: float) -> str:
    moment = datetime.fromtimestamp(NOW + seconds, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


@pytest.mark.parametrize(("status", "headers", "body", "expected"), [
    (429, {"Retry-After": "7"}, None, 7.0),
    (503, {"Retry-After": "120"}, None, 120.0),
    (429, {"Retry-After": format_datetime(datetime.fromtimestamp(NOW + 30, UTC), usegmt=True)},
     None, 30.0),
    (429, {"X-RateLimit-Reset": iso(12.5)}, {"error": "Too many requests"}, 12.5),  # Mastodon
    (429, {"RateLimit-Reset": str(int(NOW + 40))}, None, 40.0),  # Bluesky: epoch seconds
    (429, {"RateLimit-Reset": "9"}, None, 9.0),  # IETF draft: delta seconds
    (429, {}, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 3",
               "parameters": {"retry_after": 3}}, 3.0),  # Telegram
    (429, {"X-RateLimit-Reset": iso(-5)}, None, 0.0),  # in the past: go now
    (500, {"X-RateLimit-Reset": iso(250)}, None, None),  # a reset header is no wait on a 500
    (429, {"Retry-After": "soon"}, None, None),
    (429, {}, None, None),
])
def test_retry_after(status, headers, body, expected) -> None:
    got = parse_retry_after(response(status, body, headers), now=NOW)
    assert got == (pytest.approx(expected, abs=1e-3) if expected is not None else None)


MASTODON = {"error": "Validation failed: Text character limit of 500 exceeded"}
BLUESKY = {"error": "InvalidRequest", "message": "Invalid app.bsky.feed.post record"}
LINKEDIN = {"status": 422, "message": "ERROR :: /commentary :: field is required"}
TELEGRAM = {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}


def meta(code: int, message: str = "(#4) Application request limit reached",
         subcode: int = 0) -> dict:
    return {"error": {"message": message, "type": "OAuthException", "code": code,
                      "error_subcode": subcode, "fbtrace_id": "AbC"}}


@pytest.mark.parametrize(("status", "body", "kind", "said"), [
    (400, TELEGRAM, PermanentPublishError, "Bad Request: message is too long"),
    (401, {"error": "The access token is invalid"}, CredentialRefused,
     "The access token is invalid"),
    (403, {"message": "Not enough permissions"}, CredentialRefused, "Not enough permissions"),
    (404, {"error": "Record not found"}, PermanentPublishError, "Record not found"),
    (422, MASTODON, PermanentPublishError, MASTODON["error"]),
    (422, LINKEDIN, PermanentPublishError, LINKEDIN["message"]),
    (400, BLUESKY, PermanentPublishError, "InvalidRequest: Invalid app.bsky.feed.post record"),
    (429, {"error": "Too many requests"}, TransientPublishError, "Too many requests"),
    (500, {"error": "InternalServerError", "message": "Internal Server Error"},
     TransientPublishError, "InternalServerError: Internal Server Error"),
    (502, None, AmbiguousPublishError, ""),  # a create, and nothing said it deduplicates
    (504, None, AmbiguousPublishError, ""),
    (503, None, TransientPublishError, ""),
    (400, meta(1, "An unknown error occurred"), TransientPublishError, "An unknown error occurred"),
    (500, meta(2, "Service temporarily unavailable"), TransientPublishError,
     "Service temporarily unavailable"),
    (400, meta(4), TransientPublishError, "(#4) Application request limit reached"),
    (400, meta(17, "(#17) User request limit reached"), TransientPublishError,
     "(#17) User request limit reached"),
    (400, meta(190, "Error validating access token: Session has expired"),
     CredentialRefused, "Error validating access token: Session has expired"),
    (400, meta(100, "(#100) Invalid parameter"), PermanentPublishError, "(#100) Invalid parameter"),
    # Meta's error handling guide: 102 and 190 want a new token, 10 and 200-299 a
    # permission; 341 (application limit reached) is waited out.
    (400, meta(102, "Session key invalid"), CredentialRefused, "Session key invalid"),
    (403, meta(10, "(#10) Permission denied"), CredentialRefused, "(#10) Permission denied"),
    (400, meta(200, "(#200) Permissions error"), CredentialRefused, "(#200) Permissions error"),
    (400, meta(341, "(#341) Application limit reached"), TransientPublishError,
     "(#341) Application limit reached"),
    # Instagram's error code table: -1/-2 "Try again"; 9007 the container is not ready;
    # 9/2207042 the publishing limit is reached (frees up); 4/2207051 suspected spam.
    (400, meta(-1, "Instagram server error. Try again.", 2207001), TransientPublishError,
     "Instagram server error. Try again."),
    (400, meta(-2, "It takes too long to download the media.", 2207003),
     TransientPublishError, "It takes too long to download the media."),
    (400, meta(9007, "Media ID is not available", 2207027), TransientPublishError,
     "Media ID is not available"),
    (400, meta(9, "Application request limit reached", 2207042), TransientPublishError,
     "Application request limit reached"),
    (400, meta(4, "We restrict certain activity to protect our community.", 2207051),
     PermanentPublishError, "We restrict certain activity to protect our community."),
])
def test_responses_map_to_typed_errors(status, body, kind, said) -> None:
    error = map_error(response(status, body), channel="kanal")
    assert type(error) is kind
    assert error.status_code == status
    assert error.network_message == said
    assert str(error).startswith("kanal: POST /api/v1/statuses")
    assert said in str(error)


def test_plain_text_error_bodies_are_kept() -> None:
    error = map_error(httpx.Response(502, text="<html>Bad Gateway</html>",
                                     request=httpx.Request("GET", "https://x.test/a")),
                      creates_post=False)
    assert isinstance(error, TransientPublishError)
    assert error.network_message == "<html>Bad Gateway</html>"


@pytest.mark.parametrize("status", [502, 504])
@pytest.mark.parametrize(("creates_post", "repeat_safe", "kind"), [
    (True, False, AmbiguousPublishError),  # LinkedIn, Meta, Telegram: may be a post already
    (True, True, TransientPublishError),  # Mastodon, Bluesky, website: a repeat is harmless
    (False, False, TransientPublishError),  # an upload or a read: no post made
])
def test_gateway_errors_depend_on_the_request(status, creates_post, repeat_safe, kind) -> None:
    error = map_error(response(status, None), channel="kanal", creates_post=creates_post,
                      repeat_safe=repeat_safe)
    assert type(error) is kind
    assert error.status_code == status


def test_a_refused_token_behind_a_gateway_is_still_permanent() -> None:
    error = map_error(response(502, meta(190, "Error validating access token")),
                      channel="kanal")
    assert type(error) is CredentialRefused


REQUEST = httpx.Request("POST", "https://example.org/x")


@pytest.mark.parametrize(("exc", "creates_post", "kind"), [
    (httpx.ConnectError("[Errno 111] Connection refused", request=REQUEST), True,
     TransientPublishError),
    (httpx.ConnectTimeout("timed out", request=REQUEST), True, TransientPublishError),
    (httpx.PoolTimeout("no connection", request=REQUEST), True, TransientPublishError),
    (httpx.ReadTimeout("timed out", request=REQUEST), True, AmbiguousPublishError),
    (httpx.RemoteProtocolError("Server disconnected without sending a response.",
                               request=REQUEST), True, AmbiguousPublishError),
    (httpx.ReadError("[Errno 104] Connection reset by peer", request=REQUEST), True,
     AmbiguousPublishError),
    (httpx.WriteError("broken pipe", request=REQUEST), True, AmbiguousPublishError),
    (httpx.ReadTimeout("timed out", request=REQUEST), False, TransientPublishError),
    (httpx.RemoteProtocolError("Server disconnected", request=REQUEST), False,
     TransientPublishError),
    (httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'.",
                               request=REQUEST), True, PermanentPublishError),
])
def test_exceptions_map_to_typed_errors(exc, creates_post, kind) -> None:
    error = map_error(exc, channel="kanal", creates_post=creates_post)
    assert type(error) is kind
    assert type(exc).__name__ in str(error)


def test_secrets_never_reach_the_message() -> None:
    token = "123456:AAH-very-secret-bot-token"
    body = {"ok": False, "error_code": 400, "description": f"Bad Request: token {token} bad"}
    error = map_error(response(400, body, url=f"https://api.telegram.org/bot{token}/sendMessage"),
                      channel="telegram", secrets=[token])
    assert token not in str(error) and token not in error.network_message
    assert "/bot***/sendMessage" in str(error)
    error = map_error(httpx.ReadError(f"lost https://x/bot{token}/send", request=REQUEST))
    assert token not in str(error)


def test_publisher_repr_masks_the_credential() -> None:
    account = ChannelAccount(name="telegram", type="telegram", display_name="T",
                             account_id="@darmstadt", credential={"env": "X"})
    publisher = TelegramPublisher(account, SecretStr("123:topsecret"), httpx.AsyncClient())
    assert "topsecret" not in repr(publisher)
    assert "**********" in repr(publisher)


def test_httpx_request_log_lines_are_masked(caplog) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    logging.getLogger("httpx").info('HTTP Request: %s %s "%s"', "POST",
                                    "https://api.telegram.org/bot123:AAsecret_-x/sendMessage",
                                    "HTTP/1.1 200 OK")
    logging.getLogger("httpx").info("GET https://graph.test/me?access_token=EAAB123&fields=id")
    assert "AAsecret" not in caplog.text and "EAAB123" not in caplog.text
    assert "/bot***/sendMessage" in caplog.text and "access_token=***" in caplog.text


# --- the retry loop -----------------------------------------------------------------------


class Scripted(Publisher):
    """A publisher that fails as scripted, then succeeds."""

    channel_type = ChannelType.MASTODON
    needs_credential = False

    def __init__(self, outcomes: list[PublishError | None], *, idempotent: bool = False):
        account = ChannelAccount(name="mastodon", type="mastodon", display_name="M")
        super().__init__(account, None, httpx.AsyncClient())
        self.outcomes = list(outcomes)
        self.idempotent_retries = idempotent  # type: ignore[misc]
        self.calls: list[str] = []

    async def publish(self, post, *, idempotency_key: str) -> PublishResult:
        self.calls.append(idempotency_key)
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        return PublishResult(remote_id="42", url="https://example.org/42")

    async def _check(self) -> AccountCheck:
        return AccountCheck(channel=self.channel, ok=True)


class Sleeps(list):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


POST = make_post("mastodon")


@pytest.mark.anyio
async def test_transient_errors_back_off_exponentially() -> None:
    publisher, sleeps = Scripted([TransientPublishError("x")] * 3), Sleeps()
    result = await publish_with_retries(publisher, POST, "k", base_delay=2, sleep=sleeps)
    assert sleeps == [2, 4, 8]
    assert result.attempts == 4 and publisher.calls == ["k"] * 4


@pytest.mark.anyio
async def test_backoff_is_capped_and_attempts_are_limited() -> None:
    publisher, sleeps = Scripted([TransientPublishError("x")] * 10), Sleeps()
    with pytest.raises(TransientPublishError):
        await publish_with_retries(publisher, POST, "k", max_attempts=6, base_delay=10,
                                   max_delay=30, sleep=sleeps)
    assert sleeps == [10, 20, 30, 30, 30]
    assert len(publisher.calls) == 6


@pytest.mark.anyio
async def test_retry_after_is_honoured_exactly() -> None:
    publisher, sleeps = Scripted([TransientPublishError("429", retry_after=7.5)]), Sleeps()
    await publish_with_retries(publisher, POST, "k", sleep=sleeps)
    assert sleeps == [7.5]


@pytest.mark.anyio
async def test_retry_after_beyond_max_delay_is_left_to_the_caller() -> None:
    error = TransientPublishError("429", retry_after=3600)
    publisher, sleeps = Scripted([error]), Sleeps()
    with pytest.raises(TransientPublishError) as raised:
        await publish_with_retries(publisher, POST, "k", max_delay=60, sleep=sleeps)
    assert raised.value.retry_after == 3600 and sleeps == []


@pytest.mark.anyio
async def test_permanent_errors_are_not_retried() -> None:
    publisher, sleeps = Scripted([PermanentPublishError("401")]), Sleeps()
    with pytest.raises(PermanentPublishError):
        await publish_with_retries(publisher, POST, "k", sleep=sleeps)
    assert len(publisher.calls) == 1 and sleeps == []


@pytest.mark.anyio
async def test_ambiguous_is_raised_unless_the_network_deduplicates() -> None:
    publisher, sleeps = Scripted([AmbiguousPublishError("lost")]), Sleeps()
    with pytest.raises(AmbiguousPublishError):
        await publish_with_retries(publisher, POST, "k", sleep=sleeps)
    assert len(publisher.calls) == 1

    publisher = Scripted([AmbiguousPublishError("lost")], idempotent=True)
    result = await publish_with_retries(publisher, POST, "k", sleep=sleeps)
    assert result.attempts == 2 and publisher.calls == ["k", "k"]  # the same key again


def test_retry_after_in_the_future_http_date_roundtrip() -> None:
    when = datetime.now(UTC) + timedelta(seconds=90)
    got = parse_retry_after(response(429, None, {"Retry-After": format_datetime(when,
                                                                                  usegmt=True)}))
    assert 88 <= got <= 90
