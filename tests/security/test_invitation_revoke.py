"""Invitations revoked one by one, without rotating the key (``newsroom requests revoke``),
against the request form over HTTP (uvicorn): a revoked link shows the German page that
it was withdrawn and its POST stores nothing (rows, image files); one invitation by its
number, or every one of a Dezernat issued before now — also a link issued before
invitations were recorded; other Dezernate' links and a link issued afterwards work."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from click.testing import CliRunner
from prefect.settings import PREFECT_API_URL, temporary_settings
from requests_testkit import copy_catalog, png
from security_testkit import SECRET, row_counts
from webkit import serving

from newsroom import requests as domain
from newsroom import store
from newsroom.cli import cli
from newsroom.invitations import audit_key
from newsroom.runtime import get_runtime, reset_runtimes
from newsroom.web.app import create_web_app

pytestmark = pytest.mark.slow
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
WITHDRAWN = "Dieser Einladungslink wurde zurückgezogen"


@pytest.fixture
def office(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    root = copy_catalog(tmp_path / "campaigns")
    monkeypatch.setenv("NEWSROOM_CATALOG_DIR", str(root))
    monkeypatch.setenv("NEWSROOM_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("NEWSROOM_DATABASE_URL", f"sqlite:///{tmp_path / 'newsroom.db'}")
    monkeypatch.setenv("NEWSROOM_SECRET_KEY", SECRET)
    monkeypatch.setenv("NEWSROOM_WEB_BASE_URL", "http://127.0.0.1:1")  # links are rebased
    reset_runtimes()
    runtime = get_runtime()
    app = create_web_app(runtime.engine, runtime.catalog, runtime.settings,
                         signer=runtime.signer)
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}), \
            serving(app) as server_url:
        yield SimpleNamespace(runtime=runtime, url=server_url, uploads=tmp_path / "var")
    reset_runtimes()


def _run(*args: str):
    return CliRunner().invoke(cli, list(args))


def _invite(office, *args: str) -> tuple[str, int]:
    """A link from `newsroom requests invite` (on this server) and its number."""
    result = _run("requests", "invite", *args)
    assert result.exit_code == 0, result.output
    link = result.stdout.strip().splitlines()[0]
    number = int(re.search(r"invitation #(\d+)", result.output).group(1))
    return office.url + "/anfrage/" + link.rsplit("/", 1)[1], number


def _fields(csrf: str) -> dict:
    day = (datetime.now(UTC) + timedelta(days=14)).date().isoformat()
    return {"title": "Ferienspiele 2027", "topic": "Kinder und Jugend", "date_from": day,
            "date_to": "", "time": "", "channels": ["mastodon"],
            "text": "Die Anmeldung für die Ferienspiele ist offen!", "hashtags": "",
            "links": "", "notes": "", "contact_name": "Alex Schmidt",
            "contact_email": "alex@example.org", "alt_1": "Kinder beim Basteln",
            "alt_2": "", "alt_3": "", "csrf": csrf}


def _submit(client: httpx.Client, link: str, csrf: str) -> httpx.Response:
    return client.post(link, data=_fields(csrf),
                       files={"bild_1": ("basteln.png", png(), "image/png")})


def _assert_withdrawn(response: httpx.Response) -> None:
    assert response.status_code == 410, response.text[:300]
    assert WITHDRAWN in response.text and 'lang="de"' in response.text
    assert "neuen Link an" in response.text


def _stored(office) -> tuple[int, int]:
    """The requests and their images in the store."""
    counts = row_counts(office.runtime.engine)
    return counts["campaign_request"], counts["campaign_request_image"]


def _uploads(office) -> list[Path]:
    return [p for p in office.uploads.rglob("*.png")] if office.uploads.exists() else []


def test_one_invitation_and_then_all_of_a_dezernat_are_withdrawn(office) -> None:
    first, first_no = _invite(office, "--portfolio", "kinder-jugend")
    second, second_no = _invite(office, "--portfolio", "kinder-jugend")
    elsewhere, _ = _invite(office, "--office", "wahlamt")
    # A link issued before invitations were recorded (no row of its own).
    requester = domain.requester_for(office.runtime.catalog, "portfolio", "kinder-jugend")
    legacy = office.url + "/anfrage/" + domain.invite_link(
        office.runtime.signer, "http://x", requester,
        now=datetime.now(UTC) - timedelta(hours=1))[0].rsplit("/", 1)[1]

    with httpx.Client() as client:
        csrf = CSRF.search(client.get(first).text).group(1)  # the form was open
        assert first_no != second_no
        result = _run("requests", "revoke", "--invitation", str(first_no), "--by", "kim")
        assert result.exit_code == 0, result.output
        assert f"revoked invitation #{first_no}" in result.output
        assert "kinder-jugend" in result.output and "revoked" in result.output

        before, files = _stored(office), _uploads(office)
        _assert_withdrawn(client.get(first))
        _assert_withdrawn(_submit(client, first, csrf))
        assert _stored(office) == before and _uploads(office) == files
        for still in (second, legacy, elsewhere):
            assert client.get(still).status_code == 200

        again = _run("requests", "revoke", "--invitation", str(first_no))
        assert again.exit_code == 0 and "revoked already" in again.output

        result = _run("requests", "revoke", "kinder-jugend", "--by", "kim")
        assert result.exit_code == 0, result.output
        assert "revoked 1 open invitation(s) of Kinder- und Jugenddezernat" in result.output
        assert f"#{second_no}" in result.output and f"#{first_no} " not in result.output
        assert "issued before invitations were recorded" in result.output
        for gone in (first, second, legacy):
            _assert_withdrawn(client.get(gone))
        csrf = CSRF.search(client.get(elsewhere).text).group(1)
        assert client.get(elsewhere).status_code == 200
        _assert_withdrawn(_submit(client, legacy, csrf))
        assert _stored(office) == before and _uploads(office) == files

        # A new invitation, issued right after (the same second), works.
        fresh, _ = _invite(office, "--portfolio", "kinder-jugend")
        page = client.get(fresh)
        assert page.status_code == 200
        done = _submit(client, fresh, CSRF.search(page.text).group(1))
        assert done.status_code == 200 and "Vielen Dank" in done.text

    listed = _run("requests", "invitations", "kinder-jugend", "--all")
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert sum("[revoked" in line for line in lines) == 2
    assert sum("[open]" in line for line in lines) == 1
    with store.session_scope(office.runtime.engine) as session:
        trail = [e.action for e in store.audit_trail(
            session, campaign_id=audit_key("portfolio", "kinder-jugend"))]
    assert trail.count("invitation.issued") == 3 and trail.count("invitation.revoked") == 2


@pytest.mark.parametrize(("args", "code", "message"), [
    (("requests", "revoke"), 2, "either OFFICE"),
    (("requests", "revoke", "sport", "--invitation", "1"), 2, "either OFFICE"),
    (("requests", "revoke", "feuerwache-99"), 1, "no portfolio or office 'feuerwache-99'"),
    (("requests", "revoke", "--invitation", "77"), 1, "no invitation #77"),
])
def test_revoke_usage_errors_say_what_to_do(office, args, code: int, message: str) -> None:
    result = _run(*args)
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output
