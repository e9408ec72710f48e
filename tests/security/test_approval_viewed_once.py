"""``approval.viewed`` at most once per link and minute, however many GETs: a scanner's
burst against two web processes on one store (a uvicorn subprocess, and one in this
process with its own engine) records one event per link; on SQLite and on PostgreSQL.
The store decides (the unique ``once_key``): the next minute records again."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pgkit import reset_schema
from security_testkit import SECRET, make_site, requests_by_person, web_process
from webkit import serving

from newsroom import approval, store
from newsroom.settings import Settings
from newsroom.web.app import create_web_app
from newsroom.web.approval import viewed_key

pytestmark = pytest.mark.slow
GETS = 40


def _viewed(engine, nonce: str | None = None) -> list:
    with store.session_scope(engine) as session:
        return [e for e in store.audit_trail(session, campaign_id="t-one")
                if e.action == "approval.viewed"
                and (nonce is None or e.detail.get("token_nonce") == nonce)]


def _not_at_a_minute_boundary() -> None:
    """Start with at least 5 s left in this minute (the burst takes well under that)."""
    second = datetime.now(UTC).second
    if second >= 55:
        time.sleep(61 - second)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql",
                                                            marks=pytest.mark.postgres)])
def test_a_burst_of_gets_on_two_web_apps_records_one_view_per_link(
        request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> None:
    url = (reset_schema(request.getfixturevalue("postgres_url")) if backend == "postgresql"
           else None)
    site = make_site(tmp_path, url)
    other = approval.approval_link(
        site.signer, requests_by_person(site.engine, site.occurrence_id)["akdeniz"],
        "http://x").rsplit("/", 1)[1]
    nonce = approval.check_link(site.engine, site.signer, site.approval_token).claims.nonce
    settings = Settings(catalog_dir=site.root, data_dir=site.data_dir, database_url=site.url,
                        secret_key=SECRET)
    engine = store.make_engine(site.url)
    try:
        with web_process(site) as one, serving(create_web_app(
                engine, site.catalog, settings, signer=site.signer)) as two_url:
            # FastAPI builds its routes at the first request; not while the burst runs
            # (its warning filters are not thread-safe under pytest's "error").
            assert httpx.get(f"{two_url}/freigabe/x").status_code == 400
            _not_at_a_minute_boundary()

            def get(n: int) -> int:
                base = (one.url, two_url)[n % 2]
                token = site.approval_token if n % 4 else other
                return httpx.get(f"{base}/freigabe/{token}", timeout=30).status_code

            with ThreadPoolExecutor(16) as pool:
                statuses = list(pool.map(get, range(GETS)))
        assert statuses == [200] * GETS
        assert len(_viewed(site.engine, nonce)) == 1
        assert len(_viewed(site.engine)) == 2  # one per link
        event = _viewed(site.engine, nonce)[0]
        assert event.once_key == viewed_key(nonce, event.at)
        # A minute later it is recorded again (the key of the next minute is new).
        later = event.at + timedelta(minutes=1)
        with store.session_scope(site.engine) as session:
            again = store.record_audit_once(
                session, once_key=viewed_key(nonce, later), campaign_id="t-one",
                actor="benz", action="approval.viewed", at=later,
                detail={"token_nonce": nonce})
            same = store.record_audit_once(
                session, once_key=viewed_key(nonce, later), campaign_id="t-one",
                actor="benz", action="approval.viewed", at=later,
                detail={"token_nonce": nonce})
        assert again is not None and same is None
        assert len(_viewed(site.engine, nonce)) == 2
    finally:
        engine.dispose()
        site.engine.dispose()
