"""The approval gate in Prefect: the input a waiting campaign run accepts, and resuming it.

A campaign run that needs approval *suspends* (``suspend_flow_run``): the run ends, holds
no process, and waits in Prefect's database as "Suspended" until resumed with an
:class:`ApprovalInput`. It is resumed by

- **Newsroom**, when the approvers' decisions on the approval page settle the gate (or
  the deadline does): :func:`resume_for_gate` sends ``newsroom_token``, a signed value
  naming the occurrence and the content it decided about. The run then reads the
  decisions from Newsroom's store — the input only wakes it.
- **An admin** in the Prefect UI ("Resume" shows a form with the posts and the state of
  the signatures): decision, comment and name. Without a valid ``newsroom_token`` the
  input is an admin decision. The open-source Prefect server has no users, so the name
  must be a registry person whose role allows it (``roles: [office-admin]`` in
  registry/people.yaml, :mod:`newsroom.catalog.roles`); the audit trail records that
  person's id, marked ``prefect_ui``. Any other name is refused: logged, audited
  (``approval.admin_refused``), and the run waits again.

Every decision shows on the run in the Prefect UI: a new version of its approval artifact
(who, when, what, comment, n of m; :func:`newsroom.approval.gate_summary_markdown`) and an
INFO line in its log. A signature that does not settle the gate comes while the run holds
no process, so the approval page writes both through the API (:func:`show_decision`); a
decision that settles the gate, an admin's and the deadline's are written by the run
itself when it goes on (``show-approval`` in tasks/campaign.py), so none is written twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Literal
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate, LogCreate
from prefect.exceptions import ObjectNotFound
from prefect.flow_runs import aresume_flow_run
from prefect.input import RunInput
from pydantic import Field

from newsroom import approval, store
from newsroom.approval import GateStatus
from newsroom.orchestration.artifacts import approval_artifact
from newsroom.runtime import Runtime, get_runtime
from newsroom.signing import InvalidToken

logger = logging.getLogger("newsroom.gate")

GATE_RESUME = "gate-resume"


class ApprovalInput(RunInput):
    """Resume a campaign waiting for approval (admins: decide here, with your name)."""

    decision: Literal["approve", "reject", "request_changes"] = Field(
        default="approve", description="approve, reject or request_changes")
    comment: str = Field(default="", max_length=2000,
                         description="Why (recorded in the audit trail)")
    admin: str = Field(default="", max_length=100,
                       description="Who decides: your id in registry/people.yaml (a person "
                                   "with the role office-admin); other names are refused")
    newsroom_token: str = Field(default="", max_length=4096,
                                description="Set by Newsroom; leave empty")


def resume_token(runtime: Runtime, status: GateStatus) -> str:
    token, _ = runtime.signer.issue(
        purpose=GATE_RESUME, subject={"occurrence": status.occurrence_id,
                                      "outcome": status.outcome.value},
        person="newsroom", content_hash=status.bundle_hash, ttl=timedelta(days=30))
    return token


def token_is_newsroom(runtime: Runtime, token: str, occurrence_id: int) -> bool:
    """True when ``token`` was made by :func:`resume_token` for this occurrence."""
    if not token:
        return False
    try:
        claims = runtime.signer.verify(token, purpose=GATE_RESUME)
    except InvalidToken:
        return False
    return claims.subject.get("occurrence") == occurrence_id


async def resume_for_gate(status: GateStatus, runtime: Runtime | None = None) -> bool:
    """Resume the run waiting at ``status``'s gate; False when none waits (yet)."""
    runtime = runtime or get_runtime()
    run_id = await asyncio.to_thread(_flow_run_id, runtime, status.occurrence_id)
    if not run_id:
        logger.warning("no flow run recorded for %s %s; nothing to resume",
                       status.campaign_id, status.occurrence_date)
        return False
    async with get_client() as client:
        try:
            run = await client.read_flow_run(UUID(run_id))
        except ObjectNotFound:
            logger.warning("flow run %s of %s %s is gone", run_id, status.campaign_id,
                           status.occurrence_date)
            return False
    if run.state is None or not run.state.is_paused():
        return False
    await _resume(runtime, status, run_id, "decision")
    logger.info("resumed %s %s (gate %s)", status.campaign_id, status.occurrence_date,
                status.outcome.value)
    return True


def _flow_run_id(runtime: Runtime, occurrence_id: int) -> str | None:
    """The flow run recorded for the occurrence (the one that waits at its gate)."""
    with store.session_scope(runtime.engine) as session:
        # By id: a crisis campaign may have several occurrences on one day (triggers).
        occurrence = session.get(store.Occurrence, occurrence_id, populate_existing=True)
        return occurrence.flow_run_id if occurrence else None


