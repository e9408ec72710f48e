"""Threads: ``POST /{threads-user-id}/threads`` (``media_type`` TEXT or IMAGE, ``text``,
``image_url``, ``alt_text``) makes a container, ``/threads_publish`` publishes it.
Several images make a carousel. Before ``threads_publish`` the publisher waits until the
container's ``status`` is FINISHED, for text posts too (the Posts guide recommends waiting
before publishing any container; the status is how to know). Threads does not deduplicate:
``idempotent_retries = False``; a profile may publish 250 posts in 24 hours.

Length: "Text posts are limited to 500 characters. Emojis are counted as the number of UTF-8
bytes" (developers.facebook.com/documentation/threads/posts):
:func:`newsroom.channels._text.threads_length`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels._meta import GraphPublisher
from newsroom.channels._text import Measurement, threads_length
from newsroom.channels.base import PublishResult
from newsroom.errors import PermanentPublishError
from newsroom.posts import RenderedPost

MAX_TEXT = 500
MAX_CAROUSEL = 20


class ThreadsPublisher(GraphPublisher):
    channel_type: ClassVar[ChannelType] = ChannelType.THREADS
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


__all__ = ["ThreadsPublisher"]
