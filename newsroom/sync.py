"""Keep the store's record of campaigns in step with the catalog files.

The store keeps every campaign definition it has seen (with its hash), so an edited or
deleted file never erases history: removal only marks the record removed, and both
changes land in the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session

from . import store
from .catalog.catalog import Catalog
from .errors import relative_path


@dataclass
class SyncResult:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def sync_catalog(session: Session, catalog: Catalog, *, actor: str = "catalog-sync") -> SyncResult:
    result = SyncResult()
    known = {record.id for record in store.active_campaigns(session)}
    for campaign_id in sorted(catalog.campaigns):
        getattr(result, sync_campaign(session, catalog, campaign_id, actor=actor)).append(
            campaign_id)
    for campaign_id in sorted(known - set(catalog.campaigns)):
        store.mark_campaign_removed(session, campaign_id=campaign_id)
        store.record_audit(session, campaign_id=campaign_id, actor=actor, action="campaign.removed")
        result.removed.append(campaign_id)
    return result


def sync_campaign(session: Session, catalog: Catalog, campaign_id: str, *,
                  actor: str = "catalog-sync") -> str:
    """Record one campaign's current definition: "added", "changed" or "unchanged"."""
    source = catalog.campaign(campaign_id)
    campaign = source.campaign
    existed = store.get_campaign(session, campaign_id=campaign_id) is not None
    _, changed = store.upsert_campaign(
        session,
        campaign_id=campaign_id,
        title=campaign.title,
        kind=campaign.kind.value,
        topic=campaign.topic,
        source_file=relative_path(source.path),
        definition=campaign.model_dump(mode="json", by_alias=True),
    )
    if changed:
        store.record_audit(
            session,
            campaign_id=campaign_id,
            actor=actor,
            action="campaign.added" if not existed else "campaign.changed",
            detail={"file": relative_path(source.path)},
        )
    if not existed:
        return "added"
    return "changed" if changed else "unchanged"
