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
