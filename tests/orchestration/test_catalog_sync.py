"""The catalog-sync flow on a real Prefect server (the test harness)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from newsroom import store

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_catalog_sync_flow_records_campaigns_and_changes(prefect_server, tmp_path):
    from flows.catalog_sync import catalog_sync

    catalog = tmp_path / "campaigns"
    shutil.copytree(ROOT / "campaigns", catalog)
    url = f"sqlite:///{tmp_path / 'newsroom.db'}"

    first = catalog_sync(catalog_dir=str(catalog), database_url=url)
    assert "trikottag" in first["added"]
    assert first["removed"] == []

    (catalog / "trikottag.yaml").unlink()
    text = (catalog / "schadstoffmobil.yaml").read_text(encoding="utf-8")
    (catalog / "schadstoffmobil.yaml").write_text(text.replace("08:00", "08:30"), encoding="utf-8")
    second = catalog_sync(catalog_dir=str(catalog), database_url=url)
    assert second["removed"] == ["trikottag"]
    assert second["changed"] == ["schadstoffmobil"]

    engine = store.make_engine(url)
    with store.session_scope(engine) as session:
        actions = [e.action for e in store.audit_trail(session, campaign_id="trikottag")]
        assert actions == ["campaign.added", "campaign.removed"]
        assert "trikottag" not in {c.id for c in store.active_campaigns(session)}
    engine.dispose()


def test_catalog_sync_flow_fails_on_broken_catalog(prefect_server, tmp_path):
    from flows.catalog_sync import catalog_sync
    from newsroom.errors import CatalogError

    catalog = tmp_path / "campaigns"
    shutil.copytree(ROOT / "campaigns", catalog)
    (catalog / "trikottag.yaml").write_text("id: trikottag\ntitel: x\n", encoding="utf-8")
    with pytest.raises(CatalogError) as excinfo:
        catalog_sync(catalog_dir=str(catalog), database_url=f"sqlite:///{tmp_path / 'n.db'}")
    assert "trikottag.yaml:2" in str(excinfo.value)
