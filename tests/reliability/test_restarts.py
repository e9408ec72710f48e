"""Restarts: the Prefect server, Newsroom's database and the approval page go away in the
middle of the work and come back. Nothing approved is lost, nothing is published twice,
and people are told when something could not be recorded.

Real servers throughout: ``prefect server start`` (its own, restarted on the same port
and database), PostgreSQL behind a TCP proxy this test cuts, uvicorn for the approval
page, the stand-in channels, an SMTP catcher.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "orchestration"))

from flow_testkit import (  # noqa: E402
    flow_stack,
    run_state,
    start_campaign,
    wait_done,
    wait_for_state,
    write_campaign,
)

from newsroom import store  # noqa: E402
from newsroom.orchestration.embedded import PrefectServer  # noqa: E402
from newsroom.orchestration.stack import WebServer, free_port, text_of  # noqa: E402
from newsroom.runtime import get_runtime  # noqa: E402
from newsroom.timeutil import BERLIN  # noqa: E402

pytestmark = pytest.mark.slow

NETWORKS = {"mastodon": "mastodon", "bluesky": "bluesky", "telegram": "telegram"}
LINK = re.compile(r"http://127\.0\.0\.1:\d+/freigabe/[A-Za-z0-9_\-\.]+")
APPROVER_MAIL = "buergermeisterin@example.org"  # kinder-jugend


@pytest.fixture
def own_prefect(tmp_path: Path) -> Iterator[PrefectServer]:
    """A Prefect server of this test's own (SQLite), so the test may stop and restart it;
    PREFECT_API_URL points at it meanwhile."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    server = PrefectServer(tmp_path / "prefect", port=free_port(), log_level="WARNING").start()
    holder = {"server": server}
    try:
        server.wait_healthy(timeout=120)
        # A restart on the same home keeps the credential (kept in the home, mode 0600).
        with temporary_settings({PREFECT_API_URL: server.api_url,
                                 PREFECT_API_AUTH_STRING: server.auth_string}):
            yield holder  # type: ignore[misc]
    finally:
        holder["server"].stop()


def _posts_by_campaign(stack, campaigns: list[str]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for channel, network in NETWORKS.items():
        for post in stack.standins.posts(network):
            text = str(post.get("text") or "")
            for campaign in campaigns:
                if f"[{campaign}]" in text:
                    counts[(campaign, channel)] = counts.get((campaign, channel), 0) + 1
    return counts


def _tagged_campaign(catalog: Path, campaign_id: str, slot: datetime, **kwargs) -> None:
    """write_campaign, with the campaign id in the text (to count posts per campaign)."""
    write_campaign(catalog, campaign_id, slot, channels="[mastodon, bluesky, telegram]",
                   **kwargs)
    path = catalog / f"{campaign_id}.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        'text: "Heute ist Aktionstag', f'text: "[{campaign_id}] Heute ist Aktionstag'),
        encoding="utf-8")


def _publications(campaign_id: str) -> dict[str, str]:
    from sqlmodel import select

    from newsroom.store import PostRecord, Publication

    with store.session_scope(get_runtime().engine) as session:
        rows = session.exec(select(Publication, PostRecord).join(
            PostRecord, PostRecord.id == Publication.post_id))  # type: ignore[arg-type]
        return {pub.channel: pub.status for pub, post in rows
                if post.to_rendered().campaign_id == campaign_id}


# --- (a) the Prefect server restarted while runs wait for their second --------------------

def test_prefect_server_restarted_while_runs_wait_for_their_second(own_prefect, tmp_path):
    campaigns = [f"neustart-prefect-{i}" for i in range(3)]
    with flow_stack(tmp_path / "stack", "restart-prefect") as stack:
        slot = (datetime.now(UTC) + timedelta(seconds=35)).replace(microsecond=0)
        day = slot.astimezone(BERLIN).date().isoformat()
        for campaign in campaigns:
            _tagged_campaign(stack.catalog, campaign, slot, pre_approved=True)
        runs = [start_campaign(stack, campaign, day) for campaign in campaigns]
        for run_id in runs:
            wait_for_state(run_id, {"Running"}, 60)

        # Down from well before the due second to after it: the runs publish while the
        # server is away, and must report to it once it is back.
        old = own_prefect["server"]
        old.stop()
        down_at = datetime.now(UTC)
        assert down_at < slot - timedelta(seconds=5), "the runs started too slowly"
        time.sleep(max(0.0, (slot - datetime.now(UTC)).total_seconds()) + 8)
        new = PrefectServer(old.home, port=old.port, log_level="WARNING").start()
        own_prefect["server"] = new
        new.wait_healthy(timeout=120)
        up_at = datetime.now(UTC)

        for run_id in runs:
            wait_done(run_id, timeout=180)
        counts = _posts_by_campaign(stack, campaigns)
        for campaign in campaigns:
            for channel in NETWORKS:
                assert counts.get((campaign, channel)) == 1, (campaign, channel, counts)
            assert set(_publications(campaign).values()) == {"published"}
        # The server really was away across the due second.
        assert down_at < slot < up_at


