"""The one long-lived ``housekeeping`` run a work pool needs (flows/housekeeping.py): the
Newsroom worker asks at every heartbeat whether it is there and starts one when it is not
(newsroom/orchestration/worker.py)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

logger = logging.getLogger("newsroom.housekeeping")

FLOW_NAME = DEPLOYMENT_NAME = "housekeeping"
DEPLOYMENT = f"{FLOW_NAME}/{DEPLOYMENT_NAME}"
# A scheduled run due within this long counts as the one that keeps house (a successor
# waiting for midnight, a run the worker prefetched).
DUE_SOON = timedelta(minutes=5)


async def ensure_housekeeping_run(client: Any, work_pool: str) -> UUID | None:
    """Create a housekeeping run due now when the pool's housekeeping deployment has none
    scheduled (due soon), pending, running or paused; the run created, or None.

    Called by the Newsroom worker at every heartbeat: it starts the first run, and the
    next one after a run failed or was cancelled."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound

    try:
        deployment = await client.read_deployment_by_name(DEPLOYMENT)
    except ObjectNotFound:
        return None
    if deployment.work_pool_name != work_pool:
        return None
    mine = FlowRunFilterDeploymentId(any_=[deployment.id])
    live = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
        deployment_id=mine, state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[
            StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED,
            StateType.CANCELLING]))))
    soon = datetime.now(UTC) + DUE_SOON
    if any(run.state_type != StateType.SCHEDULED or run.expected_start_time is None
           or run.expected_start_time <= soon for run in live):
        return None
    # Every worker counts the same runs: two workers asking at once create one run.
    count = await client.count_flow_runs(flow_run_filter=FlowRunFilter(deployment_id=mine))
    run = await client.create_flow_run_from_deployment(
        deployment.id, idempotency_key=f"newsroom-housekeeping-{deployment.id}-{count}")
    logger.info("housekeeping run %s started (none was active)", run.name)
    return run.id
