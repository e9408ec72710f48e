"""Who may decide through Prefect: a registry person whose office role allows it.

Prefect's open-source server has no users: with the API credential anyone can resume a
run and type any name. The security test approved a campaign with ``"admin": "Hanno Benz"``
and started a crisis through the API. Now the name must be a person of
registry/people.yaml whose ``roles`` allow the decision (newsroom/catalog/roles.py).

Fast: the rule itself and the registry's validation of roles (file:line errors).
Slow (real Prefect server with authentication on, the Newsroom worker, stand-in channels,
SMTP catcher): a waiting campaign run resumed through Prefect's API in the name of a
Magistrat member without the role, and of nobody, is refused — logged in the run,
audited, the run waits again, nothing published — and then an office admin's resume
decides it; the CLI applies the same rule; a crisis created through the API in the name
of someone without the role publishes nothing; a request decision through the Resume
form is refused the same way, and an office editor's decides it.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from click.testing import CliRunner
from flow_testkit import (
    create_run,
    flow_stack,
    run_state,
    start_campaign,
    wait_for,
    wait_for_state,
    write_campaign,
)
from requests_testkit import copy_catalog

from newsroom import crisis, store
from newsroom import requests as domain
from newsroom.catalog.roles import NotPermitted, Permission, authorize
from newsroom.catalog.validation import load_catalog
from newsroom.cli import cli
from newsroom.orchestration.stack import run_async
from newsroom.runtime import get_runtime
from newsroom.store import requests_crud as crud
from newsroom.timeutil import BERLIN

POOL = "newsroom-security-roles"


# --- the rule and the registry (fast) --------------------------------------------------


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    report = load_catalog(copy_catalog(tmp_path_factory.mktemp("roles") / "campaigns"))
    assert report.catalog is not None and report.ok
    return report.catalog


def test_the_shipped_registry_names_office_admins_of_the_amt(shipped) -> None:
    index = shipped.index
    admins = [p.id for p in index.directory.people if "office-admin" in p.roles]
    assert admins == ["wolf", "demir"]
    assert all(not index.people[a].magistrat for a in admins)
    assert "wolf" not in [p.id for p in index.group("magistrat")]  # never asked to sign


@pytest.mark.parametrize("who", ["wolf", "Katrin Wolf", "  katrin   WOLF ", "admin:wolf",
                                 "Leiterin des Amts für Kommunikation Katrin Wolf"])
def test_an_office_admin_is_found_by_id_or_name(shipped, who: str) -> None:
    for permission in Permission:
        assert authorize(shipped.index, who, permission).id == "wolf"


@pytest.mark.parametrize(("who", "permission", "message"), [
    ("Hanno Benz", Permission.DECIDE_GATE, "benz (Hanno Benz) may not decide an approval"),
    ("benz", Permission.START_CRISIS, "may not start a crisis message (roles: none)"),
    ("akdeniz", Permission.DECIDE_REQUEST, "may not decide a request"),
    ("hoffmann", Permission.DECIDE_GATE, "roles: office-editor"),
    ("hoffmann", Permission.START_CRISIS, "may not start a crisis"),
    ("Anna Admin", Permission.DECIDE_GATE, "'Anna Admin' is no person in registry"),
    ("prefect-ui", Permission.START_CRISIS, "is no person"),
    ("", Permission.DECIDE_GATE, "nobody named"),
    ("admin:", Permission.DECIDE_REQUEST, "nobody named"),
])
def test_anyone_else_is_refused(shipped, who: str, permission: Permission,
                                message: str) -> None:
    with pytest.raises(NotPermitted, match=re.escape(message)) as refused:
        authorize(shipped.index, who, permission)
    assert "wolf" in str(refused.value)  # says who may


def test_an_office_editor_decides_requests_only(shipped) -> None:
    assert authorize(shipped.index, "Ina Hoffmann", Permission.DECIDE_REQUEST).id == "hoffmann"


def test_an_unknown_role_is_a_validation_error_at_its_line(tmp_path: Path) -> None:
    root = copy_catalog(tmp_path / "campaigns")
    people = root / "registry" / "people.yaml"
    lines = people.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if "roles: [office-editor]" in line)
    lines[index] = lines[index].replace("office-editor", "office-editr")
    people.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = load_catalog(root)
    [issue] = [i for i in report.errors if "role" in i.message]
    assert issue.file.endswith("registry/people.yaml") and issue.line == index + 1
    assert issue.message == "unknown role 'office-editr'"
    assert "did you mean 'office-editor'?" in issue.hint
    assert report.catalog is None  # a broken registry is not used


# --- through Prefect (slow) ----------------------------------------------------------


@pytest.fixture(scope="module")
def stack(prefect_server, tmp_path_factory):
    with flow_stack(tmp_path_factory.mktemp("roles-stack"), POOL) as ns:
        yield ns


def _resume(run_id: UUID, run_input: dict) -> None:
    from prefect.flow_runs import aresume_flow_run

    run_async(aresume_flow_run(run_id, run_input=run_input))


def _still_waiting(run_id: UUID) -> None:
    time.sleep(1.0)  # the resumed run replays its inputs and suspends again
    assert wait_for_state(run_id, {"Suspended"}, 60) == "Suspended"


def _run_logs(run_id: UUID) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async def read() -> str:
        async with get_client() as client:
            logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(
                any_=[run_id])))
        return "\n".join(log.message for log in logs)

    return run_async(read())


def _resume_description(run_id: UUID) -> str:
    """The Markdown the Prefect UI shows above the Resume form now."""
    from prefect.client.orchestration import get_client

    async def read() -> str:
        async with get_client() as client:
            run = await client.read_flow_run(run_id)
            keyset = run.state.state_details.run_input_keyset
            return await client.read_flow_run_input(run_id, keyset["description"])

    return run_async(read())


def _audit(campaign_id: str) -> list[store.AuditEvent]:
    with store.session_scope(get_runtime().engine) as session:
        return store.audit_trail(session, campaign_id=campaign_id)


@pytest.mark.slow
def test_a_resume_by_someone_without_the_role_is_refused_and_the_run_waits(stack):
    slot = (datetime.now(UTC) + timedelta(minutes=30)).replace(microsecond=0)
    day = slot.astimezone(BERLIN).date().isoformat()
    write_campaign(stack.catalog, "sec-rolle", slot, deadline_before="10m",
                   channels="[telegram]")
    run_id = start_campaign(stack, "sec-rolle", day)
    assert wait_for_state(run_id, {"Suspended"}, 60) == "Suspended"
    before = len(stack.standins.posts("telegram"))

    # The attack of the security test: a Magistrat member's name typed into the form.
    _resume(run_id, {"decision": "approve", "comment": "", "admin": "Hanno Benz"})
    _still_waiting(run_id)
    _resume(run_id, {"decision": "approve", "comment": "", "admin": "Unbekannt"})
    _still_waiting(run_id)

    refused = [e for e in _audit("sec-rolle") if e.action == "approval.admin_refused"]
    assert [e.detail["named"] for e in refused] == ["Hanno Benz", "Unbekannt"]
    assert all(e.actor == "refused:prefect_ui" for e in refused)
    assert "may not decide an approval" in refused[0].detail["reason"]
    actions = [e.action for e in _audit("sec-rolle")]
    assert "approval.admin_decided" not in actions and "approval.settled" not in actions
    assert len(stack.standins.posts("telegram")) == before
    logs = wait_for(lambda: (text := _run_logs(run_id)).count("admin input refused") >= 2
                    and text)
    assert "benz (Hanno Benz) may not decide" in logs
    assert "Nicht angenommen / refused" in _resume_description(run_id)

    # The command line applies the same rule; the run goes on waiting.
    cli_refused = CliRunner().invoke(cli, ["approve", "sec-rolle", day, "--as", "benz"])
    assert cli_refused.exit_code == 1 and "may not decide" in cli_refused.output
    assert [e.detail["via"] for e in _audit("sec-rolle")
            if e.action == "approval.admin_refused"] == ["prefect_ui", "prefect_ui", "cli"]
    assert run_state(run_id).name == "Suspended"

    # An office admin of the Amt für Kommunikation decides it.
    _resume(run_id, {"decision": "approve", "comment": "telefonisch bestätigt",
                     "admin": "Katrin Wolf"})
    assert wait_for_state(run_id, {"Completed"}, 60) == "Completed"
    assert "approved; publishes at" in (run_state(run_id).message or "")
    [decided] = [e for e in _audit("sec-rolle") if e.action == "approval.admin_decided"]
    assert decided.actor == "admin:wolf" and decided.detail["named"] == "Katrin Wolf"
    # Each refusal was audited once, although the run replayed the inputs at each resume.
    assert len([e for e in _audit("sec-rolle") if e.action == "approval.admin_refused"]) == 3


@pytest.mark.slow
def test_a_crisis_created_through_the_api_without_the_role_publishes_nothing(stack):
    runtime = get_runtime()
    marker = "Gefaelschter Chemieunfall Omega"
    for started_by in ("Hanno Benz", ""):
        run_id = create_run(stack.deployments["crisis"], {
            "campaign_id": "unwetterwarnung", "ereignis": marker, "started_by": started_by})
        deadline = time.monotonic() + 60
        while not (state := run_state(run_id)) or not state.is_final():
            assert time.monotonic() < deadline, "the crisis run did not end"
            time.sleep(0.3)
        assert state.is_failed() and "refused, nothing published" in state.message
    time.sleep(1.0)
    for network in ("mastodon", "bluesky", "facebook", "telegram", "cms"):
        assert not [p for p in stack.standins.posts(network) if marker in str(p)], network
    assert not [m for m in list(stack.mail.messages) if marker in str(m)]
    assert not crisis.active_crisis(runtime.engine)
    refused = [e for e in _audit("unwetterwarnung") if e.action == "crisis.refused"]
    assert [e.detail["named"] for e in refused] == ["Hanno Benz", ""]
    assert "crisis.started" not in [e.action for e in _audit("unwetterwarnung")]

    cli_refused = CliRunner().invoke(cli, ["crisis", "start", "unwetterwarnung", "--direct",
                                           "--set", f"ereignis={marker}", "--by", "benz"])
    assert cli_refused.exit_code == 1 and "not started" in cli_refused.output
    assert not crisis.active_crisis(runtime.engine)


@pytest.mark.slow
def test_a_request_decided_in_the_resume_form_needs_the_role(stack):
    from newsroom.orchestration.request_runs import start_request_run

    runtime = get_runtime()
    requester = domain.requester_for(runtime.catalog, "portfolio", "sport")
    form = domain.RequestForm(
        title="Sportfest", topic="Sport",
        date_from=(datetime.now(BERLIN) + timedelta(days=12)).date().isoformat(),
        channels=("mastodon",), text="Sportfest am Sonntag: kommt vorbei!",
        contact_name="Jo", contact_email="jo@example.org")
    request_id = domain.submit_request(runtime.engine, runtime.settings.data_dir, requester,
                                       domain.check_request(form, runtime.catalog),
                                       invite_nonce="roles-test")
    # fresh: a run key of its own (request ids start at 1 in every module's store, and the
    # session's Prefect server would hand back another module's run for the same key).
    run_id = UUID(run_async(start_request_run(request_id, runtime, fresh=True)))
    assert wait_for_state(run_id, {"Suspended"}, 90) == "Suspended"

    _resume(run_id, {"decision": "decline", "text": "Nein.", "office_member": "Hanno Benz"})
    _still_waiting(run_id)
    with store.session_scope(runtime.engine) as session:
        assert crud.get_request(session, request_id=request_id).status == "submitted"
    events = _audit(crud.audit_key(request_id))
    [refused] = [e for e in events if e.action == "request.decision_refused"]
    assert refused.detail["named"] == "Hanno Benz" and refused.actor == "refused:prefect_ui"
    assert "request.declined" not in [e.action for e in events]

    _resume(run_id, {"decision": "decline", "text": "Das Sportfest ist schon geplant.",
                     "office_member": "hoffmann"})
    assert wait_for_state(run_id, {"Completed"}, 60) == "Completed"
    with store.session_scope(runtime.engine) as session:
        row = crud.get_request(session, request_id=request_id)
    assert (row.status, row.decided_by) == ("declined", "admin:hoffmann")
