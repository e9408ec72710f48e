"""Recall through Prefect: `newsroom recall` in a shell beside the stack creates a run of
the deployment `recall`, the stack's worker (with the credentials) takes the posts down
once, its artifact lists each channel; `newsroom crisis recall ID` recalls a crisis
message; a held occurrence that is recalled is never released. A real Prefect server, the
Newsroom worker, the stand-ins."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from flow_testkit import create_run, flow_stack, run_state, wait_for, write_campaign

from newsroom import crisis, recall, store
from newsroom.cli import cli
from newsroom.delivery import deliver_occurrence, prepare_occurrence
from newsroom.runtime import get_runtime
from newsroom.timeutil import BERLIN

pytestmark = pytest.mark.slow

POOL = "newsroom-recall"


@pytest.fixture(scope="module")
def stack(prefect_server, tmp_path_factory):
    with flow_stack(tmp_path_factory.mktemp("recall"), POOL) as ns:
        yield ns


def _shown(stack, network: str, marker: str) -> list[dict]:
    return [p for p in stack.standins.posts(network)
            if marker in str(p) and not p.get("deleted_at")]


def _published(stack, campaign_id: str, channels: str = "[mastodon, telegram]") -> int:
    runtime = get_runtime()
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    write_campaign(stack.catalog, campaign_id, slot, channels=channels, pre_approved=True)
    prepared = prepare_occurrence(runtime, campaign_id, slot.astimezone(BERLIN).date())
    report = asyncio.run(deliver_occurrence(runtime, prepared, None))
    assert set(report.published) == set(channels.strip("[]").split(", ")), report
    return prepared.occurrence_id


def test_the_cli_recalls_through_prefect_once(stack):
    runtime = get_runtime()
    occurrence_id = _published(stack, "rueckruf-prefect")
    with store.session_scope(runtime.engine) as session:
        day = session.get(store.Occurrence, occurrence_id).occurrence_date.isoformat()
    marker = "Aktionstag"
    before = len(_shown(stack, "mastodon", marker)), len(_shown(stack, "telegram", marker))
    result = CliRunner().invoke(cli, ["recall", "rueckruf-prefect", day, "--reason",
                                      "Falsches Datum", "--by", "wolf"])
    assert result.exit_code == 0, result.output
    assert "recall run" in result.output and "created on http://127.0.0.1" in result.output
    assert "mastodon gone, telegram gone" in result.output, result.output
    after = len(_shown(stack, "mastodon", marker)), len(_shown(stack, "telegram", marker))
    assert after == (before[0] - 1, before[1] - 1)
    with store.session_scope(runtime.engine) as session:
        events = store.audit_trail(session, campaign_id="rueckruf-prefect")
    requested = [e for e in events if e.action == "recall.requested"]
    assert {e.actor for e in requested} == {"wolf"}
    assert {e.detail["via"] for e in requested} == {"prefect"}
    assert sorted(e.channel for e in events if e.action == "recall.gone") == [
        "mastodon", "telegram"]

    # The run refuses someone whose role does not allow it: Failed, nothing changed.
    run_id = create_run(stack.deployments["recall"], {
        "campaign_id": "rueckruf-prefect", "occurrence_date": day, "reason": "x",
        "by": "hoffmann"})
    state = wait_for(lambda: (s := run_state(run_id)) is not None and s.is_final() and s,
                     timeout=60)
    assert state.is_failed() and "not recalled" in (state.message or ""), state


def test_a_crisis_message_is_recalled_by_its_id(stack):
    runtime = get_runtime()
    start = crisis.start_crisis(runtime, "unwetterwarnung", {"ereignis": "Rückruf-Probe"},
                                by="wolf")
    asyncio.run(crisis.publish_crisis(runtime, start))
    assert _shown(stack, "mastodon", "Rückruf-Probe")
    result = CliRunner().invoke(cli, ["crisis", "recall", str(start.crisis_id), "--reason",
                                      "Warnung war falsch", "--by", "demir", "--direct"])
    assert "stays active" in result.output, result.output
    assert not _shown(stack, "mastodon", "Rückruf-Probe"), result.output
    assert not _shown(stack, "telegram", "Rückruf-Probe")
    crisis.end_crisis(runtime.engine, by="wolf")


def test_a_held_occurrence_recalled_is_never_released(stack):
    runtime = get_runtime()
    start = crisis.start_crisis(runtime, "unwetterwarnung", {"ereignis": "Halten"},
                                by="wolf")
    asyncio.run(crisis.publish_crisis(runtime, start))
    slot = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    write_campaign(stack.catalog, "rueckruf-gehalten", slot, channels="[mastodon]",
                   pre_approved=True)
    prepared = prepare_occurrence(runtime, "rueckruf-gehalten", slot.astimezone(BERLIN).date())
    report = asyncio.run(deliver_occurrence(runtime, prepared, None))
    assert set(report.held) == {"mastodon"}, report
    recalled = asyncio.run(recall.recall_occurrence(
        runtime, occurrence_id=prepared.occurrence_id, reason="Termin entfällt", by="wolf"))
    assert [(c.channel, c.status) for c in recalled.channels] == [("mastodon", "cancelled")]
    crisis.end_crisis(runtime.engine, by="wolf")
    released = asyncio.run(crisis.release_held(runtime, prepared.occurrence_id, by="wolf"))
    assert released.published == {}, released
    assert not [p for p in stack.standins.posts("mastodon") if "rueckruf-gehalten" in str(p)]
