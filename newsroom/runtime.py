"""What a running Newsroom process works with: settings, store, catalog, notifier, signer.

Flows, the web app and the CLI share one :class:`Runtime` per process. The catalog is
loaded again when a file under the catalog folder changed (a campaign edited between two
runs is seen by the next one), everything else is built once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from newsroom import store
from newsroom.catalog.catalog import Catalog
from newsroom.catalog.validation import load_catalog
from newsroom.errors import CatalogError
from newsroom.notify import AppriseNotifier
from newsroom.settings import Settings, get_settings
from newsroom.signing import Signer


def _catalog_signature(root: Path) -> tuple[tuple[str, int, int], ...]:
    entries = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            stat = path.stat()
            entries.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(entries)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    signer: Signer
    _catalog: Catalog | None = None
    _signature: tuple = ()
    _notifier: AppriseNotifier | None = None
    # A notifier to use instead of the configured one (tests, embedding applications).
    notifier_override: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def catalog(self) -> Catalog:
        """The validated catalog; reloaded when a file changed. Raises CatalogError."""
        root = self.settings.catalog_dir
        with self._lock:
            signature = _catalog_signature(root)
            if self._catalog is None or signature != self._signature:
                report = load_catalog(root)
                if not report.ok or report.catalog is None:
                    raise CatalogError(report.errors)
                self._catalog, self._signature = report.catalog, signature
                self._notifier = None  # the directory may have changed
            return self._catalog

    @property
    def notifier(self) -> AppriseNotifier:
        if self.notifier_override is not None:
            return self.notifier_override
        catalog = self.catalog
        with self._lock:
            if self._notifier is None:
                if self.settings.apprise_config:
                    self._notifier = AppriseNotifier(self.settings.apprise_config)
                else:
                    self._notifier = AppriseNotifier.for_directory(
                        catalog.directory, self.settings.smtp_url.get_secret_value())
            return self._notifier

    @property
    def base_url(self) -> str:
        return self.settings.web_base_url.rstrip("/")


_RUNTIMES: dict[tuple[str, str], Runtime] = {}
_RUNTIMES_LOCK = threading.Lock()


def get_runtime(settings: Settings | None = None) -> Runtime:
    """The process's runtime for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()
    url = settings.resolved_database_url()
    key = (str(settings.catalog_dir), url)
    with _RUNTIMES_LOCK:
        runtime = _RUNTIMES.get(key)
        if runtime is None:
            store.upgrade_database(url)
            runtime = Runtime(settings=settings, engine=store.make_engine(url),
                              signer=Signer.from_settings(settings))
            _RUNTIMES[key] = runtime
        return runtime


def reset_runtimes() -> None:
    """Forget every runtime (tests switching databases or settings)."""
    with _RUNTIMES_LOCK:
        for runtime in _RUNTIMES.values():
            runtime.engine.dispose()
        _RUNTIMES.clear()
    get_settings.cache_clear()
