"""End to end: a campaign on a real Prefect server (test harness) with the Newsroom
worker, the approval e-mail on a real SMTP server (aiosmtpd), the link opened in headless
Chromium, "Freigeben" clicked, the run resumed, the posts at the stand-in channels.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
import pytest
from flow_testkit import (
    ON_POSTGRES,
    flow_stack,
    run_state,
    start_campaign,
    state_names,
    wait_for,
    wait_for_state,
    write_campaign,
)

from newsroom import store
from newsroom.orchestration.stack import WorkerThread, run_async, text_of
from newsroom.runtime import get_runtime
from newsroom.timeutil import BERLIN

pytestmark = pytest.mark.slow

POOL = "newsroom-e2e"
LINK = re.compile(r"http://127\.0\.0\.1:\d+/freigabe/[A-Za-z0-9_\-\.]+")
APPROVER_MAIL = "buergermeisterin@example.org"  # Bürgermeisterin Akdeniz: kinder-jugend


@pytest.fixture(scope="module")
def stack(prefect_server, tmp_path_factory, request):
    database_url = request.getfixturevalue("postgres_url") if ON_POSTGRES else None
    with flow_stack(tmp_path_factory.mktemp("e2e"), POOL, database_url=database_url,
                    web=True) as ns:
        yield ns


def test_campaign_approved_in_chromium_is_published_once(stack, browser):
    slot = (datetime.now(UTC) + timedelta(seconds=45)).replace(microsecond=0)
    day = slot.astimezone(BERLIN).date().isoformat()
    write_campaign(stack.catalog, "e2e-freigabe", slot)
    run_id = start_campaign(stack, "e2e-freigabe", day)

    assert wait_for_state(run_id, {"Suspended"}, 60) == "Suspended"
    message = stack.mail.wait_for(APPROVER_MAIL, timeout=30)[0]
    assert "Freigabe" in message["subject"]
    body = text_of(message)
    link = LINK.search(body).group(0)

    # A GET (as a mail scanner would do) changes nothing: the run stays suspended.
    assert httpx.get(link, timeout=10).status_code == 200
    time.sleep(1.5)
    assert run_state(run_id).name == "Suspended"

    page = browser.new_page()
    try:
        page.goto(link)
        assert page.locator("html").get_attribute("lang") == "de"
        assert "Heute ist Aktionstag in Darmstadt" in page.content()
        page.get_by_role("button", name="Freigeben").click()
        page.wait_for_selector("text=Danke!")
    finally:
        page.close()

    assert wait_for_state(run_id, {"Completed"}, 120) == "Completed"
    for network in ("mastodon", "bluesky"):
        posts = stack.standins.posts(network)
        assert len(posts) == 1, (network, posts)
        assert "Aktionstag" in str(posts[0])

    # The Prefect UI tells the story: the approval artifact's latest version names the
    # approver, the report names her and each post's lateness in ms; the log says who
    # decided, and the wait was no ERROR.
    approval_versions = _artifact_versions(f"approval-e2e-freigabe-{day}")
    assert len(approval_versions) == 2, approval_versions
    assert "Pending / ausstehend:** Bürgermeisterin Barbara Akdeniz" in approval_versions[0]
    assert "Bürgermeisterin Barbara Akdeniz | freigegeben" in approval_versions[-1]
    report = _artifact_versions(f"report-e2e-freigabe-{day}")[-1]
    assert "approved by:** Bürgermeisterin Barbara Akdeniz" in report, report
    assert re.search(r"published \(\+\d+ ms after its time\)", report), report
    # The live posts' links work in the demo: they are the stand-ins' pages of the posts.
    post_pages = re.findall(r"\(<(http://127\.0\.0\.1:\d+/_standin/post\?url=[^>]+)>\)",
                            report)
    assert len(post_pages) == 2, report
    for url in post_pages:
        page_of_post = httpx.get(url, timeout=10)
        assert page_of_post.status_code == 200 and "Aktionstag" in page_of_post.text, url
    lines = _wait_for_log(run_id, "Barbara Akdeniz approve")
    assert lines[-1][0] == "INFO"
    _assert_waits_logged_as_info(run_id)
    _open_artifacts_tab(browser, run_id, _artifacts(f"approval-e2e-freigabe-{day}")[-1].id,
                        "Approved / freigegeben: Bürgermeisterin Barbara Akdeniz")

    runtime = get_runtime()
    with store.session_scope(runtime.engine) as session:
        actions = [e.action for e in store.audit_trail(session, campaign_id="e2e-freigabe")]
    for expected in ("approval.requested", "approval.notified", "approval.viewed",
                     "approval.decided", "approval.settled", "approval.resumed",
                     "publication.published"):
        assert expected in actions, actions
    # Exactly one approval e-mail although the run ran twice (before and after resuming).
    assert len(stack.mail.to(APPROVER_MAIL)) == 1


def _decide_by_link(link: str, decision: str, comment: str) -> None:
    """What the approval page's form sends (its CSRF cookie and field included)."""
    with httpx.Client(timeout=10) as http:
        page = http.get(link)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        answer = http.post(link, data={"csrf": csrf, "decision": decision, "comment": comment})
        assert answer.status_code == 200, answer.text


