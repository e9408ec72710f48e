"""Account checks: ``newsroom channels check``.

:func:`check_accounts` asks every account at once what publishing needs, without posting
(:meth:`~newsroom.channels.Publisher.check`), and says per account what is wrong and how
to fix it (:class:`AccountStatus`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels import PUBLISHERS, CredentialMissing, aresolve_credential, publisher_for
from newsroom.errors import PublishError, TransientPublishError

__all__ = ["AccountStatus", "check_accounts"]

@dataclass(frozen=True)
class AccountStatus:
    """One line of ``newsroom channels check``."""

    channel: str
    ok: bool
    message: str


def _credential_hint(account: ChannelAccount, cause: str = "") -> str:
    credential = account.credential
    if credential is None:
        return ("the account has no `credential` in registry/channels.yaml: add "
                "`credential: {env: NAME}` or `credential: {secret_block: NAME}`")
    if credential.env and credential.secret_block:
        text = (f"{credential.env} is not set: set it or create the Prefect Secret block "
                f"{credential.secret_block}")
    elif credential.env:
        text = f"{credential.env} is not set: set it"
    else:
        text = f"the Prefect Secret block {credential.secret_block} does not exist: create it"
    return text + (f" ({cause})" if cause else "")


def _where_to_store(account: ChannelAccount) -> str:
    credential = account.credential
    if credential is None:
        return ""
    places = [p for p in (credential.env, credential.secret_block and
                          f"the Prefect Secret block {credential.secret_block}") if p]
    return " and store it in " + " or ".join(places)


async def _check_one(account: ChannelAccount, client: httpx.AsyncClient, timeout: float,
                     options: Mapping[str, Any]) -> AccountStatus:
    name = account.name
    cls = PUBLISHERS[ChannelType(account.type)]
    credential = None
    try:
        if cls.needs_credential or account.credential is not None:
            async with asyncio.timeout(timeout):
                credential = await aresolve_credential(account)
    except CredentialMissing:
        return AccountStatus(name, False, _credential_hint(account))
    except (TransientPublishError, TimeoutError):
        return AccountStatus(name, False, _credential_hint(
            account, "the Prefect API could not be asked for the block: is PREFECT_API_URL "
            "right and the server up?"))
    try:
        publisher = publisher_for(account, client=client, credential=credential, **options)
        async with asyncio.timeout(timeout):
            check = await publisher.check()
    except TimeoutError:
        return AccountStatus(name, False, f"no answer within {timeout:g} s from "
                             f"{account.base_url or cls.default_base_url or 'the network'}: "
                             "is it reachable? try again later")
    except PublishError as exc:
        return AccountStatus(name, False, f"{exc}")
    if not check.ok:
        where = _where_to_store(account) if check.about_credential else ""
        if check.fix:
            return AccountStatus(name, False, f"{check.message}; {check.fix}{where}")
        return AccountStatus(name, False,
                             f"the credential was refused: {check.message or 'no reason given'}"
                             f"; renew it{where}")
    return AccountStatus(name, True, "; ".join(
        part for part in (check.identity or check.message or "ok", *check.details) if part))


async def check_accounts(
    accounts: Iterable[ChannelAccount],
    *,
    client: httpx.AsyncClient,
    timeout: float = 15.0,
    publisher_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[AccountStatus]:
    """:meth:`Publisher.check` for every account at once, each within ``timeout``."""
    accounts = list(accounts)
    return list(await asyncio.gather(*(
        _check_one(a, client, timeout, (publisher_options or {}).get(a.name, {}))
        for a in accounts)))
