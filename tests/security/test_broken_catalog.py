"""A broken or half-written campaign file does not stop approvals, nor the flows.

The attack (or accident) of issue 13: one unrelated campaign file with a typo, or caught
half copied, made every approval link answer 500, failed the approval-deadlines flow and
lost the decision clicked meanwhile. Here: the real approval page on uvicorn, the real
links from the mails the SMTP catcher caught, a real store, a real catalog folder copied
from campaigns/; the catalog is broken on disk while people click.
"""

from __future__ import annotations

import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from click.testing import CliRunner
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "approval"))

from approval_testkit import CAMPAIGN, THREE, build_catalog, store_posts  # noqa: E402

from newsroom import approval, store  # noqa: E402
from newsroom.catalog.keeper import CatalogKeeper  # noqa: E402
from newsroom.cli import cli  # noqa: E402
from newsroom.errors import CatalogError  # noqa: E402
from newsroom.orchestration.stack import MailCatcher, WebServer, free_port, run_async, text_of  # noqa: E402
from newsroom.runtime import Runtime  # noqa: E402
from newsroom.settings import Settings  # noqa: E402
from newsroom.signing import Signer  # noqa: E402
from newsroom.timeutil import BERLIN  # noqa: E402

OFFICE = "kommunikation@example.org"
BENZ = "oberbuergermeister@example.org"
LINK = re.compile(r"http://127\.0\.0\.1:\d+/freigabe/[A-Za-z0-9_\-\.]+")
KEY = "broken-catalog-test-key-that-is-long-enough-0123456789"

