"""Mastodon stand-in: instance info, media uploads (with 202 processing), statuses with
``Idempotency-Key``. Every answer carries Mastodon's ``X-RateLimit-*`` headers.

Servers that speak Mastodon's API without being Mastodon are *profiles*, chosen per
account by the base URL: ``/mastodon/~QUIRK+QUIRK/…`` (e.g.
``/mastodon/~no-v2-instance+ignores-idempotency``). Each server (plain or with quirks)
keeps its own statuses, and its posts are recorded under its label
(``mastodon~no-v2-instance+ignores-idempotency``). The quirks, as real servers showed them:

- ``no-v2-instance``: ``/api/v2/instance`` answers 404 (Mastodon before 4.0, several
  others); ``/api/v1/instance`` has ``configuration.statuses``.
- ``no-instance``: neither v1 nor v2 nor nodeinfo answers (404).
- ``ignores-idempotency``: a repeated ``Idempotency-Key`` makes another status; the server
  calls itself GoToSocial (version "0.19.1 git-8f2a1c3", nodeinfo ``gotosocial``).
- ``closes-connections``: the server closes each connection after its answer without
  saying so (no ``Connection: close``); done by the app (:mod:`newsroom.standins.app`).
- ``token-422``: a refused token answers 422 "This method requires an authenticated
  user" instead of 401.

Tokens have scopes (:attr:`StandinConfig.mastodon_token_scopes`), enforced as Mastodon's
``doorkeeper_authorize!`` does: 403 "This action is outside the authorized scopes". ``GET
/api/v1/apps/verify_credentials`` answers as the server the profile plays: Mastodon 4.3
with the application's ``scopes``; Mastodon 3.5 (``no-v2-instance``) without them, and 403
to a token without ``read``; GoToSocial (``ignores-idempotency``) 404, it has no such route.

``DELETE /api/v1/statuses/:id`` answers as Mastodon's ``StatusesController#destroy``: the
deleted status with its source ``text``; 404 "Record not found" for a status that is not
there or not the token's account's (GoToSocial: 404 "Not Found", and 403 "Forbidden" for
another account's). Deletes are throttled as Mastodon's ``throttle_api_delete`` does, 30
per 30 minutes and account, counted before the controller (a 404 counts too); a 429 says
``X-RateLimit-Reset``, the end of the window. GoToSocial has no such throttle.
"""

from __future__ import annotations

import itertools
import re
import time
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

import regex
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope

from newsroom.standins._http import bearer, json_response, payload_of
from newsroom.standins.config import StandinConfig
from newsroom.standins.recorder import FaultRule, Recorder

NETWORK = "mastodon"
_URL = re.compile(r"https?://\S+")
_ACCOUNT = {"id": "109000000000000001", "username": "darmstadt", "acct": "darmstadt",
            "display_name": "Wissenschaftsstadt Darmstadt", "locked": False, "bot": False}
# Mastodon's default scopes of a new application under Preferences → Development.
DEFAULT_SCOPES = "read write follow push"
_OUTSIDE_SCOPES = "This action is outside the authorized scopes"
# Mastodon's config/initializers/rack_attack.rb: throttle('throttle_api_delete', limit: 30,
# period: 30.minutes), per authenticated user, on DELETE /api/v1/statuses/:id (and POST
# …/unreblog). Rack::Attack counts in windows aligned to the epoch.
DELETE_LIMIT = 30
DELETE_PERIOD = 30 * 60


def _rate_headers(reset_in: float = 300.0) -> dict[str, str]:
    reset = datetime.now(UTC) + timedelta(seconds=reset_in)
    return {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "299",
            "X-RateLimit-Reset": reset.isoformat(timespec="microseconds").replace("+00:00", "Z")}


def _json(data: Any, status: int = 200) -> Response:
    return json_response(data, status, _rate_headers())


def _error(message: str, status: int) -> Response:
    return _json({"error": message}, status)


QUIRKS = frozenset({"no-v2-instance", "no-instance", "ignores-idempotency",
                    "closes-connections", "token-422"})
_PROFILE = re.compile(r"^/mastodon/~([a-z0-9+-]+)(/.*)?$")
GOTOSOCIAL_VERSION = "0.19.1 git-8f2a1c3"


