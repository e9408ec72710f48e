"""From a campaign date to posts on the channels: prepare, then deliver what was approved.

The two steps the campaign flow calls around its approval gate:

- :func:`prepare_occurrence` renders the occurrence's posts from the catalog and stores
  them (idempotent: the same catalog gives the same content hashes, nothing changes).
  Once a gate has settled on a bundle, a re-run (after the flow was resumed) does not
  touch the stored posts unless the catalog now renders something else — then the
  change is stored, and the gate asks again (earlier approvals do not cover new text).
- :func:`deliver_occurrence` publishes the approved posts, each at its exact time: the
  signatory list of a joint statement is filled with those who approved; a slot that is
  too late by the campaign's late policy is skipped and reported; a channel that has a
  publication for this occurrence already (under any rendering) is never published
  again.

Nothing here imports Prefect: flows wrap these functions in tasks.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlmodel import Session, select

from newsroom import store
from newsroom.approval import GateStatus
from newsroom.catalog.catalog import Catalog
from newsroom.catalog.models import ChannelAccount
from newsroom.errors import NewsroomError
from newsroom.freeze import hold_if_frozen
from newsroom.markdown import md_link, md_text
from newsroom.posts import RenderedPost, bundle_hash
from newsroom.publishing.arming import arm_occurrence, disarm
from newsroom.publishing.burst import mark_for_sending
from newsroom.publishing.occurrence import ReadySends, ready_occurrence, send_ready
from newsroom.publishing.outcomes import OccurrencePublication, manual_confirm_url
from newsroom.rendering.render import render_occurrence
from newsroom.runtime import Runtime
from newsroom.store import (
    Occurrence,
    OccurrenceStatus,
    PostRecord,
    Publication,
    PublicationStatus,
    stored_id,
)
from newsroom.sync import sync_campaign
from newsroom.timeutil import BERLIN, after, format_local, parse_duration

logger = logging.getLogger("newsroom.delivery")

ACTOR = "newsroom:delivery"
# Publications are reserved and claimed this long before their second (see
# newsroom.publishing.arming), so that at the second only the network calls remain.
ARM_AHEAD = timedelta(seconds=3)
# The crisis freeze is looked up this long before the second (not at it: the second is for
# the sends). A crisis started later than that (plus the freeze cache's quarter second)
# does not hold the post.
FREEZE_LOOK_AHEAD = timedelta(seconds=0.2)


class DeliveryError(NewsroomError):
    """An occurrence cannot be prepared or delivered."""


@dataclass(frozen=True)
class PreparedOccurrence:
    occurrence_id: int
    campaign_id: str
    occurrence_date: date
    bundle_hash: str
    first_publish_at: datetime
    pre_approved: bool
    changed: bool  # the stored posts changed in this call
    posts: tuple[RenderedPost, ...]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def prepare_occurrence(runtime: Runtime, campaign_id: str, occurrence_date: date, *,
                       flow_run_id: str | None = None) -> PreparedOccurrence:
    """Render and store the occurrence's posts; remember the flow run that carries it."""
    catalog = runtime.catalog
    posts = render_occurrence(catalog, campaign_id, occurrence_date)
    if not posts:
        raise DeliveryError(f"campaign {campaign_id!r} has no posts on "
                            f"{occurrence_date.isoformat()}")
    with store.session_scope(runtime.engine) as session:
        sync_campaign(session, catalog, campaign_id, actor=ACTOR)
        occurrence = store.get_or_create_occurrence(
            session, campaign_id=campaign_id, occurrence_date=occurrence_date,
            first_publish_at=min(p.publish_at for p in posts))
        sent = {c: p for c, p in _published_channels(session, stored_id(occurrence)).items()
                if p.status != PublicationStatus.RESERVED}
        moved = {channel: datetime.fromisoformat(at)
                 for channel, at in (occurrence.moved_to or {}).items()}
        if moved:  # held by a crisis, moved to a new time by the office
            posts = [replace(p, publish_at=moved.get(p.channel, p.publish_at)) for p in posts]
        to_come = [p.publish_at for p in posts if p.channel not in sent]
        first = min(to_come) if moved and to_come else min(p.publish_at for p in posts)
        if moved and first != occurrence.first_publish_at:  # the gate's deadline follows
            occurrence = store.get_or_create_occurrence(
                session, campaign_id=campaign_id, occurrence_date=occurrence_date,
                first_publish_at=first)
        rendered_bundle = bundle_hash(posts)
        keep = (occurrence.gate_outcome is not None
                and occurrence.gate_bundle_hash == rendered_bundle)
        changed = False
        if not keep and occurrence.bundle_hash != rendered_bundle:
            if sent and _changed_after_publication(session, occurrence, posts, set(moved)):
                raise DeliveryError(
                    f"{campaign_id} {occurrence_date.isoformat()} was published already and "
                    "its campaign file changed since; the change is not published. Create a "
                    "new campaign or occurrence for a correction")
            store.store_rendered_posts(session, occurrence_id=stored_id(occurrence), posts=posts)
            store.record_audit(session, campaign_id=campaign_id, occurrence_date=occurrence_date,
                               actor=ACTOR, action="posts.rendered",
                               content_hash=rendered_bundle,
                               detail={"channels": sorted(p.channel for p in posts),
                                       "previous_bundle": occurrence.bundle_hash})
            changed = True
        if flow_run_id and occurrence.flow_run_id != flow_run_id:
            store.set_flow_run(session, occurrence_id=stored_id(occurrence),
                               flow_run_id=flow_run_id)
        campaign = catalog.campaign(campaign_id).campaign
        return PreparedOccurrence(
            occurrence_id=stored_id(occurrence), campaign_id=campaign_id,
            occurrence_date=occurrence_date, bundle_hash=rendered_bundle,
            first_publish_at=first, pre_approved=campaign.approval.pre_approved,
            changed=changed, posts=tuple(posts))


