"""The one ASGI app of all stand-ins, with recording, fault injection and an admin page.

    /mastodon  /bluesky  /linkedin  /graph  /telegram  /cms     the networks
    GET  /_standin/posts[?network=][&shown=1]  posts made (shown=1: not deleted), as JSON;
                                         a deleted post has ``deleted_at``
    GET  /_standin/requests[?network=]   requests received (secrets masked), as JSON
    POST /_standin/reset                 forget everything (posts, requests, faults, state)
    GET|POST /_standin/faults            read or replace the fault rules (a JSON list)
    GET  /_standin/post?url=…            HTML page: the one post the network gave that URL
    GET  /                               HTML page: posts per network

Every request under a network prefix is recorded *before* the network handles it, so a
fault never hides a request, and ``drop_after_receive`` (or a forwarded ``502``/``504``)
shows the post that was made although the client never heard back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from html import escape
from types import ModuleType
from typing import Any
from urllib.parse import quote

from pydantic import TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Message, Receive, Scope, Send

from newsroom.standins import bluesky, cms, graph, linkedin, mastodon, telegram
from newsroom.standins._http import parse_payload
from newsroom.standins.config import StandinConfig
from newsroom.standins.recorder import (
    FaultRule,
    Recorder,
    redact_fields,
    redact_headers,
    redact_path,
)
from newsroom.timeutil import format_local

NETWORKS: dict[str, ModuleType] = {
    "mastodon": mastodon, "bluesky": bluesky, "linkedin": linkedin, "graph": graph,
    "telegram": telegram, "cms": cms,
}
# Drops the client connection of a request without answering; True if it could.
ConnectionDropper = Callable[[Scope, bool], Awaitable[bool]]
_RULES = TypeAdapter(list[FaultRule])



POST_PAGE = "/_standin/post"


def post_page_url(standins_url: str, url: str) -> str:
    """The stand-ins' own page of the post a network published at ``url`` (in the demo
    the networks' URLs — bsky.app, t.me, … — do not exist)."""
    return f"{standins_url.rstrip('/')}{POST_PAGE}?url={quote(url, safe='')}"


def _received(post: dict[str, Any]) -> str:
    """When the stand-in received the post, as the office reads times (Darmstadt time,
    seconds, zone): the recorder keeps UTC."""
    return format_local(datetime.fromisoformat(post["created_at"]["wall"]))

class _DroppedConnection(Exception):
    """Raised after a response was started, so the server closes the connection."""


