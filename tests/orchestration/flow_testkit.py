"""The parts of the flow tests: a running Newsroom stack around the session's Prefect
server, campaign files, and waiting for runs.

:func:`flow_stack` is what every end-to-end module starts once: the stand-in channels, a
copy of the catalog pointed at them, a mail catcher, Newsroom's settings in the
environment, the deployments on a work pool of the module's own, the Newsroom worker and
(optionally) the approval page.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar
from uuid import UUID

import pytest

from newsroom.orchestration.stack import (
    MailCatcher,
    WebServer,
    WorkerThread,
    apply_deployments,
    free_port,
    run_async,
)
from newsroom.runtime import get_runtime, reset_runtimes
from newsroom.standins import StandinControl, running_standins
from newsroom.standins.config import STANDIN_CREDENTIAL_ENV
from newsroom.timeutil import BERLIN

ROOT = Path(__file__).resolve().parents[2]
ON_POSTGRES = os.environ.get("NEWSROOM_TEST_PREFECT") == "postgres"
T = TypeVar("T")


@contextmanager
def flow_stack(root: Path, pool: str, *, database_url: str | None = None,
               web: bool = False, poll_seconds: float = 0.5) -> Iterator[SimpleNamespace]:
    """Start the stack in ``root``; yields ``catalog, mail, standins, deployments, worker,
    web`` (``web`` is None unless asked for). Needs the ``prefect_server`` fixture."""
    with running_standins() as standins_url, StandinControl(standins_url) as control, \
            pytest.MonkeyPatch.context() as env:
        catalog = root / "campaigns"
        shutil.copytree(ROOT / "campaigns", catalog)
        registry = catalog / "registry" / "channels.yaml"
        registry.write_text(registry.read_text(encoding="utf-8").replace(
            "http://127.0.0.1:8900", standins_url), encoding="utf-8")
        mail = MailCatcher(port=free_port()).start()
        web_port = free_port()
        env.setenv("NEWSROOM_CATALOG_DIR", str(catalog))
        env.setenv("NEWSROOM_DATA_DIR", str(root / "var"))
        env.setenv("NEWSROOM_DATABASE_URL",
                   database_url or f"sqlite:///{root / 'newsroom.db'}")
        env.setenv("NEWSROOM_SMTP_URL", mail.smtp_url)
        env.setenv("NEWSROOM_WEB_BASE_URL", f"http://127.0.0.1:{web_port}")
        env.setenv("NEWSROOM_STANDINS_URL", standins_url)
        env.setenv("NEWSROOM_SECRET_KEY", f"{pool}-secret-key-that-is-long-enough-0123456789")
        for name, value in STANDIN_CREDENTIAL_ENV.items():
            env.setenv(name, value)
        reset_runtimes()
        deployments = run_async(apply_deployments(pool, schedules=False))
        worker = WorkerThread(pool, poll_seconds=poll_seconds)
        worker.start()
        server = None
        if web:
            server = WebServer(get_runtime(), port=web_port)
            server.start()
        ns = SimpleNamespace(catalog=catalog, mail=mail, standins=control, web=server,
                             deployments=deployments, worker=worker, pool=pool)
        try:
            yield ns
        finally:
            if server is not None:
                server.stop()
            ns.worker.stop()
            mail.stop()
            reset_runtimes()


def write_campaign(catalog: Path, campaign_id: str, slot: datetime, *,
                   deadline_before: str = "15s", channels: str = "[mastodon, bluesky]",
                   pre_approved: bool = False) -> None:
    """A one-off awareness-day campaign of the Kinder- und Jugenddezernentin at ``slot``."""
    local = slot.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M:%S")
    extra = "\n  pre_approved: true" if pre_approved else ""
    (catalog / f"{campaign_id}.yaml").write_text(f"""\
id: {campaign_id}
title: Testkampagne {campaign_id}
topic: Kinder und Jugend
kind: awareness_day
requested_by: {{portfolio: kinder-jugend}}
approval:
  approvers:
    - portfolio: kinder-jugend
  mode: one
  deadline_before: {deadline_before}
  on_timeout: cancel{extra}
slots:
  - at: "{local}"
    channels: {channels}
content:
  text: "Heute ist Aktionstag in Darmstadt – schön, dass Sie dabei sind! {{{{ hashtags }}}}"
  hashtags: [AktionstagDarmstadt]
""", encoding="utf-8")


def create_run(deployment_id: str, parameters: dict[str, Any]) -> UUID:
    """A run of the deployment, due now."""
    from prefect.client.orchestration import get_client

    async def create() -> UUID:
        async with get_client() as client:
            run = await client.create_flow_run_from_deployment(UUID(deployment_id),
                                                               parameters=parameters)
            return run.id

    return run_async(create())


def deployment_runs(deployment_id: str) -> list:
    """Every run of the deployment, whatever its pool."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    async def read() -> list:
        async with get_client() as client:
            return await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=[UUID(deployment_id)])))

    return run_async(read())


def delete_deployment_runs(*deployment_ids: str) -> None:
    """Delete the runs of these deployments: a deployment is shared by name by every
    module's stack on the session's Prefect server, and a module counting its runs must
    not count another module's (left Late in that module's pool)."""
    from prefect.client.orchestration import get_client

    async def delete(run_ids: list[UUID]) -> None:
        async with get_client() as client:
            for run_id in run_ids:
                await client.delete_flow_run(run_id)

    run_async(delete([run.id for deployment_id in deployment_ids
                      for run in deployment_runs(deployment_id)]))


def start_campaign(stack: SimpleNamespace, campaign_id: str, occurrence_date: str) -> UUID:
    """A run of the stack's campaign deployment for one occurrence, due now."""
    return create_run(stack.deployments["campaign"], {"campaign_id": campaign_id,
                                                      "occurrence_date": occurrence_date})


def run_state(run_id: UUID):
    from prefect.client.orchestration import get_client

    async def read():
        async with get_client() as client:
            return (await client.read_flow_run(run_id)).state

    return run_async(read())


def state_names(run_id: UUID) -> list[str]:
    """The names of every state the run has been in, oldest first."""
    from prefect.client.orchestration import get_client

    async def read() -> list[str]:
        async with get_client() as client:
            return [s.name for s in await client.read_flow_run_states(run_id)]

    return run_async(read())


def wait_for_state(run_id: UUID, names: set[str], timeout: float) -> str:
    """Wait until the run's state is one of ``names``; a failed or crashed run fails."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        state = run_state(run_id)
        seen = state.name if state else None
        if seen in names:
            return seen
        if state is not None and (state.is_failed() or state.is_crashed()):
            raise AssertionError(f"run {run_id} ended {seen}: {state.message}")
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} is {seen}, not one of {names}, after {timeout} s")


def wait_done(run_id: UUID, timeout: float = 90) -> str:
    """Wait until the run is final; it must be Completed. Its state message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = run_state(run_id)
        if state is not None and state.is_final():
            assert state.is_completed(), f"run ended {state.name}: {state.message}"
            return state.message or ""
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} did not finish within {timeout} s")


def wait_for(predicate: Callable[[], T], timeout: float = 30.0) -> T:
    """Poll ``predicate`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")
