"""Telegram Bot API stand-in: ``/bot<token>/getMe|getChat|getChatMember|sendMessage|
sendPhoto|sendMediaGroup|deleteMessage``.

The bot is an administrator allowed to post in every channel except those
:attr:`StandinConfig.telegram_bot_membership` names: there ``getChatMember`` tells it
(``can_post_messages`` false, or status ``left``) and a send is refused as Telegram
refuses it.

Parameters may come as JSON, url-encoded or multipart form, as the Bot API allows.

``deleteMessage`` deletes one message the stand-in sent (every photo of an album is a
message of its own): ``{"ok": true, "result": true}``; a message it does not know or
deleted already answers ``Bad Request: message to delete not found``, one sent more than
:data:`DELETE_WINDOW` seconds ago ``Bad Request: message can't be deleted`` (the Bot API
server's words). The recorded post is marked deleted (``Recorder.delete_post``) once none
of its messages is shown.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsroom.standins._http import Payload, Upload, json_response, payload_of
from newsroom.standins.config import StandinConfig
from newsroom.standins.recorder import FaultRule, Recorder

NETWORK = "telegram"
# "A message can only be deleted if it was sent less than 48 hours ago"
# (core.telegram.org/bots/api#deletemessage). Read at each deletion: a test may shorten it.
DELETE_WINDOW = 48 * 3600.0
_BOT = {"id": 123456789, "is_bot": True, "first_name": "Darmstadt Newsroom",
        "username": "darmstadt_newsroom_bot", "can_join_groups": False}


def _error(code: int, description: str, **parameters: Any) -> Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return json_response(body, code)


def fault_response(rule: FaultRule) -> Response:
    if rule.kind == "429":
        seconds = math.ceil(rule.retry_after)
        return _error(429, f"Too Many Requests: retry after {seconds}", retry_after=seconds)
    if rule.kind == "401":
        return _error(401, "Unauthorized")
    return _error(500, "Internal Server Error")


def _photo_sizes(upload: Upload | None, reference: str | None) -> list[dict[str, Any]]:
    seed = upload.data if upload else (reference or "").encode()
    file_id = "AgAC" + hashlib.sha256(seed).hexdigest()[:40]
    return [{"file_id": file_id, "file_unique_id": file_id[-12:], "width": 1280,
             "height": 720, "file_size": len(upload.data) if upload else None}]


def build(recorder: Recorder, config: StandinConfig) -> Starlette:
    message_ids: dict[str, itertools.count] = {}
    # (chat, message id) -> (the recorded post's id, when it was sent) of every message
    # still shown; an album's messages all name its post (recorded under its first id).
    shown: dict[tuple[str, int], tuple[str, float]] = {}

    def reset() -> None:
        message_ids.clear()
        shown.clear()

    recorder.on_reset(reset)

    def chat(chat_id: str) -> dict[str, Any]:
        username = chat_id[1:] if chat_id.startswith("@") else None
        chat_number = (-1000000000000 - int(hashlib.sha256(chat_id.encode()).hexdigest()[:8],
                                             16) % 10**9)
        return {"id": chat_number, "title": "Wissenschaftsstadt Darmstadt",
                **({"username": username} if username else {}), "type": "channel"}

    def next_message(chat_id: str, **content: Any) -> dict[str, Any]:
        counter = message_ids.setdefault(chat_id, itertools.count(1))
        return {"message_id": next(counter), "sender_chat": chat(chat_id),
                "chat": chat(chat_id), "date": int(time.time()), **content}

    def param(payload: Payload, name: str) -> Any:
        value = payload.get(name)
        return value if value is not None else None

    def options(payload: Payload, name: str) -> Any:
        value = param(payload, name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return None
        return value

    def photo_of(payload: Payload, reference: Any) -> tuple[Upload | None, str | None]:
        if isinstance(reference, str) and reference.startswith("attach://"):
            return payload.files.get(reference.removeprefix("attach://")), None
        if isinstance(reference, str) and reference:
            return None, reference
        return payload.files.get("photo"), None

    def send_message(payload: Payload) -> Response:
        chat_id, text = str(param(payload, "chat_id") or ""), param(payload, "text") or ""
        if not chat_id:
            return _error(400, "Bad Request: chat_id is empty")
        if not text.strip():
            return _error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return _error(400, "Bad Request: message is too long")
        preview = options(payload, "link_preview_options")
        message = next_message(chat_id, text=text,
                               **({"link_preview_options": preview} if preview else {}))
        record(chat_id, message, text, [], preview)
        remember_shown(chat_id, [message])
        return json_response({"ok": True, "result": message})

    def send_photo(payload: Payload) -> Response:
        chat_id, caption = str(param(payload, "chat_id") or ""), param(payload, "caption") or ""
        if not chat_id:
            return _error(400, "Bad Request: chat_id is empty")
        upload, reference = photo_of(payload, param(payload, "photo"))
        if upload is None and reference is None:
            return _error(400, "Bad Request: there is no photo in the request")
        if len(caption) > 1024:
            return _error(400, "Bad Request: message caption is too long")
        message = next_message(chat_id, photo=_photo_sizes(upload, reference),
                               **({"caption": caption} if caption else {}))
        record(chat_id, message, caption, [describe(upload, reference)], None)
        remember_shown(chat_id, [message])
        return json_response({"ok": True, "result": message})

    def send_media_group(payload: Payload) -> Response:
        chat_id = str(param(payload, "chat_id") or "")
        media = options(payload, "media")
        if not chat_id:
            return _error(400, "Bad Request: chat_id is empty")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            return _error(400, "Bad Request: wrong number of media items: must be 2-10")
        messages, described, caption = [], [], ""
        for item in media:
            upload, reference = photo_of(payload, item.get("media"))
            if upload is None and reference is None:
                return _error(400, "Bad Request: wrong file identifier/HTTP URL specified")
            caption = caption or item.get("caption", "")
            described.append(describe(upload, reference))
            messages.append(next_message(chat_id, photo=_photo_sizes(upload, reference),
                                         media_group_id=str(id(media)),
                                         **({"caption": item["caption"]}
                                            if item.get("caption") else {})))
        record(chat_id, messages[0], caption, described, None)
        remember_shown(chat_id, messages)
        return json_response({"ok": True, "result": messages})

    def describe(upload: Upload | None, reference: str | None) -> dict[str, Any]:
        return upload.describe() if upload else {"reference": reference}

    def record(chat_id: str, message: dict[str, Any], text: str, media: list, preview: Any
               ) -> None:
        username = message["chat"].get("username")
        url = f"https://t.me/{username}/{message['message_id']}" if username else None
        recorder.add_post(NETWORK, id=str(message["message_id"]), url=url, chat_id=chat_id,
                          text=text, media=media, link_preview_options=preview)

    def remember_shown(chat_id: str, messages: list[dict[str, Any]]) -> None:
        post_id = str(messages[0]["message_id"])
        for message in messages:
            shown[(chat_id, message["message_id"])] = (post_id, float(message["date"]))

    def delete_message(payload: Payload) -> Response:
        chat_id = str(param(payload, "chat_id") or "")
        raw_id = param(payload, "message_id")
        if not chat_id:
            return _error(400, "Bad Request: chat_id is empty")
        try:
            message_id = int(raw_id)
        except (TypeError, ValueError):
            return _error(400, "Bad Request: message identifier is not specified")
        found = shown.get((chat_id, message_id))
        if found is None:
            return _error(400, "Bad Request: message to delete not found")
        post_id, sent_at = found
        if time.time() - sent_at >= DELETE_WINDOW:
            return _error(400, "Bad Request: message can't be deleted")
        del shown[(chat_id, message_id)]
        if not any(post == post_id for (chat, _), (post, _) in shown.items()
                   if chat == chat_id):
            recorder.delete_post(NETWORK, lambda p: p.get("chat_id") == chat_id
                                 and p.get("id") == post_id)
        return json_response({"ok": True, "result": True})

    def membership(chat_id: str) -> str:
        return config.telegram_bot_membership.get(chat_id, "administrator")

    def get_chat(payload: Payload) -> Response:
        chat_id = str(param(payload, "chat_id") or "")
        if not chat_id:
            return _error(400, "Bad Request: chat_id is empty")
        # ChatFullInfo of a channel (a public one: the bot may read it without being in it)
        return json_response({"ok": True, "result": {**chat(chat_id), "accent_color_id": 0,
                                                      "max_reaction_count": 11}})

    def get_chat_member(payload: Payload) -> Response:
        chat_id = str(param(payload, "chat_id") or "")
        user_id = param(payload, "user_id")
        if not chat_id or user_id is None:
            return _error(400, "Bad Request: chat_id is empty" if not chat_id
                          else "Bad Request: user_id is empty")
        if str(user_id) != str(_BOT["id"]):
            return _error(400, "Bad Request: member list is inaccessible")
        kind = membership(chat_id)
        if kind == "not-a-member":
            return json_response({"ok": True, "result": {"status": "left", "user": _BOT}})
        rights = {"can_be_edited": False, "is_anonymous": False, "can_manage_chat": True,
                  "can_delete_messages": True, "can_manage_video_chats": False,
                  "can_restrict_members": False, "can_promote_members": False,
                  "can_change_info": False, "can_invite_users": False,
                  "can_post_stories": False, "can_edit_stories": False,
                  "can_delete_stories": False, "can_post_messages": kind != "no-post-right",
                  "can_edit_messages": kind != "no-post-right"}
        return json_response({"ok": True, "result": {"status": "administrator", "user": _BOT,
                                                      **rights}})

    def may_post(chat_id: str) -> Response | None:
        """What Telegram answers a bot that may not post in the channel."""
        kind = membership(chat_id)
        if kind == "not-a-member":
            return _error(403, "Forbidden: bot is not a member of the channel chat")
        if kind == "no-post-right":
            return _error(400, "Bad Request: need administrator rights in the channel chat")
        return None

    def sending(handler):
        def send(payload: Payload) -> Response:
            chat_id = str(param(payload, "chat_id") or "")
            return (may_post(chat_id) if chat_id else None) or handler(payload)
        return send

    methods = {"sendMessage": sending(send_message), "sendPhoto": sending(send_photo),
               "sendMediaGroup": sending(send_media_group),
               "deleteMessage": sending(delete_message), "getChat": get_chat,
               "getChatMember": get_chat_member}

    async def handle(request: Request) -> Response:
        if request.path_params["token"] not in config.telegram_bot_tokens:
            return _error(401, "Unauthorized")
        method = request.path_params["method"]
        if method == "getMe":
            return json_response({"ok": True, "result": _BOT})
        handler = methods.get(method)
        if handler is None:
            return _error(404, "Not Found: method not found")
        payload = await payload_of(request)
        if payload.kind == "empty" and request.query_params:
            payload = Payload(kind="form", fields={k: request.query_params.getlist(k)
                                                    for k in request.query_params})
        return handler(payload)

    return Starlette(routes=[
        Route("/bot{token}/{method}", handle, methods=["GET", "POST"]),
    ])
