"""Mastodon and the servers that speak its client API (GoToSocial, Pleroma/Akkoma, …).

Discovery (:meth:`MastodonPublisher.discover`), once per publisher: the limits from
``GET /api/v2/instance`` (Mastodon 4.0 and later), else ``GET /api/v1/instance``
(``configuration.statuses`` as Mastodon 3.x and GoToSocial send it, or the older top-level
``max_toot_chars``), else the account's ``max_characters`` / ``characters_reserved_per_url``
from registry/channels.yaml, with a warning: a post never fails because discovery did.

Repeats. ``POST /api/v1/statuses`` carries an ``Idempotency-Key``. Mastodon's
PostStatusService keeps the key for an hour (``redis.setex("idempotency:status:…",
3_600, status.id)``) and answers a repeat with the status it made; the 2.x code already
does, the 1.x code does not. Other servers ignore the header: GoToSocial only lists it
among the CORS headers it allows (internal/middleware/cors.go; the ``Idempotency`` field
of a scheduled status is "currently unused"). So ``idempotent_retries`` is per account:
``idempotency: recognised|ignored`` in the registry, or (``auto``, the default) from the
software — nodeinfo's ``software.name`` (``/.well-known/nodeinfo``), else the instance's
``version``: only a plain Mastodon version ("4.3.2", not GoToSocial's "0.19.1 git-…" nor
its injected "3.5.3+0.19.1…", nor Pleroma's "2.7.2 (compatible; Pleroma …)") of 2.0 or
later counts. Until the server is known, repeats count as not recognised.

Where repeats are not recognised, a create whose answer was lost (timeout, connection cut
after sending, 502/504) is settled by looking: the account's latest statuses
(``GET /api/v1/accounts/:id/statuses``, the id from ``verify_credentials``) are searched
for this post's exact text created since the attempt began (:meth:`find_published`).
Found: that status is the result. Not found, or the look fails: the error stays
ambiguous, and the publication becomes "unknown" with an alert. Never a blind repeat.

Length (:meth:`MastodonPublisher.measure`): Mastodon's ``StatusLengthValidator`` counts
graphemes, every URL as ``characters_reserved_per_url`` (23) and a mention ``@name@host``
as ``@name`` (see :func:`newsroom.channels._text.mastodon_length`). The limit and the URL
weight come from discovery and are cached per publisher; before that, and for
validation, the account's ``max_characters`` and ``characters_reserved_per_url`` apply
(500 and 23 if not set, Mastodon's defaults).

Recall (:meth:`MastodonPublisher.withdraw`): ``DELETE /api/v1/statuses/:id?delete_media=true``
(``write:statuses``). 200 answers the deleted status (with its source ``text``); 404 "Record
not found" is a status that is not there, or not this account's (Mastodon's destroy looks
only among the token's own): a public ``GET /api/v1/statuses/:id`` tells the two apart.
Mastodon throttles deletes to 30 per 30 minutes and account (config/initializers/
rack_attack.rb ``throttle_api_delete``): a 429 carries ``X-RateLimit-Reset``, the end of
the window. Deleting at the origin sends an ActivityPub ``Delete`` to the followers'
servers, relays and those who boosted or were mentioned; each of them decides itself
whether to drop its copy (docs/CHANNELS.md "Recall").
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels._text import Measurement, mastodon_length
from newsroom.channels.base import (
    AccountCheck,
    MediaFile,
    Publisher,
    PublishResult,
    WithdrawResult,
)
from newsroom.errors import (
    AmbiguousPublishError,
    CredentialRefused,
    PermanentPublishError,
    PublishError,
    TransientPublishError,
)
from newsroom.posts import RenderedPost

logger = logging.getLogger("newsroom.channels")

DEFAULT_MAX_CHARACTERS = 500
DEFAULT_URL_WEIGHT = 23
# Mastodon's PostStatusService recognises a repeated Idempotency-Key from 2.0 on (see above).
IDEMPOTENCY_SINCE = (2, 0)
# "4.3.2", "4.4.0-beta.1": Mastodon itself. A "+…" build (GoToSocial's injected version,
# forks) or "(compatible; …)" (Pleroma, Akkoma) is another server, or not surely Mastodon.
_PLAIN_MASTODON_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.]+)?")
_NODEINFO_SCHEMAS = ("http://nodeinfo.diaspora.software/ns/schema/2.1",
                     "http://nodeinfo.diaspora.software/ns/schema/2.0")
# Statuses asked for when settling a lost answer: Mastodon's most (limit_param: 2 × 20).
LOOKUP_LIMIT = 40
# What publishing needs of a token (docs.joinmastodon.org/api/oauth-scopes): the create
# (POST /api/v1/statuses) and the image upload (POST /api/v2/media); and where a lost answer
# is settled by looking, reading the account's statuses. Mastodon answers a token without
# the scope 403 "This action is outside the authorized scopes".
SCOPES_TO_POST = ("write:statuses", "write:media")
SCOPE_TO_LOOK = "read:statuses"
SCOPE_PURPOSE = {"write:statuses": "posting", "write:media": "an image",
                 "read:statuses": "looking for a post whose answer was lost"}
# A status id: Mastodon's are numbers (snowflakes), GoToSocial's ULIDs, Pleroma's FlakeIds.
_STATUS_ID = re.compile(r"[0-9A-Za-z]+")
# Our clock and the server's may differ: a status counts as this attempt's if created no
# earlier than this before the attempt began.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class InstanceFacts:
    """What discovery found out about the server of one account."""

    max_characters: int
    characters_reserved_per_url: int
    source: str  # "v2", "v1" or "account" (neither answered: the registry's values)
    software: str = ""  # nodeinfo's software.name ("mastodon", "gotosocial", …), "" unknown
    version: str = ""  # nodeinfo's software.version, else the instance's version
    repeats_recognised: bool = False


def recognises_repeats(software: str, version: str) -> bool:
    """Does this server answer a repeated Idempotency-Key with the status it made?

    ``software`` is nodeinfo's name ("" if unknown): then ``version`` is the instance's
    own version string and must look like Mastodon's own."""
    if software:
        if software.lower() != "mastodon":
            return False
        match = re.match(r"(\d+)\.(\d+)", version.strip())
    else:
        match = _PLAIN_MASTODON_VERSION.fullmatch(version.strip())
    return match is not None and (int(match[1]), int(match[2])) >= IDEMPOTENCY_SINCE


