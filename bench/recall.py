"""Recall at once: N published occurrences × every API channel taken down together.

    .venv/bin/python bench/recall.py [--occurrences 20] [--database-url URL]

Starts the stand-ins (one process per network, benchkit.StandinFleet) and a store (a
fresh SQLite file, or a fresh database on the PostgreSQL server of ``--database-url``),
publishes N pre-approved occurrences on the seven API channels of the seed registry
(Mastodon, Bluesky, LinkedIn, Facebook, Threads, Telegram, the website), then recalls all
N at the same moment through :func:`newsroom.recall.recall_occurrence` (what ``newsroom
recall --direct`` and the Prefect ``recall`` flow run).

Measured per occurrence: from the trigger to the moment the stand-in of its last network
recorded the deletion (CLOCK_MONOTONIC: one clock for all processes). The floor, in the
same run: as many bare ``httpx`` DELETEs of Mastodon statuses sent at once to the
Mastodon stand-in process. Prints one JSON line: ``posts``, ``gone``, ``left`` (still
shown at a network), ``double_deletes`` (a post deleted twice, or a channel recorded gone
twice), ``extra_delete_requests`` (delete calls beyond one per post: retries), ``p50_s``,
``p95_s``, ``max_s``, the floor and ``p95_ratio`` (p95 / floor p95).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import (  # noqa: E402
    StandinFleet,
    copy_catalog,
    percentile_s,
    service_campaign_yaml,
)

CHANNELS = ["mastodon", "bluesky", "linkedin", "facebook", "threads", "telegram", "website"]
# The fleet's process that serves each channel's network.
PROCESS = {"mastodon": "mastodon", "bluesky": "bluesky", "linkedin": "linkedin",
           "facebook": "graph", "threads": "graph", "telegram": "telegram", "website": "cms"}
# What a request that deletes a post looks like at the stand-ins: a DELETE, or one of
# these calls (Bluesky's deleteRecord, Telegram's deleteMessage, the CMS's withdraw).
DELETE_CALLS = ("deleteRecord", "deleteMessage", "/withdraw")


def _all_posts(fleet: StandinFleet) -> list[dict[str, Any]]:
    posts = []
    for url in fleet.urls.values():
        posts += httpx.get(f"{url}/_standin/posts", timeout=30).json()["posts"]
    return posts


def _delete_requests(fleet: StandinFleet) -> int:
    """The delete calls the stand-ins received, of every process."""
    count = 0
    for url in fleet.urls.values():
        for request in httpx.get(f"{url}/_standin/requests", timeout=30).json()["requests"]:
            if request.get("method") == "DELETE" or any(
                    call in request.get("path", "") for call in DELETE_CALLS):
                count += 1
    return count


async def _floor(fleet: StandinFleet, count: int) -> dict[str, Any]:
    """``count`` bare DELETEs sent at once to the Mastodon stand-in process, of statuses
    made for it just before: seconds from the burst's start to each deletion's record.
    On its GoToSocial profile, which has no delete throttle (Mastodon's allows 30 per 30
    minutes and account: a floor of more would measure 429s)."""
    from newsroom.standins.config import MASTODON_TOKEN

    server = "mastodon~ignores-idempotency"
    base = fleet.urls["mastodon"]
    headers = {"Authorization": f"Bearer {MASTODON_TOKEN}"}
    marker = f"floor-{secrets.token_hex(4)}"

    async def run() -> float:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(
                max_connections=200, max_keepalive_connections=20)) as client:
            ids = []
            for i in range(count):
                made = await client.post(f"{base}/mastodon/~ignores-idempotency/api/v1/"
                                         "statuses", headers=headers,
                                         json={"status": f"{marker} {i}"})
                ids.append(made.json()["id"])
            started = time.monotonic()
            await asyncio.gather(*(client.delete(
                f"{base}/mastodon/~ignores-idempotency/api/v1/statuses/{i}", headers=headers)
                for i in ids))
            return started

    started = await run()
    times = sorted(p["deleted_at"]["monotonic"] - started
                   for p in httpx.get(f"{base}/_standin/posts", params={"network": server},
                                      timeout=30).json()["posts"]
                   if marker in str(p) and p.get("deleted_at"))
    return {"deletes": len(times), "p50_s": percentile_s(times, 0.5),
            "p95_s": percentile_s(times, 0.95), "max_s": round(times[-1], 3) if times else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--occurrences", type=int, default=20)
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server URL (a fresh database is made there); "
                             "default: a SQLite file")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="newsroom-bench-recall-"))
    fleet = StandinFleet()
    try:
        result = _bench(work, fleet, args.occurrences, args.database_url)
    finally:
        fleet.stop()
    print(json.dumps(result))


def _database(work: Path, server_url: str | None) -> tuple[str, Any]:
    if not server_url:
        return f"sqlite:///{work / 'newsroom.db'}", None
    from sqlalchemy import create_engine, text

    name = f"bench_recall_{secrets.token_hex(4)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    url = server_url.rsplit("/", 1)[0] + f"/{name}"

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()

    return url, drop


def _bench(work: Path, fleet: StandinFleet, count: int, server_url: str | None
           ) -> dict[str, Any]:
    from newsroom.standins.config import STANDIN_CREDENTIAL_ENV

    os.environ.update(STANDIN_CREDENTIAL_ENV)
    catalog = copy_catalog(work / "campaigns", fleet)
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    from newsroom.timeutil import BERLIN

    local = slot.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M:%S")
    ids = [f"rueckruf-{i:03d}" for i in range(count)]
    for campaign_id in ids:
        (catalog / f"{campaign_id}.yaml").write_text(
            service_campaign_yaml(campaign_id, local, CHANNELS, title="Rückruf"),
            encoding="utf-8")
    url, drop = _database(work, server_url)
    try:
        return asyncio.run(_run(work, catalog, url, ids, slot, fleet))
    finally:
        if drop is not None:
            drop()


async def _run(work: Path, catalog: Path, url: str, ids: list[str], slot: datetime,
               fleet: StandinFleet) -> dict[str, Any]:
    from newsroom import recall
    from newsroom.delivery import close_shared_client, deliver_occurrence, prepare_occurrence
    from newsroom.runtime import Runtime
    from newsroom.settings import Settings
    from newsroom.signing import Signer
    from newsroom.store import make_engine, upgrade_database
    from newsroom.timeutil import BERLIN

    upgrade_database(url)
    settings = Settings(catalog_dir=catalog, data_dir=work / "var", database_url=url,
                        secret_key="bench-recall-secret-key-0123456789-abcdef")
    runtime = Runtime(settings=settings, engine=make_engine(url),
                      signer=Signer(settings.secret_key))
    runtime.notifier_override = _Quiet()
    day = slot.astimezone(BERLIN).date()
    prepared = [await asyncio.to_thread(prepare_occurrence, runtime, c, day) for c in ids]
    reports = await asyncio.gather(*(deliver_occurrence(runtime, p, None) for p in prepared))
    published = sum(len(r.published) for r in reports)
    if published != len(ids) * len(CHANNELS):
        raise SystemExit(f"only {published} of {len(ids) * len(CHANNELS)} posts were "
                         "published; nothing to recall")
    await close_shared_client()
    started = time.monotonic()
    recalled = await asyncio.gather(*(recall.recall_occurrence(
        runtime, occurrence_id=p.occurrence_id, reason="Benchmark: Rückruf", by="wolf",
        via="bench") for p in prepared))
    elapsed = time.monotonic() - started
    await close_shared_client()
    ours = [p for p in _all_posts(fleet)
            if any(c in json.dumps(p, ensure_ascii=False) for c in ids)]
    latency = []
    for campaign_id in ids:
        mine = [p for p in ours if campaign_id in json.dumps(p, ensure_ascii=False)]
        deleted = [p["deleted_at"]["monotonic"] - started for p in mine if p.get("deleted_at")]
        if len(deleted) == len(mine) and mine:
            latency.append(max(deleted))
    latency.sort()
    gone = sum(1 for p in ours if p.get("deleted_at"))
    statuses = [c.status for r in recalled for c in r.channels]
    double = sum(1 for p in ours if p.get("deletions", 0) > 1)
    from newsroom import store

    with store.session_scope(runtime.engine) as session:
        audited = {}
        for campaign_id in ids:
            for event in store.audit_trail(session, campaign_id=campaign_id):
                if event.action == "recall.gone":
                    audited[(campaign_id, event.channel)] = audited.get(
                        (campaign_id, event.channel), 0) + 1
    double += sum(n - 1 for n in audited.values() if n > 1)
    floor = await _floor(fleet, len(ours))
    p95 = percentile_s(latency, 0.95)
    return {
        "bench": "recall", "date": datetime.now(UTC).date().isoformat(),
        "occurrences": len(ids), "channels": len(CHANNELS), "posts": len(ours),
        "gone": gone, "left": len(ours) - gone, "double_deletes": double,
        "extra_delete_requests": _delete_requests(fleet) - floor["deletes"] - gone,
        "statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
        "p50_s": percentile_s(latency, 0.5), "p95_s": p95,
        "max_s": round(latency[-1], 3) if latency else None,
        "all_recalls_returned_s": round(elapsed, 3),
        "floor": floor,
        "p95_ratio": round(p95 / floor["p95_s"], 2) if p95 and floor["p95_s"] else None,
        "store": "postgresql" if url.startswith("postgresql") else "sqlite",
    }


class _Quiet:
    """A notifier that keeps nothing: the bench measures the recall, not the mail."""

    def notify(self, tag: str, subject: str, body_text: str, body_html: str | None = None,
               **_: Any) -> bool:
        return True


if __name__ == "__main__":
    main()
