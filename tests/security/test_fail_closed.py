"""Nothing fails open: without a secret key, or against a Prefect API that answers anyone,
the long-running parts refuse to start and say what to do.

Found by the security test: with neither NEWSROOM_SECRET_KEY nor NEWSROOM_ENVIRONMENT
set, `newsroom web` signed with the public placeholder key; a forged 10-year invitation
was accepted, and the alert hook's bearer derived from the placeholder sent a phishing
mail to the office. Each command runs as a user runs it: a subprocess of the CLI.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from newsroom.orchestration.stack import free_port
from newsroom.signing import Signer
from newsroom.web.hooks import hook_token

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = "development-only-not-secret"
KEY = "fail-closed-test-secret-key-0123456789-abcdef"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("NEWSROOM_", "PREFECT_"))}
    env.update({"NEWSROOM_DATA_DIR": str(tmp_path / "var"),
                "NEWSROOM_CATALOG_DIR": str(ROOT / "campaigns"),
                "PREFECT_HOME": str(tmp_path / "prefect-home"),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}, **extra)
    return env


def _newsroom(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "newsroom.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("extra", [
    {}, {"NEWSROOM_ENVIRONMENT": "development"},  # the old switch: no longer a way in
    {"NEWSROOM_SECRET_KEY": PLACEHOLDER}, {"NEWSROOM_SECRET_KEY": "short"},
], ids=["nothing set", "development", "placeholder", "short"])
def test_web_worker_and_up_without_demo_refuse_without_a_key(tmp_path, extra) -> None:
    port = free_port()
    env = _env(tmp_path, **extra)
    for args in (["web", "--port", str(port)], ["worker"],
                 ["up", "--no-demo", "--web-port", str(port),
                  "--prefect-port", str(free_port())]):
        result = _newsroom(args, env)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert "will not start without a secret key" in result.stderr, (args, result.stderr)
        assert "NEWSROOM_SECRET_KEY" in result.stderr
        assert "Traceback" not in result.stderr
        assert not _port_taken(port)
    # Nothing was started or generated on the way.
    assert not (tmp_path / "var" / "secret-key").exists()
    assert not (tmp_path / "var" / "prefect").exists()


def test_nothing_works_with_a_prefect_api_that_answers_anyone(tmp_path, open_api) -> None:
    port = free_port()
    env = _env(tmp_path, NEWSROOM_SECRET_KEY=KEY, PREFECT_API_URL=open_api)
    for args in (["web", "--port", str(port)], ["worker"]):
        result = _newsroom(args, env)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert "answers without any credential" in result.stderr, result.stderr
        assert "PREFECT_SERVER_API_AUTH_STRING" in result.stderr
        assert not _port_taken(port)


def _forger(key: str) -> Signer:
    """What an attacker computes with the public placeholder: Newsroom's derivation,
    without the check that refuses the key."""
    forger = object.__new__(Signer)
    forger._derive_keys(key)
    return forger


def test_a_placeholder_signed_invitation_and_hook_call_are_refused(tmp_path) -> None:
    """The web app as `newsroom web` builds it, with a real key: what an attacker makes
    with the public placeholder opens nothing, stores nothing and mails nobody."""
    from sqlmodel import select

    from newsroom import requests as office_requests
    from newsroom.catalog.validation import load_catalog
    from newsroom.orchestration.stack import MailCatcher, WebServer
    from newsroom.runtime import Runtime
    from newsroom.settings import Settings
    from newsroom.store import make_engine, session_scope, upgrade_database
    from newsroom.store.models import CampaignRequest

    catalog = load_catalog(ROOT / "campaigns").catalog
    mail = MailCatcher(port=free_port()).start()
    url = f"sqlite:///{tmp_path / 'newsroom.db'}"
    upgrade_database(url)
    settings = Settings(catalog_dir=ROOT / "campaigns", data_dir=tmp_path / "var",
                        database_url=url, secret_key=KEY, smtp_url=mail.smtp_url)
    engine = make_engine(url)
    runtime = Runtime(settings=settings, engine=engine, signer=Signer.from_settings(settings))
    web = WebServer(runtime, port=free_port(), resume_runs=False)
    web.start()
    try:
        requester = office_requests.requester_for(catalog, "office", "feuerwehr")
        forged, _ = office_requests.invite_link(_forger(PLACEHOLDER), web.url, requester,
                                                days=3650)
        genuine, _ = office_requests.invite_link(runtime.signer, web.url, requester)
        with httpx.Client(timeout=15) as client:
            assert client.get(genuine).status_code == 200  # the route works
            page = client.get(forged)
            assert page.status_code == 400 and "Dieser Link ist ungültig" in page.text
            posted = client.post(forged, data={"title": "Chemieunfall"})
            assert posted.status_code in (400, 403, 404, 410), posted.text[:300]
            for token in (_forger(PLACEHOLDER).alert_hook_token, "x"):
                hook = client.post(f"{web.url}/hooks/alert",
                                   json={"subject": "Bitte Passwort bestätigen",
                                         "body": "https://evil.example"},
                                   headers={"Authorization": f"Bearer {token}"})
                assert hook.status_code == 401, hook.text
            # The genuine token passes: the refusals above are the key's doing.
            real = client.post(f"{web.url}/hooks/alert", json={"subject": "Test", "body": "ok"},
                               headers={"Authorization": f"Bearer {hook_token(KEY)}"})
            assert real.status_code == 200, real.text
        with session_scope(engine) as session:
            assert session.exec(select(CampaignRequest)).all() == []
        assert [m["subject"] for m in mail.messages] == ["Test"]
    finally:
        web.stop()
        mail.stop()
        engine.dispose()


def test_a_refused_credential_stops_the_cli_instead_of_working_around_prefect(
        tmp_path, prefect_server) -> None:
    """With the wrong credential the API is there but will not talk to us: that is an
    error to fix, not "no Prefect API reachable" (which makes `crisis start` publish from
    the shell's own process)."""
    env = _env(tmp_path, NEWSROOM_SECRET_KEY=KEY, PREFECT_API_URL=prefect_server.api_url,
               PREFECT_API_AUTH_STRING="newsroom:wrong-password")
    result = _newsroom(["schedule", "--dry-run"], env)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "refuses Newsroom's credential" in result.stderr, result.stderr
    assert "No Prefect API reachable" not in result.stderr
    # Without any credential in the environment, a server on this machine is reached with
    # the one `newsroom up` keeps in the data dir (here: none there, so refused as well).
    env.pop("PREFECT_API_AUTH_STRING")
    result = _newsroom(["schedule", "--dry-run"], env)
    assert result.returncode == 1 and "refuses Newsroom's credential" in result.stderr
    credential = tmp_path / "var" / "prefect" / "api-auth-string"
    credential.parent.mkdir(parents=True)
    credential.write_text(prefect_server.auth_string + "\n")
    credential.chmod(0o600)
    result = _newsroom(["schedule", "--dry-run"], env)
    # Now the API answers it: a dry-run plan, or (before any test applied the deployments
    # to this session's server) the authenticated answer that there are none.
    assert "refuses" not in result.stderr, result.stderr
    assert ("Would change on" in result.stdout
            or "apply the deployments first" in result.stderr), (result.stdout, result.stderr)
