"""What the stand-ins remember: every request, every post they made, the fault rules.

Secrets are never stored: ``Authorization`` values, ``access_token`` and ``password``
fields and Telegram's bot token in the path are replaced by ``***`` on the way in.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal["429", "500", "502", "504", "slow", "slow_answer", "401",
                    "drop_after_receive", "expired_token"]
_SECRET_FIELDS = frozenset({"access_token", "password", "refreshJwt", "accessJwt"})
_BOT_TOKEN = re.compile(r"/bot[^/]+/")


class FaultRule(BaseModel):
    """One injected failure: the next ``times`` matching requests fail as ``kind``.

    ``429``/``500``/``401`` answer with the network's own error (and its way of saying how
    long to wait, from ``retry_after``); ``slow`` waits ``delay`` seconds and then answers
    normally; ``slow_answer`` handles the request at once (the post is made) and holds its
    answer back ``delay`` seconds (a server that is slow to answer, or a burst's answers
    still on their way); ``drop_after_receive`` handles the request (the post is made) and
    closes the connection without an answer (``reset`` sends a TCP reset instead of a clean
    close); ``expired_token`` answers Bluesky's ``ExpiredToken``. ``502``/``504`` play a
    gateway in front of the network: with ``forward`` (the default) the network handles the
    request (the post is made) and the gateway then answers Bad Gateway / Gateway Timeout
    with an HTML page of its own; without, nothing reaches the network.
    """

    model_config = ConfigDict(extra="forbid")

    network: str = "*"
    path_contains: str = ""
    kind: FaultKind
    times: int = Field(default=1, ge=1)
    retry_after: float = Field(default=1.0, ge=0)
    delay: float = Field(default=0.0, ge=0)
    reset: bool = False
    forward: bool = True

    def matches(self, network: str, path: str) -> bool:
        return self.network in ("*", network) and self.path_contains in path


def timestamp() -> dict[str, Any]:
    return {"monotonic": time.monotonic(), "wall": datetime.now(UTC).isoformat()}


def redact_path(path: str) -> str:
    return _BOT_TOKEN.sub("/bot***/", path)


def redact_fields(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: ("***" if k in _SECRET_FIELDS else redact_fields(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [redact_fields(v) for v in data]
    return data


def redact_headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    result: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name == "authorization":
            scheme = value.split(" ", 1)[0] if " " in value else ""
            value = f"{scheme} ***".strip()
        result[name] = value
    return result


class Recorder:
    """Thread-safe store of requests, posts and faults, shared by all stand-in networks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.requests: list[dict[str, Any]] = []
        self.posts: list[dict[str, Any]] = []
        self.faults: list[FaultRule] = []
        self._reset_hooks: list[Callable[[], None]] = []

    def on_reset(self, hook: Callable[[], None]) -> None:
        self._reset_hooks.append(hook)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.posts.clear()
            self.faults.clear()
            for hook in self._reset_hooks:
                hook()

    def record_request(self, entry: dict[str, Any]) -> dict[str, Any]:
        entry = {"seq": next(self._ids), **entry, "received_at": timestamp()}
        with self._lock:
            self.requests.append(entry)
        return entry

    def add_post(self, network: str, **fields: Any) -> dict[str, Any]:
        post = {"network": network, **fields, "created_at": timestamp()}
        with self._lock:
            self.posts.append(post)
        return post

    def delete_post(self, network: str, match: Callable[[dict[str, Any]], bool]
                    ) -> dict[str, Any] | None:
        """Mark the network's first shown post that ``match`` accepts as deleted (it stays
        in the record with ``deleted_at``, as a network's tombstone); the post, or None
        when no shown post matched (already deleted, never made: the network's 404)."""
        with self._lock:
            for post in self.posts:
                if (post["network"] == network and "deleted_at" not in post
                        and match(post)):
                    post["deleted_at"] = timestamp()
                    post["deletions"] = post.get("deletions", 0) + 1
                    return post
        return None

    def deleted_posts(self, network: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [p for p in self.posts
                    if network in (None, p["network"]) and "deleted_at" in p]

    def set_faults(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self.faults = list(rules)

    def take_fault(self, network: str, path: str) -> FaultRule | None:
        """The first rule matching this request, counted down (and dropped at zero)."""
        with self._lock:
            for index, rule in enumerate(self.faults):
                if rule.matches(network, path):
                    if rule.times <= 1:
                        del self.faults[index]
                    else:
                        self.faults[index] = rule.model_copy(update={"times": rule.times - 1})
                    return rule
        return None

    def snapshot_posts(self, network: str | None = None, *, shown_only: bool = False
                       ) -> list[dict[str, Any]]:
        """The posts made (``shown_only``: without the deleted ones)."""
        with self._lock:
            return [p for p in self.posts if network in (None, p["network"])
                    and not (shown_only and "deleted_at" in p)]

    def snapshot_requests(self, network: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if network in (None, r["network"])]
