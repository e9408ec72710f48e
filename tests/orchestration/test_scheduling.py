"""Schedules from the catalog: the plan (domain, DST) and its sync to Prefect runs on a real
Prefect server (test harness). No worker runs here, so scheduled runs stay scheduled."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from newsroom.catalog.catalog import Catalog
from newsroom.catalog.validation import load_catalog
from newsroom.orchestration.stack import apply_deployments, run_async
from newsroom.planning import next_runs, plan_runs
from newsroom.runtime import reset_runtimes
from newsroom.timeutil import BERLIN, localize, parse_duration

ROOT = Path(__file__).resolve().parents[2]
POOL = f"newsroom-scheduling-{uuid4().hex[:8]}"
LEAD = parse_duration("7d")


def empty_catalog(root: Path) -> Path:
    """The seed registry, templates and images, without the seed campaigns."""
    catalog = root / "campaigns"
    shutil.copytree(ROOT / "campaigns", catalog)
    for path in catalog.glob("*.yaml"):
        path.unlink()
    return catalog


def write_campaign(catalog: Path, campaign_id: str, timing: str, *,
                   deadline_before: str = "48h", requested_by: str = "{portfolio: kinder-jugend}",
                   topic: str = "Kinder und Jugend", kind: str = "awareness_day",
                   channels: str = "[mastodon, bluesky]") -> Path:
    path = catalog / f"{campaign_id}.yaml"
    path.write_text(f"""\
id: {campaign_id}
title: Testkampagne {campaign_id}
topic: {topic}
kind: {kind}
requested_by: {requested_by}
approval:
  approvers:
    - portfolio: kinder-jugend
  mode: one
  deadline_before: {deadline_before}
  on_timeout: cancel
slots:
  - {timing}
    channels: {channels}
content:
  text: "Heute ist Aktionstag in Darmstadt. {{{{ hashtags }}}}"
  hashtags: [AktionstagDarmstadt]
