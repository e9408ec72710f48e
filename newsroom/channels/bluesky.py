"""Bluesky: posts as ``app.bsky.feed.post`` records via the PDS's XRPC API.

- One session per publisher (``createSession`` is limited to 30 per 5 minutes), shared
  by concurrent publishes and refreshed with ``refreshSession`` on ``ExpiredToken``.
- Links and hashtags become facets with UTF-8 *byte* offsets (:func:`build_facets`).
- The record key is a TID derived from the idempotency key and the slot time
  (:func:`record_key`), so a repeated publish addresses the same record: the PDS refuses
  the second create (the reference PDS with a 500, others with 400/409), and the
  publisher then finds the existing record with ``getRecord`` and reports it as the
  result. Hence ``idempotent_retries = True``. A TID (not any string) because the
  lexicon of ``app.bsky.feed.post`` says ``key: tid`` and the AppView does not index
  posts with other keys.
- A recall (:meth:`BlueskyPublisher.withdraw`) deletes the record with
  ``com.atproto.repo.deleteRecord``. The reference PDS answers a record that is not there
  with a no-op 200 and no ``commit`` (packages/pds/src/api/com/atproto/repo/
  deleteRecord.ts: "No-op if record already doesn't exist"): that counts as gone, as does
  another PDS's ``RecordNotFound``. A delete costs 1 point of the PDS's repo-write limits
  (5000 per hour, 35000 per day and account; a create costs 3).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels._text import (
    Measurement,
    find_hashtags,
    find_links,
    grapheme_length,
    utf8_bytes,
)
from newsroom.channels.base import (
    AccountCheck,
    MediaFile,
    Publisher,
    PublishResult,
    WithdrawResult,
)
from newsroom.errors import PermanentPublishError, PublishError, TransientPublishError
from newsroom.posts import RenderedPost

MAX_GRAPHEMES = 300
MAX_BYTES = 3000
MAX_IMAGES = 4
MAX_IMAGE_BYTES = 1_000_000
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
# The scopes of a session that may create records (the reference PDS's AuthScope:
# packages/pds/src/auth-scope.ts), with what the check line says of each. Any other
# (com.atproto.signupQueued, com.atproto.takendown) may not.
SESSION_SCOPES = {
    "com.atproto.appPass": "an app password",
    "com.atproto.appPassPrivileged": "an app password (privileged: direct messages too)",
    "com.atproto.access": "the account's own password, not an app password: create an app "
                          "password (Settings → Privacy and security → App passwords) and "
                          "use that",
}
POST_COLLECTION = "app.bsky.feed.post"
# at://AUTHORITY/COLLECTION/RKEY: the authority a DID or a handle; a record key as the
# atproto spec's record-key syntax has it (1-512 of A-Za-z0-9 . - _ : ~, not "." or "..").
_AT_URI = re.compile(r"at://([^/?#]+)/([^/?#]+)/([A-Za-z0-9._:~-]{1,512})")
_AUTH_ERRORS = frozenset({"ExpiredToken", "InvalidToken", "AuthenticationRequired",
                          "AuthMissing", "AccountTakedown"})


def build_facets(text: str) -> list[dict[str, Any]]:
    """Link and hashtag facets for ``text`` with UTF-8 byte offsets, in text order."""

    def byte_offset(index: int) -> int:
        return len(text[:index].encode("utf-8"))

    facets = []
    for span in find_links(text):
        facets.append((span.start, {
            "index": {"byteStart": byte_offset(span.start), "byteEnd": byte_offset(span.end)},
            "features": [{"$type": "app.bsky.richtext.facet#link", "uri": span.value}],
        }))
    for span in find_hashtags(text):
        facets.append((span.start, {
            "index": {"byteStart": byte_offset(span.start), "byteEnd": byte_offset(span.end)},
            "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": span.value}],
        }))
    return [facet for _, facet in sorted(facets, key=lambda pair: pair[0])]


def record_key(idempotency_key: str, at: datetime) -> str:
    """A TID (13 chars of base32-sortable) that depends only on the key and ``at``.

    64 bits: 0, 53 bits of microseconds since the epoch, 10 bits of clock id. The
    microseconds within ``at``'s second and the clock id come from a hash of the key, so
    two posts of the same slot get different keys and a retry gets the same one.
    """
    digest = int.from_bytes(hashlib.sha256(idempotency_key.encode("utf-8")).digest()[:8], "big")
    seconds = int(at.timestamp())
    micros = seconds * 1_000_000 + digest % 1_000_000
    clock_id = (digest >> 20) % 1024
    value = (micros << 10) | clock_id
    chars = []
    for _ in range(13):
        chars.append(_TID_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def measure_text(text: str) -> list[Measurement]:
    """The lexicon of app.bsky.feed.post: ``text`` has ``maxGraphemes: 300`` and
    ``maxLength: 3000`` (UTF-8 bytes; lexicons/app/bsky/feed/post.json)."""
    return [
        Measurement(grapheme_length(text), MAX_GRAPHEMES,
                    "characters (graphemes: 👩‍👩‍👧 counts 1)", "Zeichen (👩‍👩‍👧 zählt 1)"),
        Measurement(utf8_bytes(text), MAX_BYTES,
                    "bytes (UTF-8: ä counts 2, an emoji 4 or more)",
                    "Bytes (UTF-8: ä zählt 2, ein Emoji 4 oder mehr)"),
    ]


@dataclass
class _Session:
    did: str
    handle: str
    access_jwt: str = field(repr=False)
    refresh_jwt: str = field(repr=False)


class BlueskyPublisher(Publisher):
    channel_type: ClassVar[ChannelType] = ChannelType.BLUESKY
    idempotent_retries: ClassVar[bool] = True
    default_base_url: ClassVar[str] = "https://bsky.social"

    @classmethod
    def measure(cls, text: str, account: ChannelAccount, *, has_image: bool = False
                ) -> list[Measurement]:
        return measure_text(text)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        secret = self._secret()
        if ":" in secret:
            self.handle, _ = secret.split(":", 1)
        else:
            self.handle = self.account.account_id or ""
        if not self.handle:
            raise PermanentPublishError(
                f"{self.channel}: the credential must be `handle:app-password` (or set the "
                "account's account_id to the handle)",
                channel=self.channel,
            )
        self._session: _Session | None = None
        self._session_lock = asyncio.Lock()
        self.sessions_created = 0  # for tests and diagnostics: should stay at 1

    def _password(self) -> str:
        secret = self._secret()
        return secret.split(":", 1)[1] if ":" in secret else secret

    def _secrets(self) -> tuple[str, ...]:
        secrets = [self._secret(), self._password()]
        if self._session is not None:
            secrets += [self._session.access_jwt, self._session.refresh_jwt]
        return tuple(secrets)

    def _xrpc(self, nsid: str) -> str:
        return f"{self.base_url}/xrpc/{nsid}"

    # -- session --

    async def _create_session(self) -> _Session:
        response = await self._request(
            "POST", self._xrpc("com.atproto.server.createSession"),
            json={"identifier": self.handle, "password": self._password()},
        )
        self.sessions_created += 1
        return self._session_from(response.json())

    @staticmethod
    def _session_from(data: dict[str, Any]) -> _Session:
        return _Session(did=data["did"], handle=data.get("handle", ""),
                        access_jwt=data["accessJwt"], refresh_jwt=data["refreshJwt"])

    async def warm_up(self) -> None:
        try:
            await self._ensure_session()
        except PublishError:
            pass  # publish() meets it again and reports it

    async def _ensure_session(self) -> _Session:
        async with self._session_lock:
            if self._session is None:
                self._session = await self._create_session()
            return self._session

    async def _renew_session(self, stale: _Session) -> _Session:
        async with self._session_lock:
            if self._session is not stale:  # another task renewed it already
                return self._session  # type: ignore[return-value]
            try:
                response = await self._request(
                    "POST", self._xrpc("com.atproto.server.refreshSession"),
                    headers={"Authorization": f"Bearer {stale.refresh_jwt}"},
                )
                self._session = self._session_from(response.json())
            except PermanentPublishError:  # refresh token expired or revoked too
                self._session = await self._create_session()
            return self._session

    async def _call(self, method: str, nsid: str, *, creates_post: bool = False,
                    headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        """An authenticated XRPC call through the shared HTTP layer (``_request``: typed
        errors, dead connections); renews the session once on ExpiredToken (a refusal:
        nothing was made, so the call is repeated with the new session)."""
        session = await self._ensure_session()
        for attempt in (1, 2):
            try:
                return await self._request(
                    method, self._xrpc(nsid), creates_post=creates_post,
                    headers={**(headers or {}), "Authorization": f"Bearer {session.access_jwt}"},
                    **kwargs)
            except PermanentPublishError as exc:
                if attempt == 1 and _xrpc_error(exc) == "ExpiredToken":
                    session = await self._renew_session(session)
                    continue
                raise
        raise AssertionError("unreachable")

    # -- publishing --

    async def publish(self, post: RenderedPost, *, idempotency_key: str) -> PublishResult:
        self._check_post(post)
        if len(post.media) > MAX_IMAGES:
            raise PermanentPublishError(
                f"{self.channel}: Bluesky shows at most {MAX_IMAGES} images per post; "
                f"this post has {len(post.media)}", channel=self.channel)
        media = [await self.load_media(item) for item in post.media]
        for item in media:
            if len(item.data) > MAX_IMAGE_BYTES:
                raise PermanentPublishError(
                    f"{self.channel}: image {item.filename} has {len(item.data)} bytes; "
                    f"Bluesky accepts at most {MAX_IMAGE_BYTES}: use a smaller image",
                    channel=self.channel)
        session = await self._ensure_session()
        record: dict[str, Any] = {
            "$type": "app.bsky.feed.post",
            "text": post.text,
            "createdAt": datetime.now(UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "langs": [post.language],
        }
        facets = build_facets(post.text)
        if facets:
            record["facets"] = facets
        if media:
            record["embed"] = {
                "$type": "app.bsky.embed.images",
                "images": [await self._image(item) for item in media],
            }
        rkey = record_key(idempotency_key, post.publish_at)
        try:
            response = await self._call("POST", "com.atproto.repo.createRecord", json={
                "repo": session.did, "collection": "app.bsky.feed.post", "rkey": rkey,
                "record": record,
            }, creates_post=True)
        except (PermanentPublishError, TransientPublishError) as exc:
            existing = await self._existing(exc, session.did, rkey, post.text)
            if existing is None:
                raise
            return existing
        created = response.json()
        return PublishResult(remote_id=created["uri"], url=self._web_url(session, rkey),
                             raw=created)

    async def _image(self, media: MediaFile) -> dict[str, Any]:
        response = await self._call("POST", "com.atproto.repo.uploadBlob",
                                    content=media.data,
                                    headers={"Content-Type": media.content_type})
        image: dict[str, Any] = {"alt": media.alt, "image": response.json()["blob"]}
        size = media.size
        if size and all(size):
            image["aspectRatio"] = {"width": size[0], "height": size[1]}
        return image

    async def _existing(self, error: PublishError, did: str, rkey: str, text: str
                        ) -> PublishResult | None:
        """After a refused create: is our record there already (an earlier attempt)?"""
        if error.status_code in (None, 401, 429):
            return None
        if _xrpc_error(error) in _AUTH_ERRORS:
            return None
        try:
            response = await self._call("GET", "com.atproto.repo.getRecord", params={
                "repo": did, "collection": "app.bsky.feed.post", "rkey": rkey})
        except PublishError:
            return None
        found = response.json()
        if (found.get("value") or {}).get("text") != text:
            raise PermanentPublishError(
                f"{self.channel}: record {rkey} exists with a different text; the "
                "idempotency key was reused for another post",
                channel=self.channel,
            )
        session = self._session or await self._ensure_session()
        return PublishResult(remote_id=found["uri"], url=self._web_url(session, rkey),
                             raw={**found, "existing": True})

    # -- recall --

    async def withdraw(self, remote_id: str, *, remote_url: str | None,
                       idempotency_key: str, original: Mapping[str, Any] | None = None
                       ) -> WithdrawResult:
        """Delete the post record ``remote_id`` (its ``at://DID/app.bsky.feed.post/RKEY``
        URI, what :meth:`publish` returned) with ``com.atproto.repo.deleteRecord``. A URI
        that is not a post of this account is refused before anything is sent. No
        ``swapRecord``/``swapCommit``: the recall deletes whatever version is there."""
        authority, collection, rkey = _parse_post_uri(remote_id, channel=self.channel)
        session = await self._ensure_session()
        if authority.lower() not in (session.did.lower(), session.handle.lower()):
            raise PermanentPublishError(
                f"{self.channel}: {remote_id} is not a post of this account "
                f"(@{session.handle}, {session.did}); it cannot be deleted with its app "
                "password", channel=self.channel)
        try:
            response = await self._call("POST", "com.atproto.repo.deleteRecord", json={
                "repo": session.did, "collection": collection, "rkey": rkey})
        except PermanentPublishError as exc:
            if _xrpc_error(exc) != "RecordNotFound":  # another PDS's word for "not there"
                raise
            return WithdrawResult(gone=True, already_gone=True,
                                  detail=f"record {rkey} was not there any more",
                                  raw={"error": exc.network_message})
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        commit = body.get("commit")
        if not commit:
            # The reference PDS answers a record that does not exist with a no-op 200 and
            # no commit: nothing was deleted now, because nothing was there — gone.
            return WithdrawResult(gone=True, already_gone=True, raw=body,
                                  detail=f"record {rkey} was not there any more "
                                         "(no commit: the PDS had nothing to delete)")
        rev = commit.get("rev") if isinstance(commit, dict) else None
        return WithdrawResult(gone=True, raw=body, detail=f"record {rkey} deleted"
                              + (f" (commit rev {rev})" if rev else ""))

    @staticmethod
    def _web_url(session: _Session, rkey: str) -> str:
        return f"https://bsky.app/profile/{session.handle or session.did}/post/{rkey}"

    async def _check(self) -> AccountCheck:
        """The session's account (``getSession``: handle and DID) against the registry's
        ``account_id``; its hosting status (``active``/``status``: only an active account
        may write); the session's scope, read from the access token's claims (an app
        password's ``com.atproto.appPass``). See docs/CHANNELS.md, "Credential check"."""
        session = await self._ensure_session()
        data = (await self._call("GET", "com.atproto.server.getSession")).json()
        did, handle = str(data.get("did") or session.did), str(data.get("handle") or session.handle)
        identity = f"@{handle} ({did})"
        raw = {"did": did, "handle": handle, "active": data.get("active"),
               "status": data.get("status")}
        wanted = (self.account.account_id or "").strip().lstrip("@").lower()
        if wanted and wanted not in (handle.lower(), did.lower()):
            return AccountCheck(
                channel=self.channel, ok=False, identity=identity, raw=raw,
                message=f"the app password logs in as {identity}, but the registry's "
                        f"account_id is {self.account.account_id!r}",
                fix="use an app password of that account (`handle:app-password`), or "
                    "correct account_id in registry/channels.yaml")
        if data.get("active") is False:
            status = str(data.get("status") or "inactive")
            return AccountCheck(
                channel=self.channel, ok=False, identity=identity, raw=raw,
                message=f"the account is {status} (its PDS's hosting status); an account "
                        "that is not active cannot post",
                fix="reactivate the account (bsky.app: Settings → Account), or ask its PDS's "
                    "operator", about_credential=False)
        scope = _token_scope(session.access_jwt)
        if scope is not None and scope not in SESSION_SCOPES:
            return AccountCheck(
                channel=self.channel, ok=False, identity=identity, raw=raw,
                message=f"the session's scope is {scope}, which may not create records",
                fix="log in with an app password of an active account")
        return AccountCheck(channel=self.channel, ok=True, identity=identity, raw=raw,
                            details=(SESSION_SCOPES[scope] if scope is not None else
                                     "the session's scope is not told (the access token is "
                                     "not a JWT)",))


def _parse_post_uri(uri: str, *, channel: str) -> tuple[str, str, str]:
    """(authority, collection, rkey) of a post's ``at://`` URI; anything else is refused."""
    match = _AT_URI.fullmatch(uri.strip())
    if match is None or match[3] in (".", "..") or match[2] != POST_COLLECTION:
        raise PermanentPublishError(
            f"{channel}: {uri!r} is not the at:// URI of a post "
            f"(at://DID/{POST_COLLECTION}/RKEY, what publishing returned); it cannot be "
            "deleted by it", channel=channel)
    return match[1], match[2], match[3]


def _token_scope(token: str) -> str | None:
    """The ``scope`` claim of a session's access token (a JWT the PDS issued; its
    signature is the PDS's business, the claim only says what it granted), or None."""
    try:
        claims = token.split(".")[1]
        scope = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["scope"]
    except (IndexError, ValueError, KeyError, TypeError):
        return None
    return scope if isinstance(scope, str) else None


def _xrpc_error(error: PublishError) -> str:
    """The XRPC error name ("ExpiredToken", "InvalidRequest" …) of a refused call: the
    first part of the network's words (``{"error": name, "message": …}``)."""
    return (error.network_message or "").split(":")[0].strip()
