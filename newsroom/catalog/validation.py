"""Load and check the whole catalog; every problem names its file, line, fault and fix.

One run reports every error of every file. A file that is not YAML stops at the syntax
error (nothing after it can be read). Otherwise pydantic's shape errors are reported all
at once, and every other check still runs on what was read (:mod:`.salvage`): the checks
across files (people, portfolios, channels), of times (DST, deadlines) and of the
rendered posts (templates, lengths, hashtags, images). A check that would read a part
an earlier error removed is skipped, so no error is an echo of another; a mistake in the
registry does not hide the campaigns' mistakes, and campaigns naming an entry that the
registry's errors removed are not told it is unknown.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import CatalogIssue, RenderError, relative_path
from ..timeutil import (
    BERLIN,
    LocalTimeError,
    format_local,
    localize,
    parse_duration,
    parse_local_datetime,
)
from .approvers import UnknownReference, resolve_approvers
from .catalog import (
    CHANNELS_FILE,
    PEOPLE_FILE,
    REGISTRY_DIR,
    CampaignSource,
    Catalog,
    campaign_files,
    find_catalog_root,
)
from .models import (
    ApprovalMode,
    Campaign,
    ChannelRegistry,
    ChannelType,
    Directory,
    RegistryOverlay,
    TimeoutAction,
)
from .roles import Role
from .salvage import Salvaged, fields_by_alias, salvage, unwrap_optional
from .schedule import check_slot_times, next_occurrence, occurrences, on_demand_occurrence
from .yamlsource import SourceDocument, YamlProblem, parse_yaml

MAX_FILE_BYTES = 1_000_000


@dataclass
class ValidationReport:
    issues: list[CatalogIssue] = field(default_factory=list)
    catalog: Catalog | None = None
    files_checked: int = 0

    @property
    def errors(self) -> list[CatalogIssue]:
        return [i for i in self.issues if i.is_error]

    @property
    def warnings(self) -> list[CatalogIssue]:
        return [i for i in self.issues if not i.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors


class _Collector:
    """Issues of one file. With ``salvaged``, paths are the model's and are reported at
    the file's own (a list that lost an item numbers the rest differently)."""

    def __init__(
        self, path: Path, doc: SourceDocument | None = None, salvaged: Salvaged | None = None
    ):
        self.file = relative_path(path)
        self.doc = doc
        self.salvaged = salvaged
        self.issues: list[CatalogIssue] = []

    def add(
        self,
        where: tuple[str | int, ...] | int,
        message: str,
        hint: str = "",
        *,
        severity: str = "error",
    ) -> None:
        if isinstance(where, int):
            line, dotted = where, ""
        else:
            where = self.salvaged.original(where) if self.salvaged else where
            line = self.doc.line_of(where) if self.doc else 1
            dotted = _dotted(where)
        self.issues.append(CatalogIssue(self.file, line, message, hint, dotted, severity))


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --- reading files --------------------------------------------------------------------


def read_document(path: Path, collector: _Collector) -> SourceDocument | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            collector.add(1, "file is larger than 1 MB", "split it or remove embedded data")
            return None
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        collector.add(1, f"file is not UTF-8 text ({exc.reason})", "save it as UTF-8")
        return None
    except OSError as exc:
        collector.add(1, f"cannot read the file: {exc.strerror}",
                      "check that it exists and is readable")
        return None
    try:
        doc = parse_yaml(text)
    except YamlProblem as exc:
        collector.add(exc.line, str(exc), exc.hint)
        return None
    collector.doc = doc
    for key_path, line in doc.duplicate_keys:
        collector.add(line, f"`{_dotted(key_path)}` is given twice",
                      "keep one of them; YAML would silently use the last")
    if not isinstance(doc.data, dict):
        collector.add(1, "the file must be a mapping of fields (key: value)",
                      "start with `id: …` on the first line")
        return None
    return doc


@dataclass
class _Read:
    """A file's document and what of it could be read (:mod:`.salvage`)."""

    doc: SourceDocument
    salvaged: Salvaged

    @property
    def model(self) -> Any:
        return self.salvaged.model


def model_from(model: type[BaseModel], doc: SourceDocument, collector: _Collector) -> _Read | None:
    """Report every shape error of ``doc``; what could still be read, or None."""
    salvaged = salvage(model, doc.data)
    if salvaged is not None:
        errors = salvaged.errors
    else:
        try:
            model.model_validate(doc.data)
            errors = []
        except ValidationError as exc:
            errors = exc.errors()
    for error in errors:
        _report_pydantic(error, model, doc, collector)
    return _Read(doc, salvaged) if salvaged is not None else None