def test_every_decision_shows_on_the_run_in_prefect(stack):
    """Two signatures needed: the first, while the run is suspended, is a new version of
    the approval artifact (who, what, comment, 1 of 2) and an INFO line in the run's log,
    written by the approval page; the second settles the gate and the resumed run shows
    it. No ERROR line for the waits."""
    slot = (datetime.now(UTC) + timedelta(minutes=30)).replace(microsecond=0)
    day = slot.astimezone(BERLIN).date().isoformat()
    write_campaign(stack.catalog, "e2e-zwei", slot, deadline_before="10m",
                   channels="[telegram]")
    path = stack.catalog / "e2e-zwei.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "    - portfolio: kinder-jugend\n  mode: one",
        "    - portfolio: finanzen\n    - portfolio: umwelt-klima\n  mode: all"),
        encoding="utf-8")
    run_id = start_campaign(stack, "e2e-zwei", day)
    assert wait_for_state(run_id, {"Suspended"}, 60) == "Suspended"
    key = f"approval-e2e-zwei-{day}"
    links = {person: LINK.search(text_of(stack.mail.wait_for(address, timeout=30)[-1]))
             .group(0) for person, address in (("feldmann", "stadtkaemmerer@example.org"),
                                               ("okafor", "umweltdezernat@example.org"))}
    assert "0 von / of 2" in _artifact_versions(key)[-1]

    _decide_by_link(links["feldmann"], "approve", "Zahlen geprüft: passt.")
    versions = _artifact_versions(key)
    assert len(versions) == 2, versions
    assert "1 von / of 2" in versions[-1]
    assert ("Stadtkämmerer Jonas Feldmann | freigegeben / approved | "
            "Zahlen geprüft: passt. | link |") in versions[-1], versions[-1]
    line = _wait_for_log(run_id, "Jonas Feldmann approve")
    assert line[0][0] == "INFO" and "Zahlen geprüft: passt." in line[0][1], line
    assert "1 of 2 needed" in line[0][1]
    assert run_state(run_id).name == "Suspended"

    _decide_by_link(links["okafor"], "reject", "Bitte erst nach der Ratssitzung.")
    assert wait_for_state(run_id, {"Completed"}, 60) == "Completed"
    versions = _artifact_versions(key)
    assert len(versions) == 3, versions
    assert "Outcome:** rejected" in versions[-1]
    assert "Stadträtin Miriam Okafor | abgelehnt / rejected | Bitte erst nach der " \
           "Ratssitzung." in versions[-1], versions[-1]
    assert "Stadtkämmerer Jonas Feldmann | freigegeben" in versions[-1]
    assert _wait_for_log(run_id, "Miriam Okafor reject")[0][0] == "INFO"
    _assert_waits_logged_as_info(run_id)


