"""Instagram (professional account via the Graph API): an image is required.

``POST /{ig-user-id}/media`` (``image_url``, ``caption``, ``alt_text``) makes a container;
``POST /{ig-user-id}/media_publish`` (``creation_id``) publishes it. Several images make a
carousel. Instagram fetches the image from its public URL itself; when the approved
SHA-256 is known the publisher fetches it first to make sure it is still that image.
Instagram does not deduplicate: ``idempotent_retries = False``.

Length: a caption has at most 2,200 characters and 30 hashtags (Graph API, IG User Media:
"Maximum 2200 characters, 30 hashtags, and 20 @ tags"); characters are counted in UTF-16
code units, never fewer than Instagram counts.

Recall: the IG Media reference documents ``DELETE /<IG_MEDIA_ID>`` for the Instagram API
with Facebook Login only (host graph.facebook.com, a Facebook User access token with
``instagram_basic`` and ``instagram_manage_contents``), answering ``{"success": true,
"deleted_id": …}``: "Non-ad posts, Stories, Reels and entire carousel albums are
supported"; media it cannot delete answers code -1, subcode 2207073 "Media Type Not
Supported" (https://developers.facebook.com/documentation/instagram-platform/reference/instagram-media#delete).
The Instagram API with Instagram Login (graph.instagram.com) has no delete: there, and for
media the API refuses, the recall answers ``manual`` and names the account a person must
delete the post from, in the Instagram app.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels._text import Measurement, characters, find_hashtags, utf16_units
from newsroom.channels.base import PublishResult, WithdrawResult
from newsroom.channels.facebook import GraphDeleteNotSupported, GraphWithdrawal
from newsroom.errors import PermanentPublishError
from newsroom.posts import RenderedPost

MAX_CAPTION = 2200
MAX_HASHTAGS = 30
MAX_CAROUSEL = 10
DELETE_PERMISSION = "instagram_manage_contents"
# The Instagram API with Instagram Login, which cannot delete media.
INSTAGRAM_LOGIN_HOST = "graph.instagram.com"


class InstagramPublisher(GraphWithdrawal):
    channel_type: ClassVar[ChannelType] = ChannelType.INSTAGRAM
    delete_permission: ClassVar[str] = (
        f"{DELETE_PERMISSION} (and instagram_basic; a Facebook User access token of the "
        "Instagram API with Facebook Login)")
    post_noun: ClassVar[str] = "media"
    network_label: ClassVar[str] = "Instagram"
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

    async def withdraw(self, remote_id: str, *, remote_url: str | None,
                       idempotency_key: str, original: Mapping[str, Any] | None = None
                       ) -> WithdrawResult:
        """``DELETE /<IG_MEDIA_ID>`` through the Instagram API with Facebook Login; not
        there any more counts as gone. Through Instagram Login, or for media the API does
        not delete, a person must (``manual``, :meth:`_by_hand`)."""
        if urlsplit(self.base_url).hostname == INSTAGRAM_LOGIN_HOST:
            return self._by_hand(
                remote_id, remote_url,
                "the account is connected through the Instagram API with Instagram Login "
                f"({INSTAGRAM_LOGIN_HOST}), which cannot delete posts")
        try:
            answer = await self._delete(remote_id)
        except GraphDeleteNotSupported as refused:
            return self._by_hand(
                remote_id, remote_url,
                f"Instagram refuses to delete this kind of media through its API "
                f"({refused.network_message or 'Media Type Not Supported'}; only non-ad "
                "posts, Stories, Reels and whole carousel albums can be)")
        return self._deleted(remote_id, answer)

    def _by_hand(self, remote_id: str, remote_url: str | None, why: str) -> WithdrawResult:
        where = remote_url or f"the post with media id {remote_id}"
        return WithdrawResult(
            gone=False, manual=True,
            detail=f"Instagram cannot take this post down for Newsroom: {why}. A person who "
                   f"manages the Instagram account {self.account.label} (account id "
                   f"{self.node}) must delete {where} in the Instagram app (the three-dot "
                   "menu above the post, then Delete).")


__all__ = ["InstagramPublisher"]
