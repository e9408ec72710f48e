"""The Prefect API keeps strangers out: every route, the websockets and the UI ask for the
credential that Newsroom starts its server with (newsroom.orchestration.embedded.PrefectServer, the
same
class `newsroom up` runs).

Found by the security test of the landed stack: one unauthenticated POST resumed an
approval that still needed 6 of 7 signatures, another started the crisis deployment, a
third read the alert hook's token out of a Secret block. Here each of those requests is
sent without the credential and with a wrong one, and refused; then the same request with
the credential is shown to work, so the refusal is the credential's doing.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any
from uuid import UUID

import httpx
import pytest
from websockets.sync.client import connect

from newsroom.orchestration.embedded import server_environment
from newsroom.orchestration.stack import free_port
from newsroom.prefect_access import ApiAccess, auth_header, probe

pytestmark = pytest.mark.slow

SECRET_IN_BLOCK = "hook-token-that-must-stay-inside-prefect-0123456789"
WRONG = {"no credential": {}, "wrong password": auth_header("newsroom:wrong-password"),
         "a bearer token": {"Authorization": "Bearer anything"},
         "garbage": {"Authorization": "Basic !!!"}}


async def _fixture_objects() -> dict[str, Any]:
    """A deployment, a run of it suspended for approval, and a Secret block."""
    from prefect.blocks.system import Secret
    from prefect.client.orchestration import get_client
    from prefect.states import Suspended

    async with get_client() as client:
        flow_id = await client.create_flow_from_name("security-probe")
        deployment_id = await client.create_deployment(flow_id=flow_id, name="probe")
        run = await client.create_flow_run_from_deployment(deployment_id)
        await client.set_flow_run_state(run.id, Suspended(timeout_seconds=3600,
                                                          pause_key="approval"), force=True)
        block_id = await Secret(value=SECRET_IN_BLOCK).save(
            f"security-probe-{run.id.hex[:8]}", overwrite=True)
    return {"deployment": str(deployment_id), "run": str(run.id), "block": str(block_id)}


async def _state_and_runs(run_id: str, deployment_id: str) -> tuple[str, int]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    async with get_client() as client:
        run = await client.read_flow_run(UUID(run_id))
        count = await client.count_flow_runs(deployment_filter=DeploymentFilter(
            id=DeploymentFilterId(any_=[UUID(deployment_id)])))
    return run.state.type.value, count


def _attacks(ids: dict[str, str]) -> dict[str, tuple[str, str, dict[str, Any] | None]]:
    approve = {"run_input": {"decision": "approve", "admin": "Hanno Benz", "comment": ""}}
    return {
        "resume a waiting approval": ("POST", f"/flow_runs/{ids['run']}/resume", approve),
        "start a run of a deployment (the crisis message)":
            ("POST", f"/deployments/{ids['deployment']}/create_flow_run", {}),
        "read every secret": ("POST", "/block_documents/filter", {"include_secrets": True}),
        "read one secret": ("GET", f"/block_documents/{ids['block']}?include_secrets=true",
                            None),
        "force a state": ("POST", f"/flow_runs/{ids['run']}/set_state",
                          {"state": {"type": "COMPLETED"}, "force": True}),
        "delete the run": ("DELETE", f"/flow_runs/{ids['run']}", None),
        "write a variable": ("POST", "/variables/", {"name": "probe", "value": "x"}),
        "list runs": ("POST", "/flow_runs/filter", {}),
        "read the server settings": ("GET", "/admin/settings", None),
        "read the API schema": ("GET", "/openapi.json", None),
    }


def test_every_route_refuses_requests_without_the_credential(prefect_server) -> None:
    ids = asyncio.run(_fixture_objects())
    before = asyncio.run(_state_and_runs(ids["run"], ids["deployment"]))
    assert before[0] == "PAUSED"
    api = prefect_server.api_url
    with httpx.Client(timeout=15) as client:
        for attack, (method, path, body) in _attacks(ids).items():
            for how, headers in WRONG.items():
                response = client.request(method, api + path, json=body, headers=headers)
                assert response.status_code == 401, (attack, how, response.text[:300])
                assert SECRET_IN_BLOCK not in response.text
        # Only the health probes are open (as Prefect documents), and they tell nothing.
        for path in ("/health", "/ready"):
            response = client.get(api + path)
            assert response.status_code == 200 and SECRET_IN_BLOCK not in response.text

    # Nothing changed: the approval still waits, no run was started, the secret is there.
    assert asyncio.run(_state_and_runs(ids["run"], ids["deployment"])) == before

    # With the credential the same requests work: the refusal was the credential's.
    ours = auth_header(prefect_server.auth_string)
    with httpx.Client(timeout=15, headers=ours) as client:
        secrets = client.post(api + "/block_documents/filter", json={"include_secrets": True})
        assert secrets.status_code == 200 and SECRET_IN_BLOCK in secrets.text
        started = client.post(api + f"/deployments/{ids['deployment']}/create_flow_run",
                              json={})
        assert started.status_code == 201, started.text
        resumed = client.post(api + f"/flow_runs/{ids['run']}/resume", json={})
        assert resumed.status_code in (200, 201), resumed.text
    assert asyncio.run(_state_and_runs(ids["run"], ids["deployment"])) == ("SCHEDULED", 2)


WEBSOCKETS = ("/events/in", "/events/out", "/logs/out", "/task_runs/subscriptions/scheduled",
              "/work_pools/newsroom/workers/connect")


def _websocket_answer(url: str, token: str | None, *, subprotocol: bool = True) -> str:
    try:
        with connect(url, subprotocols=["prefect"] if subprotocol else None,
                     open_timeout=10, close_timeout=2) as socket:
            socket.send(json.dumps({"type": "auth", "token": token}))
            try:
                return json.loads(socket.recv(timeout=10)).get("type", "?")
            except TimeoutError:
                return "open and silent"
    except Exception as exc:  # noqa: BLE001 - how it was refused is the answer
        return f"refused: {type(exc).__name__}"


def test_the_websockets_refuse_without_the_credential(prefect_server) -> None:
    """Prefect's auth string is HTTP middleware; its websockets check it themselves (in
    3.2 the events stream did not: Prefect issue #17687). In the version we run they do."""
    base = prefect_server.api_url.replace("http://", "ws://")
    for path in WEBSOCKETS:
        url = base + path
        assert _websocket_answer(url, None, subprotocol=False).startswith("refused"), path
        assert _websocket_answer(url, None).startswith("refused"), path
        assert _websocket_answer(url, "newsroom:wrong-password").startswith("refused"), path
        assert _websocket_answer(url, prefect_server.auth_string) == "auth_success", path


