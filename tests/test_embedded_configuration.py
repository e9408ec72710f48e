"""`newsroom up` (the demo stack) configures every shipped channel, the press e-mail
included: each account of the shipped registry finds its credential in the environment
the stack sets, so every shipped campaign can publish in the demo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from newsroom.catalog.validation import load_catalog
from newsroom.channels.credentials import resolve_credential
from newsroom.cli import stack as cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_environment(monkeypatch):
    """Without the variables the stack sets; afterwards the environment as it was
    (``_configure_embedded`` writes os.environ itself)."""
    from newsroom.standins.config import STANDIN_CREDENTIAL_ENV

    before = dict(os.environ)
    for name in [*STANDIN_CREDENTIAL_ENV, "NEWSROOM_SMTP_URL", "NEWSROOM_WEB_BASE_URL"]:
        os.environ.pop(name, None)
    try:
        yield monkeypatch
    finally:
        os.environ.clear()
        os.environ.update(before)
        cli.get_settings.cache_clear()


@pytest.mark.parametrize("smtp_port", [None, 2525])
def test_every_shipped_account_has_its_credential_in_the_demo(clean_environment,
                                                              smtp_port) -> None:
    cli._configure_embedded(web_port=None, smtp_port=smtp_port)
    catalog = load_catalog(ROOT / "campaigns").catalog
    assert catalog is not None
    needing = [a for a in catalog.accounts.values() if a.credential is not None]
    assert {a.name for a in needing} >= {"presse", "mastodon", "bluesky", "telegram"}
    for account in needing:
        assert resolve_credential(account).get_secret_value(), account.name
    press = resolve_credential(catalog.accounts["presse"]).get_secret_value()
    assert press.startswith(f"smtp://127.0.0.1:{smtp_port or 8025}?"), press


def test_mail_configured_elsewhere_is_kept(clean_environment) -> None:
    clean_environment.setenv("NEWSROOM_SMTP_URL", "smtps://mail.darmstadt.example:465")
    cli._configure_embedded(web_port=None, smtp_port=None)
    catalog = load_catalog(ROOT / "campaigns").catalog
    assert resolve_credential(catalog.accounts["presse"]).get_secret_value() == (
        "smtps://mail.darmstadt.example:465")
