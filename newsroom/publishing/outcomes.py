"""What publishing answers, and the names it publishes under.

:class:`PublicationOutcome` is where one post on one channel stands after
:func:`~newsroom.publishing.state_machine.publish_post`; :class:`OccurrencePublication`
holds an occurrence's outcomes by channel. :func:`idempotency_key_for` derives the key a
post is published under, :func:`manual_confirm_url` the link a manual channel's owner
confirms with. Every module of the package writes its audit events as :data:`ACTOR`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from newsroom.store import PublicationStatus

__all__ = [
    "ACTOR",
    "DEFAULT_CONFIRM_TTL",
    "SETTLED",
    "OccurrencePublication",
    "PublicationOutcome",
    "idempotency_key_for",
    "manual_confirm_url",
]

ACTOR = "publisher"

# Nothing left for the publisher to do in these states (a person may still have to post).

SETTLED = {PublicationStatus.PUBLISHED, PublicationStatus.AWAITING_MANUAL,
            PublicationStatus.SKIPPED}

# How long the link a manual channel's owner confirms with stays valid.

DEFAULT_CONFIRM_TTL = timedelta(days=7)


@dataclass(frozen=True)
class PublicationOutcome:
    """Where one post on one channel stands after :func:`publish_post`.

    ``status`` is a :class:`~newsroom.store.PublicationStatus` value; "publishing" means
    another attempt is under way. ``network_called`` says whether *this* call sent
    anything to the network; ``alerted`` whether it alerted the communications office,
    ``notified`` whether it told a manual channel's owner.
    """

    channel: str
    status: str
    post_id: int
    publication_id: int | None
    post_key: str
    content_hash: str
    idempotency_key: str
    remote_id: str | None = None
    remote_url: str | None = None
    error: str | None = None
    attempts: int = 0
    network_called: bool = False
    alerted: bool = False
    notified: bool = False
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        """Nothing left for the publisher to do (a person may still have to post)."""
        return self.status in SETTLED


@dataclass(frozen=True)
class OccurrencePublication:
    """Per-channel outcomes of :func:`publish_occurrence`; ``errors`` holds what raised."""

    occurrence_id: int
    outcomes: dict[str, PublicationOutcome] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)

    @property
    def published(self) -> list[str]:
        return sorted(c for c, o in self.outcomes.items()
                      if o.status == PublicationStatus.PUBLISHED)

    @property
    def needs_attention(self) -> list[str]:
        """Channels that are neither done nor waiting for their owner."""
        return sorted({c for c, o in self.outcomes.items() if not o.ok} | set(self.errors))


def idempotency_key_for(post_key: str, content_hash: str) -> str:
    """The key under which a post is published: the same post always gets the same key."""
    digest = hashlib.sha256(f"{post_key}\n{content_hash}".encode()).hexdigest()
    return f"newsroom-{digest[:48]}"


def manual_confirm_url(base_url: str) -> Callable[[str], str]:
    """``confirm_url_for`` for a Newsroom web app at ``base_url`` (see newsroom.web)."""
    base = base_url.rstrip("/")
    return lambda token: f"{base}/manual/{token}"