def select_profile(scope: Scope) -> frozenset[str]:
    """Take a ``/mastodon/~QUIRK+QUIRK`` prefix off the request path into the scope
    (``standin.quirks``, ``standin.server``); the quirks (empty: plain Mastodon)."""
    match = _PROFILE.match(scope.get("path", ""))
    if match is None:
        scope["standin.quirks"], scope["standin.server"] = frozenset(), NETWORK
        return frozenset()
    quirks = frozenset(match[1].split("+"))
    unknown = quirks - QUIRKS
    if unknown:
        raise ValueError(f"unknown Mastodon stand-in quirk(s) {sorted(unknown)}; "
                         f"known: {sorted(QUIRKS)}")
    rest = match[2] or "/"
    scope["path"] = "/mastodon" + rest
    scope["raw_path"] = scope["path"].encode("utf-8")
    scope["standin.quirks"], scope["standin.server"] = quirks, f"{NETWORK}~{match[1]}"
    return quirks


def _unauthorized(quirks: frozenset[str]) -> Response:
    if "token-422" in quirks:
        return _error("This method requires an authenticated user", 422)
    return _error("The access token is invalid", 401)


def fault_response(rule: FaultRule, quirks: frozenset[str] = frozenset()) -> Response:
    if rule.kind == "429":
        headers = _rate_headers(rule.retry_after)
        headers["X-RateLimit-Remaining"] = "0"
        return json_response({"error": "Too many requests"}, 429, headers)
    if rule.kind == "401":
        return _unauthorized(quirks)
    return _error("We're sorry, but something went wrong on our end.", 500)