def test_prefect_outage_longer_than_the_worker_tolerates(own_prefect, tmp_path):
    """Prefect's worker gives up when its API stays away (here after ~20 s: no client
    retries, 5 s heartbeats, to keep the test short; by default after several minutes).
    A new worker starts in the same process; the run the old one had in hand is
    recognised as orphaned by its silent heartbeat, scheduled again and published once."""
    import os

    from prefect.client.orchestration import get_client
    from prefect.settings import (
        PREFECT_CLIENT_MAX_RETRIES,
        PREFECT_WORKER_HEARTBEAT_SECONDS,
        temporary_settings,
    )

    from newsroom.orchestration.stack import run_async

    campaign = "neustart-lange-pause"
    with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 0,
                             PREFECT_WORKER_HEARTBEAT_SECONDS: 5}), \
            flow_stack(tmp_path / "stack", "restart-long") as stack:
        slot = (datetime.now(UTC) + timedelta(seconds=75)).replace(microsecond=0)
        _tagged_campaign(stack.catalog, campaign, slot, pre_approved=True)
        run_id = start_campaign(stack, campaign, slot.astimezone(BERLIN).date().isoformat())
        wait_for_state(run_id, {"Running"}, 60)

        old = own_prefect["server"]
        old.stop()
        time.sleep(40)
        new = PrefectServer(old.home, port=old.port, log_level="WARNING").start()
        own_prefect["server"] = new
        new.wait_healthy(timeout=120)

        wait_done(run_id, timeout=240)
        counts = _posts_by_campaign(stack, [campaign])
        assert all(counts.get((campaign, c)) == 1 for c in NETWORKS), counts
        assert set(_publications(campaign).values()) == {"published"}

        async def evidence():
            async with get_client() as client:
                workers = await client.read_workers_for_work_pool("restart-long")
                states = await client.read_flow_run_states(run_id)
            return [w.name for w in workers], [s.message or "" for s in states]

        names, messages = run_async(evidence())
        ours = [n for n in names if f" {os.getpid()} " in n]
        assert len(ours) >= 2, names  # the worker that gave up, and its successor
        assert any("recovered by the Newsroom worker" in m and "heartbeat" in m
                   for m in messages), messages


# --- (c) the approval page restarted between GET and POST ---------------------------------

def test_approval_page_restarted_between_opening_and_deciding(prefect_server, tmp_path):
    with flow_stack(tmp_path / "stack", "restart-web", web=True) as stack:
        slot = (datetime.now(UTC) + timedelta(seconds=60)).replace(microsecond=0)
        day = slot.astimezone(BERLIN).date().isoformat()
        _tagged_campaign(stack.catalog, "neustart-seite", slot, deadline_before="10s")
        run_id = start_campaign(stack, "neustart-seite", day)
        wait_for_state(run_id, {"Suspended"}, 60)
        link = LINK.search(text_of(stack.mail.wait_for(APPROVER_MAIL, timeout=30)[0])).group(0)

        with httpx.Client(timeout=10) as browser:
            page = browser.get(link)
            assert page.status_code == 200
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            form = {"csrf": csrf, "decision": "approve", "comment": ""}

            # The page goes away between opening and clicking.
            port = int(link.split(":")[2].split("/")[0])
            stack.web.stop()
            with pytest.raises(httpx.TransportError):
                browser.post(link, data=form)
            assert run_state(run_id).name == "Suspended"

            # Back (a new process would be the same: the link and the form are signed, no
            # session lives in the server); the same click now works, once.
            restarted = WebServer(get_runtime(), port=port)
            restarted.start()
            try:
                done = browser.post(link, data=form)
                again = browser.post(link, data=form)
            finally:
                restarted.stop()
            assert done.status_code == 200, done.text
            assert "Danke" in done.text
            assert again.status_code in (200, 400, 409, 410)
            assert "Danke" not in again.text
            assert 'lang="de"' in again.text

        assert wait_for_state(run_id, {"Completed"}, 150) == "Completed"
        counts = _posts_by_campaign(stack, ["neustart-seite"])
        assert all(counts.get(("neustart-seite", c)) == 1 for c in NETWORKS), counts
        with store.session_scope(get_runtime().engine) as session:
            decided = [e for e in store.audit_trail(session, campaign_id="neustart-seite")
                       if e.action == "approval.decided"]
        assert len(decided) == 1


