"""A catalog overlay: what one running stack adds to the catalog people edit, no copy.

``newsroom up`` works on the catalog folder people edit (``campaigns/``). What belongs to
that one running stack lives beside it, in an *overlay* folder in the data dir
(``NEWSROOM_CATALOG_OVERLAY``, written by ``up`` and recorded for the other shells):

- ``registry/channels.yaml``: how each account is reached in this stack (the demo: every
  account at the stand-ins of this run's port). Only connection fields —
  :class:`~newsroom.catalog.models.AccountConnection`: ``base_url``, ``account_id``,
  ``keep_alive``, ``idempotency``, ``api_version`` — never an account's type, credential or
  crisis use. An entry for an account the registry does not have is a warning.
- campaign files (``*.yaml``): campaigns of this stack only (the demo campaign), checked
  like every other and refused alike when they do not validate; their templates and
  images are the catalog's.

The catalog's own files are not touched or copied: an edit in ``campaigns/`` is what the
stack's next load reads (:class:`~newsroom.catalog.keeper.CatalogKeeper` watches both
folders). Loading applies the overlay (:func:`~newsroom.catalog.validation.load_catalog`
``overlay=``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import yaml

from .catalog import CHANNELS_FILE, REGISTRY_DIR
from .models import AccountConnection, ChannelAccount, ChannelType

__all__ = ["STACK_OVERLAY_DIR", "STANDIN_PATHS", "prepare_overlay", "standin_connections",
           "write_registry_overlay"]

# The overlay of the stack `newsroom up` runs, in its data dir.
STACK_OVERLAY_DIR = "stack-overlay"
# Where the stand-ins (newsroom.standins) serve each network's API, below their URL.
STANDIN_PATHS: dict[ChannelType, str] = {
    ChannelType.MASTODON: "/mastodon",
    ChannelType.BLUESKY: "/bluesky",
    ChannelType.INSTAGRAM: "/graph",
    ChannelType.FACEBOOK: "/graph",
    ChannelType.THREADS: "/graph",
    ChannelType.LINKEDIN: "/linkedin",
    ChannelType.TELEGRAM: "/telegram",
    ChannelType.WEBSITE: "/cms/posts",
}

_HEADER = """\
# Written by `newsroom up` for this running stack; rewritten at every start.
# How each account of the catalog's registry is reached here (the stand-ins);
# the registry itself (campaigns/registry/channels.yaml) is not changed.
"""


def standin_connections(accounts: Iterable[ChannelAccount], standins_url: str
                        ) -> list[AccountConnection]:
    """Every account the stand-ins serve, pointed at the stand-ins at ``standins_url``."""
    base = standins_url.rstrip("/")
    return [AccountConnection(name=account.name, base_url=base + STANDIN_PATHS[account.type])
            for account in accounts if account.type in STANDIN_PATHS]


def prepare_overlay(overlay: Path) -> Path:
    """An empty overlay folder at ``overlay`` (what an earlier stack left is removed)."""
    if overlay.exists():
        shutil.rmtree(overlay)
    (overlay / REGISTRY_DIR).mkdir(parents=True)
    return overlay


def write_registry_overlay(overlay: Path, connections: Iterable[AccountConnection]) -> Path:
    """Write ``registry/channels.yaml`` of ``overlay`` in one step (never half written)."""
    target = overlay / REGISTRY_DIR / CHANNELS_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    entries = [{"name": c.name, **c.changes()} for c in connections]
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    partial.write_text(_HEADER + yaml.safe_dump({"accounts": entries}, sort_keys=False,
                                                allow_unicode=True), encoding="utf-8")
    os.replace(partial, target)
    return target
