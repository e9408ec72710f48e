"""The catalog keeper and its snapshots, on a real folder (no servers): what validated is
what is used — templates and images included — and a crash or a file being written never
turns into a catalog."""

from __future__ import annotations

import os
import shutil
from datetime import date, datetime
from pathlib import Path

import pytest

from newsroom.catalog.keeper import CatalogKeeper
from newsroom.catalog.schedule import next_occurrence
from newsroom.catalog.snapshot import (
    CURRENT,
    MANIFEST,
    FilesChanging,
    Signature,
    SnapshotStore,
    catalog_signature,
)
from newsroom.errors import CatalogError
from newsroom.rendering.render import render_occurrence
from newsroom.timeutil import BERLIN

SEED = Path(__file__).resolve().parents[2] / "campaigns"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SEED, tmp_path / "campaigns"))


def _keeper(folder: Path, tmp_path: Path) -> CatalogKeeper:
    return CatalogKeeper(folder, tmp_path / "snapshots", settle_seconds=0)


def _first_day(catalog, campaign_id: str) -> date:
    return next_occurrence(catalog.campaign(campaign_id).campaign,
                           datetime(2026, 1, 1, tzinfo=BERLIN)).date


def test_a_broken_template_does_not_reach_the_kept_catalog(folder, tmp_path):
    """The kept catalog renders with the template that validated, not the one on disk."""
    keeper = _keeper(folder, tmp_path)
    catalog, _ = keeper.catalog()
    day = _first_day(catalog, "europawahl-2029")
    before = [p.text for p in render_occurrence(catalog, "europawahl-2029", day)]
    template = folder / "templates" / "europawahl.j2"
    template.write_text("{% if %}kaputt", encoding="utf-8")
    kept, event = keeper.catalog()
    assert event is not None and event.kind == "broken"
    assert keeper.broken.files == (str(template),)
    assert kept is catalog and kept.templates_dir != folder / "templates"
    assert [p.text for p in render_occurrence(kept, "europawahl-2029", day)] == before


def test_the_catalog_points_at_the_folder_people_edit(folder, tmp_path):
    catalog, _ = _keeper(folder, tmp_path).catalog()
    assert catalog.root == folder.resolve()
    assert catalog.campaign("trikottag").path == folder.resolve() / "trikottag.yaml"
    assert catalog.content_root.parent.parent == tmp_path / "snapshots"
    assert (catalog.images_dir / "trikottag.jpg").read_bytes() == (
        folder / "images" / "trikottag.jpg").read_bytes()


def test_a_stage_left_by_a_crash_is_never_loaded(folder, tmp_path):
    keeper = _keeper(folder, tmp_path)
    keeper.catalog()
    store = keeper.snapshots
    current = store.current()
    # a crash while copying: a stage with half the files, no manifest
    crashed = store.dir / ".stage-crashed"
    (crashed / "registry").mkdir(parents=True)
    (crashed / "registry" / "people.yaml").write_text("people: [", encoding="utf-8")
    # and a crash while naming the current one: a temporary next to it
    (store.dir / f".{CURRENT}.tmp").write_text("stage-crashed", encoding="utf-8")
    assert store.current() == current
    (folder / "trikottag.yaml").write_text("id: trikottag\ntitle: [\n", encoding="utf-8")
    restarted = _keeper(folder, tmp_path)
    catalog, _ = restarted.catalog()
    assert catalog.content_root == current and "trikottag" in catalog.campaigns


def test_the_current_snapshot_names_a_complete_one(folder, tmp_path):
    store = SnapshotStore(tmp_path / "snapshots", folder)
    stage = store.stage(catalog_signature(folder))
    assert store.current() is None  # a stage is not a snapshot
    final = store.publish(stage)
    assert store.current() == final and (final / MANIFEST).is_file()
    assert (store.dir / CURRENT).read_text(encoding="utf-8") == final.name
    # the same content again: the same snapshot, and unchanged files are shared
    again = store.publish(store.stage(catalog_signature(folder)))
    assert again == final and not list(store.dir.glob(".stage-*"))
    (folder / "trikottag.yaml").write_text(
        (folder / "trikottag.yaml").read_text(encoding="utf-8") + "# edit\n", encoding="utf-8")
    newer = store.publish(store.stage(catalog_signature(folder)))
    assert newer != final
    image = "images/europawahl.jpg"
    assert os.stat(newer / image).st_ino == os.stat(final / image).st_ino


def test_a_file_not_as_listed_is_not_copied(folder, tmp_path):
    """Read once, and only if it is as big as it was a moment ago (else: being written)."""
    store = SnapshotStore(tmp_path / "snapshots", folder)
    signature = catalog_signature(folder)
    entries = [(name, mtime, size + 1 if name == "trikottag.yaml" else size)
               for name, mtime, size in signature.entries]
    with pytest.raises(FilesChanging, match="trikottag.yaml"):
        store.stage(Signature(tuple(entries)))
    assert not list(store.dir.glob(".stage-*")) and store.current() is None


def test_a_file_written_a_moment_ago_waits_to_settle(folder, tmp_path):
    """Modified within the settle time: the keeper waits (here: for the clock) first."""
    now = [os.stat(folder / "trikottag.yaml").st_mtime + 0.01]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    keeper = CatalogKeeper(folder, tmp_path / "snapshots", settle_seconds=0.2,
                           clock=lambda: now[0], sleep=sleep)
    (folder / "trikottag.yaml").touch()
    now[0] = os.stat(folder / "trikottag.yaml").st_mtime + 0.01
    keeper.catalog()
    assert 0.15 <= sum(slept) <= 0.3


def test_no_valid_catalog_anywhere_fails_with_the_errors(folder, tmp_path):
    (folder / "trikottag.yaml").write_text("id: trikottag\ntitel: x\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"trikottag\.yaml:2: error: .*titel"):
        _keeper(folder, tmp_path).catalog()


def test_the_office_is_told_once_per_broken_state_across_processes(folder, tmp_path):
    first, second = _keeper(folder, tmp_path), _keeper(folder, tmp_path)
    first.catalog(), second.catalog()
    (folder / "trikottag.yaml").write_text("id: trikottag\ntitle: [\n", encoding="utf-8")
    _, event = first.catalog()
    _, other = second.catalog()
    assert event.kind == other.kind == "broken"
    assert first.claim_alert(event.broken) and not second.claim_alert(other.broken)
    assert first.catalog()[1] is None  # this process: once
    # another broken file: a new state
    (folder / "schadstoffmobil.yaml").write_text("id: x\n  y: [\n", encoding="utf-8")
    _, both = first.catalog()
    assert both.kind == "broken" and len(both.broken.files) == 2
    assert first.claim_alert(both.broken)
    shutil.copy(SEED / "trikottag.yaml", folder / "trikottag.yaml")
    shutil.copy(SEED / "schadstoffmobil.yaml", folder / "schadstoffmobil.yaml")
    recovered = [second.catalog()[1], first.catalog()[1]]
    assert [e.kind for e in recovered if e] == ["recovered"]  # once, by either
