"""Load and check the whole catalog; every problem names its file, line, fault and fix.

Checks run in layers. A file that is not YAML stops at the syntax error; a file whose
shape is wrong stops at pydantic's errors; only well-formed campaigns get the checks that
look across files (people, portfolios, channels), at times (DST, deadlines) and at the
rendered posts (templates, lengths, hashtags, images).
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import CatalogIssue, RenderError, relative_path
from ..timeutil import BERLIN, LocalTimeError, localize, parse_duration, parse_local_datetime
from .approvers import DirectoryIndex, UnknownReference, resolve_approvers
from .catalog import (
    CHANNELS_FILE,
    PEOPLE_FILE,
    REGISTRY_DIR,
    CampaignSource,
    Catalog,
    campaign_files,
    find_catalog_root,
)
from .models import ApprovalMode, Campaign, ChannelRegistry, ChannelType, Directory, TimeoutAction
from .roles import Role
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
    def __init__(self, path: Path, doc: SourceDocument | None = None):
        self.file = relative_path(path)
        self.doc = doc
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
        collector.add(1, f"cannot read the file: {exc.strerror}", "check that it exists and is readable")
        return None
    try:
        doc = parse_yaml(text)
    except YamlProblem as exc:
        collector.add(exc.line, str(exc), exc.hint)
        return None
    collector.doc = doc
    for key_path, line in doc.duplicate_keys:
        collector.add(line, f"`{_dotted(key_path)}` is given twice", "keep one of them; YAML would silently use the last")
    if not isinstance(doc.data, dict):
        collector.add(1, "the file must be a mapping of fields (key: value)", "start with `id: …` on the first line")
        return None
    return doc


def model_from(model: type[BaseModel], doc: SourceDocument, collector: _Collector) -> Any | None:
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        for error in exc.errors():
            _report_pydantic(error, model, doc, collector)
        return None


def _report_pydantic(error: dict, model: type[BaseModel], doc: SourceDocument, out: _Collector) -> None:
    loc = tuple(p for p in error["loc"] if isinstance(p, (str, int)))
    kind = error["type"]
    name = str(loc[-1]) if loc else ""
    if kind == "missing":
        allowed = _fields_at(model, loc[:-1])
        description = allowed.get(name, "")
        out.add(
            loc[:-1] if loc[:-1] else 1,
            f"required field `{name}` is missing" + (f" under `{_dotted(loc[:-1])}`" if loc[:-1] else ""),
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
        hint = (f"did you mean `{close[0]}`? " if close else "") + f"use one of: {', '.join(options)}"
        out.add(loc, f"{value!r} is not a valid value", hint)
        return
    if kind == "string_pattern_mismatch":
        out.add(loc, f"{value!r} is not a valid id", "use lower-case letters, digits and hyphens, e.g. trikottag-2027")
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
        current = _unwrap(current)
        if isinstance(part, int):
            args = typing.get_args(current)
            current = args[0] if args else Any
        elif isinstance(current, type) and issubclass(current, BaseModel):
            info = _model_fields(current).get(part)
            current = info.annotation if info else Any
        else:
            args = typing.get_args(current)
            current = args[-1] if args else Any
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return {
            (info.alias or key): ("optional" if not info.is_required() else "required")
            for key, info in current.model_fields.items()
        }
    return {}


def _model_fields(model: type[BaseModel]) -> dict[str, Any]:
    return {(info.alias or key): info for key, info in model.model_fields.items()}


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else annotation
    return annotation


# --- the catalog ----------------------------------------------------------------------


def load_catalog(
    root: Path,
    *,
    only: list[Path] | None = None,
    today: date | None = None,
) -> ValidationReport:
    """Load the catalog at ``root``; with ``only``, check just those campaign files."""
    report = ValidationReport()
    today = today or datetime.now(BERLIN).date()
    root = root.resolve()
    directory = _load_registry_file(root / REGISTRY_DIR / PEOPLE_FILE, Directory, report)
    registry = _load_registry_file(root / REGISTRY_DIR / CHANNELS_FILE, ChannelRegistry, report)
    if directory is None or registry is None:
        return report
    directory_issues = _check_directory(directory, root / REGISTRY_DIR / PEOPLE_FILE)
    registry_issues = _check_registry(registry, directory, root / REGISTRY_DIR / CHANNELS_FILE)
    report.issues += directory_issues + registry_issues
    if any(i.is_error for i in directory_issues + registry_issues):
        return report
    catalog = Catalog(root=root, directory=directory, registry=registry)
    report.catalog = catalog
    files = campaign_files(root) if only is None else [p.resolve() for p in only]
    seen: dict[str, Path] = {}
    for path in files:
        report.files_checked += 1
        source, issues = load_campaign(path, catalog, today=today)
        report.issues += issues
        if source is None:
            continue
        campaign_id = source.campaign.id
        if campaign_id in seen:
            report.issues.append(
                CatalogIssue(
                    relative_path(path),
                    source.line_of("id"),
                    f"campaign id {campaign_id!r} is already used by {relative_path(seen[campaign_id])}",
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
        for path in campaign_files(root):
            if path.resolve() in seen.values():
                continue
            source, issues = load_campaign(path, catalog, today=today)
            if source and not any(i.is_error for i in issues):
                catalog.campaigns.setdefault(source.campaign.id, source)
    report.issues.sort(key=lambda i: (i.file, i.line))
    return report


def load_catalog_for(paths: list[Path], *, today: date | None = None, fallback_root: Path | None = None) -> ValidationReport:
    """Validate the given files or folders, finding their catalog root from the registry."""
    report = ValidationReport()
    roots: dict[Path, list[Path] | None] = {}
    for path in paths:
        if not path.exists():
            report.issues.append(
                CatalogIssue(str(path), 0, "no such file or folder", "check the path; campaigns live in campaigns/")
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
        sub = load_catalog(root, only=only, today=today)
        report.issues += sub.issues
        report.files_checked += sub.files_checked
        report.catalog = report.catalog or sub.catalog
    return report


def _load_registry_file(path: Path, model: type[BaseModel], report: ValidationReport) -> Any | None:
    collector = _Collector(path)
    if not path.is_file():
        collector.add(0, "registry file is missing", f"create {path.name} in the catalog's registry/ folder")
        report.issues += collector.issues
        return None
    report.files_checked += 1
    doc = read_document(path, collector)
    result = model_from(model, doc, collector) if doc else None
    report.issues += collector.issues
    return result if not collector.issues or not any(i.is_error for i in collector.issues) else None


def _check_directory(directory: Directory, path: Path) -> list[CatalogIssue]:
    collector = _Collector(path, parse_yaml(path.read_text(encoding="utf-8")))
    portfolios = {p.id for p in directory.portfolios}
    people = {p.id for p in directory.people}
    offices = {o.id for o in directory.offices}
    known_roles = {r.value for r in Role}
    for i, person in enumerate(directory.people):
        for j, portfolio in enumerate(person.portfolios):
            if portfolio not in portfolios:
                collector.add(("people", i, "portfolios", j), f"unknown portfolio {portfolio!r}", _suggest(portfolio, portfolios, "portfolios"))
        if person.deputy and person.deputy not in people:
            collector.add(("people", i, "deputy"), f"unknown person {person.deputy!r}", _suggest(person.deputy, people, "people"))
        for k, role in enumerate(person.roles):
            if role not in known_roles:
                collector.add(("people", i, "roles", k), f"unknown role {role!r}", _suggest(role, known_roles, "roles"))
        for k, absence in enumerate(person.absences):
            try:
                if date.fromisoformat(absence.start) > date.fromisoformat(absence.until):
                    collector.add(("people", i, "absences", k), "absence ends before it starts", "swap `from` and `to`")
            except ValueError:
                collector.add(("people", i, "absences", k), "absence dates must be YYYY-MM-DD", "e.g. from: 2027-07-01")
    owners: dict[str, int] = {}
    for i, person in enumerate(directory.people):
        for portfolio in person.portfolios:
            if portfolio in owners:
                collector.add(("people", i, "portfolios"), f"portfolio {portfolio!r} has two Dezernenten", "each portfolio belongs to one person")
            owners[portfolio] = i
    if directory.communications_office not in offices:
        collector.add(("communications_office",), f"unknown office {directory.communications_office!r}", _suggest(directory.communications_office, offices, "offices"))
    for kind, items in (("person", directory.people), ("portfolio", directory.portfolios), ("office", directory.offices)):
        ids = [x.id for x in items]
        for dup in {x for x in ids if ids.count(x) > 1}:
            collector.add(1, f"{kind} id {dup!r} is used twice", "ids must be unique")
    return collector.issues


def _check_registry(registry: ChannelRegistry, directory: Directory, path: Path) -> list[CatalogIssue]:
    collector = _Collector(path, parse_yaml(path.read_text(encoding="utf-8")))
    owners = {p.id for p in directory.people} | {o.id for o in directory.offices}
    names = [a.name for a in registry.accounts]
    for i, account in enumerate(registry.accounts):
        if names.count(account.name) > 1:
            collector.add(("accounts", i, "name"), f"account name {account.name!r} is used twice", "names must be unique")
        if account.owner and account.owner not in owners:
            collector.add(("accounts", i, "owner"), f"unknown person or office {account.owner!r}", _suggest(account.owner, owners, "people and offices"))
        if account.type not in (ChannelType.MANUAL, ChannelType.WEBSITE, ChannelType.EMAIL) and not account.credential:
            collector.add(("accounts", i), f"account {account.name!r} has no `credential`", "name the env variable or Prefect Secret block that holds its token")
        if account.type == ChannelType.EMAIL and not account.recipients:
            collector.add(("accounts", i), "the press e-mail account lists no `recipients`", "add the press distribution list")
    return collector.issues


def _suggest(value: str, known: set[str] | list[str], what: str) -> str:
    close = difflib.get_close_matches(value, list(known), n=1)
    listed = ", ".join(sorted(known))
    return (f"did you mean {close[0]!r}? " if close else "") + f"known {what}: {listed}"


# --- one campaign ---------------------------------------------------------------------


def load_campaign(path: Path, catalog: Catalog, *, today: date) -> tuple[CampaignSource | None, list[CatalogIssue]]:
    collector = _Collector(path)
    doc = read_document(path, collector)
    if doc is None:
        return None, collector.issues
    campaign = model_from(Campaign, doc, collector)
    if campaign is None:
        return None, collector.issues
    source = CampaignSource(campaign, path, doc)
    _check_campaign(source, catalog, collector, today)
    return source, collector.issues


def _check_campaign(source: CampaignSource, catalog: Catalog, out: _Collector, today: date) -> None:
    campaign = source.campaign
    index = catalog.index
    if source.path.stem != campaign.id:
        out.add(("id",), f"id {campaign.id!r} differs from the file name {source.path.name!r}",
                f"rename the file to {campaign.id}.yaml so people find it", severity="warning")
    requester = campaign.requested_by
    if requester.portfolio and requester.portfolio not in index.portfolios:
        out.add(("requested_by", "portfolio"), f"unknown portfolio {requester.portfolio!r}",
                _suggest(requester.portfolio, index.portfolios, "portfolios"))
    if requester.office and requester.office not in index.offices:
        out.add(("requested_by", "office"), f"unknown office {requester.office!r}",
                _suggest(requester.office, index.offices, "offices"))
    try:
        parse_duration(campaign.late.grace)
    except LocalTimeError as exc:
        out.add(("late", "grace"), str(exc), exc.hint)
    approvers_ok = _check_approvers(source, index, out)
    slots_ok = _check_slots(source, catalog, out, today)
    if slots_ok:
        _check_deadline(source, out, today)
    _check_content_refs(source, catalog, out)
    if approvers_ok and slots_ok and not any(i.is_error for i in out.issues):
        _check_rendered(source, catalog, out, today)


def _check_approvers(source: CampaignSource, index: DirectoryIndex, out: _Collector) -> bool:
    policy = source.campaign.approval
    ok = True
    for i, ref in enumerate(policy.approvers):
        try:
            resolve_approvers(policy.model_copy(update={"approvers": [ref]}), index)
        except UnknownReference as exc:
            key = "person" if ref.person else "portfolio" if ref.portfolio else "group"
            known = exc.known if exc.kind != "portfolio" else sorted(index.portfolios)
            message = f"unknown {exc.kind} {exc.value!r}"
            if exc.kind == "portfolio" and exc.value in index.portfolios:
                message = f"nobody in the directory is responsible for portfolio {exc.value!r}"
            out.add(("approval", "approvers", i, key), message, _suggest(exc.value, known, exc.kind + "s"))
            ok = False
    for i, person_id in enumerate(policy.escalate_to):
        if person_id not in index.people:
            out.add(("approval", "escalate_to", i), f"unknown person {person_id!r}", _suggest(person_id, index.people, "people"))
            ok = False
    if not ok:
        return False
    asked = len(resolve_approvers(policy, index))
    if policy.mode == ApprovalMode.QUORUM and policy.quorum and policy.quorum > asked:
        out.add(("approval", "quorum"), f"quorum {policy.quorum} is more than the {asked} people asked",
                f"lower the quorum to at most {asked} or add approvers")
        ok = False
    if policy.on_timeout == TimeoutAction.PUBLISH_IF_QUORUM and policy.mode != ApprovalMode.QUORUM:
        out.add(("approval", "on_timeout"), "`publish_if_quorum` needs `mode: quorum`",
                "set mode: quorum with a quorum, or choose cancel or escalate")
        ok = False
    if policy.escalate_to and policy.on_timeout != TimeoutAction.ESCALATE:
        # Only an escalated deadline tells these people; with any other action nobody would.
        out.add(("approval", "escalate_to"),
                f"`escalate_to` only applies with `on_timeout: escalate`; with `{policy.on_timeout.value}` "
                "nobody in it is told",
                "set on_timeout: escalate, or remove escalate_to")
    if policy.on_timeout == TimeoutAction.ESCALATE and not policy.escalate_to:
        out.add(("approval", "on_timeout"), "policy escalates but names nobody in `escalate_to`",
                "list at least one person id under escalate_to (e.g. the OB)", severity="warning")
    if source.campaign.signatories_in_text and policy.mode == ApprovalMode.ONE:
        out.add(("signatories_in_text",), "signatories in the text only make sense when several people sign",
                "use mode: all or quorum, or drop signatories_in_text", severity="warning")
    return ok


def _check_slots(source: CampaignSource, catalog: Catalog, out: _Collector, today: date) -> bool:
    ok = True
    for i, slot in enumerate(source.campaign.slots):
        for j, channel in enumerate(slot.channels):
            if channel not in catalog.accounts:
                out.add(("slots", i, "channels", j), f"unknown channel {channel!r}",
                        _suggest(channel, catalog.accounts, "channels (registry/channels.yaml)"))
                ok = False
        field_name = "at" if slot.at else "yearly" if slot.yearly else "rrule"
        if slot.until:
            try:
                text = slot.until.strip()
                if len(text) == 4 and text.isdigit():
                    parse_local_datetime(text + "-12-31 23:59")
                else:
                    parse_local_datetime(text if len(text) > 10 else text + " 23:59")
            except LocalTimeError:
                out.add(("slots", i, "until"), f"{slot.until!r} is not a year or date", "write a year (2030) or a date (2030-12-31)")
                ok = False
                continue
        try:
            check_slot_times(slot, today)
        except LocalTimeError as exc:
            where = "start" if slot.rrule and "RRULE" not in str(exc) and "does not exist" not in str(exc) and "twice" not in str(exc) else field_name
            out.add(("slots", i, where), str(exc), exc.hint)
            ok = False
            continue
        if slot.at:
            moment = localize(parse_local_datetime(slot.at))
            if moment.date() < today:
                out.add(("slots", i, "at"), f"{slot.at} is in the past; this slot will not be published",
                        "move it to a future date or delete the campaign", severity="warning")
    return ok


def _first_publication(source: CampaignSource, today: date) -> datetime | None:
    start = datetime(today.year, today.month, today.day, tzinfo=BERLIN)
    found = next_occurrence(source.campaign, start)
    if found is None:
        past = occurrences(source.campaign, datetime(1970, 1, 1, tzinfo=BERLIN), start)
        return past[-1].first_publish_at if past else None
    return found.first_publish_at


def _check_deadline(source: CampaignSource, out: _Collector, today: date) -> None:
    policy = source.campaign.approval
    if policy.deadline_before:
        try:
            delta = parse_duration(policy.deadline_before)
        except LocalTimeError as exc:
            out.add(("approval", "deadline_before"), str(exc), exc.hint)
            return
        if delta.is_zero:
            out.add(("approval", "deadline_before"), "the deadline must come before the publication",
                    "give a positive duration such as 48h")
    if policy.deadline:
        try:
            deadline = localize(parse_local_datetime(policy.deadline))
        except LocalTimeError as exc:
            out.add(("approval", "deadline"), str(exc), exc.hint)
            return
        if any(not s.at for s in source.campaign.slots if not s.on_demand):
            out.add(("approval", "deadline"), "an absolute deadline cannot serve a recurring slot",
                    "use deadline_before (e.g. 72h) so each year's occurrence gets its own deadline")
            return
        timed = [s for s in source.campaign.slots if s.at]
        if not timed:
            return
        first = min(localize(parse_local_datetime(s.at or "")) for s in timed)
        if deadline >= first:
            out.add(("approval", "deadline"),
                    f"the approval deadline {policy.deadline} is not before the first publication {first:%Y-%m-%d %H:%M}",
                    "set the deadline before the first slot, leaving time to react to a rejection")


def _check_content_refs(source: CampaignSource, catalog: Catalog, out: _Collector) -> None:
    content = source.campaign.content
    used = {c for slot in source.campaign.slots for c in slot.channels}
    used_types = {catalog.accounts[c].type.value for c in used if c in catalog.accounts}
    type_names = {t.value for t in ChannelType}
    for key in content.channels:
        if key not in catalog.accounts and key not in type_names:
            out.add(("content", "channels", key), f"unknown channel {key!r}",
                    _suggest(key, list(catalog.accounts) + sorted(type_names), "channels and channel types"))
        elif key not in used and key not in used_types:
            out.add(("content", "channels", key), f"content for {key!r}, but no slot publishes there",
                    "add the channel to a slot or remove this block", severity="warning")
    if content.template is None and content.text is None:
        missing = [c for c in sorted(used) if not _has_own_text(content, catalog, c)]
        if missing:
            out.add(("content",), f"no text for channels {', '.join(missing)}",
                    "give `content.text` (or `content.template`) or one under content.channels")
    image_lists: list[tuple[tuple[str | int, ...], list]] = [(("content", "images"), content.images or [])]
    image_lists += [(("content", "channels", k, "images"), v.images or []) for k, v in content.channels.items()]
    for base, images in image_lists:
        for i, image in enumerate(images):
            if image.file and not (catalog.images_dir / image.file).is_file():
                out.add((*base, i, "file"), f"image file {image.file!r} not found in {relative_path(catalog.images_dir)}",
                        "put the image into the catalog's images/ folder or fix the name")
            if image.url and not image.url.startswith("https://"):
                out.add((*base, i, "url"), "image URLs must use https://", "networks fetch images only over HTTPS")
    links = [(("content", "link"), content.link)] + [
        (("content", "channels", k, "link"), v.link) for k, v in content.channels.items()
    ]
    for where, link in links:
        if link and not link.startswith("https://"):
            out.add(where, f"link {link!r} does not start with https://", "use the https:// address")
    for where, tags in [(("content", "hashtags"), content.hashtags or [])] + [
        (("content", "channels", k, "hashtags"), v.hashtags or []) for k, v in content.channels.items()
    ]:
        for i, tag in enumerate(tags):
            from ..rendering.hashtags import check_hashtag

            problem = check_hashtag(tag)
            if problem:
                out.add((*where, i), problem.message, problem.hint)


def _has_own_text(content, catalog: Catalog, channel: str) -> bool:
    account = catalog.accounts.get(channel)
    for key in (channel, account.type.value if account else None):
        override = content.channels.get(key) if key else None
        if override and (override.text or override.template):
            return True
    return False


def _check_rendered(source: CampaignSource, catalog: Catalog, out: _Collector, today: date) -> None:
    """Render every channel for the next occurrence and check the result."""
    from ..rendering.hashtags import check_hashtag, hashtags_in
    from ..rendering.measure import measure_text, requires_image
    from ..rendering.render import make_environment, render_post, resolve_content

    start = datetime(today.year, today.month, today.day, tzinfo=BERLIN)
    occurrence = next_occurrence(source.campaign, start)
    if occurrence is None and any(s.on_demand for s in source.campaign.slots):
        occurrence = on_demand_occurrence(source.campaign, start.replace(hour=12))
    if occurrence is None:
        past = occurrences(source.campaign, datetime(1970, 1, 1, tzinfo=BERLIN), start)
        occurrence = past[-1] if past else None
    if occurrence is None:
        out.add(("slots",), "this campaign never publishes", "check the slots' dates and `until`", severity="warning")
        return
    env = make_environment(catalog.templates_dir)
    reported: set[tuple[str, str]] = set()
    for channel, at in occurrence.channel_times().items():
        account = catalog.accounts[channel]
        content = resolve_content(source, account)
        try:
            post = render_post(catalog, source, account, publish_at=at, occurrence_date=occurrence.date, env=env)
        except RenderError as exc:
            key = (exc.template, str(exc))
            if key in reported:
                continue
            reported.add(key)
            _report_render_error(exc, content, source, catalog, out, channel)
            continue
        if not post.text.strip():
            where = content.inline_path if content.inline_text is not None else (*content.inline_path[:-1], "template")
            out.add(where, f"the post for {channel!r} is empty: the template printed nothing "
                    f"(on {occurrence.date.isoformat()})",
                    "check its {% if %} conditions, or give the channel a text of its own under "
                    f"content.channels.{channel}")
            continue
        if requires_image(account) and not post.media:
            out.add(content.images_path[:2] if content.images_path[:2] != ("content",) else ("content",),
                    f"{account.type.value} needs an image, but channel {channel!r} has none",
                    "add an image with alt text under content.images or content.channels.instagram.images")
        for measurement in measure_text(post.text, account, has_image=bool(post.media)):
            if not measurement.ok:
                where = content.inline_path if content.inline_text is not None else (*content.inline_path[:-1], "template")
                out.add(where,
                        f"the post for {channel!r} is too long: {measurement.describe()} "
                        f"(on {occurrence.date.isoformat()})",
                        f"shorten the text by {measurement.length - (measurement.limit or 0)} or give "
                        f"{channel} its own shorter text under content.channels.{channel}")
        for tag in hashtags_in(post.text):
            problem = check_hashtag(tag)
            if problem and (channel, tag) not in reported and tag not in (content.hashtags or ()):
                reported.add((channel, tag))
                message = f"in the text for {channel!r}: {problem.message}"
                if content.inline_text is not None:
                    in_text = _line_with_hashtag(content.inline_text, tag)
                    line = _inline_line(source, content, in_text)
                    out.issues.append(CatalogIssue(
                        out.file, line, message, problem.hint, _dotted(content.inline_path)))
                else:
                    out.add((*content.inline_path[:-1], "template"), message, problem.hint)


def _report_render_error(exc: RenderError, content, source: CampaignSource, catalog: Catalog, out: _Collector, channel: str) -> None:
    hint = exc.hint
    message = f"{exc} (rendering for {channel!r})"
    if content.template_name:
        template_file = catalog.templates_dir / (exc.template or content.template_name)
        where_file = relative_path(template_file) if template_file.is_file() else out.file
        line = exc.line or (source.line_of("content", "template") if where_file == out.file else 1)
        out.issues.append(CatalogIssue(where_file, line, message, hint, "" if where_file != out.file else "content.template"))
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
