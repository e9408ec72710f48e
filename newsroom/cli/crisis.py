"""``newsroom crisis``: start, watch, end a crisis, and release what it held.

    newsroom crisis start CAMPAIGN --by ID --set ereignis="…" [--set k=v …] [--approver PERSON]
    newsroom crisis status
    newsroom crisis end [--id N]
    newsroom crisis release OCCURRENCE … | --all
    newsroom crisis reschedule OCCURRENCE --at "YYYY-MM-DD HH:MM"

``start`` triggers the Prefect deployment ``crisis/crisis`` of the running stack
(``run_deployment`` with ``timeout=0``; a second shell finds the stack by itself,
newsroom/running_stack.py). With no Prefect API reachable it refuses, with what to do, and
records nothing; a run no worker starts within ``--wait`` seconds is cancelled. Only
``--direct`` publishes from this process — with the channel credentials the running
stack recorded for its worker, or this shell's. A crisis whose message went out on no
channel is ended at once (newsroom/crisis.py): it never holds the other posts for nothing.
Registered in ``newsroom/cli/main.py``.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
import time
from datetime import datetime
from typing import Any

import click

from newsroom.errors import NewsroomError
from newsroom.timeutil import format_local

DEPLOYMENT = "crisis/crisis"


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name: say so in the audit trail
        return "unknown"


def _parse_sets(assignments: tuple[str, ...]) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r}: write KEY=VALUE, e.g. ereignis=\"Sturm\"",
                                     param_hint="--set")
        values[key.strip()] = value
    return values


async def _trigger_run(parameters: dict, trigger_key: str):
    from prefect.deployments import arun_deployment

    return await arun_deployment(DEPLOYMENT, parameters=parameters, timeout=0,
                                 idempotency_key=f"crisis-{trigger_key}", as_subflow=False)


async def _run_state(run_id):
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return (await client.read_flow_run(run_id)).state


def _echo_report(report) -> None:
    for channel, url in sorted(report.published.items()):
        click.echo(f"  {channel}: published {url or ''}".rstrip())
    for channel in report.awaiting_manual:
        click.echo(f"  {channel}: awaiting manual post (owner notified)")
    for channel, status in sorted(report.already.items()):
        click.echo(f"  {channel}: already {status}")
    for channel, reason in sorted({**report.skipped, **report.failed,
                                   **report.unknown}.items()):
        click.echo(f"  {channel}: NOT published: {reason}")


def _publish_direct(runtime, start, deadline_minutes: float) -> int:
    from newsroom import approval, crisis

    try:
        status = None
        if not start.pre_approved:
            status = crisis.ask_approver(runtime, start, deadline_minutes=deadline_minutes)
            click.echo(f"waiting for {start.approver} to approve (deadline "
                       f"{deadline_minutes:g} min; the approval message is out)")
            while not status.settled:
                time.sleep(2.0)
                status = approval.evaluate_gate(runtime.engine, runtime.catalog,
                                                occurrence_id=start.prepared.occurrence_id)
        report = asyncio.run(crisis.publish_crisis(runtime, start, status))
    except BaseException:  # interrupted or broken: no crisis that reached nobody stays
        if crisis.end_if_nowhere_online(runtime, start):
            click.echo(f"nothing was published: crisis #{start.crisis_id} was ended",
                       err=True)
        raise
    if report is None:
        assert status is not None  # publish_crisis returns None only for a gate it was given
        click.echo(f"not published: approval {status.outcome.value}; the crisis ended")
        return 1
    _echo_report(report)
    if not crisis.is_active(runtime.engine, start.crisis_id):
        click.echo(f"published on no channel: crisis #{start.crisis_id} was ended, nothing is "
                   "held for it; fix what is named above and start it again", err=True)
        return 1
    return 0 if report.ok else 1


def _start_direct(runtime, campaign: str, variables: dict, who: str, trigger_key: str,
                  approver: str | None, deadline_minutes: int) -> int:
    import os

    from newsroom import crisis as domain
    from newsroom.running_stack import recorded_stack_in_use, stack_file

    data_dir = runtime.settings.data_dir
    record = recorded_stack_in_use(os.environ, data_dir)
    click.echo("--direct: publishing from this process with "
               + (f"the channel credentials of the running stack ({stack_file(data_dir)})"
                  if record else "this shell's channel credentials (no running stack found)"))
    try:
        start = domain.start_crisis(runtime, campaign, variables, by=who,
                                    trigger_key=trigger_key, approver=approver, via="cli")
    except NewsroomError as exc:
        click.echo(f"newsroom: {exc}", err=True)
        return 1
    click.echo(f"crisis #{start.crisis_id} ({campaign}) started by {who}")
    return _publish_direct(runtime, start, deadline_minutes)


async def _cancel_unstarted(run_id) -> bool:
    """Cancel the run unless a worker has taken it; True when it was cancelled."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.responses import OrchestrationResult, SetStateStatus
    from prefect.states import Cancelled

    async with get_client() as client:
        state = (await client.read_flow_run(run_id)).state
        if state is not None and state.type not in (StateType.SCHEDULED, StateType.PENDING):
            return False
        result: OrchestrationResult[Any] = await client.set_flow_run_state(
            run_id, Cancelled(message="no worker started it in time; nothing was published"))
    return result.status == SetStateStatus.ACCEPT


