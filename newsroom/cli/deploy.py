"""``newsroom deploy``: the deployments of prefect.yaml and the alert automation on the
configured Prefect API — what ``prefect deploy --all`` does, plus what it does not (the
work pool, the retired deployments, the automation that mails the office)."""

from __future__ import annotations

import sys

import click

from ..settings import get_settings
from .stack import require_prefect_api


def _verdict(before: dict | None, after: dict | None) -> str:
    if before is None:
        return "created"
    return "unchanged" if before == after else "updated"


@click.command("deploy")
@click.option("--pool", default=None, help="Work pool (default: NEWSROOM_WORK_POOL or newsroom).")
def deploy(pool: str | None) -> None:
    """Apply the deployments (prefect.yaml) and the alert automation to the Prefect API.

    Creates the work pool when missing; running it again changes nothing unless
    prefect.yaml (or the settings the automation uses) changed.
    """
    import asyncio

    from ..signing import SigningKeyRefused, resolve_secret_key

    try:  # the automation's webhook carries a token derived from the secret key
        resolve_secret_key(get_settings(), allow_demo=False)
    except SigningKeyRefused as exc:
        click.echo(f"newsroom: deploy gives the alert automation a token derived from the "
                   f"secret key and will not run without one: {exc}", err=True)
        sys.exit(1)
    api_url = require_prefect_api()
    pool = pool or get_settings().work_pool
    click.echo(f"Prefect API {api_url}, work pool {pool!r}")
    for line in asyncio.run(_deploy(pool)):
        click.echo(line)


async def _deploy(pool: str) -> list[str]:
    """Apply everything; one line per thing, saying whether it was created, updated or
    left unchanged."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from newsroom.orchestration.stack import (
        ALERT_AUTOMATION,
        RETIRED_DEPLOYMENTS,
        apply_deployments,
        read_alert_automation,
        read_deployment_state,
    )

    async with get_client() as client:
        try:
            await client.read_work_pool(pool)
            pool_existed = True
        except ObjectNotFound:
            pool_existed = False
        retired = []
        for name in RETIRED_DEPLOYMENTS:
            try:
                await client.read_deployment_by_name(name)
                retired.append(name)
            except ObjectNotFound:
                pass
    deployments_before = await read_deployment_state()
    automation_before = await read_alert_automation()
    await apply_deployments(pool)
    deployments_after = await read_deployment_state()
    automation_after = await read_alert_automation()

    lines = [f"work pool {pool!r}: {'exists' if pool_existed else 'created'}"]
    for name, after in deployments_after.items():
        lines.append(f"deployment {name}: {_verdict(deployments_before[name], after)} "
                     f"(id {(after or {}).get('id')})")
    lines += [f"deployment {name}: deleted (retired)" for name in retired]
    lines.append(f"automation {ALERT_AUTOMATION!r}: "
                 f"{_verdict(automation_before, automation_after)} "
                 f"(id {(automation_after or {}).get('id')})")
    return lines
