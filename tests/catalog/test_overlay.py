"""A running stack's overlay on the catalog people edit (newsroom/catalog/overlay.py), on
real folders: the accounts are reached where the overlay says, its campaigns join the
catalog and are checked like any other, the catalog's own files are neither copied nor
changed, and the keeper sees an edit of either folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from newsroom.catalog.keeper import CatalogKeeper
from newsroom.catalog.models import AccountConnection, ChannelType
from newsroom.catalog.overlay import (
    STANDIN_PATHS,
    prepare_overlay,
    standin_connections,
    write_registry_overlay,
)
from newsroom.catalog.validation import load_catalog

SEED = Path(__file__).resolve().parents[2] / "campaigns"
STANDINS = "http://127.0.0.1:45123"

DEMO = """\
id: demo-overlay
title: Demo aus dem Overlay
topic: Kinder und Jugend
kind: awareness_day
requested_by: {portfolio: kinder-jugend}
approval:
  approvers: [{portfolio: kinder-jugend}]
  mode: one
  deadline_before: 1m
  on_timeout: cancel
slots:
  - at: "2031-05-05 10:00:00"
    channels: [mastodon, telegram]
content:
  text: "Aktionstag in Darmstadt {{ hashtags }}"
  hashtags: [AktionstagDarmstadt]
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SEED, tmp_path / "campaigns"))


@pytest.fixture
def overlay(tmp_path: Path, folder: Path) -> Path:
    shipped = load_catalog(folder).catalog
    path = prepare_overlay(tmp_path / "var" / "stack-overlay")
    write_registry_overlay(path, standin_connections(shipped.accounts.values(), STANDINS))
    return path


def test_accounts_are_reached_where_the_overlay_says_and_the_registry_is_unchanged(
        folder, overlay):
    registry = folder / "registry" / "channels.yaml"
    before = registry.read_bytes()
    plain = load_catalog(folder).catalog
    report = load_catalog(folder, overlay=overlay)
    assert report.ok, [i.format() for i in report.issues]
    accounts = report.catalog.accounts
    served = [a for a in accounts.values() if a.type in STANDIN_PATHS]
    assert len(served) >= 8
    for account in served:
        assert account.base_url == STANDINS + STANDIN_PATHS[account.type], account.name
        assert plain.accounts[account.name].base_url != account.base_url
        # What the account is stays the registry's.
        assert account.credential == plain.accounts[account.name].credential
        assert account.crisis == plain.accounts[account.name].crisis
    press = next(a for a in accounts.values() if a.type is ChannelType.EMAIL)
    assert press == plain.accounts[press.name]
    assert registry.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in SEED.iterdir())


def test_the_overlays_campaign_joins_the_catalog_and_is_checked_alike(folder, overlay):
    (overlay / "demo-overlay.yaml").write_text(DEMO, encoding="utf-8")
    report = load_catalog(folder, overlay=overlay)
    assert report.ok, [i.format() for i in report.issues]
    assert "demo-overlay" in report.catalog.campaigns
    assert report.catalog.campaigns["demo-overlay"].path == overlay / "demo-overlay.yaml"
    assert "demo-overlay" not in load_catalog(folder).catalog.campaigns

    (overlay / "demo-overlay.yaml").write_text(DEMO.replace("[mastodon, telegram]",
                                                            "[mastodon, myspace]"))
    report = load_catalog(folder, overlay=overlay)
    assert "demo-overlay" not in report.catalog.campaigns
    [error] = report.errors
    assert error.file.endswith("stack-overlay/demo-overlay.yaml")
    assert error.line == 13 and "myspace" in error.message


def test_an_overlay_may_change_how_an_account_is_reached_never_what_it_is(folder, overlay):
    channels = overlay / "registry" / "channels.yaml"
    channels.write_text("accounts:\n  - name: mastodon\n    base_url: http://127.0.0.1:1/m\n"
                        "  - name: telegram\n    crisis: false\n", encoding="utf-8")
    report = load_catalog(folder, overlay=overlay)
    [error] = report.errors
    assert error.file.endswith("stack-overlay/registry/channels.yaml")
    assert error.line == 5 and "crisis" in error.field
    # A refused overlay is a broken registry: no catalog to publish with.
    assert report.catalog is None

    channels.write_text("accounts:\n  - name: mastodon\n    keep_alive: false\n"
                        "  - name: gone\n    base_url: http://127.0.0.1:1/x\n")
    report = load_catalog(folder, overlay=overlay)
    assert report.ok
    [warning] = report.warnings
    assert warning.line == 4 and "'gone' is not in the registry" in warning.message
    assert report.catalog.accounts["mastodon"].keep_alive is False


@pytest.mark.parametrize("where", ["overlay", "registry"])
def test_a_base_url_must_be_an_http_url(folder, overlay, where):
    if where == "overlay":
        path = overlay / "registry" / "channels.yaml"
        path.write_text("accounts:\n  - name: mastodon\n    base_url: ftp:/x\n")
        line = 3
    else:
        path = folder / "registry" / "channels.yaml"
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("http://127.0.0.1:8900/mastodon", "127.0.0.1:8900/m"))
        line = 1 + text.splitlines().index("    base_url: http://127.0.0.1:8900/mastodon")
    report = load_catalog(folder, overlay=overlay)
    [error] = report.errors
    assert (error.file, error.line) == (str(path.relative_to(Path.cwd()))
                                        if path.is_relative_to(Path.cwd()) else str(path), line)
    assert "http:// or https://" in error.message
    assert AccountConnection(name="x", base_url="https://bsky.social").base_url


def test_the_keeper_sees_an_edit_of_the_catalog_and_of_the_overlay(tmp_path, folder, overlay):
    keeper = CatalogKeeper(folder, tmp_path / "snapshots", overlay=overlay, settle_seconds=0)
    first, _ = keeper.catalog()
    assert first.accounts["mastodon"].base_url == STANDINS + "/mastodon"
    assert "demo-overlay" not in first.campaigns

    demo = overlay / "demo-overlay.yaml"
    demo.write_text(DEMO, encoding="utf-8")
    second, _ = keeper.catalog()
    assert second is not first and "demo-overlay" in second.campaigns
    assert second.campaigns["demo-overlay"].path == demo
    # The catalog's own campaigns keep the paths people know (not the snapshot's).
    assert second.campaigns["trikottag"].path == folder.resolve() / "trikottag.yaml"

    edited = folder / "trikottag.yaml"
    edited.write_text(edited.read_text(encoding="utf-8").replace(
        "title: ", "title: Geändert – ", 1), encoding="utf-8")
    os.utime(edited, ns=(edited.stat().st_atime_ns, edited.stat().st_mtime_ns + 10**6))
    third, _ = keeper.catalog()
    assert third.campaigns["trikottag"].campaign.title.startswith("Geändert – ")
    assert "demo-overlay" in third.campaigns
    assert third.accounts["mastodon"].base_url == STANDINS + "/mastodon"

    # A broken edit keeps the last valid catalog, overlay and all, and says which file.
    edited.write_text("id: trikottag\nslots: [\n", encoding="utf-8")
    kept, event = keeper.catalog()
    assert kept is third and event is not None and event.kind == "broken"
    assert keeper.broken.files == (str(edited.relative_to(Path.cwd()))
                                   if edited.is_relative_to(Path.cwd()) else str(edited),)
