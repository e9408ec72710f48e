"""Facebook Pages: ``POST /{page-id}/feed`` for text (and a link preview), ``/photos`` for
images (uploaded as bytes, so the approved file is what appears, with ``alt_text_custom``).

Several images: each is uploaded unpublished, then one feed post attaches them.
Facebook does not deduplicate posts: ``idempotent_retries = False``.

Length: 63,206 characters per post (Facebook's own limit; no unit named): counted in
UTF-16 code units, never fewer than Facebook counts.

Recall: ``DELETE /{page-post-id}`` with the Page token (``pages_manage_posts``) answers
``{"success": true}`` (Graph API reference, Page Post, "Deleting":
https://developers.facebook.com/docs/graph-api/reference/page-post/; Pages API guide,
https://developers.facebook.com/docs/pages-api/posts). A post that is not there answers
Graph error 100, subcode 33, "Object with ID … does not exist, cannot be loaded due to
missing permissions, or does not support this operation": one message for three causes,
so a read of the post settles it (not readable either: gone). :class:`GraphWithdrawal` is
what Instagram and Threads share of this (their media answer so too).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels._meta import GraphPublisher
from newsroom.channels._text import Measurement, characters, utf16_units
from newsroom.channels.base import MediaFile, PublishResult, WithdrawResult
from newsroom.errors import (
    CredentialRefused,
    PermanentPublishError,
    PublishError,
    TransientPublishError,
)
from newsroom.posts import RenderedPost

MAX_MESSAGE = 63_206
POST_PERMISSION = "pages_manage_posts"

# Graph's answer to an object it cannot find, for a DELETE as for a GET: code 100 with
# subcode 33 ("Unsupported delete request. Object with ID '…' does not exist, cannot be
# loaded due to missing permissions, or does not support this operation").
GRAPH_NO_SUCH_OBJECT = (100, 33)
# Instagram's answer to deleting media its delete call does not support (IG Media
# reference, "Deleting", example "Failure, Media Type Not Supported": code -1, which
# would otherwise read as "Instagram server error, try again").
GRAPH_DELETE_NOT_SUPPORTED = (-1, 2207073)


class GraphObjectMissing(PermanentPublishError):
    """Graph error 100/33 to a request: the object does not exist, cannot be loaded due
    to missing permissions, or does not support the operation."""


class GraphDeleteNotSupported(PermanentPublishError):
    """Graph error -1/2207073 to a DELETE: the network cannot delete this media type."""


def graph_error_code(response: httpx.Response) -> tuple[int | None, int | None]:
    """(code, error_subcode) of a Graph error answer; (None, None) if it is none."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None
    code, subcode = error.get("code"), error.get("error_subcode")
    return (code if isinstance(code, int) else None,
            subcode if isinstance(subcode, int) else None)