def build(recorder: Recorder, config: StandinConfig) -> Starlette:
    ids = itertools.count(113_500_000_000_000_001)
    statuses: dict[str, dict[str, Any]] = {}
    idempotency: dict[tuple[str, str, str], str] = {}  # (server, token, key) → status id
    media: dict[str, dict[str, Any]] = {}
    deletes: dict[tuple[str, str, int], int] = {}  # (server, account id, window) → count

    def reset() -> None:
        statuses.clear()
        idempotency.clear()
        media.clear()
        deletes.clear()

    recorder.on_reset(reset)

    def authorized(request: Request) -> str | None:
        token = bearer(request)
        return token if token in config.mastodon_tokens else None

    def scopes(token: str) -> list[str]:
        return config.mastodon_token_scopes.get(token, DEFAULT_SCOPES).split()

    def lacks(token: str, *accepted: str) -> Response | None:
        """403 unless the token has one of ``accepted`` (a top-level scope grants its
        sub-scopes: Doorkeeper's ``write`` covers ``write:statuses``)."""
        granted = scopes(token)
        if any(s in granted or s.split(":")[0] in granted for s in accepted):
            return None
        return _error(_OUTSIDE_SCOPES, 403)

    def account_of(token: str) -> dict[str, Any]:
        username = config.mastodon_token_accounts.get(token)
        if username is None:
            return _ACCOUNT
        number = 109000000000000001 + 1 + sorted(config.mastodon_token_accounts).index(token)
        return {**_ACCOUNT, "id": str(number), "username": username, "acct": username,
                "display_name": username.capitalize()}

    def quirks(request: Request) -> frozenset[str]:
        return request.scope.get("standin.quirks", frozenset())

    def server(request: Request) -> str:
        return request.scope.get("standin.server", NETWORK)

    def refused(request: Request) -> Response:
        return _unauthorized(quirks(request))

    def base(request: Request) -> str:
        label = server(request)
        prefix = "/mastodon" + (f"/~{label.split('~', 1)[1]}" if "~" in label else "")
        return str(request.base_url).rstrip("/") + prefix

    def software(request: Request) -> tuple[str, str]:
        if "ignores-idempotency" in quirks(request):
            return "gotosocial", GOTOSOCIAL_VERSION
        return "mastodon", "3.5.3" if "no-v2-instance" in quirks(request) else "4.3.2"

    def statuses_configuration() -> dict[str, Any]:
        return {"max_characters": config.mastodon_max_characters,
                "max_media_attachments": 4, "characters_reserved_per_url": 23}

    async def instance(request: Request) -> Response:
        if quirks(request) & {"no-v2-instance", "no-instance"}:
            return _error("Record not found", 404)  # Rails' 404 for an unknown route
        name, version = software(request)
        return _json({
            "domain": request.url.hostname, "title": "Mastodon stand-in", "version": version,
            "source_url": "https://github.com/mastodon/mastodon",
            "languages": ["de", "en"],
            "configuration": {
                "urls": {"streaming": None},
                "statuses": statuses_configuration(),
                "media_attachments": {
                    "supported_mime_types": ["image/jpeg", "image/png", "image/gif",
                                             "image/webp"],
                    "image_size_limit": 16_777_216, "description_limit": 1500},
            },
        })

    async def instance_v1(request: Request) -> Response:
        if "no-instance" in quirks(request):
            return _error("Record not found", 404)
        name, version = software(request)
        body: dict[str, Any] = {
            "uri": request.url.hostname, "title": "Mastodon stand-in", "version": version,
            "languages": ["de", "en"],
            "configuration": {"statuses": statuses_configuration()},
        }
        if name != "mastodon":  # GoToSocial (and Pleroma) also send the old field
            body["max_toot_chars"] = config.mastodon_max_characters
        return _json(body)

    async def nodeinfo_links(request: Request) -> Response:
        if "no-instance" in quirks(request):
            return _error("Record not found", 404)
        return _json({"links": [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
                                 "href": f"{base(request)}/nodeinfo/2.0"}]})

    async def nodeinfo(request: Request) -> Response:
        if "no-instance" in quirks(request):
            return _error("Record not found", 404)
        name, version = software(request)
        return _json({"version": "2.0", "software": {"name": name, "version": version},
                      "protocols": ["activitypub"], "openRegistrations": False,
                      "usage": {"users": {"total": 1}, "localPosts": len(statuses)},
                      "metadata": {}})

    async def verify_credentials(request: Request) -> Response:
        token = authorized(request)
        if not token:
            return refused(request)
        if (problem := lacks(token, "read:accounts", "profile")) is not None:
            return problem
        account = account_of(token)
        return _json({**account, "url": f"{base(request)}/@{account['acct']}"})

    async def app_credentials(request: Request) -> Response:
        if "ignores-idempotency" in quirks(request):  # GoToSocial has no such route
            return _error("Not Found", 404)  # its NoRoute handler: {"error": "Not Found"}
        token = authorized(request)
        if not token:
            return refused(request)
        app = {"name": "Newsroom", "website": None,
               "vapid_key": "BCk-QqERU0q-CfYZjcuB6lnyyOYfJ2AifKqfeGIm7Z-HiTU5T9eTG5GxVA0_OH5m"}
        if "no-v2-instance" in quirks(request):  # Mastodon 3.5: doorkeeper_authorize! :read
            return lacks(token, "read") or _json(app)
        # Mastodon 4.3: any valid token; the application's scopes as an array.
        return _json({**app, "client_id": "standin-client-id", "scopes": scopes(token)})

    async def account_statuses(request: Request) -> Response:
        token = authorized(request)
        if not token:
            return refused(request)
        if (problem := lacks(token, "read:statuses")) is not None:
            return problem
        if request.path_params["account_id"] != _ACCOUNT["id"]:
            return _error("Record not found", 404)
        try:
            limit = min(max(int(request.query_params.get("limit", 20)), 1), 40)
        except ValueError:
            limit = 20
        own = [s for s in statuses.values() if s["_server"] == server(request)]
        own.sort(key=lambda s: int(s["id"]), reverse=True)  # newest first
        return _json([{k: v for k, v in s.items() if not k.startswith("_")}
                      for s in own[:limit]])

    def attachment(item: dict[str, Any], request: Request) -> dict[str, Any]:
        ready = item["polls_left"] <= 0
        url = f"{base(request)}/system/media/{item['id']}.png" if ready else None
        return {"id": item["id"], "type": "image", "url": url, "preview_url": url,
                "description": item["description"], "blurhash": None,
                "meta": {"original": {"size": item["size"]}}}

    async def upload_media(request: Request) -> Response:
        token = authorized(request)
        if not token:
            return refused(request)
        if (problem := lacks(token, "write:media")) is not None:
            return problem
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
            return refused(request)
        item = media.get(request.path_params["media_id"])
        if item is None:
            return _error("Record not found", 404)
        item["polls_left"] -= 1
        return _json(attachment(item, request), 200 if item["polls_left"] <= 0 else 206)

    async def create_status(request: Request) -> Response:
        token = authorized(request)
        if not token:
            return refused(request)
        if (problem := lacks(token, "write:statuses")) is not None:
            return problem
        key = request.headers.get("idempotency-key")
        if "ignores-idempotency" in quirks(request):
            key = None  # the header is allowed (CORS) and otherwise ignored
        if key and (server(request), token, key) in idempotency:
            earlier = statuses.get(idempotency[(server(request), token, key)])
            if earlier is None:  # deleted since: PostStatusService's statuses.find fails
                return _error("Record not found", 404)
            return _json(public(earlier))
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
            "media_attachments": attachments, "account": account_of(token),
            "_server": server(request), "_text": text,
            "_account_id": account_of(token)["id"],
        }
        statuses[status_id] = status
        if key:
            idempotency[(server(request), token, key)] = status_id
        recorder.add_post(server(request), id=status_id, url=url, text=text,
                          language=status["language"], visibility=status["visibility"],
                          media=[{"id": a["id"], "alt": a["description"]} for a in attachments],
                          idempotency_key=key)
        return _json(public(status))

    def public(status: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in status.items() if not k.startswith("_")}

    async def get_status(request: Request) -> Response:
        status = statuses.get(request.path_params["status_id"])
        return _json(public(status)) if status else _error("Record not found", 404)

    def delete_throttled(request: Request, token: str) -> Response | None:
        """Mastodon's throttle_api_delete: the 31st delete of an account within one
        30-minute window answers 429, as Rack::Attack's throttled_responder does."""
        if "ignores-idempotency" in quirks(request):  # GoToSocial: no such throttle
            return None
        now = time.time()
        window = int(now // DELETE_PERIOD)
        counter = (server(request), account_of(token)["id"], window)
        deletes[counter] = deletes.get(counter, 0) + 1
        if deletes[counter] <= DELETE_LIMIT:
            return None
        reset_at = datetime.fromtimestamp((window + 1) * DELETE_PERIOD, UTC)
        return json_response({"error": "Too many requests"}, 429, {
            "X-RateLimit-Limit": str(DELETE_LIMIT), "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset_at.isoformat(timespec="microseconds")
            .replace("+00:00", "Z")})

    async def delete_status(request: Request) -> Response:
        token = authorized(request)
        if token and (limited := delete_throttled(request, token)) is not None:
            return limited  # Rack::Attack answers before the controller runs
        if not token:
            return refused(request)
        if (problem := lacks(token, "write:statuses")) is not None:
            return problem
        gotosocial = "ignores-idempotency" in quirks(request)
        status_id = request.path_params["status_id"]
        status = statuses.get(status_id)
        if status is None or status["_server"] != server(request):
            return _error("Not Found" if gotosocial else "Record not found", 404)
        if status["_account_id"] != account_of(token)["id"]:
            # Mastodon looks only among the token's account's statuses; GoToSocial finds
            # the status and refuses: "status doesn't belong to requesting account".
            return _error("Forbidden", 403) if gotosocial else _error("Record not found", 404)
        del statuses[status_id]
        recorder.delete_post(server(request), lambda post: post.get("id") == status_id)
        return _json({**public(status), "text": status["_text"]})

    return Starlette(routes=[
        Route("/api/v2/instance", instance),
        Route("/api/v1/instance", instance_v1),
        Route("/.well-known/nodeinfo", nodeinfo_links),
        Route("/nodeinfo/2.0", nodeinfo),
        Route("/api/v1/accounts/verify_credentials", verify_credentials),
        Route("/api/v1/apps/verify_credentials", app_credentials),
        Route("/api/v1/accounts/{account_id}/statuses", account_statuses),
        Route("/api/v2/media", upload_media, methods=["POST"]),
        Route("/api/v1/media/{media_id}", get_media),
        Route("/api/v1/statuses", create_status, methods=["POST"]),
        Route("/api/v1/statuses/{status_id}", get_status),
        Route("/api/v1/statuses/{status_id}", delete_status, methods=["DELETE"]),
    ])
