"""The keys of the artifacts Newsroom writes on its runs (the Artifacts tab of the
Prefect UI): one place, because the tasks write them and the gate's resume updates them."""

from __future__ import annotations

from datetime import date

__all__ = ["approval_artifact", "artifact_key"]


def artifact_key(*parts: object) -> str:
    """An artifact key: lowercase letters, digits and dashes only."""
    text = "-".join(str(p) for p in parts).lower()
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")[:120]


def approval_artifact(campaign_id: str, occurrence_date: date) -> tuple[str, str]:
    """The key and description of an occurrence's approval artifact; each write under the
    key is a new version (the UI shows the latest, and every earlier one)."""
    return (artifact_key("approval", campaign_id, occurrence_date),
            f"Approval of {campaign_id} {occurrence_date}")
