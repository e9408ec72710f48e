"""An edit of the catalog folder reaches Prefect within seconds, through the housekeeping
run (flows/housekeeping.py, CatalogChanges), on a real Prefect server and worker: at its
start and after each edit that validates it starts a catalog-sync run, which schedules
the new campaign; a broken edit is told to the office once and starts nothing; its fix
is synced."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from flow_testkit import (
    create_run,
    delete_deployment_runs,
    deployment_runs,
    flow_stack,
    run_state,
    wait_for,
    write_campaign,
)

from newsroom.orchestration.stack import run_async

pytestmark = pytest.mark.slow

POOL = "newsroom-catalog-changes"
OFFICE = "kommunikation@example.org"


@pytest.fixture(scope="module")
def stack(prefect_server, tmp_path_factory):
    with flow_stack(tmp_path_factory.mktemp("catalog-changes"), POOL) as ns:
        # Other modules' housekeeping runs started catalog-sync runs on these shared
        # deployments; this story counts its own.
        delete_deployment_runs(ns.deployments["catalog-sync"], ns.deployments["housekeeping"])
        yield ns


def _syncs(stack) -> list:
    return sorted(deployment_runs(stack.deployments["catalog-sync"]),
                  key=lambda run: run.created)


def _completed_syncs(stack) -> int:
    return sum(run.state_name == "Completed" for run in _syncs(stack))


def _campaign_runs(stack, campaign_id: str) -> list:
    return [run for run in deployment_runs(stack.deployments["campaign"])
            if run.parameters.get("campaign_id") == campaign_id]


def test_an_edit_is_scheduled_within_seconds_and_a_broken_one_never(stack):
    keeper = create_run(stack.deployments["housekeeping"], {
        "every_seconds": 600, "until": (datetime.now(UTC) + timedelta(minutes=3)).isoformat()})
    try:
        # At its start: the catalog as it is.
        wait_for(lambda: _completed_syncs(stack) >= 1, 60)
        assert len(_syncs(stack)) == 1

        # A new campaign in the folder people edit: synced and scheduled within seconds.
        edited = time.monotonic()
        write_campaign(stack.catalog, "neu-im-katalog",
                       datetime.now(UTC) + timedelta(days=3))
        wait_for(lambda: _completed_syncs(stack) >= 2, 45)
        runs = wait_for(lambda: _campaign_runs(stack, "neu-im-katalog"), 10)
        took = time.monotonic() - edited
        assert took < 30, f"scheduled {took:.0f} s after the edit"
        assert len(runs) == 1, runs

        # A broken edit: the office is told which file, nothing is synced or scheduled.
        broken = stack.catalog / "kaputt.yaml"
        broken.write_text("id: kaputt\ntitle: Kaputt\nslots: [\n", encoding="utf-8")
        alert = wait_for(lambda: [m for m in stack.mail.to(OFFICE)
                                  if "kaputt.yaml" in m.get_body(("plain",)).get_content()],
                         45)
        assert len(alert) == 1
        time.sleep(12)  # more than a check's interval
        assert len(_syncs(stack)) == 2, [run.name for run in _syncs(stack)]

        # The fix validates: synced, and the campaign it holds is scheduled.
        broken.unlink()
        write_campaign(stack.catalog, "kaputt", datetime.now(UTC) + timedelta(days=4))
        wait_for(lambda: _completed_syncs(stack) >= 3, 45)
        assert wait_for(lambda: _campaign_runs(stack, "kaputt"), 10)
        assert len(_syncs(stack)) == 3
        assert run_state(keeper).name == "Running"
    finally:
        from prefect.client.orchestration import get_client
        from prefect.states import Cancelling

        async def cancel() -> None:
            async with get_client() as client:
                await client.set_flow_run_state(keeper, Cancelling())

        # As an admin in the Prefect UI: the worker stops the run, it stays Cancelled.
        run_async(cancel())
        wait_for(lambda: run_state(keeper).name == "Cancelled", 20)
