"""`newsroom up`'s demo campaign, at the default `--demo-in`, leaves the approver more
than ten minutes between the approval e-mail and the deadline: the demo file written into
a copy of the shipped catalog validates, and its gate's deadline (as the gate computes it)
lies that far ahead of the moment the stack schedules it."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from newsroom import approval
from newsroom.catalog.validation import load_catalog
from newsroom.cli import stack as cli
from newsroom.orchestration.embedded import write_demo_campaign
from newsroom.timeutil import after, parse_duration

ROOT = Path(__file__).resolve().parents[1]
# The campaign run is created right after the demo is written; the worker's start of the
# run and the mail take seconds. What is left must still be ten minutes.
START_AND_MAIL = timedelta(seconds=30)


def test_the_default_demo_leaves_the_approver_more_than_ten_minutes(tmp_path: Path) -> None:
    [option] = [param for param in cli.up.params if param.name == "demo_in"]
    root = tmp_path / "campaigns"
    shutil.copytree(ROOT / "campaigns", root)
    scheduled = datetime.now(UTC)
    slot = after(scheduled, parse_duration(option.default)).replace(microsecond=0)
    demo = write_demo_campaign(root, slot)
    report = load_catalog(root)
    assert report.ok, [issue.format() for issue in report.errors]
    deadline = approval.gate_deadline(report.catalog, demo.campaign_id, slot)
    assert deadline - scheduled - START_AND_MAIL >= timedelta(minutes=10), (
        option.default, demo.deadline_before)