async def show_decision(status: GateStatus, runtime: Runtime | None = None) -> bool:
    """Show a signature that left the gate open on the waiting run: a new version of its
    approval artifact and an INFO line in its log. False when no run is recorded."""
    runtime = runtime or get_runtime()
    run_id = await asyncio.to_thread(_flow_run_id, runtime, status.occurrence_id)
    if not run_id or not status.decisions:
        return False
    markdown = await asyncio.to_thread(approval.gate_summary_of, runtime.engine,
                                       runtime.catalog, status)
    line = status.decision_line(runtime.catalog, status.decisions[-1])
    key, description = approval_artifact(status.campaign_id, status.occurrence_date)
    async with get_client() as client:
        await client.create_artifact(ArtifactCreate(
            key=key, type="markdown", data=markdown, description=description,
            flow_run_id=UUID(run_id)))
        # LogCreate's timestamp is typed as Prefect's DateTime (pendulum on Python 3.11);
        # its pydantic validation takes any aware datetime.
        await client.create_logs([LogCreate(
            name="newsroom.approval", level=logging.INFO, message=line,
            timestamp=status.decisions[-1].decided_at,  # type: ignore[arg-type]
            flow_run_id=UUID(run_id))])
    return True


async def resume_waiting_runs(runtime: Runtime | None = None) -> list[str]:
    """Resume every suspended run whose gate has settled or escalated meanwhile.

    The safety net under :func:`resume_for_gate`: a resume that failed (Prefect server
    down while someone approved) or a decision that came in just before the run
    suspended is picked up here. Returns the resumed flow run ids.
    """
    from newsroom import approval

    runtime = runtime or get_runtime()

    def candidates() -> list[tuple[int, str]]:
        with store.session_scope(runtime.engine) as session:
            return store.waiting_flow_runs(session)

    resumed = []
    for occurrence_id, run_id in await asyncio.to_thread(candidates):
        async with get_client() as client:
            try:
                run = await client.read_flow_run(UUID(run_id))
            except (ObjectNotFound, ValueError):
                continue
        if run.state is None or not run.state.is_paused():
            continue
        try:
            status = await asyncio.to_thread(approval.evaluate_gate, runtime.engine,
                                             runtime.catalog, occurrence_id=occurrence_id)
        except approval.ApprovalError as exc:  # e.g. its campaign left the catalog
            logger.warning("gate of occurrence %d skipped: %s", occurrence_id, exc)
            continue
        if status.settled or status.outcome.value == "escalated" or _content_changed(
                runtime, status):
            try:
                await _resume(runtime, status, run_id, "sweeper")
                resumed.append(run_id)
            except Exception as exc:  # noqa: BLE001 - one run must not stop the others
                logger.warning("could not resume %s: %s", run_id, exc)
    return resumed


async def _resume(runtime: Runtime, status: GateStatus, run_id: str, by: str) -> None:
    """Resume the suspended run with Newsroom's signed input, and audit it."""
    await aresume_flow_run(UUID(run_id), run_input={
        "decision": "approve", "comment": f"gate {status.outcome.value}",
        "admin": "", "newsroom_token": resume_token(runtime, status)})
    await asyncio.to_thread(_audit_resume, runtime, status, run_id, by)


def _audit_resume(runtime: Runtime, status: GateStatus, run_id: str, by: str) -> None:
    with store.session_scope(runtime.engine) as session:
        store.record_audit(session, campaign_id=status.campaign_id,
                           occurrence_date=status.occurrence_date, actor=f"newsroom:{by}",
                           action="approval.resumed", content_hash=status.bundle_hash,
                           detail={"flow_run_id": run_id, "outcome": status.outcome.value})


def _content_changed(runtime: Runtime, status: GateStatus) -> bool:
    """True when the catalog now renders other posts than the gate asks about (the
    campaign file was edited): the resumed run renders again and asks again."""
    from newsroom.errors import NewsroomError
    from newsroom.posts import bundle_hash
    from newsroom.rendering.render import render_occurrence

    try:
        posts = render_occurrence(runtime.catalog, status.campaign_id, status.occurrence_date)
    except (NewsroomError, LookupError) as exc:
        logger.warning("%s %s cannot be rendered any more: %s", status.campaign_id,
                       status.occurrence_date, exc)
        return False
    return bundle_hash(posts) != status.bundle_hash
