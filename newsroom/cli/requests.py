"""``newsroom requests``: requests from Dezernate and Ämter to the communications office.

    newsroom requests [--all]                       open requests (or all)
    newsroom requests show ID                       one request, its images and audit trail
    newsroom requests accept ID [--campaign-id X] [--at "YYYY-MM-DD HH:MM"] [--approver P]
    newsroom requests ask ID --question TEXT
    newsroom requests decline ID --reason TEXT
    newsroom requests invite --portfolio sport | --office wahlamt [--days 90]
    newsroom requests invitations [OFFICE] [--all]  invitations issued (open ones)
    newsroom requests revoke OFFICE | --invitation N   withdraw invitations
    newsroom requests sweep                         start/resume runs that are missing

A decision is stored first; then the request's waiting Prefect run is resumed (or a run
started) to tell the requester. Without a reachable Prefect server the decision stays
stored and housekeeping's request sweep (every minute, flows/housekeeping.py) tells the
requester once it runs. Registered in ``newsroom/cli/main.py``.
"""

from __future__ import annotations

import getpass
import sys

import click

from newsroom.errors import NewsroomError
from newsroom.timeutil import format_local


def _who(by: str | None) -> str:
    if by:
        return by if ":" in by else f"admin:{by}"
    try:
        return f"admin:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no user name: say so in the audit trail
        return "admin:unknown"


def _decider(runtime, request_id: int, by: str | None) -> str:
    """Who decides, as the Prefect form's input is checked: a registry person whose role
    allows deciding requests (the refusal is audited and ends the command)."""
    from newsroom import requests as domain

    return domain.authorize_decision(runtime.engine, runtime.catalog, request_id,
                                     _who(by), via="cli")


def _fail(message: str, todo: str = "") -> None:
    click.echo(f"newsroom: {message}", err=True)
    if todo:
        click.echo(f"    what to do: {todo}", err=True)
    sys.exit(1)


def _runtime():
    from newsroom.runtime import get_runtime

    try:
        runtime = get_runtime()
        runtime.catalog  # noqa: B018 - fails early with the catalog's errors
    except NewsroomError as exc:
        _fail(str(exc), "fix the catalog first (newsroom validate)")
    return runtime


def _tell_requester(runtime, request_id: int) -> None:
    """Resume (or start) the request's run so it tells the requester."""
    from newsroom.orchestration.embedded import reachable_prefect_api

    if not reachable_prefect_api():
        click.echo("note: no Prefect server reachable; the decision is stored and the "
                   "housekeeping run tells the requester once Prefect runs again "
                   "(or run `newsroom requests sweep` then)")
        return
    from newsroom.orchestration.request_runs import after_decision
    from newsroom.orchestration.stack import run_async

    try:
        outcome = run_async(after_decision(request_id, runtime))
    except Exception as exc:  # noqa: BLE001 - the decision is stored; say so
        click.echo(f"note: the decision is stored, but its run could not be resumed ({exc}); "
                   "the housekeeping run retries within a minute")
        return
    click.echo({"resumed": "the waiting run was resumed; it tells the requester",
                "started": "a run was started; it tells the requester",
                "running": "its run is under way and tells the requester"}[outcome])


def _local(moment) -> str:
    return format_local(moment)


@click.group(invoke_without_command=True)
@click.option("--all", "show_all", is_flag=True, help="Also accepted and declined requests.")
@click.pass_context
def requests(ctx: click.Context, show_all: bool) -> None:
    """Requests from Dezernate and Ämter: list open ones (subcommands decide)."""
    if ctx.invoked_subcommand is not None:
        return
    from newsroom import store
    from newsroom.store import requests_crud as crud

    runtime = _runtime()
    with store.session_scope(runtime.engine) as session:
        rows = crud.list_requests(session, statuses=None if show_all else crud.OPEN_STATUSES)
    if not rows:
        click.echo("no open requests" if not show_all else "no requests")
        return
    for row in rows:
        window = row.desired_from.isoformat() + (f"..{row.desired_to.isoformat()}"
                                                 if row.desired_to else "")
        extra = f" -> {row.campaign_id}" if row.campaign_id else ""
        run = "" if row.flow_run_id or row.status not in ("submitted", "resubmitted") \
            else "  [no run yet: newsroom requests sweep]"
        click.echo(f"{row.id:>4}  {row.status:<11}  {row.requester_kind}:{row.requester_id:<18}"
                   f"  {window:<22}  {row.title}{extra}{run}")
    click.echo("decide: newsroom requests accept|ask|decline ID (details: newsroom requests "
               "show ID)")


