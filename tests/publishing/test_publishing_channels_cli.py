"""`newsroom channels check | unknown | resolve` against the stand-ins and a real store."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from publishing_testkit import CREDENTIAL_ENV, Inbox, free_port, publication, stored_post

from newsroom import store
from newsroom.cli import cli
from newsroom.publishing import idempotency_key_for
from newsroom.settings import reread_settings

pytestmark = pytest.mark.slow

ACCOUNTS = ["mastodon", "bluesky", "instagram", "facebook", "linkedin", "threads",
            "telegram", "website", "presse", "whatsapp"]


@pytest.fixture
def smtp_url() -> Iterator[str]:
    port = free_port()
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}?from=presse@example.org"
    finally:
        controller.stop()


@pytest.fixture
def environment(tmp_path: Path, smtp_url: str, monkeypatch: pytest.MonkeyPatch
                ) -> Iterator[dict[str, str]]:
    """The stand-ins' credentials where the registry looks for them, and a private data dir."""
    values = {**CREDENTIAL_ENV, "NEWSROOM_SMTP_URL": smtp_url,
              "NEWSROOM_DATA_DIR": str(tmp_path / "var")}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    reread_settings()
    yield values
    reread_settings()


def lines_by_account(output: str) -> dict[str, str]:
    return {line.split()[0]: line for line in output.splitlines()
            if line.split() and line.split()[0] in ACCOUNTS}


def test_check_passes_with_the_stand_in_credentials(catalog_dir, environment) -> None:
    result = CliRunner().invoke(cli, ["channels", "check", "--catalog", str(catalog_dir)])
    assert result.exit_code == 0, result.output
    lines = lines_by_account(result.output)
    assert sorted(lines) == sorted(ACCOUNTS)
    assert all(line.split()[1] == "ok" for line in lines.values()), result.output
    assert "@darmstadt" in lines["mastodon"] and "darmstadt.standin.test" in lines["bluesky"]
    assert "all 10 accounts ok" in result.output


def test_check_says_what_is_wrong_and_what_to_do(catalog_dir, environment, tmp_path) -> None:
    env = {**os.environ, **environment, "NEWSROOM_LINKEDIN_TOKEN": "wrong-token-4711",
           "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api",
           "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    del env["NEWSROOM_MASTODON_TOKEN"]
    newsroom = Path(sys.executable).parent / "newsroom"
    result = subprocess.run([str(newsroom), "channels", "check", "--catalog", str(catalog_dir)],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = lines_by_account(result.stdout)
    assert ("FAIL  NEWSROOM_MASTODON_TOKEN is not set: set it or create the Prefect Secret "
            "block newsroom-mastodon-token") in lines["mastodon"]
    assert ("FAIL  the credential was refused: Invalid access token; renew it and store it "
            "in NEWSROOM_LINKEDIN_TOKEN or the Prefect Secret block newsroom-linkedin-token"
            ) in lines["linkedin"]
    assert all(lines[a].split()[1] == "ok" for a in ACCOUNTS if a not in
               ("mastodon", "linkedin")), result.stdout
    assert "2 of 10 accounts cannot publish" in result.stderr
    assert "wrong-token-4711" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_unknown_lists_and_resolve_decides(database_url, engine, catalog, environment,
                                           monkeypatch) -> None:
    monkeypatch.setenv("NEWSROOM_DATABASE_URL", database_url)
    reread_settings()
    post = stored_post(engine, catalog, "telegram")
    key = idempotency_key_for(post.to_rendered().post_key, post.content_hash)
    with store.session_scope(engine) as session:
        left = store.reserve_publication(session, post_id=post.id, channel="telegram",
                                         idempotency_key=key)
        store.mark_publishing(session, publication_id=left.id)
        store.mark_unknown(session, publication_id=left.id, error="telegram: no answer")
    runner = CliRunner()

    listed = runner.invoke(cli, ["channels", "unknown"])
    assert listed.exit_code == 0, listed.output
    assert f"{left.id}  unknown  whatsapp-kanal-start  2027-01-12  telegram" in listed.output
    assert "telegram: no answer" in listed.output

    unsure = runner.invoke(cli, ["channels", "resolve", str(left.id)])
    assert unsure.exit_code == 2 and "--published or --not-published" in unsure.output

    done = runner.invoke(cli, ["channels", "resolve", str(left.id), "--published",
                               "--url", "https://t.me/darmstadt_informiert/17", "--by", "hk"])
    assert done.exit_code == 0, done.output
    stored = publication(engine, post.id, "telegram")
    assert stored.status == "published"
    assert stored.remote_url == "https://t.me/darmstadt_informiert/17"
    with store.session_scope(engine) as session:
        [event] = [e for e in store.audit_trail(session, campaign_id="whatsapp-kanal-start")
                   if e.action == "publication.resolved"]
    assert event.actor == "hk" and event.detail["outcome"] == "published"

    again = runner.invoke(cli, ["channels", "resolve", str(left.id), "--not-published"])
    assert again.exit_code == 1 and "not unknown" in again.output
    assert "no publications in state unknown" in runner.invoke(cli, ["channels", "unknown"]).output
