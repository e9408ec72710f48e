"""Flow ``request``: a request from a Dezernat or an Amt, until the office has decided.

    stored (web form) ──► tell the office and the requester ──► suspended (no process)
        ──► accepted: campaign file written ──► tell the requester
        ──► asked back: tell the requester (the answer starts a new run)
        ──► declined: tell the requester why

One run per submission (and per answer to a question asked back). The web app starts it
(:func:`start_request_run`); when Prefect cannot be reached then, the request is stored
anyway and the sweep (:func:`sweep_requests`: every minute in the ``housekeeping`` run,
flows/housekeeping.py, or ``newsroom requests sweep``) starts it.
The office decides

- in the **Prefect UI** (the suspended run's *Resume* form, :class:`RequestDecisionInput`:
  decision, question or reason, optionally campaign id, time and approver, and your
  registry id: a person whose role allows it, office-admin or office-editor; any other
  name is refused, audited, and the run waits again),
- or with **``newsroom requests accept|ask|decline``**, which records the decision and
  resumes the run with a signed ``newsroom_token``: the run then only tells the requester.

Every message goes out once (the store remembers what was sent), so a resumed or
restarted run never tells anyone twice.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import timedelta
from typing import Literal
from uuid import UUID

from prefect import flow, get_run_logger, suspend_flow_run
from prefect.exceptions import ObjectNotFound
from prefect.flow_runs import aresume_flow_run
from prefect.input import RunInput
from prefect.states import Completed
from pydantic import Field

from flows import suspension
from newsroom import requests as domain
from newsroom.markdown import md_text
from newsroom.runtime import Runtime, get_runtime
from newsroom.signing import InvalidToken
from newsroom.store import requests_crud as crud
from newsroom.store.db import session_scope
from newsroom.store.models import RequestStatus
from tasks.office_requests import (
    authorize_office_member,
    decide_request,
    describe_request,
    notify_request,
    read_request,
)

logger = logging.getLogger("newsroom.requests")

DEPLOYMENT = "request/request"
REQUEST_RESUME = "request-resume"
MAX_WAITS = 25
MAX_REFUSED_INPUTS = 200  # inputs by someone without the office role (each is replayed)
SUSPEND_TIMEOUT = int(timedelta(days=60).total_seconds())
_WAITING = {RequestStatus.SUBMITTED.value, RequestStatus.RESUBMITTED.value}


class RequestDecisionInput(RunInput):
    """Decide on a request to the communications office (with your name)."""

    decision: Literal["accept", "ask_back", "decline"] = Field(
        default="accept", description="accept, ask_back (ask a question) or decline")
    text: str = Field(default="", max_length=4000,
                      description="ask_back: your question; decline: the reason (both are "
                                  "sent to the requester)")
    office_member: str = Field(default="", max_length=100,
                               description="Who decides: your id in registry/people.yaml (a "
                                           "person with the role office-admin or "
                                           "office-editor); other names are refused")
    campaign_id: str = Field(default="", max_length=80,
                             description="accept: the new campaign's id (empty: from the title)")
    publish_at: str = Field(default="", max_length=20,
                            description="accept: YYYY-MM-DD HH:MM, Darmstadt time (empty: the "
                                        "desired date and time, 10:00 without a time)")
    approver: str = Field(default="", max_length=80,
                          description="accept: who approves, a portfolio or person id (empty: "
                                      "the requesting Dezernat; required for an Amt)")
    kind: str = Field(default="", max_length=40,
                      description="accept: campaign kind (empty: service_information)")
    newsroom_token: str = Field(default="", max_length=4096,
                                description="Set by Newsroom; leave empty")


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


def _run_name() -> str:
    from prefect.runtime import flow_run

    return f"anfrage {flow_run.parameters.get('request_id')}"


@flow(name="request", flow_run_name=_run_name, persist_result=False)
async def request(request_id: int):
    """Carry one request (one submission) to the office's decision and tell everyone."""
    log = get_run_logger()
    current = await read_request(request_id, record_run=True)
    await describe_request(current)
    revision = current.revision
    waits = refused = 0
    problem = ""
    while waits <= MAX_WAITS and refused < MAX_REFUSED_INPUTS:
        current = await read_request(request_id)
        if current.revision != revision:
            return Completed(message=f"revision {current.revision} has its own run")
        if current.pending_step:
            await notify_request(request_id, current.pending_step)
            continue
        if current.status not in _WAITING:
            break
        description = (
            "## Waiting for the office's decision\n\nDecide here (*accept*, *ask_back* with a "
            "question, *decline* with a reason) and give your registry id under "
            "*office_member* (a person of registry/people.yaml with the role office-admin or "
            "office-editor; other names are refused); or on the command line "
            f"`newsroom requests accept {request_id}` (`ask`, `decline`).\n\n"
            + (f"**The last input was not recorded:** {md_text(problem, limit=600)}\n\n"
               if problem else "")
            + current.summary)
        key = f"request-{request_id}-{revision}-{waits}" + (f"-r{refused}" if refused else "")
        suspension.log_waits_as_info()  # the wait ends the run: INFO, not ERROR
        received = await suspend_flow_run(
            wait_for_input=RequestDecisionInput.with_initial_data(description=description),
            key=key, timeout=SUSPEND_TIMEOUT)
        runtime = get_runtime()
        if token_is_newsroom(runtime, received.newsroom_token, request_id):
            waits += 1
            continue
        # Someone without the office role: refused (audited) and waiting again; such inputs
        # do not use up MAX_WAITS.
        problem = await authorize_office_member(request_id, received.office_member,
                                                input_key=key)
        if problem:
            refused += 1
            log.warning("input on request %s refused, still waiting for the office: %s",
                        request_id, problem)
            continue
        waits += 1
        problem = await decide_request(
            request_id, received.decision, received.text, received.office_member,
            received.campaign_id, received.publish_at, received.approver, received.kind,
            input_key=key)
        if problem:
            log.warning("the decision on request %s was not recorded: %s", request_id,
                        problem)
    else:
        raise RuntimeError(f"request {request_id} was not decided after {waits} inputs and "
                           f"{refused} refused ones")
    outcome = {"accepted": f"accepted as campaign {current.campaign_id}",
               "declined": "declined; the requester was told why",
               "asked_back": "asked back; the requester's answer starts a new run"}
    return Completed(message=outcome.get(current.status, current.status),
                     data={"status": current.status, "campaign_id": current.campaign_id})


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
    from prefect.deployments import run_deployment

    runtime = runtime or get_runtime()
    row = await asyncio.to_thread(_read, runtime, request_id)
    key = f"request-{request_id}-{row.revision}-{row.status}"
    if fresh:
        key += f"-{secrets.token_hex(4)}"
    run = await run_deployment(DEPLOYMENT, parameters={"request_id": request_id}, timeout=0,
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
        waiting_for_office = row.status in _WAITING
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
