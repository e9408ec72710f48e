"""CMS webhook stand-in: ``POST /posts`` with JSON, a Bearer token and an ``Idempotency-Key``
(a repeated key answers the first result and makes nothing new). A 429 says when to
come back with an HTTP-date ``Retry-After``."""

from __future__ import annotations

import itertools
import re
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

    def reset() -> None:
        nonlocal seq
        seq = itertools.count(1)
        by_key.clear()

    recorder.on_reset(reset)

    async def create(request: Request) -> Response:
        if config.cms_tokens and bearer(request) not in config.cms_tokens:
            return json_response({"detail": "Invalid token"}, 401)
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
        recorder.add_post(NETWORK, id=str(number), url=result["url"], entry_id=body["id"],
                          title=body.get("title"), text=body["text"], link=body.get("link"),
                          idempotency_key=key, media=body.get("media", []))
        return json_response(result, 201)

    return Starlette(routes=[Route("/posts", create, methods=["POST"])])
