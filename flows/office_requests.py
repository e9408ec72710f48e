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

import logging
from datetime import timedelta
from typing import Literal

from prefect import asuspend_flow_run, flow, get_run_logger
from prefect.input import RunInput
from prefect.states import Completed
from pydantic import Field

from newsroom.markdown import md_text
from newsroom.orchestration import suspension
from newsroom.orchestration.request_runs import (
    WAITING_FOR_OFFICE,
    token_is_newsroom,
)
from newsroom.runtime import get_runtime
from tasks.office_requests import (
    authorize_office_member,
    decide_request,
    describe_request,
    notify_request,
    read_request,
)

logger = logging.getLogger("newsroom.requests")

MAX_WAITS = 25
MAX_REFUSED_INPUTS = 200  # inputs by someone without the office role (each is replayed)
SUSPEND_TIMEOUT = int(timedelta(days=60).total_seconds())


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
        if current.status not in WAITING_FOR_OFFICE:
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
        received = await asuspend_flow_run(
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
