"""Frozen copies of the catalog: what was read is what is validated and what is used.

The catalog folder is edited while Newsroom runs: an editor saves, ``cp`` or an upload is
half done, ``git pull`` writes file after file. Reading it in place would validate one
version of a file and later render another. So a load first copies every file the
catalog consists of (registry, templates, images, campaign files) into a *stage*, reading
each file exactly once, and then validates the stage. A stage that validates becomes a
*snapshot*: renamed into place as a whole (a crash mid-copy leaves a stage, never half a
snapshot), named by the hash of its content, and never changed again. ``current`` names
the last snapshot that validated, so a process that starts while a file is broken still
has a catalog.

Layout under the store's folder (``<data dir>/catalog-snapshots/<catalog key>/``)::

    <content hash>/        one snapshot (its files and .manifest.json)
    current                the name of the last snapshot that validated
    .stage-<random>/       a copy being written or checked
    alerts/                which broken states the office has been told about

Files are copied, except that a file unchanged since the previous snapshot (same size
and modification time) is hard-linked from it: snapshots are never written after they
are in place, so sharing their files is safe, and images are not copied on every edit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

from newsroom.errors import NewsroomError

from .catalog import IMAGES_DIR, REGISTRY_DIR, TEMPLATES_DIR, campaign_files

__all__ = ["FilesChanging", "Signature", "SnapshotStore", "Stage", "catalog_files",
           "catalog_signature"]

MANIFEST = ".manifest.json"  # a dot file: campaign_files() does not take it for a campaign
CURRENT = "current"
STAGE_PREFIX = ".stage-"
ALERTS_DIR = "alerts"
# Snapshots kept besides the current one; an older one is removed once it is also older
# than PRUNE_AGE (another process may still render from it for a moment).
KEEP = 3
PRUNE_AGE = 3600.0


class FilesChanging(NewsroomError):
    """A file changed while it was read (being written): load again a little later."""


@dataclass(frozen=True)
class Signature:
    """Each catalog file's relative path, modification time (ns) and size."""

    entries: tuple[tuple[str, int, int], ...]

    @property
    def newest_ns(self) -> int:
        return max((mtime for _, mtime, _ in self.entries), default=0)

    def of(self, relative: str) -> tuple[int, int] | None:
        for name, mtime, size in self.entries:
            if name == relative:
                return mtime, size
        return None


def _ignored(relative: Path) -> bool:
    # Editor swap and backup files (.x.swp, x~) change while someone types; they are not
    # part of the catalog.
    return any(part.startswith(".") for part in relative.parts) or relative.name.endswith("~")


def catalog_files(root: Path) -> list[str]:
    """The relative paths of every file the catalog consists of, sorted."""
    root = root.resolve()
    found: set[str] = set()
    for folder in (REGISTRY_DIR, TEMPLATES_DIR, IMAGES_DIR):
        base = root / folder
        if base.is_dir():
            for path in base.rglob("*"):
                relative = path.relative_to(root)
                if path.is_file() and not _ignored(relative):
                    found.add(relative.as_posix())
    for path in campaign_files(root):
        found.add(path.resolve().relative_to(root).as_posix())
    return sorted(found)


def catalog_signature(root: Path) -> Signature:
    root = root.resolve()
    entries = []
    for relative in catalog_files(root):
        try:
            stat = (root / relative).stat()
        except FileNotFoundError:  # removed between listing and stat: changing
            entries.append((relative, -1, -1))
            continue
        entries.append((relative, stat.st_mtime_ns, stat.st_size))
    return Signature(tuple(entries))


@dataclass
class Stage:
    """A copy of the catalog being checked: ``path`` holds the files as they were read."""

    path: Path
    manifest: dict[str, list]  # relative path -> [mtime_ns, size, sha256]
    digest: str


