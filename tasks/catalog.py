"""Prefect tasks around the campaign catalog: thin wrappers over the domain core."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import task

from newsroom import store
from newsroom.catalog.catalog import Catalog
from newsroom.catalog.keeper import BrokenCatalog
from newsroom.runtime import CatalogWatch, catalog_keeper, office_notifier
from newsroom.settings import get_settings
from newsroom.sync import SyncResult, sync_catalog


@dataclass
class KeptCatalog:
    """The catalog to work with, and why it is the last valid one (None: it is current)."""

    catalog: Catalog
    broken: BrokenCatalog | None


@task(name="load_catalog")
def load_valid_catalog(catalog_dir: str | None = None) -> KeptCatalog:
    """The catalog; while the folder does not validate, the last one that did (the office
    is told which file is broken). Fails, with every issue listed, only when there is no
    valid catalog at all."""
    settings = get_settings()
    if catalog_dir:
        settings = settings.model_copy(update={"catalog_dir": Path(catalog_dir)})
    watch = CatalogWatch(catalog_keeper(settings),
                         lambda catalog: office_notifier(settings, catalog))
    catalog = watch.catalog()
    return KeptCatalog(catalog, watch.broken)


@task(name="sync_catalog_to_store")
def sync_catalog_to_store(catalog: Catalog, database_url: str | None = None) -> SyncResult:
    url = database_url or get_settings().resolved_database_url()
    store.upgrade_database(url)
    engine = store.make_engine(url)
    try:
        with store.session_scope(engine) as session:
            return sync_catalog(session, catalog, actor="prefect:catalog-sync")
    finally:
        engine.dispose()
