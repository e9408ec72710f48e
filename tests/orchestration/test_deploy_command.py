"""``newsroom deploy`` and ``prefect deploy --all`` on a real Prefect server: the
deployments of prefect.yaml with its tags and schedules, the alert automation, nothing
changed by a second run, and the same deployments either way."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from newsroom.orchestration.stack import (
    ALERT_AUTOMATION,
    DEFINITIONS,
    apply_alert_automation,
    apply_deployments,
    free_port,
    read_alert_automation,
    read_deployment_state,
    run_async,
)
from newsroom.runtime import reset_runtimes

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
POOL = "newsroom-deploy-command"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def env(prefect_server, tmp_path_factory):
    """Newsroom's settings for the commands (in this process's environment, so
    subprocesses get them too, with the server's PREFECT_API_URL and credential)."""
    root = tmp_path_factory.mktemp("deploy-command")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEWSROOM_HOME", str(ROOT))
        patch.setenv("NEWSROOM_DATA_DIR", str(root / "var"))
        patch.setenv("NEWSROOM_DATABASE_URL", f"sqlite:///{root / 'newsroom.db'}")
        patch.setenv("NEWSROOM_WEB_BASE_URL", "http://127.0.0.1:8199")
        patch.setenv("NEWSROOM_SECRET_KEY", "deploy-command-secret-key-0123456789-abcdef")
        patch.setenv("NEWSROOM_WORK_POOL", POOL)  # the default of --pool
        reset_runtimes()
        try:
            yield root
        finally:
            _leave_nothing_scheduled()
            reset_runtimes()


def _leave_nothing_scheduled() -> None:
    """As the other modules leave the shared deployments: without schedules, and no
    scheduled run of the hourly catalog sync left in this pool."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName

    async def clean() -> None:
        await apply_deployments(POOL, schedules=False)
        async with get_client() as client:
            for run in await client.read_flow_runs(work_pool_filter=WorkPoolFilter(
                    name=WorkPoolFilterName(any_=[POOL]))):
                await client.delete_flow_run(run.id)

    run_async(clean())


def newsroom_deploy(*args: str, extra_env: dict[str, str] | None = None
                    ) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "newsroom"), "deploy", *args], cwd=ROOT,
                          env={**os.environ, **(extra_env or {})}, capture_output=True,
                          text=True, timeout=120)


def _verdicts(stdout: str) -> dict[str, str]:
    """'deployment campaign: created (id …)' -> {'deployment campaign': 'created'}."""
    found = re.findall(r"^(.+): (created|updated|unchanged|exists|deleted)\b", stdout,
                       flags=re.MULTILINE)
    return dict(found)


def _schedule_ids() -> dict[str, list[str]]:
    from prefect.client.orchestration import get_client

    async def read() -> dict[str, list[str]]:
        state = await read_deployment_state()
        async with get_client() as client:
            return {name: sorted(str(s.id) for s in await client.read_deployment_schedules(
                entry["id"])) for name, entry in state.items() if entry}

    return run_async(read())


def _defined(definition) -> dict:
    """What the server should have of ``definition`` on this module's pool."""
    return {"entrypoint": definition.entrypoint, "description": definition.description,
            "tags": sorted(definition.tags), "parameters": definition.parameters,
            "work_pool": POOL, "work_queue": definition.work_queue,
            "schedules": sorted(definition.schedules, key=repr)}


@pytest.fixture(scope="module")
def deployed(env):
    """``newsroom deploy`` once; its result and what the server has afterwards."""
    result = newsroom_deploy()
    assert result.returncode == 0, result.stderr
    return result, run_async(read_deployment_state()), run_async(read_alert_automation())


