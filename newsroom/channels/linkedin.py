"""LinkedIn: organization posts via the versioned REST API (``/rest/posts``).

The post text ("commentary") is in LinkedIn's *little text format*: the characters
``\\ | { } @ [ ] ( ) < > # * _ ~`` are markup and must be escaped with a backslash, or
LinkedIn cuts the text at the first one. Hashtags become ``{hashtag|\\#|tag}`` templates.

Images: ``POST /rest/images?action=initializeUpload``, ``PUT`` the bytes to the returned
upload URL, then name the image URN in ``content.media`` with its ``altText``.

LinkedIn does not deduplicate posts: ``idempotent_retries = False``.

Version: every call sends ``LinkedIn-Version`` (YYYYMM) and ``X-Restli-Protocol-Version:
2.0.0``. LinkedIn serves a version for about a year, then answers ``426
NONEXISTENT_VERSION``; :data:`DEFAULT_VERSION` is one the migrations table lists as active,
and the account's ``api_version`` overrides it (see docs/CHANNELS.md).

Length: 3000 characters of commentary, as LinkedIn's post composer and partner tools
state without naming a unit; we count UTF-16 code units (what LinkedIn's Java and
JavaScript count as a string's length), never fewer than LinkedIn does. The escaping
backslashes of the little text format are not counted (LinkedIn shows the text without them).

Recall: ``DELETE /rest/posts/{url-encoded post URN}`` with the same headers (and Rest.li's
``X-RestLi-Method: DELETE``, which names the method the HTTP verb already says) answers
``204 No Content``. "Post deletions are idempotent": a post deleted before answers 204
too, so a 204 says the post is gone, not that this request removed it; a post LinkedIn
does not know answers 404, which counts as gone (Posts API, "Delete Posts":
https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/posts-api).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels._text import Measurement, characters, find_hashtags, utf16_units
from newsroom.channels.base import (
    AccountCheck,
    MediaFile,
    Publisher,
    PublishResult,
    WithdrawResult,
)
from newsroom.errors import CredentialRefused, PermanentPublishError
from newsroom.posts import RenderedPost

LITTLE_TEXT_RESERVED = frozenset("\\|{}@[]()<>#*_~")
# "426 Upgrade Required" with code NONEXISTENT_VERSION: the LinkedIn-Version was sunset.
VERSION_NOT_SERVED = 426
MAX_COMMENTARY = 3000
# Marketing version August 2026 (learn.microsoft.com/linkedin/marketing, view li-lms-2026-08);
# LinkedIn keeps a version for at least a year. 202411 was sunset on 17 November 2025.
DEFAULT_VERSION = "202608"
# The roles that may post for an organization: "An administrator can post updates"
# (Organization Access Control by Role); a content administrator posts without
# administering the page.
POSTING_ROLES = frozenset({"ADMINISTRATOR", "CONTENT_ADMINISTRATOR"})


def escape_little_text(text: str) -> str:
    """Backslash-escape every reserved character of LinkedIn's little text format."""
    return "".join("\\" + char if char in LITTLE_TEXT_RESERVED else char for char in text)


def to_little_text(text: str) -> str:
    """Commentary for ``text``: everything escaped, hashtags as hashtag templates."""
    parts, position = [], 0
    for span in find_hashtags(text):
        parts.append(escape_little_text(text[position:span.start]))
        parts.append("{hashtag|\\#|" + escape_little_text(span.value) + "}")
        position = span.end
    parts.append(escape_little_text(text[position:]))
    return "".join(parts)


