"""Starting and resuming the runs of requests to the office (the ``request`` flow,
flows/office_requests.py), from the web app, the command line and the sweep: a request is
never left without a run while the office has to decide or a message is owed."""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import timedelta
from uuid import UUID

from prefect.exceptions import ObjectNotFound
from prefect.flow_runs import aresume_flow_run

from newsroom import requests as domain
from newsroom.runtime import Runtime, get_runtime
from newsroom.signing import InvalidToken
from newsroom.store import requests_crud as crud
from newsroom.store.db import session_scope
from newsroom.store.models import RequestStatus

logger = logging.getLogger("newsroom.requests")

DEPLOYMENT = "request/request"
REQUEST_RESUME = "request-resume"
# A request in these states waits for the office's decision.
WAITING_FOR_OFFICE = {RequestStatus.SUBMITTED.value, RequestStatus.RESUBMITTED.value}


def resume_token(runtime: Runtime, request_id: int, revision: int) -> str:
    token, _ = runtime.signer.issue(purpose=REQUEST_RESUME,
                                    subject={"request": request_id, "revision": revision},
                                    person="newsroom", content_hash="",
                                    ttl=timedelta(days=30))
    return token


def token_is_newsroom(runtime: Runtime, token: str, request_id: int) -> bool:
    if not token:
        return False
    try:
        claims = runtime.signer.verify(token, purpose=REQUEST_RESUME)
    except InvalidToken:
        return False
    return claims.subject.get("request") == request_id


# --- starting and resuming runs (web app, CLI, sweep) ------------------------------------


def _read(runtime: Runtime, request_id: int):
    with session_scope(runtime.engine) as session:
        row = crud.get_request(session, request_id=request_id)
    if row is None:
        raise domain.RequestNotFound(f"no request {request_id}")
    return row


async def start_request_run(request_id: int, runtime: Runtime | None = None, *,
                            fresh: bool = False) -> str:
    """Create a run of the ``request`` deployment for the request's current state; its id.

    The idempotency key makes a second call for the same state return the same run;
    ``fresh`` (the sweep, after a run ended without finishing) makes a new one.
    """
    from prefect.deployments import arun_deployment

    runtime = runtime or get_runtime()
    row = await asyncio.to_thread(_read, runtime, request_id)
    key = f"request-{request_id}-{row.revision}-{row.status}"
    if fresh:
        key += f"-{secrets.token_hex(4)}"
    run = await arun_deployment(DEPLOYMENT, parameters={"request_id": request_id}, timeout=0,
                                as_subflow=False, idempotency_key=key)

    def record() -> None:
        with session_scope(runtime.engine) as session:
            crud.set_request_flow_run(session, request_id=request_id, flow_run_id=str(run.id))
        _audit(runtime, request_id, "request.run_started",
               {"flow_run_id": str(run.id), "revision": row.revision, "status": row.status})

    await asyncio.to_thread(record)
    logger.info("request %s: run %s started", request_id, run.id)
    return str(run.id)


async def _run_state(run_id: str | None):
    from prefect.client.orchestration import get_client

    if not run_id:
        return None
    async with get_client() as client:
        try:
            return (await client.read_flow_run(UUID(run_id))).state
        except (ObjectNotFound, ValueError):
            return None


async def after_decision(request_id: int, runtime: Runtime | None = None) -> str:
    """After a decision stored outside the run: resume the waiting run, or start one.

    Returns "resumed", "started" or "running" (a run is under way and will see it).
    """
    runtime = runtime or get_runtime()
    row = await asyncio.to_thread(_read, runtime, request_id)
    state = await _run_state(row.flow_run_id)
    if state is not None and state.is_paused():
        await aresume_flow_run(UUID(row.flow_run_id), run_input={
            "decision": "accept", "text": "", "office_member": "",
            "newsroom_token": resume_token(runtime, request_id, row.revision)})
        await asyncio.to_thread(_audit, runtime, request_id, "request.resumed",
                                {"flow_run_id": row.flow_run_id})
        return "resumed"
    if state is not None and not state.is_final():
        return "running"
    await start_request_run(request_id, runtime, fresh=state is not None)
    return "started"


def _audit(runtime: Runtime, request_id: int, action: str, detail: dict) -> None:
    from newsroom import store

    with session_scope(runtime.engine) as session:
        store.record_audit(session, campaign_id=crud.audit_key(request_id),
                           actor="newsroom", action=action, detail=detail)


async def sweep_requests(runtime: Runtime | None = None) -> dict[str, list[int]]:
    """Start or resume the run of every request that needs one: never lose a request.

    A request needs a run while the office has to decide or a message is still owed. Its
    run is fine while it waits (suspended) for the office or is under way; a run that
    waits although the decision is stored is resumed; otherwise a run is started.
    """
    runtime = runtime or get_runtime()

    def candidates():
        with session_scope(runtime.engine) as session:
            return list(crud.list_requests(session))

    done: dict[str, list[int]] = {"started": [], "resumed": []}
    for row in await asyncio.to_thread(candidates):
        waiting_for_office = row.status in WAITING_FOR_OFFICE
        if not waiting_for_office and domain.pending_step(row) is None:
            continue
        try:
            state = await _run_state(row.flow_run_id)
            if state is not None and state.is_paused():
                if waiting_for_office:
                    continue
                if await after_decision(row.id, runtime) == "resumed":
                    done["resumed"].append(row.id)
                continue
            if state is not None and not state.is_final():
                continue
            await start_request_run(row.id, runtime, fresh=state is not None)
            done["started"].append(row.id)
        except Exception as exc:  # noqa: BLE001 - one request must not stop the others
            logger.warning("request %s: could not start or resume its run: %s", row.id, exc)
    return done
