"""Crisis mode: publish a crisis message on every crisis channel now, and hold the rest.

A **crisis campaign** is a campaign file whose slots are ``on_demand: true`` (see
``campaigns/unwetterwarnung.yaml``). Triggering it (:func:`start_crisis`)

1. records a **crisis** row (who, when, the campaign, the message variables given with
   ``--set``) — the crisis is *active* until :func:`end_crisis`;
2. renders the template "now" with those variables on the channels of the campaign's
   on-demand slots (the crisis channels; ``newsroom crisis status`` warns when a
   ``crisis: true`` account is missing there) as its own **occurrence**, dated today
   and keyed by the trigger (``occurrence.trigger_key``): a crisis campaign triggered
   twice on one day has two occurrences and two posts per channel; a retried run of the
   *same* trigger finds its crisis row, renders the same posts (same time, same text,
   same idempotency keys) and never publishes twice;
3. is published at once when the template is ``pre_approved`` (all channels
   concurrently), or — the **fast path** — after one approver (``approver`` or the
   campaign's first) approved through the ordinary approval gate with a short deadline
   (:func:`ask_approver`). A gate that ends other than approved ends the crisis, and so
   does a message that went out on no channel (:func:`end_if_nowhere_online`).

**Freeze.** While any crisis is active, :func:`hold_if_frozen` (called by
``newsroom.delivery.deliver_occurrence`` just before it publishes) holds every post of a
non-crisis campaign that falls due: nothing is sent, the occurrence becomes ``held``,
each channel gets a ``publication.held`` audit event. :func:`held_publications` lists
them. Ending the crisis releases nothing by itself: each held occurrence needs a fresh
look by the office and an explicit :func:`release_held` (``newsroom crisis release``),
which delivers it under the campaign's late policy — inside its grace window it is
published (once), outside it is skipped and reported.

Nothing here imports Prefect (``flows/crisis.py`` wraps these functions).

Its size (about 600 lines): triggering, the freeze it starts, its end and the release of
held posts are one life cycle with one audit story.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsroom import store
from newsroom.catalog.catalog import Catalog
from newsroom.catalog.models import Campaign, ChannelAccount
from newsroom.catalog.schedule import on_demand_occurrence
from newsroom.channels import measure_text
from newsroom.delivery import (
    DeliveryReport,
    PreparedOccurrence,
    deliver_occurrence,
    late_reason,
    prepare_occurrence,
)
from newsroom.errors import NewsroomError
from newsroom.freeze import ACTOR, active_crisis
from newsroom.posts import RenderedPost, bundle_hash
from newsroom.rendering.render import render_post
from newsroom.runtime import Runtime
from newsroom.store import (
    CrisisRecord,
    Occurrence,
    OccurrenceStatus,
    PostRecord,
    Publication,
    PublicationStatus,
    stored_id,
)
from newsroom.timeutil import BERLIN, format_local

if TYPE_CHECKING:
    from newsroom.approval import GateStatus

logger = logging.getLogger("newsroom.crisis")

LIST_SEPARATOR = "|"  # --set hinweise="Erstens|Zweitens" for a list variable


class CrisisError(NewsroomError):
    """A crisis cannot be started, ended or released as asked."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --- the campaign and its variables ------------------------------------------------------


def crisis_campaign(catalog: Catalog, campaign_id: str) -> Campaign:
    try:
        campaign = catalog.campaign(campaign_id).campaign
    except LookupError as exc:
        raise CrisisError(str(exc)) from None
    if not any(slot.on_demand for slot in campaign.slots):
        crisis = sorted(c for c, s in catalog.campaigns.items()
                        if any(slot.on_demand for slot in s.campaign.slots))
        raise CrisisError(f"{campaign_id!r} is not a crisis campaign (it has no `on_demand: "
                          f"true` slot); crisis campaigns: {', '.join(crisis) or 'none'}")
    return campaign


def crisis_campaigns(catalog: Catalog) -> list[str]:
    return sorted(c for c, s in catalog.campaigns.items()
                  if any(slot.on_demand for slot in s.campaign.slots))


def crisis_accounts(catalog: Catalog) -> list[ChannelAccount]:
    """Accounts marked ``crisis: true`` in the registry."""
    return [a for a in catalog.accounts.values() if a.crisis]


def campaign_channels(campaign: Campaign) -> list[str]:
    seen: list[str] = []
    for slot in campaign.slots:
        if slot.on_demand:
            seen.extend(c for c in slot.channels if c not in seen)
    return seen