def test_the_ui_asks_for_the_credential(browser, prefect_server) -> None:
    page = browser.new_page()
    try:
        page.goto(prefect_server.url + "/", wait_until="networkidle")
        password = page.locator("input[type=password]")
        password.wait_for(timeout=30_000)
        assert "/login" in page.url
        assert "Flows" not in page.locator("body").inner_text()
        password.fill("newsroom:wrong-password")
        page.keyboard.press("Enter")
        page.get_by_text("Invalid credentials").wait_for(timeout=15_000)
        password.fill(prefect_server.auth_string)
        page.keyboard.press("Enter")
        page.wait_for_url("**/dashboard**", timeout=30_000)
        page.get_by_text("Deployments").first.wait_for(timeout=30_000)
    finally:
        page.close()


def test_the_probe_tells_protected_refused_open_and_absent(prefect_server, open_api) -> None:
    api = prefect_server.api_url
    assert probe(api, prefect_server.auth_string) is ApiAccess.PROTECTED
    assert probe(api, "newsroom:wrong-password") is ApiAccess.CREDENTIAL_REFUSED
    assert probe(api, None) is ApiAccess.CREDENTIAL_REFUSED
    assert probe(open_api, None) is ApiAccess.OPEN
    assert probe(f"http://127.0.0.1:{free_port()}/api", None) is ApiAccess.UNREACHABLE
    token = base64.b64encode(prefect_server.auth_string.encode()).decode()
    assert token not in ApiAccess.CREDENTIAL_REFUSED.explanation


def test_the_prefect_server_gets_none_of_newsrooms_secrets(prefect_server) -> None:
    environ = {"PATH": "/usr/bin", "HOME": "/root", "LC_ALL": "C.UTF-8",
               "NEWSROOM_SECRET_KEY": "k" * 40, "NEWSROOM_SMTP_URL": "smtp://u:pw@host",
               "NEWSROOM_MASTODON_TOKEN": "t", "TELEGRAM_BOT_TOKEN": "t",
               "PREFECT_API_AUTH_STRING": "someone:else", "AWS_SECRET_ACCESS_KEY": "x"}
    assert server_environment(environ) == {"PATH": "/usr/bin", "HOME": "/root",
                                           "LC_ALL": "C.UTF-8"}
    # The running server: its environment has its own credential and nothing of ours.
    with open(f"/proc/{prefect_server.pid}/environ", "rb") as handle:
        names = {entry.split(b"=", 1)[0].decode() for entry in handle.read().split(b"\0")
                 if entry}
    assert "PREFECT_SERVER_API_AUTH_STRING" in names
    assert not [name for name in names if name.startswith("NEWSROOM_")]
    assert prefect_server.home.stat().st_mode & 0o077 == 0
    assert prefect_server.auth_string_path.stat().st_mode & 0o777 == 0o600
