"""Requests from Dezernate and Ämter to the communications office.

A Dezernat (by its portfolio) or an Amt proposes posts through a signed invitation link
(:func:`invite_link`): topic, desired date or window, channels, draft text, images with
alt text, links. The office then decides::

    submitted ──► accepted      a campaign draft file is written into the catalog
        │    └──► declined      with a reason
        └──► asked_back ──► resubmitted ──► (accepted | asked_back | declined)

Everything here is the domain core (no Prefect): checking a form (:func:`check_request`,
German messages for the form, English for the command line), storing a request and its
images in one step (:func:`submit_request`, :func:`resubmit_request`), the decisions
(:func:`accept_request`, :func:`ask_back`, :func:`decline_request`), turning an accepted
request into a campaign file that ``newsroom validate`` accepts (:func:`campaign_draft`),
and telling people (:func:`notify_step`). Every step is written to the audit trail under
``request-<id>``.

The modules, each importing only those above it::

    errors          RequestError and its kinds (the tree is drawn there)
    requesters      who asks: a Dezernat or an Amt from the directory
    links           signed invitation and answer links
    form            the form and checking it
    submission      storing a request and its images; loading it
    decisions       who may decide; asking back, declining
    acceptance      an accepted request becomes a campaign file in the catalog
    notifications   the messages each state owes, sent once per revision

This package re-exports what callers use: ``from newsroom import requests as domain``
then ``domain.X``.
"""

from __future__ import annotations

from newsroom.requests.acceptance import (
    DRAFTS_DIR,
    EXTRA_LINKS,
    AcceptedRequest,
    accept_request,
    campaign_draft,
    parse_publish_at,
)
from newsroom.requests.decisions import ask_back, authorize_decision, decline_request
from newsroom.requests.errors import (
    DraftInvalid,
    InvalidRequest,
    InviteRefused,
    Problem,
    RequestError,
    RequestNotFound,
    WrongState,
)
from newsroom.requests.form import (
    ALLOWED_IMAGE_TYPES,
    MAX_IMAGE_BYTES,
    MAX_IMAGES,
    CheckedImage,
    ImageUpload,
    RequestDraft,
    RequestForm,
    check_request,
)
from newsroom.requests.links import (
    ANSWER,
    INVITE,
    answer_link,
    check_answer_link,
    check_invite,
    invite_link,
)
from newsroom.requests.notifications import NotifyContext, notify_step, pending_step
from newsroom.requests.requesters import Requester, requester_for
from newsroom.requests.submission import load_request, resubmit_request, submit_request

__all__ = [
    "ALLOWED_IMAGE_TYPES",
    "ANSWER",
    "AcceptedRequest",
    "CheckedImage",
    "DRAFTS_DIR",
    "DraftInvalid",
    "EXTRA_LINKS",
    "INVITE",
    "ImageUpload",
    "InvalidRequest",
    "InviteRefused",
    "MAX_IMAGES",
    "MAX_IMAGE_BYTES",
    "NotifyContext",
    "Problem",
    "RequestDraft",
    "RequestError",
    "RequestForm",
    "RequestNotFound",
    "Requester",
    "WrongState",
    "accept_request",
    "answer_link",
    "ask_back",
    "authorize_decision",
    "campaign_draft",
    "check_answer_link",
    "check_invite",
    "check_request",
    "decline_request",
    "invite_link",
    "load_request",
    "notify_step",
    "parse_publish_at",
    "pending_step",
    "requester_for",
    "resubmit_request",
    "submit_request",
]