def _start_through_prefect(api_url: str, parameters: dict, trigger_key: str,
                           pre_approved: bool, start_within: float) -> int:
    try:
        run = asyncio.run(_trigger_run(parameters, trigger_key))
    except Exception as exc:  # noqa: BLE001 - say what to do instead
        click.echo(f"newsroom: not started, nothing recorded: the crisis run could not be "
                   f"created on {api_url} ({exc}); is the stack's deployment there "
                   "(newsroom up)? Or publish from this shell with --direct", err=True)
        return 1
    click.echo(f"crisis run {run.name} ({run.id}) created on {api_url}")
    deadline = time.monotonic() + start_within
    state = None
    while time.monotonic() < deadline:
        state = asyncio.run(_run_state(run.id))
        if state is not None and (state.is_running() or state.is_final()
                                  or state.is_paused()):
            break
        time.sleep(0.3)
    else:
        if asyncio.run(_cancel_unstarted(run.id)):
            click.echo(f"newsroom: no worker started the crisis run within {start_within:g} s "
                       "(does the stack's worker run? newsroom up): the run was cancelled, "
                       "nothing was recorded or published; start the stack, or publish "
                       "from this shell with --direct", err=True)
            return 1
        state = asyncio.run(_run_state(run.id))
    if state.is_final() and not state.is_completed():
        click.echo(f"newsroom: the crisis run ended {state.name}: {state.message or ''} "
                   "(see the run in the Prefect UI)", err=True)
        return 1
    if not pre_approved:
        click.echo("fast path: the run asks the approver and publishes when approved "
                   "(see `newsroom crisis status`)")
    else:
        click.echo(f"the run is {state.name.lower()}; `newsroom crisis status` shows the "
                   "crisis")
    return 0


@click.group()
def crisis() -> None:
    """Crisis mode: publish a crisis message now; hold other posts meanwhile."""


@crisis.command("start")
@click.argument("campaign")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="A template variable (repeatable); lists separated by |.")
@click.option("--approver", default=None,
              help="Fast path (templates that are not pre-approved): the one approver.")
@click.option("--deadline-minutes", default=15, show_default=True, type=int,
              help="Fast path: minutes the approver has.")
@click.option("--by", default=None,
              help="Who starts the crisis: your id in registry/people.yaml, a person with "
                   "the role office-admin (default: your user name).")
@click.option("--direct", is_flag=True,
              help="Publish from this process instead of through the stack's Prefect run "
                   "(with the channel credentials the running stack recorded, or this "
                   "shell's).")
@click.option("--wait", "start_within", default=10.0, show_default=True, type=float,
              help="Seconds for the stack's worker to start the run; one it has not "
                   "started by then is cancelled, and nothing is recorded.")
def crisis_start(campaign: str, assignments: tuple[str, ...], approver: str | None,
                 deadline_minutes: int, by: str | None, direct: bool,
                 start_within: float) -> None:
    """Publish CAMPAIGN's crisis message on every crisis channel now."""
    from newsroom import crisis as domain
    from newsroom.runtime import get_runtime

    variables = _parse_sets(assignments)
    runtime = get_runtime()
    campaign_model = domain.crisis_campaign(runtime.catalog, campaign)
    domain.message_variables(campaign_model, variables)  # typos fail before anything runs
    try:  # the same rule the run applies: a registry person whose role allows it
        who = domain.authorize_start(runtime, campaign, _who(by), via="cli")
    except NewsroomError as exc:
        click.echo(f"newsroom: not started: {exc} (--by ID)", err=True)
        sys.exit(1)
    trigger_key = domain.new_trigger_key(campaign)
    if direct:
        sys.exit(_start_direct(runtime, campaign, variables, who, trigger_key, approver,
                               deadline_minutes))
    from prefect.settings import PREFECT_API_URL

    from newsroom.orchestration.embedded import reachable_prefect_api
    from newsroom.running_stack import no_api_explanation

    api_url = reachable_prefect_api()
    if not api_url:
        click.echo("newsroom: not started, nothing recorded: "
                   + no_api_explanation(PREFECT_API_URL.value(), runtime.settings.data_dir)
                   + "; or publish from this shell with --direct", err=True)
        sys.exit(1)
    parameters = {"campaign_id": campaign, "variables": variables,
                  "approver": approver or "", "deadline_minutes": deadline_minutes,
                  "started_by": who, "trigger_key": trigger_key}
    sys.exit(_start_through_prefect(api_url, parameters, trigger_key,
                                    campaign_model.approval.pre_approved, start_within))


