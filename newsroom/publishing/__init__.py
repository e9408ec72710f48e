"""Publishing stored posts exactly once.

:func:`publish_post` takes a rendered post from the store and puts it on one channel, with
the store as the memory that makes repeats harmless; :func:`publish_occurrence` does so
for every channel of an occurrence at once. One module per concern; each imports only
those above it in this list, never the package::

    outcomes        what publishing answers (PublicationOutcome, OccurrencePublication),
                    the idempotency key, the manual confirmation link, ACTOR
    transactions    the store, one short transaction at a time, off the event loop
    burst           sends in flight: a result is recorded once the burst has gone out
    publishers      one publisher per account and HTTP client
    alerts          what the communications office is told (German)
    state_machine   one post on one channel: reserve → claim → send → record
                    (publish_post; the states are drawn in its docstring)
    arming          reserved and claimed ahead of the second (arm_occurrence, disarm)
    occurrence      an occurrence's posts, all channels at once (ready_occurrence,
                    send_ready, publish_occurrence)
    sweeps          alerts owed for "unknown" publications (send_owed_alerts)
    resolving       what a person looks at and found (open_publications, resolve_unknown)
    account_checks  ``newsroom channels check`` (check_accounts)

``resolving`` and ``account_checks`` import none of the others. The names below are the
API the rest of Newsroom uses.
"""

from __future__ import annotations

from .account_checks import AccountStatus, check_accounts
from .arming import arm_occurrence, disarm
from .occurrence import ReadySends, publish_occurrence, ready_occurrence, send_ready
from .outcomes import (
    ACTOR,
    OccurrencePublication,
    PublicationOutcome,
    idempotency_key_for,
    manual_confirm_url,
)
from .resolving import OpenPublication, open_publications, resolve_unknown, unknown_publications
from .state_machine import publish_post
from .sweeps import OWED_ALERT_SETTLE, send_owed_alerts

__all__ = [
    "ACTOR",
    "OWED_ALERT_SETTLE",
    "AccountStatus",
    "OccurrencePublication",
    "OpenPublication",
    "PublicationOutcome",
    "ReadySends",
    "arm_occurrence",
    "check_accounts",
    "disarm",
    "idempotency_key_for",
    "manual_confirm_url",
    "open_publications",
    "publish_occurrence",
    "publish_post",
    "ready_occurrence",
    "resolve_unknown",
    "send_owed_alerts",
    "send_ready",
    "unknown_publications",
]
