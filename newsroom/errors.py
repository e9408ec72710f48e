"""Newsroom's exception tree.

    NewsroomError
    ├── CatalogError            the campaign catalog has problems (carries CatalogIssue items)
    ├── RenderError             a template could not be rendered for one channel
    ├── StoreError              the database refused or lost something
    │   └── AlreadyReserved     a publication for this post and channel exists already
    └── PublishError            a channel could not publish a post
        ├── TransientPublishError   try again later (429, HTTP 5xx, SMTP 4yz, timeouts, Meta
        │                           codes 1/2/4/17)
        ├── PermanentPublishError   do not retry (400/401/403/422, Meta code 190)
        │   ├── CredentialRefused   the network refused the credential (401/403, a 422 that
        │   │                       speaks of the token, Meta code 190, SMTP's 5yz to AUTH):
        │   │                       renew it
        │   └── RecipientsRefused   the mail server refused some press addresses for good
        │                           (5yz to RCPT TO or DATA); the others got the release
        └── AmbiguousPublishError   the request may have reached the network: never repeat blindly
                                    (no answer; 502/504 to a create on a network without
                                    deduplication)

Every error that reaches a user says what is wrong and what to do about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class NewsroomError(Exception):
    """Base of every error Newsroom raises on purpose."""


@dataclass(frozen=True, order=True)
class CatalogIssue:
    """One problem in the catalog, located to a file and line.

    ``severity`` is "error" (the catalog cannot be used) or "warning" (it can, but look at it).
    """

    file: str
    line: int
    message: str
    hint: str = ""
    field: str = ""
    severity: str = "error"

    def format(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        head = f"{where}: {self.severity}: "
        if self.field:
            head += f"{self.field}: "
        text = head + self.message
        if self.hint:
            text += f"\n    what to do: {self.hint}"
        return text

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


class CatalogError(NewsroomError):
    def __init__(self, issues: list[CatalogIssue]):
        self.issues = issues
        super().__init__("\n".join(issue.format() for issue in issues))


class RenderError(NewsroomError):
    def __init__(self, message: str, *, template: str = "", line: int = 0, hint: str = ""):
        self.template = template
        self.line = line
        self.hint = hint
        super().__init__(message)


class StoreError(NewsroomError):
    pass


class AlreadyReserved(StoreError):
    """The publication of this post on this channel has been reserved before."""


class PublishError(NewsroomError):
    """A channel could not publish. ``network_message`` is the network's own words.

    ``progress`` is what the publisher did achieve before failing, as JSON-able data
    (e.g. the e-mail recipients who got the message): the publishing step records it and
    hands it back to :meth:`Publisher.restore_progress` before the next attempt, so a
    retry in a later run does not repeat what already went out.
    """

    def __init__(
        self,
        message: str,
        *,
        channel: str = "",
        status_code: int | None = None,
        network_message: str = "",
        retry_after: float | None = None,
        progress: Mapping[str, Any] | None = None,
    ):
        self.channel = channel
        self.progress = dict(progress) if progress else {}
        self.status_code = status_code
        self.network_message = network_message
        self.retry_after = retry_after
        super().__init__(message)


class TransientPublishError(PublishError):
    pass


class PermanentPublishError(PublishError):
    pass


class CredentialRefused(PermanentPublishError):
    """The network refused the credential itself, not the post: 401, 403, Meta's code
    190, or a 422 whose words are about the token or the login (Mastodon's
    ``require_user!`` answers 422 "This method requires an authenticated user" to a token
    without a user; other servers of Mastodon's API answer a bad token so too).
    ``network_message`` carries the network's own words."""


class RecipientsRefused(PermanentPublishError):
    """The mail server refused the press release for some addresses of the press list for
    good (a 5yz reply to RCPT TO or to DATA, RFC 5321 §4.2.1) and every other recipient
    got it (``progress``). ``refused`` maps each refused address to the server's reply
    (``550 5.1.1 …``): an address to fix in the registry, then a retry writes to it alone."""

    def __init__(self, message: str, *, refused: Mapping[str, str], **kwargs: Any):
        self.refused = dict(refused)
        super().__init__(message, **kwargs)


class AmbiguousPublishError(PublishError):
    pass


def relative_path(path: Path | str) -> str:
    """Show a path relative to the working directory when it lies below it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)