class GraphWithdrawal(GraphPublisher):
    """``DELETE /{object-id}``, as Facebook, Instagram and Threads take a post down.

    The token goes as a Bearer header (as for reads: never in the URL). A lost answer is
    transient (``creates_post=False``): deleting again is harmless, and a post deleted by
    the lost request answers "does not exist" the second time. That answer (100/33) is
    checked by reading the object: unreadable too, it is gone; readable, the network
    refused to delete it (a permission, or a post another app made)."""

    # The permission the delete needs, and how the messages name the network, a post
    # and the account.
    delete_permission: ClassVar[str] = ""
    network_label: ClassVar[str] = ""
    post_noun: ClassVar[str] = "post"
    account_noun: ClassVar[str] = "account"

    def _deleted(self, remote_id: str, answer: Mapping[str, Any] | None) -> WithdrawResult:
        """The withdrawal's result for :meth:`_delete`'s answer (None: it was not there)."""
        if answer is None:
            return WithdrawResult(
                gone=True, already_gone=True,
                detail=f"{self.network_label}: {self.post_noun} {remote_id} of "
                       f"{self.account_noun} {self.node} was not there any more (already "
                       "deleted)")
        deleted = answer.get("deleted_id") or remote_id
        return WithdrawResult(
            gone=True, raw=answer,
            detail=f"{self.network_label}: deleted {self.post_noun} {deleted} of "
                   f"{self.account_noun} {self.node}")

    def _error(self, source: httpx.Response | BaseException, *, creates_post: bool
               ) -> PublishError:
        error = super()._error(source, creates_post=creates_post)
        if not isinstance(source, httpx.Response):
            return error
        code = graph_error_code(source)
        kind: type[PermanentPublishError] | None = (
            GraphObjectMissing if code == GRAPH_NO_SUCH_OBJECT
            else GraphDeleteNotSupported if code == GRAPH_DELETE_NOT_SUPPORTED
            else None)
        if kind is None or isinstance(error, CredentialRefused):
            return error
        return kind(str(error), channel=error.channel, status_code=error.status_code,
                    network_message=error.network_message, retry_after=error.retry_after)

    async def _delete(self, object_id: str) -> Mapping[str, Any] | None:
        """Delete ``object_id``: the network's answer, or None if it was not there (any
        more). Raises typed; a refused token names :attr:`delete_permission`."""
        if not object_id:
            raise PermanentPublishError(
                f"{self.channel}: no {self.post_noun} id was recorded for this post, so "
                "there is nothing to delete through the API; a person must delete it",
                channel=self.channel)
        try:
            response = await self._request(
                "DELETE", f"{self.base_url}/{quote(object_id, safe='')}",
                headers={"Authorization": f"Bearer {self._secret()}"}, creates_post=False)
        except GraphObjectMissing as missing:
            await self._confirm_gone(object_id, missing)
            return None
        except CredentialRefused as refused:
            raise CredentialRefused(
                f"{refused}; deleting {self.post_noun} {object_id} needs a token with the "
                f"permission {self.delete_permission} for {self.channel_type} account "
                f"{self.node}",
                channel=self.channel, status_code=refused.status_code,
                network_message=refused.network_message) from refused
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or answer.get("success") is not True:
            raise PermanentPublishError(
                f"{self.channel}: DELETE of {self.post_noun} {object_id} did not answer "
                f"success: {response.text[:200]!r}; look at the account", channel=self.channel,
                status_code=response.status_code)
        return answer

    async def _confirm_gone(self, object_id: str, missing: GraphObjectMissing) -> None:
        """The DELETE answered 100/33; return if ``object_id`` cannot be read either (it is
        gone), raise if it can (still shown) or the read failed otherwise."""
        try:
            await self._get(object_id, fields="id")
        except GraphObjectMissing:
            return
        except TransientPublishError as exc:
            raise TransientPublishError(
                f"{self.channel}: the network said {self.post_noun} {object_id} does not "
                f"exist or may not be deleted ({missing.network_message}), and reading it "
                f"to tell which failed ({exc}); try again later", channel=self.channel,
                status_code=exc.status_code, network_message=exc.network_message,
                retry_after=exc.retry_after) from exc
        except PublishError as exc:
            raise PermanentPublishError(
                f"{self.channel}: cannot tell whether {self.post_noun} {object_id} is gone: "
                f"the DELETE answered {missing.network_message!r}, reading it answered "
                f"{exc.network_message or exc!s}; look at the account", channel=self.channel,
                status_code=missing.status_code,
                network_message=missing.network_message) from exc
        raise PermanentPublishError(
            f"{self.channel}: the network refused to delete {self.post_noun} {object_id}, "
            f"which is still shown ({missing.network_message}): the token may lack "
            f"{self.delete_permission}, or another app made the {self.post_noun}; a person "
            "must delete it", channel=self.channel, status_code=missing.status_code,
            network_message=missing.network_message)


class FacebookPublisher(GraphWithdrawal):
    channel_type: ClassVar[ChannelType] = ChannelType.FACEBOOK
    delete_permission: ClassVar[str] = POST_PERMISSION
    network_label: ClassVar[str] = "Facebook"
    account_noun: ClassVar[str] = "Page"
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

    async def withdraw(self, remote_id: str, *, remote_url: str | None,
                       idempotency_key: str, original: Mapping[str, Any] | None = None
                       ) -> WithdrawResult:
        """``DELETE /{page-post-id}`` (``{"success": true}``); a post that is not there
        any more counts as gone (:meth:`GraphWithdrawal._delete`)."""
        return self._deleted(remote_id, await self._delete(remote_id))

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