@requests.command("show")
@click.argument("request_id", type=int)
def requests_show(request_id: int) -> None:
    """One request: what is asked, its images, and its audit trail."""
    from newsroom import requests as domain
    from newsroom import store
    from newsroom.store import requests_crud as crud

    runtime = _runtime()
    try:
        row, images = domain.load_request(runtime.engine, request_id)
    except domain.RequestNotFound as exc:
        _fail(str(exc), "list them with `newsroom requests --all`")
    click.echo(f"request {row.id}: {row.title}  [{row.status}, revision {row.revision}]")
    click.echo(f"  from:      {row.requester_kind} {row.requester_id} "
               f"({row.contact_name} <{row.contact_email}>)")
    click.echo(f"  topic:     {row.topic}")
    click.echo(f"  desired:   {row.desired_from}"
               + (f" to {row.desired_to}" if row.desired_to else "")
               + (f" at {row.desired_time}" if row.desired_time else ""))
    click.echo(f"  channels:  {', '.join(row.channels)}")
    if row.hashtags:
        click.echo(f"  hashtags:  {' '.join('#' + t for t in row.hashtags)}")
    for link in row.links:
        click.echo(f"  link:      {link}")
    for image in images:
        click.echo(f"  image {image.position}:   {image.filename} ({image.size} bytes, "
                   f"{image.content_type}) alt: {image.alt}")
    if row.notes:
        click.echo(f"  notes:     {row.notes}")
    if row.question:
        click.echo(f"  asked:     {row.question}")
    if row.answer:
        click.echo(f"  answer:    {row.answer}")
    if row.reason:
        click.echo(f"  declined:  {row.reason}")
    if row.campaign_id:
        click.echo(f"  campaign:  {row.campaign_id} ({row.campaign_file})")
    click.echo("  text:")
    for line in row.text.splitlines():
        click.echo(f"    | {line}")
    with store.session_scope(runtime.engine) as session:
        events = store.audit_trail(session, campaign_id=crud.audit_key(request_id))
    click.echo("  audit:")
    for event in events:
        click.echo(f"    {_local(event.at)}  {event.action:<28} {event.actor}")


def _decided(request_id: int, step) -> None:
    from newsroom import requests as domain

    try:
        message = step()
    except domain.InvalidRequest as exc:
        _fail("; ".join(p.en for p in exc.problems), "correct the option and run it again")
    except domain.DraftInvalid as exc:
        _fail(str(exc), "fix what the campaign check says (e.g. --at, --campaign-id, "
                        "--approver), or ask back: newsroom requests ask ID --question …")
    except domain.WrongState as exc:
        _fail(str(exc), f"see `newsroom requests show {request_id}`")
    except domain.RequestNotFound as exc:
        _fail(str(exc), "list them with `newsroom requests --all`")
    except (NewsroomError, LookupError) as exc:
        _fail(str(exc))
    click.echo(message)


@requests.command("accept")
@click.argument("request_id", type=int)
@click.option("--campaign-id", default=None, help="Id of the new campaign (default: from the "
              "request's title).")
@click.option("--at", "publish_at", default=None, metavar="'YYYY-MM-DD HH:MM'",
              help="When to publish, Darmstadt time (default: the desired date and time).")
@click.option("--approver", default=None, help="Who approves: a portfolio or person id "
              "(default: the requesting Dezernat; required for an Amt).")
@click.option("--kind", default="service_information", show_default=True,
              help="The campaign's kind.")
@click.option("--by", default=None, help="Who decides: your id in registry/people.yaml "
              "(role office-admin or office-editor; default: your user name).")
def requests_accept(request_id: int, campaign_id: str | None, publish_at: str | None,
                    approver: str | None, kind: str, by: str | None) -> None:
    """Accept: write the campaign file into the catalog (validated) and tell the requester."""
    from newsroom import requests as domain
    from newsroom.errors import relative_path

    runtime = _runtime()

    def step() -> str:
        accepted = domain.accept_request(
            runtime.engine, runtime.catalog, runtime.settings.data_dir, request_id,
            by=_decider(runtime, request_id, by), via="cli", campaign_id=campaign_id,
            publish_at=domain.parse_publish_at(publish_at), approver=approver, kind=kind)
        approvers = ", ".join(f"{k} {v}" for a in accepted.approvers for k, v in a.items())
        return (f"request {request_id} accepted: campaign {accepted.campaign_id} written to "
                f"{relative_path(accepted.path)} (publishes {_local(accepted.publish_at)}, "
                f"approved by {approvers}); it validates")

    _decided(request_id, step)
    _tell_requester(runtime, request_id)


