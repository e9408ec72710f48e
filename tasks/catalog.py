"""Prefect tasks around the campaign catalog: thin wrappers over the domain core."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from newsroom import store
from newsroom.catalog.catalog import Catalog
from newsroom.catalog.validation import load_catalog
from newsroom.errors import CatalogError
from newsroom.settings import get_settings
from newsroom.sync import SyncResult, sync_catalog


@task(name="load_catalog")
def load_valid_catalog(catalog_dir: str | None = None) -> Catalog:
    """Load and validate the catalog; a broken catalog fails the run with every issue listed."""
    report = load_catalog(Path(catalog_dir) if catalog_dir else get_settings().catalog_dir)
    if not report.ok or report.catalog is None:
        raise CatalogError(report.errors)
    return report.catalog


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