def _report_pydantic(
    error: dict, model: type[BaseModel], doc: SourceDocument, out: _Collector
) -> None:
    loc = tuple(p for p in error["loc"] if isinstance(p, (str, int)))
    kind = error["type"]
    name = str(loc[-1]) if loc else ""
    if kind == "missing":
        allowed = _fields_at(model, loc[:-1])
        description = allowed.get(name, "")
        out.add(
            loc[:-1] if loc[:-1] else 1,
            f"required field `{name}` is missing"
            + (f" under `{_dotted(loc[:-1])}`" if loc[:-1] else ""),
            f"add `{name}:`" + (f" ({description})" if description else ""),
        )
        return
    if kind == "extra_forbidden":
        allowed = list(_fields_at(model, loc[:-1]))
        close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
        hint = f"did you mean `{close[0]}`?" if close else ""
        hint = (hint + " " if hint else "") + "allowed here: " + ", ".join(allowed)
        out.add(loc, f"unknown field `{name}`", hint)
        return
    value = error.get("input")
    if kind == "enum":
        expected = error.get("ctx", {}).get("expected", "")
        options = [o.strip(" '") for o in expected.replace(" or ", ",").split(",") if o.strip(" '")]
        close = difflib.get_close_matches(str(value), options, n=1)
        hint = ((f"did you mean `{close[0]}`? " if close else "")
                + f"use one of: {', '.join(options)}")
        out.add(loc, f"{value!r} is not a valid value", hint)
        return
    if kind == "string_pattern_mismatch":
        out.add(loc, f"{value!r} is not a valid id",
                "use lower-case letters, digits and hyphens, e.g. trikottag-2027")
        return
    if kind == "value_error":
        message = error["msg"].removeprefix("Value error, ")
        out.add(loc, message, "")
        return
    if kind in ("too_short",) and isinstance(value, list):
        out.add(loc, f"`{name}` must not be empty", f"list at least one entry under `{name}`")
        return
    shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    out.add(loc, f"{error['msg'].lower()} (got {shown})", _type_hint(kind))


def _type_hint(kind: str) -> str:
    return {
        "string_type": "write text; quote it if it looks like a number or date",
        "int_parsing": "write a whole number",
        "int_type": "write a whole number",
        "bool_parsing": "write true or false",
        "list_type": "write a list: one `- item` per line",
        "dict_type": "write a mapping: `key: value` lines indented below",
        "model_type": "write a mapping: `key: value` lines indented below",
        "greater_than_equal": "use a larger number",
    }.get(kind, "check the value against the campaign file reference in README.md")