def message_variables(campaign: Campaign, given: dict[str, Any]) -> dict[str, Any]:
    """The template variables with ``given`` applied (empty values keep the default).

    Only variables the campaign declares under ``content.variables`` may be set (a typo
    is an error, not a silently ignored value); for a list variable a text is split at
    ``|`` ("Erstens|Zweitens").
    """
    defaults = dict(campaign.content.variables)
    result = dict(defaults)
    for key, value in given.items():
        if key not in defaults:
            close = difflib.get_close_matches(key, list(defaults), n=1)
            raise CrisisError(
                f"{campaign.id} has no variable {key!r}"
                + (f"; did you mean {close[0]!r}?" if close else "")
                + f" (its variables: {', '.join(sorted(defaults)) or 'none'})")
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if isinstance(defaults[key], list) and isinstance(value, str):
            value = [part.strip() for part in value.split(LIST_SEPARATOR) if part.strip()]
        result[key] = value
    return result


def render_crisis(catalog: Catalog, campaign_id: str, at: datetime,
                  variables: dict[str, Any]) -> list[RenderedPost]:
    """The crisis campaign's posts for a trigger at ``at``, with ``variables`` (already
    merged by :func:`message_variables`). Raises CrisisError for a post that is too long
    for its network (the message given is too long: shorten it)."""
    source = catalog.campaign(campaign_id)
    campaign = source.campaign
    content = campaign.content.model_copy(update={"variables": variables})
    adapted = dataclasses.replace(source, campaign=campaign.model_copy(
        update={"content": content}))
    occurrence = on_demand_occurrence(campaign, at)
    posts = []
    for channel, moment in occurrence.channel_times().items():
        account = catalog.account(channel)
        post = render_post(catalog, adapted, account, publish_at=moment,
                           occurrence_date=occurrence.date, signatories=[])
        for measurement in measure_text(post.text, account, has_image=bool(post.media)):
            if not measurement.ok:
                raise CrisisError(
                    f"the {channel} post is too long: {measurement.describe()}; shorten the "
                    "text given with --set (or give the channel a shorter text in "
                    f"campaigns/{campaign_id}.yaml)")
        posts.append(post)
    return posts


# --- starting ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CrisisStart:
    crisis_id: int
    trigger_key: str
    campaign_id: str
    started_at: datetime
    pre_approved: bool
    approver: str | None
    created: bool  # this call recorded the crisis (False: a retry found it)
    prepared: PreparedOccurrence


def new_trigger_key(campaign_id: str, at: datetime | None = None) -> str:
    at = (at or _utcnow()).astimezone(UTC)
    return f"{campaign_id}-{at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def _find(session: Session, trigger_key: str) -> CrisisRecord | None:
    query = select(CrisisRecord).where(CrisisRecord.trigger_key == trigger_key)
    return session.exec(query.execution_options(populate_existing=True)).first()


def _audit(session: Session, record: CrisisRecord, action: str, actor: str, *,
           occurrence_date: date | None = None, channel: str | None = None,
           **detail: Any) -> None:
    day = occurrence_date or record.started_at.astimezone(BERLIN).date()
    store.record_audit(session, campaign_id=record.campaign_id, occurrence_date=day,
                       actor=actor, action=action, channel=channel,
                       detail={"crisis_id": record.id, "trigger_key": record.trigger_key,
                               **detail})


def authorize_start(runtime: Runtime, campaign_id: str, by: str, *, via: str,
                    trigger_key: str | None = None) -> str:
    """The registry id of the person ``by`` names, when their role allows starting a
    crisis message (:func:`newsroom.catalog.roles.authorize`); else the refusal is audited
    (``crisis.refused``, once per trigger) and :class:`NotPermitted` raised."""
    from newsroom.catalog.roles import NotPermitted, Permission, authorize

    try:
        return authorize(runtime.catalog.index, by, Permission.START_CRISIS).id
    except NotPermitted as exc:
        event: dict[str, Any]
        event = dict(campaign_id=campaign_id,
                     occurrence_date=_utcnow().astimezone(BERLIN).date(),
                     actor=f"refused:{via}", action="crisis.refused",
                     detail={"named": " ".join((by or "").split())[:100], "via": via,
                             "trigger_key": trigger_key, "reason": str(exc)})
        with store.session_scope(runtime.engine) as session:
            if trigger_key:
                store.record_audit_once(session, once_key=f"crisis-refused:{trigger_key}",
                                        **event)
            else:
                store.record_audit(session, **event)
        logger.warning("crisis %s not started: %s", campaign_id, exc)
        raise


