"""The crisis freeze: while a crisis is active, no post of another campaign goes out.

:func:`hold_if_frozen` is asked by ``newsroom.delivery.deliver_occurrence`` just before it
publishes: a non-crisis occurrence due while a crisis is active is *held* (nothing sent,
the occurrence ``held``, a ``publication.held`` audit event per channel) until the office
releases it (``newsroom.crisis.release_held``). Starting and ending crises, and releasing
what was held, is ``newsroom/crisis.py``; this module is what delivery needs of it, so the
imports point one way: crisis → delivery → freeze.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from newsroom import store
from newsroom.catalog.models import CampaignKind
from newsroom.store import CrisisRecord, OccurrenceStatus

if TYPE_CHECKING:
    from newsroom.delivery import PreparedOccurrence
    from newsroom.runtime import Runtime

logger = logging.getLogger("newsroom.crisis")

ACTOR = "newsroom:crisis"


_FREEZE_CACHE: dict[int, tuple[float, list]] = {}
_FREEZE_LOCK = threading.Lock()
FREEZE_CHECK_MAX_AGE_S = 0.25


def active_crisis_now(engine: Engine) -> list[CrisisRecord]:
    """:func:`active_crisis`, read at most every quarter second per process.

    Many posts fall due at the same second; they share one look at the database instead
    of queueing for it. A crisis started less than 0.25 s before a post's second may
    therefore not hold that post.
    """
    with _FREEZE_LOCK:
        cached = _FREEZE_CACHE.get(id(engine))
        if cached is not None and time.monotonic() - cached[0] < FREEZE_CHECK_MAX_AGE_S:
            return cached[1]
        active = active_crisis(engine)
        _FREEZE_CACHE[id(engine)] = (time.monotonic(), active)
        return active


def active_crisis(engine: Engine) -> list[CrisisRecord]:
    """The crises that have not ended, oldest first (empty: no crisis, no freeze)."""
    with store.session_scope(engine) as session:
        query = (select(CrisisRecord).where(col(CrisisRecord.ended_at).is_(None))
                 .order_by(col(CrisisRecord.started_at), col(CrisisRecord.id)))
        return list(session.exec(query))


def hold_if_frozen(runtime: Runtime, prepared: PreparedOccurrence, channels: list[str],
                   due: datetime) -> str | None:
    """Hold ``channels`` of a non-crisis occurrence due now when a crisis is active.

    Returns the reason (and records the hold) or None when the post may go out.
    """
    # The crisis first: the burst's occurrences share its cached look, and only while a
    # crisis is active does the campaign matter (reading the catalog looks at every file
    # of the folder: 40 occurrences of a burst asking at once queued 0.2-0.4 s for it,
    # past their second).
    active = active_crisis_now(runtime.engine)
    if not active:
        return None
    campaign = runtime.catalog.campaign(prepared.campaign_id).campaign
    if campaign.kind == CampaignKind.CRISIS or any(s.on_demand for s in campaign.slots):
        return None
    names = ", ".join(f"{c.campaign_id} (#{c.id})" for c in active)
    reason = (f"held: crisis {names} is active; after `newsroom crisis end` the office "
              "decides with `newsroom crisis release`")
    with store.session_scope(runtime.engine) as session:
        store.set_occurrence_status(session, occurrence_id=prepared.occurrence_id,
                                    status=OccurrenceStatus.HELD.value)
        for channel in channels:
            store.record_audit(session, campaign_id=prepared.campaign_id,
                               occurrence_date=prepared.occurrence_date, actor=ACTOR,
                               action="publication.held", channel=channel,
                               detail={"occurrence_id": prepared.occurrence_id,
                                       "due": due.isoformat(),
                                       "crisis_ids": [c.id for c in active]})
    logger.warning("%s %s held on %s: a crisis is active", prepared.campaign_id,
                   prepared.occurrence_date, ", ".join(channels))
    return reason
