"""Publishers, shared per HTTP client.

One publisher per account, credential and options for as long as its HTTP client lives:
Bluesky's session (createSession is limited to 30 per 5 minutes) and Mastodon's instance
limits are fetched once, not once per post.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from typing import Any

import httpx
from pydantic import SecretStr

from newsroom.catalog.models import ChannelAccount
from newsroom.channels import Publisher, publisher_for

__all__ = ["shared_publisher"]

_PUBLISHER_CACHE: weakref.WeakKeyDictionary[httpx.AsyncClient, dict[tuple, Publisher]] = (
    weakref.WeakKeyDictionary())
_PUBLISHER_CACHE_LOCK = threading.Lock()


def shared_publisher(account: ChannelAccount, *, client: httpx.AsyncClient,
                     credential: SecretStr | None, **options: Any) -> Publisher:
    """The publisher for ``account`` on ``client``, made once and then reused."""
    secret = credential.get_secret_value() if credential is not None else ""
    key = (account.model_dump_json(), hashlib.sha256(secret.encode()).hexdigest(),
           repr(sorted((k, repr(v)) for k, v in options.items())))
    with _PUBLISHER_CACHE_LOCK:
        publishers = _PUBLISHER_CACHE.setdefault(client, {})
        publisher = publishers.get(key)
        if publisher is None:
            publisher = publishers[key] = publisher_for(account, client=client,
                                                        credential=credential, **options)
        return publisher