def _fields_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> dict[str, str]:
    """Field names (with a short description) allowed at ``loc`` inside ``model``."""
    current: Any = model
    for part in loc:
        current = unwrap_optional(current)
        if isinstance(part, int):
            args = typing.get_args(current)
            current = args[0] if args else Any
        elif isinstance(current, type) and issubclass(current, BaseModel):
            info = fields_by_alias(current).get(part)
            current = info.annotation if info else Any
        else:
            args = typing.get_args(current)
            current = args[-1] if args else Any
    current = unwrap_optional(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return {
            (info.alias or key): ("optional" if not info.is_required() else "required")
            for key, info in current.model_fields.items()
        }
    return {}


# --- the catalog ----------------------------------------------------------------------


@dataclass
class _Registry:
    """The directory and the channel accounts as far as they could be read.

    ``doubtful`` holds, per kind of id, the ids of entries that were refused (None: the
    refused entries have no readable id, so any unknown id may be one of them). A campaign
    naming a doubtful id is not told it is unknown: the mistake is in the registry.
    """

    catalog: Catalog
    doubtful: dict[str, set[str] | None]

    def is_unknown(self, kind: str, value: str) -> bool:
        known = {
            "person": self.catalog.index.people,
            "portfolio": self.catalog.index.portfolios,
            "office": self.catalog.index.offices,
            "channel": self.catalog.accounts,
        }[kind]
        if value in known:
            return False
        doubtful = self.doubtful.get(kind, set())
        return doubtful is not None and value not in doubtful


def load_catalog(
    root: Path,
    *,
    only: list[Path] | None = None,
    today: date | None = None,
    overlay: Path | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> ValidationReport:
    """Load the catalog at ``root``; with ``only``, check just those campaign files.

    Every file is checked whatever the others hold: a mistake in the registry does not
    hide the campaigns' mistakes. ``report.catalog`` is set only when the registry is
    sound, as the commands that use the catalog need.

    ``overlay`` (:mod:`.overlay`): a folder whose ``registry/channels.yaml`` changes how
    accounts are reached and whose campaign files join the catalog's, checked alike.
    """
    report = ValidationReport()
    today = today or datetime.now(BERLIN).date()
    root = root.resolve()
    overlay = overlay.resolve() if overlay is not None and overlay.is_dir() else None
    registry = _load_registry(root, report, overlay)
    catalog = registry.catalog
    if not any(i.is_error for i in report.issues):
        report.catalog = catalog
    files = campaign_files(root) if only is None else [p.resolve() for p in only]
    if overlay is not None and only is None:
        files += campaign_files(overlay)
    seen: dict[str, Path] = {}
    for path in files:
        report.files_checked += 1
        source, salvaged, issues = load_campaign(path, registry, today=today)
        report.issues += issues
        if on_file is not None:
            on_file(path)
        if source is None or salvaged is None or not salvaged.intact("id"):
            continue
        campaign_id = source.campaign.id
        if campaign_id in seen:
            report.issues.append(
                CatalogIssue(
                    relative_path(path),
                    source.line_of("id"),
                    f"campaign id {campaign_id!r} is already used by "
                    f"{relative_path(seen[campaign_id])}",
                    "give every campaign its own id",
                    "id",
                )
            )
            continue
        seen[campaign_id] = path
        if not any(i.is_error for i in issues):
            catalog.campaigns[campaign_id] = source
    if only is not None:
        # The other campaigns still matter for lookups, e.g. the calendar of one file.
        for path in campaign_files(root) + (campaign_files(overlay) if overlay else []):
            if path.resolve() in seen.values():
                continue
            source, _, issues = load_campaign(path, registry, today=today)
            if source and not any(i.is_error for i in issues):
                catalog.campaigns.setdefault(source.campaign.id, source)
    report.issues.sort(key=lambda i: (i.file, i.line))
    return report


def load_catalog_for(paths: list[Path], *, today: date | None = None,
                     fallback_root: Path | None = None,
                     on_file: Callable[[Path], None] | None = None) -> ValidationReport:
    """Validate the given files or folders, finding their catalog root from the registry."""
    report = ValidationReport()
    roots: dict[Path, list[Path] | None] = {}
    for path in paths:
        if not path.exists():
            report.issues.append(
                CatalogIssue(str(path), 0, "no such file or folder",
                             "check the path; campaigns live in campaigns/")
            )
            continue
        root = find_catalog_root(path if path.is_dir() else path.parent)
        if fallback_root and (fallback_root / REGISTRY_DIR / PEOPLE_FILE).is_file():
            root = root or fallback_root  # only a real catalog; else say we found none
        if root is None:
            report.issues.append(
                CatalogIssue(
                    relative_path(path),
                    0,
                    "cannot find the catalog: no registry/people.yaml here or in a parent folder",
                    "run the command inside the catalog (campaigns/) or set NEWSROOM_CATALOG_DIR",
                )
            )
            continue
        root = root.resolve()
        if path.is_dir() and path.resolve() == root:
            roots[root] = None
        elif path.is_dir():
            files = [p for p in campaign_files(root) if path.resolve() in p.resolve().parents]
            if roots.get(root, []) is not None:
                roots.setdefault(root, [])
                roots[root] += files  # type: ignore[operator]
        elif roots.get(root, []) is not None:
            roots.setdefault(root, [])
            roots[root].append(path)  # type: ignore[union-attr]
    for root, only in roots.items():
        sub = load_catalog(root, only=only, today=today, on_file=on_file)
        report.issues += sub.issues
        report.files_checked += sub.files_checked
        report.catalog = report.catalog or sub.catalog
    return report


def _load_registry(root: Path, report: ValidationReport, overlay: Path | None = None) -> _Registry:
    """Both registry files, each checked as far as it could be read; the overlay's
    connections applied to the accounts."""
    people_path = root / REGISTRY_DIR / PEOPLE_FILE
    channels_path = root / REGISTRY_DIR / CHANNELS_FILE
    people = _load_registry_file(people_path, Directory, report)
    channels = _load_registry_file(channels_path, ChannelRegistry, report)
    if channels is not None and overlay is not None:
        _apply_overlay(channels, overlay / REGISTRY_DIR / CHANNELS_FILE, report)
    directory = people.model if people else None
    accounts = channels.model if channels else None
    catalog = Catalog(
        root=root,
        directory=Directory.model_construct(
            portfolios=(directory.portfolios if directory else None) or [],
            people=(directory.people if directory else None) or [],
            offices=(directory.offices if directory else None) or [],
            communications_office=(directory.communications_office if directory else None) or "",
        ),
        registry=ChannelRegistry.model_construct(
            accounts=(accounts.accounts if accounts else None) or []
        ),
    )
    registry = _Registry(catalog, {
        "person": _doubtful_ids(people, "people", "id"),
        "portfolio": _doubtful_ids(people, "portfolios", "id"),
        "office": _doubtful_ids(people, "offices", "id"),
        "channel": _doubtful_ids(channels, "accounts", "name"),
    })
    if people:
        report.issues += _check_directory(catalog.directory, people, people_path)
    if channels:
        report.issues += _check_registry(catalog.registry, channels, registry, channels_path)
    return registry


def _apply_overlay(channels: _Read, path: Path, report: ValidationReport) -> None:
    """Replace the connection fields the overlay file names, account by account.

    Applied before the registry's own checks, so an overlay's base URL is checked like
    the registry's. An overlay entry for an account the registry does not have is a
    warning: the overlay may outlive an account removed since it was written.
    """
    if not path.is_file():
        return
    collector = _Collector(path)
    report.files_checked += 1
    doc = read_document(path, collector)
    read = model_from(RegistryOverlay, doc, collector) if doc else None
    if read is not None and not collector.issues:
        accounts = list(channels.model.accounts or [])
        names = {account.name: i for i, account in enumerate(accounts)}
        for j, connection in enumerate(read.model.accounts):
            i = names.get(connection.name)
            if i is None:
                collector.add(("accounts", j, "name"),
                              f"account {connection.name!r} is not in the registry; this "
                              "entry changes nothing", "remove it from the overlay",
                              severity="warning")
                continue
            accounts[i] = accounts[i].model_copy(update=connection.changes())
        channels.salvaged.model = channels.model.model_copy(update={"accounts": accounts})
    report.issues += collector.issues


def _load_registry_file(
    path: Path, model: type[BaseModel], report: ValidationReport
) -> _Read | None:
    collector = _Collector(path)
    if not path.is_file():
        collector.add(0, "registry file is missing",
                      f"create {path.name} in the catalog's registry/ folder")
        report.issues += collector.issues
        return None
    report.files_checked += 1
    doc = read_document(path, collector)
    result = model_from(model, doc, collector) if doc else None
    report.issues += collector.issues
    return result


def _doubtful_ids(read: _Read | None, list_field: str, key: str) -> set[str] | None:
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


def _check_directory(directory: Directory, read: _Read, path: Path) -> list[CatalogIssue]:
    collector = _Collector(path, read.doc, read.salvaged)
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
                              _suggest(portfolio, portfolios, "portfolios"))
        if person.deputy and person.deputy not in people and intact("people"):
            collector.add(("people", i, "deputy"), f"unknown person {person.deputy!r}",
                          _suggest(person.deputy, people, "people"))
        for k, role in enumerate(person.roles):
            if role not in known_roles:
                collector.add(("people", i, "roles", k), f"unknown role {role!r}",
                              _suggest(role, known_roles, "roles"))
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
                      _suggest(directory.communications_office, offices, "offices"))
    for kind, items in (("person", directory.people), ("portfolio", directory.portfolios),
                        ("office", directory.offices)):
        ids = [x.id for x in items]
        for dup in {x for x in ids if ids.count(x) > 1}:
            collector.add(1, f"{kind} id {dup!r} is used twice", "ids must be unique")
    return collector.issues