def _changed_after_publication(session: Session, occurrence: Occurrence,
                               posts: list[RenderedPost], moved: set[str]) -> bool:
    """Whether ``posts`` change what a partly published occurrence says: a post differs
    from the stored one in more than the time the office moved it to."""
    stored = {row.channel: row.to_rendered()
              for row in store.current_posts(session, occurrence_id=stored_id(occurrence))}
    if set(stored) != {post.channel for post in posts}:
        return True
    for post in posts:
        before = stored[post.channel]
        if post.channel in moved:
            before = replace(before, publish_at=post.publish_at)
        if before.content_hash != post.content_hash:
            return True
    return False


def _published_channels(session: Session, occurrence_id: int) -> dict[str, Publication]:
    """Channel -> publication, for every publication of any rendering of the occurrence."""
    query = (select(Publication, PostRecord)
             .join(PostRecord, PostRecord.id == Publication.post_id)  # type: ignore[arg-type]
             .where(PostRecord.occurrence_id == occurrence_id))
    return {publication.channel: publication for publication, _ in session.exec(query)}


# --- delivery ----------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    occurrence_id: int
    campaign_id: str
    occurrence_date: date
    published: dict[str, str | None] = field(default_factory=dict)  # channel -> URL
    awaiting_manual: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # channel -> reason
    failed: dict[str, str] = field(default_factory=dict)  # channel -> error
    unknown: dict[str, str] = field(default_factory=dict)
    already: dict[str, str] = field(default_factory=dict)  # channel -> status before
    lateness_s: dict[str, float] = field(default_factory=dict)  # channel -> s after its time
    held: dict[str, str] = field(default_factory=dict)  # channel -> why (crisis freeze)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.unknown

    def markdown(self, catalog: Catalog, status: GateStatus | None = None, *,
                 post_page: Callable[[str], str] | None = None) -> str:
        """The report as a Markdown table, under who approved (``status``: the settled
        gate; None: pre-approved); lateness in milliseconds after each post's time; each
        live post linked (``post_page`` maps the network's URL to the page to link, e.g.
        the demo's stand-ins). Every value escaped (newsroom.markdown): a channel's error
        text or a campaign title never forms a link or HTML in the UI."""
        title = catalog.campaign(self.campaign_id).campaign.title
        lines = [f"# Report: {md_text(title)} ({self.occurrence_date.isoformat()})", "",
                 f"**Freigegeben von / approved by:** {_approvers(catalog, status)}", "",
                 "| channel | result | link |", "|---|---|---|"]

        def row(channel: str, result: str, link: str = "") -> None:
            lines.append(f"| {md_text(channel)} | {result} | {link} |")

        for channel, url in sorted(self.published.items()):
            late = self.lateness_s.get(channel)
            row(channel, "published" + (f" ({late * 1000:+.0f} ms after its time)"
                                        if late is not None else ""),
                md_link("live post", post_page(url) if post_page else url) if url else "")
        for channel in self.awaiting_manual:
            row(channel, "awaiting manual post (owner notified)")
        for channel, already in sorted(self.already.items()):
            row(channel, f"already {md_text(already)}")
        for channel, reason in sorted(self.skipped.items()):
            row(channel, f"skipped: {md_text(reason, limit=500)}")
        for channel, reason in sorted(self.held.items()):
            row(channel, md_text(reason, limit=500))
        for channel, error in sorted(self.failed.items()):
            row(channel, f"**failed** (fix the cause, then retry it: newsroom channels "
                         f"open): {md_text(error, limit=500)}")
        for channel, error in sorted(self.unknown.items()):
            row(channel, f"**unknown** (may have posted; decide with `newsroom channels "
                         f"unknown`): {md_text(error, limit=500)}")
        return "\n".join(lines) + "\n"


