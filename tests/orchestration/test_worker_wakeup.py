"""The worker does not wait for its next poll when a run of its pool becomes Scheduled (a
crisis message started, a campaign resumed after approval): Prefect's events stream wakes
it. Here the regular poll is every 10 minutes, so only the wake-up can start the run.
Real Prefect server (test harness), the Newsroom worker, the stand-in channels."""

from __future__ import annotations

import time

import pytest
from flow_testkit import create_run, flow_stack, wait_done, wait_for

pytestmark = pytest.mark.slow

POOL = "newsroom-wakeup"
POLL_SECONDS = 600.0


@pytest.fixture(scope="module")
def stack(prefect_server, tmp_path_factory):
    with flow_stack(tmp_path_factory.mktemp("wakeup"), POOL, poll_seconds=POLL_SECONDS) as ns:
        yield ns


def test_a_run_created_now_starts_without_waiting_for_the_poll(stack):
    time.sleep(3)  # the worker's first poll (at its start) is over: the next is 10 min away
    marker = "Weckruf Gewitter"
    started = time.monotonic()
    run_id = create_run(stack.deployments["crisis"], {
        "campaign_id": "unwetterwarnung", "ereignis": marker,
        "gueltig_bis": "heute, 23:00 Uhr", "started_by": "demir"})
    message = wait_done(run_id, timeout=120)
    assert "published on 6 channel(s)" in message
    assert time.monotonic() - started < POLL_SECONDS / 4  # long before any poll
    assert wait_for(lambda: [p for p in stack.standins.posts("mastodon") if marker in str(p)])

    # A second one, after the first has ended (so surely after the worker's first poll):
    # only the wake-up can start it.
    started = time.monotonic()
    run_id = create_run(stack.deployments["crisis"], {
        "campaign_id": "unwetterwarnung", "ereignis": marker + " 2",
        "gueltig_bis": "heute, 23:00 Uhr", "started_by": "demir"})
    assert "published on 6 channel(s)" in wait_done(run_id, timeout=120)
    assert time.monotonic() - started < POLL_SECONDS / 4
