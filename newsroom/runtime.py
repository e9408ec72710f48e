"""What a running Newsroom process works with: settings, store, catalog, notifier, signer.

Flows, the web app and the CLI share one :class:`Runtime` per process. The catalog is
loaded again when a file under the catalog folder changed (a campaign edited between two
runs is seen by the next one), everything else is built once. While the folder does not
validate (a typo, a file half written) the runtime keeps working with the last catalog
that did (:mod:`newsroom.catalog.keeper`, kept in the data dir across restarts) and tells
the communications office once which file is broken, and once when it is fixed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from newsroom import send_journal, store
from newsroom.catalog.catalog import Catalog
from newsroom.catalog.keeper import (
    BrokenCatalog,
    CatalogEvent,
    CatalogKeeper,
    broken_catalog_message,
    recovered_catalog_message,
)
from newsroom.notify import ALERT_TAG, AppriseNotifier, Notifier
from newsroom.redaction import install_log_redaction
from newsroom.settings import Settings, get_settings, reread_settings
from newsroom.signing import Signer

logger = logging.getLogger("newsroom.runtime")

SNAPSHOTS_DIR = "catalog-snapshots"
# An alert about a broken catalog that could not be sent is tried again after this long
# (not at every access: each try may wait for a mail server that is down).
ALERT_RETRY_SECONDS = 60.0


def catalog_keeper(settings: Settings) -> CatalogKeeper:
    """The keeper of ``settings``' catalog, its snapshots in the data dir."""
    return CatalogKeeper(settings.catalog_dir, settings.data_dir / SNAPSHOTS_DIR,
                         overlay=settings.catalog_overlay)


def office_notifier(settings: Settings, catalog: Catalog) -> AppriseNotifier:
    """The configured notifier: the apprise file, or e-mail to the catalog's directory."""
    if settings.apprise_config:
        return AppriseNotifier(settings.apprise_config)
    return AppriseNotifier.for_directory(catalog.directory,
                                         settings.smtp_url.get_secret_value())


class CatalogWatch:
    """The catalog from a :class:`CatalogKeeper`, and the office told about its health:
    once per broken state, also across the processes on this data dir (the web app, each
    flow run, the CLI), and once when it validates again."""

    def __init__(self, keeper: CatalogKeeper, notifier: Callable[[Catalog], Notifier]):
        self.keeper = keeper
        self._notifier = notifier
        self._lock = threading.RLock()  # one notice at a time; the notifier reads the catalog
        self._retry_at = 0.0

    def catalog(self) -> Catalog:
        catalog, event = self.keeper.catalog()
        if event is not None:
            with self._lock:
                self._tell_office(catalog, event)
        return catalog

    @property
    def broken(self) -> BrokenCatalog | None:
        return self.keeper.broken

    def _tell_office(self, catalog: Catalog, event: CatalogEvent) -> None:
        keeper, broken = self.keeper, event.broken
        if broken is not None:
            if time.monotonic() < self._retry_at:
                keeper.retry_alert()
                return
            if not keeper.claim_alert(broken):
                return  # told already, by this process or another
            subject, text = broken_catalog_message(broken)
        else:
            subject, text = recovered_catalog_message()
        try:
            sent = self._notifier(catalog).notify(ALERT_TAG, subject, text)
        except Exception:  # noqa: BLE001 - retried; the catalog is served either way
            logger.exception("the notice about the catalog could not be sent")
            sent = False
        if sent:
            logger.warning("told the office: %s", subject)
        elif broken is not None:
            keeper.release_alert(broken)
            keeper.retry_alert()
            self._retry_at = time.monotonic() + ALERT_RETRY_SECONDS


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    signer: Signer
    _watch: CatalogWatch | None = None
    _catalog: Catalog | None = None
    _notifier: AppriseNotifier | None = None
    # A notifier to use instead of the configured one (tests, embedding applications).
    notifier_override: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # Where this process notes the requests it sends (the first runtime's data folder).
        send_journal.use_directory(self.settings.data_dir / "send-journal")

    @property
    def catalog(self) -> Catalog:
        """The catalog: the folder's current state, or while that does not validate the
        last one that did (see :attr:`catalog_broken`). Raises CatalogError only when no
        valid catalog exists at all."""
        with self._lock:
            if self._watch is None:
                self._watch = CatalogWatch(catalog_keeper(self.settings),
                                           lambda catalog: self.notifier)
            watch = self._watch
        catalog = watch.catalog()
        with self._lock:
            if catalog is not self._catalog:
                self._catalog = catalog
                self._notifier = None  # the directory may have changed
        return catalog

    @property
    def catalog_broken(self) -> BrokenCatalog | None:
        """Why :attr:`catalog` is not the folder's current state (None: it is)."""
        self.catalog  # noqa: B018 - looks at the folder first
        return self._watch.broken if self._watch is not None else None

    @property
    def notifier(self) -> AppriseNotifier:
        if self.notifier_override is not None:
            return self.notifier_override
        catalog = self.catalog
        with self._lock:
            if self._notifier is None:
                self._notifier = office_notifier(self.settings, catalog)
            return self._notifier

    @property
    def base_url(self) -> str:
        return self.settings.web_base_url.rstrip("/")


_RUNTIMES: dict[tuple[str, str, str], Runtime] = {}
_RUNTIMES_LOCK = threading.Lock()


def get_runtime(settings: Settings | None = None) -> Runtime:
    """The process's runtime for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()
    url = settings.resolved_database_url()
    key = (str(settings.catalog_dir), str(settings.catalog_overlay), url)
    with _RUNTIMES_LOCK:
        runtime = _RUNTIMES.get(key)
        if runtime is None:
            install_log_redaction()  # once per runtime, not on every lookup
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
    reread_settings()
