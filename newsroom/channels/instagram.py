"""Instagram (professional account via the Graph API): an image is required.

``POST /{ig-user-id}/media`` (``image_url``, ``caption``, ``alt_text``) makes a container;
``POST /{ig-user-id}/media_publish`` (``creation_id``) publishes it. Several images make a
carousel. Instagram fetches the image from its public URL itself; when the approved
SHA-256 is known the publisher fetches it first to make sure it is still that image.
Instagram does not deduplicate: ``idempotent_retries = False``.

Length: a caption has at most 2,200 characters and 30 hashtags (Graph API, IG User Media:
"Maximum 2200 characters, 30 hashtags, and 20 @ tags"); characters are counted in UTF-16
code units, never fewer than Instagram counts.
"""

from __future__ import annotations

from typing import ClassVar

from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels._meta import GraphPublisher
from newsroom.channels._text import Measurement, characters, find_hashtags, utf16_units
from newsroom.channels.base import PublishResult
from newsroom.errors import PermanentPublishError
from newsroom.posts import RenderedPost

MAX_CAPTION = 2200
MAX_HASHTAGS = 30
MAX_CAROUSEL = 10


class InstagramPublisher(GraphPublisher):
    channel_type: ClassVar[ChannelType] = ChannelType.INSTAGRAM
    status_field: ClassVar[str] = "status_code"
    identity_fields: ClassVar[str] = "id,username"
    requires_image: ClassVar[bool] = True
    # IG User Content Publishing Limit: "instagram_basic, instagram_content_publish" (and,
    # through Facebook Login, pages_read_engagement).
    publish_permissions: ClassVar[tuple[str, ...]] = (
        "instagram_basic", "instagram_content_publish", "pages_read_engagement")
    publishing_limit_edge: ClassVar[str] = "content_publishing_limit"

    @classmethod
    def measure(cls, text: str, account: ChannelAccount, *, has_image: bool = False
                ) -> list[Measurement]:
        return [characters(utf16_units(text), MAX_CAPTION),
                Measurement(len(find_hashtags(text)), MAX_HASHTAGS, "hashtags", "Hashtags")]

    async def publish(self, post: RenderedPost, *, idempotency_key: str) -> PublishResult:
        self._check_post(post)
        problem = None
        if not post.media:
            problem = "Instagram needs an image: add one to the campaign"
        elif len(post.media) > MAX_CAROUSEL:
            problem = f"Instagram shows at most {MAX_CAROUSEL} images per post"
        if problem:
            raise PermanentPublishError(f"{self.channel}: {problem}", channel=self.channel)
        urls = [self._public_url(item) for item in post.media]
        for item in post.media:
            if item.sha256:
                await self.load_media(item)  # raises if the image changed since approval

        if len(urls) == 1:
            container = await self._post(f"{self.node}/media", {
                "image_url": urls[0], "caption": post.text, "alt_text": post.media[0].alt})
        else:
            children = []
            for url, item in zip(urls, post.media, strict=True):
                child = await self._post(f"{self.node}/media", {
                    "image_url": url, "is_carousel_item": "true", "alt_text": item.alt})
                children.append(str(child["id"]))
            container = await self._post(f"{self.node}/media", {
                "media_type": "CAROUSEL", "children": ",".join(children),
                "caption": post.text})
        container_id = str(container["id"])
        await self._wait_for_container(container_id)
        published = await self._post(f"{self.node}/media_publish",
                                     {"creation_id": container_id}, creates_post=True)
        media_id = str(published["id"])
        return PublishResult(remote_id=media_id, url=await self._permalink(media_id),
                             raw={**published, "container_id": container_id})


__all__ = ["InstagramPublisher"]
