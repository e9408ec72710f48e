"""``newsroom approve``: an office admin decides for an occurrence."""

from __future__ import annotations

import sys

import click

from ..errors import NewsroomError
from .common import parse_day


@click.command()
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

    from .. import approval, store
    from ..runtime import get_runtime

    occurrence_date = parse_day(day, "DATE")
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
    step = f", now {status.step_line()}" if status.step_line() else ""
    click.echo(f"{campaign} {occurrence_date}: {decision} recorded for admin {admin} "
               f"(gate {status.outcome.value}{step})")
    waits_for_next_step = not status.settled and status.outcome.value == "pending"
    if waits_for_next_step:
        mailed = approval.notify_approvers(runtime.engine, runtime.catalog,
                                           occurrence_id=occurrence_id,
                                           notifier=runtime.notifier, signer=runtime.signer,
                                           base_url=runtime.base_url)
        click.echo(f"asked the next step: {', '.join(mailed) or 'nobody new'}; the run "
                   "waits on until the chain's last step decides")
    from prefect.settings import PREFECT_API_URL

    api_url = PREFECT_API_URL.value()
    from newsroom.orchestration.embedded import api_reachable

    if not api_url or not api_reachable(api_url):
        click.echo(f"note: no Prefect server reachable ({api_url or 'PREFECT_API_URL unset'}); "
                   "the decision is stored, and housekeeping resumes the "
                   "waiting run within a minute of the stack running again")
        return
    from newsroom.orchestration.gate import resume_for_gate, show_decision

    if waits_for_next_step:
        try:
            asyncio.run(show_decision(status, runtime))
        except Exception as exc:  # noqa: BLE001 - the decision is stored; say so
            click.echo(f"note: the decision is stored but the run's artifact was not updated "
                       f"({exc})")
        return
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
    from sqlmodel import col, select

    from .. import store

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
        store.Occurrence, col(store.Occurrence.id) == store.CrisisRecord.occurrence_id).where(
        store.Occurrence.campaign_id == campaign,
        store.Occurrence.occurrence_date == occurrence_date)).all()
    if triggered:
        ids = ", ".join(f"#{i}" for i in sorted(triggered))
        return None, (f"{campaign!r} was triggered as a crisis on {occurrence_date} "
                      f"({ids}); name the one to decide with --crisis ID")
    return None, (f"no occurrence of {campaign!r} on {occurrence_date} in the store "
                  "(is the id right? has its run rendered the posts yet?)")