@crisis.command("status")
def crisis_status() -> None:
    """The active crisis, the posts it holds, and crisis channels not covered."""
    from newsroom import crisis as domain
    from newsroom.runtime import get_runtime

    runtime = get_runtime()
    active = domain.active_crisis(runtime.engine)
    if not active:
        click.echo("no active crisis")
    for record in active:
        started = format_local(record.started_at)
        click.echo(f"ACTIVE crisis #{record.id}: {record.campaign_id}, started {started} by "
                   f"{record.started_by}" + (f", approver {record.approver}"
                                             if record.approver else ""))
        for key, value in sorted(record.variables.items()):
            click.echo(f"    {key} = {value}")
    held = domain.held_publications(runtime)
    click.echo(f"{len(held)} held occurrence(s)" + (":" if held else ""))
    for item in held:
        channels = ", ".join(f"{c} (due {format_local(d)})"
                             for c, d in item.channels)
        state = f"too late: {item.late_reason}" if item.late_reason else "still in time"
        click.echo(f"  {item.occurrence_id}  {item.campaign_id} {item.occurrence_date}  "
                   f"{channels}  [{state}]")
    if held:
        click.echo("release after the crisis: newsroom crisis release OCCURRENCE … | --all")
    catalog = runtime.catalog
    marked = {a.name for a in domain.crisis_accounts(catalog)}
    for campaign_id in domain.crisis_campaigns(catalog):
        missing = marked - set(domain.campaign_channels(catalog.campaign(campaign_id).campaign))
        if missing:
            click.echo(f"warning: crisis campaign {campaign_id} does not post on the crisis "
                       f"channel(s) {', '.join(sorted(missing))}")


@crisis.command("end")
@click.option("--id", "crisis_id", type=int, default=None, help="End only this crisis.")
@click.option("--by", default=None, help="Who ends it (default: your user name).")
def crisis_end(crisis_id: int | None, by: str | None) -> None:
    """End the crisis. Held posts stay held until released."""
    from newsroom import crisis as domain
    from newsroom.runtime import get_runtime

    runtime = get_runtime()
    ended = domain.end_crisis(runtime.engine, by=_who(by), crisis_id=crisis_id)
    if not ended:
        click.echo("no active crisis" + (f" with id {crisis_id}" if crisis_id else ""))
        return
    for record in ended:
        click.echo(f"crisis #{record.id} ({record.campaign_id}) ended")
    held = domain.held_publications(runtime)
    if held:
        click.echo(f"{len(held)} held occurrence(s) wait for a fresh look: newsroom crisis "
                   "status; then newsroom crisis release OCCURRENCE … | --all")


@crisis.command("recall")
@click.argument("crisis_id", type=int, metavar="ID")
@click.option("--channel", "channels", multiple=True,
              help="Only this channel (repeat for several; default: every channel).")
@click.option("--reason", required=True, help="Why (audit trail, and everyone told).")
@click.option("--by", required=True,
              help="Who recalls: your id in registry/people.yaml (e.g. office-admin).")
@click.option("--direct", is_flag=True,
              help="Recall from this process (its own channel credentials) instead of "
                   "through the Prefect deployment `recall`.")
def crisis_recall(crisis_id: int, channels: tuple[str, ...], reason: str, by: str,
                  direct: bool) -> None:
    """Take the crisis message ID (`newsroom crisis status`) down on every channel."""
    from newsroom import store
    from newsroom.runtime import get_runtime

    from .recall import run_recall

    with store.session_scope(get_runtime().engine) as session:
        record = session.get(store.CrisisRecord, crisis_id)
        occurrence_id = record.occurrence_id if record else None
    if occurrence_id is None:
        raise NewsroomError(f"no crisis message #{crisis_id} with posts; `newsroom crisis "
                            "status` lists them")
    if record is not None and record.ended_at is None:
        click.echo(f"note: crisis #{crisis_id} stays active (posts of other campaigns stay "
                   f"held) until `newsroom crisis end --id {crisis_id}`")
    run_recall(occurrence_id, reason=reason, by=by, channels=channels, direct=direct,
               parameters={"crisis_id": crisis_id})