def start_crisis(runtime: Runtime, campaign_id: str, variables: dict[str, Any], *,
                 by: str, trigger_key: str | None = None, at: datetime | None = None,
                 approver: str | None = None, flow_run_id: str | None = None,
                 via: str = "cli") -> CrisisStart:
    """Record the crisis, render and store its posts; idempotent per ``trigger_key``.

    ``by`` names who starts it: a registry person whose role allows it (office-admin),
    else :class:`~newsroom.catalog.roles.NotPermitted` and nothing is recorded but the
    refusal. A second call with the same ``trigger_key`` (a retried flow run, the CLI's
    fallback after Prefect did not start the run) returns the same crisis and the same
    posts.
    """
    from newsroom.catalog.approvers import resolve_approvers
    from newsroom.sync import sync_campaign

    catalog = runtime.catalog
    campaign = crisis_campaign(catalog, campaign_id)
    trigger_key = trigger_key or new_trigger_key(campaign_id, at)
    by = authorize_start(runtime, campaign_id, by, via=via, trigger_key=trigger_key)
    pre_approved = campaign.approval.pre_approved
    with store.session_scope(runtime.engine) as session:
        record = _find(session, trigger_key)
    created = record is None
    if record is None:
        at = (at or _utcnow()).astimezone(UTC)
        merged = message_variables(campaign, variables)
        if not pre_approved:
            approver = approver or None
            if approver is None:
                asked = resolve_approvers(campaign.approval, catalog.index, at.date())
                if not asked:
                    raise CrisisError(f"{campaign_id} names no approver; give --approver")
                approver = asked[0].person.id
            if approver not in catalog.index.people:
                close = difflib.get_close_matches(approver, list(catalog.index.people), n=1)
                raise CrisisError(f"no person {approver!r} in registry/people.yaml"
                                  + (f"; did you mean {close[0]!r}?" if close else ""))
        else:
            approver = None
        render_crisis(catalog, campaign_id, at, merged)  # refuse before recording anything
        with store.session_scope(runtime.engine) as session:
            sync_campaign(session, catalog, campaign_id, actor=ACTOR)
            record = CrisisRecord(trigger_key=trigger_key, campaign_id=campaign_id,
                                  variables=merged, started_at=at, started_by=by,
                                  approver=approver)
            session.add(record)
            try:
                session.commit()
            except IntegrityError:  # the same trigger, started a moment ago elsewhere
                session.rollback()
                record = _find(session, trigger_key)
                created = False
                assert record is not None
            else:
                session.refresh(record)
                _audit(session, record, "crisis.started", by, campaign=campaign_id,
                       variables=merged, approver=approver, pre_approved=pre_approved)
    # Rendered from the stored row: a retry renders exactly the same posts.
    posts = render_crisis(catalog, campaign_id, record.started_at, dict(record.variables))
    first = min(p.publish_at for p in posts)
    day = posts[0].occurrence
    bundle = bundle_hash(posts)
    with store.session_scope(runtime.engine) as session:
        sync_campaign(session, catalog, campaign_id, actor=ACTOR)
        occurrence = store.get_or_create_occurrence(
            session, campaign_id=campaign_id, occurrence_date=day, first_publish_at=first,
            trigger_key=trigger_key)
        changed = False
        if occurrence.bundle_hash != bundle:
            store.store_rendered_posts(session, occurrence_id=stored_id(occurrence), posts=posts)
            store.record_audit(session, campaign_id=campaign_id, occurrence_date=day,
                               actor=ACTOR, action="posts.rendered", content_hash=bundle,
                               detail={"channels": sorted(p.channel for p in posts),
                                       "crisis_id": record.id, "trigger_key": trigger_key})
            changed = True
        if flow_run_id and occurrence.flow_run_id != flow_run_id:
            store.set_flow_run(session, occurrence_id=stored_id(occurrence),
                               flow_run_id=flow_run_id)
        row = session.get(CrisisRecord, record.id)
        if row is not None and row.occurrence_id != occurrence.id:
            row.occurrence_id = occurrence.id
            session.add(row)
            session.commit()
        prepared = PreparedOccurrence(
            occurrence_id=stored_id(occurrence), campaign_id=campaign_id, occurrence_date=day,
            bundle_hash=bundle, first_publish_at=first, pre_approved=pre_approved,
            changed=changed, posts=tuple(posts))
    return CrisisStart(crisis_id=stored_id(record), trigger_key=trigger_key,
                       campaign_id=campaign_id, started_at=record.started_at,
                       pre_approved=pre_approved, approver=record.approver, created=created,
                       prepared=prepared)