def _approvers(catalog: Catalog, status: GateStatus | None) -> str:
    """Who approved, for the report: the signatories, or the admin who decided."""
    if status is None or not status.asked:
        return "vorab freigegeben / pre-approved"
    names = status.signatory_names(catalog)
    if status.decided_by_admin:
        admin = catalog.index.people.get(status.decided_by_admin)
        names.append(f"{admin.display if admin else status.decided_by_admin} (Admin)")
    return md_text(", ".join(names) or "–")


def grace_ends(catalog: Catalog, campaign_id: str, publish_at: datetime) -> datetime:
    """The last moment (UTC) a post due at ``publish_at`` may still go out: the campaign's
    ``late.grace`` after it, counted as every "after" (:func:`newsroom.timeutil.after`)."""
    return after(publish_at, parse_duration(catalog.campaign(campaign_id).campaign.late.grace))


def late_reason(catalog: Catalog, campaign_id: str, publish_at: datetime,
                 now: datetime) -> str | None:
    """Why a post due at ``publish_at`` must not go out any more at ``now`` (or None)."""
    if now <= publish_at:
        return None
    late = catalog.campaign(campaign_id).campaign.late
    if late.same_day_only and now.astimezone(BERLIN).date() != publish_at.astimezone(
            BERLIN).date():
        return (f"due {format_local(publish_at)}, now {format_local(now)}: this campaign "
                "publishes on its day only")
    if now > grace_ends(catalog, campaign_id, publish_at):
        return (f"due {format_local(publish_at)}, now {format_local(now)}: more than "
                f"{late.grace} late (the campaign's grace window)")
    return None


async def sleep_until(moment: datetime, *, clock: Callable[[], datetime] = _utcnow) -> None:
    """Sleep until ``moment`` (to a few milliseconds), never waking early."""
    while True:
        remaining = (moment - clock()).total_seconds()
        if remaining <= 0:
            return
        # Long sleeps in steps, so a changed wall clock is noticed; the last step short.
        await asyncio.sleep(min(remaining, 30.0) if remaining > 0.05 else remaining)


def final_posts(runtime: Runtime, prepared: PreparedOccurrence,
                status: GateStatus | None) -> list[RenderedPost]:
    """The posts to publish: for a joint statement, signed by those who approved."""
    if status is None or not status.asked:
        return list(prepared.posts)
    names = status.signatory_names(runtime.catalog)
    signed = render_occurrence(runtime.catalog, prepared.campaign_id, prepared.occurrence_date,
                               signatories=names)
    times = {post.channel: post.publish_at for post in prepared.posts}  # a moved time stays
    return [replace(post, publish_at=times.get(post.channel, post.publish_at))
            for post in signed]


