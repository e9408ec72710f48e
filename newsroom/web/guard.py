"""The public routes' guard: rate limits and body limits, before any route code runs.

    app.add_middleware(RequestGuard, settings=settings, pages=pages)

One pure ASGI middleware (never ``BaseHTTPMiddleware``, which would buffer) in front of
every route. For each HTTP request it

1. counts the request against the rate limits of its client address and, on the pages
   reached by a link (``/freigabe/<token>``, ``/manual/<token>``, ``/anfrage/<token>``,
   ``/anfrage/antwort/<token>``), of that link; a request over a limit gets the German
   429 page with ``Retry-After`` and nothing behind the guard runs;
2. refuses a declared ``Content-Length`` above the route family's limit at once (413,
   German page), before the route reads anything or checks the token;
3. counts the bytes of every other body (chunked, or shorter than declared) as the route
   reads it, nothing buffered here, and answers 413 the moment the limit is passed.

The limits are counted by the `limits` library, in its storage
(``NEWSROOM_RATE_LIMIT_STORAGE``: ``memory://`` counts per process; a shared storage such
as ``redis://`` counts for several web processes together). Links are counted by a hash
of their token, so the storage never holds a usable link. A storage that fails lets the
request through (logged): the approval page stays usable while the counter is away.

A refused request whose body is too large or of unknown length (chunked) and was not
read gets ``Connection: close``, so the server does not read (and discard) the rest of a
huge upload on a kept-alive connection. A body within the limit is left to the server
to discard: closing then could reset the connection before the client read the answer.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindowRateLimiter
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsroom.requests import MAX_IMAGE_BYTES, MAX_IMAGES
from newsroom.settings import Settings
from newsroom.web import requests as request_form
from newsroom.web.pages import Pages

logger = logging.getLogger("newsroom.web.guard")

__all__ = ["FAMILIES", "RequestGuard", "RouteFamily", "family_of", "german_wait"]

KiB = 1024
MiB = 1024 * KiB
# The small forms, at their routes' own limits (so the guard, which counts first, is the
# one that answers): a decision with its comment, a confirmation, an alert.
APPROVAL_FORM = 16 * KiB
MANUAL_FORM = 8 * KiB
SMALL_FORM = 32 * KiB
# The request form's own reading limit: three images at the limit, one a little over it
# (so the form can say which), and the text.
REQUEST_FORM = request_form.MAX_BODY

_AGAIN = "Bitte öffnen Sie den Link aus Ihrer E-Mail erneut."
_SMALL_TOO_LARGE = ("Die Anfrage ist zu groß",
                    "Es wurden mehr Daten gesendet, als dieses Formular annimmt.", _AGAIN)
_REQUEST_TOO_LARGE = ("Die Anfrage ist zu groß",
                      f"Zusammen dürfen die Bilder höchstens {MAX_IMAGES} × "
                      f"{MAX_IMAGE_BYTES // MiB} MB groß sein.",
                      "Bitte gehen Sie zurück, verkleinern Sie die Bilder und senden Sie das "
                      "Formular erneut.")


@dataclass(frozen=True)
class RouteFamily:
    """Routes that share their limits: the body limit and where their link's token is."""

    name: str
    prefix: tuple[str, ...]  # the leading path segments
    max_body: int  # bytes
    too_large: tuple[str, str, str]  # German title, message, what to do
    token_at: int | None = None  # index of the token among the path segments
    invitation: bool = False  # its POSTs submit requests: counted per invitation

    def token(self, parts: Sequence[str]) -> str | None:
        if self.token_at is None or len(parts) <= self.token_at:
            return None
        return parts[self.token_at] or None


# Most specific first: /anfrage/antwort/<token> before /anfrage/<token>.
FAMILIES = (
    RouteFamily("approval", ("freigabe",), APPROVAL_FORM, _SMALL_TOO_LARGE, token_at=1),
    RouteFamily("manual", ("manual",), MANUAL_FORM, _SMALL_TOO_LARGE, token_at=1),
    RouteFamily("answer", ("anfrage", "antwort"), REQUEST_FORM, _REQUEST_TOO_LARGE, token_at=2),
    RouteFamily("request", ("anfrage",), REQUEST_FORM, _REQUEST_TOO_LARGE, token_at=1,
                invitation=True),
    RouteFamily("hooks", ("hooks",), SMALL_FORM, _SMALL_TOO_LARGE),
)
OTHER = RouteFamily("other", (), SMALL_FORM, _SMALL_TOO_LARGE)


