"""``newsroom recall``: take a published occurrence (or one channel of it) down on every
channel it reached, and stop what of it is still scheduled or held (newsroom/recall.py).
``newsroom crisis recall ID`` is the same for a crisis message."""

from __future__ import annotations

import asyncio
import sys

import click

from .common import parse_day

DEPLOYMENT = "recall/recall"


def run_recall(occurrence_id: int, *, reason: str, by: str, channels: tuple[str, ...],
               direct: bool, parameters: dict, wait_s: float = 120.0) -> None:
    """Recall through the Prefect deployment ``recall`` (its worker has the channels'
    credentials), or with ``direct`` from this process; print per channel what became
    of it; exit 1 when anything is left."""
    from newsroom import recall as domain
    from newsroom.catalog.roles import NotPermitted
    from newsroom.orchestration.embedded import reachable_prefect_api
    from newsroom.runtime import get_runtime

    api_url = None if direct else reachable_prefect_api()
    if api_url:
        sys.exit(_through_prefect({**parameters, "reason": reason, "by": by,
                                   "channels": list(channels)}, api_url, wait_s))
    if not direct:
        click.echo("newsroom: not recalled: no Prefect API reachable (is the stack running? "
                   "`newsroom up`, or set PREFECT_API_URL). To recall from this shell with "
                   "its own channel credentials, use --direct", err=True)
        sys.exit(1)
    runtime = get_runtime()

    async def run() -> domain.RecallReport:
        from newsroom.delivery import close_shared_client

        try:
            return await domain.recall_occurrence(
                runtime, occurrence_id=occurrence_id, reason=reason, by=by,
                channels=list(channels) or None, via="cli")
        finally:
            await close_shared_client()

    try:
        report = asyncio.run(run())
    except NotPermitted as exc:
        click.echo(f"newsroom: {exc}", err=True)
        sys.exit(1)
    click.echo(f"recalled {report.campaign_id} {report.occurrence_date} for {report.requested_by}"
               + (f"; the approval was closed and {report.voided_links} link(s) voided"
                  if report.gate_closed or report.voided_links else ""))
    for channel in report.channels:
        detail = f" – {channel.detail}" if channel.detail else ""
        click.echo(f"  {channel.channel:<12} {channel.status}{detail}")
    if report.told:
        click.echo(f"told: {', '.join(report.told)}")
    if not report.ok:
        click.echo("not everything is down: see above; `newsroom audit "
                   f"{report.campaign_id}` keeps the record, housekeeping carries on what "
                   "waits for a post being published", err=True)
        sys.exit(1)


def _through_prefect(parameters: dict, api_url: str, wait_s: float) -> int:
    from .common import run_through_prefect

    return run_through_prefect(
        DEPLOYMENT, parameters, api_url=api_url, wait_s=wait_s, what="recall",
        direct_hint="Or recall from this shell with --direct",
        unfinished_hint="see it in the Prefect UI (its artifact lists each channel)")


direct_option = click.option(
    "--direct", is_flag=True,
    help="Recall from this process (its own channel credentials) instead of through the "
         "Prefect deployment `recall`.")


@click.command("recall")
@click.argument("campaign")
@click.argument("day", metavar="DATE")
@click.option("--channel", "channels", multiple=True,
              help="Only this channel (repeat for several; default: every channel).")
@click.option("--reason", required=True, help="Why (audit trail, and everyone told).")
@click.option("--by", required=True,
              help="Who recalls: your id in registry/people.yaml (a person whose role "
                   "allows recalls, e.g. office-admin).")
@direct_option
def recall(campaign: str, day: str, channels: tuple[str, ...], reason: str, by: str,
           direct: bool) -> None:
    """Take CAMPAIGN's posts of DATE down on every channel they reached (or --channel);
    what is still scheduled or held of them is not published."""
    from newsroom import recall as domain
    from newsroom.runtime import get_runtime

    occurrence_date = parse_day(day, "DATE")
    assert occurrence_date is not None  # a required argument
    occurrence_id = domain.occurrence_to_recall(get_runtime().engine, campaign_id=campaign,
                                                occurrence_date=occurrence_date)
    run_recall(occurrence_id, reason=reason, by=by, channels=channels, direct=direct,
               parameters={"campaign_id": campaign,
                           "occurrence_date": occurrence_date.isoformat()})