async def deliver_occurrence(
    runtime: Runtime,
    prepared: PreparedOccurrence,
    status: GateStatus | None,
    *,
    client: httpx.AsyncClient | None = None,
    clock: Callable[[], datetime] = _utcnow,
    sleep_until_fn: Callable[[datetime], Awaitable[None]] | None = None,
    publisher_options: dict[str, dict[str, Any]] | None = None,
) -> DeliveryReport:
    """Publish the approved occurrence: each post at its time, each channel at most once.

    ``status`` is the settled gate (None for pre-approved campaigns). Raises
    DeliveryError when the gate did not approve.
    """
    from newsroom.approval import GateOutcome  # local: keeps the import graph flat

    if status is not None and status.outcome != GateOutcome.APPROVED:
        raise DeliveryError(f"{prepared.campaign_id} {prepared.occurrence_date}: the gate "
                            f"is {status.outcome.value}, nothing is published")
    catalog = runtime.catalog
    wait = sleep_until_fn or (lambda moment: sleep_until(moment, clock=clock))
    report = DeliveryReport(prepared.occurrence_id, prepared.campaign_id,
                            prepared.occurrence_date)
    posts = final_posts(runtime, prepared, status)

    def store_final(session: Session) -> tuple[dict[str, int], dict[str, Publication]]:
        done = _published_channels(session, prepared.occurrence_id)
        if bundle_hash(posts) != prepared.bundle_hash:
            store.store_rendered_posts(session, occurrence_id=prepared.occurrence_id,
                                       posts=posts)
            store.record_audit(session, campaign_id=prepared.campaign_id,
                               occurrence_date=prepared.occurrence_date, actor=ACTOR,
                               action="posts.signed", content_hash=bundle_hash(posts),
                               detail={"approved_bundle": prepared.bundle_hash,
                                       "signatories": status.signatory_names(catalog)
                                       if status else []})
        rows = store.current_posts(session, occurrence_id=prepared.occurrence_id)
        return {row.channel: stored_id(row) for row in rows}, done

    post_ids, done = await asyncio.to_thread(_in_session, runtime, store_final)
    for channel, publication in done.items():
        # "publishing": an earlier run died while sending (or armed) it; publish_post
        # decides (resent where the network recognises repeats, else "unknown").
        # "failed": publish_post tries a transient failure again (nothing went out) and
        # reports a refusal as still failed, until the office retries it.
        if publication.status not in (PublicationStatus.RESERVED,
                                      PublicationStatus.PUBLISHING,
                                      PublicationStatus.FAILED):
            report.already[channel] = publication.status
    by_time: dict[datetime, list[str]] = {}
    for post in posts:
        if post.channel in report.already:
            continue
        by_time.setdefault(post.publish_at, []).append(post.channel)

    # Everything the due second needs is made before it: the HTTP clients and the
    # publishers are shared (one Bluesky session, one Mastodon instance lookup) and warmed
    # up, the posts read and keyed, the notifier built, the publications reserved and
    # claimed; at the second only the sends remain.
    client_for = (lambda account: client) if client is not None else account_client
    notifier = runtime.notifier
    confirm_url_for = manual_confirm_url(runtime.base_url)
    for moment in sorted(by_time):
        channels = by_time[moment]
        reason = late_reason(catalog, prepared.campaign_id, moment, clock())
        armed: dict = {}
        armed_posts = None
        ready: ReadySends | None = None
        held: str | None = None
        if reason is None:
            # Arm shortly before the second (reserve + claim in one go), look for a crisis
            # freeze just before it, then wait: at the second only the sends remain.
            arm_at = moment - ARM_AHEAD
            if arm_at > clock():
                await wait(arm_at)
            armed, armed_posts = await asyncio.to_thread(
                arm_occurrence, runtime.engine, occurrence_id=prepared.occurrence_id,
                channels=channels)
            ready = await ready_occurrence(
                engine=runtime.engine, occurrence_id=prepared.occurrence_id,
                accounts=catalog.accounts, client=client_for, notifier=notifier,
                confirm_url_for=confirm_url_for, signer=runtime.signer,
                media_root=catalog.root, channels=channels,
                publisher_options=publisher_options, armed=armed, posts=armed_posts)
            if moment - FREEZE_LOOK_AHEAD > clock():
                await wait(moment - FREEZE_LOOK_AHEAD)
            # Crisis freeze: a non-crisis post due while a crisis is active is held.
            held = await asyncio.to_thread(hold_if_frozen, runtime, prepared, channels,
                                           moment)
            if held is None:
                # The durable note that the requests may leave now, with the whole burst.
                ours = await mark_for_sending(runtime.engine, armed)
                for channel in [c for c, p in armed.items() if stored_id(p) not in ours]:
                    del armed[channel]  # taken over by another run, which sends it
                    ready.jobs = [(post, job) for post, job in ready.jobs
                                  if post.channel != channel]
                    report.already[channel] = PublicationStatus.PUBLISHING
                await wait(moment)
                reason = late_reason(catalog, prepared.campaign_id, moment, clock())
        if reason is not None:
            if armed:
                await asyncio.to_thread(disarm, runtime.engine, armed, "late")
            interrupted = await asyncio.to_thread(_record_skip, runtime, prepared, channels,
                                                  reason)
            for channel in channels:
                if channel in interrupted:
                    report.unknown[channel] = interrupted[channel]
                else:
                    report.skipped[channel] = reason
            continue
        if held is not None:
            if armed:
                await asyncio.to_thread(disarm, runtime.engine, armed, "held: crisis freeze")
            report.held.update(dict.fromkeys(channels, held))
            continue
        assert ready is not None  # made ready above whenever the slot was not late
        started = clock()
        result: OccurrencePublication = await send_ready(ready)
        _collect(report, result, moment, started)
    await asyncio.to_thread(_record_outcome, runtime, prepared, report)
    return report


