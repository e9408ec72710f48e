"""prefect.yaml is the one definition of the deployments: what ``newsroom up`` and
``newsroom deploy`` apply (newsroom/orchestration/stack.py ``DEFINITIONS``, read from it) is what
``prefect deploy --all`` reads — same names, entrypoints, tags, schedules. (On a real
server: tests/orchestration/test_deploy_command.py.)"""

from __future__ import annotations

from pathlib import Path

import yaml

from newsroom.orchestration.stack import (
    DEFINITIONS,
    DEPLOYMENTS,
    PREFECT_YAML,
    RETIRED_DEPLOYMENTS,
    definition_flow,
    deployment_schedules,
)
from newsroom.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _declared() -> dict[str, dict]:
    return {entry["name"]: entry for entry in
            yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
            ["deployments"]}


def test_prefect_yaml_defines_the_deployments_newsroom_up_applies():
    assert PREFECT_YAML == ROOT / "prefect.yaml"
    declared = _declared()
    applied = {name: (f"{path}:{attribute}", bool(schedules))
               for path, attribute, name, schedules in DEPLOYMENTS}
    assert set(declared) == set(applied)
    for name, (entrypoint, scheduled) in applied.items():
        assert declared[name]["entrypoint"] == entrypoint, name
        assert bool(declared[name].get("schedules")) == scheduled, name
    assert not {retired.split("/")[1] for retired in RETIRED_DEPLOYMENTS} & set(declared)


def test_every_field_of_prefect_yaml_is_what_apply_deployments_uses():
    declared = _declared()
    for definition in DEFINITIONS:
        entry = declared[definition.name]
        assert definition.description == entry["description"], definition.name
        assert list(definition.tags) == entry["tags"], definition.name
        assert list(definition.schedules) == entry.get("schedules", []), definition.name
        assert definition.parameters == entry.get("parameters", {}), definition.name
        assert definition.work_pool == entry["work_pool"]["name"], definition.name
        assert definition.work_queue == entry["work_pool"]["work_queue_name"]


def test_the_definitions_fit_newsroom():
    for definition in DEFINITIONS:
        # The alert automation reacts to runs tagged "newsroom" (deployment tags pass to runs).
        assert "newsroom" in definition.tags, definition.name
        # The pool `newsroom deploy` and `newsroom worker` use by default.
        assert definition.work_pool == Settings.model_fields["work_pool"].default
        assert definition_flow(definition).fn is not None, definition.name
        # A slug lets applying again update a schedule in place (same id, same runs).
        assert all(s.get("slug") for s in definition.schedules), definition.name


def test_schedules_are_built_as_prefect_deploy_builds_them():
    from prefect.cli.deploy._schedules import _schedule_config_to_deployment_schedule

    scheduled = [d for d in DEFINITIONS if d.schedules]
    assert [d.name for d in scheduled] == ["catalog-sync"]
    for definition in scheduled:
        assert deployment_schedules(definition) == [
            _schedule_config_to_deployment_schedule(dict(s)) for s in definition.schedules]
