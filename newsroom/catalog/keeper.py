"""The catalog a running process works with: the last one that validated.

:class:`CatalogKeeper` loads the catalog folder again when a file changed. When the new
state does not validate (a typo, a file half written), it keeps the catalog it had — in
memory, or after a restart the last snapshot that validated (:mod:`.snapshot`) — and
says which file is broken (:attr:`CatalogKeeper.broken`). A load never mixes versions:
the files are copied once into a stage, the stage is validated and is what the catalog
then reads from; a file whose size or modification time changed while it was read, or
that was written less than ``settle_seconds`` ago, makes the keeper wait briefly and load
again. Only with neither a valid catalog in memory nor a snapshot does it raise
:class:`CatalogError`, as a plain load would.

Telling people is the caller's part (:class:`newsroom.runtime.Runtime` mails the office):
:meth:`CatalogKeeper.catalog` returns a :class:`CatalogEvent` once per broken state of
this process; :meth:`CatalogKeeper.claim_alert` makes it once across the processes
sharing the data dir. :func:`broken_catalog_message` writes the German notice.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..errors import CatalogError, CatalogIssue, relative_path
from ..timeutil import BERLIN, german_clock
from .catalog import Catalog
from .snapshot import FilesChanging, Signature, SnapshotStore, Stage, catalog_signature
from .validation import load_catalog

__all__ = ["BrokenCatalog", "CatalogEvent", "CatalogKeeper", "broken_catalog_message",
           "recovered_catalog_message"]

logger = logging.getLogger("newsroom.catalog")

# A file written this recently may still be being written (an upload, a slow copy).
SETTLE_SECONDS = 0.25
# How long one access waits for files to settle before using the catalog it has.
MAX_WAIT_SECONDS = 1.0
# Modification times further in the future than this come from another clock (a network
# share): they say nothing about whether the file is still being written.
CLOCK_SKEW_NS = 2_000_000_000
MAX_LISTED = 10
# Marks the overlay's files in a signature (no catalog file's relative path starts so).
OVERLAY_PREFIX = "\0overlay/"


@dataclass(frozen=True)
class BrokenCatalog:
    """The catalog folder does not validate: its errors (with the files people edit)."""

    errors: tuple[CatalogIssue, ...]
    # Since when the catalog in use has been the last valid one (UTC).
    since: datetime = field(compare=False)
    # When the catalog in use validated (None: unknown, e.g. a snapshot from before).
    valid_since: datetime | None = field(default=None, compare=False)

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(sorted({issue.file for issue in self.errors}))

    @property
    def fingerprint(self) -> str:
        """Names the broken state by its broken files: editing within them is one state."""
        return hashlib.sha256("\n".join(self.files).encode()).hexdigest()[:24]

    def summary(self) -> str:
        return "; ".join(issue.format().replace("\n    ", " (") + (
            ")" if issue.hint else "") for issue in self.errors[:MAX_LISTED])


@dataclass(frozen=True)
class CatalogEvent:
    """What changed about the catalog's health at this access: tell someone."""

    kind: str  # "broken" (a new broken state) or "recovered" (it validates again)
    broken: BrokenCatalog | None = None


@dataclass
class _Loaded:
    catalog: Catalog
    signature: Signature
    validated_at: datetime | None


