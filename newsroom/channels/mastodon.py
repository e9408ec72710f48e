"""Mastodon: statuses with images over the REST API.

``POST /api/v1/statuses`` carries an ``Idempotency-Key``; Mastodon answers a repeated key
(for an hour) with the status it already made, so a publish whose answer was lost can be
repeated with the same key: ``idempotent_retries = True``.

Length (:meth:`MastodonPublisher.measure`): Mastodon's ``StatusLengthValidator`` counts
graphemes, every URL as ``characters_reserved_per_url`` (23) and a mention ``@name@host``
as ``@name`` (see :func:`newsroom.channels._text.mastodon_length`). The limit and the URL
weight come from ``GET /api/v2/instance`` and are cached per publisher; before that, and
for validation, the account's ``max_characters`` and ``characters_reserved_per_url``
apply (500 and 23 if not set, Mastodon's defaults).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels._text import Measurement, mastodon_length
from newsroom.channels.base import AccountCheck, MediaFile, Publisher, PublishResult
from newsroom.errors import PublishError, TransientPublishError
from newsroom.posts import RenderedPost

DEFAULT_MAX_CHARACTERS = 500
DEFAULT_URL_WEIGHT = 23


class MastodonPublisher(Publisher):
    channel_type: ClassVar[ChannelType] = ChannelType.MASTODON
    idempotent_retries: ClassVar[bool] = True
    media_poll_interval: float = 0.5  # seconds between polls of a processing upload
    media_poll_attempts: int = 60

    _instance: dict[str, Any] | None = None

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
        try:
            await self.instance_limits()
        except PublishError:
            pass  # publish() meets it again and reports it

    async def instance_limits(self) -> tuple[int, int]:
        """(max_characters, characters_reserved_per_url), read once from the instance."""
        if self._instance is None:
            response = await self._request("GET", f"{self.base_url}/api/v2/instance")
            statuses = (response.json().get("configuration") or {}).get("statuses") or {}
            self._instance = statuses
        return (
            int(self._instance.get("max_characters") or self.account.max_characters
                or DEFAULT_MAX_CHARACTERS),
            int(self._instance.get("characters_reserved_per_url")
                or self.account.characters_reserved_per_url or DEFAULT_URL_WEIGHT),
        )

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
        response = await self._request(
            "POST", f"{self.base_url}/api/v1/statuses", json=body,
            headers=self._headers(idempotency_key), creates_post=True,
        )
        status = response.json()
        return PublishResult(remote_id=str(status["id"]), url=status.get("url") or
                             status.get("uri"), raw=status)

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
        response = await self._request(
            "GET", f"{self.base_url}/api/v1/accounts/verify_credentials",
            headers=self._headers())
        account = response.json()
        return AccountCheck(channel=self.channel, ok=True,
                            identity=f"@{account.get('acct', '')}", raw=account)
