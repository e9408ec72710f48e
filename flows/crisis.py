"""Flow ``crisis``: publish a crisis message on every crisis channel, now.

    trigger (record, render) ──► [fast path: ask one approver ─► suspended ─► resumed]
                             ──► publish on all channels at once

Start it from the Prefect UI (deployment "crisis": *Run* → *Custom run* shows a form),
from ``newsroom crisis start`` or with ``run_deployment("crisis/crisis", ...)``.
``started_by`` must name a registry person whose role allows starting a crisis
(office-admin, :mod:`newsroom.catalog.roles`); anything else is refused: audited
(``crisis.refused``), the run fails, nothing is recorded or published.

- A **pre-approved** crisis template (``approval.pre_approved: true``) is published at
  once on all its channels, concurrently.
- Otherwise the **fast path**: one approver (``approver``, default the campaign's first)
  gets the approval message with a deadline ``deadline_minutes`` after the trigger; the
  run suspends like a campaign run and the approval page resumes it. Anything but an
  approval publishes nothing and ends the crisis.

While the crisis is active, scheduled posts of other campaigns are held (see
``newsroom/crisis.py``). A retried run of the same trigger (``trigger_key``; default: this
flow run) never publishes twice.
"""

from __future__ import annotations

import asyncio

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact
from prefect.runtime import flow_run as current_run
from prefect.states import Completed, Failed

from flows.campaign import wait_for_gate
from newsroom import crisis as crisis_domain
from newsroom.approval import GateStatus
from newsroom.catalog.roles import NotPermitted
from newsroom.crisis import CrisisStart
from newsroom.delivery import DeliveryReport
from newsroom.runtime import get_runtime


def _run_name() -> str:
    params = current_run.parameters
    return f"crisis {params.get('campaign_id', '')}"


@task(name="trigger-crisis", task_run_name="trigger {campaign_id}")
async def trigger_crisis(campaign_id: str, variables: dict[str, str], started_by: str,
                         trigger_key: str, approver: str | None) -> CrisisStart:
    runtime = get_runtime()
    run_id = current_run.get_id()
    return await asyncio.to_thread(
        crisis_domain.start_crisis, runtime, campaign_id, variables, by=started_by,
        trigger_key=trigger_key, approver=approver,
        flow_run_id=str(run_id) if run_id else None, via="prefect_ui")


@task(name="ask-approver", task_run_name="ask {start.approver}")
async def ask_approver(start: CrisisStart, deadline_minutes: float) -> GateStatus:
    runtime = get_runtime()
    return await asyncio.to_thread(crisis_domain.ask_approver, runtime, start,
                                   deadline_minutes=deadline_minutes)


@task(name="publish-crisis", task_run_name="publish {start.campaign_id}")
async def publish_crisis(start: CrisisStart, status: GateStatus | None
                         ) -> DeliveryReport | None:
    runtime = get_runtime()
    report = await crisis_domain.publish_crisis(runtime, start, status)
    if report is not None:
        await acreate_markdown_artifact(
            key=f"crisis-{start.crisis_id}",
            markdown=report.markdown(runtime.catalog),
            description=f"Crisis {start.campaign_id} #{start.crisis_id}")
    return report


@flow(name="crisis", flow_run_name=_run_name, persist_result=False)
async def crisis(
    campaign_id: str = "unwetterwarnung",
    ereignis: str = "",
    gueltig_bis: str = "",
    hinweise: str = "",
    variables: dict[str, str] | None = None,
    approver: str = "",
    deadline_minutes: int = 15,
    started_by: str = "",
    trigger_key: str = "",
):
    """Publish a crisis message now on every crisis channel of the campaign.

    Args:
        campaign_id: The crisis campaign (a file in campaigns/ with `on_demand: true`).
        ereignis: What happens (Unwetterwarnung: e.g. "Schweres Gewitter mit Orkanböen").
            Empty: the template's default.
        gueltig_bis: Until when the warning applies (e.g. "heute, 22:00 Uhr").
        hinweise: Advice, separated by | ("Bleiben Sie in Gebäuden.|Notruf: 112.").
        variables: Other template variables of the campaign, by name.
        approver: Fast path for templates that are not pre-approved: the one person
            (id in registry/people.yaml) who approves; empty: the campaign's first.
        deadline_minutes: Fast path: minutes the approver has.
        started_by: Who starts it: your id in registry/people.yaml (a person with the
            role office-admin; recorded in the audit trail). Other names are refused and
            nothing is published.
        trigger_key: Set by Newsroom; leave empty.
    """
    logger = get_run_logger()
    given = {k: v for k, v in (variables or {}).items()}
    for key, value in (("ereignis", ereignis), ("gueltig_bis", gueltig_bis),
                       ("hinweise", hinweise)):
        if value:
            given[key] = value
    trigger = trigger_key or f"prefect-{current_run.get_id()}"
    try:
        start = await trigger_crisis(campaign_id, given, started_by, trigger, approver or None)
    except NotPermitted as exc:
        logger.error("crisis %s refused, nothing published: %s", campaign_id, exc)
        return Failed(message=f"refused, nothing published: {exc}")
    status: GateStatus | None = None
    if not start.pre_approved:
        status = await ask_approver(start, deadline_minutes)
        status = await wait_for_gate(start.prepared, status)
    report = await publish_crisis(start, status)
    if report is None:
        outcome = status.outcome.value if status else "none"
        logger.info("crisis %s not published: gate %s", campaign_id, outcome)
        return Completed(message=f"not published: approval {outcome}; the crisis ended",
                         data={"outcome": outcome, "crisis_id": start.crisis_id})
    message = (f"crisis #{start.crisis_id} published on {len(report.published)} channel(s), "
               f"{len(report.awaiting_manual)} awaiting manual post")
    if not crisis_domain.is_active(get_runtime().engine, start.crisis_id):
        message += "; on no channel online, so the crisis was ended (nothing is held)"
    if not report.ok:
        raise RuntimeError(message + f"; failed: {sorted(report.failed)}, unknown: "
                           f"{sorted(report.unknown)} (see the report artifact)")
    return Completed(message=message, data={"outcome": "published",
                                            "crisis_id": start.crisis_id,
                                            "published": report.published})