class CatalogKeeper:
    """The catalog of the folder ``root``, snapshots under ``snapshot_base``; with
    ``overlay``, that overlay applied (:mod:`.overlay`; its files are watched too, and
    read in place: they are written in one step by the stack that owns them)."""

    def __init__(self, root: Path, snapshot_base: Path, *,
                 overlay: Path | None = None,
                 settle_seconds: float = SETTLE_SECONDS,
                 max_wait_seconds: float = MAX_WAIT_SECONDS,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep):
        self.root = root.resolve()
        self.overlay = overlay.resolve() if overlay is not None else None
        self.snapshots = SnapshotStore(snapshot_base, self.root)
        self.settle_ns = int(settle_seconds * 1e9)
        self.max_wait = max_wait_seconds
        self._clock = clock
        self._sleep = sleep
        self._loaded: _Loaded | None = None
        self._seen: Signature | None = None  # the folder's state last looked at
        self._broken: BrokenCatalog | None = None
        self._announced: str | None = None  # fingerprint this process reported
        self._validated_again = False  # a load validated: see whether the office was told
        self._lock = threading.Lock()

    @property
    def broken(self) -> BrokenCatalog | None:
        """Why the catalog in use is not the folder's current state (None: it is)."""
        return self._broken

    def catalog(self) -> tuple[Catalog, CatalogEvent | None]:
        """The catalog to use now, and what to tell people (None: nothing new).

        Raises :class:`CatalogError` when nothing valid exists: the folder does not
        validate and neither memory nor the data dir holds a catalog that did.
        """
        with self._lock:
            self._refresh()
            if self._loaded is None:
                raise CatalogError(list(self._broken.errors) if self._broken else [])
            return self._loaded.catalog, self._event()

    def retry_alert(self) -> None:
        """The broken state's alert was not sent: report it again at the next access."""
        with self._lock:
            self._announced = None

    def claim_alert(self, broken: BrokenCatalog) -> bool:
        return self.snapshots.claim_alert(broken.fingerprint)

    def release_alert(self, broken: BrokenCatalog) -> None:
        self.snapshots.release_alert(broken.fingerprint)

    # --- loading -----------------------------------------------------------------------

    def _refresh(self) -> None:
        deadline = time.monotonic() + self.max_wait
        while True:
            signature = self._signature()
            if self._seen == signature and (self._loaded is not None or self._broken):
                return
            waited_out = time.monotonic() >= deadline
            try:
                if self._settling(signature):
                    raise FilesChanging("a file was written a moment ago")
                self._load(signature)
                return
            except FilesChanging as exc:
                if not waited_out:
                    logger.debug("catalog files are being written (%s); loading again", exc)
                    self._sleep(min(self.settle_ns / 1e9, 0.05) or 0.01)
                    continue
                if self._loaded is None:
                    self._use_snapshot(None)
                if self._loaded is None:
                    raise CatalogError([CatalogIssue(
                        relative_path(self.root), 0,
                        f"the catalog files keep changing ({exc})",
                        "wait until the copy or upload is done, then try again")]) from None
                logger.warning("catalog files keep changing (%s); using the catalog loaded "
                               "before and loading again at the next access", exc)
                return

    def _signature(self) -> Signature:
        """The catalog folder's files, then the overlay's (prefixed: not to be staged)."""
        signature = catalog_signature(self.root)
        if self.overlay is None or not self.overlay.is_dir():
            return signature
        overlay = catalog_signature(self.overlay)
        return Signature(signature.entries + tuple(
            (OVERLAY_PREFIX + name, mtime, size) for name, mtime, size in overlay.entries))

    def _settling(self, signature: Signature) -> bool:
        newest = signature.newest_ns
        now = int(self._clock() * 1e9)
        return now - self.settle_ns < newest <= now + CLOCK_SKEW_NS or any(
            mtime < 0 for _, mtime, _ in signature.entries)

    def _load(self, signature: Signature) -> None:
        stage = self.snapshots.stage(_catalog_part(signature))
        try:
            report = load_catalog(stage.path, overlay=self.overlay)
            if self._signature() != signature:
                raise FilesChanging("a file changed while the catalog was checked")
        except BaseException:
            self.snapshots.discard(stage)
            raise
        self._seen = signature
        if report.ok and report.catalog is not None:
            final = self.snapshots.publish(stage)
            self._loaded = _Loaded(_rebased(report.catalog, self.root, stage.path, final),
                                   signature, datetime.now(UTC))
            if self._broken is not None:
                logger.warning("the catalog validates again; using it (%d campaigns)",
                               len(self._loaded.catalog.campaigns))
            self._broken = None
            self._validated_again = True
            return
        self.snapshots.discard(stage)
        errors = tuple(_in_folder(issue, stage, self.root) for issue in report.errors) or (
            CatalogIssue(relative_path(self.root), 0, "the catalog does not validate"),)
        if self._loaded is None:
            self._broken = BrokenCatalog(errors, since=datetime.now(UTC))
            self._use_snapshot(self._broken)
            return
        previous = self._broken
        self._broken = BrokenCatalog(
            errors, since=previous.since if previous else datetime.now(UTC),
            valid_since=self._loaded.validated_at)
        if previous is None or previous.fingerprint != self._broken.fingerprint:
            logger.warning("the catalog does not validate; still using the last catalog "
                           "that did. %s", self._broken.summary())

    def _use_snapshot(self, broken: BrokenCatalog | None) -> None:
        """After a start: the last snapshot that validated, if there is one."""
        snapshot = self.snapshots.current()
        if snapshot is None:
            if broken is not None:
                logger.error("the catalog does not validate and no earlier valid catalog "
                             "is kept in %s. %s", self.snapshots.dir, broken.summary())
            return
        valid_since = datetime.fromtimestamp(snapshot.stat().st_mtime, UTC)
        # Checked as of the day it validated: checks relative to today (a date now past)
        # must not drop a campaign from it.
        report = load_catalog(snapshot, today=valid_since.astimezone(BERLIN).date(),
                              overlay=self.overlay)
        if not report.ok or report.catalog is None:
            logger.error("the kept catalog %s does not validate (was it changed by hand?): "
                         "%s", snapshot, "; ".join(i.format() for i in report.errors[:MAX_LISTED]))
            return
        catalog = _rebased(report.catalog, self.root, snapshot, snapshot)
        self._loaded = _Loaded(catalog, Signature(()), valid_since)
        if broken is not None:
            self._broken = BrokenCatalog(broken.errors, since=broken.since,
                                         valid_since=valid_since)
            logger.warning("the catalog does not validate; using the last catalog that "
                           "did (kept in %s). %s", snapshot, broken.summary())

    def _event(self) -> CatalogEvent | None:
        if self._broken is not None:
            if self._announced != self._broken.fingerprint:
                self._announced = self._broken.fingerprint
                return CatalogEvent("broken", self._broken)
            return None
        self._announced = None
        if not self._validated_again:
            return None
        self._validated_again = False
        # Any process may clear: the one that removes the office's claim says so.
        if self.snapshots.clear_alerts():
            return CatalogEvent("recovered")
        return None