# Ways a file is broken on disk, each with the line the office must be pointed at.
BREAKS = {
    "yaml-syntax": (lambda text: text.replace("title:", "title: [nicht geschlossen", 1), None),
    "schema": (lambda text: text.replace("title:", "titel:", 1), "titel"),
    "half-written": (lambda text: text[: len(text) // 2].rsplit("\n", 1)[0] + "\n  - {fi", None),
}


def _settings(root: Path, mail: MailCatcher, port: int) -> Settings:
    return Settings(catalog_dir=root / "campaigns", data_dir=root / "var",
                    database_url=f"sqlite:///{root / 'newsroom.db'}", smtp_url=SecretStr(
                        mail.smtp_url), web_base_url=f"http://127.0.0.1:{port}",
                    secret_key=SecretStr(KEY))


def _runtime(settings: Settings) -> Runtime:
    url = settings.resolved_database_url()
    store.upgrade_database(url)
    return Runtime(settings=settings, engine=store.make_engine(url), signer=Signer(KEY))


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """The test catalog, a store, a mail catcher, the approval page on uvicorn; a gate
    of ``t-one`` (one of Benz, Akdeniz, Feldmann decides) open with its mails sent."""
    catalog = build_catalog(tmp_path / "campaigns")
    mail = MailCatcher(port=free_port()).start()
    port = free_port()
    settings = _settings(tmp_path, mail, port)
    runtime = _runtime(settings)
    web = WebServer(runtime, port=port, resume_runs=False)
    web.start()
    try:
        occurrence_id = store_posts(runtime.engine, runtime.catalog, "t-one")
        approval.open_gate(runtime.engine, runtime.catalog, occurrence_id=occurrence_id)
        approval.notify_approvers(runtime.engine, runtime.catalog, occurrence_id=occurrence_id,
                                  notifier=runtime.notifier, signer=runtime.signer,
                                  base_url=runtime.base_url)
        link = LINK.search(text_of(mail.wait_for(BENZ, timeout=20)[0])).group(0)
        yield SimpleNamespace(catalog=catalog, mail=mail, runtime=runtime, web=web,
                              settings=settings, occurrence_id=occurrence_id, link=link)
    finally:
        web.stop()
        mail.stop()
        runtime.engine.dispose()


def _break(path: Path, how: str) -> str:
    """Break ``path`` on disk; the original text."""
    original = path.read_text(encoding="utf-8")
    path.write_text(BREAKS[how][0](original), encoding="utf-8")
    return original


def _office_notices(mail: MailCatcher, word: str) -> list:
    return [m for m in mail.to(OFFICE) if word in str(m["subject"])]


def _decide(http: httpx.Client, link: str, decision: str = "approve") -> httpx.Response:
    page = http.get(link)
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return http.post(link, data={"csrf": csrf, "decision": decision, "comment": "passt"})


def _stored_texts(runtime: Runtime, occurrence_id: int) -> list[str]:
    with store.session_scope(runtime.engine) as session:
        return [r.to_rendered().text for r in store.current_posts(session,
                                                                  occurrence_id=occurrence_id)]


def _gate_outcome(runtime: Runtime, occurrence_id: int) -> str:
    status = approval.evaluate_gate(runtime.engine, runtime.catalog, occurrence_id=occurrence_id)
    return status.outcome.value


@pytest.mark.parametrize("how", list(BREAKS))
def test_unrelated_broken_file_approval_still_decided_and_office_told_once(stack, how):
    trikottag = stack.catalog / "trikottag.yaml"
    original = _break(trikottag, how)
    with httpx.Client(timeout=20) as http:
        page = http.get(stack.link)
        assert page.status_code == 200, page.text
        assert "Testaufruf t-one" in page.text
        for text in _stored_texts(stack.runtime, stack.occurrence_id):
            # exactly the posts asked about (the stored, hashed ones), not a re-render
            assert all(line in page.text for line in text.splitlines() if line)
        done = _decide(http, stack.link)
        assert done.status_code == 200 and "freigegeben" in done.text
    assert _gate_outcome(stack.runtime, stack.occurrence_id) == "approved"

    broken = stack.runtime.catalog_broken
    assert broken is not None and broken.files == (str(trikottag),)
    notices = _office_notices(stack.mail, "fehlerhaft")
    assert len(notices) == 1, [m["subject"] for m in stack.mail.to(OFFICE)]
    body = text_of(notices[0])
    assert "trikottag.yaml" in str(notices[0]["subject"]) and str(trikottag) in body
    assert re.search(r"trikottag\.yaml, Zeile \d+: ", body) and "newsroom validate" in body
    field = BREAKS[how][1]
    if field:
        assert field in body  # what is wrong, in the validator's words
    assert "trikottag" in stack.runtime.catalog.campaigns  # its last valid version

    # Fixed: used at once (a change made with the fix is seen), and the office hears so.
    trikottag.write_text(original.replace("title:", "title: Trikottag neu #", 1)
                         if "title: " in original else original, encoding="utf-8")
    fixed = stack.runtime.catalog
    assert stack.runtime.catalog_broken is None
    assert fixed.campaign("trikottag").campaign.title.startswith("Trikottag neu")
    assert len(_office_notices(stack.mail, "wieder fehlerfrei")) == 1
    assert len(_office_notices(stack.mail, "fehlerhaft")) == 1


def test_broken_file_of_the_campaign_being_approved(stack):
    """The approver sees the stored posts the link was issued for, decides, and it counts."""
    path = stack.catalog / "t-one.yaml"
    _break(path, "schema")
    stored = _stored_texts(stack.runtime, stack.occurrence_id)
    with httpx.Client(timeout=20) as http:
        page = http.get(stack.link)
        assert page.status_code == 200, page.text
        for text in stored:
            assert all(line in page.text for line in text.splitlines() if line)
        image = re.search(r'src="(/freigabe/[^"]+/bild/[^"]+)"', page.text).group(1)
        picture = http.get(stack.runtime.base_url + image)
        assert picture.status_code == 200 and picture.headers["content-type"].startswith("image/")
        assert _decide(http, stack.link, "request_changes").status_code == 200
    assert _gate_outcome(stack.runtime, stack.occurrence_id) == "changes_requested"
    assert stack.runtime.catalog_broken.files == (str(path),)


def test_restart_while_broken_uses_the_kept_catalog(stack, tmp_path):
    """A process started while a file is broken works from the snapshot in the data dir;
    the office, told by the first process, is not told again by the second."""
    _break(stack.catalog / "trikottag.yaml", "yaml-syntax")
    assert stack.runtime.catalog_broken is not None
    assert len(_office_notices(stack.mail, "fehlerhaft")) == 1

    port = free_port()
    restarted = _runtime(stack.settings.model_copy(update={
        "web_base_url": f"http://127.0.0.1:{port}"}))
    catalog = restarted.catalog
    assert restarted.catalog_broken is not None
    assert {"trikottag", "t-one"} <= set(catalog.campaigns)
    assert catalog.root == stack.catalog.resolve()
    assert catalog.content_root.is_relative_to(tmp_path / "var")
    web = WebServer(restarted, port=port, resume_runs=False)
    web.start()
    try:
        link = stack.link.replace(stack.runtime.base_url, web.url)
        with httpx.Client(timeout=20) as http:
            assert _decide(http, link).status_code == 200
    finally:
        web.stop()
        restarted.engine.dispose()
    assert _gate_outcome(stack.runtime, stack.occurrence_id) == "approved"
    assert len(_office_notices(stack.mail, "fehlerhaft")) == 1

    # `newsroom validate` still calls the folder broken, whatever the runtimes work with.
    checked = CliRunner().invoke(cli, ["validate", str(stack.catalog)])
    assert checked.exit_code == 1 and re.search(r"trikottag\.yaml:\d+: error", checked.output)

    # Neither memory nor a snapshot: the clear error of before, naming file and line.
    shutil.rmtree(tmp_path / "var" / "catalog-snapshots")
    fresh = _runtime(stack.settings)
    with pytest.raises(CatalogError, match=r"trikottag\.yaml:\d+: error: YAML syntax"):
        fresh.catalog  # noqa: B018
    fresh.engine.dispose()


@pytest.mark.parametrize("settle", [1.0])
def test_file_written_while_loaded_is_never_taken_half(stack, tmp_path, settle):
    """A writer that pauses mid-file (an upload, a slow copy) for less than the settle
    time: whenever the catalog is read, it is the old version or the whole new one, never
    the half (which here is valid YAML and a valid campaign with half its text). The
    pause is longer than a load, so a keeper that did not wait would take the half."""
    path = stack.catalog / "whole.yaml"
    lines = [f"    Zeile {n} des Aufrufs." for n in range(1, 9)]
    head = (stack.catalog / "t-one.yaml").read_text(encoding="utf-8").replace(
        "id: t-one", "id: whole").split("content:")[0]
    old = head + "content:\n  text: |\n" + "\n".join(lines[:1]) + "\n"
    new = head + "content:\n  text: |\n" + "\n".join(lines) + "\n"
    path.write_text(old, encoding="utf-8")
    keeper = CatalogKeeper(stack.catalog, tmp_path / "keeper", settle_seconds=settle,
                           max_wait_seconds=2 * settle)

    def lines_now() -> int:
        return keeper.catalog()[0].campaign("whole").campaign.content.text.count("Zeile")

    assert lines_now() == 1
    seen: list[int] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.append(lines_now())

    def wait_until_seen(count: int) -> None:
        deadline = time.monotonic() + 10
        while not (seen and seen[-1] == count):
            assert time.monotonic() < deadline, f"never saw {count} lines: {set(seen)}"
            time.sleep(0.02)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        with path.open("w", encoding="utf-8") as file:
            half = new[: new.index(lines[4])]  # a line boundary: a valid campaign
            file.write(half)
            file.flush()
            time.sleep(0.5)  # the writer pauses; the reader reads meanwhile
            file.write(new[len(half):])
        wait_until_seen(8)
        path.write_text(old, encoding="utf-8")
        wait_until_seen(1)
    finally:
        stop.set()
        reader.join()
    assert set(seen) == {1, 8}, set(seen)


@pytest.mark.slow
def test_flows_run_on_a_broken_catalog(prefect_server, tmp_path, monkeypatch):
    """A housekeeping pass completes on a broken catalog (its campaign gates still move),
    catalog-sync completes, changes nothing and names the broken file."""
    from flows.catalog_sync import catalog_sync
    from flows.housekeeping import housekeeping_pass
    from newsroom.runtime import get_runtime, reset_runtimes

    catalog = build_catalog(tmp_path / "campaigns")
    soon = (datetime.now(UTC) + timedelta(days=1)).astimezone(BERLIN)
    (catalog / "t-soon.yaml").write_text(CAMPAIGN.format(
        id="t-soon", approvers=THREE, mode="one", quorum="", on_timeout="cancel",
        escalate_to="", at=soon.strftime("%Y-%m-%d %H:%M")), encoding="utf-8")
    mail = MailCatcher(port=free_port()).start()
    settings = _settings(tmp_path, mail, free_port())
    for name in ("catalog_dir", "data_dir", "database_url", "web_base_url"):
        monkeypatch.setenv(f"NEWSROOM_{name.upper()}", str(getattr(settings, name)))
    monkeypatch.setenv("NEWSROOM_SMTP_URL", mail.smtp_url)
    monkeypatch.setenv("NEWSROOM_SECRET_KEY", KEY)
    reset_runtimes()
    try:
        first = catalog_sync(catalog_dir=str(catalog), schedule=False)
        assert "trikottag" in first["added"]
        runtime = get_runtime()
        occurrence_id = store_posts(runtime.engine, runtime.catalog, "t-soon", soon.date())
        approval.open_gate(runtime.engine, runtime.catalog, occurrence_id=occurrence_id,
                           now=datetime.now(UTC) - timedelta(days=3))
        (catalog / "trikottag.yaml").write_text("id: trikottag\ntitle: [kaputt\n",
                                                encoding="utf-8")
        reset_runtimes()  # a new process: only the snapshot knows the catalog

        done = run_async(housekeeping_pass())  # the deadline (48 h before) passed: cancelled
        assert done.changed == [f"t-soon {soon.date()}: cancelled"], done
        assert done.catalog_broken

        synced = catalog_sync(catalog_dir=str(catalog))
        assert synced["removed"] == [] and synced["added"] == []
        assert any("trikottag.yaml:3: error: YAML syntax" in line
                   for line in synced["broken"]), synced
        engine = store.make_engine(settings.database_url)
        with store.session_scope(engine) as session:
            assert "trikottag" in {c.id for c in store.active_campaigns(session)}
        engine.dispose()
        assert len(_office_notices(mail, "fehlerhaft")) == 1
    finally:
        reset_runtimes()
        mail.stop()
