"""The office retries a failed publication, after fixing what made it fail.

    newsroom channels open                     # failed and unknown publications
    newsroom channels retry ID [--by WHO] [--even-if-late]

and in the Prefect UI the deployment ``retry-publication/retry-publication`` (a form with
the publication's id and who asks). Both come here.

A publication is "failed" when the network refused it or could not be reached: nothing
went out (an "unknown" one may have: it is resolved first, ``newsroom channels resolve ID
--not-published``, which makes it "failed"). A retry:

1. checks that it still makes sense (:func:`plan_retry`, :class:`RetryRefused` with what
   to do otherwise): the publication is failed, its post is the occurrence's current
   content, its account is still in the registry, no crisis holds a non-crisis post, and
   the post is still inside its campaign's grace window — or the office says
   ``even_if_late`` (a person decided that a late post is still right);
2. writes ``publication.retry`` to the audit trail (who, the error it answers, how late);
3. publishes through :func:`newsroom.publishing.publish_post` with ``retry_failed``: the
   same locked transition failed → publishing as every run, so two retries at once (two
   shells, a shell and the Prefect UI) send it once; what an earlier attempt achieved
   (the press e-mail's recipients) is not repeated.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlmodel import Session

from newsroom import store
from newsroom.catalog.models import CampaignKind, ChannelAccount
from newsroom.errors import NewsroomError
from newsroom.publishing import PublicationOutcome, manual_confirm_url, publish_post
from newsroom.runtime import Runtime
from newsroom.store import Occurrence, PostRecord, Publication, PublicationStatus, stored_id
from newsroom.timeutil import format_local

__all__ = ["RETRIED", "RetryPlan", "RetryRefused", "describe_outcome", "plan_retry",
           "retry_publication"]

RETRIED = "publication.retry"  # audit action: the office asked for the retry


class RetryRefused(NewsroomError):
    """This publication cannot be retried now; the message says why and what to do."""


@dataclass(frozen=True)
class RetryPlan:
    """What a retry will publish, checked (see :func:`plan_retry`)."""

    publication: Publication
    post: PostRecord
    account: ChannelAccount
    late: str | None  # why the post is outside its grace window (None: in time)


def _refuse_status(publication: Publication) -> None:
    status = PublicationStatus(publication.status)
    pid = publication.id
    if status == PublicationStatus.FAILED:
        return
    reasons = {
        PublicationStatus.PUBLISHED: "is published" + (
            f" ({publication.remote_url})" if publication.remote_url else "")
        + "; there is nothing to retry",
        PublicationStatus.AWAITING_MANUAL: "waits for its owner to post it by hand; there is "
        "nothing to retry",
        PublicationStatus.UNKNOWN: "is unknown: it may be online. Look at the account first, "
        f"then `newsroom channels resolve {pid} --published --url URL` or "
        f"`--not-published` (after which it can be retried)",
        PublicationStatus.RESERVED: "is being published right now (or waits for its "
        "second); `newsroom channels open` shows how it ended",
        PublicationStatus.PUBLISHING: "is being published right now (or an interrupted "
        "attempt left it so, which its run settles); `newsroom channels open` shows how it "
        "ended",
        PublicationStatus.SKIPPED: f"was skipped ({publication.last_error or 'too late'}); "
        "a skipped post is not retried",
    }
    raise RetryRefused(f"publication {pid} ({publication.channel}) {reasons[status]}")


def plan_retry(runtime: Runtime, publication_id: int, *, even_if_late: bool = False,
               now: datetime | None = None) -> RetryPlan:
    """Check that ``publication_id`` may be retried now; raise :class:`RetryRefused`
    saying why not and what to do."""
    from newsroom.crisis import active_crisis
    from newsroom.delivery import late_reason

    now = now or datetime.now(UTC)
    catalog = runtime.catalog
    with store.session_scope(runtime.engine) as session:
        publication = session.get(Publication, publication_id)
        if publication is None:
            raise RetryRefused(f"no publication with id {publication_id}; "
                               "`newsroom channels open` lists the failed ones")
        _refuse_status(publication)
        post = session.get(PostRecord, publication.post_id)
        assert post is not None  # a foreign key
        occurrence = session.get(Occurrence, post.occurrence_id)
        assert occurrence is not None  # a foreign key
        _refuse_occurrence(session, occurrence, post, publication)
        session.expunge(publication)
        session.expunge(post)
    account = catalog.accounts.get(publication.channel)
    if account is None:
        raise RetryRefused(f"publication {publication_id}: the account {publication.channel!r} "
                           "is no longer in registry/channels.yaml; add it back to retry")
    entry = catalog.campaigns.get(occurrence.campaign_id)
    if entry is None:
        raise RetryRefused(f"publication {publication_id}: the campaign "
                           f"{occurrence.campaign_id!r} is no longer in the catalog")
    campaign = entry.campaign
    if campaign.kind != CampaignKind.CRISIS and not any(s.on_demand for s in campaign.slots):
        active = active_crisis(runtime.engine)
        if active:
            names = ", ".join(f"{c.campaign_id} #{c.id}" for c in active)
            raise RetryRefused(f"publication {publication_id}: a crisis is active ({names}); "
                               "other posts wait until `newsroom crisis end`")
    late = late_reason(catalog, occurrence.campaign_id, post.publish_at, now)
    if late is not None and not even_if_late:
        raise RetryRefused(f"publication {publication_id} ({publication.channel}): {late}. "
                           "If it is still right to publish it now, retry with "
                           "--even-if-late")
    return RetryPlan(publication=publication, post=post, account=account, late=late)


def _refuse_occurrence(session: Session, occurrence: Occurrence, post: PostRecord,
                       publication: Publication) -> None:
    pid = publication.id
    if post.superseded_at is not None:
        raise RetryRefused(
            f"publication {pid}: its post was replaced by newer content on "
            f"{format_local(post.superseded_at)}; the occurrence's run publishes the current "
            "one")
    if occurrence.status in ("rejected", "cancelled", "changes_requested"):
        raise RetryRefused(
            f"publication {pid}: {occurrence.campaign_id} {occurrence.occurrence_date} is "
            f"{occurrence.status.replace('_', ' ')} now; it is not published")


async def retry_publication(
    runtime: Runtime,
    publication_id: int,
    *,
    by: str,
    via: str = "cli",
    even_if_late: bool = False,
    client: httpx.AsyncClient | None = None,
    publisher_options: Mapping[str, Any] | None = None,
) -> PublicationOutcome:
    """Publish a failed publication once more, on the office's word (see the module doc).
    Raises :class:`RetryRefused`; a failure of the new attempt is the outcome."""
    from newsroom.delivery import account_client

    if not by.strip():
        raise RetryRefused("say who asks for the retry (--by)")
    plan = await asyncio.to_thread(plan_retry, runtime, publication_id,
                                   even_if_late=even_if_late)
    rendered = plan.post.to_rendered()

    def audit(session: Session) -> None:
        store.record_audit(
            session, campaign_id=rendered.campaign_id, occurrence_date=rendered.occurrence,
            actor=by, action=RETRIED, channel=plan.publication.channel,
            content_hash=plan.post.content_hash,
            detail={"publication_id": plan.publication.id, "post_id": plan.post.id,
                    "via": via, "previous_error": plan.publication.last_error,
                    "attempts_before": plan.publication.attempts, "late": plan.late})

    await asyncio.to_thread(_with_session, runtime, audit)
    catalog = runtime.catalog
    return await publish_post(
        engine=runtime.engine, post_id=stored_id(plan.post), account=plan.account,
        client=client or account_client(plan.account), notifier=runtime.notifier,
        confirm_url_for=manual_confirm_url(runtime.base_url), signer=runtime.signer,
        media_root=catalog.root, publisher_options=publisher_options, retry_failed=True,
        failed_only=True)


def _with_session(runtime: Runtime, work: Callable[[Session], None]) -> None:
    with store.session_scope(runtime.engine) as session:
        work(session)


def describe_outcome(outcome: PublicationOutcome) -> tuple[bool, str]:
    """(whether the retry did its job, one line saying how it ended) for the CLI and the
    flow. Another attempt under way (a second retry at the same moment) is no failure:
    that attempt publishes it, once."""
    channel, pid = outcome.channel, outcome.publication_id
    if outcome.status == PublicationStatus.PUBLISHED:
        return True, f"publication {pid} ({channel}) published" + (
            f": {outcome.remote_url}" if outcome.remote_url else "")
    if outcome.status == PublicationStatus.AWAITING_MANUAL:
        return True, (f"publication {pid} ({channel}): its owner was asked to post it by "
                      "hand" + ("" if outcome.notified else " (the message could not be sent)"))
    if outcome.status == PublicationStatus.PUBLISHING and not outcome.network_called:
        return True, (f"publication {pid} ({channel}): another attempt is under way right "
                      "now; it publishes it once (`newsroom channels open` shows the end)")
    if outcome.status == PublicationStatus.UNKNOWN:
        return False, (f"publication {pid} ({channel}) is unknown: {outcome.error}")
    return False, f"publication {pid} ({channel}) failed again: {outcome.error}"
