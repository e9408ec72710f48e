"""The log filters that keep secrets out of third-party logs (newsroom/redaction.py):
httpx request lines, uvicorn's access log, apprise's DEBUG log. The end-to-end search is
tests/orchestration/test_secrets_scan.py; here each shape of record, quickly."""

from __future__ import annotations

import logging

import httpx
import pytest
from uvicorn.logging import AccessFormatter

from newsroom.redaction import install_log_redaction

install_log_redaction()  # as every entry point does (the CLI, the worker, the web app, …)


class Keep(logging.Handler):
    def __init__(self, formatter: logging.Formatter | None = None) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        if formatter:
            self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def keep():
    attached = []

    def attach(name: str, formatter: logging.Formatter | None = None) -> Keep:
        logger = logging.getLogger(name)
        handler = Keep(formatter)
        attached.append((logger, handler, logger.level))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        return handler

    yield attach
    for logger, handler, level in attached:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_httpx_request_line_hides_the_bot_token(keep) -> None:
    handler = keep("httpx")
    url = httpx.URL("https://api.telegram.org/bot123456:AAH-secret_part/sendMessage")
    logging.getLogger("httpx").info('HTTP Request: %s %s "%s %d %s"', "POST", url,
                                    "HTTP/1.1", 200, "OK")
    (line,) = handler.lines
    assert "AAH-secret_part" not in line and "/bot***/sendMessage" in line
    assert line.endswith('"HTTP/1.1 200 OK"')


@pytest.mark.parametrize(("path", "secret"), [
    ("/telegram/bot123456%3AAAH-secret_part/sendMessage", "AAH-secret_part"),
    ("/freigabe/eyJwIjoiYXBwcm92YWwifQ.c2lnbmF0dXJl", "eyJwIjoiYXBwcm92YWwifQ"),
    ("/freigabe/eyJwIjoiYXBwcm92YWwifQ.c2ln/bild/mastodon/0", "c2ln"),
    ("/freigabe/12-q7Xk2mVb9LwQe0RtYu1IoP", "q7Xk2mVb9LwQe0RtYu1IoP"),  # the mails' short link
    ("/manual/eyJwIjoibWFudWFsIn0.c2lnbmF0dXJl", "c2lnbmF0dXJl"),
])
def test_uvicorn_access_log_hides_tokens_in_paths(keep, path, secret) -> None:
    handler = keep("uvicorn.access", AccessFormatter(
        '%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000",
                                             "GET", path, "1.1", 200)
    (line,) = handler.lines  # the access formatter still gets its five arguments
    assert secret not in line and "***" in line and line.endswith("200 OK")


def test_apprise_debug_log_hides_service_urls(keep) -> None:
    handler = keep("apprise")
    logging.getLogger("apprise").debug(
        "Loaded URL: json://127.0.0.1:8000/hook?%2BX-Token=s3cr3t-token&method=POST")
    logging.getLogger("apprise").debug("Loaded URL: %s",
                                       "mailtos://user:p4ssw0rd@mail.example.org:587/")
    assert handler.lines == ["Loaded URL: json://***", "Loaded URL: mailtos://***"]