def _check_registry(
    registry: ChannelRegistry, read: _Read, known: _Registry, path: Path
) -> list[CatalogIssue]:
    collector = _Collector(path, read.doc, read.salvaged)
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
                          _suggest(account.owner, owners, "people and offices"))
        if (account.type not in (ChannelType.MANUAL, ChannelType.WEBSITE, ChannelType.EMAIL)
                and not account.credential and intact("accounts", i, "credential")):
            collector.add(("accounts", i), f"account {account.name!r} has no `credential`",
                          "name the env variable or Prefect Secret block that holds its token")
        if (account.type == ChannelType.EMAIL and not account.recipients
                and intact("accounts", i, "recipients")):
            collector.add(("accounts", i), "the press e-mail account lists no `recipients`",
                          "add the press distribution list")
    return collector.issues


def _suggest(value: str, known: set[str] | list[str], what: str) -> str:
    close = difflib.get_close_matches(value, list(known), n=1)
    listed = ", ".join(sorted(known))
    return (f"did you mean {close[0]!r}? " if close else "") + f"known {what}: {listed}"


# --- one campaign ---------------------------------------------------------------------

_TIMING = ("at", "yearly", "rrule", "start", "until", "on_demand")
# What a template sees besides its channel's content (newsroom.rendering.render.RenderContext).
_RENDER_NEEDS = (("id",), ("title",), ("topic",), ("requested_by",), ("contact",),
                 ("content", "variables"), ("content", "language"))


def load_campaign(
    path: Path, registry: _Registry, *, today: date
) -> tuple[CampaignSource | None, Salvaged | None, list[CatalogIssue]]:
    collector = _Collector(path)
    doc = read_document(path, collector)
    if doc is None:
        return None, None, collector.issues
    read = model_from(Campaign, doc, collector)
    if read is None:
        return None, None, collector.issues
    source = CampaignSource(read.salvaged.model, path, doc)
    collector.salvaged = read.salvaged
    _check_campaign(source, read.salvaged, registry, collector, today)
    return source, read.salvaged, collector.issues


