"""Telling people: the :class:`Notifier` seam and its apprise implementation.

The domain core only knows ``notifier.notify(tag, subject, body_text, body_html)``; who a
tag reaches is configuration. Tags are directory ids (a person's ``notify_tag`` or id, an
office's id) and :data:`ALERT_TAG` for what the communications office must look at.

:class:`AppriseNotifier` always passes the tag and ``match_always=False``: apprise
notifies *every* service when called without a tag, and services tagged "always" on any
tag, and a confirmation link is meant for one person only. It never logs service URLs
(they may hold SMTP passwords) nor message bodies (they may hold signed links).
"""

from __future__ import annotations

import html
import logging
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import apprise
from apprise.conversion import convert_between

from newsroom.catalog.models import Directory

# Importing the e-mail channel also loads apprise's e-mail helpers with the warning about
# the deprecated `imghdr` silenced (see there): notifying by e-mail then stays quiet.
from newsroom.channels.email import parse_smtp_url

__all__ = ["ALERT_TAG", "AppriseNotifier", "Notifier", "directory_addresses",
           "links_survive_as_text"]

logger = logging.getLogger("newsroom.notify")

ALERT_TAG = "newsroom-alerts"


# --- the text part of an HTML e-mail ------------------------------------------------------
#
# apprise's e-mail service (apprise 2.0, plugins/email/base.py ``prepare_emails``) builds a
# multipart/alternative message from an HTML body whose text/plain part is its own
# conversion of the HTML (``convert_between``), and takes no text of the caller's. Newsroom
# writes its own text (the copy-ready post and the link on lines of their own), so the one
# function that module calls is wrapped here: for an HTML body Newsroom is sending right
# now it returns Newsroom's text, for anything else apprise's conversion. The bodies in
# flight are keyed by the HTML itself, so threads (apprise sends services in parallel)
# and other callers of apprise are unaffected. tests/approval/test_approval_mail.py
# checks the received text part, so an apprise that changes this fails there.
_OWN_TEXT: dict[str, list[str]] = {}
_OWN_TEXT_LOCK = threading.Lock()


# Its parameters are named as apprise's, so a caller may pass them by name too.
def _text_of_html(from_format: str, to_format: str, content: str, *args: object,
                  **kwargs: object) -> str:
    if from_format == apprise.NotifyFormat.HTML and to_format == apprise.NotifyFormat.TEXT:
        with _OWN_TEXT_LOCK:
            own = _OWN_TEXT.get(content)
        if own:
            return own[-1]
    return convert_between(from_format, to_format, content, *args, **kwargs)


def _use_own_text_parts() -> None:
    from apprise.plugins.email import base as email_base

    if getattr(email_base, "convert_between", None) is not _text_of_html:
        email_base.convert_between = _text_of_html


class _OwnTextPart:
    """While it is entered, e-mails of ``body_html`` carry ``body_text`` as text part."""

    def __init__(self, body_html: str, body_text: str):
        self.html, self.text = body_html, body_text

    def __enter__(self) -> None:
        _use_own_text_parts()
        with _OWN_TEXT_LOCK:
            _OWN_TEXT.setdefault(self.html, []).append(self.text)

    def __exit__(self, *exc: object) -> None:
        with _OWN_TEXT_LOCK:
            texts = _OWN_TEXT[self.html]
            texts.remove(self.text)
            if not texts:
                del _OWN_TEXT[self.html]


@runtime_checkable
class Notifier(Protocol):
    def notify(self, tag: str, subject: str, body_text: str, body_html: str | None = None,
               *, attachments: Sequence[Path] = ()) -> bool:
        """Send to whoever ``tag`` names; True only if every matching service accepted it."""
        ...


def directory_addresses(directory: Directory) -> dict[str, str]:
    """tag -> e-mail address for every person (by id and ``notify_tag``) and office."""
    addresses: dict[str, str] = {}
    for person in directory.people:
        addresses[person.id] = person.email
        if person.notify_tag:
            addresses[person.notify_tag] = person.email
    for office in directory.offices:
        addresses[office.id] = office.email
    return addresses


_HREF = re.compile(r"""href\s*=\s*["']([^"']*)["']""", re.IGNORECASE)


def links_survive_as_text(body_html: str) -> bool:
    """True when every link target of ``body_html`` is still there in its text version.

    Apprise derives an e-mail's text part from the HTML and keeps only the link texts;
    a signed link hidden behind "bestätigen" would be lost for text-only mail readers.
    """
    text = convert_between(apprise.NotifyFormat.HTML, apprise.NotifyFormat.TEXT, body_html)
    return all(html.unescape(target) in text for target in _HREF.findall(body_html))


