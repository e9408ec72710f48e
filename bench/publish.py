"""What the publisher path costs over a bare HTTP call, against the local Mastodon stand-in.

    .venv/bin/python bench/publish.py [--posts 500] [--rounds 3]

Starts the stand-ins on 127.0.0.1, then alternates rounds of N posts through
``publish_with_retries(MastodonPublisher, …)`` and N bare ``httpx`` POSTs of the same
status to the same endpoint, one after another on one client. Prints one JSON line:
the median round of each and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from datetime import UTC, date, datetime

import httpx
from pydantic import SecretStr

from newsroom.catalog.models import ChannelAccount
from newsroom.channels import publish_with_retries, publisher_for
from newsroom.posts import RenderedPost
from newsroom.standins import StandinControl, running_standins
from newsroom.standins.config import MASTODON_TOKEN

TEXT = "Schöne Grüße 🎉 #Trikottag https://www.darmstadt.de/trikottag"


def _post(n: int) -> RenderedPost:
    return RenderedPost(
        campaign_id=f"bench-{n}", occurrence=date(2026, 5, 15), channel="mastodon",
        channel_type="mastodon", publish_at=datetime(2026, 5, 15, 8, tzinfo=UTC), text=TEXT,
        title="Bench")


async def _rounds(base_url: str, posts: int, rounds: int) -> dict[str, list[float]]:
    account = ChannelAccount(name="mastodon", type="mastodon", display_name="Bench",
                             base_url=f"{base_url}/mastodon")
    times: dict[str, list[float]] = {"publisher": [], "bare": []}
    async with httpx.AsyncClient(timeout=10) as client:
        publisher = publisher_for(account, client=client, credential=SecretStr(MASTODON_TOKEN))
        headers = {"Authorization": f"Bearer {MASTODON_TOKEN}"}
        url = f"{base_url}/mastodon/api/v1/statuses"
        body = {"status": TEXT, "language": "de", "visibility": "public"}
        counter = iter(range(10**9))

        async def via_publisher(count: int) -> None:
            for _ in range(count):
                n = next(counter)
                await publish_with_retries(publisher, _post(n), f"bench/{n}")

        async def bare(count: int) -> None:
            for _ in range(count):
                response = await client.post(url, json=body, headers={
                    **headers, "Idempotency-Key": f"bench/{next(counter)}"})
                response.raise_for_status()

        await via_publisher(20)  # warm up: connection, instance limits, code paths
        await bare(20)
        for _ in range(rounds):
            for name, run in (("publisher", via_publisher), ("bare", bare)):
                start = time.perf_counter()
                await run(posts)
                times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with running_standins() as base_url:
        times = asyncio.run(_rounds(base_url, args.posts, args.rounds))
        with StandinControl(base_url) as control:
            recorded = len(control.posts("mastodon"))
    publisher_s = statistics.median(times["publisher"])
    bare_s = statistics.median(times["bare"])
    print(json.dumps({
        "posts": args.posts,
        "rounds": args.rounds,
        "overhead_ratio": round(publisher_s / bare_s, 3),
        "publisher_s": round(publisher_s, 4),
        "bare_s": round(bare_s, 4),
        "publisher_ms_per_post": round(publisher_s / args.posts * 1000, 3),
        "bare_ms_per_post": round(bare_s / args.posts * 1000, 3),
        "posts_recorded": recorded,
    }))


if __name__ == "__main__":
    main()