def _check_campaign(
    source: CampaignSource, salvaged: Salvaged, registry: _Registry, out: _Collector, today: date
) -> None:
    """Every check whose parts were read; each skips what an earlier error removed."""
    campaign = source.campaign
    intact = salvaged.intact
    index = registry.catalog.index
    if intact("id") and source.path.stem != campaign.id:
        out.add(("id",), f"id {campaign.id!r} differs from the file name {source.path.name!r}",
                f"rename the file to {campaign.id}.yaml so people find it", severity="warning")
    requester = campaign.requested_by
    if (intact("requested_by") and requester.portfolio
            and registry.is_unknown("portfolio", requester.portfolio)):
        out.add(("requested_by", "portfolio"), f"unknown portfolio {requester.portfolio!r}",
                _suggest(requester.portfolio, index.portfolios, "portfolios"))
    if (intact("requested_by") and requester.office
            and registry.is_unknown("office", requester.office)):
        out.add(("requested_by", "office"), f"unknown office {requester.office!r}",
                _suggest(requester.office, index.offices, "offices"))
    if intact("late", "grace"):
        try:
            parse_duration(campaign.late.grace)
        except LocalTimeError as exc:
            out.add(("late", "grace"), str(exc), exc.hint)
    signatories = _check_approvers(source, salvaged, registry, out)
    timed = _check_slots(source, salvaged, registry, out, today)
    _check_deadline(source, salvaged, out, timed)
    _check_content_refs(source, salvaged, registry, out)
    _check_rendered(source, salvaged, registry, out, today, timed, signatories)


def _check_approvers(
    source: CampaignSource, salvaged: Salvaged, registry: _Registry, out: _Collector
) -> list | None:
    """The approval rules; the approvers that could be resolved (None: the policy is unreadable)."""
    policy = source.campaign.approval
    intact = salvaged.intact
    if policy is None:
        return None
    index = registry.catalog.index
    resolved = []
    all_resolved = intact("approval", "approvers")
    for i, ref in enumerate(policy.approvers):
        try:
            resolved += resolve_approvers(policy.model_copy(update={"approvers": [ref]}), index)
        except UnknownReference as exc:
            all_resolved = False
            message = f"unknown {exc.kind} {exc.value!r}"
            if exc.kind == "portfolio" and exc.value in index.portfolios:
                if registry.doubtful.get("person") != set():
                    continue  # its Dezernent may be an entry the directory's errors removed
                message = f"nobody in the directory is responsible for portfolio {exc.value!r}"
            elif (exc.kind in ("person", "portfolio")
                  and not registry.is_unknown(exc.kind, exc.value)):
                continue  # an entry the directory's errors removed: reported there
            key = "person" if ref.person else "portfolio" if ref.portfolio else "group"
            known = exc.known if exc.kind != "portfolio" else sorted(index.portfolios)
            out.add(("approval", "approvers", i, key), message,
                    _suggest(exc.value, known, exc.kind + "s"))
    for i, person_id in enumerate(policy.escalate_to):
        if registry.is_unknown("person", person_id):
            out.add(("approval", "escalate_to", i), f"unknown person {person_id!r}",
                    _suggest(person_id, index.people, "people"))
    asked = len({a.person.id for a in resolved})
    if (all_resolved and intact("approval", "quorum") and intact("approval", "mode")
            and policy.mode == ApprovalMode.QUORUM and policy.quorum and policy.quorum > asked):
        asked = len(resolve_approvers(policy, index))
        out.add(("approval", "quorum"),
                f"quorum {policy.quorum} is more than the {asked} people asked",
                f"lower the quorum to at most {asked} or add approvers")
    on_timeout = intact("approval", "on_timeout")
    if (on_timeout and intact("approval", "mode")
            and policy.on_timeout == TimeoutAction.PUBLISH_IF_QUORUM
            and policy.mode != ApprovalMode.QUORUM):
        out.add(("approval", "on_timeout"), "`publish_if_quorum` needs `mode: quorum`",
                "set mode: quorum with a quorum, or choose cancel or escalate")
    if on_timeout and policy.escalate_to and policy.on_timeout != TimeoutAction.ESCALATE:
        # Only an escalated deadline tells these people; with any other action nobody would.
        out.add(("approval", "escalate_to"),
                "`escalate_to` only applies with `on_timeout: escalate`; "
                f"with `{policy.on_timeout.value}` nobody in it is told",
                "set on_timeout: escalate, or remove escalate_to")
    if (on_timeout and intact("approval", "escalate_to")
            and policy.on_timeout == TimeoutAction.ESCALATE and not policy.escalate_to):
        out.add(("approval", "on_timeout"), "policy escalates but names nobody in `escalate_to`",
                "list at least one person id under escalate_to (e.g. the OB)", severity="warning")
    if (intact("signatories_in_text") and intact("approval", "mode")
            and source.campaign.signatories_in_text and policy.mode == ApprovalMode.ONE):
        out.add(("signatories_in_text",),
                "signatories in the text only make sense when several people sign",
                "use mode: all or quorum, or drop signatories_in_text", severity="warning")
    return resolved if all_resolved else None


