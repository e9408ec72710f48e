"""``newsroom audit``: who did what when, from the store's audit trail."""

from __future__ import annotations

import sys
from datetime import date

import click

from ..catalog.validation import load_catalog
from ..settings import get_settings
from ..timeutil import format_local


@click.command()
@click.argument("campaign")
@click.option("--occurrence", "occurrence_date", default=None, metavar="YYYY-MM-DD",
              help="Only this occurrence's events.")
@click.option("--json", "as_json", is_flag=True, help="Every event with its full detail, as JSON.")
def audit(campaign: str, occurrence_date: str | None, as_json: bool) -> None:
    """Print the audit trail of a campaign: who did what when, decisions, comments,
    signatories, addresses."""
    import json

    from .. import store
    from ..audit_view import audit_rows, event_json

    day = None
    if occurrence_date is not None:
        try:
            day = date.fromisoformat(occurrence_date)
        except ValueError:
            raise click.BadParameter("give the date as YYYY-MM-DD",
                                     param_hint="--occurrence") from None
    engine = store.make_engine(get_settings().resolved_database_url())
    try:
        with store.session_scope(engine) as session:
            events = [e for e in store.audit_trail(session, campaign_id=campaign)
                      if day is None or e.occurrence_date == day]
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps([event_json(e) for e in events], ensure_ascii=False, indent=2))
        return
    if not events:
        click.echo(f"no audit events for {campaign!r}"
                   + (f" on {day.isoformat()}" if day else "")
                   + " (is the id right? has the catalog been synced?)")
        return
    _print_audit_table(campaign, audit_rows(events, _people_names()))


def _people_names() -> dict[str, str]:
    """Person id -> name from the catalog's directory; empty when it does not load (the
    audit trail is shown with the ids it records)."""
    settings = get_settings()
    catalog = load_catalog(settings.catalog_dir, overlay=settings.catalog_overlay).catalog
    return {pid: person.name for pid, person in catalog.index.people.items()} if catalog else {}


def _print_audit_table(campaign: str, rows) -> None:
    """A table on a terminal; one line per event otherwise (grep, files)."""
    if not sys.stdout.isatty():
        for row in rows:
            parts = [format_local(row.at), row.actor, row.action]
            for name, value in (("occurrence", row.occurrence.isoformat() if row.occurrence
                                 else ""), ("channel", row.channel), ("decision", row.decision),
                                ("signatories", ", ".join(row.signatories)),
                                ("urls", " ".join(row.urls)), ("says", row.words)):
                if value:
                    parts.append(f"{name}={value}")
            click.echo("  ".join(parts))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Audit trail of {campaign}", title_justify="left")
    for name in ("time", "who", "what", "occurrence", "channel", "decision",
                 "comment / reason", "signatories", "addresses"):
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(format_local(row.at), row.actor, row.action,
                      row.occurrence.isoformat() if row.occurrence else "", row.channel or "",
                      row.decision, row.words, ", ".join(row.signatories),
                      "\n".join(row.urls))
    Console(highlight=False).print(table)
