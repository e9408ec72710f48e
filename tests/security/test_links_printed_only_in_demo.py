"""`newsroom up` prints approvers' live links only in the demo: a link lets whoever holds
it decide for its approver, and a terminal's output ends up in logs and screen shares.

The mail watcher of the embedded stack, against the real mail catcher (SMTP over
loopback), once as the demo runs it and once as `up --no-demo` does.
"""

from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage

import pytest

from newsroom.orchestration.embedded import MailWatcher
from newsroom.orchestration.stack import MailCatcher, free_port

LINK = "http://127.0.0.1:8100/freigabe/eyJwIjoiYXBwcm92YWwifQ.c2lnbmF0dXJl"


def _send(catcher: MailCatcher) -> None:
    message = EmailMessage()
    message["From"], message["To"] = "newsroom@darmstadt.example.org", "ob@example.org"
    message["Subject"] = "Freigabe erbeten: Europawahl"
    message.set_content(f"Bitte prüfen Sie den Beitrag:\n{LINK}\n")
    with smtplib.SMTP(catcher.host, catcher.port, timeout=10) as smtp:
        smtp.send_message(message)


@pytest.mark.parametrize("demo", [True, False], ids=["demo", "no demo"])
def test_approval_links_reach_the_terminal_only_in_the_demo(tmp_path, demo) -> None:
    catcher = MailCatcher(port=free_port()).start()
    printed: list[str] = []
    watcher = MailWatcher(catcher, tmp_path / "mail", printed.append, interval=0.05,
                          show_links=demo)
    watcher.start()
    try:
        _send(catcher)
        deadline = time.monotonic() + 15
        while not printed and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watcher.stop()
        catcher.stop()
    output = "\n".join(printed)
    assert "Freigabe erbeten: Europawahl" in output  # the mail is announced either way
    assert (LINK in output) is demo, output
    if not demo:
        assert "not printed outside the demo" in output
    # The saved mail keeps the link, in a folder only this user may open.
    saved = list((tmp_path / "mail").glob("*.eml"))
    assert len(saved) == 1 and LINK in saved[0].read_text(encoding="utf-8")
    assert (tmp_path / "mail").stat().st_mode & 0o077 == 0
