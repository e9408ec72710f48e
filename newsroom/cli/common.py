"""What the command groups share: the catalog option, loading the catalog or
exiting with its report, dates from options."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click

from ..catalog.validation import ValidationReport, load_catalog
from ..settings import get_settings


def echo_report(report: ValidationReport, *, quiet_ok: bool = False) -> None:
    for issue in report.issues:
        click.echo(issue.format(), err=issue.is_error)
    errors, warnings = len(report.errors), len(report.warnings)
    if report.ok:
        if not quiet_ok:
            campaigns = len(report.catalog.campaigns) if report.catalog else 0
            click.echo(
                f"OK: {report.files_checked} files checked, {campaigns} campaigns valid"
                + (f", {warnings} warning(s)" if warnings else "")
            )
    else:
        click.echo(f"{errors} error(s), {warnings} warning(s) in {report.files_checked} files",
                   err=True)


def catalog_or_exit(catalog_dir: Path | None):
    settings = get_settings()
    report = load_catalog(catalog_dir or settings.catalog_dir,
                          overlay=settings.overlay_for(catalog_dir))
    if not report.ok or report.catalog is None:
        echo_report(report)
        click.echo("fix the catalog first (newsroom validate)", err=True)
        sys.exit(1)
    return report.catalog


def parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; write YYYY-MM-DD",
                                 param_hint=option) from None


catalog_option = click.option(
    "--catalog",
    "catalog_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Catalog folder (default: NEWSROOM_CATALOG_DIR or ./campaigns).",
)


def run_through_prefect(deployment: str, parameters: dict, *, api_url: str, wait_s: float,
                        what: str, direct_hint: str, unfinished_hint: str) -> int:
    """Create a run of ``deployment`` on the stack's Prefect server (its worker has the
    channels' credentials), wait up to ``wait_s`` for its end and print its message; the
    exit code (0: completed). ``what`` names the run ("retry", "recall")."""
    import asyncio
    import time

    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    async def trigger():  # noqa: ANN202 - Prefect's FlowRun
        return await run_deployment(deployment, timeout=0, as_subflow=False,
                                    parameters=parameters)

    async def state_of(run_id):  # noqa: ANN001, ANN202
        async with get_client() as client:
            return (await client.read_flow_run(run_id)).state

    try:
        run = asyncio.run(trigger())
    except Exception as exc:  # noqa: BLE001 - say what to do instead
        click.echo(f"newsroom: the {what} run could not be created on {api_url} ({exc}); "
                   "is the stack's deployment there (newsroom up / prefect deploy --all)? "
                   + direct_hint, err=True)
        return 1
    click.echo(f"{what} run {run.name} ({run.id}) created on {api_url}")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        state = asyncio.run(state_of(run.id))
        if state is not None and state.is_final():
            click.echo(state.message or state.name, err=not state.is_completed())
            return 0 if state.is_completed() else 1
        time.sleep(0.5)
    click.echo(f"the run has not ended within {wait_s:g} s (is a worker running?); "
               + unfinished_hint, err=True)
    return 1