@requests.command("ask")
@click.argument("request_id", type=int)
@click.option("--question", required=True, help="What the requester should answer (German).")
@click.option("--by", default=None, help="Who asks: your id in registry/people.yaml "
              "(role office-admin or office-editor; default: your user name).")
def requests_ask(request_id: int, question: str, by: str | None) -> None:
    """Ask the requester a question; their answer comes back as a new revision."""
    from newsroom import requests as domain

    runtime = _runtime()
    _decided(request_id, lambda: (domain.ask_back(runtime.engine, request_id,
                                                  question=question,
                                                  by=_decider(runtime, request_id, by)),
                                  f"request {request_id}: question recorded")[1])
    _tell_requester(runtime, request_id)


@requests.command("decline")
@click.argument("request_id", type=int)
@click.option("--reason", required=True, help="Why (German; the requester is told).")
@click.option("--by", default=None, help="Who declines: your id in registry/people.yaml "
              "(role office-admin or office-editor; default: your user name).")
def requests_decline(request_id: int, reason: str, by: str | None) -> None:
    """Decline, with a reason the requester is told."""
    from newsroom import requests as domain

    runtime = _runtime()
    _decided(request_id, lambda: (domain.decline_request(runtime.engine, request_id,
                                                         reason=reason,
                                                         by=_decider(runtime, request_id, by)),
                                  f"request {request_id}: declined")[1])
    _tell_requester(runtime, request_id)


@requests.command("invite")
@click.option("--portfolio", default=None, help="A Dezernat, by its portfolio id (e.g. sport).")
@click.option("--office", default=None, help="An Amt, by its id (e.g. wahlamt).")
@click.option("--days", default=90.0, show_default=True, type=float,
              help="How long the link works.")
def requests_invite(portfolio: str | None, office: str | None, days: float) -> None:
    """Print the signed invitation link to the request form of a Dezernat or an Amt."""
    from newsroom import requests as domain

    if bool(portfolio) == bool(office):
        raise click.UsageError("name either --portfolio (a Dezernat) or --office (an Amt)")
    if days <= 0:
        raise click.BadParameter("give a positive number of days", param_hint="--days")
    runtime = _runtime()
    try:
        requester = domain.requester_for(runtime.catalog, "portfolio" if portfolio else
                                         "office", portfolio or office or "")
    except LookupError as exc:
        _fail(str(exc), "use an id from campaigns/registry/people.yaml")
    from newsroom.invitations import issue_invitation

    link, invitation = issue_invitation(runtime.engine, runtime.signer, runtime.base_url,
                                        requester, days=days, by=_who(None))
    click.echo(link)
    click.echo(f"invitation #{invitation.id} for {requester.name}; valid until "
               f"{_local(invitation.expires_at)} (Darmstadt time). Send it to them; anyone "
               "with the link can submit requests in their name (withdraw it with "
               f"`newsroom requests revoke --invitation {invitation.id}`).", err=True)


def _requester(runtime, target: str):
    """The Dezernat or Amt an OFFICE argument names: a portfolio or office id of the
    registry, or ``portfolio:ID`` / ``office:ID`` when both have that id."""
    from newsroom import requests as domain

    index = runtime.catalog.index
    if ":" in target:
        kind, _, requester_id = target.partition(":")
    else:
        kinds = [k for k, ids in (("portfolio", index.portfolios), ("office", index.offices))
                 if target in ids]
        if len(kinds) > 1:
            raise click.UsageError(f"{target!r} is a portfolio and an office; write "
                                   f"portfolio:{target} or office:{target}")
        if not kinds:
            _fail(f"no portfolio or office {target!r} in registry/people.yaml",
                  "known portfolios: " + ", ".join(sorted(index.portfolios))
                  + "; offices: " + ", ".join(sorted(index.offices)))
        kind, requester_id = kinds[0], target
    try:
        return domain.requester_for(runtime.catalog, kind, requester_id)
    except LookupError as exc:
        _fail(str(exc), "use an id from campaigns/registry/people.yaml")


