"""``newsroom up``, ``web``, ``worker`` and ``db``: running Newsroom."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import click
from pydantic import SecretStr

from ..errors import NewsroomError, RenderError, relative_path
from ..settings import Settings, get_settings, use_settings
from ..timeutil import BERLIN, Duration
from .common import catalog_option, catalog_or_exit


@click.group()
def db() -> None:
    """Newsroom's own database."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest revision (alembic upgrade head)."""
    from ..store import upgrade_database

    url = get_settings().resolved_database_url()
    upgrade_database(url)
    click.echo("database schema is up to date")


def _duration_option(value: str | None, option: str) -> Duration | None:
    if value is None:
        return None
    from ..timeutil import parse_duration

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


# What `newsroom up` decides itself, on top of the environment's settings; recorded for the
# commands of a second shell (newsroom/running_stack.py) as the NEWSROOM_* variables.
STACK_SETTINGS = ("web_base_url", "smtp_url", "catalog_overlay", "standins_url")


def embedded_settings(base: Settings, *, web_port: int | None,
                      smtp_port: int | None) -> Settings:
    """The embedded stack's settings: ``base`` with the approval page on ``web_port`` and
    Newsroom's mail to the mail catcher on ``smtp_port`` (each when given)."""
    update: dict[str, object] = {}
    if web_port is not None:
        update["web_base_url"] = f"http://127.0.0.1:{web_port}"
    if smtp_port is not None:
        update["smtp_url"] = SecretStr(
            f"smtp://127.0.0.1:{smtp_port}?from=newsroom@darmstadt.example.org")
    return base.model_copy(update=update)


def demo_credentials(settings: Settings) -> dict[str, str]:
    """The channel credentials the demo stack publishes with, by the names the registry's
    accounts read them from (registry/channels.yaml): the stand-ins' tokens, and for the
    press e-mail (``presse`` reads NEWSROOM_SMTP_URL) the mail server Newsroom's own mail
    goes to. Credentials come from the environment (or Prefect Secret blocks) in every
    deployment; the demo's are put there like a real one's would be."""
    from ..standins.config import STANDIN_CREDENTIAL_ENV

    return {**STANDIN_CREDENTIAL_ENV, "NEWSROOM_SMTP_URL": settings.smtp_url.get_secret_value()}


def provide_demo_credentials(settings: Settings) -> None:
    """Put :func:`demo_credentials` into this process's environment; a stand-in token set
    there already is kept, the press e-mail's server is always ``settings``' mail server."""
    import os

    credentials = demo_credentials(settings)
    os.environ["NEWSROOM_SMTP_URL"] = credentials.pop("NEWSROOM_SMTP_URL")
    for name, value in credentials.items():
        os.environ.setdefault(name, value)


def _require_secret_key(*, demo: bool, command: str) -> None:
    """Refuse to start without a configured signing key; the demo generates its own (kept
    in the data dir, so its links survive a restart)."""
    from ..signing import SigningKeyRefused, demo_key_path, ensure_demo_key, resolve_secret_key

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
    from newsroom.orchestration.embedded import reachable_prefect_api

    from ..prefect_access import PrefectAccessRefused

    try:
        reachable_prefect_api(timeout=3.0)
    except PrefectAccessRefused as exc:
        click.echo(f"newsroom: {command} will not start: {exc}", err=True)
        sys.exit(1)


def require_prefect_api() -> str:
    """The configured Prefect API (PREFECT_API_URL, or the running stack's record), or
    exit 1 saying what to do when none is configured or nobody answers there."""
    from prefect.settings import PREFECT_API_URL

    api_url = PREFECT_API_URL.value()
    if not api_url:
        click.echo("newsroom: no Prefect server configured; start one (prefect server start) "
                   "and set PREFECT_API_URL (e.g. prefect config set "
                   "PREFECT_API_URL=http://127.0.0.1:4200/api), or use newsroom up", err=True)
        sys.exit(1)
    from newsroom.orchestration.embedded import api_reachable

    if not api_reachable(api_url):
        click.echo(f"newsroom: no Prefect server answers at {api_url}; start it first",
                   err=True)
        sys.exit(1)
    return api_url


