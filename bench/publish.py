"""What publishing one post costs over a bare HTTP call, against the local Mastodon stand-in.

    .venv/bin/python bench/publish.py [--posts 500] [--rounds 3] [--database-url URL]

Starts the stand-ins on 127.0.0.1 and a store (a fresh SQLite file, or a fresh database
on the PostgreSQL server of ``--database-url``, dropped afterwards), then runs rounds of N
posts of each kind (in turns, the order turning each round), one after another on one
HTTP client:

- ``bare``: N bare ``httpx`` POSTs of the same status to the same endpoint (the floor);
- ``publisher``: N posts through ``publish_with_retries(MastodonPublisher, …)``, no store;
- ``path``: N stored posts through the whole path of one post
  (:class:`~newsroom.publishing.state_machine.PublishJob`): reserve in the store, mark
  publishing, send, record the outcome, each step with its audit event.

Then one more ``path`` round, not timed with the others, counts the database
transactions and statements per post and splits its time into store (the state
machine's sessions, with their worker-thread hops), network (the publisher's call) and
the rest. Prints one JSON line: the median round of each, ``overhead_ratio``
(publisher / bare) and ``path_ratio`` (path / bare), the same two in CPU time of the
process (``cpu_*``: less disturbed by other work on the machine), and the breakdown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from newsroom import store
from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels import publish_with_retries, publisher_for
from newsroom.posts import RenderedPost
from newsroom.publishing import state_machine
from newsroom.standins import StandinControl, running_standins
from newsroom.standins.config import MASTODON_TOKEN
from newsroom.store import PostRecord, PublicationStatus

TEXT = "Schöne Grüße 🎉 #Trikottag https://www.darmstadt.de/trikottag"
CAMPAIGN = "bench-publish"
FIRST_DAY = date(2026, 1, 1)
WARM_UP = 20


def _post(n: int, campaign_id: str | None = None) -> RenderedPost:
    return RenderedPost(
        campaign_id=campaign_id or f"bench-{n}",
        occurrence=FIRST_DAY + timedelta(days=n) if campaign_id else date(2026, 5, 15),
        channel="mastodon", channel_type="mastodon",
        publish_at=datetime(2026, 5, 15, 8, tzinfo=UTC), text=TEXT, title="Bench")


# -- the store ------------------------------------------------------------------------------

@contextmanager
def fresh_store(database_url: str | None) -> Iterator[str]:
    """The URL of an empty, migrated store: a SQLite file in a temporary folder, or a
    new database on the server of ``database_url`` (dropped at the end)."""
    if database_url is None:
        with tempfile.TemporaryDirectory(prefix="bench-publish-") as folder:
            url = f"sqlite:///{folder}/newsroom.db"
            store.upgrade_database(url)
            yield url
        return
    base = make_url(store.normalize_url(database_url))
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"newsroom_bench_{secrets.token_hex(6)}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        url = base.set(database=name).render_as_string(hide_password=False)
        store.upgrade_database(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def store_posts(engine: Engine, count: int) -> list[PostRecord]:
    """``count`` stored posts on Mastodon, one occurrence (day) each of one campaign."""
    posts = [_post(n, CAMPAIGN) for n in range(count)]
    with store.session_scope(engine) as session:
        store.upsert_campaign(session, campaign_id=CAMPAIGN, title="Bench", kind="standard",
                              topic="Bench", source_file="bench.yaml", definition={})
        occurrences = [store.Occurrence(campaign_id=CAMPAIGN, occurrence_date=post.occurrence,
                                        first_publish_at=post.publish_at) for post in posts]
        session.add_all(occurrences)
        session.flush()
        rows = [PostRecord(occurrence_id=store.stored_id(occurrence), channel=post.channel,
                           channel_type=post.channel_type, publish_at=post.publish_at,
                           text=post.text, payload=post.canonical(),
                           content_hash=post.content_hash)
                for occurrence, post in zip(occurrences, posts, strict=True)]
        session.add_all(rows)
        session.commit()
        return rows


class Statements:
    """Counts the transactions (commits) and statements the engine runs."""

    def __init__(self, engine: Engine) -> None:
        self.commits = 0
        self.statements = 0
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "before_cursor_execute", self._statement)

    def _commit(self, connection: Any) -> None:
        self.commits += 1

    def _statement(self, *args: Any) -> None:
        self.statements += 1


@contextmanager
def timed_steps(totals: dict[str, float]) -> Iterator[None]:
    """Time the state machine's sessions (``store``) and the publisher's calls
    (``network``) into ``totals`` meanwhile."""
    real_session, real_publish = state_machine.run_in_session, state_machine.publish_with_retries

    async def run_in_session(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await real_session(*args, **kwargs)
        finally:
            totals["store"] += time.perf_counter() - start

    async def publish(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await real_publish(*args, **kwargs)
        finally:
            totals["network"] += time.perf_counter() - start

    state_machine.run_in_session = run_in_session
    state_machine.publish_with_retries = publish
    try:
        yield
    finally:
        state_machine.run_in_session = real_session
        state_machine.publish_with_retries = real_publish


# -- the rounds -----------------------------------------------------------------------------

async def _rounds(base_url: str, engine: Engine, posts: int, rounds: int
                  ) -> tuple[dict[str, list[float]], dict[str, Any]]:
    account = ChannelAccount(name="mastodon", type=ChannelType.MASTODON, display_name="Bench",
                             base_url=f"{base_url}/mastodon")
    credential = SecretStr(MASTODON_TOKEN)
    stored = iter(store_posts(engine, WARM_UP + posts * (rounds + 1)))
    statements = Statements(engine)
    times: dict[str, list[float]] = {name: [] for kind in ("bare", "publisher", "path")
                                     for name in (kind, f"{kind}_cpu")}
    statuses: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        publisher = publisher_for(account, client=client, credential=credential)
        headers = {"Authorization": f"Bearer {MASTODON_TOKEN}"}
        url = f"{base_url}/mastodon/api/v1/statuses"
        body = {"status": TEXT, "language": "de", "visibility": "public"}
        counter = iter(range(10**9))

        async def bare(count: int) -> None:
            for _ in range(count):
                response = await client.post(url, json=body, headers={
                    **headers, "Idempotency-Key": f"bench/{next(counter)}"})
                response.raise_for_status()

        async def via_publisher(count: int) -> None:
            for _ in range(count):
                n = next(counter)
                await publish_with_retries(publisher, _post(n), f"bench/{n}")

        async def path(count: int) -> None:
            for _ in range(count):
                post = next(stored)
                job = await state_machine.make_job(
                    engine=engine, post_id=store.stored_id(post), account=account,
                    client=client, credential=credential, notifier=None,
                    confirm_url_for=None, sleep=asyncio.sleep, signer=None,
                    media_root=None, publisher_options=None, preloaded=post)
                outcome = await state_machine.fly(job)
                statuses[outcome.status] = statuses.get(outcome.status, 0) + 1

        await bare(WARM_UP)  # warm up: connection, instance limits, code paths, the store
        await via_publisher(WARM_UP)
        await path(WARM_UP)
        kinds = [("bare", bare), ("publisher", via_publisher), ("path", path)]
        for round_no in range(rounds):  # the order turns, so no kind always follows another
            for name, run in kinds[round_no % 3:] + kinds[:round_no % 3]:
                start, cpu = time.perf_counter(), time.process_time()
                await run(posts)
                times[name].append(time.perf_counter() - start)
                times[f"{name}_cpu"].append(time.process_time() - cpu)

        # The breakdown, in a round of its own (the timers cost a little).
        totals = {"store": 0.0, "network": 0.0}
        commits, executed = statements.commits, statements.statements
        with timed_steps(totals):
            start = time.perf_counter()
            await path(posts)
            total = time.perf_counter() - start
    per_post = 1000 / posts
    breakdown = {
        "transactions_per_post": round((statements.commits - commits) / posts, 2),
        "statements_per_post": round((statements.statements - executed) / posts, 2),
        "ms_per_post": round(total * per_post, 3),
        "store_ms_per_post": round(totals["store"] * per_post, 3),
        "network_ms_per_post": round(totals["network"] * per_post, 3),
        "rest_ms_per_post": round((total - totals["store"] - totals["network"]) * per_post, 3),
    }
    return times, {"breakdown": breakdown, "statuses": statuses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server to run the store on (a fresh database is "
                             "made there and dropped), e.g. "
                             "postgresql+psycopg://postgres@127.0.0.1:5432/test; "
                             "default: a SQLite file")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with fresh_store(args.database_url) as database_url, running_standins() as base_url:
        engine = store.make_engine(database_url)
        try:
            times, extra = asyncio.run(_rounds(base_url, engine, args.posts, args.rounds))
        finally:
            engine.dispose()
        with StandinControl(base_url) as control:
            recorded = len(control.posts("mastodon"))
    median = {name: statistics.median(values) for name, values in times.items()}
    published = extra["statuses"].get(PublicationStatus.PUBLISHED.value, 0)
    print(json.dumps({
        "posts": args.posts,
        "rounds": args.rounds,
        "database": make_url(database_url).get_backend_name(),
        "overhead_ratio": round(median["publisher"] / median["bare"], 3),
        "path_ratio": round(median["path"] / median["bare"], 3),
        "bare_s": round(median["bare"], 4),
        "publisher_s": round(median["publisher"], 4),
        "path_s": round(median["path"], 4),
        "bare_ms_per_post": round(median["bare"] / args.posts * 1000, 3),
        "publisher_ms_per_post": round(median["publisher"] / args.posts * 1000, 3),
        "path_ms_per_post": round(median["path"] / args.posts * 1000, 3),
        # The same rounds in CPU time of this process (the stand-in included), which the
        # other processes on the machine disturb less than the wall clock.
        "cpu_overhead_ratio": round(median["publisher_cpu"] / median["bare_cpu"], 3),
        "cpu_path_ratio": round(median["path_cpu"] / median["bare_cpu"], 3),
        "bare_cpu_ms_per_post": round(median["bare_cpu"] / args.posts * 1000, 3),
        "path_cpu_ms_per_post": round(median["path_cpu"] / args.posts * 1000, 3),
        "path_breakdown": extra["breakdown"],
        "path_published": published,
        "path_not_published": sum(extra["statuses"].values()) - published,
        "posts_recorded": recorded,
        "load_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # before, after
    }))


if __name__ == "__main__":
    main()
