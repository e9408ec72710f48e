"""`newsroom up` (the demo stack) configures every shipped channel, the press e-mail
included: each account of the shipped registry finds its credential in the environment
the stack provides, so every shipped campaign can publish in the demo. The stack's own
settings (the approval page's and the mail catcher's addresses) are one Settings object,
not written into the environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from newsroom.catalog.validation import load_catalog
from newsroom.channels.credentials import resolve_credential
from newsroom.cli.stack import (
    STACK_SETTINGS,
    demo_credentials,
    embedded_settings,
    provide_demo_credentials,
)
from newsroom.settings import Settings, get_settings, reread_settings, use_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_environment(monkeypatch):
    """Without the variables the stack sets; afterwards the environment as it was
    (``provide_demo_credentials`` writes os.environ itself)."""
    before = dict(os.environ)
    for name in [*demo_credentials(Settings()), "NEWSROOM_WEB_BASE_URL"]:
        os.environ.pop(name, None)
    reread_settings()
    try:
        yield monkeypatch
    finally:
        os.environ.clear()
        os.environ.update(before)
        use_settings(None)
        reread_settings()


@pytest.mark.parametrize("smtp_port", [None, 2525])
def test_every_shipped_account_has_its_credential_in_the_demo(clean_environment,
                                                              smtp_port) -> None:
    settings = embedded_settings(get_settings(), web_port=None, smtp_port=smtp_port)
    provide_demo_credentials(settings)
    catalog = load_catalog(ROOT / "campaigns").catalog
    assert catalog is not None
    needing = [a for a in catalog.accounts.values() if a.credential is not None]
    assert {a.name for a in needing} >= {"presse", "mastodon", "bluesky", "telegram"}
    for account in needing:
        assert resolve_credential(account).get_secret_value(), account.name
    press = resolve_credential(catalog.accounts["presse"]).get_secret_value()
    assert press.startswith(f"smtp://127.0.0.1:{smtp_port or 8025}?"), press
    assert settings.smtp_url.get_secret_value() == press  # Newsroom's mail: the same server


def test_mail_configured_elsewhere_is_kept(clean_environment) -> None:
    clean_environment.setenv("NEWSROOM_SMTP_URL", "smtps://mail.darmstadt.example:465")
    reread_settings()
    settings = embedded_settings(get_settings(), web_port=None, smtp_port=None)
    provide_demo_credentials(settings)
    catalog = load_catalog(ROOT / "campaigns").catalog
    assert resolve_credential(catalog.accounts["presse"]).get_secret_value() == (
        "smtps://mail.darmstadt.example:465")
    assert settings.smtp_url.get_secret_value() == "smtps://mail.darmstadt.example:465"


def test_the_stacks_settings_are_one_object_not_the_environment(clean_environment) -> None:
    clean_environment.setenv("NEWSROOM_WEB_BASE_URL", "https://freigabe.darmstadt.example")
    reread_settings()
    base = get_settings()
    settings = embedded_settings(base, web_port=8177, smtp_port=2526)
    assert settings.web_base_url == "http://127.0.0.1:8177"
    assert settings.smtp_url.get_secret_value().startswith("smtp://127.0.0.1:2526?")
    assert base.web_base_url == "https://freigabe.darmstadt.example"  # not changed
    assert os.environ["NEWSROOM_WEB_BASE_URL"] == "https://freigabe.darmstadt.example"

    use_settings(settings)
    assert get_settings() is settings  # what a flow run or a route asks for
    use_settings(None)
    assert get_settings().web_base_url == "https://freigabe.darmstadt.example"


def test_the_record_carries_what_the_stack_decided(clean_environment) -> None:
    settings = Settings(web_base_url="http://127.0.0.1:8177",
                        smtp_url=SecretStr("smtp://127.0.0.1:2526?from=a@b.example"),
                        catalog_overlay=Path("/srv/newsroom/var/stack-overlay"),
                        standins_url=None)
    assert settings.as_environment(*STACK_SETTINGS) == {
        "NEWSROOM_WEB_BASE_URL": "http://127.0.0.1:8177",
        "NEWSROOM_SMTP_URL": "smtp://127.0.0.1:2526?from=a@b.example",
        "NEWSROOM_CATALOG_OVERLAY": "/srv/newsroom/var/stack-overlay",
    }  # unset ones left out; a second shell reads them back into the same Settings
    environment = settings.as_environment(*STACK_SETTINGS)
    for name, value in environment.items():
        clean_environment.setenv(name, value)
    assert Settings().as_environment(*STACK_SETTINGS) == environment
