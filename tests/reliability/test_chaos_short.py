"""The chaos test, short: the Newsroom worker (its own process) SIGKILLed twice during
publication, 10 campaigns × 6 channels (one of them a Mastodon account on a server that
ignores Idempotency-Key and closes every connection, as GoToSocial); nothing twice, nothing
lost, every post confirmed or reported "unknown" (with an alert to the office), and
"unknown" only for a post whose request reached its network. The long run: bench/chaos.py."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from uuid import uuid4

import anyio
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from chaos import CHANNELS, COMPATIBLE, run_chaos  # noqa: E402

from newsroom.orchestration.recovery import (  # noqa: E402
    instance_name,
    judge,
    parse_instance,
    process_is_gone,
    process_start_ticks,
)


@pytest.mark.slow
def test_worker_killed_during_publication_loses_nothing_and_repeats_nothing(
        prefect_server: None, tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    lines: list[str] = []
    # Round 1: killed after its publications were armed (claimed), before the second;
    # round 2: killed while its posts arrive at the networks (their answers held back
    # 1.5 s, so the kill after the k-th post lands before the last answer is recorded,
    # on a fast machine too: it came after all 30 had been recorded once).
    result = run_chaos(tmp_path, api_url=PREFECT_API_URL.value(), campaigns=10, rounds=2,
                       seed=6, lead_s=12.0, kill_window=(-2.0, -0.5), modes=["armed", "sending"],
                       final_timeout=150, hold_answers_s=1.5, echo=lines.append)
    report = "\n".join(lines) + f"\n{result.summary()}"
    print(report)
    assert result.posts == 10 * len(CHANNELS) == 60
    # The kills really landed during publication: after the arming, before the end.
    assert all(k.during_publication for k in result.kills), report
    assert result.kills[1].posts_at_kill > 0, report
    if result.kills[0].offset_s < -0.3:  # before the burst's send mark (T - 0.2 s)
        # Killed armed, nothing sent: the next run took every claim over and sent it,
        # also to LinkedIn and Telegram — none left "unknown" for a person to check.
        assert result.unknown_never_sent_by_mode.get("armed", 0) == 0, report
    assert result.duplicates == 0, f"{result.duplicate_posts}\n{report}"
    assert result.lost == 0, f"{result.lost_posts}\n{report}"
    assert result.recorded_but_absent == 0, report
    # Every publication is confirmed (at the network and recorded) or reported unknown,
    # and every unknown one was told to the office: by its run, or by the owed-alerts
    # sweep when a kill came between "unknown" and the alert.
    assert result.confirmed + result.unknown == result.posts, report
    # "Unknown" only where a request may really have left: killed while its burst went
    # out, a post whose request had not begun has no line in the killed worker's send
    # journal and was sent by the next run (newsroom/send_journal.py).
    assert result.unknown - result.unknown_at_network == 0, report
    # Counted per account: the server that ignores Idempotency-Key got each of its posts
    # at most once too (a repeat there would be a second status, see
    # chaos.check_repeats_are_counted), and each is confirmed or unknown.
    compatible = result.accounts[COMPATIBLE]
    assert compatible["posts"] == 10 and compatible["duplicates"] == 0, report
    assert compatible["lost"] == 0, report
    assert compatible["confirmed"] + compatible["unknown"] == 10, report
    assert result.unknown_alerted == result.unknown, report
    assert result.unknown_alerted_by_runs + result.owed_alerts_sent >= result.unknown, report
    # The runs the killed workers left behind were run again to their end.
    assert sum(n for state, n in result.runs.items()
               if state in ("Completed", "Failed")) == 10, report


# --- the judgement of newsroom/orchestration/recovery.py, without servers -------------------------

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _run(owner: str | None, quiet_s: float) -> SimpleNamespace:
    labels = {"prefect.worker.name": owner} if owner else {}
    return SimpleNamespace(id=uuid4(), labels=labels, state=SimpleNamespace(
        timestamp=NOW - timedelta(seconds=quiet_s)))


def _worker(beat_s_ago: float | None, interval: int = 30) -> SimpleNamespace:
    return SimpleNamespace(heartbeat_interval_seconds=interval, last_heartbeat_time=(
        None if beat_s_ago is None else NOW - timedelta(seconds=beat_s_ago)))


def _dead_worker_name() -> str:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host = instance_name().split()[1]
    return f"newsroom {host} {child.pid} 12345 #1"


def test_a_worker_name_names_its_process_and_a_dead_process_is_recognised():
    me = instance_name()
    instance = parse_instance(me)
    assert instance is not None and instance.pid == os.getpid()
    assert instance.start == process_start_ticks(os.getpid())
    assert process_is_gone(instance) is False
    assert process_is_gone(parse_instance(_dead_worker_name())) is True
    # A reused pid (same pid, another start time) is another process: gone.
    assert process_is_gone(instance.__class__(instance.host, instance.pid,
                                              instance.start + 1)) is True
    # Another host: cannot tell from here.
    assert process_is_gone(instance.__class__("elsewhere", 1, 1)) is None
    assert parse_instance("NewsroomWorker 6f1c…") is None


def test_orphaned_runs_are_those_whose_worker_is_gone():
    me = instance_name()
    dead = _dead_worker_name()
    live_here = instance_name()  # this process: alive
    workers = {"remote ok": _worker(10), "remote silent": _worker(200),
               live_here: _worker(5)}
    run = _run(dead, quiet_s=1)
    # A dead process on this host: orphaned at once, however recent the run's state.
    assert "is gone" in judge(run, workers, me=me, executing=set(), now=NOW)
    # ... unless this worker executes it (it took it over a moment ago).
    assert judge(run, workers, me=me, executing={run.id}, now=NOW) is None
    # Our own runs, and runs of live workers, are not touched.
    assert judge(_run(me, 500), workers, me=me, executing=set(), now=NOW) is None
    assert judge(_run(live_here, 500), workers, me=me, executing=set(), now=NOW) is None
    assert judge(_run("remote ok", 500), workers, me=me, executing=set(), now=NOW) is None
    # Another host's worker: gone when its heartbeat is three intervals old ...
    assert "heartbeat" in judge(_run("remote silent", 500), workers, me=me,
                                executing=set(), now=NOW)
    # ... and the run itself has been quiet that long too.
    assert judge(_run("remote silent", 30), workers, me=me, executing=set(), now=NOW) is None
    assert "not registered" in judge(_run("remote unknown", 100), workers, me=me,
                                     executing=set(), now=NOW)
    # No worker on the run (died between claim and label): after the grace only.
    assert judge(_run(None, 30), workers, me=me, executing=set(), now=NOW) is None
    assert "no worker" in judge(_run(None, 91), workers, me=me, executing=set(), now=NOW)


@pytest.mark.slow
def test_a_worker_writes_its_name_on_its_runs_that_lack_it(prefect_server):
    """A run this worker executes whose label could not be written (a busy server) gets
    it on the next heartbeat, so no other worker takes it for an orphan."""
    import asyncio

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    from newsroom.orchestration.worker import NewsroomWorker

    @flow(name="chaos-label-probe")
    def probe() -> None:
        return None

    async def scenario() -> tuple[dict, dict, list]:
        async with get_client() as client:
            run = await client.create_flow_run(probe)
            await client.set_flow_run_state(run.id, Running(), force=True)
        async with NewsroomWorker(work_pool_name=f"chaos-labels-{uuid4().hex[:8]}") as worker:
            before = (await worker.client.read_flow_run(run.id)).labels or {}
            worker._scopes[run.id] = anyio.CancelScope()  # as if executing here
            recovered = await worker.recover_orphans()
            after = (await worker.client.read_flow_run(run.id)).labels or {}
            return before, after | {"me": worker.name}, recovered

    before, after, recovered = asyncio.run(scenario())
    assert before.get("prefect.worker.name") is None
    assert after["prefect.worker.name"] == after["me"]
    assert recovered == []


# --- what the next run does with publications a killed worker left "publishing" ------------

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "publishing"))


@pytest.fixture
def runtime(tmp_path: Path, standins_url: str, engine, monkeypatch):
    from publishing_testkit import delivery_runtime

    return delivery_runtime(tmp_path, standins_url, engine, monkeypatch,
                            secret_key="chaos-test-secret-key-0123456789-abcdef")


def _killed_mid_publication(runtime, campaign_id: str, slot: datetime):
    """The store as a worker killed while sending leaves it: the posts armed (claimed) and
    marked for sending (a request may have left). Killed before the mark, the posts are
    provably unsent and the next run just sends them
    (tests/publishing/test_publishing_takeover.py)."""
    from publishing_testkit import write_service_campaign

    from newsroom import store
    from newsroom.delivery import prepare_occurrence
    from newsroom.publishing import arm_occurrence
    from newsroom.timeutil import BERLIN

    write_service_campaign(runtime, campaign_id, slot)
    ready = prepare_occurrence(runtime, campaign_id, slot.astimezone(BERLIN).date())
    armed, _ = arm_occurrence(runtime.engine, occurrence_id=ready.occurrence_id)
    assert sorted(armed) == ["mastodon", "telegram"]
    with store.session_scope(runtime.engine) as session:
        claims = {p.id: p.claim_token for p in armed.values()}
        assert store.mark_sending(session, claims=claims) == set(claims)
    return ready


def _statuses(runtime, occurrence_id: int) -> dict[str, str]:
    from newsroom import store

    with store.session_scope(runtime.engine) as session:
        return {p.channel: store.get_publication(session, post_id=p.id,
                                                 channel=p.channel).status
                for p in store.current_posts(session, occurrence_id=occurrence_id)}


@pytest.mark.anyio
async def test_the_next_run_resends_where_harmless_and_reports_the_rest(runtime, standins):
    """Left "publishing": Mastodon (Idempotency-Key) is sent again, Telegram (no
    deduplication) becomes "unknown" with an alert — before, both were reported as
    "already publishing" and silently never published."""
    from newsroom.delivery import close_shared_client, deliver_occurrence

    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    ready = _killed_mid_publication(runtime, "absturz-mitten", slot)
    try:
        report = await deliver_occurrence(runtime, ready, None)
    finally:
        await close_shared_client()
    assert sorted(report.published) == ["mastodon"], report
    assert sorted(report.unknown) == ["telegram"], report
    assert _statuses(runtime, ready.occurrence_id) == {"mastodon": "published",
                                                       "telegram": "unknown"}
    assert len([p for p in standins.posts("mastodon") if "absturz-mitten" in str(p)]) == 1
    assert not [p for p in standins.posts("telegram") if "absturz-mitten" in str(p)]
    alerts = runtime.notifier_override.tagged("newsroom-alerts")
    assert any("(telegram)" in a["subject"] for a in alerts), alerts


@pytest.mark.anyio
async def test_too_late_to_repeat_an_interrupted_publication_it_is_reported(runtime,
                                                                            standins):
    """The worker was dead longer than the campaign's grace: the interrupted posts are not
    sent again (too late), and not left "publishing" either: "unknown", in the report."""
    from newsroom.delivery import close_shared_client, deliver_occurrence

    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    ready = _killed_mid_publication(runtime, "absturz-spaet", slot)
    try:
        report = await deliver_occurrence(runtime, ready, None)
    finally:
        await close_shared_client()
    assert sorted(report.unknown) == ["mastodon", "telegram"], report
    assert _statuses(runtime, ready.occurrence_id) == {"mastodon": "unknown",
                                                       "telegram": "unknown"}
    assert not [p for n in ("mastodon", "telegram") for p in standins.posts(n)
                if "absturz-spaet" in str(p)]
