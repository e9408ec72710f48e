"""A network's answer as Newsroom's typed errors: HTTP status, the network's own error
codes (Meta's Graph codes, Bluesky's XRPC errors …), ``Retry-After`` and what a request
that failed on its way means (transient, permanent, ambiguous, the credential refused).
One table per fact; docs/CHANNELS.md cites it."""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import httpx

from newsroom.errors import (
    AmbiguousPublishError,
    CredentialRefused,
    PermanentPublishError,
    PublishError,
    TransientPublishError,
)
from newsroom.redaction import redact

__all__ = ["map_error", "network_message", "parse_retry_after"]

# --- mapping responses and exceptions to typed errors -----------------------------------

# Graph API error codes, as Meta's error handling guide, rate limiting page and the
# Instagram Platform's error code table read (sources in docs/CHANNELS.md). "Wait and
# retry": 1 unknown (possibly temporary), 2 service, 4 app rate limit, 17 user rate
# limit, 32 page rate limit, 341 application limit reached, 613 custom rate limit;
# Instagram's -1 ("Instagram server error. Try again.") and -2 ("It takes too long to
# download the media"), and 9007 (the container is not ready to be published yet).
META_TRANSIENT_CODES = frozenset({-2, -1, 1, 2, 4, 17, 32, 341, 613, 9007})
# A new token or a permission the token lacks: 102 API session, 190 access token expired
# or invalid, 10 and 200-299 permission denied.
META_CREDENTIAL_CODES = frozenset({102, 190, 10, *range(200, 300)})
# (code, error_subcode) that the code alone would misread. 9/2207042: the Instagram
# account reached its content publishing limit (it frees up within 24 hours): wait.
# 4/2207051: Instagram "restricts certain activity to protect our community" (the post is
# suspected spam): a rate-limit code, but repeating the post will not help.
META_TRANSIENT_SUBCODES = frozenset({(9, 2207042)})
META_PERMANENT_SUBCODES = frozenset({(4, 2207051)})
_TRANSIENT_STATUS = frozenset({408, 425, 429})
# Bad Gateway, Gateway Timeout: a proxy had the request and lost the upstream's answer.
_GATEWAY_STATUS = frozenset({502, 504})
# An epoch timestamp is any number above this (2001-09-09); smaller numbers are seconds.
_EPOCH_THRESHOLD = 1_000_000_000