def family_of(path: str) -> tuple[RouteFamily, list[str]]:
    """The route family of a request path, and the path's segments."""
    parts = path.strip("/").split("/")
    for family in FAMILIES:
        if tuple(parts[:len(family.prefix)]) == family.prefix:
            return family, parts
    return OTHER, parts


def german_wait(seconds: int) -> str:
    """'in 30 Sekunden', 'in 2 Minuten', … (for 'Bitte versuchen Sie es … erneut')."""
    if seconds <= 1:
        return "in einer Sekunde"
    if seconds < 120:
        return f"in {seconds} Sekunden"
    minutes = math.ceil(seconds / 60)
    if minutes < 120:
        return f"in {minutes} Minuten"
    hours = math.ceil(seconds / 3600)
    return f"in {hours} Stunden"


class _BodyTooLarge(Exception):
    """Raised into the route from ``receive`` when its body passes the limit."""


@dataclass(frozen=True)
class _Rule:
    """One rate limit: what is counted (``scope``) and its limits."""

    scope: str  # "address", "address-post", "link", "link-post", "invitation", "hooks"
    items: tuple[RateLimitItem, ...]


def _items(setting: str, value: str) -> tuple[RateLimitItem, ...]:
    if not value.strip():
        return ()
    try:
        return tuple(parse_many(value))
    except ValueError:
        raise ValueError(f"NEWSROOM_{setting.upper()}={value!r} is not a rate limit; write "
                         "e.g. '5/minute' or '5/minute;30/hour' (empty: no limit)") from None


class _Counter:
    """The `limits` moving-window counter over the configured storage.

    In memory the synchronous storage is used (thread locks held for microseconds, no
    awaits): its asyncio twin keeps per-key locks and an expiry task bound to the first
    event loop, and hangs when one app is served by another loop later (tests do that).
    A shared storage (redis://…) is reached through the asyncio variant, so the network
    round trip does not block the event loop (one uvicorn process serves one loop).
    """

    def __init__(self, uri: str):
        self._sync: MovingWindowRateLimiter | None = None
        self._async: AsyncMovingWindowRateLimiter | None = None
        if uri.startswith("memory://"):
            self._sync = MovingWindowRateLimiter(storage_from_string(uri))
        else:
            self._async = AsyncMovingWindowRateLimiter(storage_from_string(
                uri if uri.startswith("async+") else f"async+{uri}"))

    async def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        if self._sync is not None:
            return self._sync.hit(item, *identifiers)
        assert self._async is not None
        return await self._async.hit(item, *identifiers)

    async def reset_at(self, item: RateLimitItem, *identifiers: str) -> float:
        """When (epoch seconds) the window of ``item`` has room again."""
        if self._sync is not None:
            return self._sync.get_window_stats(item, *identifiers).reset_time
        assert self._async is not None
        return (await self._async.get_window_stats(item, *identifiers)).reset_time


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:32]


# What each rule counts, and the setting that holds its limits.
_SETTINGS = {
    "address": "rate_limit_address",
    "address-post": "rate_limit_address_posts",
    "link": "rate_limit_link_views",
    "link-post": "rate_limit_link_posts",
    "invitation": "rate_limit_invitation_posts",
    "hooks": "rate_limit_hooks",
}
_BUSY = {
    "address": "Von Ihrem Anschluss kamen in kurzer Zeit sehr viele Anfragen.",
    "address-post": "Von Ihrem Anschluss wurden in kurzer Zeit sehr viele Formulare gesendet.",
    "link": "Dieser Link wurde in kurzer Zeit sehr oft aufgerufen.",
    "link-post": "Über diesen Link wurden in kurzer Zeit sehr viele Formulare gesendet.",
    "invitation": "Über diesen Einladungslink wurden in kurzer Zeit sehr viele Anfragen "
                  "gesendet.",
    "hooks": "An diese Adresse kamen in kurzer Zeit sehr viele Meldungen.",
}


