"""``newsroom requests`` without a Prefect server: listing, showing, deciding (the decision
is stored and the command says the sweep tells the requester), invitations, and errors
that say what to do, with exit code 1 and no traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from prefect.settings import PREFECT_API_URL, temporary_settings
from requests_testkit import SECRET, copy_catalog, form

from newsroom import requests as domain
from newsroom.catalog.validation import load_catalog
from newsroom.cli import cli
from newsroom.runtime import get_runtime, reset_runtimes
from newsroom.signing import Signer


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = copy_catalog(tmp_path / "campaigns")
    monkeypatch.setenv("NEWSROOM_CATALOG_DIR", str(root))
    monkeypatch.setenv("NEWSROOM_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("NEWSROOM_DATABASE_URL", f"sqlite:///{tmp_path / 'newsroom.db'}")
    monkeypatch.setenv("NEWSROOM_SECRET_KEY", SECRET)
    monkeypatch.setenv("NEWSROOM_WEB_BASE_URL", "https://newsroom.example.org")
    reset_runtimes()
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):  # nobody there
        yield root
    reset_runtimes()


def _submit(root: Path, **changes) -> int:
    runtime = get_runtime()
    kind, requester_id = changes.pop("requester", ("portfolio", "sport"))
    catalog = load_catalog(root).catalog
    return domain.submit_request(runtime.engine, runtime.settings.data_dir,
                                 domain.requester_for(catalog, kind, requester_id),
                                 domain.check_request(form(**changes), catalog),
                                 invite_nonce="cli")


def _run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_invite_prints_a_link_the_form_accepts(env: Path) -> None:
    result = _run("requests", "invite", "--office", "wahlamt", "--days", "30")
    assert result.exit_code == 0, result.output
    link = result.stdout.strip().splitlines()[0]
    assert link.startswith("https://newsroom.example.org/anfrage/")
    requester, _ = domain.check_invite(Signer(SECRET), load_catalog(env).catalog,
                                       link.rsplit("/", 1)[1])
    assert requester.id == "wahlamt"
    assert "valid until" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (("requests", "invite"), "either --portfolio"),
    (("requests", "invite", "--portfolio", "sport", "--office", "wahlamt"), "either"),
    (("requests", "invite", "--office", "wahlamt", "--days", "0"), "positive"),
])
def test_invite_usage_errors(env: Path, args: tuple[str, ...], message: str) -> None:
    result = _run(*args)
    assert result.exit_code == 2 and message in result.output


def test_invite_for_an_unknown_office_says_what_to_do(env: Path) -> None:
    result = _run("requests", "invite", "--office", "wahlamtt")
    assert result.exit_code == 1
    assert "no office 'wahlamtt'" in result.output and "what to do" in result.output
    assert "Traceback" not in result.output


def test_list_show_and_decide_without_prefect(env: Path) -> None:
    assert _run("requests").output.strip() == "no open requests"
    first = _submit(env)
    second = _submit(env, title="Sportlerehrung", requester=("office", "sportamt"))
    listing = _run("requests")
    assert listing.exit_code == 0
    assert "Stadtlauf 2027" in listing.output and "office:sportamt" in listing.output
    assert "no run yet" in listing.output

    shown = _run("requests", "show", str(first))
    assert "Läuferinnen am Start auf dem Luisenplatz" in shown.output
    assert "request.submitted" in shown.output

    declined = _run("requests", "decline", str(first), "--reason", "Schon geplant.",
                    "--by", "hoffmann")
    assert declined.exit_code == 0, declined.output
    assert "no Prefect server reachable; the decision is stored" in declined.output
    again = _run("requests", "ask", str(first), "--question", "Noch da?", "--by", "hoffmann")
    assert again.exit_code == 1
    assert "declined already" in again.output and "what to do" in again.output

    amt = _run("requests", "accept", str(second), "--by", "hoffmann")
    assert amt.exit_code == 1
    assert "name the approver" in amt.output and "--approver" in amt.output
    accepted = _run("requests", "accept", str(second), "--approver", "sport", "--by", "hoffmann")
    assert accepted.exit_code == 0, accepted.output
    assert "it validates" in accepted.output
    campaign_id = domain.load_request(get_runtime().engine, second)[0].campaign_id
    assert _run("validate", str(env / f"{campaign_id}.yaml")).exit_code == 0
    assert _run("requests").output.strip() == "no open requests"
    everything = _run("requests", "--all")
    assert "declined" in everything.output and campaign_id in everything.output


@pytest.mark.parametrize(("args", "message"), [
    (("requests", "show", "42"), "no request 42"),
    (("requests", "accept", "42", "--by", "hoffmann"), "no request 42"),
    (("requests", "decline", "42", "--reason", "x", "--by", "wolf"), "no request 42"),
    (("requests", "accept", "42"), "no person in registry/people.yaml"),
])
def test_unknown_ids_fail_cleanly(env: Path, args: tuple[str, ...], message: str) -> None:
    result = _run(*args)
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output


def test_a_bad_time_or_an_empty_reason_is_refused(env: Path) -> None:
    request_id = _submit(env)
    bad = _run("requests", "accept", str(request_id), "--at", "morgen früh", "--by", "wolf")
    assert bad.exit_code == 1 and "is not a date and time" in bad.output
    empty = _run("requests", "decline", str(request_id), "--reason", " ", "--by", "wolf")
    assert empty.exit_code == 1 and "reason is empty" in empty.output
    sweep = _run("requests", "sweep")
    assert sweep.exit_code == 1 and "no Prefect server reachable" in sweep.output
