"""An occurrence's posts, all channels at once.

:func:`ready_occurrence` makes everything ready ahead of the posts' second (each post read
and keyed, each publisher made and warmed up), :func:`send_ready` sends it all at once
through the state machine (:mod:`newsroom.publishing.state_machine`), and
:func:`publish_occurrence` does both. One channel's failure never stops another.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from newsroom import store
from newsroom.catalog.models import ChannelAccount
from newsroom.errors import StoreError
from newsroom.notify import Notifier
from newsroom.signing import Signer
from newsroom.store import PostRecord, Publication, stored_id

from .arming import armed_for
from .outcomes import OccurrencePublication, PublicationOutcome
from .state_machine import PublishJob, fly, make_job
from .transactions import run_in_session

__all__ = ["ReadySends", "publish_occurrence", "ready_occurrence", "send_ready"]

logger = logging.getLogger("newsroom.publishing")

@dataclass
class ReadySends:
    """An occurrence's publications made ready to send (see :func:`ready_occurrence`)."""

    occurrence_id: int
    jobs: list[tuple[PostRecord, PublishJob | Exception]]


async def ready_occurrence(
    *,
    engine: Engine,
    occurrence_id: int,
    accounts: Mapping[str, ChannelAccount],
    client: httpx.AsyncClient | Callable[[ChannelAccount], httpx.AsyncClient],
    credentials: Mapping[str, SecretStr] | None = None,
    notifier: Notifier | None = None,
    confirm_url_for: Callable[[str], str] | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    signer: Signer | None = None,
    media_root: Path | None = None,
    publisher_options: Mapping[str, Mapping[str, Any]] | None = None,
    channels: Iterable[str] | None = None,
    armed: Mapping[str, Publication] | None = None,
    posts: list[PostRecord] | None = None,
) -> ReadySends:
    """Everything :func:`send_ready` needs, made ahead of the posts' second: each post
    read and keyed, each publisher made and warmed up (Bluesky's session, Mastodon's
    instance limits). Nothing is sent and no state changes (see :func:`arm_occurrence`).
    """
    if posts is None:  # else: the current posts, read a moment ago (arm_occurrence)
        posts = await run_in_session(
            engine, lambda s: store.current_posts(s, occurrence_id=occurrence_id))
    if channels is not None:
        wanted = set(channels)
        posts = [p for p in posts if p.channel in wanted]
    client_for = client if callable(client) else (lambda account: client)
    jobs: list[tuple[PostRecord, PublishJob | Exception]] = []
    for post in posts:
        account = accounts.get(post.channel)
        try:
            if account is None:
                raise StoreError(f"channel {post.channel!r} is not in the channel registry; "
                                 "add it to registry/channels.yaml or render the occurrence "
                                 "again")
            job: PublishJob | Exception = await make_job(
                engine=engine, post_id=stored_id(post), account=account, client=client_for(account),
                credential=(credentials or {}).get(post.channel), notifier=notifier,
                confirm_url_for=confirm_url_for, sleep=sleep, signer=signer,
                media_root=media_root,
                publisher_options=(publisher_options or {}).get(post.channel),
                armed=armed_for(armed, post), preloaded=post)
        except Exception as exc:  # reported per channel by send_ready
            job = exc
        jobs.append((post, job))
    await asyncio.gather(*(job.ready() for _, job in jobs if isinstance(job, PublishJob)))
    return ReadySends(occurrence_id=occurrence_id, jobs=jobs)


async def send_ready(ready: ReadySends) -> OccurrencePublication:
    """Send every post made ready, all channels at once.

    One channel's failure (or exception) never stops another: each channel gets its
    outcome, and what raised is in ``errors``.
    """

    async def one(job: PublishJob | Exception) -> PublicationOutcome:
        if isinstance(job, Exception):
            raise job
        return await fly(job)

    results = await asyncio.gather(*(one(job) for _, job in ready.jobs),
                                   return_exceptions=True)
    outcome = OccurrencePublication(occurrence_id=ready.occurrence_id)
    for (post, _), result in zip(ready.jobs, results, strict=True):
        if isinstance(result, BaseException):
            logger.error("%s: publishing post %s raised %s: %s", post.channel, post.id,
                         type(result).__name__, result)
            outcome.errors[post.channel] = result
        else:
            outcome.outcomes[post.channel] = result
    return outcome


async def publish_occurrence(**options: Any) -> OccurrencePublication:
    """Publish every current post of the occurrence, all channels at once: what
    :func:`ready_occurrence` (its arguments) and then :func:`send_ready` do.

    ``accounts`` is ``catalog.accounts``; ``client`` is one HTTP client for all, or a
    function giving each account's; ``credentials`` and ``publisher_options`` are by
    channel name. One channel's failure never stops another (``errors``).
    """
    return await send_ready(await ready_occurrence(**options))
