"""What can go wrong with a request to the communications office::

    RequestError
    ├── InvalidRequest     the form's content is not usable (``problems``: field, de, en)
    ├── RequestNotFound    no request with that id
    ├── WrongState         the step does not fit the request's state (declined twice …)
    ├── InviteRefused      the invitation or answer link is forged, expired or unknown
    └── DraftInvalid       the campaign draft did not validate (``issues``)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from newsroom.errors import CatalogIssue, NewsroomError

__all__ = [
    "DraftInvalid",
    "InvalidRequest",
    "InviteRefused",
    "Problem",
    "RequestError",
    "RequestNotFound",
    "WrongState",
]

class RequestError(NewsroomError):
    """A request to the communications office cannot take this step."""


@dataclass(frozen=True)
class Problem:
    """One problem with a form field: German for the form, English for the CLI."""

    field: str
    de: str
    en: str


class InvalidRequest(RequestError):
    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(f"{p.field}: {p.en}" for p in self.problems))

    def for_field(self, name: str) -> list[str]:
        return [p.de for p in self.problems if p.field == name]


class RequestNotFound(RequestError):
    pass


class WrongState(RequestError):
    pass


class InviteRefused(RequestError):
    """``reason`` is ``forged``, ``expired``, ``unknown`` (requester gone) or ``closed``
    (an answer link whose question was answered or decided already)."""

    def __init__(self, message: str, *, reason: str):
        self.reason = reason
        super().__init__(message)


class DraftInvalid(RequestError):
    def __init__(self, message: str, issues: Sequence[CatalogIssue] = ()):
        self.issues = list(issues)
        detail = "\n".join(issue.format() for issue in self.issues)
        super().__init__(message + (f"\n{detail}" if detail else ""))
