"""Accepting a request: the campaign file it becomes (:func:`campaign_draft`), written into
the catalog with its images only when it validates (:func:`accept_request`)."""

from __future__ import annotations

import os
import re
import shutil
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import Engine

from newsroom import store
from newsroom.catalog.catalog import IMAGES_DIR, Catalog
from newsroom.catalog.validation import load_catalog
from newsroom.requests.decisions import lock_decidable
from newsroom.requests.errors import DraftInvalid, InvalidRequest, Problem
from newsroom.requests.requesters import Requester, requester_for
from newsroom.requests.submission import load_request, remove_files
from newsroom.store import requests_crud as crud
from newsroom.store.models import CampaignRequest, RequestImage, RequestStatus, utcnow
from newsroom.timeutil import BERLIN, format_local, localize, parse_local_datetime

__all__ = [
    "AcceptedRequest",
    "CATALOG_IMAGES_SUBDIR",
    "DEFAULT_DEADLINE",
    "DEFAULT_TIME",
    "DRAFTS_DIR",
    "EXTRA_LINKS",
    "accept_request",
    "campaign_draft",
    "parse_publish_at",
]

# The campaign variable an accepted request's links 2–5 are kept in (content.variables).
EXTRA_LINKS = "weitere_links"
DEFAULT_TIME = time(10, 0)
DEFAULT_DEADLINE = timedelta(hours=48)
CATALOG_IMAGES_SUBDIR = "anfragen"  # under the catalog's images/
DRAFTS_DIR = ".anfragen-entwuerfe"  # hidden: never read as a campaign


@dataclass(frozen=True)
class AcceptedRequest:
    request: CampaignRequest
    campaign_id: str
    path: Path
    publish_at: datetime
    approvers: tuple[dict[str, str], ...]


def _slug(text: str) -> str:
    ascii_text = (unicodedata.normalize("NFKD", text.replace("ß", "ss"))
                  .encode("ascii", "ignore").decode())
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:40].strip("-")


def _approver_ref(catalog: Catalog, requester: Requester, approver: str | None
                  ) -> dict[str, str]:
    if approver:
        if approver in catalog.index.portfolios:
            return {"portfolio": approver}
        if approver in catalog.index.people:
            return {"person": approver}
        raise InvalidRequest([Problem("approver", "Diese Person bzw. dieses Dezernat gibt es "
                                      "nicht.", f"approver {approver!r} is neither a portfolio "
                                      "nor a person in registry/people.yaml; known portfolios: "
                                      f"{', '.join(sorted(catalog.index.portfolios))}")])
    if requester.approver:
        return requester.approver
    raise InvalidRequest([Problem("approver", "Bitte wählen Sie, wer freigibt.",
                                  f"{requester.name} is an Amt that registry/people.yaml links "
                                  "to no Dezernat: name the approver (a portfolio or a person "
                                  "id), e.g. --approver sport")])


class _Literal(str):
    pass


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Literal, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", str(value), style="|"))


def _inline_template(text: str) -> str:
    """The requester's text as a Jinja template that renders to exactly that text."""
    if not any(mark in text for mark in ("{{", "{%", "{#")):
        return text
    # Every "{" becomes an expression printing "{": nothing the requester wrote can open a
    # tag (a raw block could be closed from inside the text).
    return text.replace("{", "{{ '{' }}")


def campaign_draft(request: CampaignRequest, images: Sequence[tuple[RequestImage, str]],
                   catalog: Catalog, *, campaign_id: str, publish_at: datetime,
                   approver: dict[str, str], deadline_before: str, kind: str,
                   accepted_by: str) -> str:
    """The YAML text of the campaign file an accepted request becomes.

    ``images`` pairs each stored image with its file name under the catalog's images/.
    """
    requester = requester_for(catalog, request.requester_kind, request.requester_id)
    body = _inline_template(request.text.strip())
    # Links are data the template prints, never template text: a link may hold "{{" or
    # "{%" (a URL's path may); as a variable's value it is printed as it is.
    if request.links[1:]:
        body += "\n{% for extra in " + EXTRA_LINKS + " %}\n{{ extra }}\n{% endfor %}"
    if request.links:
        body += "\n{{ link }}"
    if request.hashtags:
        body += "\n{{ hashtags }}"
    content: dict[str, Any] = {"text": _Literal(body + "\n")}
    if request.links:
        content["link"] = request.links[0]
    if request.hashtags:
        content["hashtags"] = list(request.hashtags)
    if images:
        content["images"] = [{"file": name, "alt": image.alt} for image, name in images]
    if request.links[1:]:
        content["variables"] = {EXTRA_LINKS: list(request.links[1:])}
    document = {
        "id": campaign_id,
        "title": request.title,
        "topic": request.topic,
        "kind": kind,
        "requested_by": requester.ref,
        "contact": request.contact_email,
        "approval": {"approvers": [approver], "mode": "one",
                     "deadline_before": deadline_before, "on_timeout": "cancel"},
        "slots": [{"at": publish_at.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M:%S"),
                   "channels": list(request.channels)}],
        "content": content,
    }
    window = (f"{request.desired_from.isoformat()}"
              + (f" to {request.desired_to.isoformat()}" if request.desired_to else "")
              + (f", {request.desired_time}" if request.desired_time else ""))
    contact = " ".join(f"{request.contact_name} <{request.contact_email}>".split())
    header = (f"# From request #{request.id} of {requester.name} (revision {request.revision}),"
              f" accepted by {' '.join(accepted_by.split())}.\n"
              f"# Desired: {window}. Contact: {contact}.\n"
              "# The requesting Dezernat approves (`approval`); edit text, time or deadline "
              "here if needed.\n")
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                              width=100)