def _artifacts(key: str) -> list:
    """Every version of the artifact ``key``, oldest first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    async def read() -> list:
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                sort=ArtifactSort.CREATED_DESC)
        return list(reversed(found))

    return run_async(read())


def _artifact_versions(key: str) -> list[str]:
    """The Markdown of every version of the artifact ``key``, oldest first, without the
    escaping backslashes (as the UI shows it)."""
    return [str(a.data).replace("\\", "") for a in _artifacts(key)]


def _run_logs(run_id: UUID) -> list[tuple[str, str]]:
    """(level name, message) of every log line of the run in Prefect, oldest first."""
    import logging

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async def read() -> list[tuple[str, str]]:
        async with get_client() as client:
            logs = await client.read_logs(log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[run_id])))
        return [(logging.getLevelName(log.level), log.message)
                for log in sorted(logs, key=lambda log: log.timestamp)]

    return run_async(read())


def _wait_for_log(run_id: UUID, text: str) -> list[tuple[str, str]]:
    """The run's log lines containing ``text``, once there is one (logs arrive in batches)."""
    return wait_for(lambda: [line for line in _run_logs(run_id) if text in line[1]], 30)


def _assert_waits_logged_as_info(run_id: UUID) -> None:
    """The suspension's "Finished in state Suspended" is INFO; no line of the run is ERROR."""
    suspended = _wait_for_log(run_id, "Finished in state Suspended")
    assert {level for level, _ in suspended} == {"INFO"}, suspended
    errors = [line for line in _run_logs(run_id) if line[0] in ("ERROR", "CRITICAL")]
    assert not errors, errors


def _open_artifacts_tab(browser, run_id: UUID, artifact_id: UUID, text: str) -> None:
    """The Prefect UI (basic auth, as an office member signs in once) on the run's
    Artifacts tab: the artifact listed there, opened, has a list item with ``text``."""
    import base64

    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL

    ui = PREFECT_API_URL.value().removesuffix("/api")
    token = base64.b64encode(PREFECT_API_AUTH_STRING.value().encode()).decode()
    # Tall: the tab's list of artifacts renders only what is in view.
    context = browser.new_context(viewport={"width": 1280, "height": 2400})
    context.add_init_script(f"localStorage.setItem('prefect-password', '{token}')")
    page = context.new_page()
    try:
        page.goto(f"{ui}/runs/flow-run/{run_id}")
        page.locator("li.p-tab#artifacts").click(timeout=30_000)
        page.locator(f'a[href="/artifacts/artifact/{artifact_id}"]').click(timeout=30_000)
        page.locator("article.markdown-renderer li", has_text=text).first.wait_for(
            timeout=30_000)
    finally:
        context.close()


def _resume(run_id: UUID, run_input: dict) -> None:
    from prefect.flow_runs import aresume_flow_run

    run_async(aresume_flow_run(run_id, run_input=run_input))


def test_admin_decides_in_the_prefect_ui_form(stack):
    """The Prefect UI's resume form: without a name nothing is decided; with one, the
    decision is recorded as the admin's (via prefect_ui) and nothing is published."""
    slot = (datetime.now(UTC) + timedelta(minutes=30)).replace(microsecond=0)
    day = slot.astimezone(BERLIN).date().isoformat()
    write_campaign(stack.catalog, "e2e-admin", slot, deadline_before="10m",
                   channels="[telegram]")
    run_id = start_campaign(stack, "e2e-admin", day)
    wait_for_state(run_id, {"Suspended"}, 60)
    before = len(stack.standins.posts("telegram"))

    _resume(run_id, {"decision": "approve", "comment": "", "admin": ""})
    time.sleep(1.0)
    assert wait_for_state(run_id, {"Suspended"}, 60) == "Suspended"

    _resume(run_id, {"decision": "reject", "comment": "Termin verschoben",
                     "admin": "Katrin Wolf"})
    assert wait_for_state(run_id, {"Completed"}, 60) == "Completed"
    assert "not published" in (run_state(run_id).message or "")
    assert len(stack.standins.posts("telegram")) == before

    with store.session_scope(get_runtime().engine) as session:
        events = store.audit_trail(session, campaign_id="e2e-admin")
    admin = [e for e in events if e.action == "approval.admin_decided"]
    assert len(admin) == 1
    assert admin[0].actor == "admin:wolf"
    assert admin[0].detail["via"] == "prefect_ui"
    assert admin[0].detail["comment"] == "Termin verschoben"
    latest = _artifact_versions(f"approval-e2e-admin-{day}")[-1]
    assert ("Katrin Wolf (Admin) | abgelehnt / rejected | Termin verschoben | prefect_ui |"
            in latest), latest
    assert _wait_for_log(run_id, "Katrin Wolf (admin) reject")[0][0] == "INFO"
    # The approver was asked once, although the run started three times.
    assert len(stack.mail.to(APPROVER_MAIL)) >= 1
    notified = [e for e in events if e.action == "approval.notified"]
    assert len(notified) == 1
    # In Prefect: the approval request ran once; on each resume it was "Cached".
    states = sorted(run_async(_task_states(run_id, "request approval")))
    assert states == ["Cached", "Cached", "Completed"], states


