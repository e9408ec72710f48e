"""Channel publishers: one module per network, one shared base (:mod:`.base`).

    publisher = publisher_for(account, client=client)          # credential resolved here
    result = await publish_with_retries(publisher, post, key)  # typed errors, see .base

Adding a network is adding a module with a :class:`Publisher` subclass and one line in
:data:`PUBLISHERS`.

Each publisher class owns its network's one length rule (``Publisher.measure``, counted
with the units of :mod:`newsroom.channels._text`); :func:`measure_text` and
:func:`requires_image` ask it for validation, preview, the request form and crisis
messages, and the publisher asks it before sending.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels._text import Measurement
from newsroom.channels.base import (
    AccountCheck,
    MediaFile,
    Publisher,
    PublishResult,
    WithdrawResult,
    publish_with_retries,
    withdraw_with_retries,
)
from newsroom.channels.bluesky import BlueskyPublisher
from newsroom.channels.credentials import (
    CredentialMissing,
    aresolve_credential,
    resolve_credential,
)
from newsroom.channels.email import EmailPublisher
from newsroom.channels.facebook import FacebookPublisher
from newsroom.channels.instagram import InstagramPublisher
from newsroom.channels.linkedin import LinkedInPublisher
from newsroom.channels.manual import ManualPublisher, build_manual_notice
from newsroom.channels.mastodon import MastodonPublisher
from newsroom.channels.responses import map_error
from newsroom.channels.telegram import TelegramPublisher
from newsroom.channels.threads import ThreadsPublisher
from newsroom.channels.website import WebsitePublisher

PUBLISHERS: dict[ChannelType, type[Publisher]] = {
    cls.channel_type: cls
    for cls in (
        MastodonPublisher, BlueskyPublisher, LinkedInPublisher, FacebookPublisher,
        InstagramPublisher, ThreadsPublisher, TelegramPublisher, WebsitePublisher,
        EmailPublisher, ManualPublisher,
    )
}


def measure_text(text: str, account: ChannelAccount, *, has_image: bool = False
                 ) -> list[Measurement]:
    """Every count ``account``'s network applies to ``text``, with its limit."""
    return PUBLISHERS[ChannelType(account.type)].measure(text, account, has_image=has_image)


def requires_image(account: ChannelAccount) -> bool:
    """The network refuses a post without an image (Instagram)."""
    return PUBLISHERS[ChannelType(account.type)].requires_image


def publisher_for(
    account: ChannelAccount,
    *,
    client: httpx.AsyncClient,
    credential: SecretStr | None = None,
    **options: Any,
) -> Publisher:
    """The publisher for ``account``. Without ``credential`` it is resolved from the
    environment or a Prefect Secret block (:func:`resolve_credential`); ``options`` go to
    the publisher (e.g. ``feed_path`` for the website, ``linkedin_version``)."""
    cls = PUBLISHERS[ChannelType(account.type)]
    if credential is None and (cls.needs_credential or account.credential is not None):
        credential = resolve_credential(account)
    return cls(account, credential, client, **options)


__all__ = [
    "PUBLISHERS",
    "AccountCheck",
    "CredentialMissing",
    "Measurement",
    "MediaFile",
    "PublishResult",
    "Publisher",
    "WithdrawResult",
    "aresolve_credential",
    "build_manual_notice",
    "map_error",
    "measure_text",
    "publish_with_retries",
    "publisher_for",
    "requires_image",
    "resolve_credential",
    "withdraw_with_retries",
]