class SnapshotStore:
    """The snapshots of the catalog at ``root``, kept under ``base``."""

    def __init__(self, base: Path, root: Path):
        root = root.resolve()
        key = hashlib.sha256(str(root).encode()).hexdigest()[:12]
        self.root = root
        self.dir = base / f"{root.name}-{key}"

    # --- writing -----------------------------------------------------------------------

    def stage(self, signature: Signature) -> Stage:
        """Copy the files of ``signature`` into a new stage, each read once.

        Raises :class:`FilesChanging` when a file is not what the signature says (it is
        being written, or was removed): the caller loads again later.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{STAGE_PREFIX}{secrets.token_hex(6)}"
        path.mkdir()
        previous = self.current()
        old = _read_manifest(previous) if previous else {}
        manifest: dict[str, list] = {}
        try:
            for relative, mtime, size in signature.entries:
                target = path / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                known = old.get(relative)
                if previous is not None and known and known[:2] == [mtime, size]:
                    try:
                        os.link(previous / relative, target)
                        manifest[relative] = known
                        continue
                    except OSError:
                        pass  # no hard links here: copy
                try:
                    data = (self.root / relative).read_bytes()
                except OSError as exc:
                    raise FilesChanging(f"{relative}: {exc.strerror}") from None
                if len(data) != size:
                    raise FilesChanging(f"{relative} is being written")
                target.write_bytes(data)
                manifest[relative] = [mtime, size, hashlib.sha256(data).hexdigest()]
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        digest = hashlib.sha256("".join(
            f"{name}\0{entry[2]}\n" for name, entry in sorted(manifest.items())).encode()
        ).hexdigest()[:24]
        (path / MANIFEST).write_text(json.dumps(manifest, sort_keys=True), encoding="utf-8")
        return Stage(path, manifest, digest)

    def publish(self, stage: Stage) -> Path:
        """Make a validated stage the current snapshot; its final path."""
        final = self.dir / stage.digest
        try:
            stage.path.rename(final)
        except OSError:
            # The same content is in place already (another process, or an edit undone).
            shutil.rmtree(stage.path, ignore_errors=True)
            if not (final / MANIFEST).is_file():
                raise
            with contextlib.suppress(OSError):
                os.utime(final)
        _write_atomically(self.dir / CURRENT, stage.digest)
        self.prune(keep={final})
        return final

    def discard(self, stage: Stage) -> None:
        shutil.rmtree(stage.path, ignore_errors=True)

    def prune(self, keep: AbstractSet[Path] = frozenset()) -> None:
        """Remove old snapshots and stages left by a crash (both older than PRUNE_AGE)."""
        now = time.time()
        current = self.current()
        snapshots = []
        for entry in self.dir.iterdir():
            if not entry.is_dir() or entry.name == ALERTS_DIR:
                continue
            try:
                age = now - entry.stat().st_mtime
            except OSError:
                continue
            if entry.name.startswith(STAGE_PREFIX):
                if age > PRUNE_AGE:
                    shutil.rmtree(entry, ignore_errors=True)
                continue
            snapshots.append((age, entry))
        snapshots.sort()
        for age, entry in snapshots[KEEP:]:
            if entry in keep or entry == current or age < PRUNE_AGE:
                continue
            shutil.rmtree(entry, ignore_errors=True)

    # --- reading -----------------------------------------------------------------------

    def current(self) -> Path | None:
        """The last snapshot that validated, if there is one."""
        try:
            name = (self.dir / CURRENT).read_text(encoding="utf-8").strip()
        except OSError:
            return None
        path = self.dir / name
        if not name or "/" in name or not (path / MANIFEST).is_file():
            return None
        return path

    # --- telling the office once ---------------------------------------------------------

    def claim_alert(self, fingerprint: str) -> bool:
        """True for exactly one caller (of every process on this data dir) per fingerprint."""
        folder = self.dir / ALERTS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(folder / fingerprint, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return False
        os.close(fd)
        return True

    def release_alert(self, fingerprint: str) -> None:
        """Forget a claim whose alert could not be sent (someone tries again later)."""
        with contextlib.suppress(FileNotFoundError):
            (self.dir / ALERTS_DIR / fingerprint).unlink()

    def clear_alerts(self) -> bool:
        """Forget every broken state (the catalog validates); True if this call removed one."""
        folder = self.dir / ALERTS_DIR
        removed = False
        if folder.is_dir():
            for entry in folder.iterdir():
                try:
                    entry.unlink()
                    removed = True
                except FileNotFoundError:
                    pass  # another process cleared it first
        return removed


def _read_manifest(snapshot: Path) -> dict[str, list]:
    try:
        data = json.loads((snapshot / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
