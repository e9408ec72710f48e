"""Who may decide through Prefect or the command line: office roles in the registry.

Prefect's open-source server has no users: whoever holds its one credential can resume a
run and type any name. So every decision that does not come through a person's own signed
link names a person of ``registry/people.yaml`` whose ``roles`` grant it::

    people:
      - id: wolf
        name: Katrin Wolf
        title: Leiterin des Amts für Kommunikation
        email: kommunikation-leitung@example.org
        magistrat: false
        roles: [office-admin]

Roles and what they allow (:data:`GRANTS`)::

    office-admin    decide an approval gate as admin (Prefect Resume form, ``newsroom
                    approve``), start a crisis message (Prefect, ``newsroom crisis start``),
                    decide requests to the office, recall published posts (Prefect
                    ``recall`` deployment, ``newsroom recall``)
    office-editor   decide requests to the office (accept, ask back, decline)

:func:`authorize` is the one rule; the approval gate, the crisis start and the request
decisions all call it. The credential remains the door: the registry says who may walk
through it, and the audit trail records the person (by id) who did.
"""

from __future__ import annotations

from enum import StrEnum

from newsroom.errors import NewsroomError

from .approvers import DirectoryIndex
from .models import Person

__all__ = ["GRANTS", "NotPermitted", "Permission", "Role", "authorize", "holders"]

ADMIN_PREFIX = "admin:"


class Role(StrEnum):
    OFFICE_ADMIN = "office-admin"
    OFFICE_EDITOR = "office-editor"


class Permission(StrEnum):
    DECIDE_GATE = "decide-gate"  # an admin decision on an approval gate
    START_CRISIS = "start-crisis"
    DECIDE_REQUEST = "decide-request"  # accept, ask back or decline a request
    RECALL = "recall"  # take published posts down (newsroom.recall)


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.OFFICE_ADMIN: frozenset(Permission),
    Role.OFFICE_EDITOR: frozenset({Permission.DECIDE_REQUEST}),
}

_WHAT = {
    Permission.DECIDE_GATE: "decide an approval as admin",
    Permission.START_CRISIS: "start a crisis message",
    Permission.DECIDE_REQUEST: "decide a request to the office",
    Permission.RECALL: "recall published posts",
}


class NotPermitted(NewsroomError):
    """The name given is no registry person, or one without a role that allows this."""

    def __init__(self, message: str, *, who: str, permission: Permission):
        super().__init__(message)
        self.who = who
        self.permission = permission


def _normal(text: str) -> str:
    return " ".join(text.split()).casefold()


def allows(person: Person, permission: Permission) -> bool:
    return any(permission in GRANTS.get(Role(r), frozenset())
               for r in person.roles if r in Role._value2member_map_)


def holders(index: DirectoryIndex, permission: Permission) -> list[Person]:
    """The people whose roles allow ``permission``, in registry order."""
    return [p for p in index.directory.people if allows(p, permission)]


def _find(index: DirectoryIndex, who: str) -> Person | None:
    key = who
    if key in index.people:
        return index.people[key]
    # The full name ("Katrin Wolf") or with title, when exactly one person has it.
    matches = [p for p in index.directory.people
               if _normal(key) in (_normal(p.name), _normal(p.display))]
    return matches[0] if len(matches) == 1 else None


def authorize(index: DirectoryIndex, who: str, permission: Permission) -> Person:
    """The registry person ``who`` names (id, or full name; an ``admin:`` prefix is
    ignored) when a role of theirs allows ``permission``; else :class:`NotPermitted`."""
    who = " ".join((who or "").split()).removeprefix(ADMIN_PREFIX).strip()[:100]
    allowed = ", ".join(p.id for p in holders(index, permission)) or "nobody yet"
    hint = (f"name a person of registry/people.yaml whose roles allow this (by id: "
            f"{allowed})")
    if not who:
        raise NotPermitted(f"nobody named: to {_WHAT[permission]}, {hint}", who=who,
                           permission=permission)
    person = _find(index, who)
    if person is None:
        raise NotPermitted(f"{who!r} is no person in registry/people.yaml: to "
                           f"{_WHAT[permission]}, {hint}", who=who, permission=permission)
    if not allows(person, permission):
        roles = ", ".join(person.roles) or "none"
        raise NotPermitted(f"{person.id} ({person.name}) may not {_WHAT[permission]} "
                           f"(roles: {roles}); {hint}", who=who, permission=permission)
    return person
