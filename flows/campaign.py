"""Flow ``campaign``: one campaign on one date, from rendering to the report.

    render ──► ask for approval ──► (suspended: no process) ──► publish at the exact time ──► report

1. **render-posts** renders every channel's post from the catalog and stores it (the
   Markdown artifact "approval-…" shows them in the run's Artifacts tab).
2. **request-approval** asks the approvers — each person once per content — unless the
   campaign is pre-approved (crisis templates).
3. The run **suspends** with :class:`~newsroom.orchestration.gate.ApprovalInput` until the gate is
settled:
   the approval page (or the deadline sweeper) resumes it, or an admin decides in the
   Prefect UI. A resumed run starts again from the top: rendering finds nothing changed,
   nobody is asked twice, and the suspend with the same key returns the input at once.
4. Approved, it **publishes** each post at its time: when that is more than
   the lead away (settings), this run schedules a run of its own deployment shortly before the time
   and ends (nothing waits for days); the scheduled run finds the gate settled and
   publishes. The report artifact links the live posts.

Nothing approved is dropped: a decision is stored before any run is resumed, and
``approval-deadlines`` resumes every suspended run whose gate settled meanwhile.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from prefect import asuspend_flow_run, flow, get_run_logger
from prefect.deployments import arun_deployment
from prefect.runtime import deployment as current_deployment
from prefect.runtime import flow_run as current_flow_run
from prefect.states import Completed

from newsroom.approval import GateOutcome, GateStatus, gate_summary_markdown
from newsroom.delivery import PreparedOccurrence, grace_ends
from newsroom.markdown import md_text
from newsroom.orchestration import suspension
from newsroom.orchestration.gate import ApprovalInput, token_is_newsroom
from newsroom.planning import publication_run_start
from newsroom.runtime import get_runtime
from newsroom.timeutil import format_local
from tasks.campaign import (
    gate_status,
    publish,
    record_admin_decision,
    render_posts,
    request_approval,
    show_approval,
)

# Publish in this run when the first post is due within the lead (settings:
# publish_lead_seconds, default 10 min); else schedule a run that starts the pre-roll
# (publish_preroll_seconds, 45 s) before the time, or up to publish_spread_seconds (4 min)
# earlier, fixed per occurrence (many due at one second start one after another); the
# worker prefetches it and the flow waits to the second.
MAX_GATE_ROUNDS = 25
# Refused admin inputs (a name without the office role) do not end the wait; past this many
# the run stops (each resume replays every earlier input).
MAX_REFUSED_INPUTS = 200


def _now() -> datetime:
    return datetime.now(UTC)


def _suspend_timeout(prepared: PreparedOccurrence) -> int:
    """Prefect's own limit on the wait: past the slot plus its grace nothing is published."""
    ends = grace_ends(get_runtime().catalog, prepared.campaign_id, prepared.first_publish_at)
    seconds = (ends - _now()).total_seconds()
    return max(int(seconds) + 3600, 3600)


async def wait_for_gate(prepared: PreparedOccurrence, status: GateStatus) -> GateStatus:
    """Suspend until the gate is settled; an admin's input decides it when the name given
    is a registry person whose role allows it. A refused input is logged and audited, and
    the run waits again (it does not count towards MAX_GATE_ROUNDS)."""
    logger = get_run_logger()
    runtime = get_runtime()
    rounds = refused = 0
    problem = ""
    while rounds < MAX_GATE_ROUNDS and refused < MAX_REFUSED_INPUTS:
        if status.settled:
            return status
        description = (
            "## Wartet auf Freigabe / waiting for approval\n\nNewsroom setzt diesen Lauf "
            "fort, sobald die Freigebenden entschieden haben. **Admins** des Amts für "
            "Kommunikation können hier entscheiden: Entscheidung, Kommentar und unter "
            "*admin* die eigene Kennung aus registry/people.yaml (Rolle office-admin); "
            "andere Namen werden abgelehnt. / Admins of the Amt für Kommunikation may "
            "decide here with their registry id (role office-admin); it is recorded as an "
            "admin decision, any other name is refused.\n\n"
            + (f"**Nicht angenommen / refused:** {md_text(problem, limit=600)}\n\n"
               if problem else "")
            + (f"**Diese Entscheidung gilt für Stufe {status.step + 1} von "
               f"{len(status.steps)}: {md_text(status.steps[status.step].name)} / this "
               "decision decides this step** (approving a step that is not the last asks "
               "the next one; the run waits on).\n\n" if len(status.steps) > 1 else "")
            + gate_summary_markdown(status, runtime.catalog, prepared.posts))
        logger.info("waiting for approval of %s %s: %s", prepared.campaign_id,
                    prepared.occurrence_date, status.reason)
        key = f"gate-{prepared.bundle_hash[:20]}-{rounds}" + (f"-r{refused}" if refused else "")
        suspension.log_waits_as_info()  # the wait ends the run: INFO, not ERROR
        received = await asuspend_flow_run(
            wait_for_input=ApprovalInput.with_initial_data(description=description),
            key=key, timeout=_suspend_timeout(prepared))
        status = await gate_status(prepared.occurrence_id)
        if status.settled or token_is_newsroom(runtime, received.newsroom_token,
                                               prepared.occurrence_id):
            rounds, problem = rounds + 1, ""
            continue
        decided = await record_admin_decision(prepared.occurrence_id, received.decision,
                                              received.comment, received.admin,
                                              input_key=key)
        if isinstance(decided, str):
            refused, problem = refused + 1, decided
            logger.warning("admin input refused, still waiting for a valid decision: %s",
                           decided)
            continue
        if decided != status:
            # (A replayed input of an earlier round changes nothing and is not shown again.)
            await show_approval(prepared, decided)
        rounds, problem, status = rounds + 1, "", decided
    raise RuntimeError(f"the gate of {prepared.campaign_id} {prepared.occurrence_date} did "
                       f"not settle after {rounds} resumes and {refused} refused inputs")


