"""A real SMTP server for tests (aiosmtpd on a free port of 127.0.0.1) and what it caught."""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
from collections.abc import Iterator


class Inbox:
    """aiosmtpd handler that keeps every message."""

    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[tuple[list[str], email.message.EmailMessage]]:
        return [(list(e.rcpt_tos), email.message_from_bytes(e.original_content,
                                                            policy=email.policy.default))
                for e in self.envelopes]

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [message for rcpt, message in self.messages() if address in rcpt]


def parts(message: email.message.EmailMessage) -> tuple[str, str]:
    """The text and the HTML part of a multipart/alternative mail."""
    return (message.get_body(preferencelist=("plain",)).get_content(),
            message.get_body(preferencelist=("html",)).get_content())


@contextlib.contextmanager
def catching_smtp() -> Iterator[tuple[Inbox, str]]:
    """An SMTP server on a free port; its inbox and Newsroom's SMTP URL for it."""
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, f"smtp://127.0.0.1:{port}?from=newsroom@example.org"
    finally:
        controller.stop()
