"""The gate's values: its outcome, one decision on it, and its status as a whole."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from newsroom.catalog.catalog import Catalog
from newsroom.store import Decision

from .policy import display_name


class GateOutcome(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"
    CANCELLED = "cancelled"
    ESCALATED = "escalated"


# Once the gate has one of these it never changes; ESCALATED still waits for an admin.
FINAL_OUTCOMES = frozenset({GateOutcome.APPROVED, GateOutcome.REJECTED,
                            GateOutcome.CHANGES_REQUESTED, GateOutcome.CANCELLED})
# What one decision settles the gate to (an admin's always, a person's in mode one).
DECISION_OUTCOMES = {
    Decision.APPROVE.value: GateOutcome.APPROVED,
    Decision.REJECT.value: GateOutcome.REJECTED,
    Decision.REQUEST_CHANGES.value: GateOutcome.CHANGES_REQUESTED,
}


@dataclass(frozen=True)
class GateDecision:
    """One decision on the gate's bundle: a person's (approval page) or an admin's."""

    person_id: str  # registry id; for an admin without the "admin:" prefix
    decision: str  # approve, reject, request_changes
    comment: str
    via: str  # link, prefect_ui, cli
    decided_at: datetime
    by_admin: bool = False


@dataclass(frozen=True)
class GateStatus:
    occurrence_id: int
    campaign_id: str
    occurrence_date: date
    bundle_hash: str
    mode: str
    needed: int
    deadline: datetime
    asked: tuple[str, ...]  # person ids asked for the gate's bundle, in order
    approved: tuple[str, ...]
    rejected: tuple[str, ...]
    changes_requested: tuple[str, ...]
    pending: tuple[str, ...]
    outcome: GateOutcome
    reason: str  # English, for logs and artifacts
    decided_by_admin: str | None = None
    decisions: tuple[GateDecision, ...] = ()  # oldest first

    def decision_line(self, catalog: Catalog, decision: GateDecision) -> str:
        """One line for a run's log: who decided what, when, with which comment, and
        where the gate stands (n of m)."""
        who = display_name(catalog, decision.person_id) + (
            " (admin)" if decision.by_admin else "")
        comment = f' – "{" ".join(decision.comment.split())[:300]}"' if decision.comment else ""
        return (f"approval of {self.campaign_id} {self.occurrence_date}: {who} "
                f"{decision.decision} at {decision.decided_at.isoformat(timespec='seconds')} "
                f"via {decision.via}{comment}; {len(self.approved)} of {self.needed} needed "
                f"approvals ({len(self.asked)} asked), gate {self.outcome.value}")

    @property
    def settled(self) -> bool:
        """True once final; ESCALATED still waits for an admin."""
        return self.outcome in FINAL_OUTCOMES

    def signatory_names(self, catalog: Catalog) -> list[str]:
        """Display names of those who approved, in the order they were asked."""
        names = []
        for person_id in self.asked:
            if person_id in self.approved:
                person = catalog.index.people.get(person_id)
                names.append(person.display if person else person_id)
        return names
