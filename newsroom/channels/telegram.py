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
        """The bot (``getMe``), the channel (``getChat``) and the bot's membership in it
        (``getChatMember``): in a channel only an administrator with
        ``can_post_messages`` (or its creator) may post; in a group any member who is not
        restricted from sending. See docs/CHANNELS.md, "Credential check"."""
        bot = (await self._request("POST", self._method("getMe"))).json()["result"]
        identity = f"@{bot.get('username', '')}"
        try:
            chat = (await self._request("POST", self._method("getChat"),
                                        json={"chat_id": self.chat_id})).json()["result"]
            member = (await self._request(
                "POST", self._method("getChatMember"),
                json={"chat_id": self.chat_id, "user_id": bot["id"]})).json()["result"]
        except PermanentPublishError as exc:  # getMe took the token: this is the chat
            return AccountCheck(
                channel=self.channel, ok=False, identity=identity, about_credential=False,
                message=f"Telegram does not show the bot chat {self.chat_id}: "
                        f"{exc.network_message or exc}",
                fix="check account_id (the channel's @name or numeric id) in "
                    "registry/channels.yaml and make the bot an administrator of the channel "
                    "with the right to post messages")
        where = f"{chat.get('type', 'chat')} {self.chat_id}"
        status = str(member.get("status", ""))
        if chat.get("type") == "channel":
            may_post = status == "creator" or (status == "administrator"
                                               and member.get("can_post_messages") is True)
        else:
            may_post = status in ("creator", "administrator", "member") or (
                status == "restricted" and member.get("can_send_messages") is True)
        if not may_post:
            right = ("is an administrator without the right to post messages "
                     "(can_post_messages false)" if status == "administrator"
                     else f"is not an administrator (status {status or 'unknown'})")
            return AccountCheck(
                channel=self.channel, ok=False, identity=identity, about_credential=False,
                message=f"the bot {identity} {right} in {where}",
                fix="make the bot an administrator of the channel with the right to post "
                    "messages (channel → Administrators)", raw={"bot": bot, "member": member})
        return AccountCheck(channel=self.channel, ok=True, identity=identity,
                            details=(f"{status} of {where}"
                                     + (" (may post messages)" if status == "administrator"
                                        else ""),),
                            raw={"bot": bot, "chat": chat, "member": member})