def _invitation_line(row, now) -> str:
    if row.revoked_at is not None:
        state = f"revoked {_local(row.revoked_at)} by {row.revoked_by}"
    elif row.expires_at <= now:
        state = "expired"
    else:
        state = "open"
    return (f"  #{row.id:<4} {row.requester_kind}:{row.requester_id:<18} issued "
            f"{_local(row.issued_at)} by {row.issued_by}, valid until {_local(row.expires_at)}"
            f"  [{state}]")


@requests.command("invitations")
@click.argument("office", required=False)
@click.option("--all", "show_all", is_flag=True, help="Also revoked and expired ones.")
def requests_invitations(office: str | None, show_all: bool) -> None:
    """The invitations issued (to one Dezernat or Amt: OFFICE): open ones, or all."""
    from datetime import UTC, datetime

    from newsroom.invitations import list_invitations

    runtime = _runtime()
    requester = _requester(runtime, office) if office else None
    rows = list_invitations(runtime.engine, kind=requester.kind.value if requester else None,
                            requester_id=requester.id if requester else None)
    now = datetime.now(UTC)
    if not show_all:
        rows = [r for r in rows if r.revoked_at is None and r.expires_at > now]
    if not rows:
        click.echo("no invitations" if show_all else "no open invitations")
        return
    for row in rows:
        click.echo(_invitation_line(row, now))


@requests.command("revoke")
@click.argument("office", required=False)
@click.option("--invitation", "invitation_id", type=int, default=None,
              help="Only this invitation (its number from `newsroom requests invitations`).")
@click.option("--by", default=None, help="Who revokes (default: your user name).")
def requests_revoke(office: str | None, invitation_id: int | None, by: str | None) -> None:
    """Withdraw invitations without rotating the key: every one issued to a Dezernat or
    Amt before now (OFFICE: its portfolio or office id in registry/people.yaml), or one
    (--invitation N). Their links then show that they were withdrawn."""
    from datetime import UTC, datetime

    from newsroom import invitations

    if bool(office) == (invitation_id is not None):
        raise click.UsageError("name either OFFICE (a portfolio or office id) or "
                               "--invitation N")
    runtime = _runtime()
    now = datetime.now(UTC)
    if invitation_id is not None:
        try:
            done = invitations.revoke_invitation(runtime.engine, invitation_id, by=_who(by),
                                                 now=now)
        except invitations.InvitationNotFound as exc:
            _fail(str(exc), "list them with `newsroom requests invitations --all`")
        if not done.revoked:
            click.echo(f"invitation #{invitation_id} was revoked already; nothing changed")
            return
        click.echo(f"revoked invitation #{invitation_id}:")
        click.echo(_invitation_line(done.revoked[0], now))
        return
    requester = _requester(runtime, office or "")
    done = invitations.revoke_requester(runtime.engine, requester, by=_who(by), now=now)
    click.echo(f"revoked {len(done.revoked)} open invitation(s) of {requester.name} "
               f"({requester.kind.value} {requester.id})"
               + (":" if done.revoked else ""))
    for row in done.revoked:
        click.echo(_invitation_line(row, now))
    click.echo(f"every link to {requester.name} issued before {_local(now)} (Darmstadt time) "
               "is refused from now on, also links issued before invitations were recorded. "
               f"A new one: newsroom requests invite --{requester.kind.value} {requester.id}")


@requests.command("sweep")
def requests_sweep() -> None:
    """Start the runs of requests stored while Prefect was unreachable (and resume runs
    whose decision was stored meanwhile)."""
    runtime = _runtime()
    from newsroom.orchestration.embedded import reachable_prefect_api

    api_url = reachable_prefect_api()
    if not api_url:
        _fail("no Prefect server reachable", "start it (newsroom up) or set PREFECT_API_URL; "
              "the requests stay stored meanwhile")
    from newsroom.orchestration.request_runs import sweep_requests
    from newsroom.orchestration.stack import run_async

    done = run_async(sweep_requests(runtime))
    click.echo(f"started {len(done['started'])} run(s) {done['started'] or ''}, resumed "
               f"{len(done['resumed'])} {done['resumed'] or ''}".rstrip())