class LinkedInPublisher(Publisher):
    channel_type: ClassVar[ChannelType] = ChannelType.LINKEDIN
    idempotent_retries: ClassVar[bool] = False
    default_base_url: ClassVar[str] = "https://api.linkedin.com"

    @classmethod
    def measure(cls, text: str, account: ChannelAccount, *, has_image: bool = False
                ) -> list[Measurement]:
        return [characters(utf16_units(text), MAX_COMMENTARY)]

    def __init__(self, *args: Any, linkedin_version: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.linkedin_version = (linkedin_version or self.account.api_version
                                 or DEFAULT_VERSION)
        account_id = self.account.account_id or ""
        if not account_id:
            raise PermanentPublishError(
                f"{self.channel}: set the account's account_id to the organization "
                "(urn:li:organization:12345 or 12345)", channel=self.channel)
        self.author = (account_id if account_id.startswith("urn:li:")
                       else f"urn:li:organization:{account_id}")

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._secret()}",
            "LinkedIn-Version": self.linkedin_version,
            "X-Restli-Protocol-Version": "2.0.0",
        }

    async def publish(self, post: RenderedPost, *, idempotency_key: str) -> PublishResult:
        self._check_post(post)
        body: dict[str, Any] = {
            "author": self.author,
            "commentary": to_little_text(post.text),
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        try:
            images = [await self._upload(await self.load_media(item)) for item in post.media]
            if len(images) == 1:
                body["content"] = {"media": images[0]}
            elif images:
                body["content"] = {"multiImage": {"images": images}}
            response = await self._request("POST", f"{self.base_url}/rest/posts", json=body,
                                           headers=self._headers(), creates_post=True)
        except PermanentPublishError as exc:
            if exc.status_code == VERSION_NOT_SERVED:
                raise self._version_error(exc) from exc
            raise
        urn = response.headers.get("x-restli-id", "")
        return PublishResult(
            remote_id=urn,
            url=f"https://www.linkedin.com/feed/update/{urn}/" if urn else None,
            raw={"x-restli-id": urn, "status_code": response.status_code},
        )

    def _version_error(self, exc: PermanentPublishError) -> PermanentPublishError:
        """What to change, for a 426 (the LinkedIn-Version was sunset)."""
        return PermanentPublishError(
            f"{exc}; LinkedIn no longer serves LinkedIn-Version "
            f"{self.linkedin_version}: set the account's `api_version` to a current "
            "version (YYYYMM, see LinkedIn's migrations page) in "
            "registry/channels.yaml", channel=self.channel,
            status_code=exc.status_code, network_message=exc.network_message)

    async def withdraw(self, remote_id: str, *, remote_url: str | None,
                       idempotency_key: str, original: Mapping[str, Any] | None = None
                       ) -> WithdrawResult:
        """``DELETE /rest/posts/{encoded URN}``: 204 gone (also for a post deleted before,
        deletions being idempotent), 404 already gone. The token's member needs a role that
        may post for the organization (w_organization_social)."""
        if not remote_id.startswith("urn:li:"):
            raise PermanentPublishError(
                f"{self.channel}: no post URN was recorded for this post ({remote_id!r}), so "
                "there is nothing to delete through the API; a person must delete it on the "
                "LinkedIn page", channel=self.channel)
        url = f"{self.base_url}/rest/posts/{quote(remote_id, safe='')}"
        try:
            response = await self._request(
                "DELETE", url, headers={**self._headers(), "X-RestLi-Method": "DELETE"},
                creates_post=False)
        except CredentialRefused as refused:
            raise CredentialRefused(
                f"{refused}; deleting {self.author}'s posts needs a token with "
                "w_organization_social of a member who is an administrator or content "
                "administrator of the organization", channel=self.channel,
                status_code=refused.status_code,
                network_message=refused.network_message) from refused
        except PermanentPublishError as exc:
            if exc.status_code == 404:
                return WithdrawResult(
                    gone=True, already_gone=True, raw={"status_code": 404},
                    detail=f"LinkedIn: post {remote_id} is not there (404): already deleted")
            if exc.status_code == VERSION_NOT_SERVED:
                raise self._version_error(exc) from exc
            raise
        status = response.status_code
        return WithdrawResult(
            gone=True, raw={"status_code": status},
            detail=f"LinkedIn: post {remote_id} of {self.author} is deleted ({status}; "
                   "LinkedIn answers so for a post deleted before, too)")

    async def _upload(self, media: MediaFile) -> dict[str, str]:
        response = await self._request(
            "POST", f"{self.base_url}/rest/images", params={"action": "initializeUpload"},
            json={"initializeUploadRequest": {"owner": self.author}}, headers=self._headers())
        value = response.json()["value"]
        upload_url, image_urn = value["uploadUrl"], value["image"]
        headers = {"Content-Type": media.content_type}
        # The upload URL may sit on another host: send the token only to LinkedIn or to
        # the host this account talks to.
        host = urlsplit(upload_url).hostname or ""
        if host.endswith("linkedin.com") or host == urlsplit(self.base_url).hostname:
            headers["Authorization"] = f"Bearer {self._secret()}"
        await self._request("PUT", upload_url, content=media.data, headers=headers)
        return {"id": image_urn, "altText": media.alt}

    async def _check(self) -> AccountCheck:
        """The organization (``GET /rest/organizations/{id}``), then the role the token's
        member has there (``GET /rest/organizationAcls?q=roleAssignee``): only
        :data:`POSTING_ROLES` may post for it. The finder needs ``r_organization_admin``
        or ``rw_organization_admin``; a token with only ``w_organization_social`` is told
        so, not failed. See docs/CHANNELS.md, "Credential check"."""
        org_id = self.author.rsplit(":", 1)[-1]
        response = await self._request(
            "GET", f"{self.base_url}/rest/organizations/{quote(org_id)}",
            headers=self._headers())
        data = response.json()
        identity = f"{self.author} ({data.get('localizedName', '')})".replace(" ()", "")
        try:
            acls = (await self._request(
                "GET", f"{self.base_url}/rest/organizationAcls",
                params={"q": "roleAssignee", "state": "APPROVED", "count": "100"},
                headers=self._headers())).json()
        except CredentialRefused as exc:
            if exc.status_code != 403:  # 403: the finder's permission, not the token
                raise
            return AccountCheck(channel=self.channel, ok=True, identity=identity, raw=data,
                                details=(f"the member's role was not read ({exc.network_message}"
                                         "): a member who may not post for the organization "
                                         "fails at the first post",))
        roles = sorted({str(e.get("role")) for e in acls.get("elements") or []
                        if (e.get("organization") or e.get("organizationalTarget")) == self.author
                        and e.get("state", "APPROVED") == "APPROVED"})
        posting = [role for role in roles if role in POSTING_ROLES]
        if not posting:
            return AccountCheck(
                channel=self.channel, ok=False, identity=identity, raw=data,
                message=f"the token's member has no role that may post for {self.author} "
                        f"(roles there: {', '.join(roles) or 'none'})",
                fix="have a super admin of the LinkedIn page make the member an administrator "
                    "or content administrator (page → Admin tools → Manage admins), or use a "
                    "token of a member who is one")
        return AccountCheck(channel=self.channel, ok=True, identity=identity, raw=data,
                            details=(f"the member is {' and '.join(posting)}",))
