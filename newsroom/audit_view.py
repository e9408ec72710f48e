"""The audit trail as people read it (``newsroom audit``): per event, when, who, what, for
which occurrence and channel, the decision, the comment or reason, the signatories and
the addresses it names — read out of each action's ``detail`` — and the whole event as
JSON for machines.

Which detail key means what is decided here, once: a decision is ``decision`` (a person:
approve, reject, request_changes) or ``outcome`` (the gate, a resolution); the words are
``comment`` (a person's), else ``reason``, else ``error`` (what went wrong), else
``previous_error`` (what a retry answers); signatories are ``signatories``; addresses are
every ``remote_url`` / ``url`` / ``urls``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from newsroom.store import AuditEvent

__all__ = ["AuditRow", "audit_rows", "event_json"]

_WORDS = ("comment", "reason", "error", "previous_error", "note")
_DECISIONS = ("decision", "outcome")
_URL_KEYS = ("remote_url", "url", "live_url")


@dataclass(frozen=True)
class AuditRow:
    at: datetime
    actor: str
    action: str
    occurrence: date | None
    channel: str | None
    decision: str
    words: str
    signatories: tuple[str, ...]
    urls: tuple[str, ...]
    content_hash: str | None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _urls(detail: Mapping[str, Any]) -> tuple[str, ...]:
    found = [detail[key] for key in _URL_KEYS if isinstance(detail.get(key), str)]
    many = detail.get("urls")
    if isinstance(many, list):
        found += [u for u in many if isinstance(u, str)]
    return tuple(dict.fromkeys(u for u in found if u))


def _who(actor: str, people: Mapping[str, str]) -> str:
    """``Barbara Akdeniz (akdeniz)`` for a person of the registry; else as recorded."""
    name = people.get(actor)
    return f"{name} ({actor})" if name else actor


def audit_rows(events: Iterable[AuditEvent], people: Mapping[str, str] | None = None
               ) -> list[AuditRow]:
    """One row per event, oldest first as given; ``people`` (id -> name) names the
    people who acted and signed."""
    people = people or {}
    rows = []
    for event in events:
        detail = event.detail if isinstance(event.detail, dict) else {}
        decision = next((_text(detail.get(k)) for k in _DECISIONS if _text(detail.get(k))), "")
        words = next((_text(detail.get(k)) for k in _WORDS if _text(detail.get(k))), "")
        signatories = detail.get("signatories")
        rows.append(AuditRow(
            at=event.at, actor=_who(event.actor, people), action=event.action,
            occurrence=event.occurrence_date, channel=event.channel, decision=decision,
            words=words,
            signatories=tuple(_who(str(s), people) for s in signatories)
            if isinstance(signatories, list) else (),
            urls=_urls(detail), content_hash=event.content_hash))
    return rows


def event_json(event: AuditEvent) -> dict[str, Any]:
    """The whole event, JSON-ready (times in ISO 8601 with their offset)."""
    return {
        "id": event.id, "at": event.at.isoformat(), "campaign_id": event.campaign_id,
        "occurrence_date": event.occurrence_date.isoformat() if event.occurrence_date
        else None,
        "actor": event.actor, "action": event.action, "channel": event.channel,
        "content_hash": event.content_hash, "detail": event.detail,
    }
