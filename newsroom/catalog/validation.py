"""Load and check the whole catalog; every problem names its file, line, fault and fix.

One run reports every error of every file. A file that is not YAML stops at the syntax
error (nothing after it can be read). Otherwise pydantic's shape errors are reported all
at once, and every other check still runs on what was read (:mod:`.salvage`): the checks
across files (people, portfolios, channels), of times (DST, deadlines) and of the
rendered posts (templates, lengths, hashtags, images). A check that would read a part
an earlier error removed is skipped, so no error is an echo of another; a mistake in the
registry does not hide the campaigns' mistakes, and campaigns naming an entry that the
registry's errors removed are not told it is unknown.

This module holds the entry points and the report; the checks live beside it, and their
imports point one way, each module importing only those after it:

    validation → campaign_checks → rendered_checks → registry_checks → reading

- :mod:`.campaign_checks`: one campaign file (requester, approvers, slots, deadline, content);
- :mod:`.rendered_checks`: its rendered posts;
- :mod:`.registry_checks`: the registry's files, and :class:`Registry` as the campaigns see it;
- :mod:`.reading`: one file's document, model and shape errors, and the issue collector.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from pydantic import BaseModel

from ..errors import CatalogIssue, relative_path
from ..timeutil import BERLIN
from .campaign_checks import check_campaign
from .catalog import (
    CHANNELS_FILE,
    PEOPLE_FILE,
    REGISTRY_DIR,
    CampaignSource,
    Catalog,
    campaign_files,
    find_catalog_root,
)
from .models import Campaign, ChannelRegistry, Directory, RegistryOverlay
from .reading import Collector, Read, model_from, read_document
from .registry_checks import Registry, check_directory, check_registry, doubtful_ids
from .salvage import Salvaged

__all__ = [
    "ValidationReport",
    "load_campaign",
    "load_catalog",
    "load_catalog_for",
    "model_from",
    "read_document",
]


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


# --- the catalog ----------------------------------------------------------------------


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


def _load_registry(root: Path, report: ValidationReport, overlay: Path | None = None) -> Registry:
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
    registry = Registry(catalog, {
        "person": doubtful_ids(people, "people", "id"),
        "portfolio": doubtful_ids(people, "portfolios", "id"),
        "office": doubtful_ids(people, "offices", "id"),
        "channel": doubtful_ids(channels, "accounts", "name"),
    })
    if people:
        report.issues += check_directory(catalog.directory, people, people_path)
    if channels:
        report.issues += check_registry(catalog.registry, channels, registry, channels_path)
    return registry


def _apply_overlay(channels: Read, path: Path, report: ValidationReport) -> None:
    """Replace the connection fields the overlay file names, account by account.

    Applied before the registry's own checks, so an overlay's base URL is checked like
    the registry's. An overlay entry for an account the registry does not have is a
    warning: the overlay may outlive an account removed since it was written.
    """
    if not path.is_file():
        return
    collector = Collector(path)
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
) -> Read | None:
    collector = Collector(path)
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


# --- one campaign ---------------------------------------------------------------------


def load_campaign(
    path: Path, registry: Registry, *, today: date
) -> tuple[CampaignSource | None, Salvaged | None, list[CatalogIssue]]:
    collector = Collector(path)
    doc = read_document(path, collector)
    if doc is None:
        return None, None, collector.issues
    read = model_from(Campaign, doc, collector)
    if read is None:
        return None, None, collector.issues
    source = CampaignSource(read.salvaged.model, path, doc)
    collector.salvaged = read.salvaged
    check_campaign(source, read.salvaged, registry, collector, today)
    return source, read.salvaged, collector.issues
