"""The approval chain in German, for the mails and the approval page: each step, where it
stands (done, current, to come, closed), who was asked, who decided what and when.

Reads a :class:`~newsroom.approval.status.GateStatus` and the catalog only; a gate of one
step has no chain to show (empty)."""

from __future__ import annotations

from dataclasses import dataclass

from newsroom.approval_messages import local_when
from newsroom.catalog.catalog import Catalog
from newsroom.rendering.templates import join_german
from newsroom.store import Decision

from .policy import display_name
from .status import GateOutcome, GateStatus, StepState, StepStatus

# A decision in German, as the page, the mails and the chain say it.
DECISION_GERMAN = {
    Decision.APPROVE.value: "freigegeben",
    Decision.REJECT.value: "abgelehnt",
    Decision.REQUEST_CHANGES.value: "Änderungen angefordert",
}
_CLOSED = {
    GateOutcome.REJECTED: "abgelehnt",
    GateOutcome.CHANGES_REQUESTED: "Änderungen angefordert",
    GateOutcome.CANCELLED: "Frist abgelaufen, abgesagt",
}


@dataclass(frozen=True)
class ChainPerson:
    name: str
    decision: str | None  # German: freigegeben, abgelehnt, Änderungen angefordert
    when: str | None  # local time of the decision
    mine: bool  # the reader
    by_admin: bool = False


@dataclass(frozen=True)
class ChainStep:
    label: str  # "Stufe 2 von 3"
    name: str  # "Sportdezernat"
    state: str  # StepState's value: done, current, to_come, closed
    state_german: str  # "freigegeben", "jetzt gefragt", "folgt danach", "abgelehnt"
    deadline: str  # local time
    people: tuple[ChainPerson, ...]
    mine: bool  # the reader is asked in this step

    @property
    def line(self) -> str:
        """One line: ``Stufe 1 von 3 – Sportamt: freigegeben (Max Muster, Montag, …)``."""
        decided = [f"{p.name}, {p.decision} am {p.when}" for p in self.people if p.decision]
        waiting = [p.name for p in self.people if not p.decision]
        if self.state in (StepState.DONE.value, StepState.CLOSED.value):
            who = "; ".join(decided) or join_german(waiting)
        elif self.state == StepState.CURRENT.value:
            who = "; ".join([*decided, *(f"{n} (ausstehend)" for n in waiting)])
        else:
            who = join_german(waiting)
        return f"{self.label} – {self.name}: {self.state_german}" + (f" ({who})" if who else "")


def _state_german(step: StepStatus, status: GateStatus) -> str:
    if step.state == StepState.DONE:
        return "freigegeben"
    if step.state == StepState.TO_COME:
        return "folgt danach"
    if step.state == StepState.CLOSED:
        return _CLOSED.get(step.outcome, step.outcome.value)
    if status.outcome == GateOutcome.ESCALATED:
        return "Frist abgelaufen, beim Amt für Kommunikation zur Entscheidung"
    return f"jetzt gefragt, bis {local_when(step.deadline)}"


def chain_view(catalog: Catalog, status: GateStatus,
               person_id: str | None = None) -> tuple[ChainStep, ...]:
    """Every step of the gate's chain for ``person_id`` (the reader; None: nobody in
    particular); empty for a gate of one step."""
    if len(status.steps) < 2:
        return ()
    decided = {(d.step, d.person_id): d for d in status.decisions}
    steps = []
    for step in status.steps:
        people = []
        admins = [d for d in status.decisions if d.step == step.number and d.by_admin]
        for person in step.people:
            decision = decided.get((step.number, person))
            people.append(ChainPerson(
                name=display_name(catalog, person),
                decision=DECISION_GERMAN.get(decision.decision) if decision else None,
                when=local_when(decision.decided_at) if decision else None,
                mine=person == person_id))
        for admin in admins:
            people.append(ChainPerson(
                name=f"{display_name(catalog, admin.person_id)} (Amt für Kommunikation)",
                decision=DECISION_GERMAN.get(admin.decision), when=local_when(admin.decided_at),
                mine=False, by_admin=True))
        steps.append(ChainStep(
            label=f"Stufe {step.number + 1} von {len(status.steps)}", name=step.name,
            state=step.state.value, state_german=_state_german(step, status),
            deadline=local_when(step.deadline), people=tuple(people),
            mine=person_id is not None and person_id in step.people))
    return tuple(steps)