def grants(scopes: Iterable[str], needed: str) -> bool:
    """Does a token with ``scopes`` have ``needed``? A top-level scope grants its
    sub-scopes: ``write`` grants ``write:statuses`` (Mastodon's Doorkeeper scopes)."""
    scopes = set(scopes)
    return needed in scopes or needed.split(":", 1)[0] in scopes


def _plain(text: str) -> str:
    """Text to compare: whitespace runs as one space, ``@name@host`` as ``@name`` (how
    Mastodon shows a mention in the status's HTML)."""
    text = re.sub(r"(?<![\w@])@([\w.-]+)@[\w.-]+\w", r"@\1", text)
    return " ".join(text.split())


def status_text(content: str) -> str:
    """The text of a status's HTML ``content``, as :func:`_plain` compares it. Mastodon
    writes paragraphs as ``<p>``, line breaks as ``<br>``, and a link's full URL in its
    (partly invisible) spans."""
    content = re.sub(r"<br\s*/?>|</p>\s*<p[^>]*>", " ", content, flags=re.IGNORECASE)
    return _plain(html.unescape(re.sub(r"<[^>]+>", "", content)))


def _created_at(status: dict[str, Any]) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(status.get("created_at", "")).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class MastodonPublisher(Publisher):
    channel_type: ClassVar[ChannelType] = ChannelType.MASTODON
    media_poll_interval: float = 0.5  # seconds between polls of a processing upload
    media_poll_attempts: int = 60
    settle_delay: float = 1.0  # seconds before looking for a status whose answer was lost

    def __init__(self, *args: Any, settle_delay: float | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if settle_delay is not None:
            self.settle_delay = settle_delay
        self._facts: InstanceFacts | None = None
        self._discovery_lock = asyncio.Lock()
        self._account_id: str | None = None

    # Per account, not per network (see above): a property where the base class has a
    # class-level bool; reading it gives a bool either way.
    @property
    def idempotent_retries(self) -> bool:  # type: ignore[override]
        if self.account.idempotency != "auto":
            return self.account.idempotency == "recognised"
        return self._facts is not None and self._facts.repeats_recognised

    @classmethod
    def measure(cls, text: str, account: ChannelAccount, *, has_image: bool = False
                ) -> list[Measurement]:
        weight = account.characters_reserved_per_url or DEFAULT_URL_WEIGHT
        limit = account.max_characters or DEFAULT_MAX_CHARACTERS
        return [Measurement(mastodon_length(text, characters_reserved_per_url=weight), limit,
                            f"characters (graphemes; every URL counts as {weight})",
                            f"Zeichen (jeder Link zählt {weight})")]

    def _headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._secret()}"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    async def warm_up(self) -> None:
        await self.discover()  # never raises: discovery falls back to the registry

    async def instance_limits(self) -> tuple[int, int]:
        """(max_characters, characters_reserved_per_url) of the account's server."""
        facts = await self.discover()
        return facts.max_characters, facts.characters_reserved_per_url

    async def discover(self) -> InstanceFacts:
        """Limits and software of the server, asked once (see the module docstring).
        Never raises; what no endpoint answered comes from the registry, with a warning,
        and is asked again next time."""
        if self._facts is not None:
            return self._facts
        async with self._discovery_lock:
            if self._facts is not None:
                return self._facts
            instance, source, failures = None, "account", []
            for version in ("v2", "v1"):
                try:
                    response = await self._request(
                        "GET", f"{self.base_url}/api/{version}/instance", headers=self._headers())
                    body = response.json()
                except (PublishError, ValueError) as exc:
                    failures.append(f"/api/{version}/instance: {exc}")
                    continue
                if isinstance(body, dict):
                    instance, source = body, version
                    break
                failures.append(f"/api/{version}/instance: not a JSON object")
            software, software_version = await self._nodeinfo()
            facts = self._facts_from(instance, source, software,
                                     software_version or str((instance or {}).get("version", "")))
            if instance is None:
                logger.warning(
                    "%s: the server told neither its limits nor its version (%s); using the "
                    "registry's max_characters %d and characters_reserved_per_url %d, and "
                    "not repeating a create whose answer is lost", self.channel,
                    "; ".join(failures), facts.max_characters,
                    facts.characters_reserved_per_url)
                return facts
            if source != "v2":
                logger.info("%s: no /api/v2/instance (%s); limits from /api/v1/instance",
                            self.channel, "; ".join(failures))
            self._facts = facts
            return facts

    def _facts_from(self, instance: dict[str, Any] | None, source: str, software: str,
                    version: str) -> InstanceFacts:
        instance = instance or {}
        configuration = instance.get("configuration")
        statuses = (configuration.get("statuses") if isinstance(configuration, dict)
                    else None) or {}

        def number(*values: Any) -> int | None:
            for value in values:
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    return value
            return None

        return InstanceFacts(
            max_characters=number(statuses.get("max_characters"),
                                  instance.get("max_toot_chars"), self.account.max_characters,
                                  DEFAULT_MAX_CHARACTERS) or DEFAULT_MAX_CHARACTERS,
            characters_reserved_per_url=number(
                statuses.get("characters_reserved_per_url"),
                self.account.characters_reserved_per_url, DEFAULT_URL_WEIGHT)
            or DEFAULT_URL_WEIGHT,
            source=source, software=software, version=version,
            repeats_recognised=recognises_repeats(software, version),
        )

    async def _nodeinfo(self) -> tuple[str, str]:
        """(software.name, software.version) from nodeinfo 2.1/2.0, or ("", "")."""
        try:
            response = await self._request("GET", f"{self.base_url}/.well-known/nodeinfo")
            links = {link.get("rel"): link.get("href") for link in response.json()["links"]
                     if isinstance(link, dict)}
            href = next(links[rel] for rel in _NODEINFO_SCHEMAS if links.get(rel))
            software = (await self._request("GET", str(href))).json()["software"]
            return str(software.get("name") or "").lower(), str(software.get("version") or "")
        except (PublishError, ValueError, LookupError, TypeError, AttributeError,
                StopIteration):
            return "", ""

    async def publish(self, post: RenderedPost, *, idempotency_key: str) -> PublishResult:
        max_characters, url_weight = await self.instance_limits()
        self._check_post(post, self.account.model_copy(update={
            "max_characters": max_characters, "characters_reserved_per_url": url_weight}))
        media_ids = [await self._upload(await self.load_media(item)) for item in post.media]
        body: dict[str, Any] = {
            "status": post.text,
            "language": post.language,
            "visibility": "public",
        }
        if media_ids:
            body["media_ids"] = media_ids
        began = datetime.now(UTC)
        try:
            response = await self._request(
                "POST", f"{self.base_url}/api/v1/statuses", json=body,
                headers=self._headers(idempotency_key), creates_post=True,
            )
        except AmbiguousPublishError as exc:
            if self.idempotent_retries:
                raise  # a repeat with the same key gets the status back
            return await self._settle(post, exc, since=began)
        return self._result(response.json())

    @staticmethod
    def _result(status: dict[str, Any], **extra: Any) -> PublishResult:
        return PublishResult(remote_id=str(status["id"]),
                             url=status.get("url") or status.get("uri"),
                             raw={**status, **extra})

    async def _settle(self, post: RenderedPost, error: AmbiguousPublishError, *,
                      since: datetime) -> PublishResult:
        """The create's answer was lost and this server would make a second status if
        asked again: look whether the first one is there."""
        facts = self._facts
        server = (f"{facts.software or 'the server'} {facts.version}".strip()
                  if facts else "the server")
        if self.settle_delay > 0:
            await asyncio.sleep(self.settle_delay)
        try:
            found = await self.find_published(post, since=since)
        except PublishError as exc:
            raise AmbiguousPublishError(
                f"{error}; looking for the status among the account's own failed as well "
                f"({exc}). {server} does not recognise a repeated request, so the post was "
                "not sent again", channel=self.channel, status_code=error.status_code,
                network_message=error.network_message) from error
        if found is None:
            raise AmbiguousPublishError(
                f"{error}; the account's latest {LOOKUP_LIMIT} statuses do not show it (yet), "
                f"and {server} does not recognise a repeated request, so the post was not "
                "sent again", channel=self.channel, status_code=error.status_code,
                network_message=error.network_message) from error
        logger.info("%s: the answer to the create was lost; found status %s with the post's "
                    "text among the account's own", self.channel, found.remote_id)
        return found

    async def find_published(self, post: RenderedPost, *, since: datetime
                             ) -> PublishResult | None:
        """The account's status with exactly this post's text (and as many images),
        created no earlier than ``since`` (less :data:`CLOCK_SKEW`), or None."""
        if self._account_id is None:
            response = await self._request(
                "GET", f"{self.base_url}/api/v1/accounts/verify_credentials",
                headers=self._headers())
            self._account_id = str(response.json()["id"])
        response = await self._request(
            "GET", f"{self.base_url}/api/v1/accounts/{self._account_id}/statuses",
            params={"limit": LOOKUP_LIMIT, "exclude_reblogs": "true"}, headers=self._headers())
        statuses = response.json()
        wanted = _plain(post.text)
        earliest = since - CLOCK_SKEW
        for status in statuses if isinstance(statuses, list) else []:
            if not isinstance(status, dict) or "id" not in status:
                continue
            created = _created_at(status)
            if created is None or created < earliest:
                continue
            if (status_text(str(status.get("content") or "")) == wanted
                    and len(status.get("media_attachments") or []) == len(post.media)):
                return self._result(status, existing=True)
        return None

    async def withdraw(self, remote_id: str, *, remote_url: str | None,
                       idempotency_key: str, original: Mapping[str, Any] | None = None
                       ) -> WithdrawResult:
        """Delete status ``remote_id`` (``DELETE /api/v1/statuses/:id``), its images at once
        (``delete_media``, Mastodon 4.4 and later; other servers ignore it, Mastodon before
        keeps them about 24 hours for a redraft). A repeat is harmless: a deleted status
        answers 404, which counts as gone once a public look confirms it is not shown."""
        status_id = remote_id.strip()
        if not _STATUS_ID.fullmatch(status_id):
            raise PermanentPublishError(
                f"{self.channel}: {remote_id!r} is not a status id (what publishing "
                "returned, e.g. 113500000000000001); the post cannot be deleted by it",
                channel=self.channel)
        url = f"{self.base_url}/api/v1/statuses/{quote(status_id, safe='')}"
        try:
            response = await self._request("DELETE", url, params={"delete_media": "true"},
                                           headers=self._headers(), creates_post=False)
        except CredentialRefused:
            raise
        except PermanentPublishError as exc:
            if exc.status_code != 404:
                raise
            return await self._gone_or_not_ours(status_id, url, exc)
        try:
            status = response.json()
        except ValueError:
            status = {}
        return WithdrawResult(gone=True, detail=f"status {status_id} deleted",
                              raw=status if isinstance(status, dict) else {})

    async def _gone_or_not_ours(self, status_id: str, url: str, refusal: PublishError
                                ) -> WithdrawResult:
        """The delete answered 404: the status is gone, or it is another account's (and so
        not the token's to delete). A public look (no token, as anyone sees it; with the
        token where the server shows nothing without one) tells which."""
        seen: int | None = None
        for headers in ({}, self._headers()):
            try:
                await self._request("GET", url, headers=headers)
                seen = 200
            except TransientPublishError:
                raise  # try the whole withdrawal again later
            except PermanentPublishError as exc:
                seen = exc.status_code
                if seen in (401, 403) and not headers:
                    continue  # an API that shows nothing without a token (authorized fetch)
            break
        if seen == 200:
            raise CredentialRefused(
                f"{self.channel}: DELETE /api/v1/statuses/{status_id} answered 404, but the "
                "status is still shown: it is not this token's account's to delete. Use a "
                "token of the account that published it", channel=self.channel,
                status_code=404, network_message=refusal.network_message)
        detail = f"status {status_id} was not there any more (404)"
        if seen != 404:
            detail += f"; not confirmed: the look at it answered {seen or 'nothing'}"
        return WithdrawResult(gone=True, already_gone=True, detail=detail,
                              raw={"error": refusal.network_message, "status_code": 404})

    async def _upload(self, media: MediaFile) -> str:
        response = await self._request(
            "POST", f"{self.base_url}/api/v2/media", headers=self._headers(),
            files={"file": (media.filename, media.data, media.content_type)},
            data={"description": media.alt},
        )
        attachment = response.json()
        media_id = str(attachment["id"])
        # 202: accepted, still processing; a status may only attach it once `url` is set.
        for _ in range(self.media_poll_attempts):
            if attachment.get("url"):
                return media_id
            await asyncio.sleep(self.media_poll_interval)
            response = await self._request(
                "GET", f"{self.base_url}/api/v1/media/{media_id}", headers=self._headers())
            attachment = response.json()
        raise TransientPublishError(
            f"{self.channel}: the instance is still processing image {media.filename}; "
            "try again later",
            channel=self.channel,
        )

    async def _check(self) -> AccountCheck:
        """The account the token posts as (``verify_credentials``), compared with the
        registry's ``account_id`` if set; what discovery finds; the token's scopes
        (:data:`SCOPES_TO_POST`, and :data:`SCOPE_TO_LOOK` where lost answers are settled
        by looking), where the server tells them (docs/CHANNELS.md, "Credential check")."""
        response = await self._request(
            "GET", f"{self.base_url}/api/v1/accounts/verify_credentials",
            headers=self._headers())
        account = response.json()
        self._account_id = str(account.get("id") or "") or None
        identity = self._handle(account)
        details = [self._describe(await self.discover())]
        if not self._is_registered_account(account):
            return AccountCheck(
                channel=self.channel, ok=False, identity=identity, details=tuple(details),
                message=f"the token posts as {identity}, but the registry's account_id is "
                        f"{self.account.account_id!r}",
                fix="use a token of that account, or correct account_id in "
                    "registry/channels.yaml", raw=account)
        scopes = await self._token_scopes()
        needed = SCOPES_TO_POST if self.idempotent_retries else (*SCOPES_TO_POST, SCOPE_TO_LOOK)
        if scopes is None:
            details.append("scopes not told by this server (GET /api/v1/apps/verify_credentials "
                           "has `scopes` from Mastodon 4.3 on): a token without "
                           f"{' or '.join(needed)} fails at the first post")
        else:
            missing = [scope for scope in needed if not grants(scopes, scope)]
            if missing:
                return AccountCheck(
                    channel=self.channel, ok=False, identity=identity, details=tuple(details),
                    message=f"the token lacks the scope {' and '.join(missing)} (it has "
                            f"{' '.join(scopes) or 'none'}), which "
                            f"{' and '.join(SCOPE_PURPOSE[scope] for scope in missing)} needs",
                    fix="create a token with the scopes read:accounts "
                        f"{' '.join(needed)} (Preferences → Development → New application)",
                    raw=account)
            details.append(f"scopes {' '.join(scopes)}")
        return AccountCheck(channel=self.channel, ok=True, identity=identity,
                            details=tuple(details), raw=account)

    def _handle(self, account: dict[str, Any]) -> str:
        """``@name@host``: verify_credentials gives the local ``acct`` without a host;
        the host is that of the account's profile URL (the server's web domain)."""
        acct = str(account.get("acct") or account.get("username") or "")
        if "@" in acct:
            return f"@{acct}"
        host = urlsplit(str(account.get("url") or "")).hostname or urlsplit(self.base_url).hostname
        return f"@{acct}@{host}" if host else f"@{acct}"

    def _is_registered_account(self, account: dict[str, Any]) -> bool:
        """Is ``account`` the registry's ``account_id`` (``name``, ``@name``,
        ``@name@host`` or the numeric id)? True if the registry names none."""
        wanted = (self.account.account_id or "").strip().lstrip("@").lower()
        if not wanted or wanted == str(account.get("id", "")):
            return True
        name, _, host = wanted.partition("@")
        acct_name, _, acct_host = str(account.get("acct") or "").lower().partition("@")
        if name != acct_name:
            return False
        hosts = {acct_host, urlsplit(str(account.get("url") or "")).hostname,
                 urlsplit(self.base_url).hostname}
        return not host or host in hosts

    async def _token_scopes(self) -> list[str] | None:
        """The scopes of the token's application (``GET /api/v1/apps/verify_credentials``,
        Mastodon 4.3 and later; a token made under Preferences → Development has exactly
        these), or None where the server does not tell them: Mastodon before 4.3 answers
        without ``scopes`` (or 403 to a token without ``read``), GoToSocial 404."""
        try:
            response = await self._request(
                "GET", f"{self.base_url}/api/v1/apps/verify_credentials",
                headers=self._headers())
            scopes = response.json().get("scopes")
        except (PermanentPublishError, ValueError, AttributeError):
            return None
        if isinstance(scopes, str):
            scopes = scopes.split()
        if not isinstance(scopes, list):
            return None
        return [str(scope) for scope in scopes]

    def _describe(self, facts: InstanceFacts) -> str:
        """What discovery found, for the check line."""
        limits = {
            "v2": f"limits from /api/v2/instance ({facts.max_characters} characters)",
            "v1": f"no /api/v2/instance: limits from /api/v1/instance "
                  f"({facts.max_characters} characters)",
        }.get(facts.source, "the server told no limits: the registry's "
                            f"{facts.max_characters} characters apply")
        server = f"{facts.software or 'the server'} {facts.version}".strip()
        if self.account.idempotency != "auto":
            repeats = (f"repeats {self.account.idempotency} (idempotency: "
                       f"{self.account.idempotency} in the registry)")
        elif facts.repeats_recognised:
            repeats = f"{server} recognises a repeated Idempotency-Key"
        else:
            repeats = (f"{server} does not recognise a repeated Idempotency-Key: a lost "
                       "answer is settled by looking at the account's statuses")
        return f"{limits}; {repeats}"
