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
    step: int = 0  # the step of the approval chain it decided (0: the first)


class StepState(StrEnum):
    """Where one step of the approval chain stands."""

    DONE = "done"  # approved: the next step is asked
    CURRENT = "current"  # its people are asked now
    TO_COME = "to_come"  # asked once the steps before are approved
    CLOSED = "closed"  # the gate closed here (rejected, changes requested, timed out)


@dataclass(frozen=True)
class StepStatus:
    """One step of the gate's approval chain."""

    number: int  # 0: the first
    name: str  # as the campaign names it, else "Stufe n"
    mode: str
    needed: int
    deadline: datetime
    # Who is asked (an open step) or will be asked (a step to come), in order.
    people: tuple[str, ...]
    approved: tuple[str, ...]
    declined: tuple[str, ...]  # rejected or asked for changes
    state: StepState
    outcome: GateOutcome  # what the step's decisions amount to (pending: not yet)
    on_behalf_of: tuple[tuple[str, str], ...] = ()  # (deputy, for whom)

    @property
    def label(self) -> str:
        """``Stufe 2 von 3: Sportdezernat`` needs the chain's length; this is
        ``Stufe 2 (Sportdezernat)``."""
        default = f"Stufe {self.number + 1}"
        return default if self.name == default else f"{default} ({self.name})"


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
    decisions: tuple[GateDecision, ...] = ()  # oldest first, of every step
    # The approval chain: every step, and the one the gate stands at (the fields above,
    # asked to deadline, are that step's). The one-step form is a chain of one.
    steps: tuple[StepStatus, ...] = ()
    step: int = 0
    # Who signs (joint statements): those who approved in the steps whose approvals sign.
    signatories: tuple[str, ...] = ()

    @property
    def current_step(self) -> StepStatus | None:
        return self.steps[self.step] if self.steps else None

    def step_line(self) -> str:
        """``step 2 of 3 (Sportdezernat)`` for logs; empty for a one-step gate."""
        if len(self.steps) < 2:
            return ""
        return f"step {self.step + 1} of {len(self.steps)} ({self.steps[self.step].name})"

    def decision_line(self, catalog: Catalog, decision: GateDecision) -> str:
        """One line for a run's log: who decided what, when, with which comment, and
        where the gate stands (n of m)."""
        who = display_name(catalog, decision.person_id) + (
            " (admin)" if decision.by_admin else "")
        comment = f' – "{" ".join(decision.comment.split())[:300]}"' if decision.comment else ""
        step = (f" in step {decision.step + 1} of {len(self.steps)} "
                f"({self.steps[decision.step].name})"
                if len(self.steps) > 1 and decision.step < len(self.steps) else "")
        now = f"; now {self.step_line()}" if self.step_line() else ""
        return (f"approval of {self.campaign_id} {self.occurrence_date}: {who} "
                f"{decision.decision}{step} at "
                f"{decision.decided_at.isoformat(timespec='seconds')} via {decision.via}"
                f"{comment}{now}; {len(self.approved)} of {self.needed} needed approvals "
                f"({len(self.asked)} asked), gate {self.outcome.value}")

    @property
    def settled(self) -> bool:
        """True once final; ESCALATED still waits for an admin."""
        return self.outcome in FINAL_OUTCOMES

    def signatory_names(self, catalog: Catalog) -> list[str]:
        """Display names of the signatories, in the order they were asked."""
        names = []
        for person_id in self.signatories:
            person = catalog.index.people.get(person_id)
            names.append(person.display if person else person_id)
        return names