def _publish_at(request: CampaignRequest, publish_at: datetime | None) -> datetime:
    if publish_at is not None:
        if publish_at.tzinfo is None:
            publish_at = publish_at.replace(tzinfo=BERLIN)
        return publish_at
    hour = time.fromisoformat(request.desired_time) if request.desired_time else DEFAULT_TIME
    return datetime.combine(request.desired_from, hour, tzinfo=BERLIN)


def parse_publish_at(value: str | None) -> datetime | None:
    """``YYYY-MM-DD HH:MM[:SS]`` in Darmstadt time (None when empty); else InvalidRequest."""
    if not value or not value.strip():
        return None
    try:
        return localize(parse_local_datetime(value))
    except ValueError as exc:
        raise InvalidRequest([Problem("publish_at", "Ungültiger Zeitpunkt.",
                                      f"{exc}; write YYYY-MM-DD HH:MM in Darmstadt time")]
                             ) from None


def _deadline_before(publish_at: datetime, now: datetime) -> str:
    """48 h before the post, or half the time left when that is less (never in the past)."""
    left = publish_at - now
    if left >= 2 * DEFAULT_DEADLINE:
        return "48h"
    return f"{max(int(left.total_seconds() // 2), 1)}s"


def accept_request(engine: Engine, catalog: Catalog, data_dir: Path, request_id: int, *,
                   by: str,
                   via: str = "cli", campaign_id: str | None = None,
                   publish_at: datetime | None = None, approver: str | None = None,
                   kind: str = "service_information",
                   now: datetime | None = None) -> AcceptedRequest:
    """Accept: write the campaign draft (and its images) into the catalog, validated.

    The file appears under its final name only when it validates; the request is marked
    accepted in the same step. If anything fails, the files written are removed again.
    """
    now = now or datetime.now(UTC)
    request, images = load_request(engine, request_id)
    with store.session_scope(engine) as session:
        lock_decidable(session, request_id, "accepted")
    requester = requester_for(catalog, request.requester_kind, request.requester_id)
    approver_ref = _approver_ref(catalog, requester, approver)
    when = _publish_at(request, publish_at)
    if when <= now + timedelta(seconds=30):
        raise InvalidRequest([Problem("publish_at", "Der Zeitpunkt liegt in der "
                                      "Vergangenheit.", f"the publication time "
                                      f"{format_local(when)} has passed (or is too close); "
                                      "give a later one, e.g. --at '2027-06-04 09:00'")])
    campaign_id = campaign_id or f"anfrage-{request_id}-{_slug(request.title) or 'beitrag'}"
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", campaign_id):
        raise InvalidRequest([Problem("campaign_id", "Ungültige Kampagnen-Kennung.",
                                      f"{campaign_id!r} is not a campaign id: lower-case "
                                      "letters, digits and hyphens")])
    root = catalog.root
    target = root / f"{campaign_id}.yaml"
    if target.exists() or campaign_id in catalog.campaigns:
        raise InvalidRequest([Problem("campaign_id", "Diese Kampagne gibt es schon.",
                                      f"a campaign {campaign_id!r} exists already; give "
                                      "another id with --campaign-id")])
    written: list[Path] = []
    try:
        pairs = []
        image_dir = root / IMAGES_DIR / CATALOG_IMAGES_SUBDIR
        if images:
            image_dir.mkdir(parents=True, exist_ok=True)
        for image in images:
            name = f"{campaign_id}-{image.position}{Path(image.stored_path).suffix}"
            destination = image_dir / name
            written.append(destination)
            shutil.copyfile(data_dir / image.stored_path, destination)
            pairs.append((image, f"{CATALOG_IMAGES_SUBDIR}/{name}"))
        text = campaign_draft(request, pairs, catalog, campaign_id=campaign_id,
                              publish_at=when, approver=approver_ref,
                              deadline_before=_deadline_before(when, now), kind=kind,
                              accepted_by=by)
        drafts = root / DRAFTS_DIR
        drafts.mkdir(exist_ok=True)
        draft_path = drafts / f"{campaign_id}.yaml"
        written.append(draft_path)
        draft_path.write_text(text, encoding="utf-8")
        report = load_catalog(root, only=[draft_path],
                              today=now.astimezone(BERLIN).date())
        errors = [i for i in report.issues if i.is_error]
        if errors:
            raise DraftInvalid(f"the campaign draft of request {request_id} does not "
                               "validate", errors)
        os.replace(draft_path, target)
        written.append(target)
        with store.session_scope(engine) as session:
            row = lock_decidable(session, request_id, "accepted")
            now_db = utcnow()
            row.status, row.decided_by, row.decided_at = (RequestStatus.ACCEPTED.value, by,
                                                          now_db)
            row.campaign_id, row.campaign_file = campaign_id, target.name
            row.updated_at = now_db
            session.add(row)
            session.flush()
            detail = {"revision": row.revision, "via": via, "campaign_id": campaign_id,
                      "file": target.name, "publish_at": when.isoformat(),
                      "approvers": [approver_ref]}
            store.record_audit(session, campaign_id=campaign_id, actor=by,
                               action="request.became_campaign",
                               detail={"request_id": request_id, **detail})
            store.record_audit(session, campaign_id=crud.audit_key(request_id), actor=by,
                               action="request.accepted", detail=detail)
    except BaseException:
        remove_files(written)
        try:
            (root / DRAFTS_DIR).rmdir()
        except OSError:
            pass
        raise
    try:
        (root / DRAFTS_DIR).rmdir()
    except OSError:
        pass
    return AcceptedRequest(row, campaign_id, target, when, (approver_ref,))
