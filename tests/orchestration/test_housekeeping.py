"""Housekeeping on a real Prefect server: one long run that works every minute instead of a
run a minute (flows/housekeeping.py), and a stop of the worker that hands it back.

One test, one story (a few runs in all, however many passes): a run that ends at its
``until`` schedules its successor; the successor applies a campaign's deadline within a
pass; a second run started meanwhile ends at once; the worker stops — the successor goes
back to Scheduled, never Crashed, and the office gets no alert; a worker that keeps house
continues it rather than start another; only when no run is left does it create one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import pytest
from flow_testkit import (
    ON_POSTGRES,
    create_run,
    delete_deployment_runs,
    deployment_runs,
    flow_stack,
    run_state,
    start_campaign,
    state_names,
    wait_done,
    wait_for,
    wait_for_state,
    write_campaign,
)

from newsroom import store
from newsroom.orchestration.housekeeping_run import ensure_housekeeping_run
from newsroom.orchestration.stack import WorkerThread, run_async
from newsroom.runtime import get_runtime
from newsroom.timeutil import BERLIN

pytestmark = pytest.mark.slow

POOL = "newsroom-housekeeping"
OFFICE = "kommunikation@example.org"  # gets the run alerts of the Prefect automation


@pytest.fixture(scope="module")
def stack(prefect_server, tmp_path_factory, request):
    database_url = request.getfixturevalue("postgres_url") if ON_POSTGRES else None
    with flow_stack(tmp_path_factory.mktemp("housekeeping"), POOL, database_url=database_url,
                    web=True) as ns:
        # The deployment is shared by name with other modules' stacks on this Prefect
        # server: their runs are not this story's.
        delete_deployment_runs(ns.deployments["housekeeping"])
        yield ns


async def _ensure() -> UUID | None:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return await ensure_housekeeping_run(client, POOL)


async def _cancel(run_id: UUID) -> None:
    """Cancel as the Prefect UI does (Cancelling; Prefect ends a run nobody executes)."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    async with get_client() as client:
        await client.set_flow_run_state(run_id, Cancelling())


def test_one_run_keeps_house_and_a_stop_hands_it_back(stack):
    deployment = stack.deployments["housekeeping"]

    # A run that ends soon schedules its successor for that moment and ends Completed.
    until = datetime.now(UTC) + timedelta(seconds=3)
    first = create_run(deployment, {"every_seconds": 1, "until": until.isoformat()})
    assert "passes" in wait_done(first, 60)
    successor = wait_for(lambda: [r.id for r in deployment_runs(deployment)
                                  if r.id != first])[0]
    wait_for_state(successor, {"Running"}, 30)

    # A campaign waiting for approval whose deadline passes: a pass cancels its gate and
    # resumes the run, which ends.
    slot = (datetime.now(UTC) + timedelta(seconds=40)).replace(microsecond=0)
    day = slot.astimezone(BERLIN).date().isoformat()
    write_campaign(stack.catalog, "hk-frist", slot, deadline_before="28s")
    campaign_run = start_campaign(stack, "hk-frist", day)
    wait_for_state(campaign_run, {"Suspended"}, 60)
    wait_done(campaign_run, 60)
    with store.session_scope(get_runtime().engine) as session:
        occurrence = store.get_occurrence(session, campaign_id="hk-frist",
                                          occurrence_date=date.fromisoformat(day))
        assert occurrence.gate_outcome == "cancelled", occurrence.gate_outcome

    # Exactly one at a time: a second run ends at once.
    second = create_run(deployment, {"every_seconds": 1})
    assert "is active" in wait_done(second, 30)

    # The worker stops: the successor is handed back, never Crashed; nobody is alerted.
    stack.worker.stop()
    assert run_state(successor).name == "Scheduled"
    assert "Crashed" not in state_names(successor)
    # A worker that keeps house continues it and starts no other run.
    stack.worker = WorkerThread(POOL, poll_seconds=0.5, housekeeping=True)
    stack.worker.start()
    wait_for_state(successor, {"Running"}, 30)
    assert len(deployment_runs(deployment)) == 3
    # The gate's cancellation was told to the office; no run alert
    # (newsroom/orchestration/stack.py) came.
    subjects = [str(m["subject"]) for m in stack.mail.to(OFFICE)]
    assert not [s for s in subjects if "Crashed" in s or "Failed" in s], subjects

    # Without a live run the worker's check creates one, once.
    stack.worker.stop()
    assert run_async(_ensure()) is None
    run_async(_cancel(successor))
    # Handed back without its old process id: Prefect cancels it at once, not "Cancelling"
    # for a process that is gone.
    assert run_state(successor).name == "Cancelled"
    created = run_async(_ensure())
    assert created is not None and run_async(_ensure()) is None
    assert len(deployment_runs(deployment)) == 4
