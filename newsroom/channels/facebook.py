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
from newsroom.errors import PermanentPublishError
from newsroom.posts import RenderedPost

MAX_MESSAGE = 63_206
POST_PERMISSION = "pages_manage_posts"


class FacebookPublisher(GraphPublisher):
    channel_type: ClassVar[ChannelType] = ChannelType.FACEBOOK
    # A Page post (/feed, /photos) needs a Page token with pages_manage_posts (the Page
    # Feed reference also lists pages_read_engagement).
    publish_permissions: ClassVar[tuple[str, ...]] = (
        "pages_manage_posts", "pages_read_engagement")

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

    async def _publishing(self) -> tuple[str, str]:
        """The token's permissions from ``GET /debug_token`` (``scopes``; a permission
        granted for some Pages only lists them in ``granular_scopes[].target_ids``); a
        Page token (``type: PAGE``) names its Page in ``profile_id``."""
        try:
            data = (await self._get("debug_token", input_token=self._secret())).get("data") or {}
        except PermanentPublishError as exc:  # Meta may want an app token here
            return "", f"permissions not read (debug_token: {exc.network_message or exc})"
        if data.get("is_valid") is False:
            said = (data.get("error") or {}).get("message") or "the token is not valid"
            return f"debug_token says: {said}", ""
        page = str(data.get("profile_id") or "")
        if data.get("type") == "PAGE" and page and page != self.node:
            return f"the token is the Page token of Page {page}, not of Page {self.node}", ""
        scopes = [str(s) for s in data.get("scopes") or []]
        if POST_PERMISSION not in scopes:
            return (f"the token lacks the permission {POST_PERMISSION} (it has "
                    f"{', '.join(scopes) or 'none'})", "")
        for grant in data.get("granular_scopes") or []:
            targets = [str(t) for t in grant.get("target_ids") or []]
            if grant.get("scope") == POST_PERMISSION and targets and self.node not in targets:
                return (f"the token has {POST_PERMISSION} only for Pages {', '.join(targets)}, "
                        f"not for Page {self.node}", "")
        return "", f"{data.get('type', 'token').lower()} token with {POST_PERMISSION}"