def test_an_admin_decides_one_step_of_a_chain_in_the_prefect_ui_form(stack):
    """A two-step chain: the admin's Resume input decides the step the gate stands at (the
    form says which); the run waits on for the next step, whose approver is mailed then;
    the replayed input of the first round decides nothing again."""
    slot = (datetime.now(UTC) + timedelta(minutes=30)).replace(microsecond=0)
    day = slot.astimezone(BERLIN).date().isoformat()
    write_campaign(stack.catalog, "e2e-steps-admin", slot, deadline_before="10m",
                   channels="[telegram]")
    path = stack.catalog / "e2e-steps-admin.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "  approvers:\n    - portfolio: kinder-jugend\n  mode: one\n",
        "  steps:\n    - name: Jugenddezernat\n      approvers: [{portfolio: kinder-jugend}]\n"
        "    - name: Schlussredaktion\n      approvers: [{person: hoffmann}]\n"),
        encoding="utf-8")
    run_id = start_campaign(stack, "e2e-steps-admin", day)
    assert wait_for_state(run_id, {"Suspended"}, 60) == "Suspended"
    assert not stack.mail.to("redaktion@example.org")
    first = _artifact_versions(f"approval-e2e-steps-admin-{day}")[-1]
    assert "Stufe / step:** 1 von / of 2" in first, first

    _resume(run_id, {"decision": "approve", "comment": "vorab abgestimmt", "admin": "wolf"})
    # The step is decided, the run waits for the next one (suspended again, not resumed
    # to the end), and the next step's approver is mailed.
    message = stack.mail.wait_for("redaktion@example.org", timeout=60)[0]
    assert "(Stufe 2 von 2)" in message["subject"]
    wait_for(lambda: run_state(run_id).name == "Suspended"
             and _artifact_versions(f"approval-e2e-steps-admin-{day}")[-1] != first, 60)
    latest = _artifact_versions(f"approval-e2e-steps-admin-{day}")[-1]
    assert "Stufe / step:** 2 von / of 2" in latest, latest

    _resume(run_id, {"decision": "approve", "comment": "", "admin": "demir"})
    assert wait_for_state(run_id, {"Completed"}, 60) == "Completed"
    assert "approved" in (run_state(run_id).message or "")
    with store.session_scope(get_runtime().engine) as session:
        events = store.audit_trail(session, campaign_id="e2e-steps-admin")
    decided = [(e.actor, e.detail["step"]) for e in events
               if e.action == "approval.admin_decided"]
    assert decided == [("admin:wolf", 0), ("admin:demir", 1)]
    assert [e.action for e in events].count("approval.settled") == 1


async def _task_states(run_id: UUID, prefix: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async with get_client() as client:
        runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[run_id])))
    return [r.state.name for r in runs if r.name.startswith(prefix) and r.state]


