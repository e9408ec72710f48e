"""The ``newsroom`` command line: validate, preview and plan campaigns.

Every command prints what is wrong and what to do; a traceback never reaches the user.
Exit codes: 0 fine, 1 the input has problems, 2 the command was used wrongly or an
unexpected internal error happened.
"""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import click

from .catalog.catalog import campaign_files
from .catalog.validation import ValidationReport, load_catalog, load_catalog_for
from .errors import NewsroomError, RenderError, relative_path
from .progress import step
from .settings import get_settings
from .timeutil import BERLIN, Duration, format_local


def _echo_report(report: ValidationReport, *, quiet_ok: bool = False) -> None:
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
        click.echo(f"{errors} error(s), {warnings} warning(s) in {report.files_checked} files", err=True)


def _catalog_or_exit(catalog_dir: Path | None):
    settings = get_settings()
    report = load_catalog(catalog_dir or settings.catalog_dir,
                          overlay=settings.overlay_for(catalog_dir))
    if not report.ok or report.catalog is None:
        _echo_report(report)
        click.echo("fix the catalog first (newsroom validate)", err=True)
        sys.exit(1)
    return report.catalog


def _parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; write YYYY-MM-DD", param_hint=option) from None


catalog_option = click.option(
    "--catalog",
    "catalog_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Catalog folder (default: NEWSROOM_CATALOG_DIR or ./campaigns).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="newsroom")
def cli() -> None:
    """Newsroom: topic-focused campaigns across many channels, carried by Prefect."""


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def validate(paths: tuple[Path, ...], strict: bool) -> None:
    """Check campaign files (default: the whole catalog)."""
    targets = list(paths) or [get_settings().catalog_dir]
    total = sum(len(campaign_files(t)) if t.is_dir() else 1 for t in targets if t.exists())
    with step("checking campaign files", total) as progress:
        report = load_catalog_for(targets, fallback_root=get_settings().catalog_dir,
                                  on_file=lambda path: progress.advance(detail=path.name))
    _echo_report(report)
    if not report.ok or (strict and report.warnings):
        sys.exit(1)


@cli.command()
@click.argument("campaign")
@click.option("--channel", default=None, help="Only this channel (account name).")
@click.option("--on", "on", default=None, help="Occurrence date YYYY-MM-DD (default: the next one).")
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where to write the HTML preview (default: var/previews/CAMPAIGN-DATE.html).",
)
@catalog_option
def preview(campaign: str, channel: str | None, on: str | None, html_path: Path | None, catalog_dir: Path | None) -> None:
    """Show each channel's exact post and its length against the limit."""
    from .preview import build_preview, format_preview_text, write_preview_html

    catalog = _catalog_or_exit(catalog_dir)
    day = _parse_day(on, "--on")
    try:
        result = build_preview(catalog, campaign, day=day, channel=channel)
    except (LookupError, RenderError) as exc:
        raise click.ClickException(str(exc.args[0] if exc.args else exc)) from None
    click.echo(format_preview_text(result))
    target = html_path or get_settings().data_dir / "previews" / f"{campaign}-{result.day.isoformat()}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    written = write_preview_html(result, target)
    click.echo(f"HTML preview: {relative_path(written)}")
    if not all(p.ok for p in result.posts):
        sys.exit(1)


