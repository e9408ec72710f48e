"""Resolving an account's credential: from an environment variable or a Prefect Secret block.

The registry names where a secret lives (``credential.env`` and/or
``credential.secret_block``), never the secret. When both are named, the environment
variable wins (handy to override a block on one machine) and the block is the fallback.

What the secret value is, per network:

=============  =======================================================================
mastodon       an access token with scope ``write:statuses write:media`` (Bearer)
bluesky        ``handle:app-password`` (e.g. ``darmstadt.de:abcd-efgh-ijkl-mnop``); a
               bare app password works when the account's ``account_id`` is the handle
linkedin       an OAuth access token with ``w_organization_social`` (Bearer)
facebook       a Page access token
instagram      a Page access token of the Page linked to the Instagram account
threads        a Threads user access token
telegram       the bot token from @BotFather (``123456:ABC…``)
website        optional: a Bearer token for the CMS webhook
email          a full SMTP URL ``smtp://user:password@host:port?from=addr&name=Name``
               (schemes ``smtp`` plain, ``smtp+starttls``, ``smtps`` implicit TLS), or
               only the password, with the rest of that URL in the account's base_url
=============  =======================================================================

This is the only module of the domain core that touches Prefect, and only inside
:func:`resolve_credential` / :func:`aresolve_credential`, when a Secret block is named.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import SecretStr

from newsroom.catalog.models import ChannelAccount
from newsroom.errors import PermanentPublishError, TransientPublishError

__all__ = ["CredentialMissing", "aresolve_credential", "resolve_credential"]


class CredentialMissing(PermanentPublishError):
    """The secret an account needs is not where the registry says it is."""


def _from_env(account: ChannelAccount) -> SecretStr | None:
    credential = account.credential
    if credential and credential.env:
        value = os.environ.get(credential.env, "").strip()
        if value:
            return SecretStr(value)
    return None


def _missing(account: ChannelAccount, block_error: str = "") -> CredentialMissing:
    credential = account.credential
    if credential is None:
        return CredentialMissing(
            f"{account.name}: the account has no `credential` in the channel registry; "
            "add `credential: {env: NAME}` or `credential: {secret_block: NAME}`",
            channel=account.name,
        )
    places, todo = [], []
    if credential.env:
        places.append(f"environment variable {credential.env}")
        todo.append(f"export {credential.env}=…")
    if credential.secret_block:
        places.append(f"Prefect Secret block {credential.secret_block!r}{block_error}")
        todo.append(f"create the block: prefect block create secret "
                    f"(name {credential.secret_block!r}) or Secret(value=…).save("
                    f"{credential.secret_block!r})")
    return CredentialMissing(
        f"{account.name}: no credential found in the " + " nor the ".join(places)
        + "; " + " or ".join(todo),
        channel=account.name,
    )


def _secret_value(block: Any) -> SecretStr:
    value = block.get()  # Secret.get() JSON-decodes strings that look like JSON
    return SecretStr(value if isinstance(value, str) else str(value))


def _block_error(account: ChannelAccount, exc: Exception) -> Exception:
    if isinstance(exc, ValueError):  # Prefect: "Unable to find block document named …"
        return _missing(account, " (not found)")
    block = account.credential.secret_block if account.credential else None
    return TransientPublishError(
        f"{account.name}: could not read Prefect Secret block "
        f"{block!r} ({type(exc).__name__}); is the Prefect API "
        "reachable (PREFECT_API_URL)?",
        channel=account.name,
    )


def resolve_credential(account: ChannelAccount) -> SecretStr:
    """The account's secret; raises :class:`CredentialMissing` naming where to put it."""
    if account.credential is None:
        raise _missing(account)
    value = _from_env(account)
    if value is not None:
        return value
    if account.credential.secret_block:
        # lazily: the core needs Prefect only when a Secret block is named
        from newsroom.orchestration.prefect_internals import load_secret_block

        try:
            block = load_secret_block(account.credential.secret_block)
        except Exception as exc:
            raise _block_error(account, exc) from exc
        return _secret_value(block)
    raise _missing(account)


async def aresolve_credential(account: ChannelAccount) -> SecretStr:
    """:func:`resolve_credential` for async code (loads the block without blocking)."""
    if account.credential is None:
        raise _missing(account)
    value = _from_env(account)
    if value is not None:
        return value
    if account.credential.secret_block:
        from prefect.blocks.system import Secret

        try:
            block = await Secret.aload(account.credential.secret_block)
        except Exception as exc:
            raise _block_error(account, exc) from exc
        return _secret_value(block)
    raise _missing(account)