def test_edited_campaign_voids_the_link_and_asks_again(stack):
    """The campaign file is edited while its run waits: the sweeper resumes the run, which
    renders the new text and asks again; the first link is refused with a clear page."""
    from newsroom.orchestration.gate import resume_waiting_runs

    slot = (datetime.now(UTC) + timedelta(minutes=40)).replace(microsecond=0)
    day = slot.astimezone(BERLIN).date().isoformat()
    write_campaign(stack.catalog, "e2e-edit", slot, deadline_before="10m", channels="[website]")
    run_id = start_campaign(stack, "e2e-edit", day)
    wait_for_state(run_id, {"Suspended"}, 60)
    first = [m for m in stack.mail.to(APPROVER_MAIL) if "e2e-edit" in str(m["subject"])]
    assert len(first) == 1
    old_link = LINK.search(text_of(first[0])).group(0)

    path = stack.catalog / "e2e-edit.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("Aktionstag", "Familientag"),
                    encoding="utf-8")
    resumed = run_async(resume_waiting_runs(get_runtime()))
    assert str(run_id) in resumed

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        mails = [m for m in stack.mail.to(APPROVER_MAIL) if "e2e-edit" in str(m["subject"])]
        if len(mails) == 2:
            break
        time.sleep(0.3)
    assert len(mails) == 2
    new_link = LINK.search(text_of(mails[1])).group(0)
    assert new_link != old_link
    assert wait_for_state(run_id, {"Suspended"}, 60) == "Suspended"

    old_page = httpx.get(old_link, timeout=10)
    assert old_page.status_code == 410
    assert "geändert" in old_page.text
    new_page = httpx.get(new_link, timeout=10)
    assert new_page.status_code == 200
    assert "Familientag" in new_page.text


def test_a_failed_run_alerts_the_office_through_the_prefect_automation(stack):
    """Prefect automation (flow run Failed) → Custom Webhook block → /hooks/alert →
    apprise → e-mail to the communications office."""
    office = "kommunikation@example.org"
    before = len(stack.mail.to(office))
    run_id = start_campaign(stack, "gibt-es-nicht", "2027-03-01")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = run_state(run_id)
        if state is not None and state.is_failed():
            break
        time.sleep(0.3)
    assert run_state(run_id).is_failed()
    alerts = stack.mail.wait_for(office, count=before + 1, timeout=90)
    alert = alerts[-1]
    assert "gibt-es-nicht" in str(alert["subject"])
    assert "Failed" in str(alert["subject"])


def test_the_alert_hook_refuses_a_missing_or_wrong_token(stack):
    response = httpx.post(f"{stack.web.url}/hooks/alert", json={"subject": "x", "body": "y"},
                          timeout=10)
    assert response.status_code == 401
    response = httpx.post(f"{stack.web.url}/hooks/alert", json={"subject": "x", "body": "y"},
                          headers={"Authorization": "Bearer falsch"}, timeout=10)
    assert response.status_code == 401


def test_a_stopping_worker_hands_its_waiting_run_back(stack):
    """The worker stops while a run waits for its post's second: the run goes back to
    Scheduled — never through Crashed, so the alert automation mails nobody — the next
    worker takes it, the post goes out once, on time."""
    office = "kommunikation@example.org"
    alerts_before = len(stack.mail.to(office))
    slot = (datetime.now(UTC) + timedelta(seconds=25)).replace(microsecond=0)
    day = slot.astimezone(BERLIN).date().isoformat()
    write_campaign(stack.catalog, "e2e-neustart", slot, channels="[telegram]",
                   pre_approved=True)
    run_id = start_campaign(stack, "e2e-neustart", day)
    wait_for_state(run_id, {"Running"}, 30)
    time.sleep(2)  # rendering done, the flow waits for the slot
    stack.worker.stop()
    assert run_state(run_id).name == "Scheduled"
    assert "Crashed" not in state_names(run_id)
    stack.worker = WorkerThread(POOL, poll_seconds=0.5)
    stack.worker.start()
    assert wait_for_state(run_id, {"Completed"}, 90) == "Completed"
    # By now an alert for the stop would have come (the failure alert above takes seconds).
    assert len(stack.mail.to(office)) == alerts_before
    posts = [p for p in stack.standins.posts("telegram") if "e2e-neustart" in str(p)
             or "Aktionstag" in str(p)]
    mine = [p for p in posts if datetime.fromisoformat(p["created_at"]["wall"]) >= slot]
    assert len(mine) == 1, posts


def test_running_campaigns_share_one_suspension_watcher(stack):
    """Three runs waiting for their second in the worker: one shared watcher of external
    suspensions (newsroom/orchestration/suspension.py), not Prefect's thread, loop and websocket
    per run."""
    import threading

    slot = (datetime.now(UTC) + timedelta(seconds=20)).replace(microsecond=0)
    day = slot.astimezone(BERLIN).date().isoformat()
    runs = []
    for n in range(3):
        write_campaign(stack.catalog, f"e2e-gemeinsam-{n}", slot, channels="[telegram]",
                       pre_approved=True)
        runs.append(start_campaign(stack, f"e2e-gemeinsam-{n}", day))
    for run_id in runs:
        wait_for_state(run_id, {"Running"}, 30)
    names = [thread.name for thread in threading.enumerate()]
    assert names.count("newsroom-suspension-observer") == 1, names
    assert not [name for name in names if "observer_thread" in name], names
    for run_id in runs:
        assert wait_for_state(run_id, {"Completed"}, 90) == "Completed"