class RequestGuard:
    """Rate limits and body limits of every route (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, settings: Settings, pages: Pages):
        self.app = app
        self.pages = pages
        self.counter = _Counter(settings.rate_limit_storage)
        self.rules = {scope: _Rule(scope, _items(setting, getattr(settings, setting)))
                      for scope, setting in _SETTINGS.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        family, parts = family_of(scope.get("path", ""))
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        # A body of unknown length (chunked): if it is not read, close the connection.
        unbounded = declared is None and bool(headers.get("transfer-encoding"))

        refused = await self._over_limit(scope, family, parts)
        if refused is not None:
            rule, retry_after = refused
            await self._refuse_busy(scope, receive, send, rule, retry_after, unbounded)
            return
        if declared is not None and not declared.strip().isdigit():
            await self._respond(scope, receive, send, self.pages.error(
                400, "Ungültige Anfrage", "Die Längenangabe der Anfrage ist fehlerhaft.",
                _AGAIN), close=True)
            return
        if declared is not None and int(declared) > family.max_body:
            await self._respond(scope, receive, send, self._too_large(family), close=True)
            return

        received = 0
        body_done = not unbounded
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if received > family.max_body:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > family.max_body:
                    raise _BodyTooLarge
                if not message.get("more_body", False):
                    body_done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                if not body_done:  # the rest of the upload is not wanted
                    MutableHeaders(scope=message)["connection"] = "close"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            logger.warning("web: %s /%s refused: body over %d bytes", scope.get("method"),
                           family.name, family.max_body)
            if response_started:
                return  # the connection is closed; nothing more can be said
            await self._respond(scope, receive, send, self._too_large(family), close=True)

    # -- rate limits --

    async def _over_limit(self, scope: Scope, family: RouteFamily, parts: list[str]
                          ) -> tuple[_Rule, int] | None:
        """The rule the request is over and the seconds until it may come again; None
        when it is within every limit (and then it is counted)."""
        client = scope.get("client")
        address = client[0] if client else "unknown"
        posting = scope.get("method", "GET") not in ("GET", "HEAD", "OPTIONS")
        token = family.token(parts)
        checks: list[tuple[str, tuple[str, ...]]] = [("address", (address,))]
        if family.name == "hooks":
            checks.append(("hooks", (address,)))
        if posting:
            checks.append(("address-post", (address,)))
        if token is not None:
            link = (family.name, _digest(token))
            if not posting:
                checks.append(("link", link))
            else:
                checks.append(("invitation" if family.invitation else "link-post", link))
        for name, identifiers in checks:
            rule = self.rules[name]
            for item in rule.items:
                try:
                    if await self.counter.hit(item, name, *identifiers):
                        continue
                    reset_at = await self.counter.reset_at(item, name, *identifiers)
                except Exception as exc:  # noqa: BLE001 - a counter away must not lock people out
                    logger.error("web: rate limit storage failed (%s); request let through",
                                 type(exc).__name__)
                    return None
                return rule, max(1, math.ceil(reset_at - time.time()))
        return None

    async def _refuse_busy(self, scope: Scope, receive: Receive, send: Send, rule: _Rule,
                           retry_after: int, close: bool) -> None:
        logger.warning("web: %s %s refused: over the %s rate limit", scope.get("method"),
                       "/" + scope.get("path", "").strip("/").split("/")[0], rule.scope)
        response = self.pages.error(
            429, "Zu viele Anfragen",
            _BUSY[rule.scope] + " Zum Schutz vor Missbrauch nimmt diese Seite gerade keine "
            "weiteren an.",
            f"Bitte versuchen Sie es {german_wait(retry_after)} erneut.")
        response.headers["retry-after"] = str(retry_after)
        await self._respond(scope, receive, send, response, close=close)

    # -- responses --

    def _too_large(self, family: RouteFamily) -> Response:
        return self.pages.error(413, *family.too_large)

    @staticmethod
    async def _respond(scope: Scope, receive: Receive, send: Send, response: Response, *,
                       close: bool) -> None:
        if close:
            response.headers["connection"] = "close"
        await response(scope, receive, send)
