"""What every page of the web app shares: its context, HTML rendering, security headers.

Pages are Jinja templates from ``newsroom/web/templates`` with autoescaping on. Each
HTML response gets its own CSP nonce for its one inline ``<style>``; every response
(also JSON, also errors) carries ``Referrer-Policy: no-referrer`` — the links hold signed
tokens that must not travel to other sites in a Referer header — and a strict CSP.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from sqlalchemy.engine import Engine
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsroom.catalog.catalog import Catalog
from newsroom.settings import Settings
from newsroom.signing import Signer

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def content_security_policy(nonce: str | None = None) -> str:
    style = f"'nonce-{nonce}'" if nonce else "'none'"
    return ("default-src 'none'; "
            f"style-src {style}; "
            "img-src 'self' data:; "
            "form-action 'self'; "
            "base-uri 'none'; "
            "frame-ancestors 'none'")


BASE_HEADERS = {
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


class Pages:
    """Renders the templates into responses with their security headers."""

    def __init__(self, templates_dir: Path = TEMPLATES_DIR):
        # The templates ship with the package: not looked at again at every render.
        self.env = Environment(loader=FileSystemLoader(templates_dir), autoescape=True,
                               undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                               auto_reload=False)

    def render(self, name: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        html = self.env.get_template(name).render(csp_nonce=nonce, **context)
        response = HTMLResponse(html, status_code=status)
        response.headers.update(BASE_HEADERS)
        response.headers["content-security-policy"] = content_security_policy(nonce)
        return response

    def fragment(self, name: str, context: dict[str, Any]) -> Markup:
        """A part of a page (autoescaped like the page), to be placed into one."""
        return Markup(self.env.get_template(name).render(**context))

    def error(self, status: int, title: str, message: str, todo: str = "") -> HTMLResponse:
        return self.render("error.html", {"title": title, "message": message, "todo": todo},
                           status=status)


# How long the web app uses a catalog before it looks at the folder again: looking
# stats every catalog file (milliseconds), which each request of a burst would repeat.
# An edit is seen by the pages within this time (the keeper waits 0.25 s for files being
# written to settle anyway); the flows and the CLI look at every access.
CATALOG_RECHECK_SECONDS = 1.0


@dataclass
class WebContext:
    engine: Engine
    catalog_source: Catalog | Callable[[], Catalog]  # a catalog, or what returns the current one
    settings: Settings
    signer: Signer
    pages: Pages
    # Called with the GateStatus when an approval decision settled (or escalated) a gate.
    on_gate_settled: Callable[[Any], Any] | None = None
    # Called with the GateStatus after a decision that left the gate open (a signature).
    on_gate_decided: Callable[[Any], Any] | None = None
    # Returns the notifier for alerts to the office (the /hooks/alert endpoint).
    notifier: Callable[[], Any] | None = None
    # For reads only (the pages, the checks of a link): on SQLite they then neither wait
    # for the write lock nor hold it; see store.db.make_read_engine. Default: ``engine``.
    reader: Engine | None = None
    # What the pages keep between requests, by page (e.g. "approval"); see there.
    caches: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _catalog: tuple[float, Catalog] | None = field(default=None, init=False, repr=False)
    _catalog_lock: threading.Lock = field(default_factory=threading.Lock, init=False,
                                          repr=False)

    @property
    def read_engine(self) -> Engine:
        return self.reader or self.engine

    @property
    def catalog(self) -> Catalog:
        """The catalog now: a running server sees edited campaign files (within
        :data:`CATALOG_RECHECK_SECONDS`). While one request looks at the folder, the others
        use the catalog it had; the first request waits for it."""
        source = self.catalog_source
        if isinstance(source, Catalog):
            return source
        cached = self._catalog
        now = time.monotonic()
        if cached is not None and now - cached[0] < CATALOG_RECHECK_SECONDS:
            return cached[1]
        if not self._catalog_lock.acquire(blocking=cached is None):
            assert cached is not None
            return cached[1]
        try:
            cached = self._catalog
            if cached is not None and time.monotonic() - cached[0] < CATALOG_RECHECK_SECONDS:
                return cached[1]
            catalog = source()
            self._catalog = (time.monotonic(), catalog)
            return catalog
        finally:
            self._catalog_lock.release()


def get_context(request: Request) -> WebContext:
    return request.app.state.newsroom


class SecurityHeadersMiddleware:
    """Adds the base headers and a CSP to every response that does not set its own."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in BASE_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                if "content-security-policy" not in headers:
                    headers["content-security-policy"] = content_security_policy()
            await send(message)

        await self.app(scope, receive, send_with_headers)
