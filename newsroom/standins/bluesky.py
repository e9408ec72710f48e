"""Bluesky PDS stand-in: sessions, blobs and ``app.bsky.feed.post`` records over XRPC.

Sessions are JWT-shaped, with the reference PDS's claims (``scope``: an app password's
``com.atproto.appPass``), and carry the account's hosting status (``active``, ``status``);
an account that is not active may not write (``AccountDeactivated``).

Like the reference PDS it answers a ``createRecord`` for an existing record key with a
500 ``InternalServerError`` (bluesky-social/indigo#873), insists on TID record keys for
posts, and sends ``RateLimit-*`` headers on every answer.

``deleteRecord`` answers as the reference PDS (packages/pds/src/api/com/atproto/repo/
deleteRecord.ts): ``{"commit": {cid, rev}}`` when it deleted the record, and a no-op 200
``{}`` (no commit) when there was no such record; a ``repo`` that is not the session's
account 401 ``AuthenticationRequired``, an unknown one 403 ``AccountNotFound``, a
deactivated account 401 ``AccountDeactivated``. ``getRecord`` then answers 400
``RecordNotFound``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import secrets
import time
from typing import Any

import regex
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsroom.standins._http import bearer, json_response, payload_of
from newsroom.standins.config import StandinConfig
from newsroom.standins.recorder import FaultRule, Recorder

NETWORK = "bluesky"
_TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


def _rate_headers(reset_in: float = 300.0) -> dict[str, str]:
    return {"RateLimit-Limit": "5000", "RateLimit-Remaining": "4999",
            "RateLimit-Reset": str(math.ceil(time.time() + reset_in)),
            "RateLimit-Policy": "5000;w=3600"}


def _json(data: Any, status: int = 200) -> Response:
    return json_response(data, status, _rate_headers())


def _error(error: str, message: str, status: int = 400) -> Response:
    return _json({"error": error, "message": message}, status)


def fault_response(rule: FaultRule) -> Response:
    if rule.kind == "429":
        headers = _rate_headers(rule.retry_after)
        headers["RateLimit-Remaining"] = "0"
        return json_response({"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                             429, headers)
    if rule.kind == "401":
        return _error("AuthenticationRequired", "Invalid identifier or password", 401)
    if rule.kind == "expired_token":
        return _error("ExpiredToken", "Token has expired", 400)
    return _error("InternalServerError", "Internal Server Error", 500)


# The scope an app password's session gets from the reference PDS (packages/pds
# auth-scope.ts: com.atproto.appPass; the account's own password gets com.atproto.access).
APP_PASSWORD_SCOPE = "com.atproto.appPass"
SERVICE_DID = "did:web:pds.standin.test"


def _jwt(claims: dict[str, Any]) -> str:
    """A token shaped as the PDS's session JWTs (header.claims.signature, base64url); the
    stand-in keeps its sessions by the whole string and never verifies the signature."""
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")
    return ".".join((part(b'{"typ":"at+jwt","alg":"HS256"}'),
                     part(json.dumps(claims, separators=(",", ":")).encode()),
                     part(secrets.token_bytes(32))))


def _cid(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "bafyrei" + base64.b32encode(digest).decode().lower().rstrip("=")[:52]


def _did(handle: str) -> str:
    return "did:plc:" + base64.b32encode(hashlib.sha256(handle.encode()).digest()
                                          ).decode().lower()[:24]


def _tid_now() -> str:
    value = (int(time.time() * 1_000_000) << 10) | secrets.randbelow(1024)
    return "".join(_TID_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(13)))


def build(recorder: Recorder, config: StandinConfig) -> Starlette:
    sessions: dict[str, tuple[str, float]] = {}  # access token -> (did, expires)
    refresh_tokens: dict[str, str] = {}  # refresh token -> did
    blobs: dict[str, dict[str, Any]] = {}
    records: dict[tuple[str, str, str], dict[str, Any]] = {}
    handles = {_did(h): h for h in config.bluesky_accounts}

    def reset() -> None:
        sessions.clear()
        refresh_tokens.clear()
        blobs.clear()
        records.clear()

    recorder.on_reset(reset)

    def new_session(did: str) -> dict[str, Any]:
        now = time.time()
        access = _jwt({"scope": APP_PASSWORD_SCOPE, "sub": did, "aud": SERVICE_DID,
                       "iat": int(now), "exp": int(now + config.bluesky_access_ttl)})
        refresh = _jwt({"scope": "com.atproto.refresh", "sub": did, "aud": SERVICE_DID,
                        "jti": secrets.token_urlsafe(24), "iat": int(now),
                        "exp": int(now + 90 * 86_400)})
        sessions[access] = (did, now + config.bluesky_access_ttl)
        refresh_tokens[refresh] = did
        return {"did": did, "handle": handles[did], "accessJwt": access, "refreshJwt": refresh,
                **hosting(did)}

    def hosting(did: str) -> dict[str, Any]:
        """``active`` and, if not active, ``status``, as createSession and getSession
        answer them."""
        status = config.bluesky_account_status.get(handles[did], "active")
        return {"active": True} if status == "active" else {"active": False, "status": status}

    def deactivated(did: str) -> Response | None:
        """The reference PDS refuses writes of an account that is not active."""
        if hosting(did)["active"]:
            return None
        return _error("AccountDeactivated", "Account is deactivated")

    def session_did(request: Request) -> str | Response:
        token = bearer(request)
        if not token:
            return _error("AuthenticationRequired", "Authentication Required", 401)
        found = sessions.get(token)
        if found is None:
            return _error("InvalidToken", "Token could not be verified")
        did, expires = found
        if time.time() > expires:
            return _error("ExpiredToken", "Token has expired")
        return did

    async def create_session(request: Request) -> Response:
        payload = await payload_of(request)
        identifier, password = payload.get("identifier"), payload.get("password")
        handle = handles.get(identifier, identifier)
        if config.bluesky_accounts.get(handle) != password or not password:
            return _error("AuthenticationRequired", "Invalid identifier or password", 401)
        return _json(new_session(_did(handle)))

    async def refresh_session(request: Request) -> Response:
        did = refresh_tokens.pop(bearer(request) or "", None)
        if did is None:
            return _error("ExpiredToken", "Token has been revoked")
        return _json(new_session(did))

    async def get_session(request: Request) -> Response:
        did = session_did(request)
        if isinstance(did, Response):
            return did
        return _json({"did": did, "handle": handles[did], **hosting(did)})

    async def upload_blob(request: Request) -> Response:
        did = session_did(request)
        if isinstance(did, Response):
            return did
        if (problem := deactivated(did)) is not None:
            return problem
        data = await request.body()
        if len(data) > 1_000_000:
            return _error("BlobTooLarge", f"This file is too large. It is {len(data)} bytes but "
                          "the maximum size is 1000000 bytes.")
        mime = request.headers.get("content-type", "application/octet-stream")
        cid = _cid(data)
        blobs[cid] = {"size": len(data), "mimeType": mime}
        return _json({"blob": {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime,
                               "size": len(data)}})

    def invalid_post(record: Any) -> str | None:
        if not isinstance(record, dict):
            return "Record must be an object"
        if record.get("$type") != "app.bsky.feed.post":
            return "Invalid $type: must be app.bsky.feed.post"
        text = record.get("text")
        if not isinstance(text, str):
            return 'Record must have the property "text"'
        if len(regex.findall(r"\X", text)) > 300:
            return "Record/text must not be longer than 300 graphemes"
        if len(text.encode("utf-8")) > 3000:
            return "Record/text must not be longer than 3000 characters"
        if not isinstance(record.get("createdAt"), str):
            return 'Record must have the property "createdAt"'
        size = len(text.encode("utf-8"))
        for n, facet in enumerate(record.get("facets") or []):
            index = facet.get("index") or {}
            start, end = index.get("byteStart"), index.get("byteEnd")
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= size):
                return f"Record/facets/{n}/index is out of range"
        embed = record.get("embed")
        if embed is not None:
            if embed.get("$type") != "app.bsky.embed.images":
                return "Record/embed has an unsupported $type"
            images = embed.get("images") or []
            if len(images) > 4:
                return "Record/embed/images must not have more than 4 elements"
            for n, image in enumerate(images):
                if not isinstance(image.get("alt"), str):
                    return f'Record/embed/images/{n} must have the property "alt"'
                ref = ((image.get("image") or {}).get("ref") or {}).get("$link")
                if ref not in blobs:
                    return f"Could not find blob: {ref}"
        return None

    async def create_record(request: Request) -> Response:
        did = session_did(request)
        if isinstance(did, Response):
            return did
        if (problem := deactivated(did)) is not None:
            return problem
        body = (await payload_of(request)).json or {}
        if body.get("repo") not in (did, handles[did]):
            return _error("InvalidRequest", "Input/repo must be the authenticated account")
        collection = body.get("collection")
        if collection != "app.bsky.feed.post":
            return _error("InvalidRequest", f"Unsupported collection: {collection}")
        rkey = body.get("rkey") or _tid_now()
        if not _TID.match(rkey):
            return _error("InvalidRequest", f"Invalid TID: {rkey}")
        invalid = invalid_post(body.get("record"))
        if invalid:
            return _error("InvalidRequest", f"Invalid app.bsky.feed.post record: {invalid}")
        if (did, collection, rkey) in records:
            # What the reference PDS does for an existing key: an unhandled error.
            return _error("InternalServerError", "Internal Server Error", 500)
        record = body["record"]
        uri = f"at://{did}/{collection}/{rkey}"
        cid = _cid(json.dumps(record, sort_keys=True).encode())
        records[(did, collection, rkey)] = {"uri": uri, "cid": cid, "value": record}
        text_bytes = record["text"].encode("utf-8")
        recorder.add_post(
            NETWORK, id=uri, rkey=rkey, url=f"https://bsky.app/profile/{handles[did]}/post/{rkey}",
            text=record["text"], langs=record.get("langs"), facets=record.get("facets", []),
            facet_texts=[text_bytes[f["index"]["byteStart"]:f["index"]["byteEnd"]]
                         .decode("utf-8", "replace") for f in record.get("facets", [])],
            media=[{"alt": i["alt"], "aspectRatio": i.get("aspectRatio")}
                   for i in (record.get("embed") or {}).get("images", [])],
        )
        return _json({"uri": uri, "cid": cid,
                      "commit": {"cid": _cid(uri.encode()), "rev": _tid_now()},
                      "validationStatus": "valid"})

    async def get_record(request: Request) -> Response:
        # Public, as the reference PDS's getRecord (no auth verifier): anyone may read.
        params = request.query_params
        repo = params.get("repo", "")
        repo_did = repo if repo.startswith("did:") else _did(repo)
        key = (repo_did, params.get("collection", ""), params.get("rkey", ""))
        found = records.get(key)
        if found is None:
            return _error("RecordNotFound", f"Could not locate record: at://{'/'.join(key)}")
        return _json(found)

    async def delete_record(request: Request) -> Response:
        did = session_did(request)
        if isinstance(did, Response):
            return did
        body = (await payload_of(request)).json or {}
        if not isinstance(body, dict):
            return _error("InvalidRequest", "Input must be an object")
        for name in ("repo", "collection", "rkey"):
            if not isinstance(body.get(name), str) or not body[name]:
                return _error("InvalidRequest", f'Input must have the property "{name}"')
        repo = body["repo"]
        repo_did = repo if repo.startswith("did:") else _did(repo)
        if repo_did not in handles:  # authVerifier.findAccount
            return _error("AccountNotFound", "Account not found", 403)
        if not hosting(repo_did)["active"]:
            return _error("AccountDeactivated", "Account is deactivated", 401)
        if repo_did != did:
            return _error("AuthenticationRequired", "Authentication Required", 401)
        collection, rkey = body["collection"], body["rkey"]
        found = records.pop((did, collection, rkey), None)
        if found is None:
            return _json({})  # "No-op if record already doesn't exist": no commit
        recorder.delete_post(NETWORK, lambda post: post.get("id") == found["uri"])
        return _json({"commit": {"cid": _cid(f"delete {found['uri']}".encode()),
                                 "rev": _tid_now()}})

    return Starlette(routes=[
        Route("/xrpc/com.atproto.server.createSession", create_session, methods=["POST"]),
        Route("/xrpc/com.atproto.server.refreshSession", refresh_session, methods=["POST"]),
        Route("/xrpc/com.atproto.server.getSession", get_session),
        Route("/xrpc/com.atproto.repo.uploadBlob", upload_blob, methods=["POST"]),
        Route("/xrpc/com.atproto.repo.createRecord", create_record, methods=["POST"]),
        Route("/xrpc/com.atproto.repo.getRecord", get_record),
        Route("/xrpc/com.atproto.repo.deleteRecord", delete_record, methods=["POST"]),
    ])