# --- (b) Newsroom's database away for 30 s while posts are due and people decide -----------

@pytest.mark.postgres
def test_newsroom_database_away_for_30_seconds(prefect_server, tmp_path):
    from chaos_testkit import CuttableProxy
    from pgkit import fresh_database
    from sqlalchemy.engine import make_url

    with fresh_database("newsroom_outage") as direct_url:
        direct = make_url(direct_url)
        proxy = CuttableProxy(direct.host or "127.0.0.1", direct.port or 5432).start()
        proxied = direct.set(port=proxy.port).render_as_string(hide_password=False)
        try:
            with flow_stack(tmp_path / "stack", "restart-db", database_url=proxied,
                            web=True) as stack:
                _database_outage(stack, proxy)
        finally:
            proxy.stop()


def _database_outage(stack, proxy) -> None:
    due = ["neustart-db-1", "neustart-db-2"]
    asked = "neustart-db-freigabe"
    now = datetime.now(UTC)
    # A campaign waiting for its approver, who opens the link before the outage ...
    slot_asked = (now + timedelta(seconds=100)).replace(microsecond=0)
    _tagged_campaign(stack.catalog, asked, slot_asked, deadline_before="20s")
    asked_run = start_campaign(stack, asked, slot_asked.astimezone(BERLIN).date().isoformat())
    # ... and two approved ones due in the middle of the outage.
    slot = (now + timedelta(seconds=40)).replace(microsecond=0)
    for campaign in due:
        _tagged_campaign(stack.catalog, campaign, slot, pre_approved=True)
    day = slot.astimezone(BERLIN).date().isoformat()
    runs = [start_campaign(stack, campaign, day) for campaign in due]
    for run_id in runs:
        wait_for_state(run_id, {"Running"}, 60)
    wait_for_state(asked_run, {"Suspended"}, 60)
    link = LINK.search(text_of(stack.mail.wait_for(APPROVER_MAIL, timeout=30)[0])).group(0)

    with httpx.Client(timeout=120) as browser:
        page = browser.get(link)
        assert page.status_code == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)

        # The database goes away 8 s before the posts' second (before they are armed),
        # for 30 s.
        time.sleep(max(0.0, (slot - timedelta(seconds=8) - datetime.now(UTC)).total_seconds()))
        proxy.cut()
        cut_at = time.monotonic()
        assert datetime.now(UTC) < slot - timedelta(seconds=3)

        # The approver clicks during the outage: the page waits for the database (up to a
        # minute) and records the decision once it is back.
        answers: list[httpx.Response] = []
        clicked = threading.Thread(target=lambda: answers.append(browser.post(
            link, data={"csrf": csrf, "decision": "approve", "comment": ""})))
        time.sleep(5)
        clicked.start()
        time.sleep(max(0.0, 30 - (time.monotonic() - cut_at)))
        proxy.restore()
        restored_at = time.monotonic()
        clicked.join(90)
        assert answers, "the decision made during the outage got no answer"
        assert answers[0].status_code == 200, answers[0].text
        assert "Danke" in answers[0].text
        assert restored_at - cut_at >= 29.5

    for run_id in runs:
        wait_done(run_id, timeout=120)
    assert wait_for_state(asked_run, {"Completed"}, 180) == "Completed"
    counts = _posts_by_campaign(stack, [*due, asked])
    for campaign in [*due, asked]:
        for channel in NETWORKS:
            assert counts.get((campaign, channel)) == 1, (campaign, channel, counts)
        assert set(_publications(campaign).values()) == {"published"}, campaign
    # The posts due during the outage went out when the database was back, not before
    # (nothing is sent that cannot be recorded) and within the campaign's grace.
    for post in [p for n in ("mastodon",) for p in stack.standins.posts(n)]:
        if any(f"[{c}]" in str(post.get("text")) for c in due):
            sent = datetime.fromisoformat(post["created_at"]["wall"])
            assert sent >= slot + timedelta(seconds=20), sent
