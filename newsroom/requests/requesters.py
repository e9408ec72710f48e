"""Who asks: a Dezernat (by its portfolio) or an Amt, as the directory has it."""

from __future__ import annotations

from dataclasses import dataclass

from newsroom.catalog.catalog import Catalog
from newsroom.store.models import RequesterKind

__all__ = [
    "Requester",
    "requester_for",
]

@dataclass(frozen=True)
class Requester:
    """A Dezernat (``kind`` portfolio) or an Amt (``kind`` office), as the directory has it."""

    kind: RequesterKind
    id: str
    name: str  # "Sportdezernat", "Wahlamt"
    notify_tag: str  # who is told: the Dezernent, or the Amt itself
    notify_name: str  # "Oberbürgermeister Hanno Benz", "Wahlamt"
    approver: dict[str, str] | None  # the campaign's approver; None: the office decides

    @property
    def ref(self) -> dict[str, str]:
        return {self.kind.value: self.id}


def requester_for(catalog: Catalog, kind: str, requester_id: str) -> Requester:
    """The requester from the directory; LookupError when it is not (or no longer) there."""
    index = catalog.index
    if kind == RequesterKind.PORTFOLIO.value:
        portfolio = index.portfolios.get(requester_id)
        if portfolio is None:
            raise LookupError(f"no portfolio {requester_id!r} in registry/people.yaml; known: "
                              f"{', '.join(sorted(index.portfolios))}")
        person = index.responsible_for(requester_id)
        return Requester(RequesterKind.PORTFOLIO, requester_id, portfolio.name, person.id,
                         person.display, {"portfolio": requester_id})
    if kind == RequesterKind.OFFICE.value:
        office = index.offices.get(requester_id)
        if office is None:
            raise LookupError(f"no office {requester_id!r} in registry/people.yaml; known: "
                              f"{', '.join(sorted(index.offices))}")
        # The directory does not (yet) say which Dezernat an Amt belongs to; when it does
        # (an office's `portfolio`), its Dezernent approves, else the office names one.
        linked = getattr(office, "portfolio", None)
        return Requester(RequesterKind.OFFICE, requester_id, office.name, office.id,
                         office.name, {"portfolio": linked} if linked else None)
    raise LookupError(f"requester kind must be portfolio or office, not {kind!r}")
