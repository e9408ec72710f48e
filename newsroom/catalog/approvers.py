"""Who must approve: resolve a campaign's approval policy against the directory of people."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from newsroom.errors import NewsroomError

from .models import ApprovalMode, ApprovalPolicy, ApprovalStep, ApproverRef, Directory, Person

MAGISTRAT = "magistrat"


class UnknownReference(NewsroomError, LookupError):
    def __init__(self, kind: str, value: str, known: list[str]):
        self.kind = kind
        self.value = value
        self.known = known
        super().__init__(f"unknown {kind} {value!r}")


@dataclass(frozen=True)
class Approver:
    """A person asked to approve; ``on_behalf_of`` is set when a deputy stands in."""

    person: Person
    on_behalf_of: Person | None = None


class DirectoryIndex:
    def __init__(self, directory: Directory):
        self.directory = directory
        self.people = {p.id: p for p in directory.people}
        self.portfolios = {p.id: p for p in directory.portfolios}
        self.offices = {o.id: o for o in directory.offices}

    def person(self, person_id: str) -> Person:
        try:
            return self.people[person_id]
        except KeyError:
            raise UnknownReference("person", person_id, sorted(self.people)) from None

    def responsible_for(self, portfolio_id: str) -> Person:
        if portfolio_id not in self.portfolios:
            raise UnknownReference("portfolio", portfolio_id, sorted(self.portfolios))
        for person in self.directory.people:
            if portfolio_id in person.portfolios:
                return person
        raise UnknownReference("portfolio", portfolio_id, sorted(self.portfolios))

    def group(self, name: str) -> list[Person]:
        if name != MAGISTRAT:
            raise UnknownReference("group", name, [MAGISTRAT])
        return [p for p in self.directory.people if p.magistrat]

    def is_absent(self, person: Person, day: date) -> bool:
        return any(
            date.fromisoformat(a.start) <= day <= date.fromisoformat(a.until)
            for a in person.absences
        )

    def stand_in(self, person: Person, day: date) -> Approver:
        """The person, or their deputy (Vertretung) when they are away that day."""
        seen = {person.id}
        current = person
        while self.is_absent(current, day) and current.deputy and current.deputy not in seen:
            seen.add(current.deputy)
            current = self.person(current.deputy)
        if current.id == person.id:
            return Approver(person)
        return Approver(current, on_behalf_of=person)


def _refs(rules: ApprovalPolicy | ApprovalStep) -> list[ApproverRef]:
    return rules.approver_refs if isinstance(rules, ApprovalPolicy) else rules.approvers


def _named(refs: list[ApproverRef], index: DirectoryIndex) -> list[Person]:
    """The distinct people ``refs`` name, in order."""
    people: list[Person] = []
    for ref in refs:
        if ref.person:
            people.append(index.person(ref.person))
        elif ref.portfolio:
            people.append(index.responsible_for(ref.portfolio))
        elif ref.group:
            people.extend(index.group(ref.group))
    unique: dict[str, Person] = {}
    for person in people:
        unique.setdefault(person.id, person)
    return list(unique.values())


def resolve_approvers(
    rules: ApprovalPolicy | ApprovalStep, index: DirectoryIndex, day: date | None = None
) -> list[Approver]:
    """The distinct people who are asked, in policy order (a policy: of every step);
    deputies replace absentees on ``day``."""
    approvers = [Approver(p) for p in _named(_refs(rules), index)]
    if day is not None:
        approvers = [index.stand_in(a.person, day) for a in approvers]
    return approvers


def resolve_chain(
    policy: ApprovalPolicy, index: DirectoryIndex, day: date | None = None
) -> list[list[Approver]]:
    """The people asked in each step of the chain, in order; on ``day`` a deputy stands
    in for an absentee, unless the deputy is asked in another step of the chain (a
    person approves in one step only): then the absentee is asked."""
    named = [_named(step.approvers, index) for step in policy.chain]
    chain: list[list[Approver]] = []
    for number, people in enumerate(named):
        elsewhere = {p.id for other, step in enumerate(named) if other != number for p in step}
        elsewhere |= {a.person.id for step in chain for a in step}
        approvers: list[Approver] = []
        for person in people:
            standing = index.stand_in(person, day) if day is not None else Approver(person)
            approvers.append(standing if standing.person.id not in elsewhere
                             else Approver(person))
        chain.append(approvers)
    return chain


def resolve_signatories(
    policy: ApprovalPolicy, index: DirectoryIndex, day: date | None = None
) -> list[Approver]:
    """Who may sign a joint statement: the people of the steps whose approvals sign
    (in the one-step form, everyone asked)."""
    steps = resolve_chain(policy, index, day)
    return [a for step, people in zip(policy.chain, steps, strict=True) if step.signs
            for a in people]


def required_approvals(rules: ApprovalPolicy | ApprovalStep, asked: int) -> int:
    if rules.mode == ApprovalMode.ONE:
        return 1
    if rules.mode == ApprovalMode.ALL:
        return asked
    return rules.quorum or asked