@crisis.command("release")
@click.argument("occurrences", nargs=-1, type=int)
@click.option("--all", "release_all", is_flag=True, help="Release every held occurrence.")
@click.option("--by", default=None, help="Who releases (default: your user name).")
def crisis_release(occurrences: tuple[int, ...], release_all: bool, by: str | None) -> None:
    """Publish held occurrences now (inside their grace window; else skipped)."""
    from newsroom import crisis as domain
    from newsroom.runtime import get_runtime

    runtime = get_runtime()
    if release_all == bool(occurrences):
        raise click.UsageError("name held occurrences (see `newsroom crisis status`) or --all")
    ids = [h.occurrence_id for h in domain.held_publications(runtime)] if release_all \
        else list(occurrences)
    failed = False
    for occurrence_id in ids:
        try:
            report = asyncio.run(domain.release_held(runtime, occurrence_id, by=_who(by)))
        except NewsroomError as exc:
            click.echo(f"newsroom: {occurrence_id}: {exc}", err=True)
            failed = True
            continue
        click.echo(f"{occurrence_id} ({report.campaign_id} {report.occurrence_date}) released:")
        _echo_report(report)
        failed = failed or not report.ok
    if not ids:
        click.echo("nothing is held")
    sys.exit(1 if failed else 0)


def _parse_new_time(value: str) -> datetime:
    """``YYYY-MM-DD HH:MM`` or ``HH:MM`` (today), Europe/Berlin; aware."""
    from newsroom.timeutil import LocalTimeError, localize, now_berlin, parse_local_datetime

    text = value.strip()
    if len(text) <= 5 and ":" in text:
        text = f"{now_berlin().date().isoformat()} {text}"
    try:
        return localize(parse_local_datetime(text))
    except LocalTimeError as exc:
        raise click.BadParameter(f"{exc}; {exc.hint}", param_hint="--at") from None


async def _start_campaign_run(campaign_id: str, occurrence_date, occurrence_id: int,
                              at: datetime):
    from prefect.deployments import arun_deployment

    from newsroom.orchestration.scheduling import CAMPAIGN_DEPLOYMENT

    return await arun_deployment(
        CAMPAIGN_DEPLOYMENT, timeout=0, as_subflow=False, tags=["rescheduled"],
        parameters={"campaign_id": campaign_id,
                    "occurrence_date": occurrence_date.isoformat()},
        idempotency_key=f"moved-{occurrence_id}-{at.isoformat()}")


@crisis.command("reschedule")
@click.argument("occurrence", type=int)
@click.option("--at", "at_text", required=True, metavar="'YYYY-MM-DD HH:MM' | HH:MM",
              help="The new time (Darmstadt time; HH:MM: today).")
@click.option("--by", default=None, help="Who reschedules (default: your user name).")
def crisis_reschedule(occurrence: int, at_text: str, by: str | None) -> None:
    """Move a held OCCURRENCE's posts to a new time (after the crisis ended).

    Starts the occurrence's campaign run in Prefect: a pre-approved campaign publishes at
    the new time; otherwise its approvers are asked again (the time is part of what they
    approve). The campaign's grace window counts from the original time.
    """
    from newsroom import crisis as domain
    from newsroom.runtime import get_runtime

    at = _parse_new_time(at_text)
    from newsroom.orchestration.embedded import reachable_prefect_api

    if reachable_prefect_api() is None:
        click.echo("newsroom: no Prefect API reachable, and the campaign run that publishes "
                   "at the new time lives there; start Prefect (newsroom up / newsroom "
                   "worker) and run this again. Nothing was changed.", err=True)
        sys.exit(1)
    runtime = get_runtime()
    try:
        item = domain.reschedule_held(runtime, occurrence, at, by=_who(by))
    except NewsroomError as exc:
        click.echo(f"newsroom: {exc}", err=True)
        sys.exit(1)
    when = format_local(at)
    channels = ", ".join(channel for channel, _ in item.channels)
    click.echo(f"{occurrence} ({item.campaign_id} {item.occurrence_date}) moved to {when}: "
               f"{channels}")
    try:
        run = asyncio.run(_start_campaign_run(item.campaign_id, item.occurrence_date,
                                              occurrence, at))
    except Exception as exc:  # noqa: BLE001 - say how to start it by hand
        click.echo(f"newsroom: the move is recorded, but the campaign run could not be "
                   f"created ({exc}); start it with: prefect deployment run campaign/campaign "
                   f"-p campaign_id={item.campaign_id} "
                   f"-p occurrence_date={item.occurrence_date.isoformat()}", err=True)
        sys.exit(1)
    pre_approved = runtime.catalog.campaign(item.campaign_id).campaign.approval.pre_approved
    click.echo(f"campaign run {run.name} ({run.id}) created: "
               + ("publishes at the new time" if pre_approved
                  else "asks the approvers again; publishes at the new time when approved"))
