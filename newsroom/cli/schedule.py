"""``newsroom schedule``: the catalog's campaign runs, and (with Prefect) their scheduling.

Prints the plan — each campaign and date, its slots in Darmstadt time, when its run starts
(= when the approval opens) — and, with a reachable Prefect API, makes the scheduled runs
of the ``campaign`` deployment match it (``newsroom/orchestration/scheduling.py``; the
``catalog-sync``
flow does the same every 15 minutes).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from ..progress import step
from ..timeutil import format_local


def _load_catalog(catalog_dir: Path | None):
    from ..catalog.validation import load_catalog
    from ..settings import get_settings

    settings = get_settings()
    report = load_catalog(catalog_dir or settings.catalog_dir,
                          overlay=settings.overlay_for(catalog_dir))
    if not report.ok or report.catalog is None:
        for issue in report.issues:
            click.echo(issue.format(), err=True)
        click.echo("fix the catalog first (newsroom validate); nothing was scheduled", err=True)
        sys.exit(1)
    return report.catalog


def _echo_plan(plan) -> None:
    if not plan:
        click.echo("No campaign runs in the horizon.")
        return
    click.echo(f"{'campaign':32} {'date':10}  {'first slot (Darmstadt)':24}  {'run starts':24}")
    for run in plan:
        click.echo(f"{run.campaign_id:32} {run.occurrence_date.isoformat():10}  "
                   f"{format_local(run.first_publish_at):24}  {format_local(run.start_at):24}")
        for at, channels in run.slots[1:]:
            click.echo(f"{'':32} {'':10}  {format_local(at):24}  (also: {', '.join(channels)})")


@click.command("schedule")
@click.option("--horizon", "horizon_days", type=click.IntRange(min=0), default=None,
              help="Days ahead to schedule (default: NEWSROOM_SCHEDULE_HORIZON_DAYS or 60; "
                   "yearly campaigns always get their next date).")
@click.option("--dry-run", is_flag=True, help="Show the plan and the changes; change nothing.")
@click.option("--catalog", "catalog_dir", type=click.Path(path_type=Path, file_okay=False),
              default=None, help="Catalog folder (default: NEWSROOM_CATALOG_DIR or ./campaigns).")
def schedule_command(horizon_days: int | None, dry_run: bool, catalog_dir: Path | None) -> None:
    """Schedule the catalog's campaign runs in Prefect (one run per campaign and date)."""
    from ..planning import plan_runs, planning_defaults

    catalog = _load_catalog(catalog_dir)
    default_horizon, lead = planning_defaults()
    horizon = timedelta(days=horizon_days) if horizon_days is not None else default_horizon
    now = datetime.now(UTC)
    plan = plan_runs(catalog, now=now, horizon=horizon, lead=lead)
    click.echo(f"Plan: {len(plan)} run(s) within {horizon.days} days; each run starts "
               f"{lead} before its approval deadline (days on the wall clock).")
    _echo_plan(plan)

    from prefect.settings import PREFECT_API_URL

    from newsroom.orchestration.embedded import api_reachable

    api_url = PREFECT_API_URL.value()
    # An API that refuses our credential, or answers anyone, stops here with what to do.
    if not api_url or not api_reachable(api_url):
        where = f"at {api_url}" if api_url else "(PREFECT_API_URL is not set)"
        click.echo(f"\nNo Prefect API reachable {where}: nothing was scheduled. Start the "
                   "stack (newsroom up) or a Prefect server and set PREFECT_API_URL, e.g. "
                   "http://127.0.0.1:4200/api.", err=True)
        sys.exit(0 if dry_run else 1)

    import asyncio

    from newsroom.orchestration.scheduling import sync_schedules

    try:
        with step("comparing with Prefect" if dry_run else "scheduling", len(plan)) as progress:
            summary = asyncio.run(sync_schedules(
                catalog, now=now, horizon=horizon, lead=lead, dry_run=dry_run,
                on_change=lambda change: progress.advance(detail=change.name)))
    except Exception as exc:  # noqa: BLE001 - an API refusal is a message, not a traceback
        click.echo(f"newsroom: scheduling on {api_url} failed: {type(exc).__name__}: {exc}",
                   err=True)
        sys.exit(1)
    if summary.skipped:
        click.echo(f"\nnewsroom: {summary.skipped}", err=True)
        sys.exit(1)
    click.echo(f"\n{'Would change' if dry_run else 'Changes'} on {api_url}:")
    for change in summary.changes:
        starts = f" starts {format_local(change.starts)}" if change.starts else ""
        detail = f" ({change.detail})" if change.detail else ""
        click.echo(f"  {change.action:9} {change.name}{starts}{detail}")
    counts = summary.counts()
    click.echo(", ".join(f"{n} {action}" for action, n in counts.items())
               + (" (dry run: nothing changed)" if dry_run else ""))
