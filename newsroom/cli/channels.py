"""``newsroom channels``: accounts, and publications that need a person's decision."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..catalog.validation import load_catalog
from ..errors import NewsroomError
from ..settings import get_settings
from ..timeutil import format_local
from .common import catalog_option, echo_report


@click.group()
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

    from ..publishing import check_accounts

    settings = get_settings()
    # The accounts as the stack's worker reaches them (its overlay: the demo's stand-ins).
    report = load_catalog(catalog_dir or settings.catalog_dir,
                          overlay=settings.overlay_for(catalog_dir))
    if report.catalog is None:  # the registry is broken (campaign errors do not matter here)
        echo_report(report)
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
    from .. import store
    from ..publishing import open_publications

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

    from .. import store
    from ..publishing import resolve_unknown

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

    from newsroom.orchestration.embedded import reachable_prefect_api

    from ..retries import RetryRefused, describe_outcome, plan_retry, retry_publication
    from ..runtime import get_runtime

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
        from ..delivery import close_shared_client

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
    from .common import run_through_prefect

    return run_through_prefect(
        RETRY_DEPLOYMENT, {"publication_id": publication_id, "by": by,
                           "even_if_late": even_if_late},
        api_url=api_url, wait_s=wait_s, what="retry",
        direct_hint="Or publish from this shell with --direct",
        unfinished_hint="`newsroom channels open` shows the publication when it has")
