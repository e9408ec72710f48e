"""Threads: ``POST /{threads-user-id}/threads`` (``media_type`` TEXT or IMAGE, ``text``,
``image_url``, ``alt_text``) makes a container, ``/threads_publish`` publishes it.
Several images make a carousel. Before ``threads_publish`` the publisher waits until the
container's ``status`` is FINISHED, for text posts too (the Posts guide recommends waiting
before publishing any container; the status is how to know). Threads does not deduplicate:
``idempotent_retries = False``; a profile may publish 250 posts in 24 hours.

Length: "Text posts are limited to 500 characters. Emojis are counted as the number of UTF-8
bytes" (developers.facebook.com/documentation/threads/posts):
:func:`newsroom.channels._text.threads_length`.

Recall: ``DELETE /{threads-media-id}`` needs ``threads_basic`` and ``threads_delete`` and
answers ``{"success": true, "deleted_id": …}``; "The Delete endpoint has a rate limit of 100
deletes per day per account" (https://developers.facebook.com/docs/threads/posts/delete-posts).
The docs name no error for an exhausted limit; ``GET /{threads-user-id}/
threads_publishing_limit?fields=delete_quota_usage,delete_config`` tells the usage of the
last 24 hours (https://developers.facebook.com/docs/threads/troubleshooting, "Retrieve
Quota Limits"; https://developers.facebook.com/docs/threads/overview). So a refused delete
(HTTP 4xx, not the token, not "does not exist") reads it, and an exhausted quota becomes a
:class:`TransientPublishError` with ``retry_after`` the quota's window (the oldest delete
leaves it at the latest then).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels._text import Measurement, threads_length
from newsroom.channels.base import PublishResult, WithdrawResult
from newsroom.channels.facebook import GraphWithdrawal
from newsroom.errors import (
    CredentialRefused,
    PermanentPublishError,
    PublishError,
    TransientPublishError,
)
from newsroom.posts import RenderedPost

MAX_TEXT = 500
MAX_CAROUSEL = 20
DELETE_PERMISSION = "threads_delete"
DELETES_PER_DAY = 100  # the delete endpoint's documented limit per profile and day
DELETE_QUOTA_WINDOW = 86_400.0  # seconds, when the quota endpoint does not say


class ThreadsPublisher(GraphWithdrawal):
    channel_type: ClassVar[ChannelType] = ChannelType.THREADS
    delete_permission: ClassVar[str] = DELETE_PERMISSION
    network_label: ClassVar[str] = "Threads"
    account_noun: ClassVar[str] = "profile"
    default_base_url: ClassVar[str] = "https://graph.threads.net/v1.0"
    status_field: ClassVar[str] = "status"
    identity_fields: ClassVar[str] = "id,username"
    # Threads' publishing-limit edge needs "threads_basic, threads_content_publish".
    publish_permissions: ClassVar[tuple[str, ...]] = ("threads_basic", "threads_content_publish")
    publishing_limit_edge: ClassVar[str] = "threads_publishing_limit"

    @classmethod
    def measure(cls, text: str, account: ChannelAccount, *, has_image: bool = False
                ) -> list[Measurement]:
        return [Measurement(threads_length(text), MAX_TEXT,
                            "characters (an emoji counts its UTF-8 bytes, 4 or more)",
                            "Zeichen (ein Emoji zählt 4 oder mehr)")]

    async def publish(self, post: RenderedPost, *, idempotency_key: str) -> PublishResult:
        self._check_post(post)
        if len(post.media) > MAX_CAROUSEL:
            raise PermanentPublishError(
                f"{self.channel}: Threads allows {MAX_CAROUSEL} images; this post has "
                f"{len(post.media)}", channel=self.channel)
        urls = [self._public_url(item) for item in post.media]
        for item in post.media:
            if item.sha256:
                await self.load_media(item)  # raises if the image changed since approval

        data: dict[str, Any]
        if not urls:
            data = {"media_type": "TEXT", "text": post.text}
        elif len(urls) == 1:
            data = {"media_type": "IMAGE", "image_url": urls[0], "text": post.text,
                    "alt_text": post.media[0].alt}
        else:
            children = []
            for url, item in zip(urls, post.media, strict=True):
                child = await self._post(f"{self.node}/threads", {
                    "media_type": "IMAGE", "image_url": url, "is_carousel_item": "true",
                    "alt_text": item.alt})
                children.append(str(child["id"]))
            data = {"media_type": "CAROUSEL", "children": ",".join(children),
                    "text": post.text}
        container_id = str((await self._post(f"{self.node}/threads", data))["id"])
        # Threads processes every container, a text-only one too, before it can be
        # published ("wait on average 30 seconds before publishing a Threads media
        # container"); its status says when it is FINISHED.
        await self._wait_for_container(container_id)
        published = await self._post(f"{self.node}/threads_publish",
                                     {"creation_id": container_id}, creates_post=True)
        media_id = str(published["id"])
        return PublishResult(remote_id=media_id, url=await self._permalink(media_id),
                             raw={**published, "container_id": container_id})

    async def withdraw(self, remote_id: str, *, remote_url: str | None,
                       idempotency_key: str, original: Mapping[str, Any] | None = None
                       ) -> WithdrawResult:
        """``DELETE /{threads-media-id}``; not there any more counts as gone; the daily
        delete quota exhausted is a wait (:meth:`_quota_exhausted`)."""
        try:
            answer = await self._delete(remote_id)
        except PublishError as exc:
            if (isinstance(exc, CredentialRefused) or exc.status_code is None
                    or not 400 <= exc.status_code < 500):
                raise
            exhausted = await self._quota_exhausted(remote_id, exc)
            if exhausted is not None:
                raise exhausted from exc
            raise
        return self._deleted(remote_id, answer)

    async def _quota_exhausted(self, remote_id: str, refusal: PublishError
                               ) -> TransientPublishError | None:
        """The error to raise if the profile used its deletes of the last 24 hours
        (``delete_quota_usage`` of ``delete_config.quota_total``); None if it did not or
        the quota cannot be read (then the refusal stands)."""
        try:
            data = await self._get(f"{self.node}/{self.publishing_limit_edge}",
                                   fields="delete_quota_usage,delete_config")
        except PublishError:
            return None
        usage = (data.get("data") or [{}])[0]
        config = usage.get("delete_config") or {}
        used, total = usage.get("delete_quota_usage"), config.get("quota_total", DELETES_PER_DAY)
        if not isinstance(used, int) or not isinstance(total, int) or used < total:
            return None
        window = config.get("quota_duration")
        wait = float(window) if isinstance(window, int | float) and window > 0 \
            else DELETE_QUOTA_WINDOW
        return TransientPublishError(
            f"{self.channel}: Threads allows {total} deletes per profile in {wait / 3600:.0f} "
            f"hours and profile {self.node} has used {used}; post {remote_id} stays up until "
            f"a delete frees up (when the oldest leaves the window, at the latest in "
            f"{wait / 3600:.0f} hours): the recall waits (Threads said: "
            f"{refusal.network_message or refusal})", channel=self.channel,
            status_code=refusal.status_code, network_message=refusal.network_message,
            retry_after=wait)


__all__ = ["ThreadsPublisher"]
