"""Mastodon stand-in: instance info, media uploads (with 202 processing), statuses with
``Idempotency-Key``. Every answer carries Mastodon's ``X-RateLimit-*`` headers."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

import regex
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsroom.standins._http import bearer, json_response, payload_of
from newsroom.standins.config import StandinConfig
from newsroom.standins.recorder import FaultRule, Recorder

NETWORK = "mastodon"
_URL = re.compile(r"https?://\S+")
_ACCOUNT = {"id": "109000000000000001", "username": "darmstadt", "acct": "darmstadt",
            "display_name": "Wissenschaftsstadt Darmstadt", "locked": False, "bot": False}


def _rate_headers(reset_in: float = 300.0) -> dict[str, str]:
    reset = datetime.now(UTC) + timedelta(seconds=reset_in)
    return {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "299",
            "X-RateLimit-Reset": reset.isoformat(timespec="microseconds").replace("+00:00", "Z")}


def _json(data: Any, status: int = 200) -> Response:
    return json_response(data, status, _rate_headers())


def _error(message: str, status: int) -> Response:
    return _json({"error": message}, status)


def fault_response(rule: FaultRule) -> Response:
    if rule.kind == "429":
        headers = _rate_headers(rule.retry_after)
        headers["X-RateLimit-Remaining"] = "0"
        return json_response({"error": "Too many requests"}, 429, headers)
    if rule.kind == "401":
        return _error("The access token is invalid", 401)
    return _error("We're sorry, but something went wrong on our end.", 500)


def build(recorder: Recorder, config: StandinConfig) -> Starlette:
    ids = itertools.count(113_500_000_000_000_001)
    statuses: dict[str, dict[str, Any]] = {}
    idempotency: dict[tuple[str, str], str] = {}
    media: dict[str, dict[str, Any]] = {}

    def reset() -> None:
        statuses.clear()
        idempotency.clear()
        media.clear()

    recorder.on_reset(reset)

    def authorized(request: Request) -> str | None:
        token = bearer(request)
        return token if token in config.mastodon_tokens else None

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/") + "/mastodon"

    async def instance(request: Request) -> Response:
        return _json({
            "domain": request.url.hostname, "title": "Mastodon stand-in", "version": "4.3.2",
            "source_url": "https://github.com/mastodon/mastodon",
            "languages": ["de", "en"],
            "configuration": {
                "urls": {"streaming": None},
                "statuses": {"max_characters": config.mastodon_max_characters,
                             "max_media_attachments": 4, "characters_reserved_per_url": 23},
                "media_attachments": {
                    "supported_mime_types": ["image/jpeg", "image/png", "image/gif",
                                             "image/webp"],
                    "image_size_limit": 16_777_216, "description_limit": 1500},
            },
        })

    async def verify_credentials(request: Request) -> Response:
        if not authorized(request):
            return _error("The access token is invalid", 401)
        return _json(_ACCOUNT)

    def attachment(item: dict[str, Any], request: Request) -> dict[str, Any]:
        ready = item["polls_left"] <= 0
        url = f"{base(request)}/system/media/{item['id']}.png" if ready else None
        return {"id": item["id"], "type": "image", "url": url, "preview_url": url,
                "description": item["description"], "blurhash": None,
                "meta": {"original": {"size": item["size"]}}}

    async def upload_media(request: Request) -> Response:
        if not authorized(request):
            return _error("The access token is invalid", 401)
        payload = await payload_of(request)
        upload = payload.files.get("file")
        if upload is None:
            return _error("Validation failed: File can't be blank", 422)
        if not upload.content_type.startswith("image/"):
            return _error("Validation failed: File content type is invalid", 422)
        description = payload.get("description") or ""
        if len(description) > 1500:
            return _error("Validation failed: Description is too long (maximum is 1500 "
                          "characters)", 422)
        media_id = str(next(ids))
        slow = len(upload.data) > config.mastodon_sync_media_bytes
        item = {"id": media_id, "description": description, "size": len(upload.data),
                "content_type": upload.content_type, "filename": upload.filename,
                "polls_left": config.mastodon_media_polls if slow else 0}
        media[media_id] = item
        return _json(attachment(item, request), 202 if slow else 200)

    async def get_media(request: Request) -> Response:
        if not authorized(request):
            return _error("The access token is invalid", 401)
        item = media.get(request.path_params["media_id"])
        if item is None:
            return _error("Record not found", 404)
        item["polls_left"] -= 1
        return _json(attachment(item, request), 200 if item["polls_left"] <= 0 else 206)

    async def create_status(request: Request) -> Response:
        token = authorized(request)
        if not token:
            return _error("The access token is invalid", 401)
        key = request.headers.get("idempotency-key")
        if key and (token, key) in idempotency:
            return _json(statuses[idempotency[(token, key)]])
        payload = await payload_of(request)
        text = payload.get("status") or ""
        media_ids = [str(m) for m in payload.getlist("media_ids[]")]
        if not text.strip() and not media_ids:
            return _error("Validation failed: Text can't be blank", 422)
        # Mastodon counts graphemes (StatusLengthValidator: each_grapheme_cluster)
        length = len(regex.findall(r"\X", _URL.sub("x" * 23, text)))
        if length > config.mastodon_max_characters:
            return _error(f"Validation failed: Text character limit of "
                          f"{config.mastodon_max_characters} exceeded", 422)
        if len(media_ids) > 4:
            return _error("Validation failed: Media attachments limit exceeded", 422)
        attachments = []
        for media_id in media_ids:
            item = media.get(media_id)
            if item is None:
                return _error("Validation failed: Media attachments are invalid", 422)
            if item["polls_left"] > 0:
                return _error("Cannot attach files that have not finished processing. "
                              "Try again in a moment!", 422)
            attachments.append(attachment(item, request))
        status_id = str(next(ids))
        url = f"{base(request)}/@darmstadt/{status_id}"
        status = {
            "id": status_id, "created_at": datetime.now(UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "uri": f"{base(request)}/users/darmstadt/statuses/{status_id}", "url": url,
            "visibility": payload.get("visibility") or "public",
            "language": payload.get("language"),
            "content": "<p>" + escape(text).replace("\n", "<br>") + "</p>",
            "media_attachments": attachments, "account": _ACCOUNT,
        }
        statuses[status_id] = status
        if key:
            idempotency[(token, key)] = status_id
        recorder.add_post(NETWORK, id=status_id, url=url, text=text,
                          language=status["language"], visibility=status["visibility"],
                          media=[{"id": a["id"], "alt": a["description"]} for a in attachments],
                          idempotency_key=key)
        return _json(status)

    async def get_status(request: Request) -> Response:
        status = statuses.get(request.path_params["status_id"])
        return _json(status) if status else _error("Record not found", 404)

    return Starlette(routes=[
        Route("/api/v2/instance", instance),
        Route("/api/v1/accounts/verify_credentials", verify_credentials),
        Route("/api/v2/media", upload_media, methods=["POST"]),
        Route("/api/v1/media/{media_id}", get_media),
        Route("/api/v1/statuses", create_status, methods=["POST"]),
        Route("/api/v1/statuses/{status_id}", get_status),
    ])
