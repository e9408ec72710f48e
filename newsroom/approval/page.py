"""What a link's holder is told on the approval page: their request, the gate's current
question and how it stands, and what became of the posts. Reads only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsroom import store
from newsroom.catalog.catalog import Catalog
from newsroom.store import ApprovalRequest, Occurrence, PostRecord, Publication

from .errors import ApprovalError, LinkTarget
from .gate import gate_requests, gate_status, occurrence_of, walk_chain
from .policy import campaign_of, utc_now
from .rules import collects_until_deadline
from .status import GateOutcome, GateStatus, StepStatus


@dataclass(frozen=True)
class ChannelOutcome:
    """One channel of an occurrence as published (or not yet)."""

    channel: str
    publish_at: datetime
    status: str | None  # the publication's status; None: not attempted yet
    url: str | None  # the post on the network (http or https only)
    published_at: datetime | None


@dataclass(frozen=True)
class LinkState:
    """What is true of one approval request and its gate, for the page its holder sees.

    Read only: a deadline that has passed but was not yet applied by the deadline sweeper
    is read as applied (``gate`` is what the sweeper will store), nothing is written.
    """

    request: ApprovalRequest
    gate: GateStatus  # the gate's current question (the latest version of the posts)
    superseded: bool  # the request asked about an earlier version than the gate does
    # This person's request about the gate's version (``request`` itself unless
    # superseded); None when they are not asked about it.
    current_request: ApprovalRequest | None
    deadline_passed: bool
    quorum_met: bool  # enough approvals for the rule (the gate may still be collecting)
    # Quorum met, and approvals still count (and name their signers) until the deadline.
    collecting: bool
    joint: bool  # the post names those who approved (signatories_in_text)
    channels: tuple[ChannelOutcome, ...]
    # The request's step of the approval chain (None: the chain has one step).
    step: StepStatus | None = None
    # The request's step is done (a later step is asked): its decision no longer counts.
    step_done: bool = False

    @property
    def published(self) -> tuple[ChannelOutcome, ...]:
        return tuple(c for c in self.channels if c.status == "published")


def _peek(session: Session, catalog: Catalog, occurrence: Occurrence,
          now: datetime, requests: list[ApprovalRequest] | None = None) -> GateStatus:
    """The gate's status now, a passed deadline applied, without writing anything."""
    walk = walk_chain(session, catalog, occurrence, now, write=False, requests=requests)
    if occurrence.gate_outcome is not None:
        return gate_status(catalog, occurrence, walk, GateOutcome(occurrence.gate_outcome),
                           "settled")
    if (occurrence.gate_bundle_hash is None
            or occurrence.bundle_hash != occurrence.gate_bundle_hash):
        return gate_status(catalog, occurrence, walk, GateOutcome.PENDING, "not asked yet")
    return gate_status(catalog, occurrence, walk, walk.outcome, walk.reason)


def _web_url(value: str | None) -> str | None:
    return value if value and value.split(":", 1)[0].lower() in ("http", "https") else None


def _channel_outcome(post: PostRecord, publication: Publication | None) -> ChannelOutcome:
    """One post of the occurrence and its publication, if one was attempted."""
    if publication is None:
        return ChannelOutcome(channel=post.channel, publish_at=post.publish_at, status=None,
                              url=None, published_at=None)
    return ChannelOutcome(channel=post.channel, publish_at=post.publish_at,
                          status=publication.status, url=_web_url(publication.remote_url),
                          published_at=publication.published_at)


def link_state(engine: Engine, catalog: Catalog, target: LinkTarget, *,
               now: datetime | None = None) -> LinkState:
    """What became of ``target``'s request, its gate and its posts (reads only).

    Only for a genuine link bound to its request (:func:`check_link` gives ``target``
    with the errors it raises for such a link): it tells the request's own person.
    """
    with store.session_scope(engine) as session:
        state = read_link_state(session, catalog, target, now=now)
        session.expunge_all()
    return state


def read_link_state(session: Session, catalog: Catalog, target: LinkTarget, *,
                    now: datetime | None = None,
                    requests: list[ApprovalRequest] | None = None,
                    channels: bool = True, checked_here: bool = False) -> LinkState:
    """:func:`link_state` in ``session`` (the caller's transaction, so what it reads
    beside is of the same moment). ``requests``: all of the occurrence's requests, read
    in ``session`` already (they are not read again). Without ``channels`` the state's
    channels are empty (the posts and their publications are not read).
    ``checked_here``: ``target`` was read in this transaction (``check_link(...,
    session=session)``), so its request and occurrence are not read again."""
    now = utc_now(now)
    occurrence_id = store.stored_id(target.occurrence)
    request: ApprovalRequest | None
    if checked_here:
        occurrence, request = target.occurrence, target.request
    else:
        occurrence = occurrence_of(session, occurrence_id)
        request = session.get(ApprovalRequest, target.request.id, populate_existing=True)
    if request is None:
        raise ApprovalError(f"no approval request {target.request.id}")
    campaign = campaign_of(catalog, occurrence.campaign_id)
    gate = _peek(session, catalog, occurrence, now, requests)
    superseded = (occurrence.gate_bundle_hash is not None
                  and request.bundle_hash != occurrence.gate_bundle_hash)
    current: ApprovalRequest | None = request
    if superseded:
        current = next((r for r in gate_requests(session, occurrence, requests)
                        if r.person_id == request.person_id), None)
    outcomes: tuple[ChannelOutcome, ...] = ()
    if channels:
        publications = {publication.channel: publication for publication, _ in
                        store.occurrence_publications(session, occurrence_id=occurrence_id)}
        outcomes = tuple(
            _channel_outcome(row, publications.get(row.channel))
            for row in sorted(store.current_posts(session, occurrence_id=occurrence_id),
                              key=lambda r: (r.publish_at, r.channel)))
    quorum_met = bool(gate.asked) and gate.needed > 0 and len(gate.approved) >= gate.needed
    mine = current or request
    step = gate.steps[mine.step] if len(gate.steps) > 1 and mine.step < len(gate.steps) else None
    return LinkState(
        request=request, gate=gate, superseded=superseded, current_request=current,
        deadline_passed=now >= gate.deadline, quorum_met=quorum_met,
        collecting=(quorum_met and gate.outcome == GateOutcome.PENDING
                    and collects_until_deadline(campaign.approval.chain[gate.step])
                    and now < gate.deadline),
        joint=campaign.signatories_in_text, channels=outcomes, step=step,
        step_done=step is not None and mine.step < gate.step)