def _run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters
    return f"{params['campaign_id']} {params['occurrence_date']}"


@flow(name="campaign", flow_run_name=_run_name, persist_result=False)
async def campaign(campaign_id: str, occurrence_date: date):
    """Render, approve, publish and report one campaign on one date."""
    logger = get_run_logger()
    prepared = await render_posts(campaign_id, occurrence_date)
    status: GateStatus | None = None
    if not prepared.pre_approved:
        # Prefect types an async task's return_state call as the State itself; it is
        # awaited like the task's other calls.
        asked = await request_approval(prepared, return_state=True)  # type: ignore[misc]
        requested: GateStatus = await asked.aresult()
        status = requested
        if not status.settled and asked.name == "Cached":
            # request-approval is Cached from an earlier run of this occurrence (a
            # resumed run, or the publication run scheduled after approval): read the
            # gate as it is now before waiting. A request that ran just now read it
            # last (a task run less per waiting campaign).
            status = await gate_status(prepared.occurrence_id)
        if status != requested and (status.settled
                                    or status.outcome == GateOutcome.ESCALATED):
            # Settled or escalated while no process waited: the run shows it (a
            # signature that left the gate open was shown by the approval page).
            await show_approval(prepared, status)
        status = await wait_for_gate(prepared, status)
        if status.outcome != GateOutcome.APPROVED:
            logger.info("not published: gate %s (%s)", status.outcome.value, status.reason)
            return Completed(message=f"not published: approval {status.outcome.value}",
                             data={"outcome": status.outcome.value})

    settings = get_runtime().settings
    lead = timedelta(seconds=settings.publish_lead_seconds)
    # The publication run itself never schedules another (it may start early: prefetch).
    is_publication_run = "publish" in (current_flow_run.tags or [])
    if (prepared.first_publish_at - _now() > lead and current_deployment.id
            and not is_publication_run):
        preroll = timedelta(seconds=settings.publish_preroll_seconds)
        start = publication_run_start(
            prepared.first_publish_at, prepared.occurrence_id, preroll=preroll,
            spread=min(timedelta(seconds=settings.publish_spread_seconds), lead - preroll))
        run = await arun_deployment(
            current_deployment.id, parameters={"campaign_id": campaign_id,
                                               "occurrence_date": occurrence_date.isoformat()},
            scheduled_time=start, timeout=0, as_subflow=False,
            idempotency_key=f"publish-{prepared.occurrence_id}-{prepared.bundle_hash[:16]}",
            tags=["publish"])
        logger.info("approved; publication run %s scheduled for %s", run.id, start.isoformat())
        when = format_local(prepared.first_publish_at)
        return Completed(message=f"approved; publishes at {when} in run {run.name}",
                         data={"outcome": "approved", "publication_run": str(run.id)})

    report = await publish(prepared, status)
    message = (f"published on {len(report.published)} channel(s), "
               f"{len(report.awaiting_manual)} awaiting manual post")
    if not report.ok:
        raise RuntimeError(message + f"; failed: {sorted(report.failed)}, unknown: "
                           f"{sorted(report.unknown)} (see the report artifact)")
    return Completed(message=message, data={"outcome": "published",
                                            "published": report.published,
                                            "skipped": report.skipped})
