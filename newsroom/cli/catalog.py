"""``newsroom validate``, ``preview`` and ``calendar``: the catalog as files, posts and dates."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import click

from ..catalog.catalog import campaign_files
from ..catalog.validation import load_catalog_for
from ..errors import RenderError, relative_path
from ..progress import step
from ..settings import get_settings
from ..timeutil import BERLIN
from .common import catalog_option, catalog_or_exit, echo_report, parse_day


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def validate(paths: tuple[Path, ...], strict: bool) -> None:
    """Check campaign files (default: the whole catalog)."""
    targets = list(paths) or [get_settings().catalog_dir]
    total = sum(len(campaign_files(t)) if t.is_dir() else 1 for t in targets if t.exists())
    with step("checking campaign files", total) as progress:
        report = load_catalog_for(targets, fallback_root=get_settings().catalog_dir,
                                  on_file=lambda path: progress.advance(detail=path.name))
    echo_report(report)
    if not report.ok or (strict and report.warnings):
        sys.exit(1)


@click.command()
@click.argument("campaign")
@click.option("--channel", default=None, help="Only this channel (account name).")
@click.option("--on", "on", default=None,
              help="Occurrence date YYYY-MM-DD (default: the next one).")
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where to write the HTML preview (default: var/previews/CAMPAIGN-DATE.html).",
)
@catalog_option
def preview(campaign: str, channel: str | None, on: str | None, html_path: Path | None,
            catalog_dir: Path | None) -> None:
    """Show each channel's exact post and its length against the limit."""
    from ..preview import build_preview, format_preview_text, write_preview_html

    catalog = catalog_or_exit(catalog_dir)
    day = parse_day(on, "--on")
    try:
        result = build_preview(catalog, campaign, day=day, channel=channel)
    except (LookupError, RenderError) as exc:
        raise click.ClickException(str(exc.args[0] if exc.args else exc)) from None
    click.echo(format_preview_text(result))
    target = html_path or (get_settings().data_dir / "previews"
                           / f"{campaign}-{result.day.isoformat()}.html")
    target.parent.mkdir(parents=True, exist_ok=True)
    written = write_preview_html(result, target)
    click.echo(f"HTML preview: {relative_path(written)}")
    if not all(p.ok for p in result.posts):
        sys.exit(1)


@click.command()
@click.option("--from", "start", default=None, help="First day YYYY-MM-DD (default: today).")
@click.option("--to", "end", default=None, help="Last day YYYY-MM-DD (default: 90 days later).")
@click.option("--ics", "ics_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write iCalendar to this file.")
@catalog_option
def calendar(start: str | None, end: str | None, ics_path: Path | None,
             catalog_dir: Path | None) -> None:
    """Upcoming slots across campaigns, with holidays, clashes and approval deadlines."""
    from ..calendar import calendar_entries, deadline_entries, format_calendar, write_ics

    catalog = catalog_or_exit(catalog_dir)
    first = parse_day(start, "--from") or datetime.now(BERLIN).date()
    last = parse_day(end, "--to") or first + timedelta(days=90)
    if last < first:
        raise click.BadParameter("--to is before --from", param_hint="--to")
    entries = calendar_entries(catalog, first, last)
    deadlines = deadline_entries(catalog, first, last)
    click.echo(format_calendar(entries, deadlines))
    if ics_path:
        ics_path.parent.mkdir(parents=True, exist_ok=True)
        write_ics(entries, ics_path, deadlines)
        click.echo(f"iCalendar written: {relative_path(ics_path)} "
                   f"({len(entries) + len(deadlines)} events)")