def _catalog_part(signature: Signature) -> Signature:
    return Signature(tuple(e for e in signature.entries if not e[0].startswith(OVERLAY_PREFIX)))


def _rebased(catalog: Catalog, root: Path, read_from: Path, content: Path) -> Catalog:
    """``catalog`` as read from ``read_from``, with the paths people know (``root``) and
    its templates and images read from the snapshot ``content`` (an overlay's campaigns
    keep their own paths)."""
    catalog.root = root
    catalog.content_root = content
    for source in catalog.campaigns.values():
        if source.path.resolve().is_relative_to(read_from.resolve()):
            source.path = root / source.path.resolve().relative_to(read_from.resolve())
    return catalog


def _in_folder(issue: CatalogIssue, stage: Stage, root: Path) -> CatalogIssue:
    """The issue with the file named as in the catalog folder, not in the stage."""
    path = Path(issue.file)
    if not path.is_absolute():
        path = Path.cwd() / path
    try:
        relative = path.resolve().relative_to(stage.path.resolve())
    except ValueError:
        return issue
    return CatalogIssue(relative_path(root / relative), issue.line, issue.message,
                        issue.hint, issue.field, issue.severity)


# --- what the office is told -------------------------------------------------------------


def _local(moment: datetime) -> str:
    return f"{moment.astimezone(BERLIN):%d.%m.%Y} um {german_clock(moment)}"


def broken_catalog_message(broken: BrokenCatalog) -> tuple[str, str]:
    """Subject and text of the notice to the communications office (German)."""
    files = [Path(name).name for name in broken.files]
    subject = "Kampagnenkatalog fehlerhaft: " + ", ".join(files[:3]) + (
        f" und {len(files) - 3} weitere" if len(files) > 3 else "")
    lines = ["Eine Datei im Kampagnenkatalog ist fehlerhaft (oder wurde nur zum Teil "
             "geschrieben):" if len(files) == 1 else
             "Dateien im Kampagnenkatalog sind fehlerhaft (oder wurden nur zum Teil "
             "geschrieben):", ""]
    for issue in broken.errors[:MAX_LISTED]:
        where = f"{issue.file}, Zeile {issue.line}" if issue.line else issue.file
        lines.append(f"- {where}: {issue.message}")
        if issue.hint:
            lines.append(f"  Hinweis: {issue.hint}")
    if len(broken.errors) > MAX_LISTED:
        lines.append(f"- … und {len(broken.errors) - MAX_LISTED} weitere Fehler")
    valid = (f" (geprüft am {_local(broken.valid_since)})" if broken.valid_since else "")
    lines += [
        "",
        f"Newsroom arbeitet weiter mit dem letzten fehlerfreien Stand des Katalogs{valid}. "
        "Freigabe-Links, Erinnerungen, Fristen und geplante Veröffentlichungen laufen "
        "weiter; Entscheidungen gehen nicht verloren. Änderungen an Kampagnendateien "
        "werden aber erst übernommen, wenn der ganze Katalog wieder fehlerfrei ist.",
        "",
        "Was zu tun ist: Bitte korrigieren Sie die genannte Stelle (oder stellen Sie die "
        "Datei wieder her) und prüfen Sie den Katalog mit `newsroom validate`. Sobald er "
        "fehlerfrei ist, wird er sofort verwendet; Sie erhalten dann eine kurze "
        "Bestätigung.",
    ]
    return subject, "\n".join(lines)


def recovered_catalog_message() -> tuple[str, str]:
    return ("Kampagnenkatalog wieder fehlerfrei",
            "Der Kampagnenkatalog ist wieder fehlerfrei und wird ab sofort verwendet, "
            "einschließlich der Änderungen seit der letzten Meldung.")
