"""Flow: validate the campaign catalog, record it in Newsroom's store, and schedule its
campaign runs in Prefect (one run per campaign and date; see ``flows/scheduling.py``)."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.utilities.asyncutils import run_coro_as_sync

from flows.scheduling import summary_markdown, sync_schedules
from tasks.catalog import load_valid_catalog, sync_catalog_to_store


@flow(name="catalog-sync", flow_run_name="catalog-sync")
def catalog_sync(catalog_dir: str | None = None, database_url: str | None = None,
                 schedule: bool = True) -> dict:
    catalog = load_valid_catalog(catalog_dir)
    result = sync_catalog_to_store(catalog, database_url)
    lines = ["| campaign | change |", "|---|---|"]
    for change in ("added", "changed", "removed", "unchanged"):
        lines += [f"| {cid} | {change} |" for cid in getattr(result, change)]
    markdown = "# Catalog sync\n\n" + "\n".join(lines)
    outcome = {k: getattr(result, k) for k in ("added", "changed", "removed", "unchanged")}
    if schedule:
        # A broken catalog failed above: no run is removed because a file does not parse.
        summary = run_coro_as_sync(sync_schedules(catalog))
        get_run_logger().info("scheduled runs: %s%s", summary.counts(),
                              f" ({summary.skipped})" if summary.skipped else "")
        markdown += "\n\n## Scheduled campaign runs\n\n" + summary_markdown(summary)
        outcome["schedules"] = summary.as_dict()
    create_markdown_artifact(key="catalog-sync", markdown=markdown, description="Catalog sync")
    return outcome


if __name__ == "__main__":
    catalog_sync()