def test_a_cancel_in_the_prefect_ui_stops_a_run_in_the_worker_before_its_second(stack):
    """An admin cancels a run that waits in the worker for its post's second, as the
    Prefect UI does (Cancelling): the worker stops it within seconds, it ends Cancelled,
    nothing is published — and a stop of the worker afterwards does not bring it back."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    slot = (datetime.now(UTC) + timedelta(seconds=20)).replace(microsecond=0)
    day = slot.astimezone(BERLIN).date().isoformat()
    write_campaign(stack.catalog, "e2e-abbruch", slot, channels="[telegram]",
                   pre_approved=True)
    run_id = start_campaign(stack, "e2e-abbruch", day)
    wait_for_state(run_id, {"Running"}, 30)
    time.sleep(2)  # rendering done, the flow waits for the slot

    async def cancel() -> None:
        async with get_client() as client:
            await client.set_flow_run_state(run_id, Cancelling(message="Admin: falscher Text"))

    cancelled_at = time.monotonic()
    run_async(cancel())
    assert wait_for_state(run_id, {"Cancelled"}, 15) == "Cancelled"
    assert time.monotonic() - cancelled_at < 10
    assert "Crashed" not in state_names(run_id)
    time.sleep(max(0.0, (slot - datetime.now(UTC)).total_seconds()) + 5)
    late = [p for p in stack.standins.posts("telegram")
            if datetime.fromisoformat(p["created_at"]["wall"]) >= slot - timedelta(seconds=1)]
    assert late == [], late
    stack.worker.stop()
    stack.worker = WorkerThread(POOL, poll_seconds=0.5)
    stack.worker.start()
    assert run_state(run_id).name == "Cancelled"


def test_approved_far_ahead_the_run_ends_and_a_publication_run_posts_on_time(stack):
    """Approved long before the slot: the run ends (nothing waits for days) after
    scheduling a publication run shortly before the slot; that run finds the gate
    approved — it does not wait again — and posts once, not early."""
    settings = get_runtime().settings
    saved = settings.publish_lead_seconds, settings.publish_preroll_seconds
    settings.publish_lead_seconds, settings.publish_preroll_seconds = 20.0, 5.0
    try:
        slot = (datetime.now(UTC) + timedelta(seconds=50)).replace(microsecond=0)
        day = slot.astimezone(BERLIN).date().isoformat()
        write_campaign(stack.catalog, "e2e-spaeter", slot, deadline_before="10s",
                       channels="[website]")
        run_id = start_campaign(stack, "e2e-spaeter", day)
        wait_for_state(run_id, {"Suspended"}, 60)
        _resume(run_id, {"decision": "approve", "comment": "passt", "admin": "Katrin Wolf"})
        assert wait_for_state(run_id, {"Completed"}, 60) == "Completed"
        assert "publishes at" in (run_state(run_id).message or "")

        publication_run = run_async(_publication_run(run_id))
        assert publication_run is not None
        assert wait_for_state(publication_run, {"Completed"}, 120) == "Completed"
        history = state_names(publication_run)
        assert "Suspended" not in history, history
        posts = [p for p in stack.standins.posts("cms") if "Aktionstag" in str(p)
                 and datetime.fromisoformat(p["created_at"]["wall"]) >= slot]
        assert len(posts) == 1, posts
    finally:
        settings.publish_lead_seconds, settings.publish_preroll_seconds = saved


async def _publication_run(first_run: UUID) -> UUID | None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    async with get_client() as client:
        first = await client.read_flow_run(first_run)
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
            tags=FlowRunFilterTags(all_=["publish"])))
    for run in runs:
        if run.parameters.get("campaign_id") == first.parameters["campaign_id"]:
            return run.id
    return None
