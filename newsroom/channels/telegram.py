"""Telegram channels via the Bot API: ``sendMessage``, ``sendPhoto``, ``sendMediaGroup``.

The bot token is part of every URL (``/bot<token>/method``): errors are redacted and the
``httpx`` logger's request lines are masked (see :mod:`newsroom.channels.base`). A 429
says how long to wait in ``parameters.retry_after``. Telegram has no alt text for photos
and does not deduplicate messages: ``idempotent_retries = False``.

Length: "1-4096 characters after entities parsing" for ``sendMessage`` and "0-1024
characters" for a caption (core.telegram.org/bots/api#sendmessage, #sendphoto); Telegram
counts text in UTF-16 code units (core.telegram.org/api/entities), so an emoji counts 2.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels._text import Measurement, utf16_units
from newsroom.channels.base import AccountCheck, Publisher, PublishResult
from newsroom.errors import PermanentPublishError
from newsroom.posts import RenderedPost

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_GROUP = 10


class TelegramPublisher(Publisher):
    channel_type: ClassVar[ChannelType] = ChannelType.TELEGRAM
    idempotent_retries: ClassVar[bool] = False
    default_base_url: ClassVar[str] = "https://api.telegram.org"

    @classmethod
    def measure(cls, text: str, account: ChannelAccount, *, has_image: bool = False
                ) -> list[Measurement]:
        limit = MAX_CAPTION if has_image else MAX_TEXT
        return [Measurement(utf16_units(text), limit,
                            "characters (UTF-16 units: an emoji counts 2)"
                            + (", in a photo caption" if has_image else ""),
                            "Zeichen (ein Emoji zählt 2)"
                            + (", als Bildunterschrift" if has_image else ""))]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not self.account.account_id:
            raise PermanentPublishError(
                f"{self.channel}: set the account's account_id to the channel "
                "(@name or its numeric chat id)", channel=self.channel)
        self.chat_id = self.account.account_id

    def _method(self, name: str) -> str:
        return f"{self.base_url}/bot{self._secret()}/{name}"

    async def publish(self, post: RenderedPost, *, idempotency_key: str) -> PublishResult:
        self._check_post(post)
        if len(post.media) > MAX_GROUP:
            raise PermanentPublishError(
                f"{self.channel}: Telegram allows {MAX_GROUP} photos per message; this post "
                f"has {len(post.media)}", channel=self.channel)
        media = [await self.load_media(item) for item in post.media]
        if not media:
            preview: dict[str, Any] = (
                {"url": post.link, "prefer_large_media": True} if post.link
                else {"is_disabled": True})
            response = await self._request("POST", self._method("sendMessage"), json={
                "chat_id": self.chat_id, "text": post.text, "link_preview_options": preview,
            }, creates_post=True)
        elif len(media) == 1:
            item = media[0]
            response = await self._request(
                "POST", self._method("sendPhoto"),
                data={"chat_id": self.chat_id, "caption": post.text},
                files={"photo": (item.filename, item.data, item.content_type)},
                creates_post=True)
        else:
            group = [{"type": "photo", "media": f"attach://photo{i}"} for i in range(len(media))]
            group[0]["caption"] = post.text
            response = await self._request(
                "POST", self._method("sendMediaGroup"),
                data={"chat_id": self.chat_id, "media": json.dumps(group)},
                files={f"photo{i}": (m.filename, m.data, m.content_type)
                       for i, m in enumerate(media)},
                creates_post=True)
        result = response.json()["result"]
        message = result[0] if isinstance(result, list) else result
        message_id = str(message["message_id"])
        username = (message.get("chat") or {}).get("username")
        return PublishResult(
            remote_id=message_id,
            url=f"https://t.me/{username}/{message_id}" if username else None,
            raw=response.json(),
        )

    async def _check(self) -> AccountCheck:
        response = await self._request("POST", self._method("getMe"))
        bot = response.json()["result"]
        return AccountCheck(channel=self.channel, ok=True,
                            identity=f"@{bot.get('username', '')}", raw=bot)
