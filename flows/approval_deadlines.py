"""Flow ``approval-deadlines``: reminders, deadlines, escalation, and resuming what settled.

Runs every minute. For every open approval gate it sends the reminders that are due (24 h
and 2 h before the deadline, each once), applies the campaign's timeout policy at the
deadline (cancel, publish with the signatures so far when the quorum is met, or escalate
to the office), and resumes every suspended campaign run whose gate has settled — also
those whose resume failed when the decision was made (Prefect unreachable for a moment).
It also sends the office the alerts still owed: a publication left "unknown" by a worker
killed before it could send its alert (``newsroom.publishing.send_owed_alerts``).

A broken campaign file does not stop it: the runtime's catalog is then the last one that
validated (``newsroom.catalog.keeper``), and the run says so in its log.
"""

from __future__ import annotations

import asyncio

from prefect import flow, get_run_logger

from flows.gate import resume_for_gate, resume_waiting_runs
from newsroom import approval
from newsroom.publishing import send_owed_alerts
from newsroom.runtime import get_runtime


@flow(name="approval-deadlines", flow_run_name="approval-deadlines", persist_result=False)
async def approval_deadlines() -> dict:
    logger = get_run_logger()
    runtime = get_runtime()
    broken = await asyncio.to_thread(lambda: runtime.catalog_broken)
    if broken is not None:
        logger.warning("the catalog does not validate; working with the last catalog that "
                       "did: %s", broken.summary())
    changed = await asyncio.to_thread(
        approval.process_deadlines, runtime.engine, runtime.catalog,
        notifier=runtime.notifier, signer=runtime.signer, base_url=runtime.base_url)
    for status in changed:
        logger.info("%s %s: gate %s (%s)", status.campaign_id, status.occurrence_date,
                    status.outcome.value, status.reason)
        await resume_for_gate(status, runtime)
    resumed = await resume_waiting_runs(runtime)
    alerted = await asyncio.to_thread(send_owed_alerts, runtime.engine,
                                      runtime.catalog.accounts, runtime.notifier)
    if alerted:
        logger.warning("alerted the office about %d unknown publication(s) whose alert was "
                       "lost: %s", len(alerted), alerted)
    return {"changed": [f"{s.campaign_id} {s.occurrence_date}: {s.outcome.value}"
                        for s in changed], "resumed": resumed, "owed_alerts": alerted}