# --- the fast path: one approver, a short deadline ---------------------------------------


def ask_approver(runtime: Runtime, start: CrisisStart, *, deadline_minutes: float = 15,
                 now: datetime | None = None) -> GateStatus:
    """Open the occurrence's gate for one person with a deadline ``deadline_minutes`` from
    the trigger, and send the approval message (once). Returns the gate's status."""
    from newsroom import approval

    if start.pre_approved or not start.approver:
        raise CrisisError(f"{start.campaign_id} is pre-approved: nobody is asked")
    now = now or _utcnow()
    deadline = start.started_at + timedelta(minutes=deadline_minutes)
    prepared = start.prepared
    with store.session_scope(runtime.engine) as session:
        occurrence = session.get(Occurrence, prepared.occurrence_id)
        assert occurrence is not None
        if occurrence.gate_outcome is None:
            store.set_gate_bundle(session, occurrence_id=stored_id(occurrence),
                                  bundle_hash=prepared.bundle_hash)
            request, created = store.ensure_approval_request(
                session, occurrence_id=stored_id(occurrence), person_id=start.approver,
                bundle_hash=prepared.bundle_hash, deadline=deadline)
            if created:
                store.record_audit(
                    session, campaign_id=start.campaign_id,
                    occurrence_date=prepared.occurrence_date, actor=ACTOR,
                    action="approval.requested", content_hash=prepared.bundle_hash,
                    detail={"person": start.approver, "request_id": request.id,
                            "deadline": deadline.isoformat(), "crisis_id": start.crisis_id,
                            "fast_path": True})
    approval.notify_approvers(runtime.engine, runtime.catalog,
                              occurrence_id=prepared.occurrence_id, notifier=runtime.notifier,
                              signer=runtime.signer, base_url=runtime.base_url, now=now)
    return approval.evaluate_gate(runtime.engine, runtime.catalog,
                                  occurrence_id=prepared.occurrence_id)


async def publish_crisis(runtime: Runtime, start: CrisisStart,
                         status: GateStatus | None = None, **deliver_options: Any
                         ) -> DeliveryReport | None:
    """Publish the crisis posts on all channels at once (exactly once per trigger).

    Fast path: ``status`` is the settled gate; anything but approved publishes nothing,
    ends the crisis (no freeze for a message that did not go out) and returns None.
    """
    import asyncio

    from newsroom.approval import GateOutcome

    if not start.pre_approved:
        if status is None or status.outcome != GateOutcome.APPROVED:
            outcome = status.outcome.value if status else "not asked"
            await asyncio.to_thread(end_crisis, runtime.engine, by=f"gate:{outcome}",
                                    crisis_id=start.crisis_id)
            return None
    # The gate was checked here; the crisis template has no signatories to fill in.
    report = await deliver_occurrence(runtime, start.prepared, None, **deliver_options)
    await asyncio.to_thread(end_if_nowhere_online, runtime, start)
    return report


NOTHING_PUBLISHED = f"{ACTOR}:published-on-no-channel"
_MAY_BE_ONLINE = (PublicationStatus.PUBLISHED.value, PublicationStatus.PUBLISHING.value,
                  PublicationStatus.UNKNOWN.value)


def end_if_nowhere_online(runtime: Runtime, start: CrisisStart) -> bool:
    """End the crisis when its message is online on no channel (nor may be: unknown, or
    being published): a crisis that reached nobody must not hold every other post. True
    when this call ended it."""
    with store.session_scope(runtime.engine) as session:
        online = session.exec(
            select(Publication.id).join(PostRecord, col(PostRecord.id) == Publication.post_id)
            .where(PostRecord.occurrence_id == start.prepared.occurrence_id,
                   col(Publication.status).in_(_MAY_BE_ONLINE))).first()
    if online is not None:
        return False
    return bool(end_crisis(runtime.engine, by=NOTHING_PUBLISHED, crisis_id=start.crisis_id))