def _in_session(runtime: Runtime, work: Callable[[Session], Any]) -> Any:
    with store.session_scope(runtime.engine) as session:
        return work(session)


def _collect(report: DeliveryReport, result: OccurrencePublication, due: datetime,
             started: datetime) -> None:
    for channel, outcome in result.outcomes.items():
        if outcome.status == PublicationStatus.PUBLISHED:
            report.published[channel] = outcome.remote_url
            report.lateness_s[channel] = (started - due).total_seconds()
        elif outcome.status == PublicationStatus.AWAITING_MANUAL:
            report.awaiting_manual.append(channel)
        elif outcome.status == PublicationStatus.UNKNOWN:
            report.unknown[channel] = outcome.error or "unknown"
        elif outcome.status == PublicationStatus.SKIPPED:
            report.skipped[channel] = outcome.error or "skipped"
        else:
            report.failed[channel] = outcome.error or outcome.status
    for channel, error in result.errors.items():
        report.failed[channel] = f"{type(error).__name__}: {error}"


# One HTTP client per event loop and channel account, shared by all deliveries in the loop:
# connections and the publishers built on a client (one Bluesky session, one Mastodon
# instance lookup) are reused across campaigns. Per account, not one for all: httpx's
# connection pool scans every idle connection for each request it places, so one pool
# for 200 posts due in the same second took seconds to hand them out (measured: p95 3.8 s
# for 200 posts through one client with 200 idle connections, 0.2 s through five clients
# keeping at most 8 each). Real networks are separate hosts anyway.
_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary())
KEEPALIVE_PER_ACCOUNT = 8


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context (httpx's: certifi's CAs, or SSL_CERT_FILE / SSL_CERT_DIR as the
    process started with) of every channel client, made once per process: loading the
    CA bundle takes 0.1 s of CPU, and a new event loop — each direct crisis start, each
    flow run in its own loop — makes a client per account (a crisis to seven channels
    spent 0.9 s loading the same certificates seven times)."""
    return httpx.create_ssl_context()


def shared_client(account: str = "") -> httpx.AsyncClient:
    """The event loop's HTTP client for ``account`` (a channel account's name)."""
    clients = _CLIENTS.setdefault(asyncio.get_running_loop(), {})
    client = clients.get(account)
    if client is None or client.is_closed:
        client = clients[account] = httpx.AsyncClient(
            verify=tls_context(), timeout=httpx.Timeout(20.0, connect=5.0),
            limits=httpx.Limits(max_connections=200,
                                max_keepalive_connections=KEEPALIVE_PER_ACCOUNT))
    return client


def account_client(account: ChannelAccount) -> httpx.AsyncClient:
    return shared_client(account.name)


async def close_shared_client() -> None:
    """Close this event loop's shared clients (a worker that stops)."""
    clients = _CLIENTS.pop(asyncio.get_running_loop(), {})
    for client in clients.values():
        await client.aclose()


