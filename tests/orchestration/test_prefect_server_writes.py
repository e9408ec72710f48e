"""The Prefect server Newsroom starts (newsroom/orchestration/prefect_server.py) lets concurrent
writers
queue on SQLite instead of answering 503.

Stock ``prefect server start`` on SQLite, measured with this test's burst: 190 of 200
run-creating calls answered 503 (``SQLITE_BUSY_SNAPSHOT``); Prefect's client then waits
2 s before it tries again, which cost the crisis path its 2 s goal. The client here does
not retry, so every 503 is seen.
"""

from __future__ import annotations

import asyncio
from uuid import uuid4

import httpx


async def _burst(rounds: int, concurrent: int) -> list[int]:
    from prefect.client.orchestration import get_client

    statuses: list[int] = []

    async def record(response: httpx.Response) -> None:
        if response.request.url.path.endswith("/create_flow_run"):
            statuses.append(response.status_code)

    async with get_client(httpx_settings={"event_hooks": {"response": [record]}}) as client:
        flow_id = await client.create_flow_from_name(f"write-burst-{uuid4().hex[:8]}")
        deployment_id = await client.create_deployment(
            flow_id=flow_id, name="burst", entrypoint="flows/crisis.py:crisis")
        created = []
        try:
            for _ in range(rounds):
                results = await asyncio.gather(
                    *(client.create_flow_run_from_deployment(deployment_id)
                      for _ in range(concurrent)), return_exceptions=True)
                created += [run.id for run in results if not isinstance(run, BaseException)]
        finally:
            for run_id in created:
                await client.delete_flow_run(run_id)
            await client.delete_deployment(deployment_id)
    return statuses


def test_concurrent_run_creation_never_answers_503(prefect_server):
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 0}):
        statuses = asyncio.run(_burst(rounds=4, concurrent=40))

    assert len(statuses) == 160
    assert [s for s in statuses if s != 201] == [], (
        "the Prefect server refused concurrent writers; is it started through "
        "newsroom/orchestration/prefect_server.py?")

