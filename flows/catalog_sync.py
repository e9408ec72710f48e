"""Flow: validate the campaign catalog, record it in Newsroom's store, and schedule its
campaign runs in Prefect (one run per campaign and date; see
``newsroom/orchestration/scheduling.py``).

While the catalog folder does not validate, the run changes nothing and completes: it
lists the broken files in its artifact and log (the office is mailed once by the runtime).
Syncing the last valid catalog instead could drop what a newer one added (its
campaigns marked removed, their scheduled runs deleted); it all waits for the fix."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.utilities.asyncutils import run_coro_as_sync

from newsroom.catalog.keeper import BrokenCatalog
from newsroom.markdown import md_text
from newsroom.orchestration.scheduling import ScheduleSummary, summary_markdown, sync_schedules
from tasks.catalog import load_valid_catalog, sync_catalog_to_store


def broken_markdown(broken: BrokenCatalog) -> str:
    lines = ["## The catalog does not validate: nothing was synced", "",
             "Every run, gate and link goes on with the last catalog that validated; "
             "the changes wait until these errors are fixed (`newsroom validate`).", "",
             "| file | line | error | what to do |", "|---|---|---|---|"]
    lines += [f"| {md_text(i.file)} | {i.line} | {md_text(i.message)} | {md_text(i.hint)} |"
              for i in broken.errors]
    return "\n".join(lines)


@flow(name="catalog-sync", flow_run_name="catalog-sync")
def catalog_sync(catalog_dir: str | None = None, database_url: str | None = None,
                 schedule: bool = True) -> dict:
    kept = load_valid_catalog(catalog_dir)
    if kept.broken is not None:
        get_run_logger().warning("the catalog does not validate; nothing synced: %s",
                                 kept.broken.summary())
        create_markdown_artifact(key="catalog-sync", markdown="# Catalog sync\n\n"
                                 + broken_markdown(kept.broken), description="Catalog sync")
        return {"broken": [i.format() for i in kept.broken.errors], "added": [],
                "changed": [], "removed": [], "unchanged": []}
    catalog = kept.catalog
    result = sync_catalog_to_store(catalog, database_url)
    lines = ["| campaign | change |", "|---|---|"]
    for change in ("added", "changed", "removed", "unchanged"):
        lines += [f"| {md_text(cid)} | {change} |" for cid in getattr(result, change)]
    markdown = "# Catalog sync\n\n" + "\n".join(lines)
    outcome = {k: getattr(result, k) for k in ("added", "changed", "removed", "unchanged")}
    if schedule:
        # A broken catalog returned above: no run is removed because a file does not parse.
        # Annotated: mypy cannot solve Prefect's infer_variance TypeVar in run_coro_as_sync.
        summary: ScheduleSummary = run_coro_as_sync(sync_schedules(catalog))
        get_run_logger().info("scheduled runs: %s%s", summary.counts(),
                              f" ({summary.skipped})" if summary.skipped else "")
        markdown += "\n\n## Scheduled campaign runs\n\n" + summary_markdown(summary)
        outcome["schedules"] = summary.as_dict()
    create_markdown_artifact(key="catalog-sync", markdown=markdown, description="Catalog sync")
    return outcome


if __name__ == "__main__":
    catalog_sync()
