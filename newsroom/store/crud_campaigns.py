"""Campaign records: the catalog's current definition of each campaign, and its removal."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from newsroom.errors import StoreError
from newsroom.store.crud_common import get_row, insert_or_get, require_aware
from newsroom.store.models import CampaignRecord, utcnow


def definition_hash(definition: dict) -> str:
    """SHA-256 of the canonical JSON of a campaign definition."""
    try:
        canonical = json.dumps(
            definition, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"campaign definition is not plain JSON ({exc}); "
            "pass e.g. model.model_dump(mode='json')"
        ) from None
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def get_campaign(session: Session, *, campaign_id: str) -> CampaignRecord | None:
    return session.get(CampaignRecord, campaign_id)


def upsert_campaign(
    session: Session,
    *,
    campaign_id: str,
    title: str,
    kind: str,
    topic: str,
    source_file: str,
    definition: dict,
) -> tuple[CampaignRecord, bool]:
    """Store the campaign's current definition. ``changed`` is False when nothing differs.

    A campaign that was marked removed and comes back counts as changed.
    """
    digest = definition_hash(definition)
    definition = json.loads(json.dumps(definition))  # a private copy, as stored
    values: dict[str, Any] = {
        "title": title,
        "kind": kind,
        "topic": topic,
        "source_file": source_file,
        "definition_hash": digest,
    }
    record = session.get(CampaignRecord, campaign_id)
    if record is None:
        record, created = insert_or_get(
            session,
            CampaignRecord(id=campaign_id, definition=definition, **values),
            lambda: session.get(CampaignRecord, campaign_id, populate_existing=True),
        )
        if created:
            session.commit()
            return record, True
    changed = record.removed_at is not None or any(
        getattr(record, name) != value for name, value in values.items()
    )
    if changed:
        for name, value in values.items():
            setattr(record, name, value)
        record.definition = definition
        record.removed_at = None
        record.updated_at = utcnow()
        session.add(record)
        session.commit()
    return record, changed


def mark_campaign_removed(
    session: Session, *, campaign_id: str, at: datetime | None = None
) -> CampaignRecord:
    """Note that the campaign left the catalog (its history stays). Idempotent."""
    record = get_row(session, CampaignRecord, campaign_id)
    if record.removed_at is None:
        at = at or utcnow()
        require_aware(at, "at")
        record.removed_at = at
        record.updated_at = at
        session.add(record)
        session.commit()
    return record


def active_campaigns(session: Session) -> list[CampaignRecord]:
    query = select(CampaignRecord).where(col(CampaignRecord.removed_at).is_(None))
    return list(session.exec(query.order_by(col(CampaignRecord.id))))