def _check_slots(
    source: CampaignSource, salvaged: Salvaged, registry: _Registry, out: _Collector, today: date
) -> list[int]:
    """The slots' channels and times; the indices of the slots whose times are sound."""
    timed = []
    for i, slot in enumerate(source.campaign.slots or []):
        for j, channel in enumerate(slot.channels):
            if (salvaged.intact("slots", i, "channels", j)
                    and registry.is_unknown("channel", channel)):
                out.add(("slots", i, "channels", j), f"unknown channel {channel!r}",
                        _suggest(channel, registry.catalog.accounts,
                                 "channels (registry/channels.yaml)"))
        if not all(salvaged.intact("slots", i, name) for name in _TIMING):
            continue  # a timing field was refused: its default would say something else
        field_name = "at" if slot.at else "yearly" if slot.yearly else "rrule"
        if slot.until:
            try:
                text = slot.until.strip()
                if len(text) == 4 and text.isdigit():
                    parse_local_datetime(text + "-12-31 23:59")
                else:
                    parse_local_datetime(text if len(text) > 10 else text + " 23:59")
            except LocalTimeError:
                out.add(("slots", i, "until"), f"{slot.until!r} is not a year or date",
                        "write a year (2030) or a date (2030-12-31)")
                continue
        try:
            check_slot_times(slot, today)
        except LocalTimeError as exc:
            where = ("start" if slot.rrule and "RRULE" not in str(exc)
                     and "does not exist" not in str(exc) and "twice" not in str(exc)
                     else field_name)
            out.add(("slots", i, where), str(exc), exc.hint)
            continue
        timed.append(i)
        if slot.at:
            moment = localize(parse_local_datetime(slot.at))
            if moment.date() < today:
                out.add(("slots", i, "at"),
                        f"{slot.at} is in the past; this slot will not be published",
                        "move it to a future date or delete the campaign", severity="warning")
    return timed


def _check_deadline(
    source: CampaignSource, salvaged: Salvaged, out: _Collector, timed: list[int]
) -> None:
    policy = source.campaign.approval
    if policy is None:
        return
    if policy.deadline_before and salvaged.intact("approval", "deadline_before"):
        try:
            delta = parse_duration(policy.deadline_before)
        except LocalTimeError as exc:
            out.add(("approval", "deadline_before"), str(exc), exc.hint)
        else:
            if delta.is_zero:
                out.add(("approval", "deadline_before"),
                        "the deadline must come before the publication",
                        "give a positive duration such as 48h")
    if not policy.deadline or not salvaged.intact("approval", "deadline"):
        return
    try:
        deadline = localize(parse_local_datetime(policy.deadline))
    except LocalTimeError as exc:
        out.add(("approval", "deadline"), str(exc), exc.hint)
        return
    slots = source.campaign.slots or []
    shaped = [s for i, s in enumerate(slots)
              if all(salvaged.intact("slots", i, n) for n in _TIMING)]
    if any(not s.at for s in shaped if not s.on_demand):
        out.add(("approval", "deadline"), "an absolute deadline cannot serve a recurring slot",
                "use deadline_before (e.g. 72h) so each year's occurrence gets its own deadline")
        return
    # Only slots whose time is sound; the first of all slots is no later than the first of these.
    sound = [slots[i] for i in timed if slots[i].at]
    if not sound:
        return
    first = min(localize(parse_local_datetime(s.at or "")) for s in sound)
    if deadline >= first:
        out.add(("approval", "deadline"),
                f"the approval deadline {policy.deadline} is not before the first publication "
                f"{format_local(first)}",
                "set the deadline before the first slot, leaving time to react to a rejection")


def _check_content_refs(
    source: CampaignSource, salvaged: Salvaged, registry: _Registry, out: _Collector
) -> None:
    content = source.campaign.content
    if content is None:
        return
    intact = salvaged.intact
    catalog = registry.catalog
    slots = source.campaign.slots or []
    used = {c for i, slot in enumerate(slots) for j, c in enumerate(slot.channels)
            if intact("slots", i, "channels", j)}
    all_used_known = intact("slots")
    used_types = {catalog.accounts[c].type.value for c in used if c in catalog.accounts}
    type_names = {t.value for t in ChannelType}
    for key in content.channels:
        if not intact("content", "channels", key):
            continue
        if key not in type_names and registry.is_unknown("channel", key):
            out.add(("content", "channels", key), f"unknown channel {key!r}",
                    _suggest(key, list(catalog.accounts) + sorted(type_names),
                             "channels and channel types"))
        elif (all_used_known and key not in used and key not in used_types
              and (key in catalog.accounts or key in type_names)):
            out.add(("content", "channels", key),
                    f"content for {key!r}, but no slot publishes there",
                    "add the channel to a slot or remove this block", severity="warning")
    if (content.template is None and content.text is None
            and intact("content", "template") and intact("content", "text")):
        missing = [c for c in sorted(used)
                   if c in catalog.accounts and _overrides_intact(salvaged, catalog, c)
                   and not _has_own_text(content, catalog, c)]
        if missing:
            out.add(("content",), f"no text for channels {', '.join(missing)}",
                    "give `content.text` (or `content.template`) or one under content.channels")
    image_lists: list[tuple[tuple[str | int, ...], list]] = [
        (("content", "images"), content.images or [])
    ]
    image_lists += [(("content", "channels", k, "images"), v.images or [])
                    for k, v in content.channels.items()]
    for base, images in image_lists:
        for i, image in enumerate(images):
            if image.file and not (catalog.images_dir / image.file).is_file():
                out.add((*base, i, "file"),
                        f"image file {image.file!r} not found in "
                        f"{relative_path(catalog.images_dir)}",
                        "put the image into the catalog's images/ folder or fix the name")
            if image.url and not image.url.startswith("https://"):
                out.add((*base, i, "url"), "image URLs must use https://",
                        "networks fetch images only over HTTPS")
    links = [(("content", "link"), content.link)] + [
        (("content", "channels", k, "link"), v.link) for k, v in content.channels.items()
    ]
    for where, link in links:
        if link and not link.startswith("https://"):
            out.add(where, f"link {link!r} does not start with https://",
                    "use the https:// address")
    for where, tags in [(("content", "hashtags"), content.hashtags or [])] + [
        (("content", "channels", k, "hashtags"), v.hashtags or [])
        for k, v in content.channels.items()
    ]:
        for i, tag in enumerate(tags):
            from ..rendering.hashtags import check_hashtag

            problem = check_hashtag(tag)
            if problem:
                out.add((*where, i), problem.message, problem.hint)


