"""Facebook Pages: ``POST /{page-id}/feed`` for text (and a link preview), ``/photos`` for
images (uploaded as bytes, so the approved file is what appears, with ``alt_text_custom``).

Several images: each is uploaded unpublished, then one feed post attaches them.
Facebook does not deduplicate posts: ``idempotent_retries = False``.

Length: 63,206 characters per post (Facebook's own limit; no unit named): counted in
UTF-16 code units, never fewer than Facebook counts.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels._meta import GraphPublisher
from newsroom.channels._text import Measurement, characters, utf16_units
from newsroom.channels.base import MediaFile, PublishResult
from newsroom.posts import RenderedPost

MAX_MESSAGE = 63_206


class FacebookPublisher(GraphPublisher):
    channel_type: ClassVar[ChannelType] = ChannelType.FACEBOOK

    @classmethod
    def measure(cls, text: str, account: ChannelAccount, *, has_image: bool = False
                ) -> list[Measurement]:
        return [characters(utf16_units(text), MAX_MESSAGE)]

    async def publish(self, post: RenderedPost, *, idempotency_key: str) -> PublishResult:
        self._check_post(post)
        media = [await self.load_media(item) for item in post.media]
        if len(media) == 1:
            created = await self._photo(media[0], message=post.text, published=True)
            post_id = str(created.get("post_id") or created["id"])
        else:
            data: dict[str, Any] = {"message": post.text, "link": post.link}
            for index, item in enumerate(media):
                photo = await self._photo(item, message=None, published=False)
                data[f"attached_media[{index}]"] = json.dumps({"media_fbid": photo["id"]})
            created = await self._post(f"{self.node}/feed", data, creates_post=True)
            post_id = str(created["id"])
        return PublishResult(remote_id=post_id, url=f"https://www.facebook.com/{post_id}",
                             raw=created)

    async def _photo(self, media: MediaFile, *, message: str | None, published: bool
                     ) -> dict[str, Any]:
        return await self._post(
            f"{self.node}/photos",
            {"message": message, "alt_text_custom": media.alt,
             "published": "true" if published else "false"},
            files={"source": (media.filename, media.data, media.content_type)},
            creates_post=published,
        )