class AppriseNotifier:
    """Notifications through apprise.

    ``config`` is the path of an apprise configuration file (text or YAML, every service
    with its tags) or an iterable of apprise text-configuration lines, ``tags=url``::

        AppriseNotifier("/etc/newsroom/apprise.yaml")
        AppriseNotifier(["amt-kommunikation, newsroom-alerts=mailtos://…"])

    Without ``body_html`` every service gets ``body_text`` as plain text. With it, the
    message goes out as HTML: e-mail services send multipart/alternative of the HTML and
    ``body_text`` (Newsroom's own text, not a conversion); services without HTML get
    apprise's text of the HTML, so the HTML must show every link's URL as text, not only
    in ``href`` (an HTML body that hides a link is not used, the text goes out instead).
    """

    def __init__(self, config: str | Path | Iterable[str]):
        self._apprise = apprise.Apprise()
        loaded = apprise.AppriseConfig()
        if isinstance(config, str | Path):
            path = Path(config)
            if not path.is_file():
                raise ValueError(f"no apprise configuration file at {path}; create it or "
                                 "pass the service lines (tags=url) instead")
            ok = loaded.add(str(path))
            where = str(path)
        else:
            lines = [line.strip() for line in config if line.strip()]
            ok = bool(lines) and loaded.add_config("\n".join(lines), format="text")
            where = "the given lines"
        self._apprise.add(loaded)
        if not ok or len(self._apprise) == 0:
            raise ValueError(f"the apprise configuration in {where} names no usable service; "
                             "each line needs tags=url (see apprise's documentation)")

    @classmethod
    def for_directory(cls, directory: Directory, smtp_url: str, *,
                      alert_tags: Iterable[str] = ()) -> AppriseNotifier:
        """One e-mail service per person and office of the directory, tagged with its id.

        ``smtp_url`` is the SMTP URL format of :mod:`newsroom.channels.credentials`
        (``smtp://user:password@host:port?from=addr``). The communications office also
        gets :data:`ALERT_TAG`, and so does every id in ``alert_tags``.
        """
        smtp = parse_smtp_url(smtp_url)
        alerted = {directory.communications_office, *alert_tags}
        by_address: dict[str, set[str]] = {}
        for tag, address in directory_addresses(directory).items():
            tags = by_address.setdefault(address, set())
            tags.add(tag)
            if tag in alerted:
                tags.add(ALERT_TAG)
        lines = [f"{', '.join(sorted(tags))}={smtp.apprise_url(address)}"
                 for address, tags in sorted(by_address.items())]
        notifier = cls(lines)
        # apprise waits 5.5 s between two messages of one service (per address here): a
        # crisis's WhatsApp text to the office right after an alert would wait. The own
        # SMTP relay needs no client-side throttle.
        for service in notifier._apprise:
            service.request_rate_per_sec = 0
        return notifier

    def tags(self) -> set[str]:
        return {str(tag) for service in self._apprise for tag in service.tags}

    def notify(self, tag: str, subject: str, body_text: str, body_html: str | None = None,
               *, attachments: Sequence[Path] = ()) -> bool:
        if not tag:
            raise ValueError("a notification needs a tag: without one apprise tells everyone")
        if not list(self._apprise.find(tag, match_always=False)):
            logger.warning("no notification service is tagged %r; nothing sent", tag)
            return False
        attach = None
        if attachments:
            attach = apprise.AppriseAttachment()
            for path in attachments:
                attach.add(str(path))
        # Plain text carries the copy-ready post and the link verbatim; HTML only when the
        # caller wrote one (and with it, the URLs as visible text).
        if body_html and links_survive_as_text(body_html):
            # E-mails: multipart/alternative of this HTML and Newsroom's own text.
            with _OwnTextPart(body_html, body_text):
                result = self._apprise.notify(
                    body=body_html, title=subject, tag=tag, match_always=False,
                    body_format=apprise.NotifyFormat.HTML, attach=attach)
        else:
            result = self._apprise.notify(
                body=body_text, title=subject, tag=tag, match_always=False,
                body_format=apprise.NotifyFormat.TEXT, attach=attach)
        if not result:
            logger.warning("the notification tagged %r was not (fully) delivered: %s",
                           tag, getattr(result, "status", "failed"))
        return bool(result)