class StandinApp:
    """ASGI app: the networks, recording and faults. ``dropper`` is set by the server."""

    def __init__(self, config: StandinConfig | None = None):
        self.config = config or StandinConfig()
        self.recorder = Recorder()
        self.dropper: ConnectionDropper | None = None
        routes: list[Any] = [
            Mount(f"/{name}", app=module.build(self.recorder, self.config))
            for name, module in NETWORKS.items()
        ]
        routes += [
            Route("/_standin/posts", self._posts),
            Route("/_standin/requests", self._requests),
            Route("/_standin/reset", self._reset, methods=["POST"]),
            Route("/_standin/faults", self._faults, methods=["GET", "POST"]),
            Route(POST_PAGE, self._post_page),
            Route("/", self._page),
        ]
        self._app = Starlette(routes=routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        network = None
        if scope["type"] == "http":
            first = scope["path"].strip("/").split("/", 1)[0]
            network = first if first in NETWORKS else None
        if network is None:
            await self._app(scope, receive, send)
            return

        quirks: frozenset[str] = frozenset()
        if network == "mastodon":  # /mastodon/~QUIRK+…: a server of Mastodon's API
            try:
                quirks = mastodon.select_profile(scope)
            except ValueError as exc:
                await JSONResponse({"error": str(exc)}, 404)(scope, receive, send)
                return
        body = await _read_body(receive)
        headers = dict((k.decode("latin-1").lower(), v.decode("latin-1"))
                       for k, v in scope["headers"])
        payload = parse_payload(headers.get("content-type", ""), body)
        scope["standin.payload"] = payload
        entry = self.recorder.record_request({
            "network": network,
            "method": scope["method"],
            "path": redact_path(scope["path"]),
            "query": redact_fields(_query(scope)),
            "headers": redact_headers(scope["headers"]),
            "body": redact_fields(payload.describe()),
        })
        replay = _replay(body, receive)
        rule = self.recorder.take_fault(network, scope["path"])
        if rule is not None:
            entry["fault"] = rule.kind

        async def send_recording_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        if rule is None or rule.kind == "slow":
            if rule is not None:
                await asyncio.sleep(rule.delay)
            await self._app(scope, replay, send_recording_status)
        elif rule.kind == "slow_answer":
            held: list[Message] = []

            async def hold(message: Message) -> None:
                held.append(message)

            await self._app(scope, replay, hold)  # handled (and recorded) now
            await asyncio.sleep(rule.delay)
            for message in held:
                await send_recording_status(message)
        elif rule.kind == "drop_after_receive":
            async def swallow(message: Message) -> None:
                if message["type"] == "http.response.start":
                    entry["status"] = message["status"]

            await self._app(scope, replay, swallow)
            entry["dropped"] = True
            if self.dropper is None or not await self.dropper(scope, rule.reset):
                # Not under our server: start an answer and fail, so the server cuts it.
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-length", b"100")]})
                raise _DroppedConnection("connection dropped on purpose (fault injection)")
        elif rule.kind in ("502", "504"):
            if rule.forward:  # the upstream got it and acted; its answer is lost
                async def swallow_upstream(message: Message) -> None:
                    if message["type"] == "http.response.start":
                        entry["upstream_status"] = message["status"]

                await self._app(scope, replay, swallow_upstream)
            await _gateway_response(int(rule.kind))(scope, replay, send_recording_status)
        else:
            response = (mastodon.fault_response(rule, quirks) if network == "mastodon"
                        else NETWORKS[network].fault_response(rule))
            await response(scope, replay, send_recording_status)
        if "closes-connections" in quirks and self.dropper is not None:
            # As a server that closes every connection after its answer without saying
            # so: the client's pool still holds the connection as alive.
            await self.dropper(scope, False)

    # -- control --

    async def _posts(self, request: Request) -> Response:
        return JSONResponse({"posts": self.recorder.snapshot_posts(
            request.query_params.get("network"),
            shown_only=request.query_params.get("shown") == "1")})

    async def _requests(self, request: Request) -> Response:
        return JSONResponse({"requests": self.recorder.snapshot_requests(
            request.query_params.get("network"))})

    async def _reset(self, request: Request) -> Response:
        self.recorder.reset()
        return JSONResponse({"ok": True})

    async def _faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                data = json.loads(await request.body() or b"[]")
                if isinstance(data, dict):
                    data = data.get("rules", [])
                self.recorder.set_faults(_RULES.validate_python(data))
            except (ValueError, ValidationError) as exc:
                return JSONResponse({"error": str(exc)}, 422)
        return JSONResponse({"faults": [r.model_dump() for r in self.recorder.faults]})

    async def _post_page(self, request: Request) -> Response:
        url = request.query_params.get("url", "")
        found = [p for p in self.recorder.snapshot_posts() if url and p.get("url") == url]
        if not found:
            return HTMLResponse(_html("Kein Beitrag", "<p>Die Stand-ins kennen keinen "
                                      f"Beitrag unter {escape(url)}.</p>"), 404)
        post = found[-1]
        media = "".join(f"<li>Bild, Alternativtext: {escape(str(m.get('alt')))}</li>"
                        for m in post.get("media") or [])
        return HTMLResponse(_html(
            f"{post['network']}: Beitrag {post.get('id', '')}",
            f"<p>Veröffentlicht {escape(_received(post))} – bei {escape(post['network'])} "
            f"unter <code>{escape(url)}</code> (im Demo: diese Seite der Stand-ins).</p>"
            f"<pre>{escape(post.get('text') or '')}</pre>"
            + (f"<ul>{media}</ul>" if media else "")
            + '<p><a href="/">Alle Beiträge</a></p>'))

    async def _page(self, request: Request) -> Response:
        posts = self.recorder.snapshot_posts()
        sections = []
        networks = sorted({p["network"] for p in posts})
        for network in networks:
            rows = "".join(
                "<tr><td>{time}</td><td>{link}</td><td><pre>{text}</pre></td><td>{media}</td>"
                "</tr>".format(
                    time=escape(_received(p)),
                    link=(f'<a href="{escape(post_page_url("", p["url"]))}">'
                          f'{escape(str(p["id"]))}</a>'
                          if p.get("url") else escape(str(p.get("id", "")))),
                    text=escape(p.get("text") or ""),
                    media="<br>".join(f"alt: {escape(str(m.get('alt')))}"
                                      for m in p.get("media") or []),
                )
                for p in posts if p["network"] == network
            )
            count = sum(p["network"] == network for p in posts)
            sections.append(f"<h2>{escape(network)} ({count})</h2><table><tr><th>time</th>"
                            f"<th>id</th><th>text</th><th>media</th></tr>{rows}</table>")
        faults = "".join(f"<li><code>{escape(r.model_dump_json())}</code></li>"
                         for r in self.recorder.faults) or "<li>none</li>"
        html = (
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>Newsroom stand-ins</title><style>body{font-family:sans-serif;margin:2em}"
            "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;"
            "padding:4px;vertical-align:top;text-align:left}pre{white-space:pre-wrap;margin:0}"
            "</style></head><body><h1>Newsroom stand-ins</h1>"
            f"<p>{len(posts)} posts, {len(self.recorder.requests)} requests received. "
            "JSON: <a href=\"/_standin/posts\">posts</a>, "
            "<a href=\"/_standin/requests\">requests</a>.</p>"
            f"<h2>Active faults</h2><ul>{faults}</ul>"
            + ("".join(sections) or "<p>No posts yet.</p>")
            + "</body></html>"
        )
        return HTMLResponse(html)


def _html(title: str, body: str) -> str:
    """A page of the stand-ins; ``title`` is text, ``body`` HTML already escaped."""
    return ("<!doctype html><html lang=\"de\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
            "pre{white-space:pre-wrap}</style></head>"
            f"<body><h1>{escape(title)}</h1>{body}</body></html>")


def create_app(config: StandinConfig | None = None) -> StandinApp:
    return StandinApp(config)


def _gateway_response(status: int) -> Response:
    """What a reverse proxy (nginx) says when the upstream fails or is too slow."""
    title = {502: "502 Bad Gateway", 504: "504 Gateway Time-out"}[status]
    return HTMLResponse(f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
                        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>"
                        "\r\n</body>\r\n</html>\r\n", status_code=status,
                        headers={"server": "nginx"})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _query(scope: Scope) -> dict[str, Any]:
    from urllib.parse import parse_qs

    raw = scope.get("query_string", b"").decode("latin-1")
    return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(raw).items()}