def _overrides_intact(salvaged: Salvaged, catalog: Catalog, channel: str) -> bool:
    """Whether the content blocks that may apply to ``channel`` were read whole."""
    account = catalog.accounts.get(channel)
    keys = [channel] + ([account.type.value] if account else [])
    return all(salvaged.intact("content", "channels", key) for key in keys)


def _has_own_text(content, catalog: Catalog, channel: str) -> bool:
    account = catalog.accounts.get(channel)
    for key in (channel, account.type.value if account else None):
        override = content.channels.get(key) if key else None
        if override and (override.text or override.template):
            return True
    return False


def _check_rendered(
    source: CampaignSource,
    salvaged: Salvaged,
    registry: _Registry,
    out: _Collector,
    today: date,
    timed: list[int],
    signatories: list | None,
) -> None:
    """Render every channel for the next occurrence and check the result.

    Only what was read whole renders: the sound slots, the known channels, content that
    nothing was removed from; so an error here is the text's own, never an echo.
    """
    from ..channels import measure_text, requires_image
    from ..rendering.hashtags import check_hashtag, hashtags_in
    from ..rendering.render import make_environment, render_post, resolve_content

    campaign = source.campaign
    if campaign.content is None or not all(salvaged.intact(*path) for path in _RENDER_NEEDS):
        return
    catalog = registry.catalog
    slots = [
        campaign.slots[i].model_copy(update={"channels": [
            c for j, c in enumerate(campaign.slots[i].channels)
            if c in catalog.accounts and salvaged.intact("slots", i, "channels", j)
        ]})
        for i in timed
    ]
    slots = [s for s in slots if s.channels]
    if not slots:
        return
    whole = salvaged.intact("slots") and len(slots) == len(campaign.slots)
    partial = dataclasses.replace(source, campaign=campaign.model_copy(update={"slots": slots}))
    start = datetime(today.year, today.month, today.day, tzinfo=BERLIN)
    occurrence = next_occurrence(partial.campaign, start)
    if occurrence is None and any(s.on_demand for s in slots):
        occurrence = on_demand_occurrence(partial.campaign, start.replace(hour=12))
    if occurrence is None:
        past = occurrences(partial.campaign, datetime(1970, 1, 1, tzinfo=BERLIN), start)
        occurrence = past[-1] if past else None
    if occurrence is None:
        if whole:
            out.add(("slots",), "this campaign never publishes",
                    "check the slots' dates and `until`", severity="warning")
        return
    # Approvers that could not be resolved are missing from {{ signatories }}: a text too
    # long without them is too long with them, but an empty one may not be.
    if signatories is not None:
        names = None  # render_post asks everyone, deputies standing in on the day
    elif campaign.approval is None:
        names = []
    else:
        names = [a.person.display for a in _resolvable(campaign, catalog)]
    env = make_environment(catalog.templates_dir)
    reported: set[tuple[str, str]] = set()
    for channel, at in occurrence.channel_times().items():
        account = catalog.accounts[channel]
        if not _content_intact(salvaged, account):
            continue
        images_sure = (salvaged.intact("content", "images")
                       and _overrides_images_intact(salvaged, account))
        content = resolve_content(partial, account)
        try:
            post = render_post(catalog, partial, account, publish_at=at,
                               occurrence_date=occurrence.date, signatories=names, env=env)
        except RenderError as exc:
            key = (exc.template, str(exc))
            if key in reported:
                continue
            reported.add(key)
            _report_render_error(exc, content, partial, catalog, out, channel)
            continue
        if not post.text.strip():
            if names is None:
                where = (content.inline_path if content.inline_text is not None
                         else (*content.inline_path[:-1], "template"))
                out.add(where, f"the post for {channel!r} is empty: "
                        "the template printed nothing "
                        f"(on {occurrence.date.isoformat()})",
                        "check its {% if %} conditions, or give the channel a text of its own "
                        f"under content.channels.{channel}")
            continue
        if requires_image(account) and not post.media and images_sure:
            out.add(content.images_path[:2] if content.images_path[:2] != ("content",)
                    else ("content",),
                    f"{account.type.value} needs an image, but channel {channel!r} has none",
                    "add an image with alt text under content.images or "
                    "content.channels.instagram.images")
        for measurement in measure_text(post.text, account, has_image=bool(post.media)):
            if measurement.ok:
                continue
            if not images_sure and all(
                m.ok for m in measure_text(post.text, account, has_image=not post.media)
            ):
                continue  # too long only because a refused image is missing (a caption's limit)
            where = (content.inline_path if content.inline_text is not None
                     else (*content.inline_path[:-1], "template"))
            out.add(where,
                    f"the post for {channel!r} is too long: {measurement.describe()} "
                    f"(on {occurrence.date.isoformat()})",
                    _shorten_hint(measurement, content, channel))
        for tag in hashtags_in(post.text):
            problem = check_hashtag(tag)
            if problem and (channel, tag) not in reported and tag not in (content.hashtags or ()):
                reported.add((channel, tag))
                message = f"in the text for {channel!r}: {problem.message}"
                if content.inline_text is not None:
                    in_text = _line_with_hashtag(content.inline_text, tag)
                    line = _inline_line(partial, content, in_text)
                    out.issues.append(CatalogIssue(
                        out.file, line, message, problem.hint, _dotted(content.inline_path)))
                else:
                    out.add((*content.inline_path[:-1], "template"), message, problem.hint)


