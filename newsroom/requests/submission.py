"""Storing a request: a checked draft with its images in one step (:func:`submit_request`),
the requester's answer to a question (:func:`resubmit_request`), loading it again."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from newsroom import store
from newsroom.requests.errors import InvalidRequest, Problem, RequestNotFound, WrongState
from newsroom.requests.form import ALLOWED_IMAGE_TYPES, CheckedImage, RequestDraft, clean_text
from newsroom.requests.requesters import Requester
from newsroom.store import requests_crud as crud
from newsroom.store.models import CampaignRequest, RequestImage, RequestStatus, utcnow

__all__ = [
    "UPLOADS_DIR",
    "load_request",
    "remove_files",
    "resubmit_request",
    "submit_request",
]

UPLOADS_DIR = "requests"  # under the data dir


def _write_images(data_dir: Path, request_id: int, images: Sequence[CheckedImage],
                  written: list[Path]) -> list[tuple[CheckedImage, str]]:
    """Write each image (temp file, then rename); record every path in ``written``."""
    folder = data_dir / UPLOADS_DIR / str(request_id)
    folder.mkdir(parents=True, exist_ok=True)
    stored = []
    for image in images:
        relative = Path(UPLOADS_DIR) / str(request_id) / (
            f"{image.position}-{image.sha256[:12]}{ALLOWED_IMAGE_TYPES[image.content_type]}")
        target = data_dir / relative
        temporary = target.with_suffix(target.suffix + ".part")
        written.append(temporary)
        temporary.write_bytes(image.data)
        os.replace(temporary, target)
        written.append(target)
        stored.append((image, relative.as_posix()))
    return stored


def remove_files(paths: Sequence[Path]) -> None:
    """Remove files written by a step that did not complete, and their folders when empty."""
    for path in paths:
        path.unlink(missing_ok=True)
    for folder in {p.parent for p in paths}:
        try:
            folder.rmdir()  # only when empty
        except OSError:
            pass


def _draft_fields(draft: RequestDraft) -> dict[str, Any]:
    return dict(title=draft.title, topic=draft.topic, desired_from=draft.desired_from,
                desired_to=draft.desired_to, desired_time=draft.desired_time,
                channels=list(draft.channels), text=draft.text, hashtags=list(draft.hashtags),
                links=list(draft.links), notes=draft.notes, contact_name=draft.contact_name,
                contact_email=draft.contact_email)


def submit_request(engine: Engine, data_dir: Path, requester: Requester, draft: RequestDraft,
                   *, invite_nonce: str, actor: str = "") -> int:
    """Store a checked request with its images in one transaction; its id.

    The image files are written inside the transaction and removed again when it does
    not commit: a request is stored whole or not at all.
    """
    written: list[Path] = []
    try:
        with store.session_scope(engine) as session:
            row = crud.create_request(session, requester_kind=requester.kind.value,
                                      requester_id=requester.id, invite_nonce=invite_nonce,
                                      **_draft_fields(draft))
            assert row.id is not None
            for image, relative in _write_images(data_dir, row.id, draft.images, written):
                crud.add_request_image(session, request_id=row.id, position=image.position,
                                       filename=image.filename, stored_path=relative,
                                       content_type=image.content_type,
                                       size=len(image.data), sha256=image.sha256,
                                       alt=image.alt)
            request_id = row.id
            store.record_audit(  # commits the request, its images and this event together
                session, campaign_id=crud.audit_key(request_id),
                actor=actor or f"{requester.kind.value}:{requester.id}",
                action="request.submitted", content_hash=_request_hash(row, draft.images),
                detail={"requester": requester.ref, "title": draft.title,
                        "channels": list(draft.channels), "images": len(draft.images),
                        "invite_nonce": invite_nonce, "via": "form"})
    except BaseException:
        remove_files(written)
        raise
    return request_id


def resubmit_request(engine: Engine, data_dir: Path, request_id: int, draft: RequestDraft,
                     *, answer: str, actor: str = "") -> CampaignRequest:
    """The requester's answer to a question asked back: the request, changed, goes back to
    the office (state ``resubmitted``, next revision); new images are added."""
    answer = clean_text(answer, 4000)[:4000]
    if not answer:
        raise InvalidRequest([Problem("answer", "Bitte beantworten Sie die Rückfrage.",
                                      "the answer is missing")])
    written: list[Path] = []
    try:
        with store.session_scope(engine) as session:
            row = crud.get_request(session, request_id=request_id, for_update=True)
            if row is None:
                raise RequestNotFound(f"no request {request_id}")
            if row.status != RequestStatus.ASKED_BACK.value:
                raise WrongState(f"request {request_id} is {row.status}; only a request that "
                                 "was asked back can be answered")
            existing = crud.request_images(session, request_id=request_id)
            offset = max((i.position for i in existing), default=0)
            renumbered = [CheckedImage(offset + k + 1, i.filename, i.data, i.alt,
                                       i.content_type) for k, i in enumerate(draft.images)]
            for key, value in _draft_fields(draft).items():
                setattr(row, key, value)
            row.answer, row.status = answer, RequestStatus.RESUBMITTED.value
            row.revision += 1
            row.flow_run_id = None
            row.updated_at = utcnow()
            session.add(row)
            for image, relative in _write_images(data_dir, request_id, renumbered, written):
                crud.add_request_image(session, request_id=request_id,
                                       position=image.position, filename=image.filename,
                                       stored_path=relative, content_type=image.content_type,
                                       size=len(image.data), sha256=image.sha256,
                                       alt=image.alt)
            session.flush()
            store.record_audit(session, campaign_id=crud.audit_key(request_id),
                               actor=actor or f"{row.requester_kind}:{row.requester_id}",
                               action="request.resubmitted",
                               content_hash=_request_hash(row, renumbered),
                               detail={"revision": row.revision, "answer": answer,
                                       "images_added": len(renumbered)})
    except BaseException:
        remove_files(written)
        raise
    return row


def _request_hash(row: CampaignRequest, images: Sequence[Any]) -> str:
    parts = [row.title, row.topic, str(row.desired_from), str(row.desired_to),
             str(row.desired_time), ",".join(row.channels), row.text, ",".join(row.hashtags),
             ",".join(row.links), *(getattr(i, "sha256", "") for i in images)]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def load_request(engine: Engine, request_id: int) -> tuple[CampaignRequest, list[RequestImage]]:
    with store.session_scope(engine) as session:
        row = crud.get_request(session, request_id=request_id)
        if row is None:
            raise RequestNotFound(f"no request {request_id}; `newsroom requests` lists them")
        return row, crud.request_images(session, request_id=request_id)
