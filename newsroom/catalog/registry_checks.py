"""The registry's own checks (people, portfolios, offices, roles, channel accounts) and
what a campaign's checks know of it: :class:`Registry`, the directory and the accounts as
far as they could be read, with the ids that the registry's errors removed.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ..errors import CatalogIssue
from .catalog import Catalog
from .models import ChannelRegistry, ChannelType, Directory
from .reading import Collector, Read
from .roles import Role


@dataclass
class Registry:
    """The directory and the channel accounts as far as they could be read.

    ``doubtful`` holds, per kind of id, the ids of entries that were refused (None: the
    refused entries have no readable id, so any unknown id may be one of them). A campaign
    naming a doubtful id is not told it is unknown: the mistake is in the registry.
    """

    catalog: Catalog
    doubtful: dict[str, set[str] | None]

    def is_unknown(self, kind: str, value: str) -> bool:
        tables: dict[str, Mapping[str, object]] = {
            "person": self.catalog.index.people,
            "portfolio": self.catalog.index.portfolios,
            "office": self.catalog.index.offices,
            "channel": self.catalog.accounts,
        }
        known = tables[kind]
        if value in known:
            return False
        doubtful = self.doubtful.get(kind, set())
        return doubtful is not None and value not in doubtful


def doubtful_ids(read: Read | None, list_field: str, key: str) -> set[str] | None:
    """Ids of the entries of ``list_field`` that were refused; None if any id may be."""
    if read is None:
        return None
    items = read.doc.data.get(list_field) if isinstance(read.doc.data, dict) else None
    ids: set[str] = set()
    for gone in read.salvaged.removed:
        if gone[:1] != (list_field,):
            continue
        if len(gone) < 2 or not isinstance(gone[1], int) or not isinstance(items, list):
            return None  # the whole list
        item = items[gone[1]] if gone[1] < len(items) else None
        value = item.get(key) if isinstance(item, dict) else None
        if not isinstance(value, str):
            return None
        ids.add(value)
    return ids


def check_directory(directory: Directory, read: Read, path: Path) -> list[CatalogIssue]:
    collector = Collector(path, read.doc, read.salvaged)
    intact = read.salvaged.intact
    portfolios = {p.id for p in directory.portfolios}
    people = {p.id for p in directory.people}
    offices = {o.id for o in directory.offices}
    known_roles = {r.value for r in Role}
    for i, person in enumerate(directory.people):
        for j, portfolio in enumerate(person.portfolios):
            if (portfolio not in portfolios and intact("people", i, "portfolios", j)
                    and intact("portfolios")):
                collector.add(("people", i, "portfolios", j), f"unknown portfolio {portfolio!r}",
                              suggest(portfolio, portfolios, "portfolios"))
        if person.deputy and person.deputy not in people and intact("people"):
            collector.add(("people", i, "deputy"), f"unknown person {person.deputy!r}",
                          suggest(person.deputy, people, "people"))
        for k, role in enumerate(person.roles):
            if role not in known_roles:
                collector.add(("people", i, "roles", k), f"unknown role {role!r}",
                              suggest(role, known_roles, "roles"))
        for k, absence in enumerate(person.absences):
            try:
                if date.fromisoformat(absence.start) > date.fromisoformat(absence.until):
                    collector.add(("people", i, "absences", k), "absence ends before it starts",
                                  "swap `from` and `to`")
            except ValueError:
                collector.add(("people", i, "absences", k), "absence dates must be YYYY-MM-DD",
                              "e.g. from: 2027-07-01")
    owners: dict[str, int] = {}
    for i, person in enumerate(directory.people):
        for portfolio in person.portfolios:
            if portfolio in owners:
                collector.add(("people", i, "portfolios"),
                              f"portfolio {portfolio!r} has two Dezernenten",
                              "each portfolio belongs to one person")
            owners[portfolio] = i
    if (intact("communications_office") and intact("offices")
            and directory.communications_office not in offices):
        collector.add(("communications_office",),
                      f"unknown office {directory.communications_office!r}",
                      suggest(directory.communications_office, offices, "offices"))
    for kind, items in (("person", directory.people), ("portfolio", directory.portfolios),
                        ("office", directory.offices)):
        ids = [x.id for x in items]
        for dup in {x for x in ids if ids.count(x) > 1}:
            collector.add(1, f"{kind} id {dup!r} is used twice", "ids must be unique")
    return collector.issues


def check_registry(
    registry: ChannelRegistry, read: Read, known: Registry, path: Path
) -> list[CatalogIssue]:
    collector = Collector(path, read.doc, read.salvaged)
    intact = read.salvaged.intact
    names = [a.name for a in registry.accounts]
    for i, account in enumerate(registry.accounts):
        if names.count(account.name) > 1:
            collector.add(("accounts", i, "name"), f"account name {account.name!r} is used twice",
                          "names must be unique")
        if (account.owner and known.is_unknown("person", account.owner)
                and known.is_unknown("office", account.owner)):
            owners = set(known.catalog.index.people) | set(known.catalog.index.offices)
            collector.add(("accounts", i, "owner"), f"unknown person or office {account.owner!r}",
                          suggest(account.owner, owners, "people and offices"))
        if (account.type not in (ChannelType.MANUAL, ChannelType.WEBSITE, ChannelType.EMAIL)
                and not account.credential and intact("accounts", i, "credential")):
            collector.add(("accounts", i), f"account {account.name!r} has no `credential`",
                          "name the env variable or Prefect Secret block that holds its token")
        if (account.type == ChannelType.EMAIL and not account.recipients
                and intact("accounts", i, "recipients")):
            collector.add(("accounts", i), "the press e-mail account lists no `recipients`",
                          "add the press distribution list")
    return collector.issues


def suggest(value: str, known: Collection[str], what: str) -> str:
    close = difflib.get_close_matches(value, list(known), n=1)
    listed = ", ".join(sorted(known))
    return (f"did you mean {close[0]!r}? " if close else "") + f"known {what}: {listed}"