def _json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def network_message(body: Any, text: str = "") -> str:
    """The network's own error words from a response body, whatever its shape."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # Meta Graph: {"error": {"message", "code", ...}}
            message = error.get("error_user_msg") or error.get("message") or ""
            return str(message)
        parts = []
        if isinstance(error, str):  # Mastodon {"error"}; Bluesky {"error", "message"}
            parts.append(error)
        for key in ("message", "description", "error_description", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value and value not in parts:
                parts.append(value)
        errors = body.get("errors")
        if not parts and isinstance(errors, list) and errors:
            parts.append("; ".join(str(e.get("message", e) if isinstance(e, dict) else e)
                                   for e in errors))
        if parts:
            return ": ".join(parts)
    return text.strip()[:500]


def _parse_seconds_or_date(value: str, now: float) -> float | None:
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            return None
        return number - now if number > _EPOCH_THRESHOLD else number
    try:  # ISO 8601, as Mastodon's X-RateLimit-Reset
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:  # HTTP-date, as RFC 9110 allows for Retry-After
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() - now


def parse_retry_after(
    response: httpx.Response, body: Any = None, *, now: float | None = None
) -> float | None:
    """Seconds to wait before the next try, as the network says, or None.

    ``Retry-After`` (seconds or HTTP-date) counts on any status; Telegram's
    ``parameters.retry_after`` in the JSON body too. ``RateLimit-Reset`` /
    ``X-RateLimit-Reset`` (epoch, seconds or ISO 8601) only on a 429: Mastodon and
    Bluesky send them on every response, and a 500 must not wait for a window reset.
    """
    now = time.time() if now is None else now
    if body is None:
        body = _json_body(response)
    candidates: list[float | None] = []
    if "retry-after" in response.headers:
        candidates.append(_parse_seconds_or_date(response.headers["retry-after"], now))
    if isinstance(body, dict) and isinstance(body.get("parameters"), dict):
        value = body["parameters"].get("retry_after")
        if isinstance(value, int | float):
            candidates.append(float(value))
    if response.status_code == 429:
        for name in ("ratelimit-reset", "x-ratelimit-reset"):
            if name in response.headers:
                candidates.append(_parse_seconds_or_date(response.headers[name], now))
    for value in candidates:
        if value is not None:
            return max(0.0, value)
    return None


def map_error(
    source: httpx.Response | BaseException,
    *,
    channel: str = "",
    creates_post: bool = True,
    repeat_safe: bool = False,
    secrets: Iterable[str] = (),
    now: float | None = None,
) -> PublishError:
    """Turn a failed response or a transport exception into a typed publish error.

    ``creates_post`` says whether the request was the one that makes the post: a lost
    answer to it is ambiguous; a lost answer to a media upload or a read is merely
    transient (at worst an orphaned upload remains). ``repeat_safe`` says whether the
    network recognises a repeat of that request (``Publisher.idempotent_retries``): if
    not, a 502/504 to it is ambiguous too.
    """
    secrets = tuple(secrets)
    prefix = f"{channel}: " if channel else ""
    if isinstance(source, httpx.Response):
        return _map_response(source, channel=channel, prefix=prefix, secrets=secrets, now=now,
                             gateway_ambiguous=creates_post and not repeat_safe)

    detail = redact(str(source) or type(source).__name__, secrets)
    if isinstance(source, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
                  | httpx.ProxyError):
        return TransientPublishError(
            f"{prefix}could not reach the network ({type(source).__name__}: {detail}); "
            "nothing was sent, trying again later is safe",
            channel=channel,
        )
    if isinstance(source, httpx.UnsupportedProtocol | httpx.LocalProtocolError
                  | httpx.InvalidURL):
        return PermanentPublishError(
            f"{prefix}the request could not be built ({type(source).__name__}: {detail}); "
            "check the account's base_url",
            channel=channel,
        )
    if creates_post:
        return AmbiguousPublishError(
            f"{prefix}the request was sent but no answer arrived ({type(source).__name__}: "
            f"{detail}); the post may exist: look at the account before posting again",
            channel=channel,
        )
    return TransientPublishError(
        f"{prefix}no answer to a preparatory request ({type(source).__name__}: {detail}); "
        "no post was made, trying again is safe",
        channel=channel,
    )


def _map_response(
    response: httpx.Response, *, channel: str, prefix: str, secrets: tuple[str, ...],
    now: float | None, gateway_ambiguous: bool = False,
) -> PublishError:
    status = response.status_code
    body = _json_body(response)
    said = redact(network_message(body, response.text), secrets)
    retry_after = parse_retry_after(response, body, now=now)
    kwargs: dict[str, Any] = dict(channel=channel, status_code=status, network_message=said,
                                  retry_after=retry_after)
    where = redact(f"{response.request.method} {response.request.url.path}", secrets)

    meta = body.get("error") if isinstance(body, dict) else None
    if isinstance(meta, dict) and isinstance(meta.get("code"), int):
        code = meta["code"]
        text = f"{prefix}{where} failed with Graph API error {code}: {said}"
        if code in META_CREDENTIAL_CODES:
            return CredentialRefused(
                text + " (renew the access token, with the permissions publishing needs, "
                "and store it where the account's credential points)", **kwargs)

    text = f"{prefix}{where} answered HTTP {status}: {said or response.reason_phrase}"
    if gateway_ambiguous and status in _GATEWAY_STATUS:
        # The proxy had the whole request and lost the upstream's answer (or gave up
        # waiting for it): the post may have been made, and this network would make a
        # second one if asked again.
        return AmbiguousPublishError(
            text + "; a gateway between us and the network failed after the request was "
            "sent, so the post may exist: look at the account before posting again",
            **kwargs)

    if isinstance(meta, dict) and isinstance(meta.get("code"), int):
        code, subcode = meta["code"], meta.get("error_subcode")
        if (code, subcode) in META_PERMANENT_SUBCODES:
            return PermanentPublishError(
                f"{prefix}{where} failed with Graph API error {code}/{subcode}: {said} "
                "(the network restricted this post; a person has to look at the account)",
                **kwargs)
        if ((code, subcode) in META_TRANSIENT_SUBCODES or code in META_TRANSIENT_CODES
                or meta.get("is_transient") is True):
            return TransientPublishError(
                f"{prefix}{where} failed with Graph API error {code}: {said} "
                "(temporary; try again later)", **kwargs)

    if status in _TRANSIENT_STATUS or status >= 500:
        wait = f" (wait {retry_after:.0f} s)" if retry_after is not None else ""
        return TransientPublishError(text + f"; temporary, try again later{wait}", **kwargs)
    if status in (401, 403) or (status == 422 and _about_the_credential(said)):
        return CredentialRefused(
            text + "; the credential was refused: check or renew it", **kwargs)
    return PermanentPublishError(text + "; the network refused this post", **kwargs)


# Words of a 422 that is about the credential, not the post. Mastodon's Api::BaseController
# answers 422 "This method requires an authenticated user" (require_user!, a token without
# a user); servers of Mastodon's API answer a revoked or unknown token so as well. A post
# the network refuses says "Validation failed: …" and names none of these.
_CREDENTIAL_WORDS = re.compile(
    r"\b(access[ _]?token|token|authenticat\w*|authori[sz]\w*|credentials?|login|"
    r"log in|sign[ -]?in|unauthori[sz]ed|not logged)\b", re.IGNORECASE)


def _about_the_credential(said: str) -> bool:
    return not said.lower().startswith("validation failed") and bool(
        _CREDENTIAL_WORDS.search(said))
