"""Secrets never reach a log: :func:`redact` for Newsroom's own messages, and a logging
filter (:class:`RedactSecrets`) for the libraries that log them — httpx's request lines
(Telegram's bot token in the path, Meta's ``access_token=``), uvicorn's access log (the
signed links of the approval and confirmation pages) and apprise's service URLs."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

__all__ = ["RedactSecrets", "install_log_redaction", "redact"]

_REDACTED = "***"
# Secrets that end up in URLs: Telegram's bot token in the path, Meta's access_token (and
# input_token, the token debug_token is asked about).
_URL_SECRET_PATTERNS = (
    (re.compile(r"/bot\d+(?::|%3[Aa])[A-Za-z0-9_-]+"), "/bot" + _REDACTED),
    (re.compile(r"((?:access|input)_token=)[^&\s\"']+"), r"\1" + _REDACTED),
)
# Request lines in access logs: the signed links of the approval and confirmation pages.
_LINK_PATTERN = (re.compile(r"(/(?:freigabe|manual)/)[^/\s?\"']+"), r"\1" + _REDACTED)
# apprise logs service URLs at DEBUG, header (+Name=) and field (:name=) values and
# passwords included: hide everything after the scheme.
_APPRISE_URL = (re.compile(r"\b([a-z][a-z0-9+.-]*://)[^\s'\"<>]+"), r"\1" + _REDACTED)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every secret value (and URL-borne tokens) in ``text`` by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, _REDACTED)
    for pattern, replacement in _URL_SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """httpx logs every request line at INFO, Telegram's bot token included: mask it.
    Also on uvicorn's access log (request paths) and apprise's log (service URLs)."""

    def __init__(self, *extra: tuple[re.Pattern[str], str]) -> None:
        super().__init__()
        self.extra = extra

    def _clean(self, text: str) -> str:
        text = redact(text)
        for pattern, replacement in self.extra:
            text = pattern.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if isinstance(record.msg, str):
                record.msg = self._clean(record.msg)
            if isinstance(record.args, tuple):  # keep the shape: formatters unpack it
                args: list[object] = []
                for value in record.args:
                    if isinstance(value, (int, float)) or value is None:
                        args.append(value)
                        continue
                    text = str(value)
                    cleaned = self._clean(text)
                    args.append(value if cleaned == text else cleaned)
                record.args = tuple(args)
            elif record.args:
                message = record.getMessage()
                record.msg, record.args = self._clean(message), ()
        except Exception:  # a broken log call is not ours to fix
            return True
        return True


def install_log_redaction() -> None:
    """Put :class:`RedactSecrets` on the loggers that write secrets into their lines
    (idempotent). Called by every entry point: the command line, the worker, the web app
    and the runtime — never as a side effect of an import."""
    for name, extra in (("httpx", ()), ("uvicorn.access", (_LINK_PATTERN,)),
                        ("apprise", (_APPRISE_URL,))):
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in target.filters):
            target.addFilter(RedactSecrets(*extra))
