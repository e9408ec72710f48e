"""Prefect tasks of the campaign flow: thin wrappers over newsroom.delivery and
newsroom.approval (the domain core decides; these only give Prefect names, retries and
a place in the UI)."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from functools import partial

from prefect import get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact
from prefect.runtime import flow_run as current_run

from newsroom import approval, delivery
from newsroom.approval import GateStatus
from newsroom.catalog.roles import NotPermitted
from newsroom.delivery import DeliveryReport, PreparedOccurrence
from newsroom.orchestration.artifacts import approval_artifact, artifact_key
from newsroom.runtime import get_runtime
from newsroom.standins.app import post_page_url


async def _show_gate(prepared: PreparedOccurrence, status: GateStatus) -> None:
    runtime = get_runtime()
    key, description = approval_artifact(prepared.campaign_id, prepared.occurrence_date)
    await acreate_markdown_artifact(
        key=key, description=description,
        markdown=approval.gate_summary_markdown(status, runtime.catalog, prepared.posts))


@task(name="render-posts", task_run_name="render {campaign_id} {occurrence_date}")
async def render_posts(campaign_id: str, occurrence_date: date) -> PreparedOccurrence:
    runtime = get_runtime()
    run_id = current_run.get_id()
    return await asyncio.to_thread(delivery.prepare_occurrence, runtime, campaign_id,
                                   occurrence_date, flow_run_id=str(run_id) if run_id else None)


def _approval_cache_key(context: object, parameters: dict) -> str:
    prepared: PreparedOccurrence = parameters["prepared"]
    return f"request-approval-{prepared.occurrence_id}-{prepared.bundle_hash}"


@task(name="request-approval", task_run_name="request approval {prepared.campaign_id}",
      cache_key_fn=_approval_cache_key, cache_expiration=timedelta(days=400),
      persist_result=True)
async def request_approval(prepared: PreparedOccurrence) -> GateStatus:
    """Ask the approvers, once per occurrence and content.

    When a suspended run is resumed it starts again from the top: this task is then
    "Cached" (same occurrence, same content) and does not run again. Should the cache be
    missing (another machine), the store still knows who was notified: nobody is asked
    twice either way.
    """
    runtime = get_runtime()

    def ask() -> GateStatus:
        approval.open_gate(runtime.engine, runtime.catalog,
                           occurrence_id=prepared.occurrence_id)
        approval.notify_approvers(runtime.engine, runtime.catalog,
                                  occurrence_id=prepared.occurrence_id,
                                  notifier=runtime.notifier, signer=runtime.signer,
                                  base_url=runtime.base_url)
        return approval.evaluate_gate(runtime.engine, runtime.catalog,
                                      occurrence_id=prepared.occurrence_id)

    status = await asyncio.to_thread(ask)
    await _show_gate(prepared, status)
    return status


@task(name="show-approval", task_run_name="show approval {prepared.campaign_id}")
async def show_approval(prepared: PreparedOccurrence, status: GateStatus) -> None:
    """The gate as the run found it on going on (a decision that settled it, an admin's,
    the deadline's): a new version of the approval artifact, and the decision in the log."""
    runtime = get_runtime()
    await _show_gate(prepared, status)
    logger = get_run_logger()
    if status.decisions:
        logger.info(status.decision_line(runtime.catalog, status.decisions[-1]))
    else:
        logger.info("approval of %s %s: gate %s (%s)", status.campaign_id,
                    status.occurrence_date, status.outcome.value, status.reason)


@task(name="gate-status", task_run_name="gate status {occurrence_id}")
async def gate_status(occurrence_id: int) -> GateStatus:
    runtime = get_runtime()
    return await asyncio.to_thread(approval.evaluate_gate, runtime.engine, runtime.catalog,
                                   occurrence_id=occurrence_id)


@task(name="admin-decision", task_run_name="admin decision {occurrence_id}")
async def record_admin_decision(occurrence_id: int, decision: str, comment: str,
                                admin: str, input_key: str = "") -> GateStatus | str:
    """The gate after the admin's decision on its current step (an approved step of a
    chain asks the next one), or why it was refused (the name is no registry person with
    a role that allows it). A refusal is audited once per run and
    input (``input_key``), however often the resumed run replays that input."""
    runtime = get_runtime()
    run_id = current_run.get_id()
    refusal_key = f"admin-refused:{run_id}:{input_key}" if run_id and input_key else None
    decision_key = f"admin-decided:{run_id}:{input_key}" if run_id and input_key else None

    def decide() -> GateStatus | str:
        try:
            status = approval.admin_decision(runtime.engine, runtime.catalog,
                                             occurrence_id=occurrence_id, decision=decision,
                                             comment=comment, admin=admin, via="prefect_ui",
                                             refusal_key=refusal_key,
                                             decision_key=decision_key)
        except NotPermitted as exc:
            return str(exc)
        if not status.settled:
            # An approved step of a chain: its next step is asked now.
            approval.notify_approvers(runtime.engine, runtime.catalog,
                                      occurrence_id=occurrence_id, notifier=runtime.notifier,
                                      signer=runtime.signer, base_url=runtime.base_url)
        return status

    return await asyncio.to_thread(decide)


@task(name="publish", task_run_name="publish {prepared.campaign_id} {prepared.occurrence_date}")
async def publish(prepared: PreparedOccurrence, status: GateStatus | None) -> DeliveryReport:
    runtime = get_runtime()
    report = await delivery.deliver_occurrence(runtime, prepared, status)
    standins = runtime.settings.standins_url
    # In a thread: reading the catalog looks at every file of the folder, and this event
    # loop carries the rest of the burst's sends and records meanwhile.
    catalog = await asyncio.to_thread(lambda: runtime.catalog)
    await acreate_markdown_artifact(
        key=artifact_key("report", prepared.campaign_id, prepared.occurrence_date),
        markdown=report.markdown(catalog, status, post_page=(
            partial(post_page_url, standins) if standins else None)),
        description=f"Publication report of {prepared.campaign_id} {prepared.occurrence_date}")
    return report
