"""Telegram channels via the Bot API: ``sendMessage``, ``sendPhoto``, ``sendMediaGroup``;
a recall with ``deleteMessage``.

The bot token is part of every URL (``/bot<token>/method``): errors are redacted and the
``httpx`` logger's request lines are masked (see :mod:`newsroom.channels.base`). A 429
says how long to wait in ``parameters.retry_after``. Telegram has no alt text for photos
and does not deduplicate messages: ``idempotent_retries = False``.

Length: "1-4096 characters after entities parsing" for ``sendMessage`` and "0-1024
characters" for a caption (core.telegram.org/bots/api#sendmessage, #sendphoto); Telegram
counts text in UTF-16 code units (core.telegram.org/api/entities), so an emoji counts 2.

An album (``sendMediaGroup``) is one message per photo: its ``remote_id`` lists them all,
comma-separated (``"101,102,103"``; the first is the one the URL shows), so that a recall
deletes every photo, not the first alone.

Recall (core.telegram.org/bots/api#deletemessage): ``deleteMessage`` with the channel and
each message id answers ``{"ok": true, "result": true}``. "A message can only be deleted if
it was sent less than 48 hours ago"; in a channel a bot with ``can_post_messages`` may
delete its own (outgoing) messages, one with ``can_delete_messages`` any message. The
bot that posted needs no more rights than posting gave it. Answers:

- ``Bad Request: message to delete not found`` (the Bot API server's words for a message
  id it does not find: deleted already, by hand or by an earlier attempt) is
  ``already_gone``;
- ``Bad Request: message can't be deleted`` (older than 48 hours, or the bot lost its
  right to post) is ``manual``: the network will not do it, a channel administrator can
  (Telegram's apps let a channel's administrators delete its posts at any age), so the
  recall asks a person to instead of failing — retrying would never help;
- everything else as for publishing (:func:`~newsroom.channels.responses.map_error`): a
  429 waits ``parameters.retry_after``, 401/403 is :class:`CredentialRefused`; a lost
  answer is transient, since deleting again is harmless (it then answers "not found").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels._text import Measurement, utf16_units
from newsroom.channels.base import AccountCheck, Publisher, PublishResult, WithdrawResult
from newsroom.errors import CredentialRefused, PermanentPublishError
from newsroom.posts import RenderedPost

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_GROUP = 10
# The Bot API server's descriptions (telegram-bot-api's Client.cpp: check_message with
# "message to delete"; MESSAGE_DELETE_FORBIDDEN), lower-cased, after "Bad Request: ".
_NOT_FOUND = ("message to delete not found", "message not found")
_CANNOT_DELETE = "message can't be deleted"  # also "... for everyone"


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
        messages = result if isinstance(result, list) else [result]
        message_id = str(messages[0]["message_id"])
        username = (messages[0].get("chat") or {}).get("username")
        return PublishResult(
            remote_id=",".join(str(m["message_id"]) for m in messages),
            url=f"https://t.me/{username}/{message_id}" if username else None,
            raw=response.json(),
        )

    async def withdraw(self, remote_id: str, *, remote_url: str | None,
                       idempotency_key: str, original: Mapping[str, Any] | None = None
                       ) -> WithdrawResult:
        """Delete the message (every message of an album) with ``deleteMessage``; see the
        module's docstring for what its answers mean. ``gone`` once none is shown any
        more, ``already_gone`` when none was there to delete; ``manual`` if Telegram
        refuses to delete one (``detail`` says which and what a person must do)."""
        ids = self._message_ids(remote_id, remote_url)
        deleted, missing, refused = [], [], []
        for message_id in ids:
            try:
                response = await self._request(
                    "POST", self._method("deleteMessage"),
                    json={"chat_id": self.chat_id, "message_id": message_id},
                    creates_post=False)
            except CredentialRefused:
                raise
            except PermanentPublishError as exc:
                said = (exc.network_message or "").lower().removeprefix("bad request: ")
                if exc.status_code == 400 and said.startswith(_NOT_FOUND):
                    missing.append(message_id)
                    continue
                if exc.status_code == 400 and said.startswith(_CANNOT_DELETE):
                    refused.append((message_id, exc.network_message or ""))
                    continue
                raise
            body = response.json() if response.content else {}
            if not (isinstance(body, dict) and body.get("ok") is True):
                raise PermanentPublishError(
                    f"{self.channel}: deleteMessage answered without ok: {str(body)[:200]}",
                    channel=self.channel)
            deleted.append(message_id)
        raw = {"deleted": deleted, "not_found": missing,
               "refused": [message_id for message_id, _ in refused]}
        if refused:
            which = ", ".join(str(message_id) for message_id, _ in refused)
            link = f" ({remote_url})" if remote_url else ""
            return WithdrawResult(
                gone=False, manual=True, raw=raw,
                detail=f"Telegram refused to delete message {which} in {self.chat_id}{link}: "
                       f"{refused[0][1]} (a bot may delete its messages only within 48 hours "
                       "of sending, and only while it may post in the channel); an "
                       f"administrator of {self.chat_id} must delete it by hand in the "
                       "channel (Telegram app: the message → Delete)")
        if not deleted:
            return WithdrawResult(gone=True, already_gone=True, raw=raw,
                                  detail=f"message {remote_id} was not in {self.chat_id} "
                                         "any more (deleted already)")
        return WithdrawResult(gone=True, raw=raw,
                              detail=f"deleted message {', '.join(map(str, deleted))} in "
                                     f"{self.chat_id}")

    def _message_ids(self, remote_id: str, remote_url: str | None) -> list[int]:
        """The message ids ``publish`` returned (an album's comma-separated), else the one
        in a ``https://t.me/<channel>/<id>`` URL (a publication resolved by hand)."""
        text = (remote_id or "").strip()
        if not text and remote_url:
            text = urlsplit(remote_url).path.rstrip("/").rpartition("/")[2]
        try:
            ids = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            ids = []
        if not ids or any(message_id <= 0 for message_id in ids):
            raise PermanentPublishError(
                f"{self.channel}: cannot tell the Telegram message from remote id "
                f"{remote_id!r} (URL {remote_url!r}); delete it by hand in {self.chat_id}",
                channel=self.channel)
        return ids

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