@cli.command()
@click.option("--from", "start", default=None, help="First day YYYY-MM-DD (default: today).")
@click.option("--to", "end", default=None, help="Last day YYYY-MM-DD (default: 90 days later).")
@click.option("--ics", "ics_path", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Also write iCalendar to this file.")
@catalog_option
def calendar(start: str | None, end: str | None, ics_path: Path | None, catalog_dir: Path | None) -> None:
    """Upcoming slots across campaigns, with holidays, clashes and approval deadlines."""
    from .calendar import calendar_entries, deadline_entries, format_calendar, write_ics

    catalog = _catalog_or_exit(catalog_dir)
    first = _parse_day(start, "--from") or datetime.now(BERLIN).date()
    last = _parse_day(end, "--to") or first + timedelta(days=90)
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


@cli.group()
def db() -> None:
    """Newsroom's own database."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest revision (alembic upgrade head)."""
    from .store import upgrade_database

    url = get_settings().resolved_database_url()
    upgrade_database(url)
    click.echo("database schema is up to date")


@cli.command()
@click.argument("campaign")
@click.option("--occurrence", "occurrence_date", default=None, metavar="YYYY-MM-DD",
              help="Only this occurrence's events.")
@click.option("--json", "as_json", is_flag=True, help="Every event with its full detail, as JSON.")
def audit(campaign: str, occurrence_date: str | None, as_json: bool) -> None:
    """Print the audit trail of a campaign: who did what when, decisions, comments,
    signatories, addresses."""
    import json

    from . import store
    from .audit_view import audit_rows, event_json

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


def _duration_option(value: str | None, option: str) -> Duration | None:
    if value is None:
        return None
    from .timeutil import parse_duration

    try:
        duration = parse_duration(value)
    except (NewsroomError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
    if duration.shortest.total_seconds() < 20:
        raise click.BadParameter("at least 20s: the approver needs time", param_hint=option)
    return duration


def _url_port(url: str, default: int) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default


def _configure_embedded(*, web_port: int | None, smtp_port: int | None) -> None:
    """Environment for the embedded stack, before settings and Prefect are read."""
    import os

    from .standins.config import STANDIN_CREDENTIAL_ENV

    if web_port is not None:
        os.environ["NEWSROOM_WEB_BASE_URL"] = f"http://127.0.0.1:{web_port}"
    # The mail catcher's address, for Newsroom's mail and the press e-mail channel alike
    # (registry/channels.yaml: `presse` reads NEWSROOM_SMTP_URL), unless mail goes elsewhere.
    catcher = f"smtp://127.0.0.1:{smtp_port or 8025}?from=newsroom@darmstadt.example.org"
    if smtp_port is not None:
        os.environ["NEWSROOM_SMTP_URL"] = catcher
    else:
        os.environ.setdefault("NEWSROOM_SMTP_URL", catcher)
    for name, value in STANDIN_CREDENTIAL_ENV.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    get_settings.cache_clear()


def _require_secret_key(*, demo: bool, command: str) -> None:
    """Refuse to start without a configured signing key; the demo generates its own (kept
    in the data dir, so its links survive a restart)."""
    from .signing import SigningKeyRefused, demo_key_path, ensure_demo_key, resolve_secret_key

    settings = get_settings()
    if demo and settings.secret_key is None and settings.secret_key_file is None:
        existed = demo_key_path(settings).exists()
        path = ensure_demo_key(settings)
        click.echo(f"secret key: the demo's own, {'kept' if existed else 'generated'} in "
                   f"{relative_path(path)}")
    try:
        resolve_secret_key(settings, allow_demo=demo)
    except SigningKeyRefused as exc:
        click.echo(f"newsroom: {command} signs the links people get by mail and will not "
                   f"start without a secret key: {exc}", err=True)
        sys.exit(1)


def _require_protected_prefect(command: str) -> None:
    """A configured Prefect API (environment or Prefect profile) must refuse strangers
    (or be allowed to be open)."""
    from flows.embedded import reachable_prefect_api

    from .prefect_access import PrefectAccessRefused

    try:
        reachable_prefect_api(timeout=3.0)
    except PrefectAccessRefused as exc:
        click.echo(f"newsroom: {command} will not start: {exc}", err=True)
        sys.exit(1)


@cli.command()
@click.option("--port", "--standins-port", "port", default=8900, show_default=True,
              envvar="NEWSROOM_STANDINS_PORT", help="Port of the stand-in channels.")
@click.option("--prefect-port", default=4200, show_default=True, envvar="NEWSROOM_PREFECT_PORT",
              help="Port of the embedded Prefect server (not used when PREFECT_API_URL is set).")
@click.option("--web-port", type=int, default=None, envvar="NEWSROOM_WEB_PORT",
              help="Port of the approval page (default: from NEWSROOM_WEB_BASE_URL, 8100).")
@click.option("--smtp-port", type=int, default=None, envvar="NEWSROOM_SMTP_PORT",
              help="Port of the mail catcher (default: from NEWSROOM_SMTP_URL, 8025).")
@click.option("--demo-in", default="12m", show_default=True,
              help="Schedule a demo campaign this far ahead (e.g. 3m for a quick look); "
                   "the default leaves the approver over 10 minutes before the deadline.")
@click.option("--no-demo", is_flag=True, help="Do not schedule the demo campaign.")
@click.option("--poll", "poll_seconds", default=0.5, show_default=True, type=float,
              help="Seconds between the worker's polls of its work pool.")
@click.option("--no-serve", is_flag=True, help="Prepare and exit instead of serving.")
@catalog_option
def up(port: int, prefect_port: int, web_port: int | None, smtp_port: int | None,
       demo_in: str, no_demo: bool, poll_seconds: float, no_serve: bool,
       catalog_dir: Path | None) -> None:
    """The main job: the whole stack on this machine, stopped with Ctrl-C.

    Prepares the store, checks and syncs the catalog, writes previews and the calendar,
    then starts a Prefect server (SQLite, unless PREFECT_API_URL names one), the
    deployments, the Newsroom worker, the approval page, a mail catcher and the stand-in
    channels, and schedules a demo campaign a few minutes ahead.
    """
    import os

    from . import store
    from .calendar import calendar_entries, deadline_entries, format_calendar, write_ics
    from .preview import build_preview, write_preview_html
    from .sync import sync_catalog

    demo_after = None if no_demo or no_serve else _duration_option(demo_in, "--demo-in")
    if not no_serve:
        from .running_stack import refuse_second_stack

        refuse_second_stack(get_settings().data_dir)
        _configure_embedded(web_port=web_port, smtp_port=smtp_port)
        _require_secret_key(demo=demo_after is not None, command="newsroom up")
        from .catalog.overlay import (
            STACK_OVERLAY_DIR,
            prepare_overlay,
            standin_connections,
            write_registry_overlay,
        )

        settings = get_settings()
        catalog_dir = (catalog_dir or settings.catalog_dir).resolve()
        # The stack runs on the catalog people edit; what is this stack's own (its accounts
        # at this run's stand-ins, the demo campaign) goes into an overlay in the data dir.
        registry = _catalog_or_exit(catalog_dir)
        overlay = prepare_overlay(settings.data_dir.resolve() / STACK_OVERLAY_DIR)
        standins_url = f"http://127.0.0.1:{port}"
        write_registry_overlay(overlay, standin_connections(registry.accounts.values(),
                                                            standins_url))
        os.environ["NEWSROOM_CATALOG_DIR"] = str(catalog_dir)
        os.environ["NEWSROOM_CATALOG_OVERLAY"] = str(overlay)
        # The report links each live post to the stand-ins' own page of it.
        os.environ["NEWSROOM_STANDINS_URL"] = standins_url
        get_settings.cache_clear()
        click.echo(f"catalog: {relative_path(catalog_dir)} (accounts at the stand-ins "
                   f"{standins_url}: {relative_path(overlay)})")

    settings = get_settings()
    url = settings.resolved_database_url()
    store.upgrade_database(url)
    from sqlalchemy.engine import make_url

    click.echo(f"database: {make_url(url).render_as_string(hide_password=True)}")
    catalog = _catalog_or_exit(catalog_dir)
    engine = store.make_engine(url)
    with store.session_scope(engine) as session:
        result = sync_catalog(session, catalog)
    engine.dispose()
    click.echo(
        f"catalog: {len(catalog.campaigns)} campaigns "
        f"({len(result.added)} added, {len(result.changed)} changed, {len(result.removed)} removed)"
    )
    previews = settings.data_dir / "previews"
    previews.mkdir(parents=True, exist_ok=True)
    for campaign_id in sorted(catalog.campaigns):
        try:
            preview_result = build_preview(catalog, campaign_id)
        except (LookupError, RenderError) as exc:
            click.echo(f"  preview {campaign_id}: skipped ({exc})")
            continue
        path = write_preview_html(preview_result, previews / f"{campaign_id}-{preview_result.day.isoformat()}.html")
        click.echo(f"  preview {campaign_id}: {path.resolve().as_uri()}")
    today = datetime.now(BERLIN).date()
    entries = calendar_entries(catalog, today, today + timedelta(days=400))
    deadlines = deadline_entries(catalog, today, today + timedelta(days=400))
    ics = settings.data_dir / "newsroom.ics"
    write_ics(entries, ics, deadlines)
    shown = entries[:15]
    click.echo(format_calendar(shown, [d for d in deadlines if shown and d.at <= shown[-1].at]))
    click.echo(f"calendar (next 400 days, iCalendar): {ics.resolve().as_uri()}")
    if no_serve:
        return

    from flows.embedded import StackError, StackOptions, run_stack

    web_host, resolved_web_port = _url_port(settings.web_base_url, 8100)
    smtp_host, resolved_smtp_port = _url_port(settings.smtp_url.get_secret_value(), 8025)
    local_mail = smtp_host in ("127.0.0.1", "localhost")
    options = StackOptions(
        work_pool=settings.work_pool, data_dir=settings.data_dir.resolve(),
        prefect_port=prefect_port, web_port=resolved_web_port,
        smtp_host="127.0.0.1", smtp_port=resolved_smtp_port if local_mail else None,
        standins_port=port, demo_in=demo_after,
        overlay_dir=get_settings().catalog_overlay,
        worker_poll=poll_seconds)
    if web_host not in ("127.0.0.1", "localhost"):
        click.echo(f"note: NEWSROOM_WEB_BASE_URL is {settings.web_base_url}; the approval "
                   f"page listens on 127.0.0.1:{resolved_web_port}")
    try:
        code = run_stack(options, lambda text: click.echo(text))
    except StackError as exc:
        click.echo(f"newsroom: {exc}", err=True)
        sys.exit(1)
    sys.exit(code)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=None, type=int,
              help="Default: the port of NEWSROOM_WEB_BASE_URL (8100).")
def web(host: str, port: int | None) -> None:
    """Serve the approval page and manual confirmations (for a separate deployment).

    Decisions that settle a gate resume the waiting Prefect run (PREFECT_API_URL).
    """
    from urllib.parse import urlsplit

    import uvicorn

    from flows.gate import resume_for_gate, show_decision
    from newsroom.runtime import get_runtime
    from newsroom.web.app import create_web_app

    _require_secret_key(demo=False, command="newsroom web")
    _require_protected_prefect("newsroom web")
    runtime = get_runtime()
    port = port or urlsplit(runtime.settings.web_base_url).port or 8100

    async def on_settled(status) -> None:
        await resume_for_gate(status, runtime)

    async def on_decided(status) -> None:  # a signature that leaves the gate open
        await show_decision(status, runtime)

    async def on_request(request_id: int) -> None:
        from flows.office_requests import start_request_run

        await start_request_run(request_id, runtime)

    app = create_web_app(runtime.engine, lambda: runtime.catalog, runtime.settings,
                         signer=runtime.signer, on_gate_settled=on_settled,
                         on_gate_decided=on_decided,
                         notifier=lambda: runtime.notifier, on_request_submitted=on_request)
    click.echo(f"Approval page on http://{host}:{port}/freigabe/… (links use "
               f"{runtime.base_url}); Ctrl-C stops it")
    uvicorn.run(app, host=host, port=port, log_level="warning")


@cli.command()
@click.option("--pool", default=None, help="Work pool (default: NEWSROOM_WORK_POOL or newsroom).")
@click.option("--poll", "poll_seconds", default=0.5, show_default=True, type=float,
              help="Seconds between polls of the work pool.")
def worker(pool: str | None, poll_seconds: float) -> None:
    """Run only the Newsroom worker (in-process runs) against a separate Prefect server.

    For example: prefect server start; prefect deploy --all; newsroom worker.
    """
    import asyncio
    import signal

    _require_secret_key(demo=False, command="newsroom worker")
    # Unlike `up`, no stand-in credentials: a real worker takes its channel credentials
    # from the environment or Prefect Secret blocks (the registry says where).
    from prefect.settings import PREFECT_API_URL

    api_url = PREFECT_API_URL.value()
    if not api_url:
        click.echo("newsroom: no Prefect server configured; start one (prefect server start) "
                   "and set PREFECT_API_URL (e.g. prefect config set "
                   "PREFECT_API_URL=http://127.0.0.1:4200/api), or use newsroom up", err=True)
        sys.exit(1)
    from flows.embedded import api_reachable

    if not api_reachable(api_url):
        click.echo(f"newsroom: no Prefect server answers at {api_url}; start it first",
                   err=True)
        sys.exit(1)
    pool = pool or get_settings().work_pool
    click.echo(f"Newsroom worker on work pool {pool!r} of {api_url} (poll every "
               f"{poll_seconds:g} s); press Ctrl-C to stop")
    from flows.worker import serve_worker

    async def serve() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await serve_worker(pool, poll_seconds=poll_seconds)
        except asyncio.CancelledError:
            pass

    asyncio.run(serve())
    click.echo("worker stopped")


@cli.command()
@click.argument("campaign")
@click.argument("day", metavar="DATE")
@click.option("--as", "admin", required=True,
              help="Your id in registry/people.yaml: a person with the role office-admin "
                   "(recorded as the admin; other names are refused).")
@click.option("--reject", "decision", flag_value="reject", help="Reject instead of approving.")
@click.option("--request-changes", "decision", flag_value="request_changes",
              help="Ask for changes instead of approving.")
@click.option("--approve", "decision", flag_value="approve", default=True, hidden=True)
@click.option("--comment", default="", help="Why (recorded in the audit trail).")
@click.option("--crisis", "crisis_id", type=int, default=None,
              help="A crisis message's fast path: the crisis id `newsroom crisis status` "
                   "shows (a crisis campaign can be triggered several times a day).")
def approve(campaign: str, day: str, admin: str, decision: str, comment: str,
            crisis_id: int | None) -> None:
    """Decide an occurrence's approval as an admin, and resume its waiting run."""
    import asyncio

    from . import approval, store
    from .runtime import get_runtime

    occurrence_date = _parse_day(day, "DATE")
    runtime = get_runtime()
    with store.session_scope(runtime.engine) as session:
        occurrence_id, problem = _occurrence_to_decide(session, campaign, occurrence_date,
                                                       crisis_id)
    if occurrence_id is None:
        click.echo(f"newsroom: {problem}", err=True)
        sys.exit(1)
    try:
        status = approval.admin_decision(runtime.engine, runtime.catalog,
                                         occurrence_id=occurrence_id, decision=decision,
                                         comment=comment, admin=admin, via="cli")
    except (NewsroomError, ValueError) as exc:
        click.echo(f"newsroom: {exc}", err=True)
        sys.exit(1)
    click.echo(f"{campaign} {occurrence_date}: {decision} recorded for admin {admin} "
               f"(gate {status.outcome.value})")
    from prefect.settings import PREFECT_API_URL

    api_url = PREFECT_API_URL.value()
    from flows.embedded import api_reachable

    if not api_url or not api_reachable(api_url):
        click.echo(f"note: no Prefect server reachable ({api_url or 'PREFECT_API_URL unset'}); "
                   "the decision is stored, and housekeeping resumes the "
                   "waiting run within a minute of the stack running again")
        return
    from flows.gate import resume_for_gate

    try:
        resumed = asyncio.run(resume_for_gate(status, runtime))
    except Exception as exc:  # noqa: BLE001 - the decision is stored; say so
        click.echo(f"note: the decision is stored but resuming the run failed ({exc}); "
                   "housekeeping retries within a minute")
        return
    if resumed:
        click.echo("the waiting run was resumed")
    else:
        click.echo("no run was waiting at the gate; the next run of this occurrence reads "
                   "the decision")


def _occurrence_to_decide(session, campaign: str, occurrence_date, crisis_id: int | None):
    """(occurrence id, None) or (None, what is wrong): the dated occurrence, or with
    ``crisis_id`` the occurrence of that crisis trigger."""
    from sqlmodel import select

    from . import store

    if crisis_id is not None:
        record = session.get(store.CrisisRecord, crisis_id)
        occurrence = (session.get(store.Occurrence, record.occurrence_id)
                      if record is not None and record.occurrence_id is not None else None)
        if occurrence is None or occurrence.campaign_id != campaign:
            return None, (f"no crisis #{crisis_id} of {campaign!r} in the store; `newsroom "
                          "crisis status` lists the active ones")
        if occurrence.occurrence_date != occurrence_date:
            return None, (f"crisis #{crisis_id} was triggered on "
                          f"{occurrence.occurrence_date}, not {occurrence_date}")
        return occurrence.id, None
    occurrence = store.get_occurrence(session, campaign_id=campaign,
                                      occurrence_date=occurrence_date)
    if occurrence is not None:
        return occurrence.id, None
    triggered = session.exec(select(store.CrisisRecord.id).join(
        store.Occurrence, store.Occurrence.id == store.CrisisRecord.occurrence_id).where(
        store.Occurrence.campaign_id == campaign,
        store.Occurrence.occurrence_date == occurrence_date)).all()
    if triggered:
        ids = ", ".join(f"#{i}" for i in sorted(triggered))
        return None, (f"{campaign!r} was triggered as a crisis on {occurrence_date} "
                      f"({ids}); name the one to decide with --crisis ID")
    return None, (f"no occurrence of {campaign!r} on {occurrence_date} in the store "
                  "(is the id right? has its run rendered the posts yet?)")


@cli.group()
def channels() -> None:
    """Channel accounts, and publications that need a person's decision."""


@channels.command("check")
@click.option("--timeout", default=15.0, show_default=True, type=float,
              help="Seconds allowed per account.")
@catalog_option
def channels_check(timeout: float, catalog_dir: Path | None) -> None:
    """Ask each network whether its account can publish (credential, account, rights,
    what the server tells); exit 1 if any cannot."""
    import asyncio

    import httpx

    from .publishing import check_accounts

    settings = get_settings()
    # The accounts as the stack's worker reaches them (its overlay: the demo's stand-ins).
    report = load_catalog(catalog_dir or settings.catalog_dir,
                          overlay=settings.overlay_for(catalog_dir))
    if report.catalog is None:  # the registry is broken (campaign errors do not matter here)
        _echo_report(report)
        sys.exit(1)
    accounts = list(report.catalog.accounts.values())

    async def run():
        async with httpx.AsyncClient(timeout=timeout) as client:
            return await check_accounts(accounts, client=client, timeout=timeout)

    results = asyncio.run(run())
    width = max((len(r.channel) for r in results), default=0)
    for result in results:
        state = "ok  " if result.ok else "FAIL"
        click.echo(f"{result.channel:<{width}}  {state}  {result.message}")
    failed = sum(not r.ok for r in results)
    if failed:
        click.echo(f"{failed} of {len(results)} accounts cannot publish; see above what to do",
                   err=True)
        sys.exit(1)
    click.echo(f"all {len(results)} accounts ok")


@channels.command("open")
def channels_open() -> None:
    """List failed and unknown publications, with what to do about each."""
    _list_open_publications(("unknown", "failed"))


@channels.command("unknown")
def channels_unknown() -> None:
    """List publications whose outcome is unknown: look at the account, then resolve them."""
    _list_open_publications(("unknown",))


def _list_open_publications(statuses: tuple[str, ...]) -> None:
    from . import store
    from .publishing import open_publications

    engine = store.make_engine(get_settings().resolved_database_url())
    try:
        rows = open_publications(engine, [store.PublicationStatus(s) for s in statuses])
    finally:
        engine.dispose()
    if not rows:
        click.echo("no publications in state " + " or ".join(statuses))
        return
    for row in rows:
        publication = row.publication
        planned = format_local(row.publish_at)
        click.echo(
            f"{publication.id:>5}  {publication.status:<7}  {row.campaign_id}  "
            f"{row.occurrence_date.isoformat()}  {publication.channel}  planned {planned}  "
            f"attempts {publication.attempts}"
        )
        if publication.last_error:
            click.echo(f"       {publication.last_error}")
    found = {row.status.value for row in rows}
    if "unknown" in found:
        click.echo("unknown (may be online): look at the account, then "
                   "newsroom channels resolve ID --published [--url URL] | --not-published")
    if "failed" in found:
        click.echo("failed (not online): fix the cause, then newsroom channels retry ID")


@channels.command("resolve")
@click.argument("publication_id", type=int)
@click.option("--published/--not-published", "published", default=None,
              help="What you found on the account.")
@click.option("--url", default=None, help="Address of the post (with --published).")
@click.option("--by", default=None, help="Who checked (default: admin:<your user name>).")
def channels_resolve(publication_id: int, published: bool | None, url: str | None,
                     by: str | None) -> None:
    """Record whether an "unknown" publication is online (--not-published: then retry it)."""
    import os

    from . import store
    from .publishing import resolve_unknown

    if published is None:
        raise click.UsageError("say what you found: --published or --not-published")
    if url and not published:
        raise click.UsageError("--url only goes with --published")
    by = by or f"admin:{os.environ.get('USER') or os.environ.get('USERNAME') or 'unknown'}"
    engine = store.make_engine(get_settings().resolved_database_url())
    try:
        publication = resolve_unknown(
            engine, publication_id, outcome="published" if published else "not_published",
            by=by, remote_url=url,
        )
    except (NewsroomError, ValueError) as exc:
        click.echo(f"newsroom: {exc}", err=True)
        sys.exit(1)
    finally:
        engine.dispose()
    if published:
        click.echo(f"publication {publication.id} ({publication.channel}) recorded as published")
    else:
        click.echo(f"publication {publication.id} ({publication.channel}) recorded as not "
                   f"published; publish it with: newsroom channels retry {publication.id}")


@channels.command("retry")
@click.argument("publication_id", type=int)
@click.option("--by", default=None, help="Who asks (default: admin:<your user name>).")
@click.option("--even-if-late", is_flag=True,
              help="Publish even though the post is past its campaign's grace window.")
@click.option("--direct", is_flag=True,
              help="Publish from this process (with this shell's credentials) even when "
                   "Prefect is reachable.")
@click.option("--wait", "wait_s", default=120.0, show_default=True, type=float,
              help="Seconds to wait for the Prefect run to end.")
def channels_retry(publication_id: int, by: str | None, even_if_late: bool, direct: bool,
                   wait_s: float) -> None:
    """Publish a failed publication again, once, after its cause was fixed.

    Through the Prefect deployment retry-publication (its worker has the credentials);
    --direct publishes from this process instead. Checked first: a publication
    that is not failed, replaced by newer content, held by a crisis or past its grace
    window (without --even-if-late) is refused, and nothing is sent.
    """
    import asyncio
    import os

    from flows.embedded import reachable_prefect_api

    from .retries import RetryRefused, describe_outcome, plan_retry, retry_publication
    from .runtime import get_runtime

    who = by or f"admin:{os.environ.get('USER') or os.environ.get('USERNAME') or 'unknown'}"
    runtime = get_runtime()
    try:  # the run checks again; this says at once why not, and starts nothing
        plan = plan_retry(runtime, publication_id, even_if_late=even_if_late)
    except RetryRefused as exc:
        click.echo(f"newsroom: not retried: {exc}", err=True)
        sys.exit(1)
    if plan.late:
        click.echo(f"note: {plan.late}; publishing it all the same (--even-if-late)")
    api_url = None if direct else reachable_prefect_api()
    if api_url:
        sys.exit(_retry_through_prefect(publication_id, who, even_if_late, wait_s, api_url))
    if not direct:
        click.echo("newsroom: not retried: no Prefect API reachable (is the stack running? "
                   "`newsroom up`, or set PREFECT_API_URL). To publish from this shell with "
                   "its own credentials, use --direct", err=True)
        sys.exit(1)
    click.echo("--direct: publishing from this process")

    async def run():
        from .delivery import close_shared_client

        try:
            return await retry_publication(runtime, publication_id, by=who, via="cli",
                                           even_if_late=even_if_late)
        finally:
            await close_shared_client()

    try:
        outcome = asyncio.run(run())
    except RetryRefused as exc:
        click.echo(f"newsroom: not retried: {exc}", err=True)
        sys.exit(1)
    done, said = describe_outcome(outcome)
    click.echo(said, err=not done)
    sys.exit(0 if done else 1)


RETRY_DEPLOYMENT = "retry-publication/retry-publication"


def _retry_through_prefect(publication_id: int, by: str, even_if_late: bool, wait_s: float,
                           api_url: str) -> int:
    import asyncio
    import time

    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    async def trigger():
        return await run_deployment(
            RETRY_DEPLOYMENT, timeout=0, as_subflow=False,
            parameters={"publication_id": publication_id, "by": by,
                        "even_if_late": even_if_late})

    async def state_of(run_id):
        async with get_client() as client:
            return (await client.read_flow_run(run_id)).state

    try:
        run = asyncio.run(trigger())
    except Exception as exc:  # noqa: BLE001 - say what to do instead
        click.echo(f"newsroom: the retry run could not be created on {api_url} ({exc}); "
                   "is the stack's deployment there (newsroom up / prefect deploy --all)? "
                   "Or publish from this shell with --direct", err=True)
        return 1
    click.echo(f"retry run {run.name} ({run.id}) created on {api_url}")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        state = asyncio.run(state_of(run.id))
        if state is not None and state.is_final():
            click.echo(state.message or state.name, err=not state.is_completed())
            return 0 if state.is_completed() else 1
        time.sleep(0.5)
    click.echo(f"the run has not ended within {wait_s:g} s (is a worker running?); "
               "`newsroom channels open` shows the publication when it has", err=True)
    return 1


from .cli_schedule import schedule_command; cli.add_command(schedule_command)  # noqa: E402,E702,I001
from . import cli_crisis  # noqa: E402,F401,I001 - registers `newsroom crisis`
from . import cli_requests  # noqa: E402,F401,I001 - registers `newsroom requests`


def _connect_to_stack(args: list[str]) -> None:
    """Before Prefect reads its settings: Prefect's ephemeral mode off, and the running
    stack's API, credential and publishing environment from the data dir
    (newsroom/running_stack.py). ``newsroom up`` starts or checks its own."""
    import os

    from .running_stack import connect

    command = next((arg for arg in args if not arg.startswith("-")), None)
    for warning in connect(os.environ, data_dir=get_settings().data_dir,
                           use_record=command != "up"):
        click.echo(f"newsroom: warning: {warning}", err=True)
    get_settings.cache_clear()  # the record may have set Newsroom's settings


def main() -> None:
    if "prefect" not in sys.modules:
        _connect_to_stack(sys.argv[1:])
    try:
        cli(standalone_mode=True)
    except NewsroomError as exc:
        click.echo(f"newsroom: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # the last guard: never a traceback for a user
        click.echo(f"newsroom: unexpected error: {type(exc).__name__}: {exc}", err=True)
        click.echo("please report this to the Newsroom maintainers with the command you ran", err=True)
        sys.exit(2)


if __name__ == "__main__":
    # `python -m newsroom.cli`: the commands registered from other modules (crisis,
    # requests) are on newsroom.cli's group, not on this __main__ copy's.
    from newsroom.cli import main as package_main

    package_main()
