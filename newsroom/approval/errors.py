"""What a refused approval link says, and what a genuine one points at.

Errors of a refused link (all :class:`ApprovalLinkError`, with the HTTP status a page
shows)::

    ApprovalError                  the gate cannot do what was asked
    └── ApprovalLinkError
        ├── LinkForged        400  not our link, altered, or for something else
        ├── InvalidDecision   400  a decision or comment the form cannot have sent
        ├── WrongPerson       403  the link names another person than the request
        ├── LinkNotFound      404  no such request
        ├── LinkAlreadyUsed   409  the request has been decided
        ├── GateClosed        409  the gate was settled by others' decisions
        ├── ContentChanged    410  the posts changed since the link was sent
        └── LinkExpired       410  the deadline passed
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from newsroom.errors import NewsroomError
from newsroom.signing import TokenClaims
from newsroom.store import ApprovalRequest, Occurrence


@dataclass(frozen=True)
class LinkTarget:
    """What a valid approval link points at."""

    claims: TokenClaims
    request: ApprovalRequest
    occurrence: Occurrence


class ApprovalError(NewsroomError):
    """The gate cannot do what was asked (e.g. an admin decision on a settled gate)."""


class ApprovalLinkError(ApprovalError):
    status_code = 400
    # Set by check_link when the link is genuine and bound to its request (its person, its
    # content): the page may then tell its holder what became of the request and the gate.
    # Never set for a forged link, another person's or another content's.
    target: LinkTarget | None = None


class LinkForged(ApprovalLinkError):
    status_code = 400


class InvalidDecision(ApprovalLinkError):
    status_code = 400


class WrongPerson(ApprovalLinkError):
    status_code = 403


class LinkNotFound(ApprovalLinkError):
    status_code = 404


class LinkAlreadyUsed(ApprovalLinkError):
    status_code = 409

    def __init__(self, message: str, *, status: str = "", decided_at: datetime | None = None):
        self.status = status
        self.decided_at = decided_at
        super().__init__(message)


class GateClosed(ApprovalLinkError):
    status_code = 409

    def __init__(self, message: str, *, outcome: str = ""):
        self.outcome = outcome
        super().__init__(message)


class StepDone(GateClosed):
    """The request's step of the approval chain is approved already (a later step is
    asked): a decision on it no longer counts."""

    def __init__(self, message: str):
        super().__init__(message, outcome="step_done")


class ContentChanged(ApprovalLinkError):
    status_code = 410


class LinkExpired(ApprovalLinkError):
    status_code = 410
