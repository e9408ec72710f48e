"""Who must approve: resolve a campaign's approval policy against the directory of people."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from newsroom.errors import NewsroomError

from .models import ApprovalMode, ApprovalPolicy, Directory, Person

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


def resolve_approvers(
    policy: ApprovalPolicy, index: DirectoryIndex, day: date | None = None
) -> list[Approver]:
    """The distinct people who are asked, in policy order; deputies replace absentees on ``day``."""
    people: list[Person] = []
    for ref in policy.approvers:
        if ref.person:
            people.append(index.person(ref.person))
        elif ref.portfolio:
            people.append(index.responsible_for(ref.portfolio))
        elif ref.group:
            people.extend(index.group(ref.group))
    unique: dict[str, Person] = {}
    for person in people:
        unique.setdefault(person.id, person)
    approvers = [Approver(p) for p in unique.values()]
    if day is not None:
        approvers = [index.stand_in(a.person, day) for a in approvers]
    return approvers


def required_approvals(policy: ApprovalPolicy, asked: int) -> int:
    if policy.mode == ApprovalMode.ONE:
        return 1
    if policy.mode == ApprovalMode.ALL:
        return asked
    return policy.quorum or asked
