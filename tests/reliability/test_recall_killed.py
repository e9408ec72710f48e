"""A recall killed half-way (SIGKILL of its process while the networks have deleted but
not yet answered) leaves nothing deleted twice and nothing up unreported: the next run
(housekeeping's ``finish_recalls``) takes the dead claims over, each delete answers that
the post is gone, and every channel ends "gone" once in the audit trail. Real processes,
the stand-ins over real HTTP, a SQLite store on disk shared by both processes."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from benchkit import service_campaign_yaml  # noqa: E402

from newsroom import recall, store
from newsroom.delivery import close_shared_client, deliver_occurrence, prepare_occurrence
from newsroom.runtime import Runtime
from newsroom.settings import Settings
from newsroom.signing import Signer
from newsroom.standins import config as standin
from newsroom.store import make_engine, upgrade_database
from newsroom.timeutil import BERLIN

ROOT = Path(__file__).resolve().parents[2]
CHANNELS = ("mastodon", "bluesky", "linkedin", "telegram")
# The request that deletes a post, per stand-in network.
DELETE_PATHS = {"mastodon": "/api/v1/statuses/", "bluesky": "deleteRecord",
                "linkedin": "/rest/posts/", "telegram": "deleteMessage"}
SECRET = "recall-killed-secret-key-0123456789-abcdef"
CHILD = """
import asyncio, sys
from newsroom import recall
from newsroom.runtime import get_runtime
asyncio.run(recall.recall_occurrence(get_runtime(), occurrence_id=int(sys.argv[1]),
                                     reason="Falscher Ort", by="wolf", via="cli"))
"""


class _Quiet:
    def notify(self, *args, **kwargs) -> bool:
        return True


@pytest.mark.slow
def test_a_recall_killed_half_way_is_finished_once(tmp_path: Path, standins_url: str,
                                                   standins, monkeypatch) -> None:
    catalog = tmp_path / "campaigns"
    shutil.copytree(ROOT / "campaigns", catalog)
    registry = catalog / "registry" / "channels.yaml"
    registry.write_text(registry.read_text(encoding="utf-8").replace(
        "http://127.0.0.1:8900", standins_url), encoding="utf-8")
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    local = slot.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M:%S")
    (catalog / "rueckruf-abbruch.yaml").write_text(
        service_campaign_yaml("rueckruf-abbruch", local, list(CHANNELS), title="Rückruf"),
        encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'newsroom.db'}"
    upgrade_database(url)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("NEWSROOM_")},
           **standin.STANDIN_CREDENTIAL_ENV, "NEWSROOM_CATALOG_DIR": str(catalog),
           "NEWSROOM_DATA_DIR": str(tmp_path / "var"), "NEWSROOM_DATABASE_URL": url,
           "NEWSROOM_SECRET_KEY": SECRET}
    for name, value in standin.STANDIN_CREDENTIAL_ENV.items():
        monkeypatch.setenv(name, value)
    settings = Settings(catalog_dir=catalog, data_dir=tmp_path / "var", database_url=url,
                        secret_key=SECRET)
    runtime = Runtime(settings=settings, engine=make_engine(url), signer=Signer(SECRET))
    runtime.notifier_override = _Quiet()
    prepared = prepare_occurrence(runtime, "rueckruf-abbruch", slot.astimezone(BERLIN).date())

    async def deliver():
        try:
            return await deliver_occurrence(runtime, prepared, None)
        finally:
            await close_shared_client()

    assert sorted(asyncio.run(deliver()).published) == sorted(CHANNELS)

    def posts() -> list[dict]:
        return [p for p in standins.posts() if "rueckruf-abbruch" in str(p)]

    # The networks delete at once and hold their answers: the kill comes in between.
    standins.set_faults([{"network": network, "path_contains": path, "kind": "slow_answer",
                          "delay": 30} for network, path in DELETE_PATHS.items()])
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(prepared.occurrence_id)],
                             env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while sum(1 for p in posts() if p.get("deleted_at")) < len(CHANNELS):
            assert time.monotonic() < deadline, posts()
            assert child.poll() is None, "the recall ended before its answers came"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    standins.set_faults([])
    with store.session_scope(runtime.engine) as session:
        left = store.recalls_of(session, occurrence_id=prepared.occurrence_id)
    assert {r.status for r in left} == {"withdrawing"}  # claimed by the dead process

    # The next run: a fresh claim is not taken over (another process may be at it) ...
    assert {c.status for c in asyncio.run(recall.finish_recalls(runtime))} == {"withdrawing"}
    assert [p.get("deletions") for p in posts()] == [1] * len(CHANNELS)
    # ... a stale one is.
    monkeypatch.setattr(recall, "STALE_CLAIM", timedelta(0))

    async def finish():
        try:
            return await recall.finish_recalls(runtime)
        finally:
            await close_shared_client()

    done = asyncio.run(finish())
    assert sorted((c.channel, c.status) for c in done) == [(c, "gone") for c in sorted(CHANNELS)]
    assert [p.get("deletions") for p in posts()] == [1] * len(CHANNELS)  # none twice
    assert not [p for p in posts() if not p.get("deleted_at")]  # none left up
    with store.session_scope(runtime.engine) as session:
        events = store.audit_trail(session, campaign_id="rueckruf-abbruch")
    gone = sorted(e.channel for e in events if e.action == "recall.gone")
    assert gone == sorted(CHANNELS)
    assert asyncio.run(recall.finish_recalls(runtime)) == []
