"""CMS webhook stand-in: ``POST /posts`` with JSON, a Bearer token and an ``Idempotency-Key``
(a repeated key answers the first result and makes nothing new). A 429 says when to
come back with an HTTP-date ``Retry-After``.

``POST /posts/withdraw`` with ``{"id": <entry id>, "reason": …}`` (the same token)
withdraws an entry as the city's CMS is to (newsroom/channels/website.py): its page stays
at its URL with a „Zurückgezogen“ notice and the reason, the feed no longer lists it, the
recorded post is marked deleted. It answers 200 ``{"status": "withdrawn"}``, then
``"already_withdrawn"`` for every repeat, ``"not_found"`` for an entry it never had.

``GET /feed`` lists the entries shown as news (withdrawn ones not); ``GET /posts/{id}`` is
an entry's page, as JSON (``status`` published or withdrawn, with ``notice`` and
``reason``)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsroom.standins._http import bearer, json_response, payload_of
from newsroom.standins.config import StandinConfig
from newsroom.standins.recorder import FaultRule, Recorder

NETWORK = "cms"


def fault_response(rule: FaultRule) -> Response:
    if rule.kind == "429":
        when = datetime.now(UTC) + timedelta(seconds=rule.retry_after)
        return json_response({"detail": "Too many requests"}, 429,
                             {"Retry-After": format_datetime(when, usegmt=True)})
    if rule.kind == "401":
        return json_response({"detail": "Invalid token"}, 401)
    return json_response({"detail": "Internal Server Error"}, 500)


def _slug(title: str) -> str:
    table = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
    return re.sub(r"[^a-z0-9]+", "-", title.lower().translate(table)).strip("-")[:60]


def build(recorder: Recorder, config: StandinConfig) -> Starlette:
    seq = itertools.count(1)
    by_key: dict[str, dict[str, Any]] = {}
    # The CMS's pages by number: the create's result with title, text, published, and
    # once withdrawn its ``withdrawal``.
    pages: dict[int, dict[str, Any]] = {}

    def reset() -> None:
        nonlocal seq
        seq = itertools.count(1)
        by_key.clear()
        pages.clear()

    recorder.on_reset(reset)

    def refused(request: Request) -> Response | None:
        if config.cms_tokens and bearer(request) not in config.cms_tokens:
            return json_response({"detail": "Invalid token"}, 401)
        return None

    async def create(request: Request) -> Response:
        if (refusal := refused(request)) is not None:
            return refusal
        key = request.headers.get("idempotency-key")
        if not key:
            return json_response({"detail": "Idempotency-Key header required"}, 400)
        if key in by_key:
            return json_response(by_key[key], 200)
        body = (await payload_of(request)).json
        if not isinstance(body, dict) or not body.get("id") or not body.get("text"):
            return json_response({"detail": "JSON with id and text required"}, 422)
        number = next(seq)
        result = {"id": number, "entry_id": body["id"],
                  "url": f"https://www.darmstadt.de/aktuelles/{number}-"
                         f"{_slug(body.get('title') or 'meldung')}"}
        by_key[key] = result
        pages[number] = {**result, "title": body.get("title"), "text": body["text"],
                         "published": body.get("published")}
        recorder.add_post(NETWORK, id=str(number), url=result["url"], entry_id=body["id"],
                          title=body.get("title"), text=body["text"], link=body.get("link"),
                          idempotency_key=key, media=body.get("media", []))
        return json_response(result, 201)

    async def withdraw(request: Request) -> Response:
        if (refusal := refused(request)) is not None:
            return refusal
        body = (await payload_of(request)).json
        if not isinstance(body, dict) or not body.get("id"):
            return json_response({"detail": "JSON with id required"}, 422)
        entry_id = body["id"]
        matching = [page for page in pages.values() if page["entry_id"] == entry_id]
        if not matching:
            return json_response({"status": "not_found", "entry_id": entry_id})
        answer: dict[str, Any] = {}
        for page in matching:  # one entry id, however many posts were made for it
            if "withdrawal" in page:
                answer = answer or {**_summary(page), "status": "already_withdrawn"}
                continue
            page["withdrawal"] = {
                "notice": body.get("notice") or "Zurückgezogen",
                "reason": body.get("reason") or "",
                "withdrawn_at": body.get("withdrawn_at") or datetime.now(UTC).isoformat(),
                "idempotency_key": request.headers.get("idempotency-key")}
            recorder.delete_post(NETWORK, _numbered(str(page["id"])))
            answer = {**_summary(page), "status": "withdrawn"}
        return json_response(answer)

    async def feed(request: Request) -> Response:
        shown = [_summary(page) for page in pages.values() if "withdrawal" not in page]
        return json_response({"entries": sorted(shown, key=lambda e: e["id"], reverse=True)})

    async def page(request: Request) -> Response:
        found = pages.get(int(request.path_params["number"]))
        if found is None:
            return json_response({"detail": "Not found"}, 404)
        return json_response({**_summary(found), "text": found["text"]})

    return Starlette(routes=[Route("/posts", create, methods=["POST"]),
                             Route("/posts/withdraw", withdraw, methods=["POST"]),
                             Route("/posts/{number:int}", page, methods=["GET"]),
                             Route("/feed", feed, methods=["GET"])])


def _numbered(number: str) -> Callable[[dict[str, Any]], bool]:
    """Matches the recorded post of the CMS page ``number``."""
    return lambda post: post.get("id") == number


def _summary(page: dict[str, Any]) -> dict[str, Any]:
    """An entry as the feed and its page show it; a withdrawn one with its notice."""
    summary = {"id": page["id"], "entry_id": page["entry_id"], "url": page["url"],
               "title": page.get("title"), "published": page.get("published"),
               "status": "withdrawn" if "withdrawal" in page else "published"}
    withdrawal = page.get("withdrawal")
    if withdrawal:
        summary.update(notice=withdrawal["notice"], reason=withdrawal["reason"],
                       withdrawn_at=withdrawal["withdrawn_at"])
    return summary