def test_newsroom_deploy_applies_the_definition_and_the_automation(deployed):
    result, state, automation = deployed
    verdicts = _verdicts(result.stdout)
    # Other modules of the session may have applied the deployments on their pools.
    for definition in DEFINITIONS:
        assert verdicts[f"deployment {definition.name}"] in ("created", "updated"), \
            result.stdout
    assert verdicts[f"work pool {POOL!r}"] in ("created", "exists")
    assert f"work pool {POOL!r}" in result.stdout  # NEWSROOM_WORK_POOL is the default
    for definition in DEFINITIONS:
        found = {k: v for k, v in state[definition.name].items() if k != "id"}
        assert found == _defined(definition), definition.name
    assert state["catalog-sync"]["schedules"] == [
        {"cron": "0 * * * *", "timezone": "Europe/Berlin", "slug": "hourly"}]
    assert automation is not None and automation["count"] == 1
    trigger = automation["spec"]["trigger"]
    assert trigger["expect"] == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    assert trigger["match_related"]["prefect.resource.id"] == "prefect.tag.newsroom"
    assert verdicts[f"automation {ALERT_AUTOMATION!r}"] in ("created", "updated",
                                                          "unchanged")


def test_newsroom_deploy_again_changes_nothing(deployed):
    _, state, automation = deployed
    schedules = _schedule_ids()
    again = newsroom_deploy("--pool", POOL)
    assert again.returncode == 0, again.stderr
    verdicts = _verdicts(again.stdout)
    assert {what: verdict for what, verdict in verdicts.items()
            if not what.startswith("work pool")} == {
        **{f"deployment {d.name}": "unchanged" for d in DEFINITIONS},
        f"automation {ALERT_AUTOMATION!r}": "unchanged"}, again.stdout
    assert verdicts[f"work pool {POOL!r}"] == "exists"
    assert run_async(read_deployment_state()) == state  # ids included
    assert run_async(read_alert_automation()) == automation
    assert _schedule_ids() == schedules  # updated in place, not replaced


def test_prefect_deploy_all_makes_the_deployments_newsroom_deploy_makes(deployed, env):
    _, state, automation = deployed
    # prefect.yaml as it is, on this module's pool (`--pool` is ignored with --all).
    document = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    for entry in document["deployments"]:
        entry["work_pool"] = {**entry["work_pool"], "name": POOL}
    prefect_file = env / "prefect.yaml"
    prefect_file.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    result = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", "deploy", "--all", "--prefect-file",
         str(prefect_file)], cwd=ROOT, env=os.environ.copy(), capture_output=True,
        text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("successfully created") == len(DEFINITIONS), result.stdout
    # The same deployments (same ids), with the same entrypoints, tags, schedules, …
    assert run_async(read_deployment_state()) == state
    # … and the automation is only newsroom deploy's.
    assert run_async(read_alert_automation()) == automation


def test_newsroom_deploy_refuses_without_a_reachable_prefect(env):
    nobody = f"http://127.0.0.1:{free_port()}/api"
    result = newsroom_deploy(extra_env={"PREFECT_API_URL": nobody})
    assert result.returncode == 1
    assert f"no Prefect server answers at {nobody}" in result.stderr
    assert "deployment" not in result.stdout


def test_applying_the_automation_deletes_another_of_its_name(deployed):
    """Two automations of the alert's name (two deploys at once, say): applying again
    leaves one, as defined. (The duplicates the API returns are plain models, without
    a delete method of their own: this raised AttributeError.)"""
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore

    _, _, automation = deployed

    async def add_another_then_apply() -> str:
        async with get_client() as client:
            first = (await client.read_automations_by_name(ALERT_AUTOMATION))[0]
            await client.create_automation(AutomationCore.model_validate(
                first.model_dump(include=set(AutomationCore.model_fields))))
            assert len(await client.read_automations_by_name(ALERT_AUTOMATION)) == 2
        return await apply_alert_automation()

    kept = run_async(add_another_then_apply())
    after = run_async(read_alert_automation())
    assert after is not None and after["count"] == 1
    assert after["id"] == kept and after["spec"] == automation["spec"]