def _record_skip(runtime: Runtime, prepared: PreparedOccurrence, channels: list[str],
                 reason: str) -> dict[str, str]:
    """Skip the late channels; those an interrupted earlier attempt left "publishing" (a
    killed worker) after a request may have left become "unknown" instead (channel ->
    why); one it left armed and never sent is skipped like the rest."""
    interrupted: dict[str, str] = {}
    with store.session_scope(runtime.engine) as session:
        for post in store.current_posts(session, occurrence_id=prepared.occurrence_id):
            if post.channel not in channels:
                continue
            publication = store.get_publication(session, post_id=stored_id(post),
                                                channel=post.channel)
            if publication is not None and publication.status == PublicationStatus.RESERVED:
                store.mark_skipped(session, publication_id=stored_id(publication), reason=reason)
            elif publication is not None and publication.status == PublicationStatus.PUBLISHING:
                if store.skip_unsent(session, publication_id=stored_id(publication),
                                     reason=reason) is not None:
                    continue  # armed by a run that died before its second: never sent
                error = (f"{post.channel}: an earlier attempt was interrupted after it may have "
                         f"sent the post; too late to repeat it ({reason}). Look at the "
                         f"account, then `newsroom channels resolve {publication.id} "
                         "--published --url URL` or `--not-published`")
                store.mark_unknown(session, publication_id=stored_id(publication), error=error)
                store.record_audit(session, campaign_id=prepared.campaign_id,
                                   occurrence_date=prepared.occurrence_date, actor=ACTOR,
                                   action="publication.unknown", channel=post.channel,
                                   content_hash=post.content_hash,
                                   detail={"publication_id": publication.id,
                                           "reason": "interrupted_late", "error": error,
                                           "retryable": False})
                interrupted[post.channel] = error
        for channel in channels:
            if channel in interrupted:
                continue
            store.record_audit(session, campaign_id=prepared.campaign_id,
                               occurrence_date=prepared.occurrence_date, actor=ACTOR,
                               action="publication.skipped_late", channel=channel,
                               detail={"reason": reason})
    return interrupted


def _record_outcome(runtime: Runtime, prepared: PreparedOccurrence,
                    report: DeliveryReport) -> None:
    if report.published or report.awaiting_manual or report.already:
        complete = not (report.failed or report.unknown or report.skipped)
        status = OccurrenceStatus.PUBLISHED if complete else OccurrenceStatus.PARTIALLY_PUBLISHED
    else:
        status = OccurrenceStatus.SKIPPED
    if report.held:
        status = OccurrenceStatus.HELD
    with store.session_scope(runtime.engine) as session:
        store.set_occurrence_status(session, occurrence_id=prepared.occurrence_id,
                                    status=status.value)
        store.record_audit(session, campaign_id=prepared.campaign_id,
                           occurrence_date=prepared.occurrence_date, actor=ACTOR,
                           action="occurrence.delivered",
                           detail={"status": status.value,
                                   "published": report.published,
                                   "awaiting_manual": report.awaiting_manual,
                                   "skipped": report.skipped, "failed": report.failed,
                                   "held": report.held,
                                   "unknown": report.unknown,
                                   "lateness_s": report.lateness_s})