""", encoding="utf-8")
    return path


def load(catalog: Path) -> Catalog:
    report = load_catalog(catalog)
    assert report.ok, [issue.format() for issue in report.issues]
    return report.catalog


# --- (1) the plan across daylight-saving time -------------------------------------------------

def test_yearly_runs_keep_their_local_time_across_dst(tmp_path):
    catalog_dir = empty_catalog(tmp_path)
    write_campaign(catalog_dir, "gedenken", 'yearly: "01-27 09:00"', deadline_before="72h")
    # days count on the wall clock (72h would be 72 real hours: 09:00 CET in 2030)
    write_campaign(catalog_dir, "maerz", 'yearly: "03-31 10:00"', deadline_before="3d")
    write_campaign(catalog_dir, "oktober", 'yearly: "10-27 09:00"', deadline_before="48h")
    catalog = load(catalog_dir)
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    gedenken = next_runs(catalog, "gedenken", now=now, count=5, lead=LEAD)
    assert [r.occurrence_date for r in gedenken] == [date(y, 1, 27) for y in range(2027, 2032)]
    for run in gedenken:  # winter time every year: 09:00 CET = 08:00 UTC
        assert run.first_publish_at.astimezone(UTC).time().isoformat() == "08:00:00"
        assert run.first_publish_at.astimezone(BERLIN).strftime("%H:%M %Z") == "09:00 CET"
        assert run.name == f"gedenken {run.occurrence_date.isoformat()}"
        # approval opens 72 h + 7 days before, at the same wall-clock time
        assert run.start_at.astimezone(BERLIN).replace(tzinfo=None) == datetime(
            run.occurrence_date.year, 1, 17, 9, 0)

    # 31 March is after the spring switch every year (in 2030 it is the switch day itself);
    # its approval opens ten days earlier, before the switch: still 10:00 on the clock.
    maerz = next_runs(catalog, "maerz", now=now, count=5, lead=LEAD)
    assert [r.occurrence_date.year for r in maerz] == [2027, 2028, 2029, 2030, 2031]
    for run in maerz:
        assert run.first_publish_at.astimezone(BERLIN).strftime("%H:%M %Z") == "10:00 CEST"
        assert run.first_publish_at.astimezone(UTC).hour == 8
        opens = run.start_at.astimezone(BERLIN)
        assert (opens.date(), opens.strftime("%H:%M %Z")) == (
            date(run.occurrence_date.year, 3, 21), "10:00 CET")
        assert run.start_at.astimezone(UTC).hour == 9

    # 27 October lies before the autumn switch in 2027-2029 and after it in 2030-2031.
    oktober = next_runs(catalog, "oktober", now=now, count=5, lead=LEAD)
    assert [r.first_publish_at.astimezone(UTC) for r in oktober] == [
        datetime(2027, 10, 27, 7, 0, tzinfo=UTC), datetime(2028, 10, 27, 7, 0, tzinfo=UTC),
        datetime(2029, 10, 27, 7, 0, tzinfo=UTC), datetime(2030, 10, 27, 8, 0, tzinfo=UTC),
        datetime(2031, 10, 27, 8, 0, tzinfo=UTC)]
    assert {r.first_publish_at.astimezone(BERLIN).strftime("%H:%M") for r in oktober} == {"09:00"}


def test_plan_horizon_yearly_and_on_demand(tmp_path):
    catalog_dir = empty_catalog(tmp_path)
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    write_campaign(catalog_dir, "bald", 'at: "2026-12-20 10:00"')
    write_campaign(catalog_dir, "spaeter", 'at: "2027-06-04 07:30"')  # beyond 60 days
    write_campaign(catalog_dir, "jaehrlich", 'yearly: "09-01 09:00"')  # 9 months ahead
    write_campaign(catalog_dir, "monatlich", 'rrule: "FREQ=MONTHLY;BYDAY=1MO"\n'
                   '    start: "2026-12-07 08:00"')
    write_campaign(catalog_dir, "knapp", 'at: "2026-11-25 10:00"')  # approval opened already
    write_campaign(catalog_dir, "vorbei", 'at: "2026-11-20 10:00"')
    shutil.copy(ROOT / "campaigns" / "unwetterwarnung.yaml", catalog_dir)  # on demand
    plan = plan_runs(load(catalog_dir), now=now, horizon=timedelta(days=60), lead=LEAD)
    names = [r.name for r in plan]
    assert names == ["knapp 2026-11-25", "monatlich 2026-12-07", "bald 2026-12-20",
                     "monatlich 2027-01-04", "monatlich 2027-02-01", "jaehrlich 2027-09-01"]
    # 2027-02-01 lies beyond the horizon, but its approval opens within it (22 January).
    by_name = {r.name: r for r in plan}
    assert by_name["knapp 2026-11-25"].start_at == now  # never in the past
    assert by_name["bald 2026-12-20"].tags == (
        "topic:Kinder und Jugend", "dezernat:kinder-jugend", "channel:bluesky",
        "channel:mastodon", "kind:awareness_day")
    assert by_name["bald 2026-12-20"].parameters == {"campaign_id": "bald",
                                                      "occurrence_date": "2026-12-20"}


# --- (2)-(5) the sync on a real Prefect server -----------------------------------------------

SECRET_KEY = "scheduling-tests-secret-key-0123456789-abcdef"


@pytest.fixture(scope="module")
def deployments(prefect_server):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEWSROOM_SECRET_KEY", SECRET_KEY)  # the alert hook's token derives from it
        reset_runtimes()
        try:
            return run_async(apply_deployments(POOL, schedules=False))
        finally:
            reset_runtimes()


async def _runs(deployment_id: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    async with get_client() as client:
        return await client.read_flow_runs(flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[UUID(deployment_id)])))


async def _clear_runs(deployment_id: str) -> None:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        for run in await _runs(deployment_id):
            await client.delete_flow_run(run.id)


@pytest.fixture
def env(deployments, tmp_path):
    """A private catalog and store; the campaign deployment without runs."""
    run_async(_clear_runs(deployments["campaign"]))
    catalog = empty_catalog(tmp_path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEWSROOM_CATALOG_DIR", str(catalog))
        mp.setenv("NEWSROOM_DATA_DIR", str(tmp_path / "var"))
        mp.setenv("NEWSROOM_DATABASE_URL", f"sqlite:///{tmp_path / 'newsroom.db'}")
        mp.setenv("NEWSROOM_SCHEDULE_HORIZON_DAYS", "60")
        mp.setenv("NEWSROOM_APPROVAL_LEAD", "7d")
        mp.setenv("NEWSROOM_SECRET_KEY", SECRET_KEY)
        reset_runtimes()
        try:
            yield catalog
        finally:
            reset_runtimes()
    run_async(_clear_runs(deployments["campaign"]))


def sync(catalog: Path, **kwargs):
    from newsroom.orchestration.scheduling import sync_schedules

    return run_async(sync_schedules(load(catalog), **kwargs))


def planned_by_name(deployment_id: str) -> dict:
    return {r.name: r for r in run_async(_runs(deployment_id))}


def local_slot(days: int, clock: str) -> datetime:
    """A wall-clock time ``days`` from today in Darmstadt (naive)."""
    day = datetime.now(BERLIN).date() + timedelta(days=days)
    hour, minute = map(int, clock.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute)


def expected_start(slot: datetime, deadline_before: timedelta) -> datetime:
    """Worked out by hand from the README's "Durations": the deadline lies ``deadline_before``
    (hours: elapsed time) before the slot; the run starts LEAD (7 days: wall-clock days) before
    the deadline."""
    deadline = localize(slot).astimezone(UTC) - deadline_before
    wall_clock = deadline.astimezone(BERLIN).replace(tzinfo=None)
    return localize(wall_clock - timedelta(days=LEAD.days)).astimezone(UTC)


def yearly_day() -> date:
    day = datetime.now(BERLIN).date() + timedelta(days=150)
    return day + timedelta(days=1) if (day.month, day.day) == (2, 29) else day


def scheduled_time(run) -> datetime:
    return run.state.state_details.scheduled_time.astimezone(UTC)


@pytest.mark.slow
def test_sync_creates_named_tagged_runs_at_approval_time(env, deployments):
    slot = local_slot(20, "10:00")
    write_campaign(env, "tst-once", f'at: "{slot:%Y-%m-%d %H:%M}"')
    far = yearly_day()
    write_campaign(env, "tst-yearly", f'yearly: "{far:%m-%d} 09:30"', deadline_before="72h",
                   requested_by="{office: amt-kommunikation}", topic="Erinnerungskultur",
                   kind="commemoration_day", channels="[website]")

    heard = []  # what `newsroom schedule` shows as progress
    summary = sync(env, on_change=heard.append)
    once, yearly = f"tst-once {slot.date()}", f"tst-yearly {far}"
    assert sorted(summary.created) == sorted([once, yearly])
    assert heard == summary.changes and len(heard) == 2
    assert summary.moved == summary.removed == summary.unchanged == []

    runs = planned_by_name(deployments["campaign"])
    assert set(runs) == {once, yearly}
    run = runs[once]
    assert run.parameters == {"campaign_id": "tst-once", "occurrence_date": slot.date().isoformat()}
    assert {"planned", "topic:Kinder und Jugend", "dezernat:kinder-jugend", "channel:mastodon",
            "channel:bluesky", "kind:awareness_day"} <= set(run.tags)
    assert run.state.type.value == "SCHEDULED" and run.state.name == "Scheduled"
    assert scheduled_time(run) == expected_start(slot, timedelta(hours=48))
    assert str(run.deployment_id) == deployments["campaign"]

    # The yearly campaign is 150 days away, beyond the 60-day horizon, and still scheduled.
    run = runs[yearly]
    assert {"planned", "topic:Erinnerungskultur", "dezernat:amt-kommunikation",
            "channel:website", "kind:commemoration_day"} <= set(run.tags)
    far_slot = datetime(far.year, far.month, far.day, 9, 30)
    assert scheduled_time(run) == expected_start(far_slot, timedelta(hours=72))


@pytest.mark.slow
def test_edited_file_moves_its_run_and_a_second_sync_changes_nothing(env, deployments):
    slot = local_slot(20, "10:00")
    path = write_campaign(env, "tst-edit", f'at: "{slot:%Y-%m-%d %H:%M}"')
    write_campaign(env, "tst-other", f'at: "{local_slot(25, "11:00"):%Y-%m-%d %H:%M}"')
    sync(env)
    before = planned_by_name(deployments["campaign"])[f"tst-edit {slot.date()}"]

    # Only the time changes: same run, new time.
    later = slot.replace(hour=14, minute=30)
    path.write_text(path.read_text(encoding="utf-8").replace(
        f"{slot:%Y-%m-%d %H:%M}", f"{later:%Y-%m-%d %H:%M}"), encoding="utf-8")
    summary = sync(env)
    assert summary.moved == [f"tst-edit {slot.date()}"]
    assert summary.created == summary.removed == []
    assert summary.unchanged == [f"tst-other {local_slot(25, '11:00').date()}"]
    runs = planned_by_name(deployments["campaign"])
    assert len(runs) == 2
    moved = runs[f"tst-edit {slot.date()}"]
    assert moved.id == before.id
    assert scheduled_time(moved) == expected_start(later, timedelta(hours=48))

    # The date moves by a day: the same run now stands for the new date.
    next_day = later + timedelta(days=1)
    path.write_text(path.read_text(encoding="utf-8").replace(
        f"{later:%Y-%m-%d %H:%M}", f"{next_day:%Y-%m-%d %H:%M}"), encoding="utf-8")
    summary = sync(env)
    assert summary.moved == [f"tst-edit {next_day.date()}"]
    assert summary.created == summary.removed == []
    runs = planned_by_name(deployments["campaign"])
    assert len(runs) == 2
    moved = runs[f"tst-edit {next_day.date()}"]
    assert moved.id == before.id
    assert moved.parameters["occurrence_date"] == next_day.date().isoformat()
    assert scheduled_time(moved) == expected_start(next_day, timedelta(hours=48))

    # Nothing changed since: nothing is created, moved or removed.
    again = sync(env)
    assert again.created == again.moved == again.removed == []
    assert sorted(again.unchanged) == sorted(runs)
    after = planned_by_name(deployments["campaign"])
    assert {n: (r.id, scheduled_time(r)) for n, r in after.items()} == {
        n: (r.id, scheduled_time(r)) for n, r in runs.items()}


@pytest.mark.slow
def test_removed_file_deletes_its_scheduled_runs(env, deployments):
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    path = write_campaign(env, "tst-weekly", 'rrule: "FREQ=WEEKLY;BYDAY=MO"\n'
                          f'    start: "{local_slot(1, "08:00"):%Y-%m-%d %H:%M}"')
    keep = write_campaign(env, "tst-keep", f'at: "{local_slot(15, "10:00"):%Y-%m-%d %H:%M}"')
    created = sync(env, horizon=timedelta(days=21)).created
    weekly = [n for n in created if n.startswith("tst-weekly ")]
    assert len(weekly) >= 3
    ids = [r.id for n, r in planned_by_name(deployments["campaign"]).items() if n in weekly]

    path.unlink()
    summary = sync(env, horizon=timedelta(days=21))
    assert sorted(summary.removed) == sorted(weekly)
    assert summary.unchanged == [f"tst-keep {local_slot(15, '10:00').date()}"]
    assert set(planned_by_name(deployments["campaign"])) == set(summary.unchanged)

    async def gone(run_id):
        async with get_client() as client:
            try:
                await client.read_flow_run(run_id)
            except ObjectNotFound:
                return True
            return False

    assert all(run_async(gone(run_id)) for run_id in ids)
    assert keep.exists()


@pytest.mark.slow
def test_started_run_is_left_alone(env, deployments):
    from prefect.client.orchestration import get_client
    from prefect.states import AwaitingRetry, Running, Suspended

    slot = local_slot(10, "10:00")
    path = write_campaign(env, "tst-started", f'at: "{slot:%Y-%m-%d %H:%M}"')
    waiting = write_campaign(env, "tst-waiting", f'at: "{local_slot(12, "09:00"):%Y-%m-%d %H:%M}"')
    retrying = write_campaign(env, "tst-retry", f'at: "{local_slot(14, "09:00"):%Y-%m-%d %H:%M}"')
    sync(env)
    runs = planned_by_name(deployments["campaign"])
    running = runs[f"tst-started {slot.date()}"]
    suspended = runs[f"tst-waiting {local_slot(12, '09:00').date()}"]
    retry = runs[f"tst-retry {local_slot(14, '09:00').date()}"]

    async def start() -> None:
        async with get_client() as client:
            await client.set_flow_run_state(running.id, Running(), force=True)
            await client.set_flow_run_state(suspended.id, Suspended(timeout_seconds=3600),
                                            force=True)
            # A failed run waiting for its retry is of type SCHEDULED too: it has run.
            await client.set_flow_run_state(retry.id, AwaitingRetry(
                scheduled_time=datetime.now(UTC) + timedelta(hours=1)), force=True)

    run_async(start())
    # Edit one (new time) and remove the others: no run changes, no second run appears.
    path.write_text(path.read_text(encoding="utf-8").replace("10:00", "16:00"), encoding="utf-8")
    waiting.unlink()
    retrying.unlink()
    summary = sync(env)
    assert summary.created == summary.moved == summary.removed == []
    assert summary.kept == [f"tst-started {slot.date()}"]
    after = planned_by_name(deployments["campaign"])
    assert set(after) == set(runs)
    assert after[running.name].state.name == "Running"
    assert after[suspended.name].state.name == "Suspended"
    assert after[retry.name].state.name == "AwaitingRetry"
    assert after[running.name].parameters == running.parameters


@pytest.mark.slow
def test_catalog_sync_flow_and_cli_schedule(env, deployments, tmp_path):
    from click.testing import CliRunner

    from flows.catalog_sync import catalog_sync
    from newsroom.cli import cli

    slot = local_slot(15, "10:00")
    write_campaign(env, "tst-flow", f'at: "{slot:%Y-%m-%d %H:%M}"')
    outcome = catalog_sync(catalog_dir=str(env), database_url=f"sqlite:///{tmp_path / 'f.db'}")
    assert outcome["added"] == ["tst-flow"]
    assert outcome["schedules"]["created"] == [f"tst-flow {slot.date()}"]

    write_campaign(env, "tst-cli", f'at: "{local_slot(16, "12:00"):%Y-%m-%d %H:%M}"')
    dry = CliRunner().invoke(cli, ["schedule", "--dry-run", "--catalog", str(env)])
    assert dry.exit_code == 0, dry.output
    assert "tst-cli" in dry.output and "dry run: nothing changed" in dry.output
    assert f"created   tst-cli {local_slot(16, '12:00').date()}" in dry.output
    assert set(planned_by_name(deployments["campaign"])) == {f"tst-flow {slot.date()}"}

    applied = CliRunner().invoke(cli, ["schedule", "--catalog", str(env)])
    assert applied.exit_code == 0, applied.output
    assert "1 created, 0 moved, 0 removed, 1 unchanged" in applied.output
    assert len(planned_by_name(deployments["campaign"])) == 2


def test_cli_schedule_without_prefect_says_so(tmp_path):
    catalog = empty_catalog(tmp_path)
    write_campaign(catalog, "tst-offline", f'at: "{local_slot(5, "10:00"):%Y-%m-%d %H:%M}"')
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PREFECT_API_URL":
           "http://127.0.0.1:9/api", "PREFECT_HOME": str(tmp_path / "prefect"),
           "NEWSROOM_DATA_DIR": str(tmp_path / "var")}
    result = subprocess.run([sys.executable, "-m", "newsroom.cli", "schedule", "--catalog",
                             str(catalog)], capture_output=True, text=True, env=env, cwd=ROOT,
                            timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("tst-offline"))
    assert line.split()[1] == local_slot(5, "10:00").date().isoformat()
    assert "No Prefect API reachable at http://127.0.0.1:9/api: nothing was scheduled" \
        in result.stderr