def _resolvable(campaign: Campaign, catalog: Catalog) -> list:
    policy = campaign.approval
    found = []
    for ref in policy.approvers:
        try:
            found += resolve_approvers(
                policy.model_copy(update={"approvers": [ref]}), catalog.index
            )
        except UnknownReference:
            pass
    return found


def _content_intact(salvaged: Salvaged, account) -> bool:
    """Whether the text, template, link and hashtags that apply to ``account`` were read whole."""
    for base in (("content",), ("content", "channels", account.name),
                 ("content", "channels", account.type.value)):
        for part in ("text", "template", "link", "hashtags"):
            if not salvaged.intact(*base, part):
                return False
    return all(salvaged.intact("content", "channels", key) or _only_images_removed(salvaged, key)
               for key in (account.name, account.type.value))


def _only_images_removed(salvaged: Salvaged, key: str) -> bool:
    base = ("content", "channels", key)
    return all(gone[: len(base) + 1] == (*base, "images")
               for gone in salvaged.removed if gone[: len(base)] == base)


def _overrides_images_intact(salvaged: Salvaged, account) -> bool:
    return all(salvaged.intact("content", "channels", key, "images")
               for key in (account.name, account.type.value))


def _shorten_hint(measurement, content, channel: str) -> str:
    """By how much, in the unit the network counts; an own text for the channel only if
    it has none yet."""
    hint = f"shorten the text by {measurement.excess}"
    if tuple(content.inline_path[:2]) == ("content", "channels"):
        return hint + f" (its own text under {'.'.join(map(str, content.inline_path[:3]))})"
    return hint + f", or give {channel} its own shorter text under content.channels.{channel}"


def _report_render_error(
    exc: RenderError, content, source: CampaignSource, catalog: Catalog, out: _Collector,
    channel: str,
) -> None:
    hint = exc.hint
    message = f"{exc} (rendering for {channel!r})"
    if content.template_name:
        template_file = catalog.templates_dir / (exc.template or content.template_name)
        where_file = relative_path(template_file) if template_file.is_file() else out.file
        line = exc.line or (source.line_of("content", "template") if where_file == out.file else 1)
        out.issues.append(CatalogIssue(where_file, line, message, hint,
                                       "" if where_file != out.file else "content.template"))
        return
    line = _inline_line(source, content, exc.line)
    out.issues.append(CatalogIssue(out.file, line, message, hint, _dotted(content.inline_path)))


def _inline_line(source: CampaignSource, content, template_line: int) -> int:
    """The file line of ``template_line`` of an inline text; its key's line if unknown."""
    first = source.doc.literal_blocks.get(tuple(content.inline_path))
    if first is None or template_line < 1:
        return source.line_of(*content.inline_path)
    return first + template_line - 1


def _line_with_hashtag(text: str, tag: str) -> int:
    from ..rendering.hashtags import hashtags_in

    for number, line in enumerate(text.splitlines(), start=1):
        if tag in hashtags_in(line):
            return number
    return 0
