"""The deployments ``newsroom up`` applies (flows/stack.py ``DEPLOYMENTS``) are the ones of
prefect.yaml (``prefect deploy --all``): same names, entrypoints, and scheduled or not."""

from __future__ import annotations

from pathlib import Path

import yaml

from flows.stack import DEPLOYMENTS, RETIRED_DEPLOYMENTS

ROOT = Path(__file__).resolve().parents[2]


def test_prefect_yaml_defines_the_deployments_newsroom_up_applies():
    declared = {entry["name"]: entry for entry in
                yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
                ["deployments"]}
    applied = {name: (f"{path}:{attribute}", interval is not None)
               for path, attribute, name, interval in DEPLOYMENTS}
    assert set(declared) == set(applied)
    for name, (entrypoint, scheduled) in applied.items():
        assert declared[name]["entrypoint"] == entrypoint, name
        assert bool(declared[name].get("schedules")) == scheduled, name
    assert not {retired.split("/")[1] for retired in RETIRED_DEPLOYMENTS} & set(declared)
