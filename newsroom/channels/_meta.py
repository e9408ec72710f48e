"""What Facebook, Instagram and Threads share: Meta's Graph API conventions.

POSTs carry ``access_token`` as a form field (never in the URL, where logs would keep it);
GETs send it as a Bearer header. Errors come as
``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`` and are mapped
by :func:`newsroom.channels.responses.map_error` (codes 1/2/4/17/32/613 transient, 190
permanent).

The Instagram and Threads flows are two steps: create a media container, then publish
it. Only the publish step creates the post, so only its lost answer is ambiguous.

Facebook and Instagram call :data:`GRAPH_API_VERSION` of graph.facebook.com unless the
account's ``base_url`` names another; Threads has its own API, graph.threads.net/v1.0.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar
from urllib.parse import urlsplit

from newsroom.channels.base import AccountCheck, Publisher
from newsroom.errors import (
    CredentialRefused,
    PermanentPublishError,
    PublishError,
    TransientPublishError,
)
from newsroom.posts import MediaItem

# Released 18 February 2026, available until 29 July 2028 (Graph API changelog, versions).
# v21.0, called before, is available only until 21 January 2027.
GRAPH_API_VERSION = "v25.0"


class GraphPublisher(Publisher):
    """Base of the three Meta publishers. Not registered for any channel type itself."""

    idempotent_retries: ClassVar[bool] = False
    default_base_url: ClassVar[str] = f"https://graph.facebook.com/{GRAPH_API_VERSION}"
    container_poll_interval: float = 1.0
    container_poll_attempts: int = 30
    # The field that reports a container's processing state: Instagram `status_code`,
    # Threads `status`.
    status_field: ClassVar[str] = "status_code"
    identity_fields: ClassVar[str] = "id,name"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not self.account.account_id:
            raise PermanentPublishError(
                f"{self.channel}: set the account's account_id to the "
                f"{self.channel_type} id (a number)", channel=self.channel)
        self.node = self.account.account_id

    async def _post(self, path: str, data: dict[str, Any], *, creates_post: bool = False,
                    files: dict[str, Any] | None = None) -> dict[str, Any]:
        form = {key: value for key, value in data.items() if value is not None}
        form["access_token"] = self._secret()
        response = await self._request("POST", f"{self.base_url}/{path}", data=form,
                                       files=files, creates_post=creates_post)
        return response.json()

    async def _get(self, path: str, **params: str) -> dict[str, Any]:
        response = await self._request("GET", f"{self.base_url}/{path}", params=params,
                                       headers={"Authorization": f"Bearer {self._secret()}"})
        return response.json()

    async def _permalink(self, media_id: str) -> str | None:
        """Best effort: the post exists already, so a failure here must not raise."""
        try:
            return (await self._get(media_id, fields="permalink")).get("permalink")
        except PublishError:
            return None

    async def _wait_for_container(self, container_id: str) -> None:
        for _ in range(self.container_poll_attempts):
            state = await self._get(container_id, fields=self.status_field)
            status = state.get(self.status_field, "FINISHED")
            if status in ("FINISHED", "PUBLISHED"):
                return
            if status in ("ERROR", "EXPIRED"):
                raise PermanentPublishError(
                    f"{self.channel}: the network could not process the media "
                    f"({status}: {state.get('error_message', '')}); check the image",
                    channel=self.channel)
            await asyncio.sleep(self.container_poll_interval)
        raise TransientPublishError(
            f"{self.channel}: the media container is still processing; try again later",
            channel=self.channel)

    def _public_url(self, item: MediaItem) -> str:
        if urlsplit(item.source).scheme != "https" and urlsplit(item.source).scheme != "http":
            raise PermanentPublishError(
                f"{self.channel}: {self.channel_type} fetches images itself and needs a public "
                f"URL, not {item.source!r}: give the image as `url:` in the campaign",
                channel=self.channel)
        return item.source

    # The permissions publishing needs, for the check's message (Instagram, Threads: what
    # their publishing-limit edge also needs), and that edge ("" for Facebook, which has
    # none: it reads the token's scopes from debug_token instead).
    publish_permissions: ClassVar[tuple[str, ...]] = ()
    publishing_limit_edge: ClassVar[str] = ""

    async def _check(self) -> AccountCheck:
        """The account (``GET /{id}``) the token can read, then whether it may publish
        there (:meth:`_publishing`). See docs/CHANNELS.md, "Credential check"."""
        data = await self._get(self.node, fields=self.identity_fields)
        identity = str(data.get("username") or data.get("name") or self.node)
        problem, detail = await self._publishing()
        if problem:
            return AccountCheck(
                channel=self.channel, ok=False, identity=identity, message=problem, raw=data,
                fix=f"create a token with the permissions {', '.join(self.publish_permissions)} "
                    f"for {self.channel_type} account {self.node}")
        return AccountCheck(channel=self.channel, ok=True, identity=identity, raw=data,
                            details=(detail,) if detail else ())

    async def _publishing(self) -> tuple[str, str]:
        """(what forbids publishing, "" if nothing; what was found). Instagram and Threads:
        the account's publishing limit, an edge that needs the permission to publish and
        says how many posts the last 24 hours used."""
        try:
            data = await self._get(f"{self.node}/{self.publishing_limit_edge}",
                                   fields="quota_usage,config")
        except CredentialRefused as exc:
            return (f"the token may not publish for {self.node}: {exc.network_message}", "")
        usage = (data.get("data") or [{}])[0]
        total = (usage.get("config") or {}).get("quota_total")
        return "", (f"may publish: {usage.get('quota_usage', 0)} of {total} posts of the "
                    "last 24 hours used")
