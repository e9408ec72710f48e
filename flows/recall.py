"""Flow ``recall``: take a published occurrence down on every channel it reached, from the
Prefect UI.

Deployment "recall": *Run* → *Custom run* shows a form: the campaign and date (or a
crisis message's id), the channels (empty: all), the reason and who recalls (a registry
person whose role allows it). The same code path as ``newsroom recall`` and ``newsroom
crisis recall`` (:mod:`newsroom.recall`): recorded in the store before any network is
called, each withdrawal once, the gate of an occurrence still waiting for approval
closed, the office and the approvers told. The run ends Completed when everything is
down (or what cannot be taken back was done instead), Failed otherwise; its Markdown
artifact lists each channel.
"""

from __future__ import annotations

import asyncio
from datetime import date

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from prefect.states import Completed, Failed

from newsroom import recall as domain
from newsroom import store
from newsroom.catalog.roles import NotPermitted
from newsroom.runtime import get_runtime


def _run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters
    if params.get("crisis_id"):
        return f"recall crisis #{params['crisis_id']}"
    return f"recall {params.get('campaign_id')} {params.get('occurrence_date')}"


def _crisis_occurrence(crisis_id: int) -> int:
    runtime = get_runtime()
    with store.session_scope(runtime.engine) as session:
        record = session.get(store.CrisisRecord, crisis_id)
        if record is None or record.occurrence_id is None:
            raise domain.RecallError(f"no crisis message #{crisis_id} with posts")
        return record.occurrence_id


@flow(name="recall", flow_run_name=_run_name, persist_result=False)
async def recall(reason: str, by: str, campaign_id: str = "",
                 occurrence_date: date | None = None, crisis_id: int | None = None,
                 channels: list[str] | None = None):
    """Take published posts down on every channel (or the channels named).

    Args:
        reason: Why (audit trail, and the mail to the office and the approvers).
        by: Who recalls: your id in registry/people.yaml (role office-admin).
        campaign_id: The campaign (with occurrence_date); or give crisis_id.
        occurrence_date: The date of the campaign's posts.
        crisis_id: A crisis message's number (`newsroom crisis status`).
        channels: Only these channels (empty: every channel).
    """
    logger = get_run_logger()
    runtime = get_runtime()
    try:
        if crisis_id:
            occurrence_id = await asyncio.to_thread(_crisis_occurrence, crisis_id)
        elif campaign_id and occurrence_date:
            occurrence_id = await asyncio.to_thread(
                domain.occurrence_to_recall, runtime.engine, campaign_id=campaign_id,
                occurrence_date=occurrence_date)
        else:
            raise domain.RecallError("give campaign_id and occurrence_date, or crisis_id")
        report = await domain.recall_occurrence(
            runtime, occurrence_id=occurrence_id, reason=reason, by=by,
            channels=channels or None, via="prefect")
    except (domain.RecallError, NotPermitted) as exc:
        logger.error("not recalled: %s", exc)
        return Failed(message=f"not recalled: {exc}")
    await acreate_markdown_artifact(
        key=f"recall-{report.campaign_id}-{report.occurrence_date.isoformat()}",
        markdown=report.markdown(),
        description=f"Recall of {report.campaign_id} {report.occurrence_date}")
    if report.ok:
        logger.info("%s", report.summary())
        return Completed(message=report.summary())
    logger.error("%s", report.summary())
    return Failed(message=report.summary())
