"""Flow: validate the campaign catalog and record it in Newsroom's store."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from tasks.catalog import load_valid_catalog, sync_catalog_to_store


@flow(name="catalog-sync", flow_run_name="catalog-sync")
def catalog_sync(catalog_dir: str | None = None, database_url: str | None = None) -> dict:
    catalog = load_valid_catalog(catalog_dir)
    result = sync_catalog_to_store(catalog, database_url)
    lines = ["| campaign | change |", "|---|---|"]
    for change in ("added", "changed", "removed", "unchanged"):
        lines += [f"| {cid} | {change} |" for cid in getattr(result, change)]
    create_markdown_artifact(
        key="catalog-sync", markdown="# Catalog sync\n\n" + "\n".join(lines), description="Catalog sync"
    )
    return {k: getattr(result, k) for k in ("added", "changed", "removed", "unchanged")}


if __name__ == "__main__":
    catalog_sync()
