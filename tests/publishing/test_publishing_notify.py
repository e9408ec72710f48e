"""The apprise notifier: a tag reaches exactly the people it names (real SMTP server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mailkit import Inbox, catching_smtp

from newsroom.notify import ALERT_TAG, AppriseNotifier

pytestmark = pytest.mark.slow


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, str]]:
    with catching_smtp() as caught:
        yield caught


def test_a_tag_reaches_only_whom_it_names(catalog, smtp, tmp_path) -> None:
    inbox, smtp_url = smtp
    notifier = AppriseNotifier.for_directory(catalog.directory, smtp_url)

    assert notifier.notify("benz", "Freigabe erbeten", "Bitte prüfen.")
    assert notifier.notify(ALERT_TAG, "Newsroom: Veröffentlichung fehlgeschlagen", "…")
    assert not notifier.notify("niemand", "Betreff", "Text")  # nobody has that tag
    with pytest.raises(ValueError, match="needs a tag"):
        notifier.notify("", "Betreff", "Text")

    received = [(rcpt, message["Subject"]) for rcpt, message in inbox.messages()]
    assert received == [
        (["oberbuergermeister@example.org"], "Freigabe erbeten"),
        (["kommunikation@example.org"], "Newsroom: Veröffentlichung fehlgeschlagen"),
    ]


def test_services_tagged_always_do_not_get_personal_messages(smtp, tmp_path) -> None:
    inbox, smtp_url = smtp
    port = smtp_url.split(":")[2].split("?")[0]
    config = tmp_path / "apprise.txt"
    config.write_text(
        f"benz=mailto://127.0.0.1:{port}/?from=n@example.org&to=ob@example.org\n"
        f"always=mailto://127.0.0.1:{port}/?from=n@example.org&to=everything@example.org\n",
        encoding="utf-8")
    assert AppriseNotifier(config).notify("benz", "Nur für den OB", "Text")
    assert [rcpt for rcpt, _ in inbox.messages()] == [["ob@example.org"]]
    with pytest.raises(ValueError, match="no apprise configuration file"):
        AppriseNotifier(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="names no usable service"):
        AppriseNotifier(["this is not a service"])
