"""The office's retry through Prefect: `newsroom channels retry ID` in a shell beside the
stack creates a run of the deployment retry-publication, the stack's worker (with the
credentials) publishes the failed post once; the same run refuses what is not failed.
A real Prefect server, the Newsroom worker, the stand-ins."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from flow_testkit import create_run, flow_stack, run_state, wait_for, write_campaign

from newsroom import retries, store
from newsroom.cli import cli
from newsroom.delivery import deliver_occurrence, prepare_occurrence
from newsroom.runtime import get_runtime
from newsroom.timeutil import BERLIN

pytestmark = pytest.mark.slow

POOL = "newsroom-retry"


@pytest.fixture(scope="module")
def stack(prefect_server, tmp_path_factory):
    with flow_stack(tmp_path_factory.mktemp("retry"), POOL) as ns:
        yield ns


def _statuses(stack, marker: str) -> list[dict]:
    return [p for p in stack.standins.posts("mastodon") if marker in str(p)]


def test_the_cli_retries_a_refused_post_through_prefect_once(stack):
    runtime = get_runtime()
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    write_campaign(stack.catalog, "wiederholen-prefect", slot, channels="[mastodon]",
                   pre_approved=True)
    stack.standins.set_faults([{"network": "mastodon", "path_contains": "/api/v1/statuses",
                                "kind": "401"}])
    prepared = prepare_occurrence(runtime, "wiederholen-prefect", slot.astimezone(BERLIN).date())
    report = asyncio.run(deliver_occurrence(runtime, prepared, None))
    assert set(report.failed) == {"mastodon"}, report
    with store.session_scope(runtime.engine) as session:
        [post] = store.current_posts(session, occurrence_id=prepared.occurrence_id)
        failed = store.get_publication(session, post_id=post.id, channel="mastodon")
    marker = "wiederholen-prefect"
    before = len(_statuses(stack, "Aktionstag"))

    result = CliRunner().invoke(cli, ["channels", "retry", str(failed.id), "--by", "hk"])
    assert result.exit_code == 0, result.output
    assert "retry run" in result.output and "created on http://127.0.0.1" in result.output
    assert f"publication {failed.id} (mastodon) published" in result.output, result.output
    assert len(_statuses(stack, "Aktionstag")) == before + 1
    with store.session_scope(runtime.engine) as session:
        events = store.audit_trail(session, campaign_id=marker)
        assert store.get_publication(session, post_id=post.id,
                                     channel="mastodon").status == "published"
    [asked] = [e for e in events if e.action == retries.RETRIED]
    assert asked.actor == "hk" and asked.detail["via"] == "prefect"

    # The run itself refuses what is not failed (the Prefect UI's form has no CLI check
    # before it): Failed, with the reason; nothing sent.
    run_id = create_run(stack.deployments["retry-publication"],
                        {"publication_id": failed.id, "by": "wolf"})
    state = wait_for(lambda: (s := run_state(run_id)) is not None and s.is_final() and s,
                     timeout=60)
    assert state.is_failed() and "is published" in (state.message or ""), state
    assert len(_statuses(stack, "Aktionstag")) == before + 1
