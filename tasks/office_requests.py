"""Prefect tasks of the request flow: thin wrappers over :mod:`newsroom.requests` (the
domain core decides; these give Prefect names, retries and a place in the UI)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from prefect import task
from prefect.artifacts import acreate_markdown_artifact
from prefect.runtime import flow_run as current_run

from newsroom import requests as domain
from newsroom.catalog.roles import NotPermitted
from newsroom.markdown import md_quote, md_text
from newsroom.requests import NotifyContext, RequestError
from newsroom.runtime import get_runtime
from newsroom.store import requests_crud as crud
from newsroom.store.db import session_scope


@dataclass(frozen=True)
class RequestSnapshot:
    """What the flow needs to know about a request now."""

    request_id: int
    status: str
    revision: int
    title: str
    requester: str
    pending_step: str | None
    campaign_id: str | None
    summary: str  # Markdown for the Prefect UI's resume form


def _summary(request, images, requester_name: str) -> str:
    """The request as Markdown for the Prefect UI. Everything here was typed by the
    requester: escaped (newsroom.markdown), so no link, image or HTML forms; links are
    shown as text to copy, not to click."""
    desired = (f"{request.desired_from}"
               + (f" to {request.desired_to}" if request.desired_to else "")
               + (f", {request.desired_time}" if request.desired_time else ""))
    lines = [f"## Request #{request.id} from {md_text(requester_name)}: "
             f"{md_text(request.title)}", "",
             f"- **Topic:** {md_text(request.topic)}",
             f"- **Desired:** {md_text(desired)}",
             f"- **Channels:** {md_text(', '.join(request.channels))}",
             f"- **Contact:** {md_text(f'{request.contact_name} <{request.contact_email}>')}"]
    if request.hashtags:
        lines.append(f"- **Hashtags:** {md_text(' '.join('#' + t for t in request.hashtags))}")
    lines += [f"- **Link:** {md_text(link)}" for link in request.links]
    lines += [f"- **Image {i.position}:** {md_text(i.filename)} (alt: {md_text(i.alt)})"
              for i in images]
    if request.notes:
        lines.append(f"- **Notes:** {md_text(request.notes)}")
    if request.answer:
        lines += [f"- **Asked back:** {md_text(request.question)}",
                  f"- **Answer:** {md_text(request.answer)}"]
    lines += ["", "**Draft text:**", "", *md_quote(request.text)]
    return "\n".join(lines)


def snapshot(request_id: int) -> RequestSnapshot:
    runtime = get_runtime()
    request, images = domain.load_request(runtime.engine, request_id)
    try:
        name = domain.requester_for(runtime.catalog, request.requester_kind,
                                    request.requester_id).name
    except LookupError:
        name = request.requester_id
    return RequestSnapshot(request.id or request_id, request.status, request.revision,
                           request.title, name, domain.pending_step(request),
                           request.campaign_id, _summary(request, images, name))


@task(name="read-request", task_run_name="read request {request_id}")
async def read_request(request_id: int, record_run: bool = False) -> RequestSnapshot:
    """The request now; with ``record_run``, this flow run is recorded as carrying it."""
    runtime = get_runtime()
    run_id = current_run.get_id()

    def read() -> RequestSnapshot:
        if record_run and run_id:
            with session_scope(runtime.engine) as session:
                crud.set_request_flow_run(session, request_id=request_id,
                                          flow_run_id=str(run_id))
        return snapshot(request_id)

    return await asyncio.to_thread(read)


@task(name="describe-request", task_run_name="describe request {current.request_id}")
async def describe_request(current: RequestSnapshot) -> None:
    """The request as a Markdown artifact of the run (Artifacts tab of the Prefect UI)."""
    await acreate_markdown_artifact(
        key=f"request-{current.request_id}-r{current.revision}", markdown=current.summary,
        description=f"Request #{current.request_id} (revision {current.revision})")


def _transient(task, task_run, state) -> bool:
    """Retry a notification the notifier did not take; not a bug (wrong step, no request)."""
    try:
        state.result()
    except domain.RequestNotFound:
        return False
    except RequestError:
        return True
    except Exception:  # noqa: BLE001 - SMTP refused, connection reset …
        return True
    return False


@task(name="notify-request", task_run_name="tell {step} about request {request_id}",
      retries=3, retry_delay_seconds=[5, 30, 120], retry_condition_fn=_transient)
async def notify_request(request_id: int, step: str) -> bool:
    """Send the step's message once (the store remembers what went out)."""
    runtime = get_runtime()
    ctx = NotifyContext(engine=runtime.engine, catalog=runtime.catalog,
                        notifier=runtime.notifier, signer=runtime.signer,
                        base_url=runtime.base_url, data_dir=runtime.settings.data_dir)
    return await asyncio.to_thread(domain.notify_step, ctx, request_id, step)


@task(name="authorize-office-member", task_run_name="who decides request {request_id}")
async def authorize_office_member(request_id: int, office_member: str,
                                  input_key: str = "") -> str:
    """"" when ``office_member`` names a registry person whose role allows deciding
    requests; else why not (audited once per run and input, ``input_key``)."""
    runtime = get_runtime()
    run_id = current_run.get_id()
    refusal_key = f"request-refused:{run_id}:{input_key}" if run_id and input_key else None

    def check() -> str:
        try:
            domain.authorize_decision(runtime.engine, runtime.catalog, request_id,
                                      office_member, via="prefect_ui",
                                      refusal_key=refusal_key)
        except NotPermitted as exc:
            return str(exc)
        return ""

    return await asyncio.to_thread(check)


@task(name="decide-request", task_run_name="{decision} request {request_id}")
async def decide_request(request_id: int, decision: str, text: str, by: str,
                         campaign_id: str = "", publish_at: str = "", approver: str = "",
                         kind: str = "", input_key: str = "") -> str:
    """Record the office's decision from the Prefect UI; "" or what was wrong with it.

    ``by`` must name a registry person whose role allows deciding requests; a refusal is
    audited once per run and input (``input_key``) however often the run replays it.
    """
    runtime = get_runtime()
    run_id = current_run.get_id()
    refusal_key = f"request-refused:{run_id}:{input_key}" if run_id and input_key else None

    def decide() -> str:
        try:
            member = domain.authorize_decision(runtime.engine, runtime.catalog, request_id,
                                               by, via="prefect_ui", refusal_key=refusal_key)
            if decision == "accept":
                domain.accept_request(
                    runtime.engine, runtime.catalog, runtime.settings.data_dir, request_id,
                    by=member, via="prefect_ui", campaign_id=campaign_id or None,
                    publish_at=domain.parse_publish_at(publish_at), approver=approver or None,
                    kind=kind or "service_information")
            elif decision == "ask_back":
                domain.ask_back(runtime.engine, request_id, question=text, by=member,
                                via="prefect_ui")
            else:
                domain.decline_request(runtime.engine, request_id, reason=text, by=member,
                                       via="prefect_ui")
        except (RequestError, NotPermitted) as exc:
            return str(exc)
        return ""

    return await asyncio.to_thread(decide)
