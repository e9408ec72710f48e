"""Manual channels (WhatsApp channel, TikTok …): networks without a posting API.

:meth:`ManualPublisher.publish` posts nothing. It returns a result with
``awaiting_manual=True`` whose ``raw["notice"]`` holds everything the owner needs to post
by hand: the copy-ready text, the images with their alt text, who and when.
:func:`build_manual_notice` turns that into the German message (subject, plain text,
HTML) with the link by which the owner confirms that the post is online; sending it and
the signed confirmation link are the caller's business.

A recall (:meth:`ManualPublisher.withdraw`) cannot delete anything either: it answers
``manual`` with a ``detail`` naming the network, the account and its owner, for the
recall to tell that person what to delete.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels.base import AccountCheck, Publisher, PublishResult, WithdrawResult
from newsroom.html_templates import render_html
from newsroom.posts import RenderedPost
from newsroom.timeutil import BERLIN, german_clock

NETWORK_NAMES = {
    "whatsapp": "WhatsApp-Kanal",
    "tiktok": "TikTok",
    "instagram-story": "Instagram-Story",
    "signal": "Signal",
}


def _network_name(account: ChannelAccount) -> str:
    network = account.network or "manuell"
    return NETWORK_NAMES.get(network, network.capitalize())


def _when(post: RenderedPost) -> str:
    local = post.publish_at.astimezone(BERLIN)
    return f"{local:%d.%m.%Y} um {german_clock(local)}"


def manual_payload(post: RenderedPost, account: ChannelAccount) -> dict[str, Any]:
    """What a person needs to post by hand, as plain data."""
    return {
        "post_key": post.post_key,
        "channel": account.name,
        "display_name": account.display_name,
        "network": account.network,
        "owner": account.owner,
        "publish_at": post.publish_at.isoformat(),
        "title": post.title,
        "text": post.text,
        "link": post.link,
        "media": [{"source": m.source, "alt": m.alt} for m in post.media],
    }


def build_manual_notice(post: RenderedPost, account: ChannelAccount, confirm_url: str
                        ) -> tuple[str, str, str]:
    """(subject, body_text, body_html) asking the owner to publish ``post`` by hand."""
    network = _network_name(account)
    title = post.title or post.campaign_id
    subject = f"Bitte von Hand veröffentlichen: {title} – {account.display_name} ({network})"
    images_text = "\n".join(
        f"  {n}. {m.source}\n     Alternativtext: {m.alt}" for n, m in enumerate(post.media, 1)
    ) or "  (keine)"
    rule = "-" * 60
    body_text = (
        f"Guten Tag,\n\n"
        f"für „{account.display_name}“ ({network}) gibt es keine Schnittstelle. Bitte "
        f"veröffentlichen Sie den folgenden Beitrag von Hand am {_when(post)}.\n\n"
        f"Text zum Kopieren:\n{rule}\n{post.text}\n{rule}\n\n"
        f"Bilder (bitte jeweils mit dem Alternativtext hochladen):\n{images_text}\n\n"
        + (f"Link: {post.link}\n\n" if post.link else "")
        + "Sobald der Beitrag online ist, bestätigen Sie das bitte über diesen Link:\n"
        f"{confirm_url}\n\n"
        f"Zuständig: {account.owner}\n"
        f"Beitrag: {post.post_key}\n"
    )
    body_html = render_html(
        "manual_mail.html", account_name=account.display_name, network=network,
        when=_when(post), text=post.text, images=post.media, link=post.link,
        confirm_url=confirm_url, owner=account.owner or "", post_key=post.post_key)
    return subject, body_text, body_html


class ManualPublisher(Publisher):
    channel_type: ClassVar[ChannelType] = ChannelType.MANUAL
    needs_credential: ClassVar[bool] = False
    idempotent_retries: ClassVar[bool] = True  # nothing is sent

    async def publish(self, post: RenderedPost, *, idempotency_key: str) -> PublishResult:
        self._check_post(post)
        return PublishResult(
            remote_id="", url=None, awaiting_manual=True,
            raw={"notice": manual_payload(post, self.account), "owner": self.account.owner},
        )

    async def withdraw(self, remote_id: str, *, remote_url: str | None,
                       idempotency_key: str, original: Mapping[str, Any] | None = None
                       ) -> WithdrawResult:
        """Nothing to call: a person must delete the post where they posted it. ``manual``,
        with a ``detail`` that names the network, the account, the post (its URL if one
        was recorded) and who is asked (the account's owner)."""
        network = self.account.network_name
        post = f" at {remote_url}" if remote_url else (
            f" (post {remote_id})" if remote_id else "")
        title = str((original or {}).get("title") or "").strip()
        which = f"the post „{title}“" if title else "the post"
        owner = self.account.owner
        whom = f"{owner} (the channel's owner)" if owner else "a person with access"
        return WithdrawResult(
            gone=False, manual=True,
            detail=f"{network} has no API to take a post down: {whom} must delete {which}"
                   f"{post} by hand in {self.account.label} (channel {self.channel})",
            raw={"network": self.account.network, "owner": owner, "channel": self.channel,
                 "remote_url": remote_url})

    async def _check(self) -> AccountCheck:
        return AccountCheck(channel=self.channel, ok=True, identity=self.account.owner or "",
                            message="manual channel: nothing to verify")