@click.command()
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

    from .. import store
    from ..calendar import calendar_entries, deadline_entries, format_calendar, write_ics
    from ..preview import build_preview, write_preview_html
    from ..sync import sync_catalog

    demo_after = None if no_demo or no_serve else _duration_option(demo_in, "--demo-in")
    if not no_serve:
        from ..running_stack import refuse_second_stack

        refuse_second_stack(get_settings().data_dir)
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # Prefect's own
        settings = embedded_settings(get_settings(), web_port=web_port, smtp_port=smtp_port)
        provide_demo_credentials(settings)
        use_settings(settings)
        _require_secret_key(demo=demo_after is not None, command="newsroom up")
        from ..catalog.overlay import (
            STACK_OVERLAY_DIR,
            prepare_overlay,
            standin_connections,
            write_registry_overlay,
        )

        catalog_dir = (catalog_dir or settings.catalog_dir).resolve()
        # The stack runs on the catalog people edit; what is this stack's own (its accounts
        # at this run's stand-ins, the demo campaign) goes into an overlay in the data dir.
        registry = catalog_or_exit(catalog_dir)
        overlay = prepare_overlay(settings.data_dir.resolve() / STACK_OVERLAY_DIR)
        standins_url = f"http://127.0.0.1:{port}"
        write_registry_overlay(overlay, standin_connections(registry.accounts.values(),
                                                            standins_url))
        # The report links each live post to the stand-ins' own page of it.
        settings = settings.model_copy(update={
            "catalog_dir": catalog_dir, "catalog_overlay": overlay,
            "standins_url": standins_url})
        use_settings(settings)
        click.echo(f"catalog: {relative_path(catalog_dir)} (accounts at the stand-ins "
                   f"{standins_url}: {relative_path(overlay)})")

    settings = get_settings()
    url = settings.resolved_database_url()
    store.upgrade_database(url)
    from sqlalchemy.engine import make_url

    click.echo(f"database: {make_url(url).render_as_string(hide_password=True)}")
    catalog = catalog_or_exit(catalog_dir)
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
        path = write_preview_html(
            preview_result, previews / f"{campaign_id}-{preview_result.day.isoformat()}.html")
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

    from newsroom.orchestration.embedded import StackError, StackOptions, run_stack

    web_host, resolved_web_port = _url_port(settings.web_base_url, 8100)
    smtp_host, resolved_smtp_port = _url_port(settings.smtp_url.get_secret_value(), 8025)
    local_mail = smtp_host in ("127.0.0.1", "localhost")
    options = StackOptions(
        work_pool=settings.work_pool, data_dir=settings.data_dir.resolve(),
        prefect_port=prefect_port, web_port=resolved_web_port,
        smtp_host="127.0.0.1", smtp_port=resolved_smtp_port if local_mail else None,
        standins_port=port, demo_in=demo_after,
        overlay_dir=settings.catalog_overlay,
        worker_poll=poll_seconds, settings=settings,
        recorded_settings=settings.as_environment(*STACK_SETTINGS))
    if web_host not in ("127.0.0.1", "localhost"):
        click.echo(f"note: NEWSROOM_WEB_BASE_URL is {settings.web_base_url}; the approval "
                   f"page listens on 127.0.0.1:{resolved_web_port}")
    try:
        code = run_stack(options, lambda text: click.echo(text))
    except StackError as exc:
        click.echo(f"newsroom: {exc}", err=True)
        sys.exit(1)
    finally:
        use_settings(None)
    sys.exit(code)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=None, type=int,
              help="Default: the port of NEWSROOM_WEB_BASE_URL (8100).")
def web(host: str, port: int | None) -> None:
    """Serve the approval page and manual confirmations (for a separate deployment).

    Decisions that settle a gate resume the waiting Prefect run (PREFECT_API_URL).
    """
    from urllib.parse import urlsplit

    import uvicorn

    from newsroom.orchestration.gate import resume_for_gate, show_decision
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
        from newsroom.orchestration.request_runs import start_request_run

        await start_request_run(request_id, runtime)

    app = create_web_app(runtime.engine, lambda: runtime.catalog, runtime.settings,
                         signer=runtime.signer, on_gate_settled=on_settled,
                         on_gate_decided=on_decided,
                         notifier=lambda: runtime.notifier, on_request_submitted=on_request)
    click.echo(f"Approval page on http://{host}:{port}/freigabe/… (links use "
               f"{runtime.base_url}); Ctrl-C stops it")
    uvicorn.run(app, host=host, port=port, log_level="warning")


@click.command()
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
    api_url = require_prefect_api()
    pool = pool or get_settings().work_pool
    click.echo(f"Newsroom worker on work pool {pool!r} of {api_url} (poll every "
               f"{poll_seconds:g} s); press Ctrl-C to stop")
    from newsroom.orchestration.worker import serve_worker

    async def serve() -> None:
        task = asyncio.current_task()
        assert task is not None  # inside asyncio.run
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await serve_worker(pool, poll_seconds=poll_seconds)
        except asyncio.CancelledError:
            pass

    asyncio.run(serve())
    click.echo("worker stopped")