def is_active(engine: Engine, crisis_id: int) -> bool:
    with store.session_scope(engine) as session:
        record = session.get(CrisisRecord, crisis_id)
        return record is not None and record.ended_at is None


# --- state -------------------------------------------------------------------------------


def crises_since(engine: Engine, since: datetime) -> list[CrisisRecord]:
    with store.session_scope(engine) as session:
        query = (select(CrisisRecord).where(CrisisRecord.started_at >= since)
                 .order_by(col(CrisisRecord.started_at), col(CrisisRecord.id)))
        return list(session.exec(query))


def end_crisis(engine: Engine, *, by: str, crisis_id: int | None = None,
               now: datetime | None = None) -> list[CrisisRecord]:
    """End the active crisis (all of them, or ``crisis_id``); returns those ended.

    Held posts stay held: each needs ``newsroom crisis release``.
    """
    if not by.strip():
        raise CrisisError("say who ends the crisis (by=…)")
    now = now or _utcnow()
    ended = []
    with store.session_scope(engine) as session:
        query = select(CrisisRecord).where(col(CrisisRecord.ended_at).is_(None))
        if crisis_id is not None:
            query = query.where(CrisisRecord.id == crisis_id)
        for record in session.exec(query):
            record.ended_at, record.ended_by = now, by
            session.add(record)
            ended.append(record)
        session.commit()
        for record in ended:
            session.refresh(record)
            _audit(session, record, "crisis.ended", by, started_by=record.started_by,
                   started_at=record.started_at.isoformat())
    return ended


# --- the freeze (newsroom/freeze.py) and what it held ------------------------------------


@dataclass(frozen=True)
class HeldOccurrence:
    occurrence_id: int
    campaign_id: str
    occurrence_date: date
    channels: tuple[tuple[str, datetime], ...]  # (channel, due) without a publication
    late_reason: str | None  # why a release now would skip it (None: still in time)


def held_publications(runtime: Runtime, *, now: datetime | None = None) -> list[HeldOccurrence]:
    """Held occurrences and their unpublished posts, with whether a release is still in
    time (the campaign's late policy)."""

    now = now or _utcnow()
    result = []
    with store.session_scope(runtime.engine) as session:
        query = (select(Occurrence).where(Occurrence.status == OccurrenceStatus.HELD.value)
                 .order_by(col(Occurrence.first_publish_at), col(Occurrence.id)))
        for occurrence in session.exec(query):
            # A "reserved" publication was armed and disarmed: nothing went out.
            published = {p.channel for p, _ in session.exec(
                select(Publication, PostRecord)
                .join(PostRecord, col(PostRecord.id) == col(Publication.post_id))
                .where(PostRecord.occurrence_id == occurrence.id))
                if p.status != PublicationStatus.RESERVED.value}
            posts = [(p.channel, p.publish_at) for p in
                     store.current_posts(session, occurrence_id=stored_id(occurrence))
                     if p.channel not in published]
            try:
                late = min((late_reason(runtime.catalog, occurrence.campaign_id, due, now)
                            for _, due in posts), key=lambda r: r is not None, default=None)
            except LookupError:
                late = "the campaign is no longer in the catalog"
            result.append(HeldOccurrence(stored_id(occurrence), occurrence.campaign_id,
                                         occurrence.occurrence_date,
                                         tuple(sorted(posts, key=lambda p: (p[1], p[0]))),
                                         late))
    return result


def mark_released(runtime: Runtime, occurrence_id: int, *, by: str) -> HeldOccurrence:
    """Record the office's decision to release a held occurrence (it is ``approved``
    again); the caller then delivers it. Refused while a crisis is active."""
    if not by.strip():
        raise CrisisError("say who releases (by=…)")
    active = active_crisis(runtime.engine)
    if active:
        raise CrisisError("a crisis is still active ("
                          + ", ".join(f"{c.campaign_id} #{c.id}" for c in active)
                          + "); end it first with `newsroom crisis end`")
    held = {h.occurrence_id: h for h in held_publications(runtime)}
    item = held.get(occurrence_id)
    if item is None:
        raise CrisisError(f"occurrence {occurrence_id} is not held; `newsroom crisis status` "
                          "lists the held ones")
    with store.session_scope(runtime.engine) as session:
        store.set_occurrence_status(session, occurrence_id=occurrence_id,
                                    status=OccurrenceStatus.APPROVED.value)
        for channel, due in item.channels:
            store.record_audit(session, campaign_id=item.campaign_id,
                               occurrence_date=item.occurrence_date, actor=by,
                               action="publication.released", channel=channel,
                               detail={"occurrence_id": occurrence_id, "due": due.isoformat(),
                                       "late": item.late_reason})
    return item


def reschedule_held(runtime: Runtime, occurrence_id: int, at: datetime, *, by: str,
                    now: datetime | None = None) -> HeldOccurrence:
    """Move a held occurrence's unpublished posts to ``at`` (the office's fresh look after
    the crisis); the caller then starts its campaign run (``newsroom crisis reschedule``).

    A new time is new content: for a campaign that is not pre-approved the approvers are
    asked again (the gate's bundle changes) and see the new time. The campaign's late
    policy still rules: ``at`` must lie inside the grace window of each post's original
    time (a commemoration never goes out the day after). Refused while a crisis is active.
    """

    if not by.strip():
        raise CrisisError("say who reschedules (by=…)")
    if at.tzinfo is None:
        raise CrisisError("give the new time with its time zone (Europe/Berlin)")
    now = now or _utcnow()
    if at <= now:
        raise CrisisError(f"{format_local(at)} is not in the future")
    active = active_crisis(runtime.engine)
    if active:
        raise CrisisError("a crisis is still active ("
                          + ", ".join(f"{c.campaign_id} #{c.id}" for c in active)
                          + "); end it first with `newsroom crisis end`")
    item = {h.occurrence_id: h for h in held_publications(runtime, now=now)}.get(occurrence_id)
    if item is None:
        raise CrisisError(f"occurrence {occurrence_id} is not held; `newsroom crisis status` "
                          "lists the held ones")
    with store.session_scope(runtime.engine) as session:
        occurrence = session.get(Occurrence, occurrence_id)
        assert occurrence is not None  # listed as held just now
        # The catalog's times, not an earlier move: the policy counts from the slot.
        original = {p.channel: p.publish_at for p in _catalog_posts(runtime, occurrence)}
    for channel, due in item.channels:
        reason = late_reason(runtime.catalog, item.campaign_id,
                              original.get(channel, due), at)
        if reason is not None:
            raise CrisisError(f"{channel} cannot go out at {format_local(at)}: {reason}. "
                              "Choose an "
                              "earlier time, or leave it held")
    pre_approved = runtime.catalog.campaign(item.campaign_id).campaign.approval.pre_approved
    with store.session_scope(runtime.engine) as session:
        store.move_occurrence(session, occurrence_id=occurrence_id, to=at,
                              channels=[channel for channel, _ in item.channels],
                              status=(OccurrenceStatus.APPROVED if pre_approved
                                      else OccurrenceStatus.AWAITING_APPROVAL).value)
        for channel, due in item.channels:
            store.record_audit(session, campaign_id=item.campaign_id,
                               occurrence_date=item.occurrence_date, actor=by,
                               action="publication.rescheduled", channel=channel,
                               detail={"occurrence_id": occurrence_id, "due": due.isoformat(),
                                       "moved_to": at.isoformat(),
                                       "approval_again": not pre_approved})
    return item


def _catalog_posts(runtime: Runtime, occurrence: Occurrence) -> list[RenderedPost]:
    from newsroom.rendering.render import render_occurrence

    try:
        return render_occurrence(runtime.catalog, occurrence.campaign_id,
                                 occurrence.occurrence_date)
    except (LookupError, NewsroomError) as exc:
        raise CrisisError(f"{occurrence.campaign_id} {occurrence.occurrence_date}: cannot be "
                          f"rendered from the catalog any more ({exc})") from None


async def release_held(runtime: Runtime, occurrence_id: int, *, by: str,
                       **deliver_options: Any) -> DeliveryReport:
    """Release a held occurrence and deliver it in this process: published (once) inside
    its grace window, skipped and reported outside it."""
    import asyncio

    from newsroom import approval

    item = await asyncio.to_thread(mark_released, runtime, occurrence_id, by=by)
    prepared = await asyncio.to_thread(prepare_occurrence, runtime, item.campaign_id,
                                       item.occurrence_date)
    status = None
    if not prepared.pre_approved:
        status = await asyncio.to_thread(approval.evaluate_gate, runtime.engine,
                                         runtime.catalog, occurrence_id=occurrence_id)
    return await deliver_occurrence(runtime, prepared, status, **deliver_options)
